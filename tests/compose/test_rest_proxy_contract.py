"""One contract, two REST proxies: pinpipe's own (native stack) and Confluent's (container).

The same cases run against both, so whatever the project's proxy is tested to do here is
also checked against the component it replaces: the Confluent REST proxy that compose and
AWS run, on real Kafka, started with the same config/kafka-rest.properties.
The native target runs wherever the native stack does; the Confluent target needs Docker.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from emulator.rest_proxy_client import KafkaRestClient
from services.rest_proxy.models import KAFKA_V2_JSON
from tests.services.rest_proxy.conftest import create_topic, read_back, topic_exists
from tests.services.rest_proxy.test_live_proxy import GEO_ROW, HEADERS, java_partition


@dataclass(frozen=True)
class ProxyTarget:
    """A running REST proxy and the Kafka it writes to, as this process reaches them."""

    name: str
    url: str
    bootstrap: str
    pipeline_topics: tuple[str, ...]
    pipeline_partitions: int

    def post(self, topic: str, records: list[dict[str, object]]) -> httpx.Response:
        return httpx.post(
            f"{self.url}/topics/{topic}", json={"records": records}, headers=HEADERS, timeout=30
        )

    def new_topic(self, partitions: int = 1) -> str:
        return create_topic(self.bootstrap, partitions)


@pytest.fixture(scope="session")
def confluent_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyTarget]:
    """Kafka and the Confluent REST proxy as compose runs them, with a user's three topics."""
    from tests.compose.containers import network, start_confluent_rest_proxy, start_kafka

    user_id = f"t{secrets.token_hex(5)}"
    topics = tuple(f"{user_id}.{t}" for t in ("pin", "geo", "user"))
    with network() as net:
        kafka = start_kafka(net)
        try:
            for topic in topics:
                create_topic(kafka.bootstrap, 1, topic)
            proxy, url = start_confluent_rest_proxy(net, tmp_path_factory.mktemp("kafka-rest"))
            try:
                yield ProxyTarget("confluent", url, kafka.bootstrap, topics, 1)
            finally:
                proxy.stop()
        finally:
            kafka.container.stop()


@pytest.fixture(
    params=[
        pytest.param("native", marks=pytest.mark.integration),
        pytest.param("confluent", marks=pytest.mark.docker),
    ]
)
def proxy(request: pytest.FixtureRequest) -> ProxyTarget:
    if request.param == "confluent":
        return request.getfixturevalue("confluent_proxy")
    settings = request.getfixturevalue("native_stack")
    return ProxyTarget(
        "native",
        settings.rest_proxy_url,
        settings.kafka_bootstrap_servers,
        tuple(settings.topics.values()),
        settings.topic_partitions,
    )


def test_lists_the_pipeline_topics(proxy: ProxyTarget) -> None:
    resp = httpx.get(f"{proxy.url}/topics", headers={"Accept": KAFKA_V2_JSON})
    assert resp.status_code == 200 and resp.headers["content-type"] == KAFKA_V2_JSON
    assert set(proxy.pipeline_topics) <= set(resp.json())


def test_describes_a_pipeline_topic(proxy: ProxyTarget) -> None:
    name = proxy.pipeline_topics[0]
    body = httpx.get(f"{proxy.url}/topics/{name}").json()
    assert body["name"] == name
    assert isinstance(body["configs"], dict)
    assert len(body["partitions"]) == proxy.pipeline_partitions
    partition = body["partitions"][0]
    assert [r for r in partition["replicas"] if r["leader"]] == [
        {"broker": partition["leader"], "leader": True, "in_sync": True}
    ]
    assert httpx.get(f"{proxy.url}/topics/{name}/partitions").json() == body["partitions"]


def test_a_batch_is_on_the_broker_byte_for_byte_when_the_answer_comes(proxy: ProxyTarget) -> None:
    topic = proxy.new_topic(3)
    records = [
        {"value": GEO_ROW},
        {"value": {"n": 1}, "partition": 2},
        {"key": "user-7", "value": [1, 2.5, None, "ç"]},
        {"key": {"ind": 7}, "value": None, "partition": 0},
    ]
    resp = proxy.post(topic, records)
    assert resp.status_code == 200
    offsets = resp.json()["offsets"]
    assert all(o["error_code"] is None and o["error"] is None for o in offsets)
    got = read_back(proxy.bootstrap, topic, 3, len(records), timeout=5)
    by_position = {(m.partition(), m.offset()): m for m in got}
    sent = [by_position[(o["partition"], o["offset"])] for o in offsets]
    assert [(m.key(), m.value()) for m in sent] == [
        (None, json.dumps(GEO_ROW, ensure_ascii=False, separators=(",", ":")).encode()),
        (None, b'{"n":1}'),
        (b'"user-7"', '[1,2.5,null,"ç"]'.encode()),
        (b'{"ind":7}', None),
    ]
    assert offsets[1]["partition"] == 2 and offsets[3]["partition"] == 0
    assert offsets[2]["partition"] == java_partition(b'"user-7"', 3)


def test_keyed_records_land_where_the_java_client_would_put_them(proxy: ProxyTarget) -> None:
    topic = proxy.new_topic(4)
    keys = [f"key-{i}" for i in range(40)]
    resp = proxy.post(topic, [{"key": k, "value": i} for i, k in enumerate(keys)])
    partitions = [o["partition"] for o in resp.json()["offsets"]]
    assert partitions == [java_partition(json.dumps(k).encode(), 4) for k in keys]


def test_a_missing_topic_is_40401_and_is_not_created(proxy: ProxyTarget) -> None:
    topic = f"{proxy.pipeline_topics[0]}-never-created"
    resp = proxy.post(topic, [{"value": GEO_ROW}])
    assert (resp.status_code, resp.json()) == (
        404,
        {"error_code": 40401, "message": "Topic not found."},
    )
    assert not topic_exists(proxy.bootstrap, topic)
    missing = httpx.get(f"{proxy.url}/topics/{topic}")
    assert missing.json() == {"error_code": 40401, "message": "Topic not found."}
    assert not topic_exists(proxy.bootstrap, topic)


def test_an_unknown_partition_is_40402_and_nothing_is_written(proxy: ProxyTarget) -> None:
    topic = proxy.new_topic(1)
    resp = proxy.post(topic, [{"value": 1}, {"value": 2, "partition": 1}])
    assert (resp.status_code, resp.json()) == (
        404,
        {"error_code": 40402, "message": "Partition not found."},
    )
    assert read_back(proxy.bootstrap, topic, 1, 1, timeout=2) == []


def test_an_unwrapped_row_is_a_422_naming_its_first_field(proxy: ProxyTarget) -> None:
    # What the emulator gets when it forgets the {"records": [{"value": ...}]} envelope.
    topic = proxy.new_topic(1)
    resp = httpx.post(f"{proxy.url}/topics/{topic}", json=GEO_ROW, headers=HEADERS, timeout=30)
    assert (resp.status_code, resp.json()) == (
        422,
        {"error_code": 422, "message": "Unrecognized field: ind"},
    )


def test_a_new_topic_is_found_at_once(proxy: ProxyTarget) -> None:
    assert proxy.post(proxy.pipeline_topics[1], [{"value": GEO_ROW}]).status_code == 200
    topic = proxy.new_topic(1)
    assert proxy.post(topic, [{"value": GEO_ROW}]).status_code == 200
    assert topic in httpx.get(f"{proxy.url}/topics").json()


def test_concurrent_requests_get_distinct_offsets(proxy: ProxyTarget) -> None:
    topic = proxy.new_topic(1)

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=proxy.url, headers=HEADERS, timeout=30) as client:
            bodies = [
                {"records": [{"value": {"req": i, "n": n}} for n in range(5)]} for i in range(20)
            ]
            return await asyncio.gather(*(client.post(f"/topics/{topic}", json=b) for b in bodies))

    responses = asyncio.run(send_all())
    offsets = [o["offset"] for r in responses for o in r.json()["offsets"]]
    assert sorted(offsets) == list(range(100))
    assert len(read_back(proxy.bootstrap, topic, 1, 100)) == 100


def test_the_emulators_client_gets_every_record_acknowledged(proxy: ProxyTarget) -> None:
    topic = proxy.new_topic(1)
    client = KafkaRestClient(proxy.url)
    try:
        result = client.produce(topic, [{**GEO_ROW, "ind": i} for i in range(50)])
    finally:
        client.close()
    assert (result.acknowledged, result.failed) == (50, 0)
