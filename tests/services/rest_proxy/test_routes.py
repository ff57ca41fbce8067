"""Every answer of the HTTP side against a fake Kafka, checked against Confluent's own.

Sources: Confluent REST Proxy API reference, API v2 (error codes 40401, 40402, 422, 50002,
50003; bodies of GET /topics, /topics/{name}, /topics/{name}/partitions, POST
/topics/{name}); kafka-rest ``Errors.java`` ("Topic not found.", "Partition not found."),
``Versions.java`` (media types); rest-utils ``JacksonMessageBodyProvider`` ("Unrecognized
field: <name>" as 422) and ``WebApplicationExceptionMapper`` ("HTTP 415 Unsupported Media
Type" and the like).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest
from confluent_kafka import KafkaError
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.core.settings import Settings
from services.rest_proxy.app import create_app, get_backend
from services.rest_proxy.models import (
    KAFKA_JSON_V2_JSON,
    KAFKA_V2_JSON,
    KafkaRecord,
    KafkaRetriableError,
    Partition,
    PartitionNotFoundError,
    Replica,
    TopicNotFoundError,
)
from services.rest_proxy.producer import Delivery, TopicInfo

pytestmark = pytest.mark.unit

MAX_BODY = 4096
PRODUCE = {"Content-Type": KAFKA_JSON_V2_JSON, "Accept": KAFKA_V2_JSON}
# A row as the emulator posts it when it forgets the {"records": [{"value": ...}]} envelope.
PIN_ROW = {"index": 7528, "unique_id": "fbe53c66", "title": "No Title Data Available"}


class FakeBackend:
    """Topics with partition counts; records are 'written' in order, or fail as told."""

    def __init__(self, topics: dict[str, int]) -> None:
        self.topics = topics
        self.produced: list[tuple[str, list[KafkaRecord]]] = []
        self.fail: dict[int, KafkaError] = {}
        self.raises: Exception | None = None

    async def topic_names(self) -> list[str]:
        return sorted(self.topics)

    async def topic(self, name: str) -> TopicInfo:
        if self.raises is not None:
            raise self.raises
        if name not in self.topics:
            raise TopicNotFoundError()
        replicas = [
            Replica(broker=1, leader=True, in_sync=True),
            Replica(broker=2, leader=False, in_sync=False),
        ]
        return TopicInfo(
            name,
            [Partition(partition=p, leader=1, replicas=replicas) for p in range(self.topics[name])],
        )

    async def topic_configs(self, name: str) -> dict[str, str]:
        return {"cleanup.policy": "delete"}

    async def produce(self, topic: str, records: Sequence[KafkaRecord]) -> list[Delivery]:
        if not (await self.topic(topic)).has_partitions(records):
            raise PartitionNotFoundError()
        self.produced.append((topic, list(records)))
        return [
            Delivery(error=self.fail[i]) if i in self.fail else Delivery(r.partition or 0, 100 + i)
            for i, r in enumerate(records)
        ]


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend({"t.pin": 1, "t.multi": 3})


@pytest.fixture
def app(backend: FakeBackend) -> FastAPI:
    app = create_app(Settings(rest_proxy_max_body_bytes=MAX_BODY))
    app.dependency_overrides[get_backend] = lambda: backend
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # No `with`: the lifespan (which opens real Kafka clients) does not run.
    yield TestClient(app)


def produce(
    client: TestClient, body: object, topic: str = "t.pin", headers: dict[str, str] | None = None
):
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(f"/topics/{topic}", content=content, headers=headers or PRODUCE)


def error(resp) -> tuple[int, dict[str, object]]:
    assert resp.headers["content-type"] == KAFKA_V2_JSON
    return resp.status_code, resp.json()


# ---- metadata --------------------------------------------------------------------------
def test_list_topics_is_a_json_array_of_names(client: TestClient) -> None:
    resp = client.get("/topics", headers={"Accept": KAFKA_V2_JSON})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == KAFKA_V2_JSON
    assert resp.json() == ["t.multi", "t.pin"]


def test_get_topic_has_name_configs_and_partitions_with_replicas(client: TestClient) -> None:
    body = client.get("/topics/t.multi").json()
    assert list(body) == ["name", "configs", "partitions"]
    assert body["name"] == "t.multi"
    assert body["configs"] == {"cleanup.policy": "delete"}
    assert [p["partition"] for p in body["partitions"]] == [0, 1, 2]
    assert body["partitions"][0] == {
        "partition": 0,
        "leader": 1,
        "replicas": [
            {"broker": 1, "leader": True, "in_sync": True},
            {"broker": 2, "leader": False, "in_sync": False},
        ],
    }


def test_get_partitions_is_the_partition_list(client: TestClient) -> None:
    body = client.get("/topics/t.multi/partitions").json()
    assert body == client.get("/topics/t.multi").json()["partitions"]


@pytest.mark.parametrize("path", ["/topics/nope", "/topics/nope/partitions"])
def test_unknown_topic_is_40401(client: TestClient, path: str) -> None:
    assert error(client.get(path)) == (404, {"error_code": 40401, "message": "Topic not found."})


# ---- produce: success ------------------------------------------------------------------
def test_produce_answers_offsets_in_request_order(client: TestClient, backend: FakeBackend) -> None:
    resp = produce(
        client, {"records": [{"value": PIN_ROW}, {"value": {"a": 1}, "partition": 2}]}, "t.multi"
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == KAFKA_V2_JSON
    assert resp.json() == {
        "offsets": [
            {"partition": 0, "offset": 100, "error_code": None, "error": None},
            {"partition": 2, "offset": 101, "error_code": None, "error": None},
        ],
        "key_schema_id": None,
        "value_schema_id": None,
    }
    assert len(backend.produced) == 1


def test_values_and_keys_go_to_kafka_as_compact_utf8_json(
    client: TestClient, backend: FakeBackend
) -> None:
    records = [
        {"key": "k1", "value": {"b": [1, 2.5, None, True], "s": "Bouvet Island (Bouvetøya) €"}},
        {"key": {"id": 7}, "value": "plain string", "partition": 0},
        {"value": None},
        {},
        {"value": 12345678901234567890},
    ]
    assert produce(client, {"records": records}).status_code == 200
    _, sent = backend.produced[0]
    assert sent[0] == KafkaRecord(
        b'"k1"', '{"b":[1,2.5,null,true],"s":"Bouvet Island (Bouvetøya) €"}'.encode(), None
    )
    assert sent[1] == KafkaRecord(b'{"id":7}', b'"plain string"', 0)
    assert sent[2] == sent[3] == KafkaRecord(None, None, None)
    assert sent[4].value == b"12345678901234567890"


def test_schema_fields_of_the_request_are_accepted(client: TestClient) -> None:
    body = {"records": [{"value": 1}], "key_schema_id": None, "value_schema": None}
    assert produce(client, body).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [KAFKA_JSON_V2_JSON + "; charset=utf-8", "Application/VND.Kafka.JSON.v2+JSON"],
)
def test_content_type_parameters_and_case_do_not_matter(
    client: TestClient, content_type: str
) -> None:
    resp = produce(client, {"records": [{"value": 1}]}, headers={"Content-Type": content_type})
    assert resp.status_code == 200


def test_a_failed_record_is_reported_in_offsets_and_the_request_is_200(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.fail = {
        1: KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out"),
        2: KafkaError(KafkaError.RECORD_LIST_TOO_LARGE, "Broker: Record list too large"),
    }
    resp = produce(client, {"records": [{"value": 1}, {"value": 2}, {"value": 3}]})
    assert resp.status_code == 200
    assert resp.json()["offsets"] == [
        {"partition": 0, "offset": 100, "error_code": None, "error": None},
        {
            "partition": None,
            "offset": None,
            "error_code": 50003,
            "error": "Local: Message timed out",
        },
        {
            "partition": None,
            "offset": None,
            "error_code": 50002,
            "error": "Broker: Record list too large",
        },
    ]


# ---- produce: errors, in Jersey's order ---------------------------------------------------
def test_unknown_topic_on_produce_is_40401(client: TestClient, backend: FakeBackend) -> None:
    resp = produce(client, {"records": [{"value": 1}]}, "nope")
    assert error(resp) == (404, {"error_code": 40401, "message": "Topic not found."})
    assert backend.produced == []


@pytest.mark.parametrize("partition", [1, 3, -1])
def test_unknown_partition_is_40402_and_nothing_is_written(
    client: TestClient, backend: FakeBackend, partition: int
) -> None:
    body = {"records": [{"value": 1}, {"value": 2, "partition": partition}]}
    resp = produce(client, body, "t.pin")
    assert error(resp) == (404, {"error_code": 40402, "message": "Partition not found."})
    assert backend.produced == []


UNSUPPORTED = {"error_code": 415, "message": "HTTP 415 Unsupported Media Type"}


@pytest.mark.parametrize(
    "headers",
    [
        # Confluent's v2 produce has no application/json variant (that is v3's, at another path).
        {"Content-Type": "application/json"},
        {"Content-Type": "application/vnd.kafka.v2+json"},
        {"Content-Type": "application/vnd.kafka.binary.v2+json"},
        {"Content-Type": "application/vnd.kafka.avro.v2+json"},
        {"Content-Type": "text/plain"},
        {},
    ],
)
def test_any_other_content_type_is_415(client: TestClient, headers: dict[str, str]) -> None:
    resp = client.post("/topics/t.pin", content=b'{"records":[{"value":1}]}', headers=headers)
    assert error(resp) == (415, UNSUPPORTED)


def test_415_comes_before_the_topic_check(client: TestClient) -> None:
    resp = client.post("/topics/nope", content=b"{}", headers={"Content-Type": "application/json"})
    assert error(resp) == (415, UNSUPPORTED)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # An unwrapped row: Jackson names its first field.
        (PIN_ROW, "Unrecognized field: index"),
        (
            {"ind": 1, "country": "Antarctica (the territory South of 60 deg S)"},
            "Unrecognized field: ind",
        ),
        ({"records": [{"value": 1, "ind": 2}]}, "Unrecognized field: ind"),
        ({"records": []}, "records may not be empty"),
        ({"records": None}, "records may not be empty"),
        ({}, "records may not be empty"),
        ({"records": [{"value": 1, "partition": "0"}]}, "records[0].partition must be an integer"),
        ({"records": [{"value": 1, "partition": True}]}, "records[0].partition must be an integer"),
        ({"records": [{"value": 1, "partition": 1.5}]}, "records[0].partition must be an integer"),
        ({"records": [1]}, "records[0] must be a JSON object"),
        ({"records": {"value": 1}}, "records must be a JSON array"),
        ([{"value": 1}], "Request body must be a JSON object"),
        (None, "Request body must be a JSON object"),
    ],
)
def test_a_body_that_is_not_a_produce_request_is_422(
    client: TestClient, body: object, message: str
) -> None:
    assert error(produce(client, body)) == (422, {"error_code": 422, "message": message})


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"records": [{"value": NaN}]}',
        b'{"records": [{"value": Infinity}]}',
        b"\xff\xfe",
    ],
)
def test_a_body_that_is_not_json_is_422(client: TestClient, raw: bytes) -> None:
    status, body = error(produce(client, raw))
    assert status == 422 and body["error_code"] == 422
    assert str(body["message"]).startswith("Invalid JSON: ")


def test_422_comes_before_the_topic_check(client: TestClient) -> None:
    assert error(produce(client, PIN_ROW, "nope"))[0] == 422


TOO_LARGE = {"error_code": 413, "message": "HTTP 413 Request Entity Too Large"}


def test_a_body_over_the_limit_is_413(client: TestClient, backend: FakeBackend) -> None:
    body = {"records": [{"value": "x" * 1000} for _ in range(5)]}
    assert error(produce(client, body)) == (413, TOO_LARGE)
    assert backend.produced == []


def test_a_chunked_body_over_the_limit_is_413_without_a_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"records": ['
        for _ in range(10):
            yield b'{"value": "' + b"x" * 1000 + b'"},'
        yield b'{"value": 1}]}'

    resp = client.post("/topics/t.pin", content=chunks(), headers=PRODUCE)
    assert error(resp) == (413, TOO_LARGE)


def test_a_body_at_the_limit_is_read(client: TestClient) -> None:
    prefix, suffix = b'{"records": [{"value": "', b'"}]}'
    body = prefix + b"x" * (MAX_BODY - len(prefix) - len(suffix)) + suffix
    assert len(body) == MAX_BODY
    assert produce(client, body).status_code == 200


# ---- content negotiation and HTTP-level errors ---------------------------------------------
@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, KAFKA_V2_JSON),
        ("*/*", KAFKA_V2_JSON),
        ("application/*", KAFKA_V2_JSON),
        (
            "application/vnd.kafka.v2+json, application/vnd.kafka+json, application/json",
            KAFKA_V2_JSON,
        ),
        ("application/json", "application/json"),
        ("application/vnd.kafka+json", "application/vnd.kafka+json"),
        ("application/vnd.kafka.v2+json; q=0.5, application/json; q=0.9", "application/json"),
        ("text/html, */*; q=0.1", KAFKA_V2_JSON),
    ],
)
def test_response_media_type_follows_accept(
    client: TestClient, accept: str | None, media_type: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    assert client.get("/topics", headers=headers).headers["content-type"] == media_type
    resp = produce(
        client, {"records": [{"value": 1}]}, headers={**PRODUCE, **headers} if accept else PRODUCE
    )
    assert resp.headers["content-type"] == media_type


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "application/json; q=0"])
def test_no_acceptable_media_type_is_406(client: TestClient, accept: str) -> None:
    expected = (406, {"error_code": 406, "message": "HTTP 406 Not Acceptable"})
    assert error(client.get("/topics", headers={"Accept": accept})) == expected
    assert (
        error(produce(client, {"records": [{"value": 1}]}, headers={**PRODUCE, "Accept": accept}))
        == expected
    )


def test_unknown_path_is_404_with_a_confluent_body(client: TestClient) -> None:
    assert error(client.get("/brokers/1/nothing")) == (
        404,
        {"error_code": 404, "message": "HTTP 404 Not Found"},
    )


def test_wrong_method_is_405_with_a_confluent_body(client: TestClient) -> None:
    resp = client.delete("/topics/t.pin")
    assert error(resp) == (405, {"error_code": 405, "message": "HTTP 405 Method Not Allowed"})


# ---- server faults: the only 500s ------------------------------------------------------------
def test_an_unavailable_cluster_is_a_retriable_kafka_error(
    client: TestClient, backend: FakeBackend
) -> None:
    backend.raises = KafkaRetriableError("Retriable Kafka error: listing topics: Local: Timed out")
    resp = client.get("/topics/t.pin")
    assert error(resp) == (
        500,
        {"error_code": 50003, "message": "Retriable Kafka error: listing topics: Local: Timed out"},
    )


def test_a_bug_is_a_500_with_a_confluent_body(app: FastAPI, backend: FakeBackend) -> None:
    backend.raises = RuntimeError("boom")
    resp = TestClient(app, raise_server_exceptions=False).get("/topics/t.pin")
    assert error(resp) == (500, {"error_code": 500, "message": "Internal Server Error"})


def test_openapi_documents_the_produce_body_and_every_error(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/topics/{topic}"]["post"]
    assert post["requestBody"]["content"][KAFKA_JSON_V2_JSON]["schema"] == {
        "$ref": "#/components/schemas/ProduceRequest"
    }
    assert {"200", "404", "406", "413", "415", "422", "500"} <= set(post["responses"])
    schemas = doc["components"]["schemas"]
    assert schemas["ProduceRequest"]["additionalProperties"] is False
    assert "ProduceRecord" in schemas
