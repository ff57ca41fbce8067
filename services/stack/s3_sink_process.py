"""The S3 sink (``python -m services.s3_sink``): the stack's topics to its bucket.

It listens on no port: it is healthy when its process runs and its status file, written by
that same process, says ``running`` (subscribed, bucket found). Before it starts, partitions
the bucket lost (LocalStack keeps no objects across its restarts) are rewound, so that the
sink writes them again from the log (services/s3_sink/rebuild.py).
"""

from __future__ import annotations

import sys

from services.core.settings import PROJECT_ROOT
from services.s3_sink.connector_config import S3SinkConfig, load_connector_config
from services.s3_sink.rebuild import Rewind, rebuild_lost_objects
from services.s3_sink.sink import s3_client
from services.s3_sink.status import read_status, status_path
from services.stack.base import NativeService
from services.stack.process import wait_until


class S3SinkService(NativeService):
    name = "s3-sink"
    startup_timeout = 60.0

    @property
    def port(self) -> int:
        return 0

    def config(self) -> S3SinkConfig:
        """The connector configuration the sink runs with (raises ConfigError if invalid)."""
        return load_connector_config(self.settings)

    def endpoint(self) -> str:
        cfg = self.config()
        return f"s3://{cfg.s3_bucket_name}/{cfg.topics_dir}"

    def healthy(self) -> bool:
        proc = self.proc.process()
        if proc is None:
            return False
        status = read_status(status_path(self.settings, self.config().name))
        return status is not None and status["pid"] == proc.pid and status["state"] == "running"

    def check_prerequisites(self) -> None:
        self.config()

    def up(self) -> str:
        """Start if needed and wait until healthy; there is no port to claim."""
        if self.proc.process() is not None and self.healthy():
            return "already running"
        if self.proc.process() is not None:
            self.proc.stop()
        self.check_prerequisites()
        rewinds = self.rebuild()
        self.launch()
        wait_until(self.healthy, service=self.name, timeout=self.startup_timeout, proc=self.proc)
        if rewinds:
            records = sum(r.committed - r.to for r in rewinds)
            return f"started, writing {records:,} records the bucket lost again from the log"
        return "started"

    def rebuild(self) -> list[Rewind]:
        """Rewind the connector's group where the bucket lacks what it committed."""
        config = self.config()
        s3 = s3_client(config, self.settings, max_connections=4)
        return rebuild_lost_objects(config, self.settings.kafka_bootstrap_servers, s3)

    def launch(self) -> None:
        s = self.settings
        # The child derives the same names and endpoints as this stack, even when the
        # settings were built in code rather than from the environment.
        env = {
            "PINPIPE_USER_ID": s.user_id,
            "PINPIPE_RUNTIME": s.runtime,
            "PINPIPE_AWS_REGION": s.aws_region,
            "PINPIPE_STATE_DIR": str(s.state_dir),
            "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "PINPIPE_AWS_ENDPOINT_URL": s.aws_endpoint_url or "",
        }
        self.proc.start([sys.executable, "-m", "services.s3_sink"], env=env, cwd=PROJECT_ROOT)
