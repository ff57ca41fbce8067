"""Kafka helpers for the REST proxy tests: own topics, reading records back, a private broker."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from services.settings import Settings
from services.stack.broker import BrokerService
from services.stack.process import port_open
from tests.conftest import free_port, unique_name


def create_topic(bootstrap: str, partitions: int = 1, name: str | None = None) -> str:
    """A topic of the test's own (Tansu would auto-create one with 4 partitions)."""
    name = name or unique_name("rp")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(name, partitions, 1)], operation_timeout=10
    ).values():
        future.result(timeout=15)
    return name


def topic_exists(bootstrap: str, name: str) -> bool:
    return name in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5).topics


def read_back(
    bootstrap: str, topic: str, partitions: int, count: int, timeout: float = 15.0
) -> list[Message]:
    """Read ``count`` records from the start of every partition (Tansu's watermarks can't be trusted)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": unique_name("g"), "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                messages.append(msg)
    finally:
        consumer.close()
    return messages


@pytest.fixture
def new_topic(native_stack: Settings) -> Callable[..., str]:
    """Make a topic of the test's own on the stack's broker."""
    return lambda partitions=1: create_topic(native_stack.kafka_bootstrap_servers, partitions)


@dataclass
class PrivateBroker:
    """A Tansu broker of one test's own, which the test may restart (memory storage: it forgets)."""

    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        argv = [
            BrokerService._binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env={"RUST_LOG": "error"}
            )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            assert time.monotonic() < deadline, self.log.read_text()[-2000:]
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(free_port(), tmp_path / "tansu.log")
    broker.start()
    yield broker
    broker.stop()
