"""Durability on real Kafka: the broker is killed and restarted while the REST proxy takes
records; every record the proxy acknowledged is in the topic afterwards, once.

The proxy is the project's own (services/rest_proxy, acks=all and idempotence from
config/kafka-rest.properties) in this process; the broker is the compose image, with its log
directory kept across the restart, as compose keeps it on a named volume.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from services.core.settings import Settings
from services.core.waiting import free_port
from services.rest_proxy.app import create_app
from tests.compose.containers import Kafka, network, start_kafka, wait_for
from tests.services.rest_proxy.conftest import create_topic, read_back
from tests.services.rest_proxy.test_live_proxy import HEADERS

pytestmark = pytest.mark.docker

DOWN_FOR_S = 5.0


@pytest.fixture
def kafka() -> Iterator[Kafka]:
    with network() as net:
        broker = start_kafka(net)
        try:
            yield broker
        finally:
            broker.container.stop()


@pytest.fixture
def proxy_url(kafka: Kafka) -> Iterator[str]:
    port = free_port()
    settings = Settings(kafka_bootstrap_servers=kafka.bootstrap, rest_proxy_port=port)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/topics", timeout=2).status_code == 200, "the proxy")
    yield url
    server.should_exit = True
    thread.join(timeout=30)


def test_nothing_acknowledged_is_lost_when_the_broker_is_killed_mid_run(
    kafka: Kafka, proxy_url: str
) -> None:
    topic = create_topic(kafka.bootstrap, 1)
    acknowledged: dict[int, bytes] = {}
    failed = 0
    stop = threading.Event()

    def post_forever() -> None:
        nonlocal failed
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
                    failed += len(values)
                    continue
                offsets = resp.json().get("offsets", []) if resp.status_code == 200 else []
                for value, o in zip(values, offsets, strict=False):
                    if o.get("error_code") is None:
                        acknowledged[o["offset"]] = json.dumps(
                            value, separators=(",", ":")
                        ).encode()
                    else:
                        failed += 1

    poster = threading.Thread(target=post_forever)
    poster.start()
    try:
        wait_for(lambda: len(acknowledged) >= 200, "records acknowledged before the crash", 60)
        kafka.kill()
        time.sleep(DOWN_FOR_S)
        kafka.restart()
        before = len(acknowledged)
        wait_for(lambda: len(acknowledged) >= before + 200, "records acknowledged after it", 120)
    finally:
        stop.set()
        poster.join(timeout=60)

    # Offsets of one partition are contiguous: read through the last acknowledged one.
    stored = read_back(kafka.bootstrap, topic, 1, max(acknowledged) + 1, timeout=60)
    by_offset = {m.offset(): m.value() for m in stored}
    lost = {o: v for o, v in acknowledged.items() if by_offset.get(o) != v}
    assert not lost, (
        f"{len(lost)} acknowledged records missing or changed, e.g. {list(lost.items())[:3]}"
    )
    values = [m.value() for m in stored]
    assert len(values) == len(set(values)), "a retried record was written twice"
