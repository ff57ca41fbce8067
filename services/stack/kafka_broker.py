"""Apache Kafka, natively: one KRaft node (broker and controller) from the Maven Central jars.

``config/kafka-server.properties`` is rendered with the stack's ports and log directory
(under the state directory, so topics, records and committed offsets outlive ``stack down``),
the storage is formatted once, and the broker runs as ``java ... kafka.Kafka``.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from services.core.config_files import KAFKA_SERVER_PROPERTIES, load_properties, template_values
from services.core.errors import ServiceStartError
from services.stack.base import NativeService
from services.stack.kafka_jars import (
    BROKER_LOG4J,
    BROKER_MAIN,
    STORAGE_TOOL,
    TOOLS_HEAP,
    TOOLS_LOG4J,
    classpath,
    java_command,
)
from services.stack.process import port_open, run_logged

FORMAT_TIMEOUT_S = 120.0
TOPIC_TIMEOUT_S = 30.0


def new_cluster_id() -> str:
    """A KRaft cluster id as ``kafka-storage random-uuid`` makes one: 22 chars of base64url,
    never starting with ``-`` (Kafka's Uuid.randomUuid rule: it would read as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


class BrokerService(NativeService):
    name = "broker"
    port_setting = "PINPIPE_BROKER_PORT"
    # A restart after kill -9 waits until the controller expires the dead broker's session
    # (broker.session.timeout.ms, 9 s) before the new one may register: 15-20 s in all.
    startup_timeout = 120.0
    # A controlled shutdown moves nothing on one node, but closes every log cleanly.
    stop_timeout = 60.0

    @property
    def port(self) -> int:
        return self.settings.broker_port

    def claimed_ports(self) -> list[tuple[int, str]]:
        return [
            (self.settings.broker_port, "PINPIPE_BROKER_PORT"),
            (self.settings.broker_controller_port, "PINPIPE_BROKER_CONTROLLER_PORT"),
        ]

    def endpoint(self) -> str:
        return self.settings.kafka_bootstrap_servers

    @property
    def config_file(self) -> Path:
        return self.settings.state_dir / "kafka" / "server.properties"

    def healthy(self) -> bool:
        if not port_open(self.settings.bind_host, self.port):
            return False
        return self.admin().list_topics(timeout=2).topics is not None

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.endpoint(), "socket.timeout.ms": 3000})

    def check_prerequisites(self) -> None:
        classpath(self.settings)

    def render_config(self) -> Path:
        """``config/kafka-server.properties`` with this stack's ports and log directory."""
        props = load_properties(KAFKA_SERVER_PROPERTIES, template_values(self.settings))
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        header = f"# Rendered from config/{KAFKA_SERVER_PROPERTIES.name} by pinpipe stack up.\n"
        self.config_file.write_text(header + "".join(f"{k}={v}\n" for k, v in props.items()))
        return self.config_file

    def formatted(self) -> bool:
        return (self.settings.kafka_log_dir / "meta.properties").exists()

    def format_storage(self) -> None:
        """``kafka-storage format`` once, with a new cluster id: the log directory is kept."""
        self.settings.kafka_log_dir.mkdir(parents=True, exist_ok=True)
        argv = java_command(
            self.settings,
            STORAGE_TOOL,
            ["format", f"--cluster-id={new_cluster_id()}", f"--config={self.config_file}"],
            heap=TOOLS_HEAP,
            log4j=TOOLS_LOG4J,
        )
        code, output = run_logged(argv, self.proc.log_file, timeout=FORMAT_TIMEOUT_S)
        if code != 0:
            raise ServiceStartError(self.name, "formatting the storage failed", output[-2000:])

    def launch(self) -> None:
        config = self.render_config()
        if not self.formatted():
            self.format_storage()
        s = self.settings
        self.proc.start(
            java_command(
                s,
                BROKER_MAIN,
                [str(config)],
                heap=s.broker_heap,
                log4j=BROKER_LOG4J,
                extra_jvm=(f"-Xms{s.broker_heap}", f"-Dkafka.logs.dir={s.logs_dir}"),
            )
        )

    def provision(self) -> None:
        """Create the three topics (the broker auto-creates none)."""
        create_topics(
            self.endpoint(), list(self.settings.topics.values()), self.settings.topic_partitions
        )


def create_topics(bootstrap: str, topics: list[str], partitions: int = 1) -> None:
    """Create every topic of ``topics`` that is missing (replication factor 1)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000})
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [t for t in topics if t not in existing]
    if not missing:
        return

    def create() -> None:
        futures = admin.create_topics(
            [NewTopic(t, partitions, 1) for t in missing], operation_timeout=10
        )
        for future in futures.values():
            try:
                future.result(timeout=15)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

    try:
        # Just after start-up the controller may not have a leader for the request yet.
        Retrying(
            retry=retry_if_exception(_retriable),
            stop=stop_after_delay(TOPIC_TIMEOUT_S),
            wait=wait_fixed(0.5),
            reraise=True,
        )(create)
    except KafkaException as exc:
        raise ServiceStartError("broker", f"could not create topics {missing}: {exc}") from exc


def _retriable(exc: BaseException) -> bool:
    return isinstance(exc, KafkaException) and bool(exc.args[0].retriable())
