"""The sink's status file: its state and what it stored per topic, for health checks and
the demo's per-hop counts."""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from services.core.settings import Settings

State = Literal["starting", "running", "stopped", "failed"]

_WRITE_INTERVAL_S = 1.0


def status_path(settings: Settings, connector_name: str) -> Path:
    """Where the sink running ``connector_name`` keeps its status."""
    return settings.state_dir / "s3-sink" / f"{connector_name}.json"


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status a sink wrote, or None if there is none (yet)."""
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return None


@dataclass
class TopicCounts:
    records: int = 0
    objects: int = 0
    errors: int = 0


class SinkStatus:
    """Counters and state of one sink process, written atomically at most once a second."""

    def __init__(self, path: Path, connector: str) -> None:
        self.path = path
        self.connector = connector
        self.state: State = "starting"
        self.error = ""
        self.topics: defaultdict[str, TopicCounts] = defaultdict(TopicCounts)
        self.assignment: list[str] = []
        # Monotonic times for throughput measurements; not written to the file.
        self.first_record_at: float | None = None
        self.last_stored_at: float | None = None
        self._started_at = time.time()
        self._written_at = 0.0
        self._dirty = True

    @property
    def records_stored(self) -> int:
        """Records in objects stored so far, over all topics."""
        return sum(c.records for c in self.topics.values())

    def consumed(self) -> None:
        """Note that records arrived (starts the throughput clock once)."""
        if self.first_record_at is None:
            self.first_record_at = time.monotonic()

    def stored(self, topic: str, records: int) -> None:
        """Count one stored object."""
        counts = self.topics[topic]
        counts.records += records
        counts.objects += 1
        self.last_stored_at = time.monotonic()
        self._dirty = True

    def failed_record(self, topic: str) -> None:
        """Count a record that could not be converted (skipped or sent to the DLQ)."""
        self.topics[topic].errors += 1
        self._dirty = True

    def assigned(self, partitions: list[str]) -> None:
        """Record the current assignment, as ``topic-partition`` names."""
        self.assignment = sorted(partitions)
        self._dirty = True

    def set_state(self, state: State, error: str = "") -> None:
        """Change state and write the file now."""
        self.state = state
        self.error = error
        self._dirty = True
        self.write(force=True)

    def write(self, force: bool = False) -> None:
        """Write the file if something changed and the last write is a second old."""
        now = time.time()
        if not self._dirty or (not force and now - self._written_at < _WRITE_INTERVAL_S):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=2))
        os.replace(tmp, self.path)
        self._written_at = now
        self._dirty = False

    def as_dict(self) -> dict[str, Any]:
        """The status as written to the file."""
        return {
            "connector": self.connector,
            "state": self.state,
            "error": self.error,
            "pid": os.getpid(),
            "started_at": self._started_at,
            "updated_at": time.time(),
            "assignment": self.assignment,
            "records_stored": self.records_stored,
            "topics": {
                topic: {"records": c.records, "objects": c.objects, "errors": c.errors}
                for topic, c in sorted(self.topics.items())
            },
        }
