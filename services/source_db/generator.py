"""Deterministic synthetic source rows that look like the original's, dirt included.

Faker builds small pools of realistic values once; numpy draws every row from them in
bulk, so a million posts take seconds, and the same seed always gives the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from faker import Faker

from services.core import contract as c

CHUNK_POSTS = 50_000


@dataclass(frozen=True)
class DirtRates:
    """Probability of each dirty value, per row (mutually exclusive within a column)."""

    title_sentinel: float = 0.012
    description_story: float = 0.021
    description_none: float = 0.006
    description_untitled: float = 0.004
    user_info_error: float = 0.015
    tags_sentinel: float = 0.019
    image_src_error: float = 0.017
    empty_string: float = 0.003
    single_space: float = 0.002
    follower_decimal_k: float = 0.5  # share of 1,000-9,999 counts written like "1.5k"


# The share of posts per category (roughly the original's), and of media types.
CATEGORY_WEIGHTS = np.array([8, 7, 8, 9, 7, 7, 7, 8, 8, 7, 8, 9, 7], dtype=float)
MEDIA_WEIGHTS = np.array([0.86, 0.11, 0.03])


@dataclass
class SourceChunk:
    """One chunk of rows for the three source tables, columnar."""

    pin: pa.Table
    geo: pa.Table
    user: pa.Table

    @property
    def posts(self) -> int:
        return self.pin.num_rows


@dataclass
class _Pools:
    titles: dict[str, list[str]]
    descriptions: list[str]
    poster_names: list[str]
    tag_lists: dict[str, list[str]]
    countries: list[str]
    first_names: list[str]
    last_names: list[str]


def _build_pools(seed: int) -> _Pools:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    titles: dict[str, list[str]] = {}
    tag_lists: dict[str, list[str]] = {}
    for cat in c.CATEGORIES:
        word = cat.replace("-and-", " & ").replace("-", " ").title()
        vocab = [w.lower() for w in fake.words(nb=40, unique=True)] + cat.split("-")
        titles[cat] = [f"{fake.catch_phrase()} {word} {fake.word()}".strip() for _ in range(300)]
        tag_lists[cat] = [
            ",".join(fake.random_elements(vocab, length=fake.random_int(3, 9), unique=True))
            for _ in range(300)
        ]
    countries = list(fake.provider("faker.providers.address").countries)  # type: ignore[attr-defined]
    return _Pools(
        titles=titles,
        descriptions=[fake.paragraph(nb_sentences=3) for _ in range(1500)],
        poster_names=[
            fake.company() if i % 3 else fake.user_name().replace("_", " ").title()
            for i in range(2500)
        ],
        tag_lists=tag_lists,
        countries=countries,
        first_names=[fake.first_name() for _ in range(800)],
        last_names=[fake.last_name() for _ in range(800)],
    )


def format_follower_count(count: int, decimal_k: bool) -> str:
    """Render a follower count the way Pinterest shows it: 874, 51k, 1.5k, 1M, 2.3M."""
    if count < 1_000:
        return str(count)
    if count < 1_000_000:
        if decimal_k and count < 10_000:
            text = f"{count / 1_000:.1f}".rstrip("0").rstrip(".")
            return f"{text}k"
        return f"{min(count // 1_000, 999)}k"
    text = f"{count / 1_000_000:.1f}".rstrip("0").rstrip(".")
    return f"{text}M"


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> np.ndarray:
    return np.asarray(pool, dtype=object)[rng.integers(0, len(pool), n)]


def _apply_dirt(
    rng: np.random.Generator, values: np.ndarray, choices: list[tuple[float, str]]
) -> np.ndarray:
    """Replace values by dirty ones; each (rate, value) owns its own slice of [0, 1)."""
    u = rng.random(len(values))
    lo = 0.0
    out = values.copy()
    for rate, dirty in choices:
        out[(u >= lo) & (u < lo + rate)] = dirty
        lo += rate
    return out


def _datetimes(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = (hi - lo).astype("int64")
    offset = (rng.random(len(span)) * span).astype("int64")
    return lo + offset.astype("timedelta64[s]")


@dataclass
class SourceGenerator:
    """Generates posts with their geolocation and user rows, chunk by chunk."""

    seed: int = 42
    rates: DirtRates = field(default_factory=DirtRates)

    def chunks(self, n_posts: int, first_ind: int = 1) -> Iterator[SourceChunk]:
        """Yield chunks of at most CHUNK_POSTS posts; the same seed gives the same rows."""
        pools = _build_pools(self.seed)
        rng = np.random.default_rng(self.seed)
        start = 0
        while start < n_posts:
            n = min(CHUNK_POSTS, n_posts - start)
            yield self._chunk(rng, pools, first_ind + start, n)
            start += n

    def generate(self, n_posts: int) -> SourceChunk:
        """All rows at once (for small sets and tests)."""
        parts = list(self.chunks(n_posts))
        return SourceChunk(
            pin=pa.concat_tables([p.pin for p in parts]),
            geo=pa.concat_tables([p.geo for p in parts]),
            user=pa.concat_tables([p.user for p in parts]),
        )

    def _chunk(
        self, rng: np.random.Generator, pools: _Pools, first_ind: int, n: int
    ) -> SourceChunk:
        r = self.rates
        ind = np.arange(first_ind, first_ind + n, dtype=np.int64)

        # user: age skews young; a few minors; followers grow with age up to the thirties.
        age = np.clip(np.round(rng.lognormal(np.log(30), 0.33, n)), 13, 82).astype(np.int64)
        age_factor = np.where(
            age < 18, 0.4, np.where(age <= 35, 1.0, np.where(age <= 50, 0.7, 0.45))
        )
        followers = np.floor(rng.lognormal(np.log(9_000), 2.3, n) * age_factor).astype(np.int64)
        followers = np.clip(followers, 0, 450_000_000)

        # geo timestamps 2017-2022; users joined 2015-2020 and never after their post.
        ts = _datetimes(
            rng,
            np.full(n, np.datetime64("2017-01-01T00:00:00", "s")),
            np.full(n, np.datetime64("2023-01-01T00:00:00", "s")),
        )
        join_hi = np.minimum(ts, np.datetime64("2021-01-01T00:00:00", "s"))
        joined = _datetimes(rng, np.full(n, np.datetime64("2015-01-01T00:00:00", "s")), join_hi)

        cat_idx = rng.choice(len(c.CATEGORIES), size=n, p=CATEGORY_WEIGHTS / CATEGORY_WEIGHTS.sum())
        categories = np.asarray(c.CATEGORIES, dtype=object)[cat_idx]
        media = np.asarray(c.MEDIA_TYPES, dtype=object)[
            rng.choice(len(c.MEDIA_TYPES), size=n, p=MEDIA_WEIGHTS)
        ]
        pool_idx = rng.integers(0, 300, n)
        titles = np.array(
            [pools.titles[cat][i] for cat, i in zip(categories, pool_idx, strict=True)],
            dtype=object,
        )
        tags = np.array(
            [pools.tag_lists[cat][i] for cat, i in zip(categories, pool_idx[::-1], strict=True)],
            dtype=object,
        )
        uuids = [str(uuid.UUID(bytes=b, version=4)) for b in _uuid_bytes(rng, n)]
        image_src = np.array(
            [
                f"https://i.pinimg.com/originals/{u[:2]}/{u[2:4]}/{u[4:6]}/{u.replace('-', '')}.jpg"
                for u in uuids
            ],
            dtype=object,
        )
        decimal_k = rng.random(n) < r.follower_decimal_k
        follower_text = np.array(
            [
                format_follower_count(int(f), bool(d))
                for f, d in zip(followers, decimal_k, strict=True)
            ],
            dtype=object,
        )

        blanks = [(r.empty_string, ""), (r.single_space, " ")]
        title = _apply_dirt(rng, titles, [(r.title_sentinel, c.TITLE_SENTINEL), *blanks])
        description = _apply_dirt(
            rng,
            _pick(rng, pools.descriptions, n),
            [
                (r.description_story, c.DESCRIPTION_SENTINELS[0]),
                (r.description_none, c.DESCRIPTION_SENTINELS[1]),
                (r.description_untitled, c.DESCRIPTION_SENTINELS[2]),
                *blanks,
            ],
        )
        user_error = rng.random(n) < r.user_info_error
        poster = _apply_dirt(rng, _pick(rng, pools.poster_names, n), blanks)
        poster[user_error] = c.USER_INFO_ERROR
        follower_text[user_error] = c.USER_INFO_ERROR
        tag_list = _apply_dirt(rng, tags, [(r.tags_sentinel, c.TAGS_SENTINEL), *blanks])
        image_src = _apply_dirt(
            rng, image_src, [(r.image_src_error, c.IMAGE_SRC_SENTINEL), *blanks]
        )
        downloaded = np.where(
            image_src == c.IMAGE_SRC_SENTINEL, 0, (rng.random(n) < 0.97).astype(np.int64)
        )

        pin = pa.table(
            {
                "index": ind,
                "unique_id": uuids,
                "title": title.tolist(),
                "description": description.tolist(),
                "poster_name": poster.tolist(),
                "follower_count": follower_text.tolist(),
                "tag_list": tag_list.tolist(),
                "is_image_or_video": media.tolist(),
                "image_src": image_src.tolist(),
                "downloaded": downloaded.astype(np.int64),
                "save_location": [f"{c.SAVE_LOCATION_PREFIX}/data/{cat}" for cat in categories],
                "category": categories.tolist(),
            }
        )
        geo = pa.table(
            {
                "ind": ind,
                "timestamp": pa.array(ts, type=pa.timestamp("s")),
                "latitude": np.round(np.degrees(np.arcsin(rng.uniform(-1, 1, n))), 6),
                "longitude": np.round(rng.uniform(-180, 180, n), 6),
                "country": _pick(rng, pools.countries, n).tolist(),
            }
        )
        user = pa.table(
            {
                "ind": ind,
                "first_name": _pick(rng, pools.first_names, n).tolist(),
                "last_name": _pick(rng, pools.last_names, n).tolist(),
                "age": age,
                "date_joined": pa.array(joined, type=pa.timestamp("s")),
            }
        )
        return SourceChunk(pin=pin, geo=geo, user=user)


def _uuid_bytes(rng: np.random.Generator, n: int) -> list[bytes]:
    raw = rng.bytes(16 * n)
    return [raw[i : i + 16] for i in range(0, 16 * n, 16)]
