"""The REST proxy bundle: the shared properties with the seed's IAM settings, installed by SSM."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY

from aws_deploy.ec2_rest_proxy import PROPERTIES_PATH
from services.core.config_files import parse_properties
from tests.aws_deploy.conftest import (
    ACCOUNT,
    BOOTSTRAP,
    CLUSTER_ARN,
    UID,
    base_target,
    deployment,
    quiet,
    stubbed,
)

pytestmark = pytest.mark.unit

INSTANCE = "i-0123456789abcdef0"
COMMAND_ID = "8f6c2a4e-1b3d-4c5e-9f70-123456789abc"


def kafka_reads() -> Any:
    kafka, stub = stubbed("kafka")
    stub.add_response(
        "get_bootstrap_brokers",
        {"BootstrapBrokerStringSaslIam": BOOTSTRAP},
        {"ClusterArn": CLUSTER_ARN},
    )
    return kafka


def test_bundle_carries_the_iam_settings_and_a_systemd_unit(tmp_path: Path) -> None:
    d = deployment(tmp_path, base_target(), only=["rest_proxy"], clients={"kafka": kafka_reads()})
    changes = d.apply(quiet())
    assert [c.action.value for c in changes] == ["create"]
    folder = Path(changes[0].name)
    props = parse_properties((folder / "kafka-rest.properties").read_text(), folder)
    role = f"arn:aws:iam::{ACCOUNT}:role/{UID}-ec2-access-role"
    assert props["bootstrap.servers"] == BOOTSTRAP
    assert props["listeners"] == "http://0.0.0.0:8082"
    assert props["client.security.protocol"] == "SASL_SSL"
    assert props["client.sasl.mechanism"] == "AWS_MSK_IAM"
    assert props["client.sasl.jaas.config"] == (
        f'software.amazon.msk.auth.iam.IAMLoginModule required awsRoleArn="{role}";'
    )
    assert props["client.sasl.client.callback.handler.class"] == (
        "software.amazon.msk.auth.iam.IAMClientCallbackHandler"
    )
    assert props["producer.acks"] == "all"  # the rest of the shared file travels unchanged
    unit = (folder / "kafka-rest.service").read_text()
    assert f"kafka-rest-start {PROPERTIES_PATH}" in unit and "${" not in unit
    script = (folder / "install-rest-proxy.sh").read_text()
    embedded = re.findall(r'echo "([A-Za-z0-9+/=]+)" \| base64 -d', script)
    assert [base64.b64decode(e).decode() for e in embedded] == [
        (folder / "kafka-rest.properties").read_text(),
        unit,
    ]
    install = d.ctx.outputs["rest_proxy_install"]
    assert install.startswith(f"ssh -i ~/.ssh/{UID}.pem ec2-user@ec2-3-81-0-1")

    again = deployment(
        tmp_path, base_target(), only=["rest_proxy"], clients={"kafka": kafka_reads()}
    )
    assert [c.action.value for c in again.apply(quiet())] == ["no-op"]


def test_ssm_installs_once_and_only_again_when_the_bundle_changes(tmp_path: Path) -> None:
    target = base_target(
        rest_proxy={
            "public_dns": "ec2-3-81-0-1.compute-1.amazonaws.com",
            "ssm_instance_id": INSTANCE,
        }
    )
    ssm, stub = stubbed("ssm")
    stub.add_response(
        "send_command",
        {"Command": {"CommandId": COMMAND_ID}},
        {
            "InstanceIds": [INSTANCE],
            "DocumentName": "AWS-RunShellScript",
            "Comment": ANY,
            "Parameters": {"commands": [ANY]},
        },
    )
    stub.add_client_error("get_command_invocation", service_error_code="InvocationDoesNotExist")
    stub.add_response(
        "get_command_invocation",
        {"Status": "InProgress"},
        {"CommandId": COMMAND_ID, "InstanceId": INSTANCE},
    )
    stub.add_response(
        "get_command_invocation",
        {"Status": "Success"},
        {"CommandId": COMMAND_ID, "InstanceId": INSTANCE},
    )
    d = deployment(
        tmp_path, target, only=["rest_proxy"], clients={"kafka": kafka_reads(), "ssm": ssm}
    )
    assert [c.action.value for c in d.apply(quiet())] == ["create", "create"]
    stub.assert_no_pending_responses()

    ssm, stub = stubbed("ssm")  # nothing queued: any SSM call would fail
    again = deployment(
        tmp_path, target, only=["rest_proxy"], clients={"kafka": kafka_reads(), "ssm": ssm}
    )
    assert [c.action.value for c in again.apply(quiet())] == ["no-op", "no-op"]

    moved = target | {"roles": {"ec2_access_role_arn": f"arn:aws:iam::{ACCOUNT}:role/other"}}
    changed = deployment(tmp_path, moved, only=["rest_proxy"], clients={"kafka": kafka_reads()})
    assert [c.action.value for c in changed.plan(quiet())] == ["update", "update"]
