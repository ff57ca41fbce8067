"""Speed goals: the ratio of their two sides decides whether they hold, and both are printed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import pinpipe.benchmarks as benchmarks
from pinpipe.benchmarks.measurement import Goal, Measurement
from pinpipe.cli import app


def goal(measured: float, reference: float, limit: float) -> Goal:
    return Goal("g", measured, "the job", reference, "a plain read", limit)


def test_a_goal_holds_up_to_its_limit_and_not_past_it() -> None:
    assert goal(30.0, 10.0, 3.0).holds
    assert goal(30.0, 10.0, 3.0).ratio == pytest.approx(3.0)
    assert not goal(30.1, 10.0, 3.0).holds
    assert not goal(1.0, 0.0, 3.0).holds  # a reference of nothing can't be met


def test_bench_prints_both_sides_the_ratio_and_the_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [
        goal(33.9, 12.3, 3.0),
        Goal("too slow", 36.6, "job", 3.5, "read", 3.0),
        Measurement("a figure", 1.5, "s"),
    ]
    monkeypatch.setitem(benchmarks.BENCHMARKS, "fake", lambda: found)

    shown = CliRunner().invoke(app, ["bench", "--only", "fake"], env={"COLUMNS": "200"})
    as_json = CliRunner().invoke(app, ["bench", "--only", "fake", "--json"])

    assert shown.exit_code == 0, shown.output
    assert "33.90 s" in shown.output and "12.30 s" in shown.output and "2.76" in shown.output
    assert "yes" in shown.output and "no" in shown.output and "a figure" in shown.output
    rows = json.loads(as_json.output)
    verdicts = {r["name"]: (r["ratio"], r["holds"]) for r in rows if r.get("goal")}
    assert verdicts == {"g": (2.756, True), "too slow": (10.457, False)}
