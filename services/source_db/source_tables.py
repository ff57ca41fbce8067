"""The three source tables of MySQL database ``pinterest_data``, as the contract gives them."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

pinterest_data = Table(
    "pinterest_data",
    metadata,
    Column("index", Integer, primary_key=True, autoincrement=False),
    Column("unique_id", String(36), nullable=False),
    Column("title", Text),
    Column("description", Text),
    Column("poster_name", String(255)),
    Column("follower_count", String(32)),
    Column("tag_list", Text),
    Column("is_image_or_video", String(64)),
    Column("image_src", Text),
    Column("downloaded", Integer),
    Column("save_location", String(255)),
    Column("category", String(64)),
    mysql_charset="utf8mb4",
)

geolocation_data = Table(
    "geolocation_data",
    metadata,
    Column("ind", Integer, primary_key=True, autoincrement=False),
    Column("timestamp", DateTime),
    Column("latitude", Float(precision=53)),
    Column("longitude", Float(precision=53)),
    Column("country", String(255)),
    mysql_charset="utf8mb4",
)

user_data = Table(
    "user_data",
    metadata,
    Column("ind", Integer, primary_key=True, autoincrement=False),
    Column("first_name", String(255)),
    Column("last_name", String(255)),
    Column("age", Integer),
    Column("date_joined", DateTime),
    mysql_charset="utf8mb4",
)

SOURCE_TABLES = {"pin": pinterest_data, "geo": geolocation_data, "user": user_data}
