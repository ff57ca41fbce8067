"""The batch job: load the bucket, clean the three tables, answer the eight queries, publish.

Runs unchanged under ``pinpipe batch run``, ``spark-submit spark/jobs/batch_job.py`` and as a
Databricks ``spark_python_task``; the reader, source root, warehouse and table writer are
settings (``PINPIPE_*``) that the command-line flags override.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial, reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

if __package__ in (None, ""):  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pandas as pd
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from services.core.errors import PrerequisiteError
from services.core.settings import TABLES, Settings, TableName, settings_with
from services.core.sink_keys import SinkKeys
from spark.sinks.report import write_report
from spark.sinks.tables import collect_arrow, write_table
from spark.sources.loading import CORRUPT, SOURCE, load_raw_tables, raw_spool
from spark.sources.sink_objects import Spool
from spark.transformations.cleaning import (
    CLEANERS,
    QUALITY_SCHEMA,
    REASON,
    RULE_QUARANTINED,
    RULE_ROWS,
    quality_rows,
    split_quarantine,
)
from spark.transformations.queries import answers_from, joined
from spark.transformations.schemas import RAW_SCHEMAS

MALFORMED = "malformed JSON record"
SPOOL_PREFIX = "pinpipe-batch-spool-"
T = TypeVar("T")


@dataclass
class BatchResult:
    """What one run read, kept, quarantined and wrote, with the answers."""

    rows_read: dict[str, int] = field(default_factory=dict)
    rows_clean: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, dict[str, int]] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    answers: dict[str, pd.DataFrame] = field(default_factory=dict)
    quality: pd.DataFrame = field(default_factory=pd.DataFrame)
    report: str = ""
    seconds: float = 0.0
    # Wall time per step ("read", "clean tables", …): where the seconds went.
    phases: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "warehouse": str(Path(next(iter(self.tables.values()), ".")).parent),
            "report": self.report,
            "tables": self.tables,
            "rows": {
                "read": self.rows_read,
                "clean": self.rows_clean,
                "quarantined": self.quarantined,
            },
            "answers": {k: len(v) for k, v in self.answers.items()},
            "seconds": round(self.seconds, 2),
            "phases": {k: round(v, 2) for k, v in self.phases.items()},
        }


def quarantined_rows(raw: DataFrame, table: TableName) -> DataFrame:
    """Rows that can't be cleaned, with the reason and the raw record: none vanish silently."""
    malformed = raw.filter(F.col(CORRUPT).isNotNull()).select(
        F.lit(table).alias("table"),
        F.lit(MALFORMED).alias(REASON),
        F.col(CORRUPT).alias("raw"),
        F.col(SOURCE).alias("source"),
    )
    _, bad_key = split_quarantine(raw.filter(F.col(CORRUPT).isNull()).drop(CORRUPT), table)
    bad = bad_key.select(
        F.lit(table).alias("table"),
        F.col(REASON),
        F.to_json(F.struct(*RAW_SCHEMAS[table].fieldNames())).alias("raw"),
        F.col(SOURCE).alias("source"),
    )
    return malformed.unionByName(bad)


class Phases:
    """Wall time per step of a run, in order: where a run's seconds go."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def _in_parallel(work: Mapping[str, Callable[[], T]]) -> dict[str, T]:
    """Run independent Spark actions side by side: small jobs leave the cores idle between
    their stages, and a second job fills the gaps. Results keep the mapping's order."""
    with ThreadPoolExecutor(max(1, len(work))) as pool:
        futures = {name: pool.submit(action) for name, action in work.items()}
        return {name: future.result() for name, future in futures.items()}


def run(
    spark: SparkSession,
    settings: Settings,
    report_path: Path | None = None,
    spool: Spool | None = None,
) -> BatchResult:
    """Load, clean, query, write every table and the report (see ``_run``).

    The boto3 reader fetches the bucket into a spool folder on the driver's disk: ``spool``
    when the caller started one (``main`` does, before the session starts), else one of
    this run's own, removed when it ends.
    """
    if settings.batch_reader != "boto3":
        return _run(spark, settings, report_path, None)
    if not (spark.sparkContext.master or "").startswith("local"):
        raise PrerequisiteError(
            "--reader boto3 fetches the bucket to the driver's disk, which only a local "
            f"session reads (master is {spark.sparkContext.master}): use --reader spark."
        )
    if spool is not None:
        return _run(spark, settings, report_path, spool)
    with tempfile.TemporaryDirectory(prefix=SPOOL_PREFIX) as folder:
        return _run(spark, settings, report_path, raw_spool(settings, Path(folder)))


def _run(
    spark: SparkSession, settings: Settings, report_path: Path | None, spool: Spool | None
) -> BatchResult:
    """Load, clean, query, write every table and the report.

    Every input row is parsed once (the raw tables are cached); each cleaned table is
    computed once (cached, then collected as Arrow for delta-rs or written by Spark), and
    the quality figures are observed in that same pass (``DataFrame.observe``); the answers
    come from two cached joins (posts with their geolocation, users with their post).
    """
    started = time.perf_counter()
    phase = Phases()
    result = BatchResult(phases=phase.seconds)
    arrow = settings.table_writer == "delta-rs"
    with phase("read"):
        raw = {t: df.cache() for t, df in load_raw_tables(spark, settings, spool).items()}
        malformed = {t: Observation() for t in TABLES}
        checked = {t: Observation() for t in TABLES}
        clean = {
            t: CLEANERS[t](
                raw[t]
                .observe(malformed[t], F.count_if(F.col(CORRUPT).isNotNull()).alias("malformed"))
                .filter(F.col(CORRUPT).isNull())
                .drop(CORRUPT, SOURCE),
                checked[t],
            ).cache()
            for t in TABLES
        }
        # The first table's action reads the spool (and, for boto3, has fetched the bucket).
        first = TABLES[0]
        computed: dict[str, tuple[DataFrame | pa.Table, int]] = {
            first: _materialise(clean[first], arrow)
        }
    with phase("clean tables"):
        computed |= _in_parallel({t: partial(_materialise, clean[t], arrow) for t in TABLES[1:]})
        result.rows_clean = {t: n for t, (_, n) in computed.items()}
        result.tables |= _in_parallel(
            {
                f"{t}_clean": partial(write_table, rows, settings, settings.clean_tables[t])
                for t, (rows, _) in computed.items()
            }
        )
    with phase("quarantine"):
        quarantine = reduce(DataFrame.unionByName, (quarantined_rows(raw[t], t) for t in TABLES))
        result.tables["quarantine"] = write_table(
            quarantine, settings, settings.batch_quarantine_table
        )
    rows: list[dict[str, Any]] = []
    for t in TABLES:
        bad = int(malformed[t].get["malformed"])
        rows += quality_rows(t, checked[t].get, result.rows_clean[t])
        rows.append(
            {"table": t, "column": None, "rule": RULE_QUARANTINED, "value": MALFORMED, "count": bad}
        )
    result.quality = pd.DataFrame(rows, columns=QUALITY_SCHEMA.fieldNames())
    for row in rows:
        table, count = row["table"], row["count"]
        # Read: the well-formed rows the checks saw, and the malformed ones.
        if row["rule"] == RULE_ROWS or row["value"] == MALFORMED:
            result.rows_read[table] = result.rows_read.get(table, 0) + count
        if row["rule"] == RULE_QUARANTINED and count:
            result.quarantined.setdefault(table, {})[row["value"]] = count
    with phase("answers"):
        posts, users = joined(clean["pin"], clean["geo"], clean["user"])
        posts, users = posts.cache(), users.cache()
        answers = answers_from(posts, users, clean["user"])
        # delta-rs writes Arrow: all nine collected by one Spark job.
        answer_rows: Mapping[str, Any] = (
            collect_arrow(answers)
            if arrow
            else _in_parallel({name: df.cache().toPandas for name, df in answers.items()})
        )
        result.tables |= _in_parallel(
            {
                name: partial(
                    write_table,
                    rows if arrow else answers[name],
                    settings,
                    settings.answer_table(name),
                )
                for name, rows in answer_rows.items()
            }
        )
        result.answers = {
            name: rows.to_pandas() if arrow else rows for name, rows in answer_rows.items()
        }
    result.seconds = time.perf_counter() - started
    with phase("report"):
        path = report_path or settings.reports_dir / "batch-report.html"
        meta = {
            "user id": settings.user_id,
            "source": f"s3://{settings.bucket}/{SinkKeys.of(settings).root()} ({settings.batch_reader} reader)",
            "warehouse": settings.warehouse_uri,
            "rows read": result.rows_read,
            "rows clean": result.rows_clean,
            "rows quarantined": result.quarantined or "none",
            "seconds": f"{result.seconds:.1f}",
        }
        result.report = str(write_report(path, result.answers, result.quality, meta))
    # A long-lived session (an all-purpose cluster) should not keep this run's data.
    for df in [*clean.values(), *raw.values(), posts, users, *answers.values()]:
        df.unpersist()
    result.seconds = time.perf_counter() - started
    return result


def _materialise(df: DataFrame, arrow: bool) -> tuple[DataFrame | pa.Table, int]:
    """Compute a cached table: what to write (its rows as Arrow when delta-rs writes them,
    else the cached DataFrame) and how many rows it has."""
    if arrow:
        rows = df.toArrow()
        return rows, rows.num_rows
    return df, df.count()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="batch", description=__doc__)
    parser.add_argument("--user-id", help="the user id every name derives from (default: settings)")
    parser.add_argument("--reader", choices=["boto3", "spark"], help="how to read the bucket")
    parser.add_argument("--source-root", help="root of the sink's layout for the spark reader")
    parser.add_argument("--warehouse", help="where tables are written (folder, s3://, volume)")
    parser.add_argument("--writer", choices=["delta-rs", "spark-delta", "parquet"])
    parser.add_argument("--report", type=Path, help="path of the HTML report")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings, with the flags given on the command line."""
    return settings_with(
        {
            "user_id": args.user_id,
            "batch_reader": args.reader,
            "batch_source_root": args.source_root,
            "warehouse_uri": args.warehouse,
            "table_writer": args.writer,
        }
    )


# Below this many bytes of input, a new session runs on the JVM's quick JIT tier (C1 only).
# Measured on the demo's 3,000 objects (1 MB): the job's process took 23.5-25.8 s against
# 27-30 s, since C2 compiling competes for the two cores with a job of a few seconds. On
# 1M rows (260 MB) C1 alone took 66 s against 39 s: big inputs keep the full JIT.
SMALL_INPUT_BYTES = 64 * 2**20
QUICK_JIT = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"}


def small_input_jvm(input_bytes: int) -> dict[str, str]:
    """The settings a new local session gets for an input of this size."""
    return dict(QUICK_JIT) if input_bytes < SMALL_INPUT_BYTES else {}


def main(argv: list[str] | None = None) -> BatchResult:
    """spark-submit / Databricks entry point."""
    from spark.session import get_spark

    args = parse_args(argv)
    settings = settings_from_args(args)
    with tempfile.TemporaryDirectory(prefix=SPOOL_PREFIX) as folder:
        # The bucket is fetched while the JVM starts: both take seconds, on different ends.
        spool = (
            raw_spool(settings, Path(folder)).start() if settings.batch_reader == "boto3" else None
        )
        extra = small_input_jvm(spool.size) if spool is not None else {}
        result = run(get_spark(settings, "pinpipe-batch", extra), settings, args.report, spool)
    if args.json:
        sys.stdout.write(json.dumps(result.summary()) + "\n")
    else:
        from spark.sinks.console import print_answers

        print_answers(result)
    return result


if __name__ == "__main__":
    main()
