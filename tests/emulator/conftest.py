"""What the emulator tests share: a scripted HTTP endpoint's JSON replies."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar


class JsonEndpoint(BaseHTTPRequestHandler):
    """A stand-in HTTP endpoint answering JSON with ``content_type``, quietly."""

    content_type: ClassVar[str] = "application/json"

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass
