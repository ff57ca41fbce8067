"""Download the jars listed in jars.txt into a folder, each checked against Maven's SHA-1.

Used at image build time (``python fetch_jars.py jars.txt "$SPARK_HOME/jars"``) by the Spark
and Airflow images: one list, so the driver and the executors get the same jars.
"""

from __future__ import annotations

import hashlib
import sys
import urllib.request
from pathlib import Path


def jar_urls(listing: str) -> list[str]:
    """The URLs of a jars.txt: one per line, ``#`` comments and blank lines skipped."""
    return [line.strip() for line in listing.splitlines() if line.strip() and line[0] != "#"]


def fetch(url: str, folder: Path) -> Path:
    """Download one jar; fail if its SHA-1 is not the one Maven publishes beside it."""
    with urllib.request.urlopen(url, timeout=120) as resp:
        body = resp.read()
    with urllib.request.urlopen(f"{url}.sha1", timeout=60) as resp:
        expected = resp.read().decode().split()[0]
    actual = hashlib.sha1(body).hexdigest()
    if actual != expected:
        raise SystemExit(f"{url}: SHA-1 {actual} != published {expected}")
    path = folder / url.rsplit("/", 1)[1]
    path.write_bytes(body)
    return path


def main(listing: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for url in jar_urls(listing.read_text()):
        sys.stdout.write(f"fetched {fetch(url, folder)}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
