"""One-shot provisioning for the compose runtime: what ``pinpipe stack up`` does natively.

Run inside the project image as ``python -m services.stack.compose_init STEP [STEP ...]``; each
step waits for the component it needs, is idempotent, and reuses the native stack's own
provisioning code, so both runtimes create the same database, topics, bucket, streams, API
and connector. Steps, in the order ``all`` runs them:

  config     render config/kafka-rest.properties for the Confluent REST proxy container
  db         database, application user, tables; seeded when empty
  topics     the three topics
  aws        the bucket and the three Kinesis streams
  api        the OpenAPI document imported, the stage deployed with ``proxyHost`` at the
             REST proxy container; the invoke URL recorded in the shared state directory
  connector  config/s3-sink-connector.properties registered with Kafka Connect
  dag        ``<uid>_dag.py`` written into Airflow's DAG folder

Placeholders in the shared config files get the values the native runtime derives from
settings (``PINPIPE_*``), and an environment variable named like a placeholder wins: that
is how compose supplies values only it has (``REST_PROXY_LISTENER=http://0.0.0.0:8082``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from pinpipe_tasks.dag_file import write_dag_file
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from services.core.config_files import (
    KAFKA_REST_PROPERTIES,
    S3_SINK_CONNECTOR_PROPERTIES,
    load_properties,
    template_values,
)
from services.core.errors import PinpipeError, ServiceStartError, TerminalError, TransientError
from services.core.rest_api import deploy_rest_api, invoke_url, rendered_openapi
from services.core.settings import Settings
from services.s3_sink.connector_config import parse_connector_config
from services.s3_sink.rebuild import GroupOffsets, Rewind, plan_rewinds, stored_through
from services.stack.kafka_broker import BrokerService
from services.stack.localstack import LocalStackService
from services.stack.mysql_server import MySQLService
from services.stack.process import wait_until

log = logging.getLogger("pinpipe.compose_init")

# Components start in any order under compose; a step waits this long for its own.
READY_TIMEOUT_S = float(os.environ.get("PINPIPE_COMPOSE_READY_TIMEOUT", "300"))
RENDERED_KAFKA_REST = "kafka-rest.properties"


def placeholder_values(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """Settings-derived values, overridden by environment variables of the same name."""
    values = template_values(settings)
    return {**values, **{k: environ[k] for k in values if k in environ}}


def render_kafka_rest(settings: Settings, environ: Mapping[str, str], out_dir: Path) -> Path:
    """config/kafka-rest.properties, placeholders filled, written for kafka-rest-start."""
    values = placeholder_values(settings, environ)
    props = load_properties(KAFKA_REST_PROPERTIES, values)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RENDERED_KAFKA_REST
    header = (
        f"# Rendered from config/{KAFKA_REST_PROPERTIES.name} by services.stack.compose_init.\n"
    )
    path.write_text(header + "".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def connector_config(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """config/s3-sink-connector.properties as the JSON map Kafka Connect's REST API takes."""
    return load_properties(S3_SINK_CONNECTOR_PROPERTIES, placeholder_values(settings, environ))


class ConnectRebalancing(TransientError):
    """Connect answered 409 (a rebalance is in progress) or 5xx: try again shortly."""


@retry(
    retry=retry_if_exception_type((ConnectRebalancing, httpx.TransportError)),
    stop=stop_after_delay(120),
    wait=wait_fixed(2),
    reraise=True,
)
def put_connector(client: httpx.Client, config: Mapping[str, str]) -> dict[str, Any]:
    """Create or update the connector (``PUT /connectors/<name>/config``)."""
    resp = client.put(f"/connectors/{config['name']}/config", json=dict(config))
    if resp.status_code == 409 or resp.status_code >= 500:
        raise ConnectRebalancing(f"Kafka Connect answered {resp.status_code}: {resp.text}")
    if resp.status_code >= 400:
        # Connect's 400 carries its validation errors: they are the message worth reading.
        raise TerminalError(f"Kafka Connect refused the connector: {resp.text}")
    return dict(resp.json())


def connector_running(client: httpx.Client, name: str) -> bool:
    """The connector and every one of its tasks report RUNNING; a FAILED one is terminal."""
    resp = client.get(f"/connectors/{name}/status")
    if resp.status_code == 404:
        return False
    resp.raise_for_status()
    status = resp.json()
    states = [status["connector"]["state"], *(t["state"] for t in status.get("tasks", []))]
    if "FAILED" in states:
        traces = [t.get("trace", "") for t in status.get("tasks", []) if t["state"] == "FAILED"]
        raise TerminalError(f"connector {name} FAILED: {(traces or [''])[0][:2000]}")
    return bool(status.get("tasks")) and set(states) == {"RUNNING"}


def connect_offsets(client: httpx.Client, name: str) -> dict[tuple[str, int], int]:
    """The sink connector's committed offsets through Connect's API (KIP-875)."""
    resp = client.get(f"/connectors/{name}/offsets")
    if resp.status_code == 404:
        return {}
    resp.raise_for_status()
    return {
        (o["partition"]["kafka_topic"], int(o["partition"]["kafka_partition"])): int(
            o["offset"]["kafka_offset"]
        )
        for o in resp.json().get("offsets", [])
    }


def rewind_connector(client: httpx.Client, name: str, rewinds: list[Rewind]) -> None:
    """Stop the connector, move its offsets back to what the bucket holds, resume it."""
    client.put(f"/connectors/{name}/stop").raise_for_status()
    wait_until(
        lambda: client.get(f"/connectors/{name}/status").json()["connector"]["state"] == "STOPPED",
        service="kafka-connect",
        timeout=READY_TIMEOUT_S,
    )
    body = {
        "offsets": [
            {
                "partition": {"kafka_topic": r.topic, "kafka_partition": r.partition},
                "offset": {"kafka_offset": r.to},
            }
            for r in rewinds
        ]
    }
    client.patch(f"/connectors/{name}/offsets", json=body).raise_for_status()
    client.put(f"/connectors/{name}/resume").raise_for_status()


class ComposeInit:
    """The provisioning steps, against the hosts compose gives the components."""

    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.settings = settings
        self.args = args
        self.environ = dict(os.environ)

    def config(self) -> str:
        path = render_kafka_rest(self.settings, self.environ, Path(self.args.config_dir))
        return f"wrote {path}"

    def db(self) -> str:
        mysql = MySQLService(self.settings)
        wait_until(mysql.healthy, service="mysql", timeout=READY_TIMEOUT_S)
        mysql.provision()
        return f"database {self.settings.db.DATABASE} ready"

    def topics(self) -> str:
        broker = BrokerService(self.settings)
        wait_until(broker.healthy, service="broker", timeout=READY_TIMEOUT_S)
        broker.provision()
        return ", ".join(self.settings.topics.values())

    def aws(self) -> str:
        localstack = LocalStackService(self.settings)
        wait_until(localstack.healthy, service="localstack", timeout=READY_TIMEOUT_S)
        localstack.provision()
        return f"bucket {self.settings.bucket}, streams {', '.join(self.settings.streams.values())}"

    def api(self) -> str:
        s = self.settings
        localstack = LocalStackService(s)
        wait_until(localstack.healthy, service="localstack", timeout=READY_TIMEOUT_S)
        api_id = deploy_rest_api(
            localstack.client("apigateway"),
            rendered_openapi(s),
            s.api_name,
            s.api_stage,
            {"proxyHost": self.args.proxy_host},
        )
        # Recorded where the native stack records it, so `pinpipe emulate` finds the API in
        # any container that mounts the shared state directory.
        url = invoke_url(s, api_id)
        state = s.stack_state()
        state.update({"api_id": api_id, "api_invoke_url": url, "api_stage": s.api_stage})
        s.state_dir.mkdir(parents=True, exist_ok=True)
        s.stack_state_file.write_text(json.dumps(state, indent=2))
        return f"API {api_id} → proxyHost {self.args.proxy_host}; invoke URL {url}"

    def connector(self) -> str:
        config = connector_config(self.settings, self.environ)
        with httpx.Client(base_url=self.args.connect_url, timeout=30) as client:
            wait_until(
                lambda: client.get("/connectors").status_code == 200,
                service="kafka-connect",
                timeout=READY_TIMEOUT_S,
            )
            rewinds = self._lost_objects(client, config)
            put_connector(client, config)
            if rewinds:
                # LocalStack keeps no objects across its restarts: write them again from
                # the log, as the native stack does (services/s3_sink/rebuild.py).
                rewind_connector(client, config["name"], rewinds)
                log.warning(
                    "connector %s rewound: %s", config["name"], "; ".join(map(str, rewinds))
                )
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not connector_running(client, config["name"]):
                if time.monotonic() > deadline:
                    raise ServiceStartError("kafka-connect", f"{config['name']} is not RUNNING")
                time.sleep(1)
        return f"connector {config['name']} RUNNING ({config['topics.regex']} → {config['s3.bucket.name']})"

    def _lost_objects(self, client: httpx.Client, props: Mapping[str, str]) -> list[Rewind]:
        """Partitions the connector committed past what the bucket holds."""
        committed = connect_offsets(client, props["name"])
        if not committed:
            return []
        config = parse_connector_config(props, S3_SINK_CONNECTOR_PROPERTIES)
        keys = config.sink_keys()
        s3 = LocalStackService(self.settings).client("s3")
        group = GroupOffsets(self.settings.kafka_bootstrap_servers, config.group_id)
        try:
            return plan_rewinds(
                committed,
                lambda t, p: stored_through(s3, config.s3_bucket_name, keys, t, p),
                group.earliest,
            )
        finally:
            group.close()

    def dag(self) -> str:
        return f"wrote {write_dag_file(self.settings, Path(self.args.dags_folder))}"


STEPS: dict[str, Callable[[ComposeInit], str]] = {
    "config": ComposeInit.config,
    "db": ComposeInit.db,
    "topics": ComposeInit.topics,
    "aws": ComposeInit.aws,
    "api": ComposeInit.api,
    "connector": ComposeInit.connector,
    "dag": ComposeInit.dag,
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m services.stack.compose_init",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("steps", nargs="+", choices=[*STEPS, "all"], metavar="STEP")
    for flag, env, default, text in (
        (
            "--config-dir",
            "PINPIPE_RENDERED_CONFIG_DIR",
            "/var/lib/pinpipe-config",
            "where `config` writes the rendered REST proxy properties",
        ),
        (
            "--proxy-host",
            "PINPIPE_API_PROXY_HOST",
            "rest-proxy:8082",
            "host:port API Gateway's {proxy+} forwards to (the proxyHost stage variable)",
        ),
        (
            "--connect-url",
            "PINPIPE_CONNECT_URL",
            "http://kafka-connect:8083",
            "Kafka Connect's REST API",
        ),
        (
            "--dags-folder",
            "PINPIPE_COMPOSE_DAGS_FOLDER",
            "/var/lib/pinpipe/dags",
            "Airflow's DAG folder, where `dag` writes <uid>_dag.py",
        ),
    ):
        parser.add_argument(flag, default=os.environ.get(env, default), help=f"{text} (${env})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    steps = list(STEPS) if "all" in args.steps else list(dict.fromkeys(args.steps))
    init = ComposeInit(Settings(), args)
    for step in steps:
        started = time.perf_counter()
        try:
            outcome = STEPS[step](init)
        except PinpipeError as exc:
            log.error("%s failed: %s", step, exc)
            return 1
        log.info("%s: %s (%.1fs)", step, outcome, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
