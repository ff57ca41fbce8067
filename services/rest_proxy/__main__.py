"""``python -m services.rest_proxy``: serve the REST proxy on the configured host and port."""

from __future__ import annotations

import logging
import sys

import uvicorn

from services.core.errors import ConfigError
from services.core.settings import get_settings
from services.rest_proxy.app import create_app
from services.rest_proxy.proxy_config import load_client_config

log = logging.getLogger("services.rest_proxy")


def main() -> None:
    """Run the proxy in one uvicorn worker (one producer per process), without an access log."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = get_settings()
    try:
        client_config = load_client_config(settings)
    except ConfigError as exc:
        log.error("%s", exc)
        sys.exit(2)
    uvicorn.run(
        create_app(settings, client_config),
        host=settings.bind_host,
        port=settings.rest_proxy_port,
        workers=1,
        access_log=False,
    )


if __name__ == "__main__":
    main()
