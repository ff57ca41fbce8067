"""S3, IAM, Kinesis and API Gateway end to end on moto: plan reads only, apply converges once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from aws_deploy import api_gateway
from services.core.config_files import API_GATEWAY_OPENAPI
from tests.aws_deploy.conftest import UID, actions, base_target, deployment, quiet

pytestmark = pytest.mark.unit

LOCAL_STEPS = ["s3", "iam", "kinesis", "api_gateway"]
READ_ONLY = ("Get", "List", "Describe", "Head")
STREAMS = [f"streaming-{UID}-{t}" for t in ("pin", "geo", "user")]


@pytest.fixture
def moto_readable_openapi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared document, minus path-level ``parameters`` (each method repeats them):
    moto's importer takes every key under a path for a method. LocalStack imports it whole
    (tests/aws_deploy/test_localstack_dry_run.py)."""
    doc = json.loads(API_GATEWAY_OPENAPI.read_text())
    for item in doc["paths"].values():
        item.pop("parameters", None)
    copy = tmp_path / "api-gateway.openapi.json"
    copy.write_text(json.dumps(doc))
    monkeypatch.setattr(api_gateway, "API_GATEWAY_OPENAPI", copy)


def clients(calls: list[str]) -> dict[str, Any]:
    """Real moto-backed clients that note every operation they send."""
    made = {}
    for service in ("s3", "iam", "kinesis", "apigateway", "sts"):
        client = boto3.client(service, region_name="us-east-1")
        client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
        made[service] = client
    return made


def world() -> dict[str, Any]:
    """What exists in the (moto) account."""
    s3 = boto3.client("s3", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "streams": sorted(
            boto3.client("kinesis", region_name="us-east-1").list_streams()["StreamNames"]
        ),
        "apis": sorted(
            a["name"]
            for a in boto3.client("apigateway", region_name="us-east-1").get_rest_apis()["items"]
        ),
    }


@mock_aws
@pytest.mark.usefixtures("moto_readable_openapi")
def test_plan_writes_nothing_apply_converges_and_a_second_apply_only_reads(tmp_path: Path) -> None:
    # The original account's shape: this stream was there before pinpipe.
    boto3.client("kinesis", region_name="us-east-1").create_stream(
        StreamName=STREAMS[1], ShardCount=1
    )
    before = world()
    calls: list[str] = []
    d = deployment(tmp_path, base_target(), only=LOCAL_STEPS, clients=clients(calls))
    planned = d.plan(quiet())
    assert world() == before
    assert not d.ctx.state.path.exists()
    assert all(c.startswith(READ_ONLY) for c in calls), calls
    assert actions(planned) == [
        ("bucket", f"user-{UID}-bucket", "create"),
        ("role", f"{UID}-kinesis-access-role", "create"),
        ("role", f"{UID}-ec2-access-role", "create"),
        ("stream", STREAMS[0], "create"),
        ("stream", STREAMS[1], "no-op"),
        ("stream", STREAMS[2], "create"),
        ("rest api", f"{UID}-pinterest-api (stage test)", "create"),
    ]

    d.apply(quiet())
    after = world()
    assert f"user-{UID}-bucket" in after["buckets"] and set(STREAMS) <= set(after["streams"])
    assert after["roles"] == [f"{UID}-ec2-access-role", f"{UID}-kinesis-access-role"]
    assert after["apis"] == [f"{UID}-pinterest-api"]

    calls.clear()
    again = deployment(tmp_path, base_target(), only=LOCAL_STEPS, clients=clients(calls))
    assert {c.action.value for c in again.apply(quiet())} == {"no-op"}
    assert calls and all(c.startswith(READ_ONLY) for c in calls), calls
    assert world() == after


@mock_aws
@pytest.mark.usefixtures("moto_readable_openapi")
def test_a_moved_proxy_repoints_the_stage_without_redeploying(tmp_path: Path) -> None:
    deployment(tmp_path, base_target(), only=["api_gateway"]).apply(quiet())
    moved = base_target(rest_proxy={"public_dns": "ec2-3-81-9-9.compute-1.amazonaws.com"})
    calls: list[str] = []
    changes = deployment(tmp_path, moved, only=["api_gateway"], clients=clients(calls)).apply(
        quiet()
    )
    assert changes[0].action.value == "update" and "proxyHost" in changes[0].detail
    assert "CreateDeployment" not in calls and "UpdateStage" in calls
    api = boto3.client("apigateway", region_name="us-east-1")
    api_id = api.get_rest_apis()["items"][0]["id"]
    variables = api.get_stage(restApiId=api_id, stageName="test")["variables"]
    assert variables == {"proxyHost": "ec2-3-81-9-9.compute-1.amazonaws.com:8082"}


@mock_aws
@pytest.mark.usefixtures("moto_readable_openapi")
def test_destroy_removes_what_apply_created_and_nothing_else(tmp_path: Path) -> None:
    kinesis = boto3.client("kinesis", region_name="us-east-1")
    kinesis.create_stream(StreamName=STREAMS[0], ShardCount=1)
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=f"user-{UID}-bucket")
    deployment(tmp_path, base_target(), only=LOCAL_STEPS).apply(quiet())
    d = deployment(tmp_path, base_target(), only=LOCAL_STEPS)
    changes = d.destroy(quiet(), confirm=lambda _: True)
    assert sorted(actions(changes)) == sorted(
        [
            ("rest api", changes[0].name, "delete"),
            ("stream", STREAMS[2], "delete"),
            ("stream", STREAMS[1], "delete"),
            ("role", f"{UID}-kinesis-access-role", "delete"),
            ("role", f"{UID}-ec2-access-role", "delete"),
        ]
    )
    left = world()
    assert left["streams"] == [STREAMS[0]]
    assert left["buckets"] == [f"user-{UID}-bucket"] and left["apis"] == [] and left["roles"] == []
    assert d.ctx.state.created == []


@mock_aws
def test_the_cli_plans_from_the_target_file(tmp_path: Path) -> None:
    import yaml

    from pinpipe.cli import app

    target = tmp_path / "aws-target.yaml"
    target.write_text(yaml.safe_dump(base_target()))
    result = CliRunner().invoke(
        app, ["deploy", "plan", "--target", str(target), "--only", "kinesis", "--only", "s3"]
    )
    assert result.exit_code == 0, result.output
    assert f"+ stream streaming-{UID}-pin" in result.output
    assert (
        "Plan: 4 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged." in result.output
    )
    assert world()["streams"] == []
