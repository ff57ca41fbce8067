"""The original project's streaming entry point: ``python emulator/user_posting_emulation_streaming.py``.

Puts sampled rows from the source database to the three Kinesis streams through the API
Gateway invoke URL (``PUT /streams/<stream>/record``), forever, like the original script
(one record per request, three tables per iteration, a random 0-1 s pause). Any
``pinpipe emulate stream`` option may be passed, e.g. ``--count 100 --batch-size 50`` to
run the faster batched mode (``PUT /streams/<stream>/records``) instead.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Run ``pinpipe emulate stream``; with no arguments, the original's endless classic loop."""
    args = list(sys.argv[1:] if argv is None else argv) or ["--classic", "--duration", "1e9"]
    # The command line is the layer above the emulator: run it, don't import it.
    command = [sys.executable, "-m", "pinpipe.cli", "emulate", "stream", *args]
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
