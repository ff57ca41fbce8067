"""The batch job: load the bucket, clean the three tables, answer the eight queries, publish.

Runs unchanged under ``pinpipe batch run``, ``spark-submit spark/jobs/batch_job.py`` and as a
Databricks ``spark_python_task``; the reader, source root, warehouse and table writer are
settings (``PINPIPE_*``) that the command-line flags override.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from services.core.settings import TABLES, Settings, TableName, settings_with
from services.core.sink_keys import SinkKeys
from spark.sinks.report import write_report
from spark.sinks.tables import write_table
from spark.sources.loading import CORRUPT, SOURCE, load_raw_tables
from spark.transformations.cleaning import CLEANERS, REASON, quality_counts, split_quarantine
from spark.transformations.queries import run_all
from spark.transformations.schemas import RAW_SCHEMAS

MALFORMED = "malformed JSON record"


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


def run(spark: SparkSession, settings: Settings, report_path: Path | None = None) -> BatchResult:
    """Load, clean, query, write every table and the report."""
    started = time.perf_counter()
    result = BatchResult()
    clean: dict[str, DataFrame] = {}
    quarantines: list[DataFrame] = []
    quality: list[pd.DataFrame] = []
    raw_tables = load_raw_tables(spark, settings)
    for table in TABLES:
        raw = raw_tables[table].cache()
        result.rows_read[table] = raw.count()
        wellformed = raw.filter(F.col(CORRUPT).isNull()).drop(CORRUPT, SOURCE)
        quarantines.append(quarantined_rows(raw, table))
        quality.append(quality_counts(wellformed, table).toPandas())
        clean[table] = CLEANERS[table](wellformed).cache()
        result.rows_clean[table] = clean[table].count()
        result.tables[f"{table}_clean"] = write_table(
            clean[table], settings, settings.clean_tables[table]
        )
    quarantine = quarantines[0].unionByName(quarantines[1]).unionByName(quarantines[2]).cache()
    for row in quarantine.groupBy("table", REASON).count().collect():
        result.quarantined.setdefault(row["table"], {})[row[REASON]] = int(row["count"])
    result.tables["quarantine"] = write_table(quarantine, settings, settings.batch_quarantine_table)
    malformed = pd.DataFrame(
        [
            {"table": t, "column": None, "rule": "quarantined", "value": MALFORMED, "count": n}
            for t, reasons in result.quarantined.items()
            for reason, n in reasons.items()
            if reason == MALFORMED
        ]
    )
    result.quality = pd.concat([*quality, malformed], ignore_index=True)

    for name, answer in run_all(clean["pin"], clean["geo"], clean["user"]).items():
        df = answer.cache()  # computed once, then written and collected
        result.tables[name] = write_table(df, settings, settings.answer_table(name))
        result.answers[name] = df.toPandas()
    result.seconds = time.perf_counter() - started
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
    for df in [*clean.values(), *raw_tables.values(), quarantine]:
        df.unpersist()
    return result


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


def main(argv: list[str] | None = None) -> BatchResult:
    """spark-submit / Databricks entry point."""
    from spark.session import get_spark

    args = parse_args(argv)
    settings = settings_from_args(args)
    result = run(get_spark(settings, "pinpipe-batch"), settings, args.report)
    if args.json:
        sys.stdout.write(json.dumps(result.summary()) + "\n")
    else:
        from spark.sinks.console import print_answers

        print_answers(result)
    return result


if __name__ == "__main__":
    main()
