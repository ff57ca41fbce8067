"""`pinpipe trace` follows one posted record through every hop, and a rejected one to its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.batch_mode import EmulationOptions, run_batch
from emulator.sampler import RowSampler
from pinpipe.hops import wait_for_bucket
from pinpipe.trace import Trace, trace
from services.core.settings import TABLES, Settings
from services.core.sink_keys import SinkKeys
from services.source_db.database import make_engine
from spark.jobs.batch_job import MALFORMED, run
from tests.conftest import start_sink, user_of_its_own

pytestmark = pytest.mark.e2e

EVENTS = 20
SEED = 7
# No source row has it: the seeded inds are far below.
REJECTED_IND = 987_654_321


@pytest.fixture(scope="module")
def traced(
    native_stack: Settings, spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """A user of its own: events posted through API Gateway into S3, a malformed record for
    ``REJECTED_IND`` beside them, and the batch job run over both."""
    out = tmp_path_factory.mktemp("trace")
    settings = user_of_its_own(native_stack, "trc").model_copy(
        update={"warehouse_uri": str(out / "warehouse")}
    )
    sink = start_sink(settings)
    try:
        summary = run_batch(settings, EmulationOptions(count=EVENTS, seed=SEED, batch_size=10))
        assert summary.failed == 0, summary.errors
        expected = {t: EVENTS for t in settings.topics.values()}
        assert wait_for_bucket(settings, expected, timeout=120).records == expected
    finally:
        sink.terminate()
        sink.wait(timeout=30)
    topic = settings.topics["geo"]
    boto3.client("s3", **settings.boto3_kwargs()).put_object(
        Bucket=settings.bucket,
        Key=SinkKeys.of(settings).key(topic, 0, 9_999_999_999),
        Body=f'{{"ind": {REJECTED_IND}, "timestamp": "2020-01-01 00:00:00", "country": \n'.encode(),
    )
    run(spark, settings, out / "report.html")
    return settings


def _posted_ind(settings: Settings) -> int:
    engine = make_engine(settings.db)
    events = RowSampler(engine, seed=SEED).sample(EVENTS)
    engine.dispose()
    return events[0].ind


def test_a_posted_record_is_found_at_every_hop(traced: Settings) -> None:
    settings = traced
    ind = _posted_ind(settings)
    result: Trace = trace(settings, ind)
    for table in TABLES:
        (source,) = result.found("source", table)
        assert source.record is not None
        key = "index" if table == "pin" else "ind"
        assert source.record[key] == ind
        topic = result.found("topic", table)
        assert topic and all(
            s.where.startswith(f"{settings.topics[table]} partition 0 offset ") for s in topic
        )
        assert all(s.record and s.record[key] == ind for s in topic)
        objects = result.found("s3", table)
        assert len(objects) == len(topic), "one S3 line per Kafka record"
        prefix = (
            f"s3://{settings.bucket}/{SinkKeys.of(settings).topic_prefix(settings.topics[table])}"
        )
        assert all(s.where.startswith(prefix) for s in objects)
        (clean,) = result.found("clean", table)
        assert clean.record is not None and clean.record["ind"] == ind
        assert clean.where == settings.clean_tables[table]
        # The streaming job never ran for this user: the hop says so rather than guessing.
        (delta,) = result.at("delta", table)
        assert not delta.found and "no such table" in delta.note
    assert result.at("quarantine") == []


def test_a_rejected_record_is_reported_with_its_reason(traced: Settings) -> None:
    result = trace(traced, REJECTED_IND)
    (quarantined,) = result.at("quarantine")
    assert (quarantined.table, quarantined.note) == ("geo", MALFORMED)
    assert quarantined.where == traced.batch_quarantine_table
    (s3,) = result.found("s3", "geo")
    assert s3.note == "not valid JSON" and s3.where.endswith("+9999999999.json line 1")
    assert not result.found("source") and not result.found("clean") and not result.found("topic")


def test_the_command_prints_the_trace_as_json(traced: Settings) -> None:
    env = {
        **os.environ,
        "PINPIPE_USER_ID": traced.user_id,
        "PINPIPE_WAREHOUSE_URI": traced.warehouse_uri,
    }
    done = subprocess.run(
        [sys.executable, "-m", "pinpipe.cli", "trace", str(REJECTED_IND), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["ind"] == REJECTED_IND
    reasons = [s["note"] for s in payload["sightings"] if s["hop"] == "quarantine"]
    assert reasons == [MALFORMED]
    table = subprocess.run(
        [sys.executable, "-m", "pinpipe.cli", "trace", str(REJECTED_IND)],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=300,
    )
    assert table.returncode == 0, table.stderr
    assert MALFORMED in table.stdout and "quarantined" in table.stdout


def test_trace_of_a_missing_ind_finds_nothing(traced: Settings, tmp_path: Path) -> None:
    result = trace(traced, REJECTED_IND + 1)
    assert not any(s.found for s in result.sightings)
