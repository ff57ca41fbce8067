"""Kill -9 the sink in the middle of a run, restart it: S3 holds every record exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.core.settings import PROJECT_ROOT, Settings
from tests.services.s3_sink.conftest import (
    Topics,
    committed,
    keys,
    line_of,
    objects,
    produce,
    rows,
    wait_for,
)

pytestmark = pytest.mark.integration

FLUSH_SIZE = 2
PER_PARTITION = 1000
LATE_PER_PARTITION = 200


def start_sink(t: Topics, log: Path) -> subprocess.Popen[bytes]:
    """``python -m services.s3_sink`` on the test's topics, as the stack would run it."""
    args = [sys.executable, "-m", "services.s3_sink", "--flush-size", str(FLUSH_SIZE)]
    for key, value in {
        "name": f"{t.prefix}-connector",
        "topics.regex": t.regex,
        # A killed member keeps its partitions until its session expires (45 s by default):
        # the broker's minimum lets the restarted sink take them over sooner.
        "consumer.override.session.timeout.ms": "6000",
    }.items():
        args += ["--set", f"{key}={value}"]
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)


def test_a_sink_killed_mid_run_and_restarted_stores_every_record_exactly_once(
    native_stack: Settings, topics: Callable[..., Topics], s3: Any, tmp_path: Path
) -> None:
    t = topics("pin", partitions=2)
    pin = t.names[0]
    group = f"connect-{t.prefix}-connector"
    prefix = f"topics/{pin}/"
    sent = {p: rows(PER_PARTITION, start=p * 100_000, tag=f"p{p}") for p in (0, 1)}
    for p, values in sent.items():
        produce(native_stack, pin, values, partition=p)
    total_objects = 2 * PER_PARTITION // FLUSH_SIZE
    log = tmp_path / "sink.log"

    sink = start_sink(t, log)
    deadline = time.monotonic() + 60
    while len(keys(s3, native_stack.bucket, prefix)) < total_objects // 5:
        assert sink.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the sink stored too little in 60 s"
        time.sleep(0.05)
    os.kill(sink.pid, signal.SIGKILL)
    sink.wait()
    stored_at_kill = len(keys(s3, native_stack.bucket, prefix))
    assert stored_at_kill < total_objects, "the run finished before the kill"

    late = {
        p: rows(LATE_PER_PARTITION, start=p * 100_000 + PER_PARTITION, tag=f"p{p}") for p in (0, 1)
    }
    for p, values in late.items():
        produce(native_stack, pin, values, partition=p)
        sent[p] += values

    def all_committed() -> bool:
        return all(committed(native_stack, group, pin, p) == len(sent[p]) for p in sent)

    sink = start_sink(t, log)
    try:
        wait_for(all_committed, timeout=120, what="every record committed")
    finally:
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(timeout=30) == 0, log.read_text()

    stored = objects(s3, native_stack.bucket, prefix)
    for p, values in sent.items():
        mine = {k: v for k, v in stored.items() if f"/partition={p}/" in k}
        # Deterministic keys: one object per FLUSH_SIZE records, named by its first offset.
        assert sorted(mine) == [
            f"{prefix}partition={p}/{pin}+{p}+{offset:010d}.json"
            for offset in range(0, len(values), FLUSH_SIZE)
        ]
        written = Counter(line for body in mine.values() for line in body.splitlines())
        expected = Counter(line_of(v) for v in values)
        assert written == expected  # every record, once, byte for byte
