"""`pinpipe deploy`: promote the same configs to AWS and Databricks."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from pinpipe.cli.output import console, friendly_errors

app = typer.Typer(
    help="Promote the same configs to AWS and Databricks: plan, apply, destroy (like Terraform).",
    no_args_is_help=True,
)


TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target", help="Target settings (default aws-target.yaml; PINPIPE_AWS_* override it)."
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        help="Dry run: send the S3, IAM, Kinesis and API Gateway steps to this LocalStack URL "
        "('local': the native stack's).",
    ),
]
OnlyOpt = Annotated[
    list[str] | None,
    typer.Option("--only", help="Run only this step (repeatable): s3, iam, msk, msk_connect, …"),
]


def _deployment(target: str | None, endpoint: str | None, only: list[str] | None, **kw: Any) -> Any:
    from pathlib import Path

    from aws_deploy.runner import Deployment

    path = Path(target) if target else None
    return Deployment.prepare(path, endpoint=endpoint, only=only or (), **kw)


@app.command("plan")
@friendly_errors
def deploy_plan(
    target: TargetOpt = None,
    endpoint: EndpointOpt = None,
    only: OnlyOpt = None,
    destroy: Annotated[bool, typer.Option("--destroy", help="Plan a destroy instead.")] = False,
) -> None:
    """Show what apply would create, update or leave as it is; reads only, changes nothing."""
    from aws_deploy.plan import render_change, summary

    deployment = _deployment(target, endpoint, only)
    if not destroy:
        deployment.plan(console)
        return
    changes = [change for _, change in deployment.destroy_plan()]
    for change in changes:
        render_change(console, change)
    console.print(f"\n[bold]Destroy plan:[/] {summary(changes)}", highlight=False)


@app.command("apply")
@friendly_errors
def deploy_apply(
    target: TargetOpt = None,
    endpoint: EndpointOpt = None,
    only: OnlyOpt = None,
    trigger_dag: Annotated[
        bool, typer.Option("--trigger-dag", help="Afterwards, start a run of the DAG on MWAA.")
    ] = False,
) -> None:
    """Converge every step (idempotent: a second run changes nothing)."""
    _deployment(target, endpoint, only, trigger_dag=trigger_dag).apply(console)


@app.command("destroy")
@friendly_errors
def deploy_destroy(
    target: TargetOpt = None,
    endpoint: EndpointOpt = None,
    only: OnlyOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Don't ask for confirmation.")] = False,
) -> None:
    """Remove what apply created, and nothing it found in place."""

    def confirm(changes: list[Any]) -> bool:
        return yes or typer.confirm(f"Delete {sum(c.pending for c in changes)} resources?")

    _deployment(target, endpoint, only).destroy(console, confirm)


@app.command("policy")
@friendly_errors
def deploy_policy(target: TargetOpt = None, only: OnlyOpt = None) -> None:
    """Print the deployer's least-privilege IAM policy, filled in for the target."""
    from aws_deploy.iam import deploy_policy as render_policy

    sys.stdout.write(render_policy(_deployment(target, None, only).ctx) + "\n")
