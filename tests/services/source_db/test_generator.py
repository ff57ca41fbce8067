"""The synthetic source: deterministic per seed, every dirty value at its configured rate."""

from __future__ import annotations

import math
from collections import Counter

import pyarrow.compute as pc
import pytest

from services.source_db.generator import DirtRates, SourceGenerator, format_follower_count
from tests import contract_values as c

pytestmark = pytest.mark.unit

N = 40_000


@pytest.fixture(scope="module")
def data():
    return SourceGenerator(seed=11).generate(N)


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a = SourceGenerator(seed=5).generate(500)
    b = SourceGenerator(seed=5).generate(500)
    d = SourceGenerator(seed=6).generate(500)
    assert a.pin.equals(b.pin) and a.geo.equals(b.geo) and a.user.equals(b.user)
    assert not a.pin.equals(d.pin)


def test_columns_and_links(data) -> None:
    assert tuple(data.pin.column_names) == c.PIN_SOURCE_COLUMNS
    assert tuple(data.geo.column_names) == c.GEO_SOURCE_COLUMNS
    assert tuple(data.user.column_names) == c.USER_SOURCE_COLUMNS
    assert (
        data.pin["index"].to_pylist() == data.geo["ind"].to_pylist() == data.user["ind"].to_pylist()
    )
    assert len(set(data.pin["unique_id"].to_pylist())) == N


def _within(count: int, rate: float, n: int = N) -> bool:
    """Within 5 standard deviations of the binomial expectation."""
    sd = math.sqrt(n * rate * (1 - rate))
    return abs(count - n * rate) <= 5 * sd + 1


def test_every_dirty_value_at_its_configured_rate(data) -> None:
    r = DirtRates()
    pin = {col: Counter(data.pin[col].to_pylist()) for col in c.PIN_SOURCE_COLUMNS[1:]}
    expected = [
        ("title", c.TITLE_SENTINEL, r.title_sentinel),
        ("description", c.DESCRIPTION_SENTINELS[0], r.description_story),
        ("description", c.DESCRIPTION_SENTINELS[1], r.description_none),
        ("description", c.DESCRIPTION_SENTINELS[2], r.description_untitled),
        ("poster_name", c.USER_INFO_ERROR, r.user_info_error),
        ("follower_count", c.USER_INFO_ERROR, r.user_info_error),
        ("tag_list", c.TAGS_SENTINEL, r.tags_sentinel),
        ("image_src", c.IMAGE_SRC_SENTINEL, r.image_src_error),
    ]
    for col in c.PIN_BLANKABLE:
        # poster_name blanks may be overwritten by "User Info Error" on the same row.
        factor = 1 - r.user_info_error if col == "poster_name" else 1
        expected += [(col, "", r.empty_string * factor), (col, " ", r.single_space * factor)]
    for col, value, rate in expected:
        assert pin[col][value] > 0, (col, value)
        assert _within(pin[col][value], rate), (col, value, pin[col][value], rate * N)


def test_follower_counts_carry_suffixes_including_decimals(data) -> None:
    values = [v for v in data.pin["follower_count"].to_pylist() if v != c.USER_INFO_ERROR]
    assert any(v.isdigit() for v in values)
    assert any(v.endswith("k") and "." in v for v in values)
    assert any(v.endswith("k") and "." not in v for v in values)
    assert any(v.endswith("M") for v in values)


@pytest.mark.parametrize(
    ("count", "decimal", "text"),
    [
        (874, False, "874"),
        (1500, True, "1.5k"),
        (1000, True, "1k"),
        (51_234, False, "51k"),
        (1_000_000, False, "1M"),
        (2_340_000, False, "2.3M"),
        (9_999, False, "9k"),
    ],
)
def test_format_follower_count(count: int, decimal: bool, text: str) -> None:
    assert format_follower_count(count, decimal) == text


def test_distributions_are_plausible(data) -> None:
    years = Counter(t.year for t in data.geo["timestamp"].to_pylist())
    assert set(years) == {2017, 2018, 2019, 2020, 2021, 2022}
    joined = data.user["date_joined"].to_pylist()
    assert {t.year for t in joined} == {2015, 2016, 2017, 2018, 2019, 2020}
    assert all(j <= t for j, t in zip(joined, data.geo["timestamp"].to_pylist(), strict=True))
    assert set(data.pin["category"].to_pylist()) == set(c.CATEGORIES)
    assert all(
        loc == f"{c.SAVE_LOCATION_PREFIX}/data/{cat}"
        for loc, cat in zip(
            data.pin["save_location"].to_pylist(), data.pin["category"].to_pylist(), strict=True
        )
    )
    ages = data.user["age"]
    assert pc.min(ages).as_py() >= 13 and 0 < pc.sum(pc.less(ages, 18)).as_py() < N * 0.1
    assert pc.sum(pc.greater(ages, 50)).as_py() > 0
    lat = data.geo["latitude"]
    assert pc.min(lat).as_py() >= -90 and pc.max(lat).as_py() <= 90
    assert set(data.pin["is_image_or_video"].to_pylist()) == set(c.MEDIA_TYPES)


def test_follower_counts_are_heavy_tailed() -> None:
    import numpy as np

    data = SourceGenerator(seed=3, rates=DirtRates(user_info_error=0.0)).generate(20_000)
    mult = {"k": 1e3, "M": 1e6}
    counts = np.array(
        [
            float(v[:-1]) * mult[v[-1]] if v[-1] in mult else float(v)
            for v in data.pin["follower_count"].to_pylist()
        ]
    )
    assert np.mean(counts) > 3 * np.median(counts)
    assert counts.max() > 100 * np.median(counts)
