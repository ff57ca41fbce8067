"""The compose runtime's test helpers: the compose file as data, and the Docker engine check.

Tests marked ``docker`` need a Docker engine. The engine is pinged once per session; where
none answers, every such test is skipped with the reason "no Docker engine", so they are
collected and reported everywhere and run for real wherever Docker runs.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core.settings import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
NO_DOCKER = "no Docker engine"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; $$ escapes.
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@functools.cache
def docker_engine_answers() -> bool:
    """Whether a Docker engine answers a ping (asked once per session)."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure to reach an engine means the same: none to test against
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    docker_items = [item for item in items if item.get_closest_marker("docker")]
    if docker_items and not docker_engine_answers():
        for item in docker_items:
            item.add_marker(pytest.mark.skip(reason=NO_DOCKER))


def load_compose() -> dict[str, Any]:
    """docker-compose.yml as YAML data (anchors and merge keys resolved, variables not)."""
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def env_example() -> dict[str, str]:
    """.env.example's variables and values."""
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def env_with_secrets() -> dict[str, str]:
    """.env.example with every empty secret filled, as `make up` writes .env."""
    return {k: v or (secrets.token_hex(8) if is_secret(k) else v) for k, v in env_example().items()}


def is_secret(name: str) -> bool:
    return any(word in name for word in ("PASSWORD", "SECRET", "TOKEN"))


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution, on a value of the parsed file (recursively)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if op in (":-", "-"):
            return current if current or (op == "-" and current is not None) else arg
        if op in (":?", "?") and not current:
            raise KeyError(f"{name}: {arg}")
        return current or ""

    return VARIABLE.sub(sub, value.replace("$$", "\0")).replace("\0", "$")


def resolved_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file with variables substituted from ``env`` (default: .env.example + secrets)."""
    return dict(interpolate(load_compose(), env_with_secrets() if env is None else env))


def compose_image(service: str) -> str:
    """The image a compose service runs (tests start the same images as compose)."""
    return str(resolved_compose()["services"][service]["image"])


def compose_environment(service: str) -> dict[str, str]:
    """A compose service's environment, variables substituted, values as strings."""
    env = resolved_compose()["services"][service].get("environment") or {}
    return {k: str(v) for k, v in env.items()}


def dockerfiles() -> list[Path]:
    """Every Dockerfile of the project (beside what each builds)."""
    skip = {".git", ".venv", "node_modules"}
    return sorted(
        p
        for p in PROJECT_ROOT.rglob("Dockerfile")
        if not any(part in skip or part.startswith(".venv") for part in p.parts)
    )
