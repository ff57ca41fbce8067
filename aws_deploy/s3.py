"""S3: the user bucket the connector writes to, and the object helpers other steps share.

On the original account the bucket exists (``user-<uid>-bucket``) and this step is a no-op;
elsewhere it is created and recorded, and ``destroy`` removes it only while it is empty.
Objects pinpipe uploads carry the SHA-256 of their content in their metadata: that is the
idempotence key, since an ETag is not a content hash under SSE-KMS or multipart uploads.
"""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError

from aws_deploy.context import DeployContext, Step, gone
from aws_deploy.plan import Action, Change, noop
from aws_deploy.state import Record

NAME = "s3"
SHA_KEY = "pinpipe-sha256"


def sha256(data: bytes) -> str:
    """Hex SHA-256 of some content."""
    return hashlib.sha256(data).hexdigest()


def _not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") in {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


def bucket_exists(s3: Any, bucket: str) -> bool:
    """Whether the bucket exists (a 403 is raised: it exists but is not ours to use)."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _not_found(exc):
            return False
        raise
    return True


def head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The object's metadata, or None when it is absent."""
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise


def object_change(
    ctx: DeployContext,
    step: str,
    kind: str,
    bucket: str,
    key: str,
    body: bytes,
    *,
    record: bool = True,
) -> Change:
    """Create or update one object whose content pinpipe owns; no-op when the hash matches.

    ``record=False`` leaves the object out of what ``destroy`` removes.
    """
    s3 = ctx.clients("s3")
    digest = sha256(body)
    current = head(s3, bucket, key)
    uri = f"s3://{bucket}/{key}"
    if current is not None and current.get("Metadata", {}).get(SHA_KEY) == digest:
        return noop(step, kind, uri, f"sha256 {digest[:12]}")

    def put() -> str:
        resp = s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={SHA_KEY: digest})
        if current is None and record:
            ctx.state.record(step, "object", uri, bucket=bucket, key=key)
        if resp.get("VersionId"):
            ctx.facts[f"version:{uri}"] = resp["VersionId"]
        return f"uploaded {len(body):,} bytes"

    if current is None:
        return Change(step, kind, uri, Action.CREATE, f"{len(body):,} bytes", put)
    old = current.get("Metadata", {}).get(SHA_KEY, "unknown")[:12]
    return Change(step, kind, uri, Action.UPDATE, f"sha256 {old} → {digest[:12]}", put)


def delete_object_change(ctx: DeployContext, record: Record) -> Change:
    """Delete an object ``apply`` uploaded."""
    s3 = ctx.clients("s3")
    bucket, key = record.data["bucket"], record.data["key"]
    if head(s3, bucket, key) is None:
        return gone(ctx, record, "object", record.id)

    def delete() -> str:
        s3.delete_object(Bucket=bucket, Key=key)
        ctx.state.forget(record)
        return "deleted"

    return Change(record.step, "object", record.id, Action.DELETE, "", delete)


def plan(ctx: DeployContext) -> list[Change]:
    """The bucket exists, or is created in the target region."""
    s3 = ctx.clients("s3")
    bucket = ctx.bucket
    if bucket_exists(s3, bucket):
        owner = "created by pinpipe" if ctx.state.owns(NAME, "bucket", bucket) else "not managed"
        return [noop(NAME, "bucket", bucket, f"exists ({owner})")]

    def create() -> str:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if ctx.settings.aws_region != "us-east-1":  # us-east-1 rejects its own constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": ctx.settings.aws_region}
        s3.create_bucket(**kwargs)
        ctx.state.record(NAME, "bucket", bucket)
        return "created"

    return [Change(NAME, "bucket", bucket, Action.CREATE, f"in {ctx.settings.aws_region}", create)]


def destroy(ctx: DeployContext, record: Record) -> Change:
    """Delete the bucket ``apply`` created, unless something else has written to it."""
    if record.kind == "object":
        return delete_object_change(ctx, record)
    s3 = ctx.clients("s3")
    if not bucket_exists(s3, record.id):
        return gone(ctx, record, "bucket", record.id)
    held = s3.list_objects_v2(Bucket=record.id, MaxKeys=1).get("KeyCount", 0)
    if held:
        return noop(NAME, "bucket", record.id, "kept: it holds objects pinpipe did not upload")

    def delete() -> str:
        s3.delete_bucket(Bucket=record.id)
        ctx.state.forget(record)
        return "deleted"

    return Change(NAME, "bucket", record.id, Action.DELETE, "empty", delete)


STEP = Step(NAME, "the user bucket", (), plan, destroy, local=True)
