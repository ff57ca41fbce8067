"""One install step of `make setup`: run a command into its log, show how far it is, time it.

Standard library only: it runs before any venv exists. While the command runs, its log is
read for what pip, Maven or apt say they do (packages collected, files downloaded, packages set
up) and one status line shows it with the time elapsed: redrawn in place on a terminal,
printed every ``--every`` seconds otherwise (a CI log). At the end one line says what was
installed and how long it took; on failure, the log's last lines and the command's exit code.

    python3 services/stack/setup_step.py --label "project venv" --log .pinpipe/logs/setup-pip.log \
        --kind pip -- .venv/bin/pip install -e '.[dev]'
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

TAIL_LINES = 30
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Counts:
    """What the log said so far."""

    collected: list[str] = field(default_factory=list)
    downloaded: int = 0
    to_install: int = 0
    installed: int = 0
    satisfied: int = 0
    jars: int = 0
    set_up: int = 0
    last: str = ""

    def read(self, line: str) -> None:
        line = ANSI.sub("", line).strip().removeprefix("[INFO] ")
        if m := re.match(r"Collecting (\S+)", line):
            self.collected.append(m.group(1))
            self.last = m.group(1)
        elif line.startswith("Requirement already satisfied"):
            self.satisfied += 1
        elif line.startswith(("Downloading ", "Get:")):
            self.downloaded += 1
        elif m := re.match(r"Downloaded from \S+ (\S+)", line):
            self.downloaded += 1
            self.jars += m.group(1).endswith(".jar")
            self.last = m.group(1).rsplit("/", 1)[-1]
        elif line.startswith("Installing collected packages:"):
            self.to_install = len(line.split(":", 1)[1].split(","))
        elif line.startswith("Successfully installed "):
            self.installed += len(line.split()) - 2
        elif m := re.match(r"Setting up (\S+)", line):
            self.set_up += 1
            self.last = m.group(1)

    def progress(self, kind: str) -> str:
        """How far the step is, in the words of its tool."""
        if kind == "pip":
            if self.installed:
                return f"installed {plural(self.installed, 'package')}"
            if self.to_install:
                return f"installing {plural(self.to_install, 'package')}"
            return f"collected {plural(len(self.collected), 'package')}" + (
                f" (last: {self.last})" if self.last else ""
            )
        if kind == "mvn":
            return f"{plural(self.downloaded, 'file')} downloaded ({plural(self.jars, 'jar')})" + (
                f", last {self.last}" if self.last else ""
            )
        if kind == "apt":
            return f"{self.downloaded} downloaded, {self.set_up} set up" + (
                f" (last: {self.last})" if self.last else ""
            )
        return "working"

    def done(self, kind: str) -> str:
        if kind == "pip":
            return (
                f"{plural(self.installed, 'package')} installed"
                if self.installed
                else f"up to date ({plural(self.satisfied, 'requirement')} already satisfied)"
            )
        if kind == "mvn":
            return (
                f"{plural(self.jars, 'jar')} downloaded"
                if self.downloaded
                else "nothing to download (all in Maven's cache)"
            )
        if kind == "apt":
            return f"{plural(self.set_up, 'package')} set up"
        return "done"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def run(label: str, log: Path, kind: str, command: list[str], append: bool, every: float) -> int:
    """Run ``command`` with its output in ``log``; report progress; return its exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    tty = sys.stdout.isatty()
    print(f"==> {label}", flush=True)
    counts, started, printed = Counts(), time.monotonic(), 0.0
    with log.open("a" if append else "w") as out, log.open() as reader:
        reader.seek(0, 2)
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        pending = ""
        while True:
            code = proc.poll()
            chunk = reader.read()
            lines = (pending + chunk).split("\n")
            pending = lines.pop()
            for line in lines:
                counts.read(line)
            elapsed = time.monotonic() - started
            status = f"    {counts.progress(kind)} · {elapsed:.0f} s"
            if code is not None:
                break
            if tty:
                sys.stdout.write("\r\033[K" + status[: _width() - 1])
                sys.stdout.flush()
            elif elapsed - printed >= every:
                print(status, flush=True)
                printed = elapsed
            time.sleep(0.5)
        counts.read(pending)
    if tty:
        sys.stdout.write("\r\033[K")
    seconds = time.monotonic() - started
    if code == 0:
        print(f"    ✓ {counts.done(kind)} · {seconds:.0f} s  (log: {log})", flush=True)
        return 0
    print(f"    ✗ failed after {seconds:.0f} s (exit {code}); last lines of {log}:", flush=True)
    print("\n".join(log.read_text(errors="replace").splitlines()[-TAIL_LINES:]), flush=True)
    return code


def _width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 20)).columns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="what the step installs")
    parser.add_argument("--log", type=Path, required=True, help="the command's log file")
    parser.add_argument("--kind", choices=["pip", "mvn", "apt", "plain"], default="plain")
    parser.add_argument("--append", action="store_true", help="append to the log")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between lines (no TTY)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    return run(args.label, args.log, args.kind, command, args.append, args.every)


if __name__ == "__main__":
    sys.exit(main())
