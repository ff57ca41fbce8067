"""A reproducible wheel of the code the Spark jobs import (``spark`` and ``services``).

Not ``pip wheel .``: the project's metadata requires pyspark, confluent-kafka and the rest
of the local stack, which a Databricks cluster must not install over its runtime, and its
zip timestamps change on every build. This wheel declares only what a Databricks runtime
lacks, and the same sources always give the same bytes, so its hash can name the upload.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("services", "spark")
# What the packaged code imports that a Databricks runtime does not ship.
RUNTIME_REQUIREMENTS = ("pydantic-settings>=2.6,<3", "pyyaml>=6")
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Wheel:
    """A built wheel: its file name and bytes."""

    filename: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def _sources(root: Path) -> list[tuple[str, bytes]]:
    files = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files.append((path.relative_to(root).as_posix(), path.read_bytes()))
    return files


def build_wheel(root: Path) -> Wheel:
    """Pack ``spark/`` and ``services/`` from ``root`` with minimal metadata, reproducibly."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    dist_info = f"{name}-{version}.dist-info"
    metadata = "".join(
        [
            "Metadata-Version: 2.1\n",
            f"Name: {name}\n",
            f"Version: {version}\n",
            f"Summary: {project.get('description', '')}\n",
            *(f"Requires-Dist: {req}\n" for req in RUNTIME_REQUIREMENTS),
        ]
    )
    wheel_meta = (
        "Wheel-Version: 1.0\nGenerator: pinpipe\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    entries = [
        *_sources(root),
        (f"{dist_info}/METADATA", metadata.encode()),
        (f"{dist_info}/WHEEL", wheel_meta.encode()),
    ]
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in entries)
    record += f"{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return Wheel(f"{name}-{version}-py3-none-any.whl", buffer.getvalue())
