"""kafka-rest.properties: one Confluent-format file, read by the native proxy through librdkafka."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from services.core.config_files import KAFKA_REST_PROPERTIES, parse_properties
from services.core.errors import ConfigError
from services.core.settings import Settings
from services.rest_proxy.proxy_config import client_config, load_client_config

pytestmark = pytest.mark.unit

SOURCE = Path("kafka-rest.properties")


def test_the_shared_file_renders_for_the_native_runtime() -> None:
    settings = Settings(broker_port=19092, rest_proxy_port=18082)
    config = load_client_config(settings)
    assert config.producer["bootstrap.servers"] == "127.0.0.1:19092"
    assert config.producer["acks"] == "all"
    assert config.producer["enable.idempotence"] == "true"
    assert config.producer["security.protocol"] == "PLAINTEXT"
    # The IAM lines render empty locally and are left out.
    assert not any(k.startswith("sasl.") for k in config.producer)
    assert config.admin == {
        "bootstrap.servers": "127.0.0.1:19092",
        "security.protocol": "PLAINTEXT",
    }


def test_the_shared_file_is_a_plain_confluent_properties_file() -> None:
    text = KAFKA_REST_PROPERTIES.read_text()
    props = parse_properties(text, KAFKA_REST_PROPERTIES)
    # Only keys the Confluent proxy knows: its own, client.*, producer.*.
    assert set(props) >= {
        "listeners",
        "bootstrap.servers",
        "producer.acks",
        "producer.enable.idempotence",
    }
    assert all(
        k in {"listeners", "bootstrap.servers"} or k.startswith(("client.", "producer."))
        for k in props
    )
    # The Java client requires delivery.timeout.ms >= linger.ms + request.timeout.ms.
    assert int(props["producer.delivery.timeout.ms"]) >= int(props["producer.linger.ms"]) + int(
        props["producer.request.timeout.ms"]
    )


def test_producer_keys_win_over_client_keys_and_rest_keys_are_ignored() -> None:
    config = client_config(
        {
            "bootstrap.servers": "b:9092",
            "listeners": "http://0.0.0.0:8082",
            "schema.registry.url": "http://sr:8081",
            "client.request.timeout.ms": "5000",
            "producer.request.timeout.ms": "7000",
            "admin.request.timeout.ms": "9000",
            "consumer.fetch.min.bytes": "1",
        },
        SOURCE,
    )
    assert config.producer == {"bootstrap.servers": "b:9092", "request.timeout.ms": "7000"}
    assert config.admin == {"bootstrap.servers": "b:9092", "request.timeout.ms": "9000"}


def test_java_only_keys_are_skipped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "services.rest_proxy.proxy_config")
    config = client_config(
        {
            "bootstrap.servers": "b:9098",
            "client.security.protocol": "SASL_SSL",
            "client.sasl.mechanism": "OAUTHBEARER",
            "client.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
            "client.sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
            "client.ssl.truststore.location": "/etc/kafka/truststore.jks",
            "producer.buffer.memory": "33554432",
            "producer.acks": "all",
        },
        SOURCE,
    )
    assert config.skipped == (
        "buffer.memory",
        "sasl.client.callback.handler.class",
        "sasl.jaas.config",
        "ssl.truststore.location",
    )
    assert config.producer == {
        "bootstrap.servers": "b:9098",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "OAUTHBEARER",
        "acks": "all",
    }
    assert "skipping sasl.jaas.config" in caplog.text


def test_a_value_librdkafka_rejects_fails_with_the_file_name() -> None:
    with pytest.raises(
        ConfigError, match=r"kafka-rest.properties: librdkafka rejects .*Invalid value"
    ):
        client_config({"bootstrap.servers": "b:9092", "producer.linger.ms": "soon"}, SOURCE)


def test_msk_iam_needs_the_java_proxy() -> None:
    # AWS_MSK_IAM is a Java SASL mechanism; the native proxy runs only against local brokers.
    with pytest.raises(ConfigError, match="AWS_MSK_IAM"):
        client_config(
            {
                "bootstrap.servers": "b:9098",
                "client.security.protocol": "SASL_SSL",
                "client.sasl.mechanism": "AWS_MSK_IAM",
            },
            SOURCE,
        )


def test_missing_bootstrap_servers_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"bootstrap\.servers is not set"):
        client_config({"client.security.protocol": "PLAINTEXT"}, SOURCE)
