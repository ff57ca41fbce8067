"""``pinpipe stream demo``: post events through the API while the streaming job runs.

Shows the three Delta tables filling batch by batch, then checks them against what was
posted: every posted ``ind`` is in its table, and no table holds an ``ind`` twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.batch_mode import Summary
from emulator.kinesis_client import Record
from emulator.streaming_mode import StreamEmulationOptions, run_stream
from services.core.settings import TABLES, Settings
from spark.jobs.streaming_job import StreamOptions, start, stop
from spark.sinks.delta_stream import BatchOutcome, delta_inds

# Source keys: only pinterest_data calls it "index".
KEY = {"pin": "index", "geo": "ind", "user": "ind"}


@dataclass
class TableCheck:
    table: str
    posted: int
    rows: int
    missing: int
    duplicates: int


@dataclass
class DemoResult:
    emulator: Summary
    checks: list[TableCheck] = field(default_factory=list)
    batches: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.emulator.failed and all(
            c.missing == 0 and c.duplicates == 0 for c in self.checks
        )


def run_demo(
    spark: Any,
    settings: Settings,
    emulation: StreamEmulationOptions,
    wait: float,
    on_batch: Callable[[BatchOutcome], None] | None = None,
) -> DemoResult:
    """Stream ``emulation``'s events, then wait up to ``wait`` s for the tables to hold them."""
    started = time.monotonic()
    posted: dict[str, set[int]] = {t: set() for t in TABLES}
    lock = threading.Lock()
    batches = 0

    def note_sent(table: str, records: list[Record], _sent_at: float) -> None:
        with lock:
            posted[table].update(int(row[KEY[table]]) for _, row in records)

    def note_batch(outcome: BatchOutcome) -> None:
        nonlocal batches
        batches += 1
        if on_batch:
            on_batch(outcome)

    opts = StreamOptions(
        trigger_seconds=settings.stream_trigger_seconds,
        starting_position=settings.stream_starting_position,
    )
    query, _ = start(spark, settings, opts, note_batch)
    try:
        summary = run_stream(settings, emulation, on_sent=note_sent)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and query.isActive:
            if all(posted[t] <= set(delta_inds(settings, t)) for t in TABLES):
                break
            time.sleep(1.0)
    finally:
        stop(query)
    result = DemoResult(summary, batches=batches, seconds=time.monotonic() - started)
    for table in TABLES:
        inds = delta_inds(settings, table)
        result.checks.append(
            TableCheck(
                table=settings.delta_tables[table],
                posted=len(posted[table]),
                rows=len(inds),
                missing=len(posted[table] - set(inds)),
                duplicates=len(inds) - len(set(inds)),
            )
        )
    return result
