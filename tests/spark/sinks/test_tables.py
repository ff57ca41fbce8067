"""Tables: reading a Delta table back with delta-rs (rows, a clean exit), and frames collected by one job."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake
from pyspark.sql import SparkSession

from spark.sinks.tables import collect_arrow, read_delta

READER = """
import sys
from spark.sinks.tables import read_delta
table = read_delta(sys.argv[1], where='"ind" = 2')
print(table.to_pylist())
"""


def _table(tmp_path: Path) -> str:
    uri = str(tmp_path / "t")
    write_deltalake(uri, pa.table({"ind": [1, 2, 3], "raw": ["a", "b", "c"]}))
    return uri


def test_it_reads_columns_and_rows_and_nothing_before_the_table_exists(tmp_path: Path) -> None:
    assert read_delta(str(tmp_path / "none")) is None
    uri = _table(tmp_path)
    assert read_delta(uri, columns=["ind"]).to_pylist() == [{"ind": 1}, {"ind": 2}, {"ind": 3}]
    assert read_delta(uri, where='"ind" > 1').column("raw").to_pylist() == ["b", "c"]


def test_a_process_that_read_a_table_exits_cleanly(tmp_path: Path) -> None:
    """Through the pyarrow dataset, such a process aborted at exit about one time in three
    ("terminate called without an active exception"): ten clean exits in a row tell."""
    uri = _table(tmp_path)
    for _ in range(10):
        done = subprocess.run(
            [sys.executable, "-c", READER, uri], capture_output=True, text=True, timeout=60
        )
        assert (done.returncode, done.stderr.strip()) == (0, ""), done.stderr
        assert done.stdout.strip() == "[{'ind': 2, 'raw': 'b'}]"


def test_frames_collected_together_come_back_as_each_would_alone(spark: SparkSession) -> None:
    when = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    posts = spark.createDataFrame(
        [(3, "b", when), (1, None, when), (2, "a", None)], "ind long, title string, at timestamp"
    ).orderBy("ind")
    counts = posts.groupBy("title").count()
    empty = spark.createDataFrame([], "reason string, data binary")
    frames = {"posts": posts, "counts": counts, "empty": empty}

    together = collect_arrow(frames)

    assert list(together) == list(frames)
    alone = {name: df.toArrow() for name, df in frames.items()}
    assert {n: t.schema for n, t in together.items()} == {n: t.schema for n, t in alone.items()}
    assert together["posts"].to_pylist() == alone["posts"].to_pylist()  # in its order
    assert [r["ind"] for r in together["posts"].to_pylist()] == [1, 2, 3]
    assert sorted(together["counts"].to_pylist(), key=str) == sorted(
        alone["counts"].to_pylist(), key=str
    )
    assert together["empty"].num_rows == 0
