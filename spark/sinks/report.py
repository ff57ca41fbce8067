"""The batch report: the answers on a world map and in charts, the records at every hop, and
what the cleaning removed, per column.

It opens offline and fast: the charts share one copy of plotly.js, written once beside the
report (``plotly-<version>.min.js``) and loaded from there, and the world map's outlines
(Natural Earth's, as plotly.js itself uses them) are inlined once; no CDN is ever asked.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly
import plotly.express as px
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from spark.transformations.cleaning import RULE_QUARANTINED, RULE_ROWS

MAX_BARS = 30
CHART_HEIGHT = 380
# Written by `pinpipe emulate batch --hops` beside the report: the counts the batch job
# can't see (what the emulator posted, what the topics and the bucket hold).
HOPS_FILE = "hops.json"
WORLD_TOPOJSON = Path(__file__).with_name("assets") / "world_110m.json"
PLOTLY_JS = f"plotly-{plotly.__version__}.min.js"
TABLE_ORDER = {"pin": 0, "geo": 1, "user": 2}
ANSWER_ROWS = 20

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


def _world(color: str, hover: list[str], log: bool = False) -> Callable[[pd.DataFrame], go.Figure]:
    """A world map of one answer per country (countries the map doesn't know are in the table)."""

    def chart(df: pd.DataFrame) -> go.Figure:
        shown, shade = df, color
        if log:  # follower counts span 1 to millions: shade by their order of magnitude
            shade = f"log10 {color}"
            shown = df.assign(**{shade: np.log10(df[color].astype(float).clip(lower=1))})
        fig = px.choropleth(
            shown,
            locations="country",
            locationmode="country names",
            color=shade,
            hover_name="country",
            hover_data=[*hover, color] if log else hover,
            color_continuous_scale="Viridis",
        )
        fig.update_geos(
            fitbounds=False,
            showframe=False,
            showcoastlines=False,
            showcountries=True,
            countrycolor="#bbb",
            lataxis_range=[-58, 84],
            projection_type="natural earth",
        )
        fig.update_layout(margin={"t": 10, "l": 0, "r": 0, "b": 0})
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
    "q1_popular_category_by_country": _world("category", ["category_count"]),
    "q2_popular_category_by_year": _bar("post_year", "category_count", "category"),
    "q3_top_user_per_country": _world("follower_count", ["poster_name"], log=True),
    "q3_country_with_top_user": _q3b,
    "q4_popular_category_by_age_group": _bar("age_group", "category_count", "category"),
    "q5_median_followers_by_age_group": _bar("age_group", "median_follower_count"),
    "q6_users_joined_by_year": _bar("post_year", "number_users_joined"),
    "q7_median_followers_by_join_year": _bar("post_year", "median_follower_count"),
    "q8_median_followers_by_age_group_and_join_year": _q8,
}


def hop_counts(meta: Mapping[str, Any], hops: Mapping[str, Any] | None) -> pd.DataFrame:
    """Records per table at each hop: posted, in Kafka, in S3, read, clean in Delta, quarantined.

    The emulator's, the topics' and the bucket's counts come from ``hops`` (when the
    emulator ran with ``--hops``); the batch job's from its own run (``meta``).
    """
    stages: dict[str, Mapping[str, Any]] = {}
    if hops:
        stages["posted (last emulator run)"] = hops.get("acknowledged", {})
        stages["in the Kafka topic"] = hops.get("in_topic", {})
        stages["in S3 (sink objects)"] = hops.get("s3_records", {})
    stages["read by Spark"] = meta.get("rows read") or {}
    stages["clean rows in Delta"] = meta.get("rows clean") or {}
    quarantined = meta.get("rows quarantined")
    if isinstance(quarantined, Mapping):
        stages["quarantined"] = {t: sum(r.values()) for t, r in quarantined.items()}
    rows = []
    for stage, counts in stages.items():
        for key, n in counts.items():
            # Topic names end with the table's name: <uid>.pin, <uid>.geo, <uid>.user.
            rows.append({"hop": stage, "table": str(key).rsplit(".", 1)[-1], "records": int(n)})
    return pd.DataFrame(rows, columns=["hop", "table", "records"])


def _hops_chart(counts: pd.DataFrame) -> go.Figure:
    fig = px.bar(
        counts.sort_values("table", key=lambda t: t.map(TABLE_ORDER), kind="stable"),
        x="hop",
        y="records",
        color="table",
        barmode="group",
        text="records",
    )
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(counts["hop"]))
    return fig


def _dirt(quality: pd.DataFrame) -> pd.DataFrame:
    """Values the cleaning changed or dropped, per column and rule (no zero counts)."""
    if quality.empty:
        return quality
    dirt = quality[(quality["rule"] != RULE_ROWS) & (quality["count"] > 0)].copy()
    dirt["where"] = dirt["table"] + "." + dirt["column"].fillna("(record)")
    return dirt


def _dirt_chart(dirt: pd.DataFrame) -> go.Figure:
    per_column = dirt.groupby(["where", "rule"], as_index=False)["count"].sum()
    fig = px.bar(per_column, y="where", x="count", color="rule", orientation="h")
    fig.update_layout(
        height=max(CHART_HEIGHT, 26 * per_column["where"].nunique()),
        yaxis={"categoryorder": "total ascending", "title": None},
    )
    return fig


def quarantine_reasons(quality: pd.DataFrame, meta: Mapping[str, Any]) -> pd.DataFrame:
    """Rejected records per table and reason: the job's own counts, else the quality rows."""
    quarantined = meta.get("rows quarantined")
    if isinstance(quarantined, Mapping):
        rows = [
            {"table": t, "reason": r, "records": int(n)}
            for t, reasons in quarantined.items()
            for r, n in reasons.items()
        ]
    elif not quality.empty:
        q = quality[(quality["rule"] == RULE_QUARANTINED) & (quality["count"] > 0)]
        rows = [
            {"table": r.table, "reason": r.value, "records": int(r.count)} for r in q.itertuples()
        ]
    else:
        rows = []
    return pd.DataFrame(rows, columns=["table", "reason", "records"])


def _table(df: pd.DataFrame, limit: int = ANSWER_ROWS) -> str:
    more = f"<p class=note>{len(df) - limit} more rows in the table.</p>" if len(df) > limit else ""
    return df.head(limit).to_html(index=False, border=0, classes="answer", na_rep="null") + more


def _chart(fig: go.Figure, div_id: str) -> str:
    if fig.layout.height is None:
        fig.update_layout(height=CHART_HEIGHT)
    if fig.layout.margin.t is None:
        fig.update_layout(margin={"t": 40, "l": 40, "r": 20, "b": 80})
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )


def _section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{html.escape(title)}</h2>{body}</section>"


def ship_plotly(folder: Path) -> Path:
    """plotly.js beside the report, once per version: every report in the folder shares it."""
    path = folder / PLOTLY_JS
    js = get_plotlyjs()
    if not path.is_file() or path.stat().st_size != len(js.encode()):
        path.write_text(js, encoding="utf-8")
    return path


def geo_assets() -> str:
    """The world outlines where plotly.js looks before it would fetch them from its CDN."""
    if not WORLD_TOPOJSON.is_file():
        return ""
    world = WORLD_TOPOJSON.read_text(encoding="utf-8")
    return f"<script>window.PlotlyGeoAssets={{topojson:{{world_110m:{world}}}}};</script>"


CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:0} .meta{color:#666} section{margin:2.5rem 0}
nav a{margin-right:.8rem;font-size:.9rem}
table{border-collapse:collapse;font-size:.9rem} td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.note{color:#666;font-size:.85rem} .chart{min-height:380px}
"""


def write_report(
    path: Path,
    answers: Mapping[str, pd.DataFrame],
    quality: pd.DataFrame,
    meta: Mapping[str, Any],
    hops: Mapping[str, Any] | None = None,
) -> Path:
    """Write the report and, beside it, the plotly.js it loads; nothing is fetched online.

    ``hops``: the emulator's hop counts; by default those it left beside the report.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    hops_file = path.parent / HOPS_FILE
    if hops is None and hops_file.is_file():
        hops = json.loads(hops_file.read_text())

    sections = []
    counts = hop_counts(meta, hops)
    if len(counts):
        note = (
            ""
            if hops
            else "<p class=note>Run <code>pinpipe emulate batch --hops</code> to add the "
            "emulator's, the topics' and the bucket's counts.</p>"
        )
        wide = counts.pivot_table(
            index="hop", columns="table", values="records", aggfunc="sum", sort=False, fill_value=0
        ).rename_axis(columns=None)
        wide = wide[sorted(wide.columns, key=lambda t: TABLE_ORDER.get(t, len(TABLE_ORDER)))]
        sections.append(
            _section(
                "hops",
                "Records at every hop, source to Delta",
                f"<div class=chart>{_chart(_hops_chart(counts), 'chart-hops')}</div>"
                f"{note}{wide.reset_index().to_html(index=False, border=0)}",
            )
        )
    for name, df in answers.items():
        chart = _chart(CHARTS[name](df), f"chart-{name}") if name in CHARTS and len(df) else ""
        sections.append(
            _section(name, TITLES.get(name, name), f"<div class=chart>{chart}</div>{_table(df)}")
        )
    dirt = _dirt(quality)
    reasons = quarantine_reasons(quality, meta)
    dirt_chart = (
        f"<div class=chart>{_chart(_dirt_chart(dirt), 'chart-quality')}</div>" if len(dirt) else ""
    )
    rejected = (
        reasons.to_html(index=False, border=0)
        if len(reasons)
        else "<p>No record was quarantined.</p>"
    )
    sections.append(
        _section(
            "quality",
            "Data quality: what the cleaning removed",
            "<p class=note>Per column: placeholder (sentinel) and blank values nulled, values "
            "that failed to parse, duplicate rows dropped, rows quarantined.</p>"
            f"{dirt_chart}<h3>Quarantined records, with the reason</h3>{rejected}"
            f"<h3>Every figure</h3>{quality.to_html(index=False, border=0, na_rep='')}",
        )
    )
    meta_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in meta.items()
    )
    anchors = [("run", "run"), ("hops", "hops"), *((n, n[:2]) for n in answers)]
    nav = "".join(
        f"<a href='#{a}'>{html.escape(t)}</a>" for a, t in [*anchors, ("quality", "quality")]
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    js = ship_plotly(path.parent)
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pinpipe batch report</title>
<style>{CSS}</style>{geo_assets()}<script src="{js.name}"></script></head>
<body><h1>pinpipe batch report</h1><p class=meta>generated {generated}</p><nav>{nav}</nav>
<section id="run"><h2>Run</h2><table>{meta_rows}</table></section>
{"".join(sections)}
</body></html>"""
    path.write_text(doc, encoding="utf-8")
    return path
