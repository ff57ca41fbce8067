"""The target settings: one file or the environment, validated up front, no credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aws_deploy.runner import select_steps
from aws_deploy.target import AwsTarget, load_target
from services.core.errors import ConfigError
from services.core.settings import PROJECT_ROOT
from tests.aws_deploy.conftest import CLUSTER_ARN, base_target

pytestmark = pytest.mark.unit


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "aws-target.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_committed_example_is_a_valid_complete_target() -> None:
    target = load_target(PROJECT_ROOT / "aws-target.example.yaml")
    assert target.msk.cluster_arn and target.mwaa.environment and target.databricks.host
    assert len(select_steps(target, (), local=False)) == 9


def test_the_environment_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINPIPE_AWS_REGION", "eu-west-1")
    monkeypatch.setenv("PINPIPE_AWS_MSK_CONNECT__SUBNETS", '["subnet-0123abcd"]')
    target = load_target(write(tmp_path, base_target()))
    assert target.region == "eu-west-1"
    assert target.msk_connect.subnets == ["subnet-0123abcd"]
    assert target.msk.cluster_arn == CLUSTER_ARN


def test_every_problem_is_reported_on_its_own_line(tmp_path: Path) -> None:
    bad = base_target(region="mars", msk={"cluster_arn": "arn:aws:s3:::nope", "bogus": 1})
    with pytest.raises(ConfigError) as err:
        load_target(write(tmp_path, bad))
    lines = str(err.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("aws-target.yaml: region: String should match pattern")
    assert "(or PINPIPE_AWS_REGION)" in lines[0]
    assert any(line.startswith("aws-target.yaml: msk.cluster_arn:") for line in lines)
    assert any("msk.bogus: Extra inputs are not permitted" in line for line in lines)


def test_credentials_in_the_file_are_refused(tmp_path: Path) -> None:
    leaky = base_target(databricks={"host": "https://x.cloud.databricks.com", "token": "x"})
    leaky["aws_secret_access_key"] = "x"
    with pytest.raises(ConfigError) as err:
        load_target(write(tmp_path, leaky))
    assert str(err.value).count("credentials are never read from files") == 2


def test_secret_scope_keys_come_only_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path, base_target(databricks={"host": "https://x", "aws_access": "secret_scope"})
    )
    with pytest.raises(ConfigError, match="PINPIPE_AWS_DATABRICKS__AWS_ACCESS_KEY_ID"):
        load_target(path)
    monkeypatch.setenv("PINPIPE_AWS_DATABRICKS__AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("PINPIPE_AWS_DATABRICKS__AWS_SECRET_ACCESS_KEY", "wJalrEXAMPLE")
    target = load_target(path)
    assert "wJalrEXAMPLE" not in repr(target)
    assert target.databricks.aws_secret_access_key is not None


def test_missing_values_are_listed_per_step_before_any_call() -> None:
    with pytest.raises(ConfigError) as err:
        select_steps(AwsTarget(), (), local=False)
    assert str(err.value).splitlines() == [
        "msk.cluster_arn is required by step msk (or set PINPIPE_AWS_MSK__CLUSTER_ARN)",
        "msk.cluster_arn is required by step msk_connect (or set PINPIPE_AWS_MSK__CLUSTER_ARN)",
        "msk.cluster_arn is required by step rest_proxy (or set PINPIPE_AWS_MSK__CLUSTER_ARN)",
        "rest_proxy.public_dns is required by step rest_proxy (or set PINPIPE_AWS_REST_PROXY__PUBLIC_DNS)",
        "rest_proxy.public_dns is required by step api_gateway (or set PINPIPE_AWS_REST_PROXY__PUBLIC_DNS)",
        "databricks.host is required by step databricks (or set PINPIPE_AWS_DATABRICKS__HOST)",
        "mwaa.environment is required by step mwaa (or set PINPIPE_AWS_MWAA__ENVIRONMENT)",
    ]


def test_step_selection() -> None:
    target = AwsTarget(msk={"cluster_arn": CLUSTER_ARN}, rest_proxy={"public_dns": "ec2-1"})
    assert [s.name for s in select_steps(target, ["msk", "s3"], local=False)] == ["s3", "msk"]
    assert [s.name for s in select_steps(target, (), local=True)] == [
        "s3",
        "iam",
        "kinesis",
        "api_gateway",
    ]
    with pytest.raises(ConfigError, match="unknown step lambda"):
        select_steps(target, ["lambda"], local=False)
    with pytest.raises(ConfigError, match="msk need AWS"):
        select_steps(target, ["msk"], local=True)
