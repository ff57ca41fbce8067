"""Sample source rows with replacement, in bulk, through one engine.

The original opens a new engine per row and reads one row per query; here one pooled
engine reads a whole chunk of sampled rows with three ``IN`` queries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from services.core.errors import TerminalError
from services.source_db.source_tables import geolocation_data, pinterest_data, user_data


@dataclass(frozen=True)
class Event:
    """One sampled post: its pin, geo and user rows (the same ``ind``)."""

    ind: int
    pin: dict[str, Any]
    geo: dict[str, Any] | None
    user: dict[str, Any] | None

    def by_table(self) -> dict[str, dict[str, Any] | None]:
        """Rows per table; None where the source has no row for this ``ind``."""
        return {"pin": self.pin, "geo": self.geo, "user": self.user}


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as the original client sends them (``str(datetime)``: ``2020-08-28 03:52:47``)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime | date):
            out[key] = str(value)
        elif isinstance(value, Decimal):
            out[key] = float(value)
        else:
            out[key] = value
    return out


class RowSampler:
    """Draws posts uniformly with replacement from ``pinterest_data`` and joins their rows."""

    def __init__(self, engine: Engine, seed: int | None = None) -> None:
        self.engine = engine
        self.rng = np.random.default_rng(seed)
        with engine.connect() as conn:
            self._inds = np.array(
                conn.execute(select(pinterest_data.c["index"]).order_by(pinterest_data.c["index"]))
                .scalars()
                .all(),
                dtype=np.int64,
            )
        if len(self._inds) == 0:
            raise TerminalError("pinterest_data is empty: run `pinpipe db seed` first")

    @property
    def population(self) -> int:
        return len(self._inds)

    def sample(self, n: int) -> list[Event]:
        """``n`` events drawn with replacement (duplicates are expected, as in the original)."""
        inds = self._inds[self.rng.integers(0, len(self._inds), n)]
        wanted = sorted(set(inds.tolist()))
        with self.engine.connect() as conn:
            pins = {
                r["index"]: dict(r)
                for r in conn.execute(
                    select(pinterest_data).where(pinterest_data.c["index"].in_(wanted))
                ).mappings()
            }
            geos = {
                r["ind"]: dict(r)
                for r in conn.execute(
                    select(geolocation_data).where(geolocation_data.c.ind.in_(wanted))
                ).mappings()
            }
            users = {
                r["ind"]: dict(r)
                for r in conn.execute(
                    select(user_data).where(user_data.c.ind.in_(wanted))
                ).mappings()
            }
        return [
            Event(
                int(i),
                jsonable(pins[i]),
                jsonable(geos[i]) if i in geos else None,
                jsonable(users[i]) if i in users else None,
            )
            for i in inds.tolist()
        ]

    def chunks(self, total: int | None, chunk: int = 2_000) -> Iterator[list[Event]]:
        """Events in chunks; ``total=None`` samples forever."""
        left = total
        while left is None or left > 0:
            n = chunk if left is None else min(chunk, left)
            yield self.sample(n)
            if left is not None:
                left -= n
