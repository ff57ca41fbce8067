"""The compose file's components as testcontainers: same images, same settings.

Each function returns a started container on a test network, under the alias compose gives
it, so the containers find each other by the names the compose file uses (broker:19092,
localstack:4566). Images and environments are read from docker-compose.yml: a test runs what
`docker compose up` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.core.config_files import KAFKA_SERVER_PROPERTIES
from services.core.settings import PROJECT_ROOT, Settings
from services.core.waiting import free_port, poll
from services.stack.compose_init import connector_config, render_kafka_rest
from tests.compose.conftest import env_with_secrets, resolved_compose

LOCAL = "127.0.0.1"
# Where apache/kafka takes a server.properties to which it appends its KAFKA_* variables.
MOUNTED_SERVER_PROPERTIES = "/mnt/shared/config/server.properties"


def compose_service(service: str, **variables: str) -> dict[str, Any]:
    """A compose service, with .env.example's values overridden by ``variables``."""
    return dict(resolved_compose({**env_with_secrets(), **variables})["services"][service])


def wait_for(check: Callable[[], bool], what: str, timeout: float = 180.0) -> None:
    # The component is still starting: any failure means "not yet".
    poll(check, what, timeout, every=1.0, tolerate=(Exception,))


@dataclass
class Kafka:
    """The compose broker in a container; ``bootstrap`` is its listener for this process."""

    container: Any
    host_port: int

    @property
    def bootstrap(self) -> str:
        return f"{LOCAL}:{self.host_port}"

    def kill(self) -> None:
        """SIGKILL, as a crash: no clean shutdown, nothing flushed on purpose."""
        self.container.get_wrapped_container().kill()

    def restart(self) -> None:
        """Start the same container again: its log directory is kept."""
        self.container.get_wrapped_container().start()


def start_kafka(network: Any) -> Kafka:
    from testcontainers.core.container import DockerContainer

    port = free_port()
    # The advertised host listener must be the port this process connects to.
    service = compose_service("broker", PINPIPE_BROKER_PORT=str(port))
    container = (
        DockerContainer(service["image"])
        .with_network(network)
        .with_network_aliases("broker")
        .with_envs(**{k: str(v) for k, v in service["environment"].items()})
        .with_volume_mapping(str(KAFKA_SERVER_PROPERTIES), MOUNTED_SERVER_PROPERTIES, "ro")
        .with_bind_ports(9092, (LOCAL, port))  # type: ignore[arg-type]
        .start()
    )
    kafka = Kafka(container, port)
    wait_for(lambda: _kafka_answers(kafka.bootstrap), "the broker")
    return kafka


def _kafka_answers(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000})
    return admin.list_topics(timeout=3).brokers is not None


def start_localstack(network: Any) -> tuple[Any, str]:
    """LocalStack as compose runs it; its endpoint for this process."""
    from testcontainers.core.container import DockerContainer

    service = compose_service("localstack")
    container = (
        DockerContainer(service["image"])
        .with_network(network)
        .with_network_aliases("localstack")
        .with_envs(**{k: str(v) for k, v in service["environment"].items()})
        .with_exposed_ports(4566)
        .start()
    )
    url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(4566)}"
    wait_for(
        lambda: httpx.get(f"{url}/_localstack/init/ready", timeout=3).json()["completed"],
        "LocalStack",
    )
    return container, url


def start_confluent_rest_proxy(network: Any, tmp: Path) -> tuple[Any, str]:
    """cp-kafka-rest running config/kafka-rest.properties, rendered as the init service does."""
    from testcontainers.core.container import DockerContainer

    init_env = compose_service("init-config")["environment"]
    settings = Settings(kafka_bootstrap_servers=str(init_env["PINPIPE_KAFKA_BOOTSTRAP_SERVERS"]))
    properties = render_kafka_rest(settings, {k: str(v) for k, v in init_env.items()}, tmp)
    service = compose_service("rest-proxy")
    container = (
        DockerContainer(service["image"])
        .with_network(network)
        .with_network_aliases("rest-proxy")
        .with_copy_into_container(properties.read_bytes(), "/tmp/kafka-rest.properties")
        .with_command("kafka-rest-start /tmp/kafka-rest.properties")
        .with_exposed_ports(8082)
        .start()
    )
    url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(8082)}"
    wait_for(lambda: httpx.get(f"{url}/topics", timeout=3).status_code == 200, "the REST proxy")
    return container, url


def build_kafka_connect() -> str:
    """The project's Kafka Connect image (services/kafka-connect/Dockerfile)."""
    from testcontainers.core.image import DockerImage

    service = compose_service("kafka-connect")
    image = DockerImage(
        path=str(PROJECT_ROOT),
        dockerfile_path=service["build"]["dockerfile"],
        tag=service["image"],
    )
    image.build()
    return str(service["image"])


def start_kafka_connect(network: Any) -> tuple[Any, str]:
    """Kafka Connect with the Confluent S3 sink, configured as compose configures it."""
    from testcontainers.core.container import DockerContainer

    service = compose_service("kafka-connect")
    container = (
        DockerContainer(build_kafka_connect())
        .with_network(network)
        .with_network_aliases("kafka-connect")
        .with_envs(**{k: str(v) for k, v in service["environment"].items()})
        # Tests wait for committed offsets: commit every 2 s rather than Connect's 60 s.
        .with_env("CONNECT_OFFSET_FLUSH_INTERVAL_MS", "2000")
        .with_exposed_ports(8083)
        .start()
    )
    url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(8083)}"
    wait_for(lambda: httpx.get(f"{url}/connectors", timeout=3).status_code == 200, "Connect")
    return container, url


def register_connector(connect_url: str, settings: Settings, overrides: dict[str, str]) -> str:
    """PUT config/s3-sink-connector.properties (rendered for compose) with overrides; its name."""
    config = {
        **connector_config(settings, {"S3_STORE_URL": "http://localstack:4566"}),
        **overrides,
    }
    resp = httpx.put(f"{connect_url}/connectors/{config['name']}/config", json=config, timeout=30)
    resp.raise_for_status()
    return str(config["name"])


@contextmanager
def network() -> Iterator[Any]:
    from testcontainers.core.network import Network

    with ExitStack() as stack:
        yield stack.enter_context(Network())
