"""`pinpipe demo`'s steps are commands the CLI has, in the order data flows."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pinpipe.cli import app
from pinpipe.cli.demo import steps

pytestmark = pytest.mark.unit


def test_every_step_is_a_command_of_the_cli() -> None:
    runner = CliRunner()
    for step in steps(events=10, stream_events=5, airflow=True):
        done = runner.invoke(app, [*step.args, "--help"])
        assert done.exit_code == 0, (step.args, done.output)


def test_the_steps_follow_the_data() -> None:
    names = [s.name for s in steps(events=10, stream_events=5, airflow=True)]
    assert names == [
        "stack up",
        "db seed",
        "db profile",
        "emulate batch",
        "batch run",
        "stream demo",
        "airflow up",
        "airflow trigger",
    ]
    assert "airflow up" not in [s.name for s in steps(10, 5, airflow=False)]
    emulate = next(s for s in steps(10, 5, airflow=False) if s.name == "emulate batch")
    assert emulate.args == ("emulate", "batch", "--count", "10", "--seed", "1", "--hops")
