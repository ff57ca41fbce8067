"""The data contract's values, typed by hand from ``DATA-CONTRACT.md``, for the tests.

The tests take their expectations from here, not from ``services.core.contract``: a value
mistyped in the project's contract module would otherwise be generated, cleaned and
expected alike, and every test would pass. ``tests/services/core/test_contract.py`` pins
the module to these values.
"""

from __future__ import annotations

CATEGORIES = (
    "art",
    "beauty",
    "christmas",
    "diy-and-crafts",
    "education",
    "event-planning",
    "finance",
    "home-decor",
    "mens-fashion",
    "quotes",
    "tattoos",
    "travel",
    "vehicles",
)
MEDIA_TYPES = ("image", "video", "multi-video(story page format)")
SAVE_LOCATION_PREFIX = "Local save in "

PIN_SOURCE_COLUMNS = (
    "index",
    "unique_id",
    "title",
    "description",
    "poster_name",
    "follower_count",
    "tag_list",
    "is_image_or_video",
    "image_src",
    "downloaded",
    "save_location",
    "category",
)
GEO_SOURCE_COLUMNS = ("ind", "timestamp", "latitude", "longitude", "country")
USER_SOURCE_COLUMNS = ("ind", "first_name", "last_name", "age", "date_joined")

PIN_CLEAN_COLUMNS = (
    "ind",
    "unique_id",
    "title",
    "description",
    "follower_count",
    "poster_name",
    "tag_list",
    "is_image_or_video",
    "image_src",
    "save_location",
    "category",
)
GEO_CLEAN_COLUMNS = ("ind", "country", "coordinates", "timestamp")
USER_CLEAN_COLUMNS = ("ind", "user_name", "age", "date_joined")

TITLE_SENTINEL = "No Title Data Available"
DESCRIPTION_SENTINELS = (
    "No description available Story format",
    "No description available",
    "Untitled",
)
USER_INFO_ERROR = "User Info Error"
TAGS_SENTINEL = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
IMAGE_SRC_SENTINEL = "Image src error."
BLANKS = ("", " ")

PIN_SENTINELS = {
    "title": (TITLE_SENTINEL,),
    "description": DESCRIPTION_SENTINELS,
    "poster_name": (USER_INFO_ERROR,),
    "follower_count": (USER_INFO_ERROR,),
    "tag_list": (TAGS_SENTINEL,),
    "image_src": (IMAGE_SRC_SENTINEL,),
}
PIN_BLANKABLE = ("title", "description", "poster_name", "tag_list", "image_src")
FOLLOWER_SUFFIXES = {"k": 1_000, "M": 1_000_000, "B": 1_000_000_000}

AGE_GROUPS = ("18-24", "25-35", "36-50", "+50")
