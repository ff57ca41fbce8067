"""``python -m services.s3_sink``: run the S3 sink for the connector configuration.

Exit status: 0 after SIGTERM/SIGINT, 1 when the connector fails (the error is logged and
kept in the status file), 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from services.core.config_files import S3_SINK_CONNECTOR_PROPERTIES
from services.core.errors import ConfigError, PinpipeError
from services.core.settings import get_settings
from services.s3_sink.connector_config import load_connector_config
from services.s3_sink.sink import DEFAULT_UPLOAD_THREADS, S3Sink

log = logging.getLogger("services.s3_sink")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.s3_sink",
        description="Consume the connector's topics and write them to S3 the way the "
        "Confluent S3 sink connector does.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=S3_SINK_CONNECTOR_PROPERTIES,
        help="connector properties file (default: %(default)s)",
    )
    parser.add_argument("--flush-size", type=int, help="override flush.size")
    parser.add_argument(
        "--set",
        dest="overrides",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any connector property (repeatable)",
    )
    parser.add_argument(
        "--upload-threads",
        type=int,
        default=DEFAULT_UPLOAD_THREADS,
        help="parallel S3 PUTs (default: %(default)s)",
    )
    parser.add_argument("--log-level", default="INFO", help="default: %(default)s")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the sink until signalled, return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    overrides = dict(args.overrides)
    if args.flush_size is not None:
        overrides["flush.size"] = str(args.flush_size)
    try:
        config = load_connector_config(get_settings(), args.config, overrides)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    sink = S3Sink(config, get_settings(), upload_threads=args.upload_threads)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info(
            "[%s] %s received, finishing the current batch", config.name, signal.strsignal(signum)
        )
        sink.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sink.run()
    except PinpipeError as exc:
        log.error("[%s] connector failed: %s", config.name, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
