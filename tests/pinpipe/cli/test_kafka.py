"""Kafka's own tools through `pinpipe kafka ...`, against the stack's broker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.core.settings import Settings
from services.stack.kafka_jars import TOOLS, tool_command
from tests.conftest import unique_name
from tests.services.rest_proxy.conftest import create_topic

pytestmark = pytest.mark.integration


def pinpipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pinpipe.cli", "kafka", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_kafka_topics_lists_and_describes_the_stacks_topics(native_stack: Settings) -> None:
    listed = pinpipe("topics", "--list")
    assert listed.returncode == 0, listed.stderr
    assert set(native_stack.topics.values()) <= set(listed.stdout.split())
    described = pinpipe("topics", "--describe", "--topic", native_stack.topics["pin"])
    assert f"Topic: {native_stack.topics['pin']}" in described.stdout
    assert "PartitionCount: 1" in described.stdout


def test_console_producer_and_consumer_round_trip_a_record(native_stack: Settings) -> None:
    topic = create_topic(native_stack.kafka_bootstrap_servers)
    produce = subprocess.run(
        [sys.executable, "-m", "pinpipe.cli", "kafka", "console-producer", "--topic", topic],
        input='{"ind": 7}\n',
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert produce.returncode == 0, produce.stderr
    group = unique_name("g")
    consumed = pinpipe(
        "console-consumer",
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        "1",
        "--group",
        group,
    )
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.splitlines() == ['{"ind": 7}']
    groups = pinpipe("consumer-groups", "--describe", "--group", group)
    assert topic in groups.stdout


@pytest.mark.unit
def test_the_stacks_broker_is_the_default_target_unless_one_is_given() -> None:
    settings = Settings(broker_port=19999)
    argv = tool_command(settings, "topics", ["--list"])
    main = argv.index(TOOLS["topics"])
    assert argv[main:] == [TOOLS["topics"], "--bootstrap-server", "127.0.0.1:19999", "--list"]
    given = tool_command(settings, "topics", ["--bootstrap-server", "elsewhere:9092", "--list"])
    assert given.count("--bootstrap-server") == 1 and "elsewhere:9092" in given
