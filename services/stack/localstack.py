"""LocalStack in host mode (its own Python 3.13 venv): S3, Kinesis and API Gateway."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import ClientError

from services.core.errors import PrerequisiteError
from services.core.settings import PROJECT_ROOT
from services.stack.base import NativeService

LOCALSTACK_VENV = Path(os.environ.get("PINPIPE_LOCALSTACK_VENV", PROJECT_ROOT / ".venv-localstack"))
# Packages LocalStack installs lazily (kinesis-mock) live here, shared by every instance,
# so test stacks with their own state directory don't reinstall them.
LOCALSTACK_PACKAGES = LOCALSTACK_VENV / "filesystem"
PACKAGES_SUBDIR = Path("var/lib/localstack/lib")
SERVICES = "s3,kinesis,apigateway,sts,iam"


def localstack_env(filesystem_root: Path, listen: str) -> dict[str, str]:
    """Environment for host mode; each variable fixes a real failure (see STACK-NOTES)."""
    return {
        "GATEWAY_LISTEN": listen,
        "SERVICES": SERVICES,
        "DNS_ADDRESS": "0",
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(filesystem_root),
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        "KINESIS_PROVIDER": "kinesis-mock",
        "LOCALSTACK_TELEMETRY": "0",
        "DISABLE_CORS_CHECKS": "1",
    }


class LocalStackService(NativeService):
    name = "localstack"
    port_setting = "PINPIPE_LOCALSTACK_PORT"
    startup_timeout = 90.0

    @property
    def port(self) -> int:
        return self.settings.localstack_port

    def endpoint(self) -> str:
        return str(self.settings.aws_endpoint_url)

    def healthy(self) -> bool:
        resp = httpx.get(f"{self.endpoint()}/_localstack/health", timeout=2)
        if resp.status_code != 200:
            return False
        states = resp.json().get("services", {})
        return all(
            states.get(s) in {"available", "running"} for s in ("s3", "kinesis", "apigateway")
        )

    def check_prerequisites(self) -> None:
        if not (LOCALSTACK_VENV / "bin" / "python").exists():
            raise PrerequisiteError(
                f"LocalStack's venv is missing at {LOCALSTACK_VENV}: run `make setup` "
                "(it needs python3.13)."
            )

    def launch(self) -> None:
        root = self.settings.state_dir / "localstack"
        shared = root / PACKAGES_SUBDIR
        shared.parent.mkdir(parents=True, exist_ok=True)
        (LOCALSTACK_PACKAGES / PACKAGES_SUBDIR).mkdir(parents=True, exist_ok=True)
        if not shared.exists():
            shared.symlink_to(LOCALSTACK_PACKAGES / PACKAGES_SUBDIR, target_is_directory=True)
        env = localstack_env(root, f"{self.settings.bind_host}:{self.port}")
        self.proc.start(
            [str(LOCALSTACK_VENV / "bin" / "python"), "-m", "localstack.runtime.main"],
            env=env,
            cwd=root,
        )

    def client(self, service: str):  # type: ignore[no-untyped-def]
        return boto3.client(
            service,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            **self.settings.boto3_kwargs(),
        )

    def provision(self) -> None:
        """The bucket and the three Kinesis streams (created only when missing)."""
        s3 = self.client("s3")
        try:
            s3.head_bucket(Bucket=self.settings.bucket)
        except ClientError:
            s3.create_bucket(Bucket=self.settings.bucket)
        kinesis = self.client("kinesis")
        existing = set(kinesis.list_streams().get("StreamNames", []))
        for stream in self.settings.streams.values():
            if stream not in existing:
                with contextlib.suppress(kinesis.exceptions.ResourceInUseException):
                    kinesis.create_stream(StreamName=stream, ShardCount=self.settings.stream_shards)
        waiter = kinesis.get_waiter("stream_exists")
        for stream in self.settings.streams.values():
            waiter.wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
