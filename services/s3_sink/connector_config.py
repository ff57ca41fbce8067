"""The S3 sink connector's configuration: Confluent's own keys, read from one properties file.

The same file is registered with Kafka Connect (compose) and MSK Connect (AWS), so it
holds only real connector keys. This module gives them a typed, validated form and refuses
values whose behaviour the native sink does not implement, rather than silently writing
something the real connector would not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.core.config_files import (
    S3_SINK_CONNECTOR_PROPERTIES,
    load_properties,
    template_values,
)
from services.core.errors import ConfigError
from services.core.settings import Settings
from services.core.sink_keys import SinkKeys

log = logging.getLogger(__name__)

CONNECTOR_CLASS = "io.confluent.connect.s3.S3SinkConnector"
JSON_FORMAT = "io.confluent.connect.s3.format.json.JsonFormat"
DEFAULT_PARTITIONER = "io.confluent.connect.storage.partitioner.DefaultPartitioner"
S3_STORAGE = "io.confluent.connect.s3.storage.S3Storage"
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"
KEY_CONVERTERS = (
    "org.apache.kafka.connect.storage.StringConverter",
    "org.apache.kafka.connect.converters.ByteArrayConverter",
)
CONSUMER_OVERRIDE_PREFIX = "consumer.override."

# Keys whose only accepted value is the one the native sink implements.
_ONLY_SUPPORTED = {
    "connector.class": CONNECTOR_CLASS,
    "format.class": JSON_FORMAT,
    "partitioner.class": DEFAULT_PARTITIONER,
    "storage.class": S3_STORAGE,
    "value.converter": JSON_CONVERTER,
}


class S3SinkConfig(BaseModel):
    """The connector keys the native sink honours, with the connector's defaults."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    name: str = Field(min_length=1)
    connector_class: str = Field(alias="connector.class")
    tasks_max: int = Field(1, alias="tasks.max", ge=1)
    topics: tuple[str, ...] = Field((), alias="topics")
    topics_regex: str = Field("", alias="topics.regex")

    format_class: str = Field(alias="format.class")
    partitioner_class: str = Field(DEFAULT_PARTITIONER, alias="partitioner.class")
    storage_class: str = Field(alias="storage.class")
    value_converter: str = Field(alias="value.converter")
    value_converter_schemas_enable: bool = Field(True, alias="value.converter.schemas.enable")
    key_converter: str = Field(KEY_CONVERTERS[0], alias="key.converter")
    schema_compatibility: Literal["NONE", "BACKWARD", "FORWARD", "FULL"] = Field(
        "NONE", alias="schema.compatibility"
    )

    flush_size: int = Field(alias="flush.size", ge=1)
    rotate_interval_ms: int = Field(-1, alias="rotate.interval.ms")
    rotate_schedule_interval_ms: int = Field(-1, alias="rotate.schedule.interval.ms")
    timezone: str = ""

    s3_bucket_name: str = Field(alias="s3.bucket.name", min_length=1)
    s3_region: str = Field("us-west-2", alias="s3.region")
    store_url: str = Field("", alias="store.url")
    s3_path_style_access_enabled: bool = Field(True, alias="s3.path.style.access.enabled")
    s3_compression_type: str = Field("none", alias="s3.compression.type")
    s3_part_retries: int = Field(3, alias="s3.part.retries", ge=0)
    s3_retry_backoff_ms: int = Field(200, alias="s3.retry.backoff.ms", ge=0)
    retry_backoff_ms: int = Field(5000, alias="retry.backoff.ms", ge=0)
    store_kafka_keys: bool = Field(False, alias="store.kafka.keys")
    store_kafka_headers: bool = Field(False, alias="store.kafka.headers")
    behavior_on_null_values: Literal["fail", "ignore"] = Field(
        "fail", alias="behavior.on.null.values"
    )

    topics_dir: str = Field("topics", alias="topics.dir")
    directory_delim: str = Field("/", alias="directory.delim")
    file_delim: str = Field("+", alias="file.delim")
    filename_offset_zero_pad_width: int = Field(10, alias="filename.offset.zero.pad.width", ge=1)

    errors_tolerance: Literal["none", "all"] = Field("none", alias="errors.tolerance")
    errors_log_enable: bool = Field(False, alias="errors.log.enable")
    dlq_topic: str = Field("", alias="errors.deadletterqueue.topic.name")
    dlq_replication_factor: int = Field(
        3, alias="errors.deadletterqueue.topic.replication.factor", ge=-1
    )
    dlq_context_headers: bool = Field(False, alias="errors.deadletterqueue.context.headers.enable")

    consumer_overrides: dict[str, str] = Field(default_factory=dict)

    @field_validator("topics", mode="before")
    @classmethod
    def _split_topics(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(t.strip() for t in v.split(",") if t.strip())
        return v

    @field_validator("errors_tolerance", "behavior_on_null_values", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v

    @field_validator("schema_compatibility", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _check(self) -> S3SinkConfig:
        for key, supported in _ONLY_SUPPORTED.items():
            value = getattr(self, _FIELD_BY_KEY[key])
            if value != supported:
                raise ValueError(
                    f"{key}={value} is not supported: the native sink implements {supported}"
                )
        if self.value_converter_schemas_enable:
            raise ValueError(
                "value.converter.schemas.enable must be false: the native sink reads plain JSON"
            )
        if self.s3_compression_type != "none":
            raise ValueError(
                f"s3.compression.type={self.s3_compression_type} is not supported: "
                "the native sink writes uncompressed objects"
            )
        if self.store_kafka_keys or self.store_kafka_headers:
            raise ValueError(
                "store.kafka.keys and store.kafka.headers are not supported: "
                "the native sink writes record values only"
            )
        if self.key_converter not in KEY_CONVERTERS:
            raise ValueError(
                f"key.converter={self.key_converter} is not supported: keys are not written, "
                f"use one of {', '.join(KEY_CONVERTERS)}"
            )
        # Kafka Connect's own messages for these two mistakes.
        if self.topics and self.topics_regex:
            raise ValueError(
                "topics and topics.regex are mutually exclusive options, but both are set."
            )
        if not self.topics and not self.topics_regex:
            raise ValueError("Must configure one of topics or topics.regex")
        try:
            re.compile(self.topics_regex)
        except re.error as exc:
            raise ValueError(f"topics.regex is not a valid regex: {exc}") from None
        if self.dlq_topic and self.matches(self.dlq_topic):
            raise ValueError(
                f"The DLQ topic '{self.dlq_topic}' may not be included in the topics consumed "
                "by the connector"
            )
        if self.rotate_schedule_interval_ms > 0:
            if not self.timezone.strip():
                raise ValueError("Timezone cannot be empty when using scheduled file rotation.")
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone {self.timezone!r} is not a known time zone") from None
        return self

    def sink_keys(self) -> SinkKeys:
        """The object keys this configuration asks for."""
        return SinkKeys(
            self.topics_dir,
            self.directory_delim,
            self.file_delim,
            self.filename_offset_zero_pad_width,
        )

    @property
    def group_id(self) -> str:
        """The consumer group Kafka Connect gives a sink connector."""
        return f"connect-{self.name}"

    @property
    def subscription(self) -> list[str]:
        """What to pass to ``Consumer.subscribe``.

        Java matches ``topics.regex`` against the whole topic name; librdkafka treats a
        subscription starting with ``^`` as a regex and searches it, so anchor both ends.
        """
        if self.topics_regex:
            return [f"^({self.topics_regex})$"]
        return list(self.topics)

    def matches(self, topic: str) -> bool:
        """Whether the connector consumes ``topic`` (full-match, like Kafka Connect)."""
        if self.topics_regex:
            return re.fullmatch(self.topics_regex, topic) is not None
        return topic in self.topics

    @property
    def rotation_timezone(self) -> ZoneInfo | None:
        """The zone scheduled rotation aligns to, or None when it is disabled."""
        return ZoneInfo(self.timezone) if self.rotate_schedule_interval_ms > 0 else None


_FIELD_BY_KEY = {
    (field.alias or name): name
    for name, field in S3SinkConfig.model_fields.items()
    if name != "consumer_overrides"
}


def parse_connector_config(props: Mapping[str, str], source: Path | str) -> S3SinkConfig:
    """Validate connector properties; unknown keys are logged and ignored, like Connect does."""
    values: dict[str, object] = {}
    overrides: dict[str, str] = {}
    for key, value in props.items():
        if key.startswith(CONSUMER_OVERRIDE_PREFIX):
            overrides[key.removeprefix(CONSUMER_OVERRIDE_PREFIX)] = value
        elif key in _FIELD_BY_KEY:
            values[key] = value
        else:
            log.warning("%s: %s is not used by the native S3 sink", source, key)
    try:
        return S3SinkConfig.model_validate({**values, "consumer_overrides": overrides})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "missing":
            msg = f'Missing required configuration "{key}" which has no default value.'
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            msg = f"{key}: {msg}" if key else msg
        raise ConfigError(f"{source}: {msg}") from None


def load_connector_config(
    settings: Settings,
    path: Path = S3_SINK_CONNECTOR_PROPERTIES,
    overrides: Mapping[str, str] | None = None,
) -> S3SinkConfig:
    """Render the connector properties file from settings, apply overrides, validate."""
    return parse_connector_config(load_properties(path, template_values(settings), overrides), path)
