"""pinpipe's own Confluent-v2-compatible REST proxy (``services.rest_proxy``) under uvicorn."""

from __future__ import annotations

import sys

import httpx

from services.core.settings import PROJECT_ROOT
from services.stack.base import NativeService


class RestProxyService(NativeService):
    name = "rest-proxy"
    port_setting = "PINPIPE_REST_PROXY_PORT"
    startup_timeout = 30.0

    @property
    def port(self) -> int:
        return self.settings.rest_proxy_port

    def endpoint(self) -> str:
        return self.settings.rest_proxy_url

    def healthy(self) -> bool:
        """Up when it lists the broker's topics: HTTP and Kafka both answer."""
        return httpx.get(f"{self.endpoint()}/topics", timeout=2).status_code == 200

    def launch(self) -> None:
        self.proc.start(
            [sys.executable, "-m", "services.rest_proxy"], env=self._env(), cwd=PROJECT_ROOT
        )

    def _env(self) -> dict[str, str]:
        # Settings built in code (bench, tests) are not in the environment: pass what the
        # proxy reads so it serves where this stack expects it, against this stack's broker.
        s = self.settings
        return {
            "PINPIPE_USER_ID": s.user_id,
            "PINPIPE_RUNTIME": s.runtime,
            "PINPIPE_STATE_DIR": str(s.state_dir),
            "PINPIPE_BIND_HOST": s.bind_host,
            "PINPIPE_REST_PROXY_PORT": str(s.rest_proxy_port),
            "PINPIPE_REST_PROXY_URL": s.rest_proxy_url,
            "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "PINPIPE_REST_PROXY_MAX_BODY_BYTES": str(s.rest_proxy_max_body_bytes),
            "PYTHONUNBUFFERED": "1",
        }
