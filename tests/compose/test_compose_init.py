"""The compose init steps' own logic: rendering, connector registration, argument handling."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tenacity import wait_none

from services.core.config_files import load_properties
from services.core.errors import TerminalError
from services.core.settings import Settings
from services.s3_sink.rebuild import Rewind
from services.stack.compose_init import (
    ConnectRebalancing,
    connect_offsets,
    connector_config,
    connector_running,
    parse_args,
    placeholder_values,
    put_connector,
    render_kafka_rest,
    rewind_connector,
)

pytestmark = pytest.mark.unit

COMPOSE = Settings(
    user_id="c0mp0se",
    runtime="compose",
    kafka_bootstrap_servers="broker:19092",
    aws_endpoint_url="http://localstack:4566",
)


def test_an_environment_variable_named_like_a_placeholder_wins() -> None:
    values = placeholder_values(COMPOSE, {"REST_PROXY_LISTENER": "http://0.0.0.0:8082"})
    assert values["REST_PROXY_LISTENER"] == "http://0.0.0.0:8082"
    assert values["KAFKA_BOOTSTRAP_SERVERS"] == "broker:19092"
    # Unrelated variables are not placeholders.
    assert "PATH" not in placeholder_values(COMPOSE, {"PATH": "/bin"})


def test_the_rendered_rest_proxy_file_is_complete_properties(tmp_path: Path) -> None:
    path = render_kafka_rest(
        COMPOSE,
        {"REST_PROXY_LISTENER": "http://0.0.0.0:8082", "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
        tmp_path / "out",
    )
    text = path.read_text()
    assert "${" not in text
    props = load_properties(path, {})
    assert props["listeners"] == "http://0.0.0.0:8082"
    assert props["bootstrap.servers"] == "broker:19092"
    assert props["producer.acks"] == "all" and props["producer.enable.idempotence"] == "true"
    # Empty MSK-only keys are left out, not written empty.
    assert not any(k.startswith("client.sasl") for k in props)


def test_the_connector_config_is_the_shared_file_for_this_user() -> None:
    config = connector_config(COMPOSE, {})
    assert config["name"] == "c0mp0se-connector"
    assert config["topics.regex"] == r"c0mp0se\..*"
    assert config["s3.bucket.name"] == "user-c0mp0se-bucket"
    assert config["store.url"] == "http://localstack:4566"
    assert all(isinstance(v, str) for v in config.values())  # Connect takes strings only


def connect_client(handler) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(base_url="http://connect", transport=httpx.MockTransport(handler))


def test_registration_is_a_put_of_the_config_retried_while_connect_rebalances() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(409, json={"error_code": 409, "message": "rebalance"})
        return httpx.Response(201, json={"name": "c0mp0se-connector", "config": {}})

    config = connector_config(COMPOSE, {})
    with connect_client(handler) as client:
        put_connector.retry_with(wait=wait_none())(client, config)  # type: ignore[attr-defined]
    assert [c.method for c in calls] == ["PUT", "PUT"]
    assert calls[-1].url.path == "/connectors/c0mp0se-connector/config"
    assert json.loads(calls[-1].content) == config


def test_a_config_connect_refuses_is_a_terminal_error_with_its_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": "Connector configuration is invalid"})

    with connect_client(handler) as client, pytest.raises(TerminalError, match="invalid"):
        put_connector(client, {"name": "x"})


def test_rebalancing_is_transient() -> None:
    assert not issubclass(ConnectRebalancing, TerminalError)


@pytest.mark.parametrize(
    ("status", "running"),
    [
        ({"connector": {"state": "RUNNING"}, "tasks": [{"state": "RUNNING"}]}, True),
        ({"connector": {"state": "RUNNING"}, "tasks": []}, False),
        ({"connector": {"state": "UNASSIGNED"}, "tasks": [{"state": "RUNNING"}]}, False),
    ],
)
def test_running_means_the_connector_and_all_its_tasks(status: dict, running: bool) -> None:
    with connect_client(lambda r: httpx.Response(200, json=status)) as client:
        assert connector_running(client, "x") is running


def test_a_failed_task_stops_the_wait_with_its_trace() -> None:
    status = {
        "connector": {"state": "RUNNING"},
        "tasks": [{"state": "FAILED", "trace": "Non-existent S3 bucket"}],
    }
    with (
        connect_client(lambda r: httpx.Response(200, json=status)) as client,
        pytest.raises(TerminalError, match="Non-existent S3 bucket"),
    ):
        connector_running(client, "x")


def test_all_runs_every_step_and_unknown_steps_are_refused() -> None:
    assert parse_args(["all"]).steps == ["all"]
    assert parse_args(["topics", "--proxy-host=rest-proxy:8082"]).proxy_host == "rest-proxy:8082"
    with pytest.raises(SystemExit):
        parse_args(["nonsense"])


def test_offsets_are_read_from_connects_api_and_a_missing_connector_has_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/connectors/new/offsets":
            return httpx.Response(404, json={"error_code": 404, "message": "not found"})
        offsets = [
            {
                "partition": {"kafka_topic": "u.pin", "kafka_partition": 0},
                "offset": {"kafka_offset": 7},
            }
        ]
        return httpx.Response(200, json={"offsets": offsets})

    with connect_client(handler) as client:
        assert connect_offsets(client, "c0mp0se-connector") == {("u.pin", 0): 7}
        assert connect_offsets(client, "new") == {}


def test_a_rewind_stops_the_connector_patches_its_offsets_and_resumes_it() -> None:
    calls: list[tuple[str, str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        calls.append((request.method, request.url.path, body))
        if request.url.path.endswith("/status"):
            return httpx.Response(200, json={"connector": {"state": "STOPPED"}, "tasks": []})
        return httpx.Response(200, json={})

    with connect_client(handler) as client:
        rewind_connector(client, "c", [Rewind("u.geo", 0, 9, 0), Rewind("u.pin", 1, 6, 4)])
    assert [(m, p) for m, p, _ in calls] == [
        ("PUT", "/connectors/c/stop"),
        ("GET", "/connectors/c/status"),
        ("PATCH", "/connectors/c/offsets"),
        ("PUT", "/connectors/c/resume"),
    ]
    assert calls[2][2] == {
        "offsets": [
            {
                "partition": {"kafka_topic": "u.geo", "kafka_partition": 0},
                "offset": {"kafka_offset": 0},
            },
            {
                "partition": {"kafka_topic": "u.pin", "kafka_partition": 1},
                "offset": {"kafka_offset": 4},
            },
        ]
    }
