"""MSK topics and bootstrap string, against botocore's Stubber (calls checked on the model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aws_deploy import msk
from services.core.settings import MSK_KAFKA_VERSION
from tests.aws_deploy.conftest import (
    BOOTSTRAP,
    CLUSTER_ARN,
    UID,
    actions,
    base_target,
    deployment,
    quiet,
    stubbed,
)

pytestmark = pytest.mark.unit

TOPICS = [f"{UID}.pin", f"{UID}.geo", f"{UID}.user"]


def topic_actions(changes: list[Any]) -> list[tuple[str, str, str]]:
    return [a for a in actions(changes) if a[0] == "topic"]


def cluster(version: str = "3.6.0") -> dict[str, Any]:
    return {
        "ClusterInfo": {
            "ClusterArn": CLUSTER_ARN,
            "CurrentVersion": "K3AEGXETSR30VB",
            "ClusterType": "PROVISIONED",
            "Provisioned": {
                "BrokerNodeGroupInfo": {
                    "ClientSubnets": ["subnet-0a1b2c3d", "subnet-1a1b2c3d"],
                    "InstanceType": "kafka.m5.large",
                    "SecurityGroups": ["sg-0a1b2c3d"],
                },
                "CurrentBrokerSoftwareInfo": {"KafkaVersion": version},
                "NumberOfBrokerNodes": 3,
            },
        }
    }


def queue_reads(stub: Any, existing: dict[str, int], version: str = "3.6.0") -> None:
    """What plan reads: the bootstrap string, the cluster, the topics."""
    stub.add_response(
        "get_bootstrap_brokers",
        {"BootstrapBrokerStringSaslIam": BOOTSTRAP},
        {"ClusterArn": CLUSTER_ARN},
    )
    stub.add_response("describe_cluster_v2", cluster(version), {"ClusterArn": CLUSTER_ARN})
    stub.add_response(
        "list_topics",
        {
            "Topics": [
                {"TopicName": t, "PartitionCount": n, "ReplicationFactor": 3}
                for t, n in existing.items()
            ]
        },
        {"ClusterArn": CLUSTER_ARN, "TopicNameFilter": UID},
    )


def queue_creates(stub: Any, topics: list[str] | tuple[str, ...]) -> None:
    """The create and describe calls apply makes for each topic it creates."""
    for topic in topics:
        stub.add_response(
            "create_topic",
            {"TopicName": topic, "Status": "CREATING"},
            {
                "ClusterArn": CLUSTER_ARN,
                "TopicName": topic,
                "PartitionCount": 1,
                "ReplicationFactor": 3,
            },
        )
        stub.add_response(
            "describe_topic",
            {"TopicName": topic, "Status": "ACTIVE"},
            {"ClusterArn": CLUSTER_ARN, "TopicName": topic},
        )


def test_apply_creates_three_topics_then_a_second_apply_changes_nothing(tmp_path: Path) -> None:
    kafka, stub = stubbed("kafka")
    queue_reads(stub, {})
    queue_creates(stub, TOPICS)
    first = deployment(tmp_path, base_target(), only=["msk"], clients={"kafka": kafka})
    changes = first.apply(quiet())
    stub.assert_no_pending_responses()
    assert topic_actions(changes) == [("topic", t, "create") for t in TOPICS]
    assert first.ctx.outputs["bootstrap_servers"] == BOOTSTRAP

    # Only reads are queued: any create/update call would fail the Stubber.
    kafka, stub = stubbed("kafka")
    queue_reads(stub, dict.fromkeys(TOPICS, 1))
    second = deployment(tmp_path, base_target(), only=["msk"], clients={"kafka": kafka})
    assert [c.action.value for c in second.apply(quiet())] == ["no-op"] * 4
    stub.assert_no_pending_responses()


def test_partitions_grow_but_never_shrink(tmp_path: Path) -> None:
    kafka, stub = stubbed("kafka")
    queue_reads(stub, {TOPICS[0]: 1, TOPICS[1]: 6, TOPICS[2]: 3})
    target = base_target(msk={"cluster_arn": CLUSTER_ARN, "topic_partitions": 3})
    changes = deployment(tmp_path, target, only=["msk"], clients={"kafka": kafka}).plan(quiet())
    assert [(c.action.value, c.detail) for c in changes if c.kind == "topic"] == [
        ("update", "partitions 1 → 3"),
        ("no-op", "6 partition(s) (partitions never shrink)"),
        ("no-op", "3 partition(s)"),
    ]


def test_older_kafka_uses_an_iam_admin_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka, stub = stubbed("kafka")
    stub.add_response(
        "get_bootstrap_brokers",
        {"BootstrapBrokerStringSaslIam": BOOTSTRAP},
        {"ClusterArn": CLUSTER_ARN},
    )
    stub.add_response("describe_cluster_v2", cluster("2.8.1"), {"ClusterArn": CLUSTER_ARN})
    made: list[tuple[str, str]] = []

    class Admin:
        def partitions(self) -> dict[str, int]:
            return {}

    def with_iam(bootstrap: str, region: str) -> Admin:
        made.append((bootstrap, region))
        return Admin()

    monkeypatch.setattr(msk.KafkaAdminTopics, "with_iam", staticmethod(with_iam))
    changes = deployment(tmp_path, base_target(), only=["msk"], clients={"kafka": kafka}).plan(
        quiet()
    )
    assert made == [(BOOTSTRAP, "us-east-1")]
    assert [c.action.value for c in changes] == ["no-op"] + ["create"] * 3
    assert "2.8.1, not the local runtimes' " in changes[0].detail


def test_a_cluster_without_iam_auth_is_a_clear_error(tmp_path: Path) -> None:
    from services.core.errors import TerminalError

    kafka, stub = stubbed("kafka")
    stub.add_response(
        "get_bootstrap_brokers",
        {"BootstrapBrokerStringTls": "b-1:9094"},
        {"ClusterArn": CLUSTER_ARN},
    )
    with pytest.raises(TerminalError, match="no IAM bootstrap string"):
        deployment(tmp_path, base_target(), only=["msk"], clients={"kafka": kafka}).plan(quiet())


def test_destroy_deletes_only_the_topics_apply_created(tmp_path: Path) -> None:
    kafka, stub = stubbed("kafka")
    queue_reads(stub, {TOPICS[0]: 1})  # the pin topic was there before
    queue_creates(stub, TOPICS[1:])
    deployment(tmp_path, base_target(), only=["msk"], clients={"kafka": kafka}).apply(quiet())

    kafka, stub = stubbed("kafka")
    stub.add_response("describe_cluster_v2", cluster(), {"ClusterArn": CLUSTER_ARN})
    listing = {"Topics": [{"TopicName": t, "PartitionCount": 1} for t in TOPICS]}
    for _ in TOPICS[1:]:
        stub.add_response(
            "list_topics", listing, {"ClusterArn": CLUSTER_ARN, "TopicNameFilter": UID}
        )
    for topic in reversed(TOPICS[1:]):
        stub.add_response(
            "delete_topic",
            {"TopicName": topic, "Status": "DELETING"},
            {"ClusterArn": CLUSTER_ARN, "TopicName": topic},
        )
    gone = deployment(tmp_path, base_target(), only=["msk"], clients={"kafka": kafka})
    changes = gone.destroy(quiet(), confirm=lambda _: True)
    stub.assert_no_pending_responses()
    assert actions(changes) == [("topic", t, "delete") for t in reversed(TOPICS[1:])]
    assert gone.ctx.state.created == []


@pytest.mark.parametrize(
    ("version", "upgrade", "action", "detail"),
    [
        (MSK_KAFKA_VERSION, False, "no-op", f"{MSK_KAFKA_VERSION}, as the local runtimes"),
        ("4.1.x.kraft", True, "no-op", "as the local runtimes"),
        ("3.6.0", False, "no-op", "set msk.upgrade_kafka: true to upgrade"),
        ("3.6.0", True, "update", f"3.6.0 → {MSK_KAFKA_VERSION}"),
    ],
)
def test_plan_checks_the_clusters_kafka_line_and_upgrades_only_when_asked(
    tmp_path: Path, version: str, upgrade: bool, action: str, detail: str
) -> None:
    kafka, stub = stubbed("kafka")
    queue_reads(stub, dict.fromkeys(TOPICS, 1), version)
    target = base_target(msk={"cluster_arn": CLUSTER_ARN, "upgrade_kafka": upgrade})
    d = deployment(tmp_path, target, only=["msk"], clients={"kafka": kafka})
    row = d.plan(quiet())[0]
    assert (row.kind, row.action.value) == ("kafka version", action)
    assert detail in row.detail
    if action == "update":
        stub.add_response(
            "update_cluster_kafka_version",
            {"ClusterArn": CLUSTER_ARN, "ClusterOperationArn": CLUSTER_ARN + "-op"},
            {
                "ClusterArn": CLUSTER_ARN,
                "CurrentVersion": "K3AEGXETSR30VB",
                "TargetKafkaVersion": MSK_KAFKA_VERSION,
            },
        )
        assert "upgrading" in row.execute()
        stub.assert_no_pending_responses()
