"""The sink's key layout: what it writes it parses, and nothing else; topics.dir decides the root."""

from __future__ import annotations

import pytest

from services.core.settings import Settings
from services.core.sink_keys import SinkKeys

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("topic", ["a.pin", "1a2b.geo", "odd+name.user"])
def test_the_key_the_layout_writes_is_the_key_it_parses(topic: str) -> None:
    keys = SinkKeys()
    assert keys.parse(keys.key(topic, 3, 1234)) == (topic, 3, 1234)


@pytest.mark.parametrize(
    "key",
    [
        "topics/a.pin/partition=0/a.pin+0+12.json",  # not zero-padded
        "topics/a.pin/partition=1/a.pin+0+0000000012.json",  # folder and name disagree
        "elsewhere/a.pin/partition=0/a.pin+0+0000000012.json",
        "topics/a.pin/partition=0/a.pin+0+0000000012.json.tmp",
    ],
)
def test_keys_the_layout_would_not_write_are_not_parsed(key: str) -> None:
    assert SinkKeys().parse(key) is None


def test_the_connectors_own_keys_change_the_layout() -> None:
    keys = SinkKeys.from_properties(
        {"topics.dir": "raw", "file.delim": "_", "filename.offset.zero.pad.width": "4"}
    )
    assert keys.key("u.pin", 1, 7) == "raw/u.pin/partition=1/u.pin_1_0007.json"
    assert keys.parse("raw/u.pin/partition=1/u.pin_1_0007.json") == ("u.pin", 1, 7)
    assert SinkKeys(topics_dir="").topic_prefix("t") == "t/"


def test_the_pipelines_layout_is_the_shipped_connector_files() -> None:
    keys = SinkKeys.of(Settings(user_id="keys1"))
    assert keys.root() == "topics/"
    assert keys.prefix("keys1.pin", 0) == "topics/keys1.pin/partition=0/"
