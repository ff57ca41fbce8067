"""MSK Connect: the Confluent S3 sink plugin and connector, from the local runtimes' own file.

``config/s3-sink-connector.properties`` is rendered with this target's values; the keys in
``CLUSTER_SPECIFIC_KEYS`` are the only ones whose value differs from what the native and
compose runtimes run. Idempotence keys: the plugin zip's S3 key, the plugin name
(``<uid>-plugin``) and the connector name (``<uid>-connector``). A connector whose
configuration or capacity drifted is updated in place; one whose cluster, network, plugin
or role changed (fixed at creation) is replaced, but only if ``apply`` created it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from aws_deploy import msk
from aws_deploy.context import DeployContext, Step, gone
from aws_deploy.plan import Action, Change, noop
from aws_deploy.s3 import delete_object_change, head
from aws_deploy.state import Record
from services.core.config_files import (
    S3_SINK_CONNECTOR_PROPERTIES,
    load_properties,
    template_values,
)
from services.core.errors import TerminalError

NAME = "msk_connect"
PLUGIN_TIMEOUT = 900.0

# The only keys whose value on MSK Connect differs from the local runtimes', and why.
CLUSTER_SPECIFIC_KEYS: dict[str, str] = {
    "store.url": "dropped: only a local S3 endpoint (LocalStack) needs it",
    "s3.region": "the target's region",
    "s3.bucket.name": "the target's bucket",
    "name": "dropped: MSK Connect names the connector itself (connectorName)",
}
_DROPPED = ("store.url", "name")
# Fixed when a connector is created: a change means delete and create again.
_IMMUTABLE = ("bootstrap", "subnets", "security groups", "plugin", "role", "kafka connect version")


def connector_configuration(ctx: DeployContext, bootstrap: str) -> dict[str, str]:
    """The shared connector file rendered for this target (cluster-specific keys applied)."""
    values = template_values(ctx.settings) | {
        "BUCKET": ctx.bucket,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "S3_STORE_URL": "",
    }
    config = load_properties(S3_SINK_CONNECTOR_PROPERTIES, values)
    return {k: v for k, v in config.items() if k not in _DROPPED}


def _network(ctx: DeployContext) -> tuple[list[str], list[str]]:
    want = ctx.target.msk_connect
    if want.subnets and want.security_groups:
        return list(want.subnets), list(want.security_groups)
    nodes = msk.cluster_info(ctx).get("Provisioned", {}).get("BrokerNodeGroupInfo", {})
    return (
        list(want.subnets or nodes.get("ClientSubnets", [])),
        list(want.security_groups or nodes.get("SecurityGroups", [])),
    )


def _find(items: list[dict[str, Any]], key: str, name: str) -> dict[str, Any] | None:
    return next((i for i in items if i.get(key) == name), None)


# ---- plugin zip ---------------------------------------------------------------------------
@retry(
    retry=retry_if_exception_type(httpx.TransportError),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=2),
    reraise=True,
)
def _download(url: str, dest: Path) -> None:
    with httpx.stream("GET", url, follow_redirects=True, timeout=60) as resp:
        resp.raise_for_status()
        with dest.open("wb") as out:
            for chunk in resp.iter_bytes():
                out.write(chunk)


def _zip_change(ctx: DeployContext) -> Change:
    want = ctx.target.msk_connect
    bucket = want.plugin_bucket or ctx.bucket
    uri = f"s3://{bucket}/{want.plugin_key}"
    s3 = ctx.clients("s3")
    if head(s3, bucket, want.plugin_key) is not None:
        return noop(NAME, "plugin zip", uri, "present")

    def upload() -> str:
        source = want.plugin_source
        with tempfile.TemporaryDirectory() as tmp:
            if source.startswith(("https://", "http://")):
                path = Path(tmp) / Path(want.plugin_key).name
                _download(source, path)
            else:
                path = Path(source).expanduser()
                if not path.is_file():
                    raise TerminalError(f"msk_connect.plugin_source: {path} is not a file")
            s3.upload_file(str(path), bucket, want.plugin_key)
        ctx.state.record(NAME, "object", uri, bucket=bucket, key=want.plugin_key)
        return "uploaded"

    return Change(NAME, "plugin zip", uri, Action.CREATE, f"from {want.plugin_source}", upload)


# ---- custom plugin ------------------------------------------------------------------------
def _plugin_state(ctx: DeployContext, arn: str) -> str:
    described = ctx.clients("kafkaconnect").describe_custom_plugin(customPluginArn=arn)
    state = str(described["customPluginState"])
    if state == "CREATE_FAILED":
        reason = described.get("stateDescription", {}).get("message", "")
        raise TerminalError(f"custom plugin {arn} failed: {reason} (delete it, then apply again)")
    return state


def _plugin_change(ctx: DeployContext) -> Change:
    kc = ctx.clients("kafkaconnect")
    name = ctx.settings.msk_plugin_name
    want = ctx.target.msk_connect
    found = _find(kc.list_custom_plugins(namePrefix=name).get("customPlugins", []), "name", name)
    if found is not None:
        ctx.facts["plugin"] = (found["customPluginArn"], found["latestRevision"]["revision"])
        return noop(NAME, "custom plugin", name, found["customPluginState"])

    def create() -> str:
        created = kc.create_custom_plugin(
            name=name,
            contentType="ZIP",
            description="pinpipe: Confluent S3 sink",
            location={
                "s3Location": {
                    "bucketArn": f"arn:aws:s3:::{want.plugin_bucket or ctx.bucket}",
                    "fileKey": want.plugin_key,
                }
            },
        )
        arn = created["customPluginArn"]
        ctx.state.record(NAME, "custom plugin", arn)
        ctx.facts["plugin"] = (arn, created["revision"])
        ctx.wait_until(
            f"custom plugin {name} to become ACTIVE",
            lambda: True if _plugin_state(ctx, arn) == "ACTIVE" else None,
            PLUGIN_TIMEOUT,
        )
        return "ACTIVE"

    return Change(NAME, "custom plugin", name, Action.CREATE, want.plugin_key, create)


# ---- connector ----------------------------------------------------------------------------
def desired_connector(ctx: DeployContext, plugin: tuple[str, int]) -> dict[str, Any]:
    """The ``create_connector`` arguments for this target."""
    want = ctx.target.msk_connect
    bootstrap = msk.bootstrap_servers(ctx)
    subnets, groups = _network(ctx)
    return {
        "connectorName": ctx.settings.connector_name,
        "connectorDescription": "pinpipe: Confluent S3 sink, config/s3-sink-connector.properties",
        "capacity": {
            "provisionedCapacity": {"mcuCount": want.mcu_count, "workerCount": want.worker_count}
        },
        "connectorConfiguration": connector_configuration(ctx, bootstrap),
        "kafkaCluster": {
            "apacheKafkaCluster": {
                "bootstrapServers": bootstrap,
                "vpc": {"subnets": subnets, "securityGroups": groups},
            }
        },
        "kafkaClusterClientAuthentication": {"authenticationType": "IAM"},
        "kafkaClusterEncryptionInTransit": {"encryptionType": "TLS"},
        "kafkaConnectVersion": want.kafka_connect_version,
        "plugins": [{"customPlugin": {"customPluginArn": plugin[0], "revision": plugin[1]}}],
        "serviceExecutionRoleArn": ctx.ec2_role_arn,
    }


def _fixed(spec: dict[str, Any]) -> dict[str, Any]:
    cluster = spec["kafkaCluster"]["apacheKafkaCluster"]
    plugin = spec["plugins"][0]["customPlugin"]
    return dict(
        zip(
            _IMMUTABLE,
            (
                cluster["bootstrapServers"],
                sorted(cluster["vpc"]["subnets"]),
                sorted(cluster["vpc"]["securityGroups"]),
                plugin["customPluginArn"],
                spec["serviceExecutionRoleArn"],
                spec["kafkaConnectVersion"],
            ),
            strict=True,
        )
    )


def _connector_state(ctx: DeployContext, arn: str) -> str | None:
    described = ctx.clients("kafkaconnect").describe_connector(connectorArn=arn)
    state = str(described["connectorState"])
    if state == "FAILED":
        reason = described.get("stateDescription", {}).get("message", "")
        raise TerminalError(f"connector {described['connectorName']} FAILED: {reason}")
    return state


def _wait_running(ctx: DeployContext, arn: str) -> str:
    timeout = float(ctx.target.msk_connect.running_timeout_seconds)
    return ctx.wait_until(
        f"connector {ctx.settings.connector_name} to be RUNNING",
        lambda: "RUNNING" if _connector_state(ctx, arn) == "RUNNING" else None,
        timeout,
    )


def _wait_gone(ctx: DeployContext, name: str) -> None:
    kc = ctx.clients("kafkaconnect")
    ctx.wait_until(
        f"connector {name} to be deleted",
        lambda: True if _listed_connector(kc, name) is None else None,
        float(ctx.target.msk_connect.running_timeout_seconds),
    )


def _listed_connector(kc: Any, name: str) -> dict[str, Any] | None:
    listed = kc.list_connectors(connectorNamePrefix=name).get("connectors", [])
    return _find(listed, "connectorName", name)


def _connector_change(ctx: DeployContext) -> Change:
    kc = ctx.clients("kafkaconnect")
    name = ctx.settings.connector_name
    listed = _listed_connector(kc, name)

    def create() -> str:
        spec = desired_connector(ctx, ctx.facts["plugin"])
        arn = kc.create_connector(**spec)["connectorArn"]
        ctx.state.record(NAME, "connector", arn, name=name)
        return _wait_running(ctx, arn)

    if listed is None:
        return Change(NAME, "connector", name, Action.CREATE, "then wait for RUNNING", create)
    arn = listed["connectorArn"]
    current = kc.describe_connector(connectorArn=arn)
    plugin = ctx.facts.get("plugin")
    # Without a plugin yet (it is created in this run) the connector must move to the new one.
    spec = desired_connector(ctx, plugin) if plugin else None
    fixed_diff = ["plugin"]
    if spec is not None:
        old, new = _fixed(current), _fixed(spec)
        fixed_diff = [k for k in _IMMUTABLE if old[k] != new[k]]
    if spec is None or fixed_diff or current["connectorState"] == "FAILED":
        why = ", ".join(fixed_diff) or "connector FAILED"
        if not ctx.state.owns(NAME, "connector", arn):
            raise TerminalError(
                f"connector {name} was not created by pinpipe and differs in {why}: "
                "delete it or match the target to it"
            )

        def replace() -> str:
            kc.delete_connector(connectorArn=arn, currentVersion=current["currentVersion"])
            _wait_gone(ctx, name)
            ctx.state.forget(Record(NAME, "connector", arn))
            return create()

        return Change(NAME, "connector", name, Action.REPLACE, f"{why} changed", replace)

    updates: list[tuple[str, dict[str, Any]]] = []
    have, want = current.get("connectorConfiguration", {}), spec["connectorConfiguration"]
    if have != want:
        keys = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
        updates.append((f"config {', '.join(keys)}", {"connectorConfiguration": want}))
    if current.get("capacity") != spec["capacity"]:
        updates.append(("capacity", {"capacity": spec["capacity"]}))
    if not updates:
        return noop(NAME, "connector", name, str(current["connectorState"]))

    def update() -> str:
        # One update per call: each starts an operation the next must wait for.
        for _, change in updates:
            version = kc.describe_connector(connectorArn=arn)["currentVersion"]
            kc.update_connector(connectorArn=arn, currentVersion=version, **change)
            _wait_running(ctx, arn)
        return "RUNNING"

    detail = "; ".join(label for label, _ in updates)
    return Change(NAME, "connector", name, Action.UPDATE, detail, update)


def plan(ctx: DeployContext) -> list[Change]:
    """The plugin zip, the custom plugin and the connector, in that order."""
    return [_zip_change(ctx), _plugin_change(ctx), _connector_change(ctx)]


def destroy(ctx: DeployContext, record: Record) -> Change:
    """Delete the connector, plugin or zip ``apply`` created."""
    if record.kind == "object":
        return delete_object_change(ctx, record)
    kc = ctx.clients("kafkaconnect")
    if record.kind == "connector":
        name = record.data.get("name", ctx.settings.connector_name)
        listed = _listed_connector(kc, name)
        if listed is None or listed["connectorArn"] != record.id:
            return gone(ctx, record, "connector", name)

        def delete_connector() -> str:
            kc.delete_connector(connectorArn=record.id, currentVersion=listed["currentVersion"])
            _wait_gone(ctx, name)
            ctx.state.forget(record)
            return "deleted"

        return Change(NAME, "connector", name, Action.DELETE, "", delete_connector)

    name = ctx.settings.msk_plugin_name
    plugins = kc.list_custom_plugins(namePrefix=name).get("customPlugins", [])
    if _find(plugins, "customPluginArn", record.id) is None:
        return gone(ctx, record, "custom plugin", name)

    def delete_plugin() -> str:
        kc.delete_custom_plugin(customPluginArn=record.id)
        ctx.state.forget(record)
        return "deleted"

    return Change(NAME, "custom plugin", name, Action.DELETE, "", delete_plugin)


STEP = Step(NAME, "the S3 sink plugin and connector, RUNNING", ("msk.cluster_arn",), plan, destroy)
