"""The HTML report stands alone and its charts render in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from spark.sinks.report import CHARTS, HOPS_FILE, PLOTLY_JS, hop_counts, write_report

pytestmark = pytest.mark.unit

ARTIFACTS = Path(
    os.environ.get("PINPIPE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts")
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
    rows = [
        ("pin", None, "rows", None, 6),
        ("pin", "title", "sentinel", "No Title Data Available", 3),
        ("pin", "follower_count", "unparseable", None, 1),
        ("pin", "ind", "duplicate", None, 2),
        ("user", "first_name", "blank", " ", 0),
        ("geo", "ind", "quarantined", "ind is not an integer", 1),
    ]
    return pd.DataFrame(rows, columns=["table", "column", "rule", "value", "count"])


META = {
    "user id": "x",
    "rows read": {"pin": 6, "geo": 7, "user": 6},
    "rows clean": {"pin": 4, "geo": 4, "user": 4},
    "rows quarantined": {"geo": {"malformed JSON record": 1, "ind is not an integer": 1}},
}
HOPS = {
    "acknowledged": {"u.pin": 6, "u.geo": 6, "u.user": 6},
    "in_topic": {"u.pin": 6, "u.geo": 6, "u.user": 6},
    "s3_records": {"u.pin": 6, "u.geo": 6, "u.user": 6},
}


def test_hops_run_from_the_emulator_to_delta() -> None:
    counts = hop_counts(META, HOPS)
    geo = counts[counts["table"] == "geo"].set_index("hop")["records"].to_dict()
    assert geo == {
        "posted (last emulator run)": 6,
        "in the Kafka topic": 6,
        "in S3 (sink objects)": 6,
        "read by Spark": 7,
        "clean rows in Delta": 4,
        "quarantined": 2,
    }
    assert list(hop_counts(META, None)["hop"].unique()) == [
        "read by Spark",
        "clean rows in Delta",
        "quarantined",
    ]


def test_report_opens_offline_and_loads_plotly_once(tmp_path: Path) -> None:
    path = write_report(tmp_path / "r.html", _answers(), _quality(), META, HOPS)
    text = path.read_text()
    # One shared plotly.js, beside the report; nothing else is loaded, nothing from a network.
    assert re.findall(r"<script[^>]+src=\"([^\"]+)\"", text) == [PLOTLY_JS]
    assert (tmp_path / PLOTLY_JS).stat().st_size > 1_000_000
    assert "cdn" not in text.lower().replace("plotlygeoassets", "")
    assert not re.search(r"<link[^>]+href=", text), "no external styles"
    assert len(text.encode()) < 400_000, "the report itself stays small"
    for name in CHARTS:
        assert f"chart-{name}" in text
    assert "chart-hops" in text and "chart-quality" in text
    assert "No Title Data Available" in text and "malformed JSON record" in text
    # A second report in the same folder shares the file.
    write_report(tmp_path / "again.html", _answers(), _quality(), META, HOPS)
    assert sorted(p.name for p in tmp_path.glob("*.js")) == [PLOTLY_JS]


def test_hop_counts_left_by_the_emulator_are_picked_up(tmp_path: Path) -> None:
    (tmp_path / HOPS_FILE).write_text(json.dumps(HOPS))
    text = write_report(tmp_path / "r.html", _answers(), _quality(), META).read_text()
    assert "in the Kafka topic" in text and "pinpipe emulate batch --hops" not in text
    # One row per hop, whole numbers, the tables in the pipeline's order.
    assert "<th>pin</th>\n      <th>geo</th>\n      <th>user</th>" in text
    assert "<td>in the Kafka topic</td>\n      <td>6</td>" in text


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (make setup installs it)"
)
def test_report_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    path = write_report(tmp_path / "report.html", _answers(), _quality(), META, HOPS)
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
    for name in [*CHARTS, "hops", "quality"]:
        block = dom.split(f'id="chart-{name}"', 1)[1][:20000]
        assert "main-svg" in block, f"chart {name} did not render"
    # The maps drew their countries: the outlines were found without a network.
    for name in ("q1_popular_category_by_country", "q3_top_user_per_country"):
        block = dom.split(f'id="chart-{name}"', 1)[1].split('id="chart-', 1)[0]
        assert block.count('class="choroplethlocation"') == 2, f"map {name}: not Chad and Peru"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "batch-report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,5200", path.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
