"""The stack's own sink: started by ``stack up``, writing the stack's topics as shipped."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from services.core.settings import Settings
from services.s3_sink.status import read_status, status_path
from services.stack.s3_sink_process import S3SinkService
from tests.services.s3_sink.conftest import objects, produce, wait_for

pytestmark = pytest.mark.integration


def test_the_stack_sink_is_up_and_reports_its_assignment(native_stack: Settings) -> None:
    service = S3SinkService(native_stack)
    status = service.status()
    assert status.state == "up"
    assert status.endpoint == f"s3://{native_stack.bucket}/topics"
    assert service.up() == "already running"
    written = read_status(status_path(native_stack, native_stack.connector_name))
    assert written is not None
    assert written["pid"] == status.pid
    wait_for(
        lambda: (
            set(
                (read_status(status_path(native_stack, native_stack.connector_name)) or {}).get(
                    "assignment", []
                )
            )
            >= {f"{topic}-0" for topic in native_stack.topics.values()}
        ),
        what="the stack's topics assigned",
    )


def test_a_record_on_a_stack_topic_lands_in_the_bucket_as_one_object(
    native_stack: Settings, s3: Any
) -> None:
    topic = native_stack.topics["user"]
    marker = secrets.token_hex(8)
    value = {"ind": 1, "first_name": marker, "last_name": "Holmes", "age": 32}
    produce(native_stack, topic, [json.dumps(value).encode()])
    prefix = f"topics/{topic}/partition=0/{topic}+0+"

    def mine() -> dict[str, bytes]:
        return {
            k: v
            for k, v in objects(s3, native_stack.bucket, prefix).items()
            if marker.encode() in v
        }

    wait_for(lambda: bool(mine()), what="the record's object")
    ((key, body),) = mine().items()
    assert key.endswith(".json") and len(key.rsplit("+", 1)[1]) == len("0000000000.json")
    assert body == (
        b'{"last_name":"Holmes","first_name":"' + marker.encode() + b'","ind":1,"age":32}\n'
    )
