"""Facts of the data contract that both ends of the pipeline share (pure Python, no I/O).

The source generator writes these dirty values; the Spark cleaning removes them. Keeping
them in one module means the two can't drift apart.
"""

from __future__ import annotations

from typing import Final

CATEGORIES: Final = (
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

MEDIA_TYPES: Final = ("image", "video", "multi-video(story page format)")

SAVE_LOCATION_PREFIX: Final = "Local save in "

# Source columns, in the source tables' order.
PIN_SOURCE_COLUMNS: Final = (
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
GEO_SOURCE_COLUMNS: Final = ("ind", "timestamp", "latitude", "longitude", "country")
USER_SOURCE_COLUMNS: Final = ("ind", "first_name", "last_name", "age", "date_joined")

# Cleaned columns, in the contract's order.
PIN_CLEAN_COLUMNS: Final = (
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
GEO_CLEAN_COLUMNS: Final = ("ind", "country", "coordinates", "timestamp")
USER_CLEAN_COLUMNS: Final = ("ind", "user_name", "age", "date_joined")

# The original data's placeholder values, by the column they appear in.
TITLE_SENTINEL: Final = "No Title Data Available"
DESCRIPTION_SENTINELS: Final = (
    "No description available Story format",
    "No description available",
    "Untitled",
)
USER_INFO_ERROR: Final = "User Info Error"
TAGS_SENTINEL: Final = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
IMAGE_SRC_SENTINEL: Final = "Image src error."
BLANKS: Final = ("", " ")

PIN_SENTINELS: Final[dict[str, tuple[str, ...]]] = {
    "title": (TITLE_SENTINEL,),
    "description": DESCRIPTION_SENTINELS,
    "poster_name": (USER_INFO_ERROR,),
    "follower_count": (USER_INFO_ERROR,),
    "tag_list": (TAGS_SENTINEL,),
    "image_src": (IMAGE_SRC_SENTINEL,),
}

# Text columns where an empty string or a single space stands for "no value".
PIN_BLANKABLE: Final = ("title", "description", "poster_name", "tag_list", "image_src")

# Multipliers of follower_count suffixes (decimals allowed: "1.5k" is 1500).
FOLLOWER_SUFFIXES: Final = {"k": 1_000, "M": 1_000_000, "B": 1_000_000_000}
