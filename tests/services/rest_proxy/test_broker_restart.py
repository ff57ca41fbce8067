"""The proxy process outlives its broker: Tansu restarts empty, the next request still succeeds."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from services.rest_proxy.models import KAFKA_JSON_V2_JSON
from services.settings import Settings
from services.stack.rest_proxy import RestProxyService
from tests.conftest import free_port
from tests.services.rest_proxy.conftest import PrivateBroker, create_topic, read_back

pytestmark = pytest.mark.integration

TOPIC = "restart.pin"
BODY = {"records": [{"value": {"ind": i}} for i in range(3)]}


def test_a_restarted_broker_gets_the_next_request_through_a_new_producer(
    tmp_path: Path, private_broker: PrivateBroker
) -> None:
    settings = Settings(
        user_id="restart1",
        state_dir=tmp_path / "state",
        broker_port=private_broker.port,
        rest_proxy_port=free_port(),
    )
    proxy = RestProxyService(settings)
    create_topic(private_broker.bootstrap, name=TOPIC)
    # Started from Settings built in code: the service passes them to the process.
    assert proxy.up() == "started"
    url = f"{settings.rest_proxy_url}/topics/{TOPIC}"
    headers = {"Content-Type": KAFKA_JSON_V2_JSON}
    try:
        first = httpx.post(url, json=BODY, headers=headers, timeout=30).json()["offsets"]
        assert [o["offset"] for o in first] == [0, 1, 2]

        private_broker.stop()
        time.sleep(1.0)  # the producer sees every broker down
        private_broker.start()
        create_topic(private_broker.bootstrap, name=TOPIC)  # memory storage forgot it

        started = time.monotonic()
        resp = httpx.post(url, json=BODY, headers=headers, timeout=30)
        assert resp.status_code == 200
        assert resp.json()["offsets"] == [
            {"partition": 0, "offset": i, "error_code": None, "error": None} for i in range(3)
        ]
        assert time.monotonic() - started < 10
        assert len(read_back(private_broker.bootstrap, TOPIC, 1, 3)) == 3
        assert "Kafka producer replaced" in proxy.proc.log_file.read_text()
    finally:
        proxy.down()
