"""The S3 sink's object keys, written and parsed here only.

The Confluent S3 sink's DefaultPartitioner and file naming, with the connector's own keys
(``topics.dir``, ``directory.delim``, ``file.delim``, ``filename.offset.zero.pad.width``):
``topics/<topic>/partition=<p>/<topic>+<p>+<start offset, zero-padded>.json``. The sink
writes these keys; the batch job, the rebuild after a restart, the DAG's freshness check
and the hop counts read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.core.config_files import (
    S3_SINK_CONNECTOR_PROPERTIES,
    load_properties,
    template_values,
)
from services.core.settings import Settings

JSON_EXTENSION = ".json"


@dataclass(frozen=True)
class SinkKeys:
    """Object keys of the DefaultPartitioner and the connector's file naming."""

    topics_dir: str = "topics"
    directory_delim: str = "/"
    file_delim: str = "+"
    zero_pad_width: int = 10

    @classmethod
    def from_properties(cls, props: Mapping[str, str]) -> SinkKeys:
        """The layout a connector configuration asks for (its defaults where it is silent)."""
        default = cls()
        return cls(
            props.get("topics.dir", default.topics_dir),
            props.get("directory.delim", default.directory_delim),
            props.get("file.delim", default.file_delim),
            int(props.get("filename.offset.zero.pad.width", default.zero_pad_width)),
        )

    @classmethod
    def of(cls, settings: Settings) -> SinkKeys:
        """The layout of the connector the pipeline runs (config/s3-sink-connector.properties)."""
        props = load_properties(S3_SINK_CONNECTOR_PROPERTIES, template_values(settings))
        return cls.from_properties(props)

    def root(self) -> str:
        """``topics/``: where every topic's folder lives (the bucket's root without topics.dir)."""
        return f"{self.topics_dir}{self.directory_delim}" if self.topics_dir.strip() else ""

    def topic_prefix(self, topic: str) -> str:
        """``topics/<topic>/``: where one topic's objects live."""
        return f"{self.root()}{topic}{self.directory_delim}"

    def prefix(self, topic: str, partition: int) -> str:
        """``topics/<topic>/partition=<p>/``: where one partition's objects live."""
        return f"{self.topic_prefix(topic)}partition={partition}{self.directory_delim}"

    def key(self, topic: str, partition: int, start_offset: int) -> str:
        """``topics/<topic>/partition=<p>/<topic>+<p>+<start offset>.json``."""
        d = self.file_delim
        name = f"{topic}{d}{partition}{d}{start_offset:0{self.zero_pad_width}d}{JSON_EXTENSION}"
        return self.prefix(topic, partition) + name

    def parse(self, key: str) -> tuple[str, int, int] | None:
        """(topic, partition, start offset) of a key this layout writes; None for any other."""
        d = self.file_delim
        name = key.rsplit(self.directory_delim, 1)[-1]
        if not name.endswith(JSON_EXTENSION):
            return None
        topic, sep, rest = name.removesuffix(JSON_EXTENSION).rpartition(d)
        topic, sep2, partition = topic.rpartition(d)
        if not (sep and sep2 and partition.isdigit() and rest.isdigit()):
            return None
        if key != self.key(topic, int(partition), int(rest)):
            return None
        return topic, int(partition), int(rest)
