"""``pinpipe bench``: measure the pipeline's speeds on this machine and print them.

Each benchmark runs against its own resources (temporary state directory, free ports, its
own database) so it never disturbs the demo stack.
"""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from services.settings import Settings, get_settings


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    unit: str
    note: str = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_settings(
    tmp: Path, database: str = "pinterest_data_bench", **overrides: object
) -> Settings:
    """Settings for a throw-away stack: own state dir, free ports, own database."""
    base = get_settings()
    creds = tmp / "db_creds.yaml"
    creds.write_text(yaml.safe_dump({**base.db.model_dump(), "DATABASE": database}))
    values: dict[str, object] = {
        "user_id": "bench0000001",
        "state_dir": tmp / "state",
        "db_creds_file": creds,
        "broker_port": _free_port(),
        "localstack_port": _free_port(),
        "rest_proxy_port": _free_port(),
        "seed_posts": 1_000,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def bench_stack_startup() -> list[Measurement]:
    """Cold start of the native stack (fresh state directory) and a warm `stack up`."""
    from services.stack.stack import NativeStack

    with tempfile.TemporaryDirectory(prefix="pinpipe-bench-") as tmp:
        settings = bench_settings(Path(tmp))
        stack = NativeStack(settings)
        try:
            started = time.perf_counter()
            steps = stack.up()
            cold = time.perf_counter() - started
            started = time.perf_counter()
            stack.up()
            warm = time.perf_counter() - started
        finally:
            stack.down()
    per_service = ", ".join(f"{s.service} {s.seconds:.1f}s" for s in steps)
    return [
        Measurement("stack up (cold)", cold, "s", per_service),
        Measurement("stack up (already running)", warm, "s"),
    ]


def bench_seed(posts: int = 1_000_000) -> list[Measurement]:
    """Bulk seeding of the source database: generation and LOAD DATA together."""
    from services.source_db.database import SourceDatabase
    from services.stack.mysql import MySQLService

    with tempfile.TemporaryDirectory(prefix="pinpipe-bench-") as tmp:
        settings = bench_settings(Path(tmp))
        MySQLService(settings).ensure_database_and_user()
        db = SourceDatabase.connect(settings.db)
        try:
            result = db.seed(posts, seed=1)
            db.truncate()
        finally:
            db.engine.dispose()
    return [
        Measurement(f"seed {posts:,} posts ({result.rows:,} rows)", result.seconds, "s"),
        Measurement("seed rate", result.rows_per_second, "rows/s"),
        Measurement("seed rate (posts)", result.posts / result.seconds, "posts/s"),
    ]


BENCHMARKS: dict[str, Callable[[], list[Measurement]]] = {
    "stack": bench_stack_startup,
    "seed": bench_seed,
}
