"""What every step shares: the target, the derived names, the clients, the state, the outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aws_deploy.plan import Action, Change
from aws_deploy.state import DeployState, Record
from aws_deploy.target import AwsTarget
from services.core.errors import ConfigError, PinpipeError, TerminalError, TransientError
from services.core.settings import PROJECT_ROOT, Settings
from services.core.waiting import WaitTimeout, poll

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

T = TypeVar("T")

# What LocalStack (the native stack's) runs: an --endpoint run reaches only these.
LOCALSTACK_SERVICES = frozenset({"s3", "iam", "sts", "kinesis", "apigateway"})
POLICY_FILE = Path(__file__).parent / "iam" / "pinpipe-deploy-policy.json"

_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalServerErrorException",
        "InternalFailure",
        "RequestTimeout",
    }
)


class Clients:
    """One boto3 client per service for the whole run (tests pass stubbed ones)."""

    def __init__(self, settings: Settings, overrides: dict[str, Any] | None = None) -> None:
        self._settings = settings
        self._clients: dict[str, Any] = dict(overrides or {})

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            if self._settings.aws_endpoint_url and service not in LOCALSTACK_SERVICES:
                raise ConfigError(f"{service} is not emulated: --endpoint runs reach only AWS")
            self._clients[service] = boto3.client(
                service,
                # botocore's own retries cover throttling and 5xx on every call.
                config=Config(retries={"mode": "standard", "max_attempts": 8}),
                **self._settings.boto3_kwargs(),
            )
        return self._clients[service]


@dataclass
class DeployContext:
    """Everything a step reads; ``outputs`` are shown to the user and read by later steps."""

    target: AwsTarget
    settings: Settings
    clients: Clients
    state: DeployState
    project_root: Path = PROJECT_ROOT
    outputs: dict[str, str] = field(default_factory=dict)
    # What was read from the account once and is shared between steps (cluster, admin).
    facts: dict[str, Any] = field(default_factory=dict)
    poll_interval: float = 10.0
    trigger_dag: bool = False
    workspace: WorkspaceClient | None = None

    @property
    def local(self) -> bool:
        """Whether this run goes to LocalStack rather than AWS."""
        return bool(self.settings.aws_endpoint_url)

    @property
    def bucket(self) -> str:
        return self.target.bucket or self.settings.bucket

    @property
    def ec2_role_arn(self) -> str:
        """The role the REST proxy and the connector authenticate to MSK with."""
        return self.target.roles.ec2_access_role_arn or self._role_arn(
            self.settings.ec2_access_role
        )

    @property
    def kinesis_role_arn(self) -> str:
        """The role API Gateway's Kinesis integrations assume."""
        return self.target.roles.kinesis_access_role_arn or self.settings.kinesis_role_arn

    def _role_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.settings.aws_account_id}:role/{name}"

    def databricks(self) -> WorkspaceClient:
        """The workspace client, authenticated by the SDK's own chain."""
        if self.workspace is None:
            from databricks.sdk import WorkspaceClient

            db = self.target.databricks
            self.workspace = WorkspaceClient(host=db.host, profile=db.profile)
        return self.workspace

    def wait_until(
        self,
        what: str,
        check: Callable[[], T | None],
        timeout: float,
        interval: float | None = None,
    ) -> T:
        """Poll ``check`` until it returns a value (services without waiters)."""
        interval = self.poll_interval if interval is None else interval
        try:
            return poll(check, what, timeout, every=interval)  # type: ignore[return-value]
        except WaitTimeout as exc:
            raise TransientError(f"{exc}; run apply again to resume") from None


@dataclass(frozen=True)
class Step:
    """One deploy step: what it needs from the target, how it plans and how it undoes."""

    name: str
    summary: str
    requires: tuple[str, ...]
    plan: Callable[[DeployContext], list[Change]]
    destroy: Callable[[DeployContext, Record], Change]
    # Runs against LocalStack in an --endpoint dry run.
    local: bool = False


def gone(ctx: DeployContext, record: Record, kind: str, name: str) -> Change:
    """A recorded resource that no longer exists: nothing to delete, only the record to drop."""

    def forget() -> str:
        ctx.state.forget(record)
        return "record dropped"

    return Change(record.step, kind, name, Action.NOOP, "already gone", forget)


def policy_sid(step: str) -> str:
    """The policy statement that grants a step's permissions: ``msk_connect`` -> ``MskConnect``."""
    return "".join(part.title() for part in step.split("_"))


def aws_failure(step: str, exc: ClientError | BotoCoreError) -> PinpipeError:
    """A botocore error as the project's transient or terminal error, naming the step."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _TRANSIENT_CODES:
            return TransientError(f"{step}: {exc}")
        if "AccessDenied" in code or code in {"UnauthorizedOperation", "ForbiddenException"}:
            return TerminalError(
                f"{step}: {exc} (this step's permissions are statement "
                f"Sid={policy_sid(step)} in {POLICY_FILE})"
            )
        return TerminalError(f"{step}: {exc}")
    return TransientError(f"{step}: {exc}")
