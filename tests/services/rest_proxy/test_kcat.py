"""A Kafka client nobody here wrote, kcat, reads what the proxy acknowledged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import confluent_kafka
import httpx
import pytest

from services.rest_proxy.models import KAFKA_JSON_V2_JSON
from services.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kcat(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """kcat and an environment that gives it the confluent-kafka wheel's librdkafka."""
    binary = shutil.which("kcat") or shutil.which("kafkacat")
    if binary is None:
        pytest.skip("kcat is not installed (Debian: apt-get install -y kcat)")
    # Debian's kcat links librdkafka 2.0.2, which fails against Tansu; the wheel's is newer.
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    bundled = sorted(libs.glob("librdkafka*.so*"))
    if not bundled:
        pytest.skip(f"no librdkafka bundled with confluent-kafka under {libs}")
    lib_dir = tmp_path_factory.mktemp("librdkafka")
    (lib_dir / "librdkafka.so.1").symlink_to(bundled[0])
    return binary, {**os.environ, "LD_LIBRARY_PATH": str(lib_dir)}


def run_kcat(kcat: tuple[str, dict[str, str]], *args: str) -> str:
    binary, env = kcat
    done = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_kcat_reads_exactly_what_the_proxy_acknowledged(
    native_stack: Settings, new_topic, kcat: tuple[str, dict[str, str]]
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
