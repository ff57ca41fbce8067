"""A self-contained HTML report: one chart per query, the answers, and the data quality."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

MAX_BARS = 30

TITLES: Mapping[str, str] = {
    "q1_popular_category_by_country": "1. Most popular category per country",
    "q2_popular_category_by_year": "2. Most popular category per year (2018-2022)",
    "q3_top_user_per_country": "3a. User with the most followers per country",
    "q3_country_with_top_user": "3b. Country whose top user has the most followers",
    "q4_popular_category_by_age_group": "4. Most popular category per age group",
    "q5_median_followers_by_age_group": "5. Median follower count per age group",
    "q6_users_joined_by_year": "6. Users joined per year (2015-2020)",
    "q7_median_followers_by_join_year": "7. Median follower count by joining year (2015-2020)",
    "q8_median_followers_by_age_group_and_join_year": "8. Median follower count by joining year and age group",
}


def _top(df: pd.DataFrame, by: str) -> tuple[pd.DataFrame, str]:
    if len(df) <= MAX_BARS:
        return df, ""
    return df.nlargest(MAX_BARS, by), f" (top {MAX_BARS} of {len(df)})"


def _bar(
    x: str, y: str, text: str | None = None, log: bool = False
) -> Callable[[pd.DataFrame], go.Figure]:
    def chart(df: pd.DataFrame) -> go.Figure:
        shown, note = _top(df, y)
        fig = px.bar(shown, x=x, y=y, text=text, log_y=log)
        fig.update_layout(title_text=note.strip(" ()") if note else None)
        fig.update_xaxes(type="category")  # years and groups are labels, not a scale
        return fig

    return chart


def _q8(df: pd.DataFrame) -> go.Figure:
    return px.bar(df, x="post_year", y="median_follower_count", color="age_group", barmode="group")


def _q3b(df: pd.DataFrame) -> go.Figure:
    country, followers = (
        ("-", 0) if df.empty else (df.iloc[0]["country"], df.iloc[0]["follower_count"])
    )
    return go.Figure(
        go.Indicator(mode="number", value=float(followers or 0), title={"text": str(country)})
    )


CHARTS: Mapping[str, Callable[[pd.DataFrame], go.Figure]] = {
    "q1_popular_category_by_country": _bar("country", "category_count", "category"),
    "q2_popular_category_by_year": _bar("post_year", "category_count", "category"),
    "q3_top_user_per_country": _bar("country", "follower_count", "poster_name", log=True),
    "q3_country_with_top_user": _q3b,
    "q4_popular_category_by_age_group": _bar("age_group", "category_count", "category"),
    "q5_median_followers_by_age_group": _bar("age_group", "median_follower_count"),
    "q6_users_joined_by_year": _bar("post_year", "number_users_joined"),
    "q7_median_followers_by_join_year": _bar("post_year", "median_follower_count"),
    "q8_median_followers_by_age_group_and_join_year": _q8,
}


def _table(df: pd.DataFrame, limit: int = 50) -> str:
    more = f"<p class=note>{len(df) - limit} more rows in the table.</p>" if len(df) > limit else ""
    return df.head(limit).to_html(index=False, border=0, classes="answer", na_rep="null") + more


CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{margin-bottom:0} .meta{color:#666} section{margin:2.5rem 0}
table{border-collapse:collapse;font-size:.9rem} td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.note{color:#666;font-size:.85rem} .chart{min-height:380px}
"""


def write_report(
    path: Path,
    answers: Mapping[str, pd.DataFrame],
    quality: pd.DataFrame,
    meta: Mapping[str, Any],
) -> Path:
    """Write the report; every script and style is inline, so the file stands alone."""
    sections = []
    for name, df in answers.items():
        title = TITLES.get(name, name)
        chart = ""
        if name in CHARTS and len(df):
            fig = CHARTS[name](df)
            fig.update_layout(height=380, margin={"t": 40, "l": 40, "r": 20, "b": 80})
            chart = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{name}")
        sections.append(
            f"<section id='{name}'><h2>{html.escape(title)}</h2>"
            f"<div class=chart>{chart}</div>{_table(df)}</section>"
        )
    meta_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in meta.items()
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pinpipe batch report</title>
<style>{CSS}</style><script>{get_plotlyjs()}</script></head>
<body><h1>pinpipe batch report</h1><p class=meta>generated {generated}</p>
<section id="run"><h2>Run</h2><table>{meta_rows}</table></section>
{"".join(sections)}
<section id="quality"><h2>Data quality</h2>
<p class=note>Rows read per table; rows quarantined and why; duplicate rows dropped; values
nulled per placeholder (sentinel) or blank; values that failed to parse.</p>
{quality.to_html(index=False, border=0, na_rep="")}</section>
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
