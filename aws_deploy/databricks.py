"""Databricks: the Spark code uploaded, the batch and streaming jobs, and how they reach AWS.

The wheel of ``spark``/``services`` and the two entry files go to a folder named after their
hash (a Unity Catalog volume or workspace files), so an upload is needed only when the code
changed. The jobs (``<uid>-pinpipe-batch``, ``<uid>-pinpipe-streaming``) are found by name
and reset when their settings differ from the desired ``JobSettings``. S3 and Kinesis access
comes from a Unity Catalog external location, an instance profile, or a secret scope whose
keys are read from the environment; never from code, and never through a DBFS mount.
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING, Any

from pinpipe_tasks.run_batch import batch_arguments

from aws_deploy.context import DeployContext, Step, gone
from aws_deploy.plan import Action, Change, noop
from aws_deploy.state import Record
from aws_deploy.wheel import build_wheel
from services.core.errors import ConfigError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.jobs import JobSettings

NAME = "databricks"
ENTRY_FILES = {"batch": "spark/jobs/batch_job.py", "streaming": "spark/jobs/streaming_job.py"}
JOB_CLUSTER_KEY = "pinpipe"
SECRET_KEYS = {
    "aws-access-key-id": "aws_access_key_id",
    "aws-secret-access-key": "aws_secret_access_key",
}


# ---- artifacts ----------------------------------------------------------------------------
def artifacts(ctx: DeployContext) -> tuple[str, dict[str, bytes]]:
    """The upload folder (named by content hash) and the files that go in it."""
    if "databricks_artifacts" not in ctx.facts:
        wheel = build_wheel(ctx.project_root)
        files = {wheel.filename: wheel.content}
        for kind, rel in ENTRY_FILES.items():
            path = ctx.project_root / rel
            if not path.is_file():
                raise ConfigError(f"{path}: the Databricks {kind} job's entry file is missing")
            files[f"{kind}.py"] = path.read_bytes()
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
        folder = f"{ctx.target.databricks.artifacts_path.rstrip('/')}/{digest.hexdigest()[:16]}"
        ctx.facts["databricks_artifacts"] = (folder, files)
    folder, files = ctx.facts["databricks_artifacts"]
    return folder, dict(files)


def _on_volume(path: str) -> bool:
    return path.startswith("/Volumes/")


def _exists(w: WorkspaceClient, path: str, directory: bool = False) -> bool:
    from databricks.sdk.errors import NotFound

    try:
        if not _on_volume(path):
            w.workspace.get_status(path)
        elif directory:
            w.files.get_directory_metadata(path)
        else:
            w.files.get_metadata(path)
    except NotFound:
        return False
    return True


def _artifacts_change(ctx: DeployContext) -> Change:
    w = ctx.databricks()
    folder, files = artifacts(ctx)
    # Content-addressed: the last file present means the upload completed.
    if all(_exists(w, f"{folder}/{name}") for name in files):
        return noop(NAME, "artifacts", folder, ", ".join(sorted(files)))

    def upload() -> str:
        from databricks.sdk.service.workspace import ImportFormat

        if not _on_volume(folder):
            w.workspace.mkdirs(folder)
        for name, content in files.items():
            path = f"{folder}/{name}"
            if _on_volume(folder):
                w.files.upload(path, io.BytesIO(content), overwrite=True)
            else:
                w.workspace.upload(path, content, format=ImportFormat.AUTO, overwrite=True)
        ctx.state.record(NAME, "artifacts", folder)
        return f"uploaded {len(files)} files"

    size = sum(len(c) for c in files.values())
    return Change(NAME, "artifacts", folder, Action.CREATE, f"{size:,} bytes", upload)


# ---- AWS access ---------------------------------------------------------------------------
def secret_scope(ctx: DeployContext) -> str:
    """The secret scope holding AWS keys (only for ``aws_access: secret_scope``)."""
    return ctx.target.databricks.secret_scope or ctx.settings.databricks_secret_scope


def _secret_changes(ctx: DeployContext) -> list[Change]:
    w = ctx.databricks()
    scope = secret_scope(ctx)
    changes = []
    if scope not in {s.name for s in w.secrets.list_scopes()}:

        def create_scope() -> str:
            w.secrets.create_scope(scope)
            ctx.state.record(NAME, "secret scope", scope)
            return "created"

        changes.append(Change(NAME, "secret scope", scope, Action.CREATE, "", create_scope))
    for key, field in SECRET_KEYS.items():
        secret = getattr(ctx.target.databricks, field)
        value = secret.get_secret_value()
        # Secrets can't be read back: compare a salted hash of what was last put.
        digest = hashlib.sha256(f"{scope}/{key}/{value}".encode()).hexdigest()
        fingerprint = f"{scope}#{key}"
        label = f"{scope}/{key}"
        if ctx.state.fingerprints.get(fingerprint) == digest:
            changes.append(noop(NAME, "secret", label, "unchanged"))
            continue

        def put(key: str = key, value: str = value, digest: str = digest) -> str:
            w.secrets.put_secret(scope, key, string_value=value)
            ctx.state.set_fingerprint(f"{scope}#{key}", digest)
            return "stored"

        action = Action.UPDATE if fingerprint in ctx.state.fingerprints else Action.CREATE
        changes.append(Change(NAME, "secret", label, action, "value from the environment", put))
    return changes


# ---- jobs ---------------------------------------------------------------------------------
def warehouse(ctx: DeployContext) -> str:
    """Where the jobs write their Delta tables."""
    return ctx.target.databricks.warehouse or f"s3://{ctx.bucket}/delta"


def _parameters(ctx: DeployContext, kind: str) -> list[str]:
    db = ctx.target.databricks
    if kind == "batch":
        # The same flags the DAG's own runners pass (airflow/pinpipe_tasks/run_batch.py).
        job = ctx.settings.model_copy(
            update={
                "batch_reader": "spark",
                "batch_source_root": f"s3://{ctx.bucket}",
                "warehouse_uri": warehouse(ctx),
                "table_writer": "spark-delta",
            }
        )
        return db.batch_parameters or batch_arguments(job)
    return db.streaming_parameters or ["--source", "kinesis", "--warehouse", warehouse(ctx)]


def job_name(ctx: DeployContext, kind: str) -> str:
    """``<uid>-pinpipe-batch`` / ``<uid>-pinpipe-streaming``."""
    return ctx.settings.databricks_job_name(kind)


def job_settings(ctx: DeployContext, kind: str, folder: str, wheel: str) -> JobSettings:
    """The desired settings of one job: a Python task on the uploaded entry file and wheel."""
    from databricks.sdk.service import compute, jobs

    db = ctx.target.databricks
    task = jobs.Task(
        task_key=kind,
        spark_python_task=jobs.SparkPythonTask(
            python_file=f"{folder}/{kind}.py", parameters=_parameters(ctx, kind)
        ),
        libraries=[compute.Library(whl=f"{folder}/{wheel}")],
    )
    job_clusters = None
    if db.existing_cluster_id:
        task.existing_cluster_id = db.existing_cluster_id
    else:
        # The jobs derive names from the user id and must reach AWS itself, not LocalStack.
        env = {
            "PINPIPE_USER_ID": ctx.settings.user_id,
            "PINPIPE_RUNTIME": "aws",
            "PINPIPE_AWS_REGION": ctx.settings.aws_region,
        }
        if db.aws_access == "secret_scope":
            scope = secret_scope(ctx)
            env |= {
                "AWS_ACCESS_KEY_ID": f"{{{{secrets/{scope}/aws-access-key-id}}}}",
                "AWS_SECRET_ACCESS_KEY": f"{{{{secrets/{scope}/aws-secret-access-key}}}}",
            }
        cluster = compute.ClusterSpec(
            spark_version=db.spark_version,
            node_type_id=db.node_type_id,
            num_workers=db.num_workers,
            spark_env_vars=env,
        )
        if db.aws_access == "instance_profile":
            cluster.aws_attributes = compute.AwsAttributes(
                instance_profile_arn=db.instance_profile_arn
            )
        task.job_cluster_key = JOB_CLUSTER_KEY
        job_clusters = [jobs.JobCluster(job_cluster_key=JOB_CLUSTER_KEY, new_cluster=cluster)]
    return jobs.JobSettings(
        name=job_name(ctx, kind),
        tasks=[task],
        job_clusters=job_clusters,
        max_concurrent_runs=1,
        tags={"pinpipe-user": ctx.settings.user_id, "managed-by": "pinpipe"},
    )


def _contains(actual: Any, wanted: Any) -> bool:
    """Whether ``actual`` has every value of ``wanted`` (the service adds its own defaults)."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            _contains(actual.get(k), v) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(wanted)
            and all(_contains(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return bool(actual == wanted)


def _job_change(ctx: DeployContext, kind: str) -> Change:
    w = ctx.databricks()
    folder, files = artifacts(ctx)
    wheel = next(name for name in files if name.endswith(".whl"))
    desired = job_settings(ctx, kind, folder, wheel)
    name = job_name(ctx, kind)
    found = list(w.jobs.list(name=name))

    def create() -> str:
        job_id = w.jobs.create(**desired.as_shallow_dict()).job_id
        ctx.state.record(NAME, "job", str(job_id), name=name)
        ctx.outputs[f"databricks_{kind}_job_id"] = str(job_id)
        return f"job {job_id}"

    if not found:
        return Change(NAME, "job", name, Action.CREATE, f"{kind}.py on {folder}", create)
    job_id = found[0].job_id
    assert job_id is not None  # listed jobs always carry their id
    ctx.outputs[f"databricks_{kind}_job_id"] = str(job_id)
    current = w.jobs.get(job_id).settings
    wanted = desired.as_dict()
    have = current.as_dict() if current else {}
    if _contains(have, wanted):
        return noop(NAME, "job", name, f"job {job_id}")
    keys = sorted(k for k in wanted if not _contains(have.get(k), wanted[k]))

    def reset() -> str:
        w.jobs.reset(job_id, new_settings=desired)
        return f"job {job_id} reset"

    return Change(NAME, "job", name, Action.UPDATE, f"job {job_id}: {', '.join(keys)}", reset)


def plan(ctx: DeployContext) -> list[Change]:
    """Artifacts, AWS access (secret scope only), then the two jobs."""
    changes = [_artifacts_change(ctx)]
    if ctx.target.databricks.aws_access == "secret_scope":
        changes += _secret_changes(ctx)
    changes += [_job_change(ctx, kind) for kind in ENTRY_FILES]
    return changes


def destroy(ctx: DeployContext, record: Record) -> Change:
    """Delete a job, the uploaded artifacts or the secret scope ``apply`` created."""
    from databricks.sdk.errors import NotFound

    w = ctx.databricks()
    if record.kind == "job":
        try:
            w.jobs.get(int(record.id))
        except NotFound:
            return gone(ctx, record, record.kind, record.id)

        def delete_job() -> str:
            w.jobs.delete(int(record.id))
            ctx.state.forget(record)
            return "deleted"

        return Change(
            NAME, "job", record.id, Action.DELETE, record.data.get("name", ""), delete_job
        )
    if record.kind == "secret scope":
        if record.id not in {s.name for s in w.secrets.list_scopes()}:
            return gone(ctx, record, record.kind, record.id)

        def delete_scope() -> str:
            w.secrets.delete_scope(record.id)
            ctx.state.forget(record)
            return "deleted"

        return Change(NAME, "secret scope", record.id, Action.DELETE, "", delete_scope)

    folder = record.id
    if not _exists(w, folder, directory=True):
        return gone(ctx, record, record.kind, record.id)

    def delete_artifacts() -> str:
        if _on_volume(folder):
            for entry in w.files.list_directory_contents(folder):
                if entry.path:
                    w.files.delete(entry.path)
            w.files.delete_directory(folder)
        else:
            w.workspace.delete(folder, recursive=True)
        ctx.state.forget(record)
        return "deleted"

    return Change(NAME, "artifacts", folder, Action.DELETE, "", delete_artifacts)


STEP = Step(NAME, "the Spark code and the two jobs", ("databricks.host",), plan, destroy)
