"""IAM: the two roles the original account provides, created only where they are missing.

``<uid>-kinesis-access-role`` is what API Gateway's Kinesis integrations assume;
``<uid>-ec2-access-role`` is what the REST proxy and the connector authenticate to MSK with.
A role found in place is left exactly as it is (and never destroyed); a role ``apply``
created keeps its inline policy in line with the one below.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from aws_deploy.context import POLICY_FILE, DeployContext, Step, gone
from aws_deploy.plan import Action, Change, noop
from aws_deploy.state import Record
from services.core.config_files import render

NAME = "iam"
POLICY_NAME = "pinpipe"


def _trust(*services: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": list(services)},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def _policy(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def kinesis_role_policy(ctx: DeployContext) -> dict[str, Any]:
    """List streams anywhere; act only on this user's streams."""
    s = ctx.settings
    streams = f"arn:aws:kinesis:{s.aws_region}:{s.aws_account_id}:stream/{s.stream_name_pattern}"
    return _policy(
        [
            {"Effect": "Allow", "Action": "kinesis:ListStreams", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": [
                    "kinesis:CreateStream",
                    "kinesis:DescribeStream",
                    "kinesis:DeleteStream",
                    "kinesis:PutRecord",
                    "kinesis:PutRecords",
                ],
                "Resource": streams,
            },
        ]
    )


def ec2_role_policy(ctx: DeployContext, cluster_arn: str) -> dict[str, Any]:
    """Connect to the cluster, use this user's topics and groups, write the user bucket."""
    prefix, _, cluster_path = cluster_arn.partition(":cluster/")
    topics = f"{prefix}:topic/{cluster_path}/{ctx.settings.topics_glob}"
    groups = f"{prefix}:group/{cluster_path}/*"
    bucket = f"arn:aws:s3:::{ctx.bucket}"
    return _policy(
        [
            {
                "Effect": "Allow",
                "Action": [
                    "kafka-cluster:Connect",
                    "kafka-cluster:DescribeCluster",
                    "kafka-cluster:AlterCluster",
                ],
                "Resource": cluster_arn,
            },
            {
                "Effect": "Allow",
                "Action": [
                    "kafka-cluster:*Topic*",
                    "kafka-cluster:WriteData",
                    "kafka-cluster:ReadData",
                ],
                "Resource": topics,
            },
            {"Effect": "Allow", "Action": "kafka-cluster:*Group*", "Resource": groups},
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": bucket,
            },
            {
                "Effect": "Allow",
                "Action": [
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": f"{bucket}/*",
            },
        ]
    )


def _inline_policy(iam: Any, role: str) -> dict[str, Any] | None:
    try:
        doc = iam.get_role_policy(RoleName=role, PolicyName=POLICY_NAME)["PolicyDocument"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
            return None
        raise
    # boto3 decodes the URL-encoded JSON for us on AWS; some emulators hand back a string.
    return json.loads(doc) if isinstance(doc, str) else dict(doc)


def _role_exists(iam: Any, role: str) -> bool:
    try:
        iam.get_role(RoleName=role)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
            return False
        raise
    return True


def _role_change(
    ctx: DeployContext, role_arn: str, trusted: tuple[str, ...], policy: dict[str, Any]
) -> Change:
    iam = ctx.clients("iam")
    role = role_arn.rsplit("/", 1)[-1]
    body = json.dumps(policy)

    def put_policy() -> None:
        iam.put_role_policy(RoleName=role, PolicyName=POLICY_NAME, PolicyDocument=body)

    if not _role_exists(iam, role):

        def create() -> str:
            iam.create_role(
                RoleName=role,
                AssumeRolePolicyDocument=_trust(*trusted),
                Description="pinpipe: created by make deploy-aws",
            )
            ctx.state.record(NAME, "role", role)
            put_policy()
            return "created with its inline policy"

        return Change(NAME, "role", role, Action.CREATE, f"trusts {', '.join(trusted)}", create)
    if not ctx.state.owns(NAME, "role", role):
        return noop(NAME, "role", role, "exists (not managed)")
    if _inline_policy(iam, role) == policy:
        return noop(NAME, "role", role, "exists (created by pinpipe)")

    def update() -> str:
        put_policy()
        return "inline policy replaced"

    return Change(NAME, "role", role, Action.UPDATE, "inline policy differs", update)


def plan(ctx: DeployContext) -> list[Change]:
    """The Kinesis role, and (with a cluster to scope it to) the EC2/connector role."""
    changes = [
        _role_change(
            ctx, ctx.kinesis_role_arn, ("apigateway.amazonaws.com",), kinesis_role_policy(ctx)
        )
    ]
    cluster_arn = ctx.target.msk.cluster_arn
    if cluster_arn:
        changes.append(
            _role_change(
                ctx,
                ctx.ec2_role_arn,
                ("ec2.amazonaws.com", "kafkaconnect.amazonaws.com"),
                ec2_role_policy(ctx, cluster_arn),
            )
        )
    return changes


def destroy(ctx: DeployContext, record: Record) -> Change:
    """Delete a role ``apply`` created, with its inline policy."""
    iam = ctx.clients("iam")
    if not _role_exists(iam, record.id):
        return gone(ctx, record, "role", record.id)

    def delete() -> str:
        if _inline_policy(iam, record.id) is not None:
            iam.delete_role_policy(RoleName=record.id, PolicyName=POLICY_NAME)
        iam.delete_role(RoleName=record.id)
        ctx.state.forget(record)
        return "deleted"

    return Change(NAME, "role", record.id, Action.DELETE, "", delete)


STEP = Step(NAME, "the Kinesis and MSK access roles", (), plan, destroy, local=True)


def deploy_policy(ctx: DeployContext) -> str:
    """The deployer's least-privilege policy, filled in for this target (``*`` where unknown)."""
    s = ctx.settings
    cluster = ctx.target.msk.cluster_arn
    arn_prefix = f"arn:aws:kafka:{s.aws_region}:{s.aws_account_id}"
    values = {
        "AWS_REGION": s.aws_region,
        "AWS_ACCOUNT_ID": s.aws_account_id,
        "USER_ID": s.user_id,
        "BUCKET": ctx.bucket,
        "EC2_ACCESS_ROLE_ARN": ctx.ec2_role_arn,
        "KINESIS_ACCESS_ROLE_ARN": ctx.kinesis_role_arn,
        "MSK_CLUSTER_ARN": cluster or f"{arn_prefix}:cluster/*",
        "MSK_TOPIC_ARN_PREFIX": (
            cluster.replace(":cluster/", ":topic/", 1) if cluster else f"{arn_prefix}:topic/*/*"
        ),
        "EC2_INSTANCE_ID": ctx.target.rest_proxy.ssm_instance_id or "*",
        "MWAA_ENVIRONMENT": ctx.target.mwaa.environment or "*",
        "MWAA_BUCKET": ctx.target.mwaa.dags_bucket or "*",
    }
    policy = json.loads(render(POLICY_FILE.read_text(), values, POLICY_FILE))
    return json.dumps(policy, indent=2)
