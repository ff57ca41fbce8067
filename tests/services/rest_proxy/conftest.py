"""Kafka helpers for the REST proxy tests: own topics, reading records back, a private broker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from services.core.settings import Settings
from services.core.waiting import free_port, poll
from services.stack.kafka_broker import BrokerService
from tests.conftest import unique_name


def create_topic(bootstrap: str, partitions: int = 1, name: str | None = None) -> str:
    """A topic of the test's own."""
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
    """Read ``count`` records from the start of every partition (or what there is by ``timeout``)."""
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


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[BrokerService]:
    """A Kafka broker of one test's own (own ports and log), which the test may restart."""
    settings = Settings(
        user_id="private1",
        state_dir=tmp_path / "state",
        broker_port=free_port(),
        broker_controller_port=free_port(),
    )
    broker = BrokerService(settings)
    broker.up()
    yield broker
    broker.down()


@dataclass
class CrashRun:
    """What a poster got acknowledged (offset → value) and failed while the broker crashed."""

    acknowledged: dict[int, bytes] = field(default_factory=dict)
    failed: int = 0


def post_through_a_crash(
    proxy_url: str,
    topic: str,
    kill: Callable[[], None],
    restart: Callable[[], None],
    down_for: float = 5.0,
) -> CrashRun:
    """Post 10-record requests to one partition while the broker is killed and restarted."""
    from tests.services.rest_proxy.test_live_proxy import HEADERS

    run = CrashRun()
    stop = threading.Event()

    def post_forever() -> None:
        n = 0
        with httpx.Client(base_url=proxy_url, headers=HEADERS, timeout=40) as client:
            while not stop.is_set():
                values = [{"n": n + i} for i in range(10)]
                n += 10
                try:
                    resp = client.post(
                        f"/topics/{topic}", json={"records": [{"value": v} for v in values]}
                    )
                except httpx.HTTPError:
                    run.failed += len(values)
                    continue
                offsets = resp.json().get("offsets", []) if resp.status_code == 200 else []
                run.failed += len(values) - len(offsets)
                for value, o in zip(values, offsets, strict=False):
                    if o.get("error_code") is None:
                        run.acknowledged[o["offset"]] = json.dumps(
                            value, separators=(",", ":")
                        ).encode()
                    else:
                        run.failed += 1

    poster = threading.Thread(target=post_forever)
    poster.start()
    try:
        wait_until(lambda: len(run.acknowledged) >= 200, "records acknowledged before the crash")
        kill()
        time.sleep(down_for)
        restart()
        before = len(run.acknowledged)
        wait_until(lambda: len(run.acknowledged) >= before + 200, "records acknowledged after it")
    finally:
        stop.set()
        poster.join(timeout=60)
    return run


def assert_acknowledged_once(bootstrap: str, topic: str, run: CrashRun) -> None:
    """Every acknowledged record is at its offset, and no value is in the topic twice."""
    # Offsets of one partition are contiguous: read through the last acknowledged one.
    stored = read_back(bootstrap, topic, 1, max(run.acknowledged) + 1, timeout=60)
    by_offset = {m.offset(): m.value() for m in stored}
    lost = {o: v for o, v in run.acknowledged.items() if by_offset.get(o) != v}
    assert not lost, (
        f"{len(lost)} acknowledged records missing or changed, e.g. {list(lost.items())[:3]}"
    )
    values = [m.value() for m in stored]
    assert len(values) == len(set(values)), "a retried record was written twice"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    poll(check, what, timeout)
