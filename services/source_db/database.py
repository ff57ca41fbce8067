"""The source database: create the tables, seed them in bulk, profile their dirt."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pymysql
from sqlalchemy import Engine, create_engine, func, select, text

from services.core import contract as c
from services.core.settings import DbCredentials
from services.source_db.generator import DirtRates, SourceGenerator
from services.source_db.source_tables import SOURCE_TABLES, metadata

# MySQL errors meaning "LOAD DATA LOCAL is not allowed here": fall back to INSERTs.
_LOCAL_INFILE_REFUSED = {1148, 2068, 3948}


@dataclass(frozen=True)
class SeedResult:
    posts: int
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


@dataclass(frozen=True)
class ProfileRow:
    table: str
    column: str
    value: str
    count: int
    rate: float


def make_engine(creds: DbCredentials, database: str | None = None) -> Engine:
    """One pooled engine per process; LOAD DATA LOCAL enabled for bulk seeding."""
    return create_engine(
        creds.sqlalchemy_url(database),
        pool_pre_ping=True,
        pool_recycle=3600,
        connect_args={"local_infile": True},
    )


class SourceDatabase:
    """Tables of ``pinterest_data`` behind one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def connect(cls, creds: DbCredentials) -> SourceDatabase:
        return cls(make_engine(creds))

    def create_tables(self) -> None:
        metadata.create_all(self.engine, checkfirst=True)

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for table in SOURCE_TABLES.values()
            }

    def is_empty(self) -> bool:
        return self.counts()["pinterest_data"] == 0

    def truncate(self) -> None:
        with self.engine.begin() as conn:
            for table in SOURCE_TABLES.values():
                conn.execute(text(f"TRUNCATE TABLE `{table.name}`"))

    def seed(
        self,
        posts: int,
        seed: int,
        rates: DirtRates | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> SeedResult:
        """Replace the tables' contents with ``posts`` generated posts (and their geo/user rows)."""
        started = time.perf_counter()
        self.create_tables()
        self.truncate()
        generator = SourceGenerator(seed=seed, rates=rates or DirtRates())
        rows = 0
        with tempfile.TemporaryDirectory(prefix="pinpipe-seed-") as tmp:
            for chunk in generator.chunks(posts):
                for key, table in (("pin", chunk.pin), ("geo", chunk.geo), ("user", chunk.user)):
                    self._bulk_load(SOURCE_TABLES[key].name, table, Path(tmp))
                    rows += table.num_rows
                if progress:
                    progress(chunk.posts)
        return SeedResult(posts=posts, rows=rows, seconds=time.perf_counter() - started)

    def _bulk_load(self, name: str, table: pa.Table, tmp: Path) -> None:
        path = tmp / f"{name}.csv"
        pacsv.write_csv(
            table,
            path,
            write_options=pacsv.WriteOptions(include_header=False, quoting_style="all_valid"),
        )
        cols = ", ".join(f"`{col}`" for col in table.column_names)
        sql = (
            f"LOAD DATA LOCAL INFILE '{path.as_posix()}' INTO TABLE `{name}` "
            "CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' "
            f"ESCAPED BY '' LINES TERMINATED BY '\\n' ({cols})"
        )
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            try:
                cur.execute(sql)
            except pymysql.err.MySQLError as exc:
                if exc.args[0] not in _LOCAL_INFILE_REFUSED:
                    raise
                self._insert_rows(cur, name, table)
            finally:
                cur.close()
            raw.commit()
        finally:
            raw.close()

    @staticmethod
    def _insert_rows(cur: object, name: str, table: pa.Table) -> None:
        cols = ", ".join(f"`{col}`" for col in table.column_names)
        marks = ", ".join(["%s"] * table.num_columns)
        rows = list(
            zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True)
        )
        cur.executemany(f"INSERT INTO `{name}` ({cols}) VALUES ({marks})", rows)  # type: ignore[attr-defined]

    def profile(self) -> tuple[dict[str, int], list[ProfileRow]]:
        """Row counts, and how often each dirty value appears per column."""
        counts = self.counts()
        pin_rows = counts["pinterest_data"] or 1
        checks: list[tuple[str, str, str]] = []  # (column, label, SQL condition)
        for col, sentinels in c.PIN_SENTINELS.items():
            checks += [(col, s, f"BINARY `{col}` = {_quote(s)}") for s in sentinels]
        for col in c.PIN_BLANKABLE:
            checks.append((col, "'' (empty)", f"BINARY `{col}` = ''"))
            checks.append((col, "' ' (one space)", f"BINARY `{col}` = ' '"))
        fc = "`follower_count`"
        checks += [
            ("follower_count", "plain number", f"{fc} REGEXP '^[0-9]+$'"),
            ("follower_count", "<n>k", f"BINARY {fc} REGEXP '^[0-9]+k$'"),
            ("follower_count", "<n.n>k (decimal)", f"BINARY {fc} REGEXP '^[0-9]+[.][0-9]+k$'"),
            ("follower_count", "<n>M / <n.n>M", f"BINARY {fc} REGEXP '^[0-9]+([.][0-9]+)?M$'"),
        ]
        sums = ", ".join(f"SUM({cond})" for _, _, cond in checks)
        with self.engine.connect() as conn:
            values = conn.execute(text(f"SELECT {sums} FROM `pinterest_data`")).one()
            minors = conn.execute(text("SELECT SUM(age < 18) FROM user_data")).scalar_one()
        rows = [
            ProfileRow("pinterest_data", col, label, int(v or 0), int(v or 0) / pin_rows)
            for (col, label, _), v in zip(checks, values, strict=True)
        ]
        user_rows = counts["user_data"] or 1
        rows.append(
            ProfileRow(
                "user_data",
                "age",
                "under 18 (no age group)",
                int(minors or 0),
                int(minors or 0) / user_rows,
            )
        )
        return counts, rows


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
