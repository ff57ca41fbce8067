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

# The eight queries' answers (query 3 in two parts), in the contract's order, with their columns.
ANSWER_COLUMNS = {
    "q1_popular_category_by_country": ["country", "category", "category_count"],
    "q2_popular_category_by_year": ["post_year", "category", "category_count"],
    "q3_top_user_per_country": ["country", "poster_name", "follower_count"],
    "q3_country_with_top_user": ["country", "follower_count"],
    "q4_popular_category_by_age_group": ["age_group", "category", "category_count"],
    "q5_median_followers_by_age_group": ["age_group", "median_follower_count"],
    "q6_users_joined_by_year": ["post_year", "number_users_joined"],
    "q7_median_followers_by_join_year": ["post_year", "median_follower_count"],
    "q8_median_followers_by_age_group_and_join_year": [
        "age_group",
        "post_year",
        "median_follower_count",
    ],
}


def original_connector(uid: str, region: str, store_url: str) -> dict[str, str]:
    """The original project's S3 sink connector, as Kafka Connect takes it, for a user."""
    return {
        "name": f"{uid}-connector",
        "connector.class": "io.confluent.connect.s3.S3SinkConnector",
        "tasks.max": "3",
        "topics.regex": rf"{uid}\..*",
        "s3.region": region,
        "s3.bucket.name": f"user-{uid}-bucket",
        "store.url": store_url,
        "storage.class": "io.confluent.connect.s3.storage.S3Storage",
        "flush.size": "1",
        "schema.compatibility": "NONE",
        "format.class": "io.confluent.connect.s3.format.json.JsonFormat",
        "partitioner.class": "io.confluent.connect.storage.partitioner.DefaultPartitioner",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    }


# Names typed here for the tests that the project's contract module does not hold.
ONLY_HERE = ("AGE_GROUPS", "ANSWER_COLUMNS", "ONLY_HERE")
