"""The HTML report stands alone and its charts render in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from spark.sinks.report import CHARTS, write_report

pytestmark = pytest.mark.unit

ARTIFACTS = Path(
    os.environ.get("PINPIPE_TEST_ARTIFACTS", Path(__file__).resolve().parents[3] / "artifacts")
)


def _answers() -> dict[str, pd.DataFrame]:
    return {
        "q1_popular_category_by_country": pd.DataFrame(
            {"country": ["Chad", "Peru"], "category": ["art", "travel"], "category_count": [3, 5]}
        ),
        "q2_popular_category_by_year": pd.DataFrame(
            {
                "post_year": [2018, 2019],
                "category": ["art", "diy-and-crafts"],
                "category_count": [4, 6],
            }
        ),
        "q3_top_user_per_country": pd.DataFrame(
            {
                "country": ["Chad", "Peru"],
                "poster_name": ["Ann", "Bo"],
                "follower_count": [1500, 2_000_000],
            }
        ),
        "q3_country_with_top_user": pd.DataFrame(
            {"country": ["Peru"], "follower_count": [2_000_000]}
        ),
        "q4_popular_category_by_age_group": pd.DataFrame(
            {"age_group": ["18-24", "+50"], "category": ["art", "quotes"], "category_count": [2, 1]}
        ),
        "q5_median_followers_by_age_group": pd.DataFrame(
            {"age_group": ["18-24", "+50"], "median_follower_count": [15.0, 1500.0]}
        ),
        "q6_users_joined_by_year": pd.DataFrame(
            {"post_year": [2015, 2016], "number_users_joined": [7, 9]}
        ),
        "q7_median_followers_by_join_year": pd.DataFrame(
            {"post_year": [2015, 2016], "median_follower_count": [10.0, 20.0]}
        ),
        "q8_median_followers_by_age_group_and_join_year": pd.DataFrame(
            {
                "age_group": ["18-24", "25-35"],
                "post_year": [2015, 2015],
                "median_follower_count": [1.0, 2.0],
            }
        ),
    }


def _quality() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "table": "pin",
                "column": "title",
                "rule": "sentinel",
                "value": "No Title Data Available",
                "count": 3,
            }
        ]
    )


def test_report_is_self_contained(tmp_path: Path) -> None:
    path = write_report(tmp_path / "r.html", _answers(), _quality(), {"user id": "x"})
    text = path.read_text()
    assert not re.search(r"<script[^>]+src=", text), "no external scripts"
    assert not re.search(r"<link[^>]+href=", text), "no external styles"
    for name in CHARTS:
        assert f"chart-{name}" in text
    assert "No Title Data Available" in text


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (make setup installs it)"
)
def test_report_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    path = write_report(tmp_path / "report.html", _answers(), _quality(), {"user id": "x"})
    flags = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    # Plotly draws each chart as SVG inside its div only when its script ran in the page.
    for name in CHARTS:
        block = dom.split(f'id="chart-{name}"', 1)[1][:20000]
        assert "main-svg" in block, f"chart {name} did not render"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "batch-report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,4000", path.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
