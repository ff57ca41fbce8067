"""The proxy outlives its broker: a restart keeps every record, a kill -9 loses none acknowledged."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import httpx
import pytest

from services.core.settings import Settings
from services.core.waiting import free_port
from services.rest_proxy.models import KAFKA_JSON_V2_JSON
from services.stack.kafka_broker import BrokerService
from services.stack.rest_proxy_process import RestProxyService
from tests.services.rest_proxy.conftest import (
    assert_acknowledged_once,
    create_topic,
    post_through_a_crash,
    read_back,
)

pytestmark = pytest.mark.integration

BODY = {"records": [{"value": {"ind": i}} for i in range(3)]}
HEADERS = {"Content-Type": KAFKA_JSON_V2_JSON}


@pytest.fixture
def proxy(private_broker: BrokerService) -> Iterator[RestProxyService]:
    own = private_broker.settings.model_dump(exclude={"rest_proxy_url"})
    service = RestProxyService(Settings(**{**own, "rest_proxy_port": free_port()}))
    # Started from Settings built in code: the service passes them to the process.
    assert service.up() == "started"
    yield service
    service.down()


def test_a_restarted_broker_keeps_the_topic_and_its_records(
    private_broker: BrokerService, proxy: RestProxyService
) -> None:
    topic = create_topic(private_broker.endpoint())
    url = f"{proxy.endpoint()}/topics/{topic}"
    first = httpx.post(url, json=BODY, headers=HEADERS, timeout=30).json()["offsets"]
    assert [o["offset"] for o in first] == [0, 1, 2]

    private_broker.down()
    assert private_broker.up() == "started"

    resp = httpx.post(url, json=BODY, headers=HEADERS, timeout=30)
    assert resp.status_code == 200
    assert [o["offset"] for o in resp.json()["offsets"]] == [3, 4, 5]
    assert [m.offset() for m in read_back(private_broker.endpoint(), topic, 1, 6)] == list(range(6))
    assert "replaced" not in proxy.proc.log_file.read_text()


def test_nothing_acknowledged_is_lost_or_doubled_when_the_broker_is_killed(
    private_broker: BrokerService, proxy: RestProxyService
) -> None:
    topic = create_topic(private_broker.endpoint())

    def kill() -> None:
        pid = private_broker.proc.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

    run = post_through_a_crash(proxy.endpoint(), topic, kill, private_broker.up)
    assert_acknowledged_once(private_broker.endpoint(), topic, run)
