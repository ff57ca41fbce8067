"""The proxy's Kafka client settings, read from the Confluent-format ``kafka-rest.properties``.

The Confluent proxy hands ``client.*`` keys to every Kafka client it opens and ``producer.*``
(or ``admin.*``) keys to that client alone. librdkafka shares most key names with the Java
client; the keys only Java has (JAAS, trust stores, callback handler classes) are skipped with
a log line, so the same file serves the real proxy and this one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException, Producer

from services.core.config_files import KAFKA_REST_PROPERTIES, load_properties, template_values
from services.core.errors import ConfigError
from services.core.settings import Settings

log = logging.getLogger(__name__)

BOOTSTRAP_SERVERS = "bootstrap.servers"
CLIENT_PREFIX = "client."
PRODUCER_PREFIX = "producer."
ADMIN_PREFIX = "admin."

# Keys librdkafka knows only to refuse them ("Java JAAS configuration is not supported"):
# its parser would fail the whole client rather than report them as unknown.
JAVA_ONLY_KEYS = frozenset(
    {
        "sasl.jaas.config",
        "ssl.truststore.location",
        "ssl.truststore.password",
        "ssl.truststore.type",
        "ssl.keystore.type",
    }
)
_UNKNOWN_PROPERTY = re.compile(r'No such configuration property: "([^"]+)"')


@dataclass(frozen=True)
class KafkaClientConfig:
    """librdkafka configurations for the proxy's producer and its admin (metadata) client."""

    producer: dict[str, str]
    admin: dict[str, str]
    skipped: tuple[str, ...] = ()


def load_client_config(settings: Settings, path: Path = KAFKA_REST_PROPERTIES) -> KafkaClientConfig:
    """Render the properties file for these settings and map it to librdkafka."""
    return client_config(load_properties(path, template_values(settings)), path)


def client_config(props: Mapping[str, str], source: Path) -> KafkaClientConfig:
    """Map Confluent proxy properties to librdkafka configurations; ConfigError names the file."""
    bootstrap = props.get(BOOTSTRAP_SERVERS)
    if not bootstrap:
        raise ConfigError(f"{source}: {BOOTSTRAP_SERVERS} is not set")
    client = _strip_prefix(props, CLIENT_PREFIX)
    producer = {BOOTSTRAP_SERVERS: bootstrap, **client, **_strip_prefix(props, PRODUCER_PREFIX)}
    admin = {BOOTSTRAP_SERVERS: bootstrap, **client, **_strip_prefix(props, ADMIN_PREFIX)}
    skipped = {key for key in (*producer, *admin) if key in JAVA_ONLY_KEYS}
    for conf in (producer, admin):
        skipped |= _unknown_to_librdkafka(
            {k: v for k, v in conf.items() if k not in skipped}, source
        )
    for key in sorted(skipped):
        log.info("%s: skipping %s, a setting only the Java client has", source, key)
    return KafkaClientConfig(
        producer={k: v for k, v in producer.items() if k not in skipped},
        admin={k: v for k, v in admin.items() if k not in skipped},
        skipped=tuple(sorted(skipped)),
    )


def _strip_prefix(props: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {k.removeprefix(prefix): v for k, v in props.items() if k.startswith(prefix)}


def _unknown_to_librdkafka(conf: Mapping[str, str], source: Path) -> set[str]:
    """Keys librdkafka does not have, found by letting librdkafka parse the configuration."""
    # No bootstrap servers: the probe client never connects; log_level 0 keeps it quiet.
    probe = {k: v for k, v in conf.items() if k != BOOTSTRAP_SERVERS}
    unknown: set[str] = set()
    while True:
        try:
            Producer({**probe, "log_level": 0})
        except KafkaException as exc:
            reason = exc.args[0].str()
            match = _UNKNOWN_PROPERTY.search(reason)
            if match is None or match.group(1) not in probe:
                raise ConfigError(
                    f"{source}: librdkafka rejects the Kafka settings: {reason}"
                ) from None
            unknown.add(match.group(1))
            del probe[match.group(1)]
        else:
            return unknown
