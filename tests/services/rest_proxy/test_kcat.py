"""A Kafka client nobody here wrote, kcat, reads what the proxy acknowledged."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest

from services.core.settings import Settings
from services.rest_proxy.models import KAFKA_JSON_V2_JSON

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kcat() -> str:
    """Debian's kcat as installed (`make setup` installs it)."""
    binary = shutil.which("kcat") or shutil.which("kafkacat")
    if binary is None:
        pytest.skip("kcat is not installed (Debian: apt-get install -y kcat)")
    return binary


def run_kcat(kcat: str, *args: str) -> str:
    done = subprocess.run([kcat, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kcat_reads_exactly_what_the_proxy_acknowledged(
    native_stack: Settings, new_topic, kcat: str
) -> None:
    topic = new_topic(2)
    records = [
        {"key": "a", "value": {"ind": 1, "country": "Bouvet Island (Bouvetøya)"}},
        {"value": {"ind": 2}, "partition": 1},
        {"key": "b", "value": "just text", "partition": 0},
    ]
    resp = httpx.post(
        f"{native_stack.rest_proxy_url}/topics/{topic}",
        json={"records": records},
        headers={"Content-Type": KAFKA_JSON_V2_JSON},
        timeout=30,
    )
    offsets = resp.json()["offsets"]
    bootstrap = native_stack.kafka_bootstrap_servers

    metadata = json.loads(run_kcat(kcat, "-b", bootstrap, "-L", "-J", "-t", topic))
    assert [len(t["partitions"]) for t in metadata["topics"] if t["topic"] == topic] == [2]

    lines = run_kcat(kcat, "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q")
    read = {
        (m["partition"], m["offset"]): (m["key"], m["payload"])
        for m in map(json.loads, lines.splitlines())
    }
    assert len(read) == len(records)
    assert [read[(o["partition"], o["offset"])] for o in offsets] == [
        ('"a"', '{"ind":1,"country":"Bouvet Island (Bouvetøya)"}'),
        (None, '{"ind":2}'),
        ('"b"', '"just text"'),
    ]


def test_kcat_lists_the_stacks_topics(native_stack: Settings, kcat: str) -> None:
    metadata = json.loads(run_kcat(kcat, "-b", native_stack.kafka_bootstrap_servers, "-L", "-J"))
    listed = {t["topic"]: len(t["partitions"]) for t in metadata["topics"]}
    assert {t: listed.get(t) for t in native_stack.topics.values()} == dict.fromkeys(
        native_stack.topics.values(), native_stack.topic_partitions
    )
    assert [b["id"] for b in metadata["brokers"]] == [1]
