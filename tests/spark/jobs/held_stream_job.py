"""The streaming job, held inside a micro-batch right after its pin table's commit.

The kill -9 test runs ``python -m tests.spark.jobs.held_stream_job`` where it would run
``python -m spark.jobs.streaming_job``. When the second micro-batch that has pin rows has
committed them, the job prints ``HELD <batch id>`` and that batch never ends: Spark's commit
log gets no entry for it, so a kill now lands after one table's commit and before the
batch's end, every time, and the restarted job must replay the batch.
"""

from __future__ import annotations

import sys
import threading

from spark.jobs import streaming_job
from spark.sinks.delta_stream import BatchOutcome, DeltaStreamSink

_note = DeltaStreamSink._note
_pin_batches: list[int] = []


def held_note(outcome: BatchOutcome, table: str, written: int | None) -> None:
    _note(outcome, table, written)
    if table == "pin" and written:
        _pin_batches.append(outcome.batch_id)
        if len(_pin_batches) == 2:
            sys.stdout.write(f"HELD {outcome.batch_id}\n")
            sys.stdout.flush()
            threading.Event().wait()


DeltaStreamSink._note = staticmethod(held_note)  # type: ignore[method-assign]

if __name__ == "__main__":
    streaming_job.main(sys.argv[1:])
