"""`make setup`'s step runner: progress from the tool's log, the time taken, the tail on failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "services" / "stack" / "setup_step.py"

pytestmark = pytest.mark.unit


def step(tmp_path: Path, kind: str, program: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """The script as make runs it (no TTY), wrapping ``python -c program``."""
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--kind",
            kind,
            "--label",
            "the thing",
            "--log",
            str(tmp_path / "logs" / "step.log"),
            *extra,
            "--",
            sys.executable,
            "-c",
            program,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


PIP_LOG = """
import time
print("Collecting six", flush=True)
print("Collecting tomli", flush=True)
print("Requirement already satisfied: pip in ./venv", flush=True)
time.sleep(1.5)
print("Installing collected packages: tomli, six")
print("Successfully installed six-1.17.0 tomli-2.2.1")
"""


def test_pip_progress_is_printed_as_lines_and_the_total_at_the_end(tmp_path: Path) -> None:
    done = step(tmp_path, "pip", PIP_LOG, "--every", "0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "==> the thing"
    assert "\r" not in done.stdout, "no redraws in a log that is not a terminal"
    assert any(line.startswith("    collected ") for line in lines[1:-1])
    assert lines[-1].startswith("    ✓ 2 packages installed · ")
    assert "Successfully installed" in (tmp_path / "logs" / "step.log").read_text()


def test_a_failed_step_shows_the_log_tail_and_its_exit_code(tmp_path: Path) -> None:
    program = "import sys\nfor i in range(40): print(f'line {i}')\nsys.exit(3)"
    done = step(tmp_path, "plain", program)
    assert done.returncode == 3
    assert "✗ failed after" in done.stdout and "(exit 3)" in done.stdout
    assert "line 39" in done.stdout and "line 9\n" not in done.stdout, "the last 30 lines only"


def test_maven_jars_and_apt_packages_are_counted(tmp_path: Path) -> None:
    central = "https://repo.maven.apache.org/maven2/org/x"
    mvn = (
        f"print('\\x1b[0m[INFO] Downloaded from central: {central}/a/1/a-1.pom (3.9 kB)')\n"
        f"print('[INFO] Downloaded from central: {central}/a/1/a-1.jar (1 MB at 2 MB/s)')\n"
        f"print('[INFO] Downloaded from central: {central}/b/2/b-2.jar (1 MB at 2 MB/s)')"
    )
    assert (
        step(tmp_path, "mvn", mvn).stdout.splitlines()[-1].startswith("    ✓ 2 jars downloaded · ")
    )
    cached = "print('[INFO] BUILD SUCCESS')"
    last = step(tmp_path, "mvn", cached).stdout.splitlines()[-1]
    assert last.startswith("    ✓ nothing to download (all in Maven's cache) · ")
    apt = "print('Get:1 http://deb x kcat')\nprint('Setting up kcat (1.7.1-2) ...')"
    assert step(tmp_path, "apt", apt).stdout.splitlines()[-1].startswith("    ✓ 1 package set up")


def test_an_up_to_date_pip_step_says_so(tmp_path: Path) -> None:
    program = "print('Requirement already satisfied: pip in ./venv (25.0)')"
    last = step(tmp_path, "pip", program).stdout.splitlines()[-1]
    assert last.startswith("    ✓ up to date (1 requirement already satisfied)")
