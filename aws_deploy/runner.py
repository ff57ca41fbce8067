"""``pinpipe deploy plan|apply|destroy``: the steps in data-flow order, thinly orchestrated.

``plan`` asks every step what it would change and prints it; it makes read calls only and
writes nothing, locally or remotely. ``apply`` plans one step, makes its pending changes,
then moves on, so a later step sees what an earlier one created (the plugin ARN, the job
ids). ``destroy`` walks the state's records backwards and removes only those.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from aws_deploy import (
    api_gateway,
    databricks,
    ec2_rest_proxy,
    iam,
    kinesis,
    msk,
    msk_connect,
    mwaa,
    s3,
)
from aws_deploy.context import Clients, DeployContext, Step, aws_failure
from aws_deploy.plan import Action, Change, render_change, summary
from aws_deploy.state import DeployState
from aws_deploy.target import AwsTarget, load_target
from services.core.errors import ConfigError, TerminalError, TransientError
from services.core.settings import PROJECT_ROOT, Settings

T = TypeVar("T")

# Data-flow order: storage and roles, the batch path (topics, sink, proxy, API), the
# streams, then the Spark jobs and the DAG that schedules them.
STEPS: tuple[Step, ...] = (
    s3.STEP,
    iam.STEP,
    msk.STEP,
    msk_connect.STEP,
    ec2_rest_proxy.STEP,
    kinesis.STEP,
    api_gateway.STEP,
    databricks.STEP,
    mwaa.STEP,
)
STEP_NAMES = tuple(step.name for step in STEPS)
OUTPUT_LABELS = {
    "bootstrap_servers": "MSK bootstrap (IAM)",
    "rest_proxy_install": "install the REST proxy",
    "api_invoke_url": "API invoke URL",
    "databricks_batch_job_id": "Databricks batch job",
    "databricks_streaming_job_id": "Databricks streaming job",
}


def _missing(target: AwsTarget, path: str) -> bool:
    value: Any = target
    for part in path.split("."):
        value = getattr(value, part)
    return value in (None, "", [])


def select_steps(target: AwsTarget, only: Iterable[str], local: bool) -> list[Step]:
    """The steps to run, with every missing target value reported at once."""
    wanted = list(only)
    unknown = [name for name in wanted if name not in STEP_NAMES]
    if unknown:
        raise ConfigError(f"unknown step {unknown[0]}; choose from {', '.join(STEP_NAMES)}")
    steps = [s for s in STEPS if not wanted or s.name in wanted]
    if local:
        remote = [s.name for s in steps if not s.local]
        if wanted and remote:
            raise ConfigError(
                f"--endpoint reaches only what LocalStack runs; {', '.join(remote)} need AWS"
            )
        steps = [s for s in steps if s.local]
    problems = []
    for step in steps:
        for path in step.requires:
            # databricks auth is a host or a ~/.databrickscfg profile: either will do
            alternatives = (
                ["databricks.host", "databricks.profile"] if path == "databricks.host" else [path]
            )
            if all(_missing(target, alt) for alt in alternatives):
                env = "PINPIPE_AWS_" + path.upper().replace(".", "__")
                problems.append(f"{path} is required by step {step.name} (or set {env})")
    if problems:
        raise ConfigError("\n".join(problems))
    return steps


def _guard(step: str, call: Callable[[], T]) -> T:
    """Run a step's call; AWS and Databricks failures become the project's errors."""
    from databricks.sdk.errors import DatabricksError, TemporarilyUnavailable, TooManyRequests

    try:
        return call()
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(step, exc) from exc
    except (TemporarilyUnavailable, TooManyRequests) as exc:
        raise TransientError(f"{step}: {exc}") from exc
    except DatabricksError as exc:
        raise TerminalError(f"{step}: {exc}") from exc


@dataclass
class Deployment:
    """A target, its context and the selected steps."""

    ctx: DeployContext
    steps: list[Step]

    @classmethod
    def prepare(
        cls,
        target_file: Path | None = None,
        *,
        endpoint: str | None = None,
        only: Iterable[str] = (),
        trigger_dag: bool = False,
        clients: dict[str, Any] | None = None,
        workspace: Any = None,
        project_root: Path | None = None,
        poll_interval: float = 10.0,
    ) -> Deployment:
        """Load and validate the target, resolve the account, and load the state.

        ``endpoint="local"`` means the native stack's LocalStack.
        """
        if endpoint == "local":
            endpoint = Settings(runtime="native").aws_endpoint_url
        target = load_target(target_file)
        local = bool(endpoint)
        probe = target.settings(target.account_id or "000000000000", endpoint)
        if local and not target.rest_proxy.public_dns:
            # A dry run points the API at the native stack's own REST proxy.
            proxy = target.rest_proxy.model_copy(
                update={"public_dns": probe.bind_host, "port": probe.rest_proxy_port}
            )
            target = target.model_copy(update={"rest_proxy": proxy})
        steps = select_steps(target, only, local)
        boto = Clients(probe, clients)
        account = target.account_id or _guard(
            "sts", lambda: str(boto("sts").get_caller_identity()["Account"])
        )
        settings = target.settings(account, endpoint)
        ctx = DeployContext(
            target=target,
            settings=settings,
            clients=boto,
            state=DeployState.for_target(settings),
            poll_interval=poll_interval,
            trigger_dag=trigger_dag,
            workspace=workspace,
            project_root=project_root or PROJECT_ROOT,
        )
        return cls(ctx, steps)

    def _header(self, console: Console, title: str) -> None:
        s = self.ctx.settings
        where = s.aws_endpoint_url or f"AWS account {s.aws_account_id}"
        console.print(
            f"[bold]{title}[/] user [bold]{s.user_id}[/] in {s.aws_region} ({where})",
            highlight=False,
        )

    def _step_header(self, console: Console, step: Step) -> None:
        console.print(f"\n[bold cyan]{step.name}[/] [dim]{step.summary}[/]", highlight=False)

    def plan(self, console: Console) -> list[Change]:
        """Every change ``apply`` would make, printed; nothing is written."""
        return self._converge(console, "plan", execute=False)

    def apply(self, console: Console) -> list[Change]:
        """Converge every step in order; each change reports its outcome."""
        return self._converge(console, "apply", execute=True)

    def _converge(self, console: Console, verb: str, execute: bool) -> list[Change]:
        """Each step's changes, printed, and executed when ``execute`` is set."""
        self._header(console, f"{verb}:")
        changes: list[Change] = []
        for step in self.steps:
            self._step_header(console, step)
            for change in _guard(step.name, partial(step.plan, self.ctx)):
                render_change(console, change)
                changes.append(change)
                if execute and change.pending:
                    self._execute(console, step, change)
        title = "Apply complete" if execute else "Plan"
        console.print(f"\n[bold]{title}:[/] {summary(changes)}", highlight=False)
        self._outputs(console)
        return changes

    def destroy_plan(self) -> list[tuple[Step, Change]]:
        """A delete (or already-gone) change per recorded resource, newest first."""
        planned = []
        for step in reversed(self.steps):
            for record in reversed(self.ctx.state.records(step.name)):
                planned.append((step, _guard(step.name, partial(step.destroy, self.ctx, record))))
        return planned

    def destroy(self, console: Console, confirm: Callable[[list[Change]], bool]) -> list[Change]:
        """Show what ``apply`` created and still exists, then delete it once confirmed."""
        self._header(console, "destroy:")
        planned = self.destroy_plan()
        changes = [change for _, change in planned]
        for change in changes:
            render_change(console, change)
        console.print(f"\n[bold]Destroy:[/] {summary(changes)}", highlight=False)
        if not any(c.pending for c in changes):
            for change in changes:
                change.execute()  # only drops records of what is already gone
            return changes
        if not confirm(changes):
            console.print("nothing deleted")
            return []
        for step, change in planned:
            if change.pending:
                render_change(console, change)
                self._execute(console, step, change)
            else:
                change.execute()
        return changes

    def _execute(self, console: Console, step: Step, change: Change) -> None:
        started = time.perf_counter()
        outcome = _guard(step.name, change.execute)
        verb = "deleted" if change.action is Action.DELETE else "done"
        console.print(
            f"      [green]✓[/] {verb}: {outcome} [dim]({time.perf_counter() - started:.1f}s)[/]",
            highlight=False,
        )

    def _outputs(self, console: Console) -> None:
        shown = [
            (label, self.ctx.outputs[key])
            for key, label in OUTPUT_LABELS.items()
            if key in self.ctx.outputs
        ]
        if shown:
            console.print("\n[bold]Outputs:[/]")
            for label, value in shown:
                console.print(f"  {label:<26} {value}", highlight=False, soft_wrap=True)
