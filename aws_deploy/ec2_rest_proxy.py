"""The Confluent REST proxy on the EC2 client: the shared properties file plus a systemd unit.

``config/kafka-rest.properties`` is rendered with the MSK IAM settings of the original
project's seed (SASL_SSL, AWS_MSK_IAM, the EC2 access role) and the IAM bootstrap string,
then packed with a systemd unit into one self-contained ``install-rest-proxy.sh``. Without
SSM the bundle is written under the state directory and the command to run it is printed;
with ``rest_proxy.ssm_instance_id`` it is run through SSM Run Command. Idempotence keys:
the bundle's content on disk, and its SHA-256 as last applied to the instance.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

from botocore.exceptions import ClientError

from aws_deploy import msk
from aws_deploy.context import DeployContext, Step
from aws_deploy.plan import Action, Change, noop
from aws_deploy.s3 import sha256
from aws_deploy.state import Record
from services.core.config_files import (
    KAFKA_REST_PROPERTIES,
    load_properties,
    render,
    template_values,
)
from services.core.errors import TerminalError

NAME = "rest_proxy"
TEMPLATES = Path(__file__).parent / "templates"
PROPERTIES_PATH = "/etc/kafka-rest/kafka-rest.properties"
IAM_AUTH_JAR_URL = "https://github.com/aws/aws-msk-iam-auth/releases/download/v1.1.5/aws-msk-iam-auth-1.1.5-all.jar"
INSTALL_TIMEOUT = 600.0
UNINSTALL = (
    "systemctl disable --now kafka-rest.service || true",
    f"rm -f /etc/systemd/system/kafka-rest.service {PROPERTIES_PATH}",
    "systemctl daemon-reload",
)


def msk_iam_values(role_arn: str) -> dict[str, str]:
    """The seed's ``client.*`` IAM settings, as the properties file's placeholders."""
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "AWS_MSK_IAM",
        "KAFKA_SASL_JAAS_CONFIG": (
            f'software.amazon.msk.auth.iam.IAMLoginModule required awsRoleArn="{role_arn}";'
        ),
        "KAFKA_SASL_CALLBACK_HANDLER": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
    }


def rest_proxy_properties(ctx: DeployContext, bootstrap: str) -> dict[str, str]:
    """The shared REST proxy file rendered for MSK with IAM auth."""
    values = (
        template_values(ctx.settings)
        | msk_iam_values(ctx.ec2_role_arn)
        | {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REST_PROXY_LISTENER": f"http://0.0.0.0:{ctx.target.rest_proxy.port}",
        }
    )
    return load_properties(KAFKA_REST_PROPERTIES, values)


def bundle(ctx: DeployContext, bootstrap: str) -> dict[str, str]:
    """The files that install the proxy: properties, unit, and the script carrying both."""
    proxy = ctx.target.rest_proxy
    props = "".join(
        [
            f"# Rendered by pinpipe from config/kafka-rest.properties for {ctx.settings.user_id}.\n",
            *(f"{k}={v}\n" for k, v in rest_proxy_properties(ctx, bootstrap).items()),
        ]
    )
    values = {
        "USER_ID": ctx.settings.user_id,
        "RUN_AS": proxy.ssh_user,
        "CONFLUENT_HOME": proxy.confluent_home,
        "IAM_AUTH_JAR": f"{proxy.confluent_home}/share/java/kafka-rest-lib/aws-msk-iam-auth-1.1.5-all.jar",
        "IAM_AUTH_JAR_URL": IAM_AUTH_JAR_URL,
        "PROPERTIES_PATH": PROPERTIES_PATH,
    }
    unit_path = TEMPLATES / "kafka-rest.service"
    unit = render(unit_path.read_text(), values, unit_path)
    script_path = TEMPLATES / "install-rest-proxy.sh"
    script = render(
        script_path.read_text(),
        values
        | {
            "PROPERTIES_B64": base64.b64encode(props.encode()).decode(),
            "UNIT_B64": base64.b64encode(unit.encode()).decode(),
        },
        script_path,
    )
    return {
        "kafka-rest.properties": props,
        "kafka-rest.service": unit,
        "install-rest-proxy.sh": script,
    }


def bundle_dir(ctx: DeployContext) -> Path:
    """Where the bundle is written for the user to inspect and run."""
    return ctx.state.path.parent / ctx.settings.rest_proxy_bundle_name


def _bundle_change(ctx: DeployContext, files: dict[str, str]) -> Change:
    folder = bundle_dir(ctx)
    stale = [
        n
        for n, text in files.items()
        if not (folder / n).is_file() or (folder / n).read_text() != text
    ]
    if not stale:
        return noop(NAME, "bundle", str(folder), "up to date")

    def write() -> str:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text)
        (folder / "install-rest-proxy.sh").chmod(0o755)
        ctx.state.record(NAME, "bundle", str(folder))
        return f"wrote {', '.join(stale)}"

    action = Action.CREATE if not folder.exists() else Action.UPDATE
    return Change(NAME, "bundle", str(folder), action, ", ".join(stale), write)


def _run_ssm(ctx: DeployContext, instance: str, commands: list[str], comment: str) -> None:
    ssm = ctx.clients("ssm")
    command_id = ssm.send_command(
        InstanceIds=[instance],
        DocumentName="AWS-RunShellScript",
        Comment=comment[:100],
        Parameters={"commands": commands},
    )["Command"]["CommandId"]

    def finished() -> str | None:
        try:
            inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
        except ClientError as exc:
            # The invocation shows up a moment after send_command returns.
            if exc.response.get("Error", {}).get("Code") == "InvocationDoesNotExist":
                return None
            raise
        status = str(inv["Status"])
        if status in {"Pending", "InProgress", "Delayed"}:
            return None
        if status != "Success":
            raise TerminalError(
                f"SSM command on {instance} ended {status}: {inv.get('StandardErrorContent', '')[-500:]}"
            )
        return status

    ctx.wait_until(f"SSM command {command_id} on {instance}", finished, INSTALL_TIMEOUT)


def _ssm_change(ctx: DeployContext, instance: str, script: str) -> Change:
    key = f"{instance}#kafka-rest"
    digest = sha256(script.encode())
    applied = ctx.state.fingerprints.get(key)
    if applied == digest:
        return noop(NAME, "service", f"kafka-rest on {instance}", f"sha256 {digest[:12]}")

    def install() -> str:
        _run_ssm(ctx, instance, [script], f"pinpipe {ctx.settings.user_id}: install kafka-rest")
        ctx.state.record(NAME, "service", instance)
        ctx.state.set_fingerprint(key, digest)
        return "installed and running"

    action = Action.CREATE if applied is None else Action.UPDATE
    detail = f"via SSM, sha256 {(applied or 'none')[:12]} → {digest[:12]}"
    return Change(NAME, "service", f"kafka-rest on {instance}", action, detail, install)


def plan(ctx: DeployContext) -> list[Change]:
    """The bundle on disk, and its installation through SSM when configured."""
    files = bundle(ctx, msk.bootstrap_servers(ctx))
    proxy = ctx.target.rest_proxy
    script = bundle_dir(ctx) / "install-rest-proxy.sh"
    changes = [_bundle_change(ctx, files)]
    if proxy.ssm_instance_id:
        changes.append(_ssm_change(ctx, proxy.ssm_instance_id, files["install-rest-proxy.sh"]))
    else:
        key = proxy.ssh_key_file.replace("<user_id>", ctx.settings.user_id)
        ctx.outputs["rest_proxy_install"] = (
            f"ssh -i {key} {proxy.ssh_user}@{proxy.public_dns} 'sudo bash -s' < {script}"
        )
    return changes


def destroy(ctx: DeployContext, record: Record) -> Change:
    """Remove the local bundle, or stop and remove the service SSM installed."""
    if record.kind == "bundle":
        folder = Path(record.id)

        def remove() -> str:
            shutil.rmtree(folder, ignore_errors=True)
            ctx.state.forget(record)
            return "removed"

        return Change(NAME, "bundle", record.id, Action.DELETE, "local files", remove)

    def uninstall() -> str:
        _run_ssm(
            ctx, record.id, list(UNINSTALL), f"pinpipe {ctx.settings.user_id}: remove kafka-rest"
        )
        ctx.state.forget(record)
        return "stopped and removed"

    return Change(
        NAME, "service", f"kafka-rest on {record.id}", Action.DELETE, "via SSM", uninstall
    )


STEP = Step(
    NAME,
    "the Confluent REST proxy on the EC2 client",
    ("msk.cluster_arn", "rest_proxy.public_dns"),
    plan,
    destroy,
)
