"""The original project's streaming entry point: ``python emulator/user_posting_emulation_streaming.py``.

Puts sampled rows from the source database to the three Kinesis streams through the API
Gateway invoke URL (``PUT /streams/<stream>/record``), forever, like the original script
(one record per request, three tables per iteration, a random 0-1 s pause). Any
``pinpipe emulate stream`` option may be passed, e.g. ``--count 100 --batch-size 50`` to
run the faster batched mode (``PUT /streams/<stream>/records``) instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.cli import app


def main(argv: list[str] | None = None) -> None:
    """Run the emulator; with no arguments, the original's endless classic loop."""
    args = list(sys.argv[1:] if argv is None else argv) or ["--classic", "--duration", "1e9"]
    app(["emulate", "stream", *args])


if __name__ == "__main__":
    main()
