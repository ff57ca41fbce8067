"""The dry run: S3, IAM, Kinesis and API Gateway executed for real on the native LocalStack,
and topics made through a Kafka admin client on the native broker."""

from __future__ import annotations

from pathlib import Path

import boto3
import httpx
import pytest
import yaml

from aws_deploy import msk
from aws_deploy.runner import Deployment
from services.core.rest_api import find_rest_apis
from services.core.settings import MSK_KAFKA_VERSION, Settings
from tests.aws_deploy.conftest import (
    BOOTSTRAP,
    CLUSTER_ARN,
    base_target,
    deployment,
    quiet,
    stubbed,
)
from tests.aws_deploy.test_msk import cluster
from tests.conftest import unique_name

pytestmark = pytest.mark.integration


def test_apply_on_localstack_serves_the_api_then_destroy_leaves_the_stack_as_it_was(
    native_stack: Settings, tmp_path: Path
) -> None:
    uid = unique_name("d")
    path = tmp_path / "aws-target.yaml"
    path.write_text(yaml.safe_dump({"user_id": uid}))
    endpoint = native_stack.aws_endpoint_url

    def prepare() -> Deployment:
        return Deployment.prepare(path, endpoint=endpoint, poll_interval=1)

    first = prepare()
    changes = first.apply(quiet())
    assert [c.action.value for c in changes] == ["create"] * 6  # bucket, role, 3 streams, API
    streams = [f"streaming-{uid}-{t}" for t in ("pin", "geo", "user")]
    with httpx.Client(base_url=first.ctx.outputs["api_invoke_url"], timeout=30) as api:
        # Kinesis integration, executed by LocalStack with the deployed document
        listed = api.get("/streams")
        assert listed.status_code == 200 and set(streams) <= set(listed.json()["StreamNames"])
        # {proxy+}: the stage variable points at the native REST proxy
        topics = api.get("/topics")
        assert topics.status_code == 200 and isinstance(topics.json(), list)

    assert {c.action.value for c in prepare().plan(quiet())} == {"no-op"}

    prepare().destroy(quiet(), confirm=lambda _: True)
    apigateway = boto3.client("apigateway", **native_stack.boto3_kwargs())
    assert find_rest_apis(apigateway, f"{uid}-pinterest-api") == []
    assert find_rest_apis(apigateway, native_stack.api_name) == [
        native_stack.stack_state()["api_id"]
    ]
    kinesis = boto3.client("kinesis", **native_stack.boto3_kwargs())
    assert not set(streams) & set(kinesis.list_streams()["StreamNames"])


def test_topics_through_a_kafka_admin_client(native_stack: Settings, tmp_path: Path) -> None:
    from confluent_kafka.admin import AdminClient

    uid = unique_name("k")
    target = base_target(user_id=uid, msk={"cluster_arn": CLUSTER_ARN, "replication_factor": 1})
    admin = msk.KafkaAdminTopics(
        AdminClient({"bootstrap.servers": native_stack.kafka_bootstrap_servers})
    )

    def run(action: str) -> list[str]:
        kafka, stub = stubbed("kafka")
        stub.add_response(
            "get_bootstrap_brokers",
            {"BootstrapBrokerStringSaslIam": BOOTSTRAP},
            {"ClusterArn": CLUSTER_ARN},
        )
        stub.add_response(
            "describe_cluster_v2", cluster(MSK_KAFKA_VERSION), {"ClusterArn": CLUSTER_ARN}
        )
        d = deployment(tmp_path, target, only=["msk"], clients={"kafka": kafka})
        d.ctx.facts["topic_admin"] = admin
        if action == "destroy":
            return [c.action.value for c in d.destroy(quiet(), confirm=lambda _: True)]
        return [c.action.value for c in getattr(d, action)(quiet())]

    assert run("apply") == ["no-op"] + ["create"] * 3
    assert {t for t in admin.partitions() if t.startswith(uid)} == {
        f"{uid}.{t}" for t in ("pin", "geo", "user")
    }
    assert run("plan") == ["no-op"] * 4
    assert run("destroy") == ["delete"] * 3
