"""The shared config files (``config/``), rendered for a runtime.

Files keep their components' own formats (Java properties for the REST proxy and the
connector, OpenAPI JSON for API Gateway). Runtime-specific values are ``${NAME}`` or
``${NAME:-default}`` placeholders: the native runtime and ``aws_deploy`` fill them from
settings, compose from its environment. A property whose value renders empty is left out
(e.g. ``store.url``, which only a local S3 needs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from services.core.errors import ConfigError
from services.core.settings import CONFIG_DIR, Settings

KAFKA_SERVER_PROPERTIES = CONFIG_DIR / "kafka-server.properties"
KAFKA_REST_PROPERTIES = CONFIG_DIR / "kafka-rest.properties"
S3_SINK_CONNECTOR_PROPERTIES = CONFIG_DIR / "s3-sink-connector.properties"
API_GATEWAY_OPENAPI = CONFIG_DIR / "api-gateway.openapi.json"

_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")
_ESCAPED = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def template_values(settings: Settings) -> dict[str, str]:
    """The placeholder values every config file may use, derived from settings."""
    return {
        "USER_ID": settings.user_id,
        "AWS_REGION": settings.aws_region,
        "BUCKET": settings.bucket,
        "CONNECTOR_NAME": settings.connector_name,
        "API_NAME": settings.api_name,
        "KINESIS_ROLE_ARN": settings.kinesis_role_arn,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REST_PROXY_LISTENER": settings.rest_proxy_url,
        "S3_STORE_URL": settings.aws_endpoint_url or "",
        "BROKER_HOST": settings.bind_host,
        "BROKER_PORT": str(settings.broker_port),
        "BROKER_CONTROLLER_PORT": str(settings.broker_controller_port),
        "KAFKA_LOG_DIRS": str(settings.kafka_log_dir),
    }


def render(text: str, values: Mapping[str, str], source: Path) -> str:
    """Substitute placeholders; an unknown one without a default is a ConfigError."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in values:
            return values[name]
        if default is not None:
            return default
        raise ConfigError(f"{source}: placeholder ${{{name}}} has no value")

    return _PLACEHOLDER.sub(sub, text)


def parse_properties(text: str, source: Path) -> dict[str, str]:
    """Parse Java-style ``key=value`` / ``key: value`` lines (``#`` and ``!`` comments)."""
    props: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:]\s*(.*)$", line)
        if not match:
            raise ConfigError(f"{source}:{lineno}: expected key=value, got {line!r}")
        props[unescape(match.group(1))] = unescape(match.group(2).strip())
    return props


def unescape(text: str) -> str:
    """A properties value as Java's ``Properties.load`` reads it: ``\\.`` is ``.``, ``\\\\``
    one backslash, ``\\t`` a tab, ``\\u00e9`` é (so a regex dot is written ``\\\\.``)."""

    def sub(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        return _ESCAPED.get(code, code)

    return _ESCAPE.sub(sub, text)


def load_properties(
    path: Path, values: Mapping[str, str], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Read and render a properties file; empty values are dropped, overrides win."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    props = parse_properties(render(text, values, path), path)
    props.update(overrides or {})
    return {k: v for k, v in props.items() if v != ""}
