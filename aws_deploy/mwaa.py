"""MWAA: the DAG, ``requirements.txt`` and the startup script that selects the DAG's variant.

The DAG file (``<uid>_dag.py``, rendered from the committed one in ``airflow/dags``) and
the project modules it imports are read at run time and uploaded to the DAG folder. The
environment is updated only when ``requirements.txt`` (with MWAA's ``--constraint`` line)
or the startup script (``PINPIPE_*`` exports the DAG reads: runner, warehouse, Databricks
job) is not the version it runs. Idempotence keys: each object's SHA-256 in its metadata, and the
object versions the environment points at. On request (``--trigger-dag``) a run is started
with ``invoke_rest_api``. ``destroy`` removes the uploaded DAG files; the requirements and
startup script stay, because the environment keeps referring to those object versions.
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pinpipe_tasks.dag_file import render_dag_file
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from aws_deploy import databricks
from aws_deploy.context import DeployContext, Step
from aws_deploy.plan import Action, Change, noop
from aws_deploy.s3 import delete_object_change, head, object_change
from aws_deploy.state import Record
from services.core.errors import TerminalError

NAME = "mwaa"
DAGS_DIR = Path("airflow/dags")
STARTUP_KEY = "startup/pinpipe-startup.sh"
ENVIRONMENT_TIMEOUT = 3600.0
DAG_PARSE_TIMEOUT = 300.0
CONSTRAINTS = "https://raw.githubusercontent.com/apache/airflow/constraints-{airflow}/constraints-{python}.txt"


def environment(ctx: DeployContext) -> dict[str, Any]:
    """``GetEnvironment`` of the target environment, read once per run."""
    if "mwaa_environment" not in ctx.facts:
        name = ctx.target.mwaa.environment
        ctx.facts["mwaa_environment"] = ctx.clients("mwaa").get_environment(Name=name)[
            "Environment"
        ]
    return dict(ctx.facts["mwaa_environment"])


def dags_bucket(ctx: DeployContext) -> str:
    """The bucket MWAA reads DAGs from (the environment's own, unless the target says)."""
    return ctx.target.mwaa.dags_bucket or str(environment(ctx)["SourceBucketArn"]).split(":::")[-1]


def python_version(airflow_version: str) -> str:
    """The Python MWAA runs for an Airflow version (3.x images run 3.12)."""
    major, minor = (int(n) for n in airflow_version.split(".")[:2])
    if major >= 3:
        return "3.12"
    return "3.11" if (major, minor) >= (2, 7) else "3.10"


def requirements_txt(airflow_version: str, packages: list[str]) -> bytes:
    """MWAA's constraint line for the environment's Airflow and Python, then the packages."""
    constraint = CONSTRAINTS.format(airflow=airflow_version, python=python_version(airflow_version))
    return "".join([f'--constraint "{constraint}"\n', *(f"{p}\n" for p in packages)]).encode()


def _imported(tree: ast.AST, package: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):  # walk: imports inside task functions count too
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def _module_file(roots: list[Path], dotted: str) -> tuple[Path, Path] | None:
    for root in roots:
        base = root.joinpath(*dotted.split("."))
        for path in (base / "__init__.py", base.with_suffix(".py")):
            if path.is_file():
                return root, path
    return None


def dag_files(ctx: DeployContext) -> dict[str, bytes]:
    """The DAG file and every project module it imports, by path under the DAG folder.

    MWAA puts its DAG folder on ``sys.path``, so ``services/core/settings.py`` uploaded there
    imports as ``services.core.settings``; third-party imports come from ``requirements.txt``.
    """
    folder = ctx.project_root / DAGS_DIR
    source = render_dag_file(ctx.settings.user_id)
    # The DAG folder, then the project (services/...) and airflow/ (pinpipe_tasks/...).
    roots = [folder, ctx.project_root, ctx.project_root / "airflow"]
    files = {ctx.settings.dag_file: source.encode()}
    pending = [(ast.parse(source), "")]
    while pending:
        tree, package = pending.pop()
        for dotted in sorted(_imported(tree, package)):
            parts = dotted.split(".")
            for depth in range(1, len(parts) + 1):
                found = _module_file(roots, ".".join(parts[:depth]))
                if found is None:
                    break
                root, path = found
                rel = path.relative_to(root).as_posix()
                if rel not in files:
                    files[rel] = path.read_bytes()
                    module = ".".join(parts[:depth])
                    is_package = path.name == "__init__.py"
                    pending.append(
                        (ast.parse(files[rel]), module if is_package else module.rpartition(".")[0])
                    )
    return files


def dag_environment(ctx: DeployContext) -> dict[str, str]:
    """The ``PINPIPE_*`` settings the DAG reads on MWAA: its Databricks variant, and where."""
    folder, files = databricks.artifacts(ctx)
    wheel = next(name for name in files if name.endswith(".whl"))
    values = {
        "runtime": "aws",
        "aws_region": ctx.settings.aws_region,
        "dag_runner": "databricks",
        "warehouse_uri": databricks.warehouse(ctx),
        "databricks_batch_job_id": _batch_job_id(ctx),
        "databricks_python_file": f"{folder}/batch.py",
        "databricks_wheel": f"{folder}/{wheel}",
    }
    env = {f"PINPIPE_{k.upper()}": v for k, v in values.items() if v}
    return env | ctx.target.mwaa.dag_env


def _batch_job_id(ctx: DeployContext) -> str:
    key = "databricks_batch_job_id"
    if key not in ctx.outputs and (ctx.target.databricks.host or ctx.target.databricks.profile):
        found = list(ctx.databricks().jobs.list(name=databricks.job_name(ctx, "batch")))
        if found and found[0].job_id is not None:
            ctx.outputs[key] = str(found[0].job_id)
    return ctx.outputs.get(key, "")


def startup_script(ctx: DeployContext) -> bytes:
    """``export`` lines MWAA runs before Airflow starts: what the DAG reads to pick its variant."""
    lines = [f"export {k}={shlex.quote(v)}\n" for k, v in dag_environment(ctx).items()]
    header = f"#!/bin/sh\n# pinpipe {ctx.settings.user_id}: settings the DAG reads\n"
    return (header + "".join(lines)).encode()


def _managed_files(ctx: DeployContext, env: dict[str, Any]) -> list[tuple[str, str, str, bytes]]:
    """(kind, environment field, key, content) of each file the environment is pointed at."""
    files = []
    if ctx.target.mwaa.manage_requirements:
        key = env.get("RequirementsS3Path") or "requirements.txt"
        body = requirements_txt(env["AirflowVersion"], ctx.target.mwaa.requirements)
        files.append(("requirements", "Requirements", key, body))
    if ctx.target.mwaa.manage_startup_script:
        key = env.get("StartupScriptS3Path") or STARTUP_KEY
        if key != STARTUP_KEY:
            raise TerminalError(
                f"environment {env['Name']} already runs its own startup script {key}: add "
                "the DAG's settings to it and set mwaa.manage_startup_script: false"
            )
        files.append(("startup script", "StartupScript", key, startup_script(ctx)))
    return files


def _wait_available(ctx: DeployContext, name: str) -> None:
    mwaa = ctx.clients("mwaa")

    def available() -> bool | None:
        status = mwaa.get_environment(Name=name)["Environment"]["Status"]
        if status == "UPDATE_FAILED":
            raise TerminalError(f"MWAA environment {name}: update failed (see its last update)")
        return True if status == "AVAILABLE" else None

    ctx.wait_until(f"MWAA environment {name} to be AVAILABLE", available, ENVIRONMENT_TIMEOUT)


def _environment_changes(ctx: DeployContext, env: dict[str, Any], bucket: str) -> list[Change]:
    s3 = ctx.clients("s3")
    name = env["Name"]
    changes, stale, keys = [], [], {}
    for kind, field, key, body in _managed_files(ctx, env):
        change = object_change(ctx, NAME, kind, bucket, key, body, record=False)
        changes.append(change)
        keys[field] = (key, f"s3://{bucket}/{key}")
        current = head(s3, bucket, key)
        version = current.get("VersionId") if current else None
        runs = env.get(f"{field}S3Path") == key and env.get(f"{field}S3ObjectVersion") == version
        if change.pending or version is None or not runs:
            stale.append(kind)
    if not stale:
        return [*changes, noop(NAME, "environment", name, str(env.get("Status", "")))]

    def update() -> str:
        _wait_available(ctx, name)
        kwargs: dict[str, Any] = {"Name": name}
        for field, (key, uri) in keys.items():
            version = ctx.facts.get(f"version:{uri}") or (head(s3, bucket, key) or {}).get(
                "VersionId"
            )
            if not version:
                raise TerminalError(f"{uri} has no version id: MWAA needs a versioned bucket")
            kwargs |= {f"{field}S3Path": key, f"{field}S3ObjectVersion": version}
        ctx.clients("mwaa").update_environment(**kwargs)
        _wait_available(ctx, name)
        return "AVAILABLE"

    detail = f"new {' and '.join(stale)} (an update takes 20-30 minutes)"
    return [*changes, Change(NAME, "environment", name, Action.UPDATE, detail, update)]


def _is_dag_not_parsed(exc: BaseException) -> bool:
    return (
        isinstance(exc, ClientError)
        and exc.response.get("Error", {}).get("Code") == "RestApiClientException"
        and exc.response.get("RestApiStatusCode") == 404
    )


def _invoke(ctx: DeployContext, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    # A DAG uploaded seconds ago is unknown to Airflow until the scheduler has parsed it.
    for attempt in Retrying(
        retry=retry_if_exception(_is_dag_not_parsed),
        stop=stop_after_delay(DAG_PARSE_TIMEOUT),
        wait=wait_fixed(ctx.poll_interval),
        reraise=True,
    ):
        with attempt:
            resp = ctx.clients("mwaa").invoke_rest_api(
                Name=ctx.target.mwaa.environment, Path=path, Method=method, Body=body
            )
    return dict(resp.get("RestApiResponse") or {})


def _trigger_change(ctx: DeployContext, env: dict[str, Any]) -> Change:
    dag_id = ctx.settings.dag_id

    def trigger() -> str:
        _invoke(ctx, "PATCH", f"/dags/{dag_id}", {"is_paused": False})
        # Airflow 3's API requires logical_date in the body; null means "now".
        airflow3 = int(str(env["AirflowVersion"]).split(".")[0]) >= 3
        body: dict[str, Any] = {"logical_date": None} if airflow3 else {}
        run = _invoke(ctx, "POST", f"/dags/{dag_id}/dagRuns", body)
        return f"run {run.get('dag_run_id', '?')} queued"

    return Change(NAME, "dag run", dag_id, Action.CREATE, "on request (--trigger-dag)", trigger)


def plan(ctx: DeployContext) -> list[Change]:
    """DAG files, then requirements/startup script and the environment, then a run."""
    env = environment(ctx)
    bucket = dags_bucket(ctx)
    prefix = str(env.get("DagS3Path") or "dags").rstrip("/")
    changes = [
        object_change(ctx, NAME, "dag file", bucket, f"{prefix}/{rel}", body)
        for rel, body in sorted(dag_files(ctx).items())
    ]
    changes += _environment_changes(ctx, env, bucket)
    if ctx.trigger_dag:
        changes.append(_trigger_change(ctx, env))
    return changes


def destroy(ctx: DeployContext, record: Record) -> Change:
    """Delete a DAG file ``apply`` uploaded."""
    return delete_object_change(ctx, record)


STEP = Step(
    NAME, "the DAG, its requirements and a run on request", ("mwaa.environment",), plan, destroy
)
