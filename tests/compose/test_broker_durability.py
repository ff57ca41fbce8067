"""Durability on real Kafka: the broker is killed and restarted while the REST proxy takes
records; every record the proxy acknowledged is in the topic afterwards, once.

The proxy is the project's own (services/rest_proxy, acks=all and idempotence from
config/kafka-rest.properties) in this process; the broker is the compose image, with its log
directory kept across the restart, as compose keeps it on a named volume.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from services.core.settings import Settings
from services.core.waiting import free_port
from services.rest_proxy.app import create_app
from tests.compose.containers import Kafka, network, start_kafka, wait_for
from tests.services.rest_proxy.conftest import (
    assert_acknowledged_once,
    create_topic,
    post_through_a_crash,
)

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

    run = post_through_a_crash(proxy_url, topic, kafka.kill, kafka.restart, down_for=DOWN_FOR_S)
    assert_acknowledged_once(kafka.bootstrap, topic, run)
