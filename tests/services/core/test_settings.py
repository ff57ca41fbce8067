"""Settings: every derived name, endpoints per runtime, and credentials errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.errors import ConfigError
from services.core.settings import Settings, load_db_credentials

pytestmark = pytest.mark.unit


def test_every_name_derives_from_the_user_id() -> None:
    s = Settings(user_id="0a1b2c3d4e5f")
    assert s.topics == {
        "pin": "0a1b2c3d4e5f.pin",
        "geo": "0a1b2c3d4e5f.geo",
        "user": "0a1b2c3d4e5f.user",
    }
    assert s.topics_regex == r"0a1b2c3d4e5f\..*"
    assert s.topics_glob == "0a1b2c3d4e5f.*"
    assert s.bucket == "user-0a1b2c3d4e5f-bucket"
    assert s.streams == {
        "pin": "streaming-0a1b2c3d4e5f-pin",
        "geo": "streaming-0a1b2c3d4e5f-geo",
        "user": "streaming-0a1b2c3d4e5f-user",
    }
    assert s.delta_tables == {
        "pin": "0a1b2c3d4e5f_pin_table",
        "geo": "0a1b2c3d4e5f_geo_table",
        "user": "0a1b2c3d4e5f_user_table",
    }
    assert s.msk_plugin_name == "0a1b2c3d4e5f-plugin"
    assert s.connector_name == "0a1b2c3d4e5f-connector"
    assert s.ec2_access_role == "0a1b2c3d4e5f-ec2-access-role"
    assert s.kinesis_access_role == "0a1b2c3d4e5f-kinesis-access-role"
    assert s.dag_id == "0a1b2c3d4e5f_dag"
    assert s.dag_file == "0a1b2c3d4e5f_dag.py"


def test_user_id_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINPIPE_USER_ID", "feedbeef0001")
    assert Settings().bucket == "user-feedbeef0001-bucket"


def test_user_id_must_fit_a_bucket_name() -> None:
    with pytest.raises(ValueError, match="user id"):
        Settings(user_id="Not_Valid!")


def test_local_runtimes_point_at_local_services_and_aws_at_none() -> None:
    native = Settings(runtime="native", localstack_port=4999, broker_port=19999)
    assert native.aws_endpoint_url == "http://127.0.0.1:4999"
    assert native.kafka_bootstrap_servers == "127.0.0.1:19999"
    assert native.boto3_kwargs()["endpoint_url"] == "http://127.0.0.1:4999"
    aws = Settings(runtime="aws")
    assert aws.aws_endpoint_url is None
    assert "endpoint_url" not in aws.boto3_kwargs()


def test_explicit_endpoints_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINPIPE_AWS_ENDPOINT_URL", "http://localstack:4566")
    monkeypatch.setenv("PINPIPE_KAFKA_BOOTSTRAP_SERVERS", "broker:19092")
    s = Settings()
    assert s.aws_endpoint_url == "http://localstack:4566"
    assert s.kafka_bootstrap_servers == "broker:19092"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "db_creds.yaml"
    path.write_text(text)
    return path


def test_credentials_file_with_the_original_keys(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "HOST: db.example\nUSER: u\nPASSWORD: s3cr3t-value\nDATABASE: pinterest_data\nPORT: 3307\n",
    )
    creds = load_db_credentials(path, environ={})
    assert (creds.HOST, creds.USER, creds.PASSWORD, creds.DATABASE, creds.PORT) == (
        "db.example",
        "u",
        "s3cr3t-value",
        "pinterest_data",
        3307,
    )
    assert "s3cr3t-value" not in repr(creds)


def test_missing_file_falls_back_to_environment(tmp_path: Path) -> None:
    env = {"PINPIPE_DB_HOST": "h", "PINPIPE_DB_USER": "u", "PINPIPE_DB_PASSWORD": "p"}
    creds = load_db_credentials(tmp_path / "absent.yaml", environ=env)
    assert (creds.HOST, creds.DATABASE, creds.PORT) == ("h", "pinterest_data", 3306)


def test_missing_file_and_environment_names_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_db_credentials(tmp_path / "db_creds.yaml", environ={})
    msg = str(err.value)
    assert "db_creds.yaml" in msg and "HOST" in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("HOST: h\nUSER: u\n", "PASSWORD"),
        ("HOST: h\nUSER: u\nPASSWORD: p\nPORT: not-a-port\n", "PORT"),
        ("HOST: h\nUSER: u\nPASSWORD: p\nPASWORD: typo\n", "PASWORD"),
        ("HOST: [unclosed\n", "line"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_malformed_file_names_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_db_credentials(path, environ={})
    msg = str(err.value)
    assert str(path) in msg and key in msg and "\n" not in msg


def test_cli_reports_credentials_error_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from pinpipe.cli import app
    from services.core.settings import get_settings

    path = _write(tmp_path, "HOST: h\nUSER: u\n")
    monkeypatch.setenv("PINPIPE_DB_CREDS_FILE", str(path))
    for key in ("PINPIPE_DB_PASSWORD",):
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "profile"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "PASSWORD" in lines[0] and "Traceback" not in result.output
