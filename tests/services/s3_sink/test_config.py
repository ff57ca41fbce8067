"""The shipped connector file and the validation of connector keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.core.config_files import (
    S3_SINK_CONNECTOR_PROPERTIES,
    load_properties,
    parse_properties,
    template_values,
)
from services.core.errors import ConfigError
from services.core.settings import Settings
from services.s3_sink.__main__ import main
from services.s3_sink.connector_config import load_connector_config
from tests.contract_values import original_connector

pytestmark = pytest.mark.unit

SETTINGS = Settings(user_id="abc123def", aws_region="eu-west-1", localstack_port=14566)


def test_the_shipped_file_holds_the_original_projects_keys_and_values() -> None:
    props = load_properties(S3_SINK_CONNECTOR_PROPERTIES, template_values(SETTINGS))
    assert props == original_connector("abc123def", "eu-west-1", "http://127.0.0.1:14566")


def test_on_aws_store_url_is_left_out() -> None:
    aws = Settings(user_id="abc123def", runtime="aws")
    props = load_properties(S3_SINK_CONNECTOR_PROPERTIES, template_values(aws))
    assert "store.url" not in props
    assert load_connector_config(aws).store_url == ""


def test_the_shipped_file_validates_with_the_connector_defaults() -> None:
    config = load_connector_config(SETTINGS)
    assert config.group_id == "connect-abc123def-connector"
    assert config.subscription == [r"^(abc123def\..*)$"]
    assert config.matches("abc123def.pin") and not config.matches("xabc123def.pin")
    assert (config.flush_size, config.rotate_interval_ms, config.rotate_schedule_interval_ms) == (
        1,
        -1,
        -1,
    )
    assert (config.topics_dir, config.directory_delim, config.file_delim) == ("topics", "/", "+")
    assert (config.errors_tolerance, config.dlq_topic, config.behavior_on_null_values) == (
        "none",
        "",
        "fail",
    )


def test_overrides_win_and_consumer_overrides_reach_the_consumer() -> None:
    config = load_connector_config(
        SETTINGS,
        overrides={
            "flush.size": "500",
            "errors.tolerance": "ALL",
            "consumer.override.session.timeout.ms": "2000",
        },
    )
    assert config.flush_size == 500
    assert config.errors_tolerance == "all"
    assert config.consumer_overrides == {"session.timeout.ms": "2000"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"format.class": "io.confluent.connect.s3.format.avro.AvroFormat"},
            "format.class=.*AvroFormat is not supported",
        ),
        (
            {"partitioner.class": "io.confluent.connect.storage.partitioner.TimeBasedPartitioner"},
            "partitioner.class",
        ),
        ({"connector.class": "x.Other"}, "connector.class=x.Other is not supported"),
        ({"value.converter.schemas.enable": "true"}, "schemas.enable must be false"),
        ({"flush.size": "0"}, "flush.size"),
        ({"topics": "a,b"}, "mutually exclusive"),
        ({"topics.regex": "("}, "not a valid regex"),
        (
            {"errors.deadletterqueue.topic.name": "abc123def.dlq"},
            "The DLQ topic 'abc123def.dlq' may not be included",
        ),
        ({"rotate.schedule.interval.ms": "60000"}, "Timezone cannot be empty"),
        (
            {"rotate.schedule.interval.ms": "60000", "timezone": "Mars/Base"},
            "not a known time zone",
        ),
        ({"s3.compression.type": "gzip"}, "uncompressed"),
        ({"store.kafka.keys": "true"}, "record values only"),
        ({"errors.tolerance": "some"}, "errors.tolerance"),
        ({"key.converter": "org.apache.kafka.connect.json.JsonConverter"}, "key.converter"),
    ],
)
def test_what_the_native_sink_does_not_implement_is_refused_clearly(
    overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_connector_config(SETTINGS, overrides=overrides)


def test_a_missing_required_key_is_named() -> None:
    with pytest.raises(ConfigError, match=re.escape('Missing required configuration "flush.size"')):
        load_connector_config(SETTINGS, overrides={"flush.size": ""})


def test_topics_list_replaces_the_regex() -> None:
    config = load_connector_config(SETTINGS, overrides={"topics.regex": "", "topics": "a, b"})
    assert config.topics == ("a", "b")
    assert config.subscription == ["a", "b"]


def test_the_command_line_reports_a_bad_configuration_and_exits_2() -> None:
    assert main(["--set", "format.class=x", "--flush-size", "10"]) == 2
    assert main(["--flush-size", "0"]) == 2


def test_the_shipped_regex_reads_the_users_topics_and_no_other_users() -> None:
    regex = load_properties(S3_SINK_CONNECTOR_PROPERTIES, template_values(SETTINGS))["topics.regex"]
    for topic in ("abc123def.pin", "abc123def.geo", "abc123def.user"):
        assert re.fullmatch(regex, topic), topic
    for topic in ("abc123defg.pin", "abc123def_pin", "abc123def"):
        assert not re.fullmatch(regex, topic), topic


def test_properties_values_are_unescaped_as_java_reads_them() -> None:
    text = "a=x\\\\.y\nb=x\\.y\nc=tab\\there\nd=caf\\u00e9\ne=C:\\\\dir"
    assert parse_properties(text, Path("t.properties")) == {
        "a": "x\\.y",
        "b": "x.y",
        "c": "tab\there",
        "d": "café",
        "e": "C:\\dir",
    }
