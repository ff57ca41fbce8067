"""The native stack against real services: provisioning, idempotence, clean shutdown."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import psutil
import pytest
from confluent_kafka.admin import AdminClient
from sqlalchemy import inspect

from services.core.errors import PrerequisiteError, ServiceStartError
from services.core.settings import Settings
from services.core.waiting import free_port
from services.source_db.database import SourceDatabase
from services.stack import localstack as localstack_module
from services.stack.kafka_broker import BrokerService
from services.stack.localstack import LocalStackService
from services.stack.native_stack import NativeStack
from services.stack.process import port_open
from tests.contract_values import GEO_SOURCE_COLUMNS, PIN_SOURCE_COLUMNS, USER_SOURCE_COLUMNS

pytestmark = pytest.mark.integration


def test_source_tables_are_seeded_with_the_contract_columns(native_stack: Settings) -> None:
    db = SourceDatabase.connect(native_stack.db)
    assert db.counts() == {"pinterest_data": 2000, "geolocation_data": 2000, "user_data": 2000}
    cols = {t: [c["name"] for c in inspect(db.engine).get_columns(t)] for t in db.counts()}
    assert tuple(cols["pinterest_data"]) == PIN_SOURCE_COLUMNS
    assert tuple(cols["geolocation_data"]) == GEO_SOURCE_COLUMNS
    assert tuple(cols["user_data"]) == USER_SOURCE_COLUMNS
    db.engine.dispose()


def test_topics_bucket_and_streams_exist(native_stack: Settings) -> None:
    topics = AdminClient({"bootstrap.servers": native_stack.kafka_bootstrap_servers}).list_topics(
        timeout=5
    )
    for name in native_stack.topics.values():
        assert name in topics.topics
        assert len(topics.topics[name].partitions) == native_stack.topic_partitions
    s3 = boto3.client("s3", **native_stack.boto3_kwargs())
    assert native_stack.bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    kinesis = boto3.client("kinesis", **native_stack.boto3_kwargs())
    assert set(native_stack.streams.values()) <= set(kinesis.list_streams()["StreamNames"])


def test_stack_up_twice_is_harmless(native_stack: Settings) -> None:
    stack = NativeStack(native_stack)
    before = {s.name: s.pid for s in stack.status()}
    results = stack.up()
    assert all(r.outcome != "started" for r in results)
    assert {s.name: s.pid for s in stack.status()} == before
    assert SourceDatabase.connect(native_stack.db).counts()["pinterest_data"] == 2000


def test_status_json_lists_every_service(native_stack: Settings) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pinpipe.cli", "stack", "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    ).stdout
    payload = json.loads(out)
    services = {s["name"]: s for s in payload["services"]}
    started = [s.name for s in NativeStack(native_stack).services]
    assert {"mysql", "broker", "localstack", "apigateway"} <= set(started) <= set(services)
    for name in started:
        assert services[name]["state"] == "up" and services[name]["endpoint"]
    # every service that is a process of its own reports its pid (apigateway lives in LocalStack)
    assert all(services[name]["pid"] for name in ("mysql", "broker", "localstack"))
    assert services["broker"]["endpoint"] == native_stack.kafka_bootstrap_servers


def _own_stack(tmp_path: Path, native_stack: Settings) -> Settings:
    return Settings(
        user_id="stackdown1",
        state_dir=tmp_path / "state",
        db_creds_file=native_stack.db_creds_file,
        broker_port=free_port(),
        broker_controller_port=free_port(),
        localstack_port=free_port(),
        rest_proxy_port=free_port(),
        seed_posts=100,
    )


def test_stack_down_stops_every_process_and_frees_the_ports(
    tmp_path: Path, native_stack: Settings
) -> None:
    settings = _own_stack(tmp_path, native_stack)
    stack = NativeStack(settings)
    stack.up()
    owned = [s for s in stack.services if s.proc.pid]
    procs = []
    for service in owned:
        p = psutil.Process(service.proc.pid)
        procs += [p, *p.children(recursive=True)]
    assert len(procs) >= 2
    ports = [s.port for s in owned]
    stack.down()
    _, alive = psutil.wait_procs(procs, timeout=5)
    assert alive == []
    assert not any(port_open("127.0.0.1", p) for p in ports)
    assert not list(settings.pids_dir.glob("*.pid"))


def test_failed_service_reports_its_log_and_leaves_nothing_running(
    tmp_path: Path, native_stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_venv = tmp_path / "fake-venv"
    (fake_venv / "bin").mkdir(parents=True)
    script = fake_venv / "bin" / "python"
    script.write_text("#!/bin/sh\necho 'localstack: simulated start-up failure' >&2\nexit 3\n")
    script.chmod(0o755)
    monkeypatch.setattr(localstack_module, "LOCALSTACK_VENV", fake_venv)
    settings = _own_stack(tmp_path, native_stack)
    stack = NativeStack(settings)
    with pytest.raises(ServiceStartError) as err:
        stack.up()
    assert err.value.service == "localstack"
    assert "simulated start-up failure" in err.value.log_tail
    assert BrokerService(settings).proc.pid is None
    assert not port_open("127.0.0.1", settings.broker_port)


def test_port_in_use_is_one_clear_sentence(tmp_path: Path, native_stack: Settings) -> None:
    settings = _own_stack(tmp_path, native_stack)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", settings.broker_port))
        blocker.listen()
        with pytest.raises(
            PrerequisiteError, match=r"Port \d+ .* already in use.*PINPIPE_BROKER_PORT"
        ):
            BrokerService(settings).up()


def test_missing_kafka_jars_say_what_to_do(tmp_path: Path, native_stack: Settings) -> None:
    settings = _own_stack(tmp_path, native_stack).model_copy(update={"jars_dir": tmp_path})
    with pytest.raises(PrerequisiteError, match=r"Kafka 4\.1\.\d+'s jars are not in .*make setup"):
        BrokerService(settings).up()


def test_missing_localstack_venv_says_what_to_do(
    tmp_path: Path, native_stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localstack_module, "LOCALSTACK_VENV", tmp_path / "nowhere")
    with pytest.raises(PrerequisiteError, match="make setup"):
        LocalStackService(_own_stack(tmp_path, native_stack)).up()
