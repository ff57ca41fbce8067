"""MSK: the three topics on the IAM-authenticated cluster, and its IAM bootstrap string.

Topics go through MSK's topic API where the cluster supports it (provisioned, Kafka >=
3.6.0), which needs no network path to the brokers; otherwise through a Kafka admin client
authenticating with IAM (OAUTHBEARER tokens from ``aws-msk-iam-sasl-signer``), which must
run inside the cluster's VPC. The idempotence key is the topic name; partitions only grow.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from botocore.exceptions import ClientError

from aws_deploy.context import DeployContext, Step, gone
from aws_deploy.plan import Action, Change, noop
from aws_deploy.state import Record
from services.core.errors import TerminalError
from services.core.settings import KAFKA_VERSION, MSK_KAFKA_VERSION

NAME = "msk"
TOPIC_API_MIN_VERSION = (3, 6)
TOPIC_ACTIVE_TIMEOUT = 300.0


class TopicAdmin(Protocol):
    """What the step needs from whichever way topics are managed."""

    def partitions(self) -> dict[str, int]:
        """Partition count of every topic visible."""
        ...

    def create(self, topic: str, partitions: int, replication: int) -> None: ...

    def add_partitions(self, topic: str, total: int) -> None: ...

    def delete(self, topic: str) -> None: ...


class MskTopicApi:
    """Topics through the MSK control plane (``kafka:CreateTopic`` and friends)."""

    def __init__(self, ctx: DeployContext, cluster_arn: str) -> None:
        self._ctx = ctx
        self._kafka = ctx.clients("kafka")
        self._cluster = cluster_arn

    def partitions(self) -> dict[str, int]:
        out: dict[str, int] = {}
        token: dict[str, str] = {}
        while True:
            page = self._kafka.list_topics(
                ClusterArn=self._cluster, TopicNameFilter=self._ctx.settings.user_id, **token
            )
            out |= {t["TopicName"]: t["PartitionCount"] for t in page.get("Topics", [])}
            if not page.get("NextToken"):
                return out
            token = {"NextToken": page["NextToken"]}

    def _status(self, topic: str) -> str | None:
        try:
            status = self._kafka.describe_topic(ClusterArn=self._cluster, TopicName=topic)["Status"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NotFoundException":
                return None
            raise
        return str(status)

    def _wait_active(self, topic: str) -> None:
        # Changes take about a minute to show; waiting keeps a second apply a no-op.
        self._ctx.wait_until(
            f"topic {topic} to become ACTIVE",
            lambda: True if self._status(topic) == "ACTIVE" else None,
            TOPIC_ACTIVE_TIMEOUT,
        )

    def create(self, topic: str, partitions: int, replication: int) -> None:
        self._kafka.create_topic(
            ClusterArn=self._cluster,
            TopicName=topic,
            PartitionCount=partitions,
            ReplicationFactor=replication,
        )
        self._wait_active(topic)

    def add_partitions(self, topic: str, total: int) -> None:
        self._kafka.update_topic(ClusterArn=self._cluster, TopicName=topic, PartitionCount=total)
        self._wait_active(topic)

    def delete(self, topic: str) -> None:
        self._kafka.delete_topic(ClusterArn=self._cluster, TopicName=topic)


class KafkaAdminTopics:
    """Topics through a Kafka admin client (any cluster the caller can reach)."""

    def __init__(self, admin: Any) -> None:
        self._admin = admin

    @classmethod
    def with_iam(cls, bootstrap: str, region: str) -> KafkaAdminTopics:
        """An admin client that signs in to MSK with the caller's IAM credentials."""
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
        from confluent_kafka.admin import AdminClient

        def oauth_cb(_config: str) -> tuple[str, float]:
            token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
            return token, expiry_ms / 1000

        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
            "oauth_cb": oauth_cb,
        }
        return cls(AdminClient(config))

    def partitions(self) -> dict[str, int]:
        # All topics, not a metadata request for one: that may auto-create it.
        meta = self._admin.list_topics(timeout=30)
        return {name: len(t.partitions) for name, t in meta.topics.items() if t.error is None}

    def create(self, topic: str, partitions: int, replication: int) -> None:
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic

        future = self._admin.create_topics([NewTopic(topic, partitions, replication)])[topic]
        try:
            future.result(timeout=60)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TerminalError(f"creating topic {topic}: {exc}") from exc

    def add_partitions(self, topic: str, total: int) -> None:
        from confluent_kafka.admin import NewPartitions

        self._admin.create_partitions([NewPartitions(topic, total)])[topic].result(timeout=60)

    def delete(self, topic: str) -> None:
        self._admin.delete_topics([topic])[topic].result(timeout=60)


def _version(kafka_version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", kafka_version)[:2])


def cluster_info(ctx: DeployContext) -> dict[str, Any]:
    """``DescribeClusterV2`` of the target cluster, read once per run."""
    if "cluster" not in ctx.facts:
        arn = ctx.target.msk.cluster_arn
        ctx.facts["cluster"] = ctx.clients("kafka").describe_cluster_v2(ClusterArn=arn)[
            "ClusterInfo"
        ]
    return dict(ctx.facts["cluster"])


def bootstrap_servers(ctx: DeployContext) -> str:
    """The IAM (port 9098) bootstrap string the connector and the REST proxy use."""
    if "bootstrap_servers" not in ctx.outputs:
        brokers = ctx.clients("kafka").get_bootstrap_brokers(ClusterArn=ctx.target.msk.cluster_arn)
        iam = brokers.get("BootstrapBrokerStringSaslIam")
        if not iam:
            raise TerminalError(
                f"{ctx.target.msk.cluster_arn} has no IAM bootstrap string: "
                "turn on IAM access control for the cluster"
            )
        ctx.outputs["bootstrap_servers"] = iam
    return ctx.outputs["bootstrap_servers"]


def topic_admin(ctx: DeployContext) -> TopicAdmin:
    """The topic API where the cluster supports it, else an IAM admin client."""
    if "topic_admin" not in ctx.facts:
        want = ctx.target.msk.topic_management
        arn = str(ctx.target.msk.cluster_arn)
        if want == "auto":
            provisioned = cluster_info(ctx).get("Provisioned")
            version = (provisioned or {}).get("CurrentBrokerSoftwareInfo", {}).get("KafkaVersion")
            supported = bool(version) and _version(version) >= TOPIC_API_MIN_VERSION
            want = "api" if supported else "admin-client"
        ctx.facts["topic_admin"] = (
            MskTopicApi(ctx, arn)
            if want == "api"
            else KafkaAdminTopics.with_iam(bootstrap_servers(ctx), ctx.settings.aws_region)
        )
    admin: TopicAdmin = ctx.facts["topic_admin"]
    return admin


def version_change(ctx: DeployContext) -> Change:
    """The cluster's Kafka line against the local runtimes' (MSK_KAFKA_VERSION)."""
    info = cluster_info(ctx)
    # arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>
    name = str(info.get("ClusterName") or str(ctx.target.msk.cluster_arn).split("/")[1])
    provisioned = info.get("Provisioned")
    if not provisioned:
        return noop(NAME, "kafka version", name, "serverless: MSK chooses the version")
    have = provisioned.get("CurrentBrokerSoftwareInfo", {}).get("KafkaVersion", "")
    if _version(have) == _version(MSK_KAFKA_VERSION):
        return noop(NAME, "kafka version", name, f"{have}, as the local runtimes ({KAFKA_VERSION})")
    if not ctx.target.msk.upgrade_kafka:
        return noop(
            NAME,
            "kafka version",
            name,
            f"{have}, not the local runtimes' {KAFKA_VERSION}: the pipeline works with it; "
            f"set msk.upgrade_kafka: true to upgrade to {MSK_KAFKA_VERSION}",
        )

    def upgrade() -> str:
        ctx.clients("kafka").update_cluster_kafka_version(
            ClusterArn=ctx.target.msk.cluster_arn,
            CurrentVersion=info["CurrentVersion"],
            TargetKafkaVersion=MSK_KAFKA_VERSION,
        )
        return f"upgrading to {MSK_KAFKA_VERSION} (MSK takes 30 minutes or more)"

    detail = f"{have} → {MSK_KAFKA_VERSION}"
    return Change(NAME, "kafka version", name, Action.UPDATE, detail, upgrade)


def plan(ctx: DeployContext) -> list[Change]:
    """The cluster's Kafka version, then one change per topic; the bootstrap string is an output."""
    bootstrap_servers(ctx)
    changes = [version_change(ctx)]
    admin = topic_admin(ctx)
    want = ctx.target.msk
    existing = admin.partitions()
    for topic in ctx.settings.topics.values():
        have = existing.get(topic)
        if have is None:

            def create(topic: str = topic) -> str:
                admin.create(topic, want.topic_partitions, want.replication_factor)
                ctx.state.record(NAME, "topic", topic)
                return "created"

            detail = f"{want.topic_partitions} partition(s), {want.replication_factor} replicas"
            changes.append(Change(NAME, "topic", topic, Action.CREATE, detail, create))
        elif have < want.topic_partitions:

            def grow(topic: str = topic) -> str:
                admin.add_partitions(topic, want.topic_partitions)
                return f"{want.topic_partitions} partitions"

            detail = f"partitions {have} → {want.topic_partitions}"
            changes.append(Change(NAME, "topic", topic, Action.UPDATE, detail, grow))
        else:
            shrink = " (partitions never shrink)" if have > want.topic_partitions else ""
            changes.append(noop(NAME, "topic", topic, f"{have} partition(s){shrink}"))
    return changes


def destroy(ctx: DeployContext, record: Record) -> Change:
    """Delete a topic ``apply`` created."""
    admin = topic_admin(ctx)
    if record.id not in admin.partitions():
        return gone(ctx, record, "topic", record.id)

    def delete() -> str:
        admin.delete(record.id)
        ctx.state.forget(record)
        return "deleted"

    return Change(NAME, "topic", record.id, Action.DELETE, "", delete)


STEP = Step(NAME, "the three topics and the bootstrap string", ("msk.cluster_arn",), plan, destroy)
