"""The S3 sink (``python -m services.s3_sink``): the stack's topics to its bucket.

It listens on no port: it is healthy when its process runs and its status file, written by
that same process, says ``running`` (subscribed, bucket found).
"""

from __future__ import annotations

import sys

from services.s3_sink.config import S3SinkConfig, load_connector_config
from services.s3_sink.status import read_status, status_path
from services.settings import PROJECT_ROOT
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
        self.launch()
        wait_until(self.healthy, service=self.name, timeout=self.startup_timeout, proc=self.proc)
        return "started"

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
