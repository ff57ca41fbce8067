"""What every benchmark shares: a measurement, and settings for a throw-away stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from services.core.settings import Settings, get_settings
from services.core.waiting import free_port


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    unit: str
    note: str = ""


@dataclass(frozen=True)
class Goal:
    """A speed goal: what was measured against its reference, both from the same run.

    It holds when ``measured / reference <= limit`` (a fixed target, such as a latency
    bound, is a reference of its own with ``limit`` 1).
    """

    name: str
    measured: float
    measured_what: str
    reference: float
    reference_what: str
    limit: float
    unit: str = "s"

    @property
    def ratio(self) -> float:
        return self.measured / self.reference if self.reference else float("inf")

    @property
    def holds(self) -> bool:
        return self.ratio <= self.limit

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "ratio": round(self.ratio, 3), "holds": self.holds}


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
        "broker_port": free_port(),
        "broker_controller_port": free_port(),
        "localstack_port": free_port(),
        "rest_proxy_port": free_port(),
        "seed_posts": 1_000,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
