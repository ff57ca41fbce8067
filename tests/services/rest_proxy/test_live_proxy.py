"""The proxy the native stack runs, against the stack's Tansu broker and its other clients."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from emulator.rest_proxy_client import KafkaRestClient
from services.core.settings import Settings
from services.rest_proxy.models import KAFKA_JSON_V2_JSON, KAFKA_V2_JSON
from tests.services.rest_proxy.conftest import read_back, topic_exists

pytestmark = pytest.mark.integration

HEADERS = {"Content-Type": KAFKA_JSON_V2_JSON, "Accept": KAFKA_V2_JSON}
GEO_ROW = {
    "ind": 2863,
    "timestamp": "2020-04-27 13:34:16",
    "latitude": -5.34445,
    "longitude": -177.924,
    "country": "Bouvet Island (Bouvetøya)",
}


def post(settings: Settings, topic: str, records: list[dict[str, object]]) -> httpx.Response:
    return httpx.post(
        f"{settings.rest_proxy_url}/topics/{topic}",
        json={"records": records},
        headers=HEADERS,
        timeout=30,
    )


def java_partition(key: bytes, partitions: int) -> int:
    """Kafka's DefaultPartitioner for a keyed record: murmur2, made positive, modulo."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    h = (0x9747B28C ^ len(key)) & mask
    whole = len(key) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = key[whole:]
    if tail:
        for i in reversed(range(len(tail))):
            h ^= tail[i] << (8 * i)
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def test_java_partition_helper_matches_kafka_test_vectors() -> None:
    # Kafka's UtilsTest: murmur2("21") == -973932308, murmur2("foobar") == -790332482.
    assert java_partition(b"21", 2**31 - 1) == (-973932308 & 0x7FFFFFFF) % (2**31 - 1)
    assert java_partition(b"foobar", 2**31 - 1) == (-790332482 & 0x7FFFFFFF) % (2**31 - 1)


def test_lists_the_pipeline_topics(native_stack: Settings) -> None:
    resp = httpx.get(f"{native_stack.rest_proxy_url}/topics", headers={"Accept": KAFKA_V2_JSON})
    assert resp.status_code == 200 and resp.headers["content-type"] == KAFKA_V2_JSON
    assert set(native_stack.topics.values()) <= set(resp.json())


def test_describes_a_pipeline_topic(native_stack: Settings) -> None:
    name = native_stack.topics["pin"]
    body = httpx.get(f"{native_stack.rest_proxy_url}/topics/{name}").json()
    assert body["name"] == name
    assert isinstance(body["configs"], dict)
    assert len(body["partitions"]) == native_stack.topic_partitions
    partition = body["partitions"][0]
    assert [r for r in partition["replicas"] if r["leader"]] == [
        {"broker": partition["leader"], "leader": True, "in_sync": True}
    ]
    parts = httpx.get(f"{native_stack.rest_proxy_url}/topics/{name}/partitions").json()
    assert parts == body["partitions"]


def test_a_batch_is_on_the_broker_byte_for_byte_when_the_answer_comes(
    native_stack: Settings, new_topic
) -> None:
    topic = new_topic(3)
    records = [
        {"value": GEO_ROW},
        {"value": {"n": 1}, "partition": 2},
        {"key": "user-7", "value": [1, 2.5, None, "ç"]},
        {"key": {"ind": 7}, "value": None, "partition": 0},
    ]
    resp = post(native_stack, topic, records)
    assert resp.status_code == 200
    offsets = resp.json()["offsets"]
    assert all(o["error_code"] is None and o["error"] is None for o in offsets)
    # No waiting: the proxy answered only after the broker acknowledged every record.
    got = read_back(native_stack.kafka_bootstrap_servers, topic, 3, len(records), timeout=5)
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


def test_keyed_records_land_where_the_java_client_would_put_them(
    native_stack: Settings, new_topic
) -> None:
    topic = new_topic(4)
    keys = [f"key-{i}" for i in range(40)]
    resp = post(native_stack, topic, [{"key": k, "value": i} for i, k in enumerate(keys)])
    partitions = [o["partition"] for o in resp.json()["offsets"]]
    assert partitions == [java_partition(json.dumps(k).encode(), 4) for k in keys]


def test_a_missing_topic_is_40401_and_is_not_created(native_stack: Settings) -> None:
    topic = f"{native_stack.user_id}.never-created"
    resp = post(native_stack, topic, [{"value": GEO_ROW}])
    assert (resp.status_code, resp.json()) == (
        404,
        {"error_code": 40401, "message": "Topic not found."},
    )
    assert not topic_exists(native_stack.kafka_bootstrap_servers, topic)
    missing = httpx.get(f"{native_stack.rest_proxy_url}/topics/{topic}")
    assert missing.json() == {"error_code": 40401, "message": "Topic not found."}
    assert not topic_exists(native_stack.kafka_bootstrap_servers, topic)


def test_an_unknown_partition_is_40402_and_nothing_is_written(
    native_stack: Settings, new_topic
) -> None:
    topic = new_topic(1)
    resp = post(native_stack, topic, [{"value": 1}, {"value": 2, "partition": 1}])
    assert (resp.status_code, resp.json()) == (
        404,
        {"error_code": 40402, "message": "Partition not found."},
    )
    assert read_back(native_stack.kafka_bootstrap_servers, topic, 1, 1, timeout=2) == []


def test_a_new_topic_is_found_at_once(native_stack: Settings, new_topic) -> None:
    # The proxy caches metadata; a topic it has not seen is looked up afresh, not refused.
    assert post(native_stack, native_stack.topics["geo"], [{"value": GEO_ROW}]).status_code == 200
    topic = new_topic(1)
    assert post(native_stack, topic, [{"value": GEO_ROW}]).status_code == 200
    assert topic in httpx.get(f"{native_stack.rest_proxy_url}/topics").json()


def test_concurrent_requests_get_distinct_offsets(native_stack: Settings, new_topic) -> None:
    topic = new_topic(1)

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=native_stack.rest_proxy_url, headers=HEADERS, timeout=30
        ) as client:
            bodies = [
                {"records": [{"value": {"req": i, "n": n}} for n in range(5)]} for i in range(20)
            ]
            return await asyncio.gather(*(client.post(f"/topics/{topic}", json=b) for b in bodies))

    responses = asyncio.run(send_all())
    offsets = [o["offset"] for r in responses for o in r.json()["offsets"]]
    assert sorted(offsets) == list(range(100))
    assert len(read_back(native_stack.kafka_bootstrap_servers, topic, 1, 100)) == 100


def test_the_emulators_client_gets_every_record_acknowledged(
    native_stack: Settings, new_topic
) -> None:
    topic = new_topic(1)
    client = KafkaRestClient(native_stack.rest_proxy_url)
    try:
        result = client.produce(topic, [{**GEO_ROW, "ind": i} for i in range(50)])
    finally:
        client.close()
    assert (result.acknowledged, result.failed) == (50, 0)


def test_the_api_gateway_proxy_route_reaches_it(native_stack: Settings, new_topic) -> None:
    topic = new_topic(1)
    url = native_stack.resolved_api_invoke_url()
    assert url
    resp = httpx.post(
        f"{url}/topics/{topic}", json={"records": [{"value": GEO_ROW}]}, headers=HEADERS, timeout=30
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["offsets"] == [
        {"partition": 0, "offset": 0, "error_code": None, "error": None}
    ]
    unwrapped = httpx.post(f"{url}/topics/{topic}", json=GEO_ROW, headers=HEADERS, timeout=30)
    assert (unwrapped.status_code, unwrapped.json()) == (
        422,
        {"error_code": 422, "message": "Unrecognized field: ind"},
    )
