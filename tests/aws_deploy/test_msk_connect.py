"""MSK Connect: Stubber for kafka/kafkaconnect, moto for the plugin zip in S3."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY
from moto import mock_aws

from aws_deploy.msk_connect import CLUSTER_SPECIFIC_KEYS
from services.core.config_files import (
    S3_SINK_CONNECTOR_PROPERTIES,
    load_properties,
    template_values,
)
from services.core.errors import TerminalError
from services.core.settings import Settings
from tests.aws_deploy.conftest import (
    ACCOUNT,
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

BUCKET = f"user-{UID}-bucket"
PLUGIN_KEY = "kafka-connect-s3/confluentinc-kafka-connect-s3-10.5.13.zip"
PLUGIN_ARN = f"arn:aws:kafkaconnect:us-east-1:{ACCOUNT}:custom-plugin/{UID}-plugin/aaaa-1"
CONNECTOR_ARN = f"arn:aws:kafkaconnect:us-east-1:{ACCOUNT}:connector/{UID}-connector/bbbb-2"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{UID}-ec2-access-role"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def local_runtime_config() -> dict[str, str]:
    """The connector file exactly as the native runtime renders it."""
    native = Settings(runtime="native", user_id=UID)
    return load_properties(S3_SINK_CONNECTOR_PROPERTIES, template_values(native))


def expected_config(region: str = "us-east-1") -> dict[str, str]:
    """The local file with only the documented cluster-specific keys changed."""
    config = {k: v for k, v in local_runtime_config().items() if k not in CLUSTER_SPECIFIC_KEYS}
    return config | {"s3.region": region, "s3.bucket.name": BUCKET}


def connector_spec(config: dict[str, str]) -> dict[str, Any]:
    return {
        "connectorName": f"{UID}-connector",
        "connectorDescription": ANY,
        "capacity": {"provisionedCapacity": {"mcuCount": 1, "workerCount": 1}},
        "connectorConfiguration": config,
        "kafkaCluster": {
            "apacheKafkaCluster": {
                "bootstrapServers": BOOTSTRAP,
                "vpc": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"]},
            }
        },
        "kafkaClusterClientAuthentication": {"authenticationType": "IAM"},
        "kafkaClusterEncryptionInTransit": {"encryptionType": "TLS"},
        "kafkaConnectVersion": "2.7.1",
        "plugins": [{"customPlugin": {"customPluginArn": PLUGIN_ARN, "revision": 1}}],
        "serviceExecutionRoleArn": ROLE_ARN,
    }


def described(config: dict[str, str], state: str = "RUNNING") -> dict[str, Any]:
    spec = connector_spec(config)
    del spec["connectorDescription"]
    return spec | {"connectorArn": CONNECTOR_ARN, "connectorState": state, "currentVersion": "v1"}


def listed_connector() -> dict[str, Any]:
    return {
        "connectors": [
            {
                "connectorName": f"{UID}-connector",
                "connectorArn": CONNECTOR_ARN,
                "currentVersion": "v1",
            }
        ]
    }


def listed_plugin() -> dict[str, Any]:
    return {
        "customPlugins": [
            {
                "name": f"{UID}-plugin",
                "customPluginArn": PLUGIN_ARN,
                "customPluginState": "ACTIVE",
                "latestRevision": {"revision": 1},
            }
        ]
    }


@pytest.fixture
def plugin_zip(tmp_path: Path) -> Path:
    path = tmp_path / "confluentinc-kafka-connect-s3-10.5.13.zip"
    path.write_bytes(b"PK\x03\x04 not really a connector")
    return path


def kafka_reads() -> Any:
    kafka, stub = stubbed("kafka")
    stub.add_response(
        "get_bootstrap_brokers",
        {"BootstrapBrokerStringSaslIam": BOOTSTRAP},
        {"ClusterArn": CLUSTER_ARN},
    )
    return kafka


def test_the_configuration_sent_is_the_local_file_but_for_documented_keys() -> None:
    local, sent = local_runtime_config(), expected_config()
    differing = {k for k in set(local) | set(sent) if local.get(k) != sent.get(k)}
    assert differing <= set(CLUSTER_SPECIFIC_KEYS)
    assert "store.url" not in sent and "name" not in sent
    assert sent["topics.regex"] == rf"{UID}\..*" and sent["connector.class"].endswith(
        "S3SinkConnector"
    )


@mock_aws
def test_apply_uploads_creates_and_waits_then_changes_nothing(
    tmp_path: Path, plugin_zip: Path
) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    target = base_target(
        msk_connect={
            "plugin_source": str(plugin_zip),
            "subnets": ["subnet-0a1b2c3d"],
            "security_groups": ["sg-0a1b2c3d"],
        }
    )
    kc, stub = stubbed("kafkaconnect")
    stub.add_response("list_custom_plugins", {"customPlugins": []}, {"namePrefix": f"{UID}-plugin"})
    stub.add_response(
        "list_connectors", {"connectors": []}, {"connectorNamePrefix": f"{UID}-connector"}
    )
    stub.add_response(
        "create_custom_plugin",
        {"customPluginArn": PLUGIN_ARN, "customPluginState": "CREATING", "revision": 1},
        {
            "name": f"{UID}-plugin",
            "contentType": "ZIP",
            "description": ANY,
            "location": {
                "s3Location": {"bucketArn": f"arn:aws:s3:::{BUCKET}", "fileKey": PLUGIN_KEY}
            },
        },
    )
    for state in ("CREATING", "ACTIVE"):
        stub.add_response(
            "describe_custom_plugin", {"customPluginState": state}, {"customPluginArn": PLUGIN_ARN}
        )
    stub.add_response(
        "create_connector",
        {"connectorArn": CONNECTOR_ARN, "connectorState": "CREATING"},
        connector_spec(expected_config()),
    )
    for state in ("CREATING", "RUNNING"):
        stub.add_response(
            "describe_connector",
            described(expected_config(), state),
            {"connectorArn": CONNECTOR_ARN},
        )
    first = deployment(
        tmp_path, target, only=["msk_connect"], clients={"kafka": kafka_reads(), "kafkaconnect": kc}
    )
    changes = first.apply(quiet())
    stub.assert_no_pending_responses()
    assert [c.action.value for c in changes] == ["create", "create", "create"]
    zip_object = boto3.client("s3", region_name="us-east-1").get_object(
        Bucket=BUCKET, Key=PLUGIN_KEY
    )
    assert zip_object["Body"].read() == plugin_zip.read_bytes()

    kc, stub = stubbed("kafkaconnect")
    stub.add_response("list_custom_plugins", listed_plugin(), {"namePrefix": f"{UID}-plugin"})
    stub.add_response(
        "list_connectors", listed_connector(), {"connectorNamePrefix": f"{UID}-connector"}
    )
    stub.add_response(
        "describe_connector", described(expected_config()), {"connectorArn": CONNECTOR_ARN}
    )
    second = deployment(
        tmp_path, target, only=["msk_connect"], clients={"kafka": kafka_reads(), "kafkaconnect": kc}
    )
    assert actions(second.apply(quiet())) == [
        ("plugin zip", f"s3://{BUCKET}/{PLUGIN_KEY}", "no-op"),
        ("custom plugin", f"{UID}-plugin", "no-op"),
        ("connector", f"{UID}-connector", "no-op"),
    ]
    stub.assert_no_pending_responses()


@mock_aws
def test_a_drifted_configuration_is_updated_in_place(tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=PLUGIN_KEY, Body=b"zip")
    drifted = expected_config() | {"flush.size": "1000"}
    kc, stub = stubbed("kafkaconnect")
    stub.add_response("list_custom_plugins", listed_plugin(), {"namePrefix": f"{UID}-plugin"})
    stub.add_response(
        "list_connectors", listed_connector(), {"connectorNamePrefix": f"{UID}-connector"}
    )
    stub.add_response("describe_connector", described(drifted), {"connectorArn": CONNECTOR_ARN})
    stub.add_response("describe_connector", described(drifted), {"connectorArn": CONNECTOR_ARN})
    stub.add_response(
        "update_connector",
        {"connectorArn": CONNECTOR_ARN, "connectorState": "UPDATING"},
        {
            "connectorArn": CONNECTOR_ARN,
            "currentVersion": "v1",
            "connectorConfiguration": expected_config(),
        },
    )
    stub.add_response(
        "describe_connector", described(expected_config()), {"connectorArn": CONNECTOR_ARN}
    )
    changes = deployment(
        tmp_path,
        base_target(),
        only=["msk_connect"],
        clients={"kafka": kafka_reads(), "kafkaconnect": kc},
    ).apply(quiet())
    stub.assert_no_pending_responses()
    assert (changes[-1].action.value, changes[-1].detail) == ("update", "config flush.size")


@mock_aws
def test_a_connector_pinpipe_did_not_create_is_never_replaced(tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=PLUGIN_KEY, Body=b"zip")
    elsewhere = described(expected_config())
    elsewhere["kafkaCluster"]["apacheKafkaCluster"]["vpc"]["subnets"] = ["subnet-99999999"]
    kc, stub = stubbed("kafkaconnect")
    stub.add_response("list_custom_plugins", listed_plugin(), {"namePrefix": f"{UID}-plugin"})
    stub.add_response(
        "list_connectors", listed_connector(), {"connectorNamePrefix": f"{UID}-connector"}
    )
    stub.add_response("describe_connector", elsewhere, {"connectorArn": CONNECTOR_ARN})
    with pytest.raises(TerminalError, match="not created by pinpipe and differs in subnets"):
        deployment(
            tmp_path,
            base_target(),
            only=["msk_connect"],
            clients={"kafka": kafka_reads(), "kafkaconnect": kc},
        ).plan(quiet())
