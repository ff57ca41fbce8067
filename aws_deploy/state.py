"""What ``apply`` created, so ``destroy`` removes exactly that and nothing it found in place.

One JSON file per user id, region and endpoint under the state directory. ``plan`` only
reads it; every write happens right after the AWS call it records, so an interrupted
``apply`` still leaves a record of what it made.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services.core.errors import ConfigError
from services.core.settings import Settings


@dataclass(frozen=True)
class Record:
    """One resource ``apply`` created: the step, its kind and its id (name or ARN)."""

    step: str
    kind: str
    id: str
    data: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass
class DeployState:
    """The records and fingerprints of one deploy target."""

    path: Path
    created: list[Record] = field(default_factory=list)
    # Hashes of what was last pushed where the service can't be read back (secrets, SSM).
    fingerprints: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_target(cls, settings: Settings) -> DeployState:
        """The state of this user id in this region (and endpoint, for LocalStack runs)."""
        name = settings.deploy_record_name
        if settings.aws_endpoint_url:
            name += "-" + re.sub(r"[^A-Za-z0-9]+", "_", settings.aws_endpoint_url.split("//")[-1])
        return cls.load(settings.state_dir / "aws-deploy" / f"{name}.json")

    @classmethod
    def load(cls, path: Path) -> DeployState:
        """Read the state file; a missing one means nothing was created yet."""
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except ValueError:
            raise ConfigError(f"{path}: deploy state is not valid JSON") from None
        return cls(
            path,
            [Record(**r) for r in raw.get("created", [])],
            dict(raw.get("fingerprints", {})),
        )

    def owns(self, step: str, kind: str, id_: str) -> bool:
        """Whether ``apply`` created this resource."""
        return Record(step, kind, id_) in self.created

    def records(self, step: str) -> list[Record]:
        """What ``apply`` created in one step, oldest first."""
        return [r for r in self.created if r.step == step]

    def record(self, step: str, kind: str, id_: str, **data: str) -> None:
        """Remember a resource ``apply`` just created."""
        if not self.owns(step, kind, id_):
            self.created.append(Record(step, kind, id_, data))
            self._save()

    def forget(self, record: Record) -> None:
        """Drop a resource ``destroy`` removed (or found already gone)."""
        self.created = [r for r in self.created if r != record]
        self.fingerprints = {
            k: v for k, v in self.fingerprints.items() if not k.startswith(f"{record.id}#")
        }
        self._save()

    def set_fingerprint(self, key: str, value: str) -> None:
        """Remember the hash of what was last pushed to ``key``."""
        self.fingerprints[key] = value
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"created": [asdict(r) for r in self.created], "fingerprints": self.fingerprints}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        tmp.replace(self.path)
