"""Kinesis: the three data streams, ``streaming-<uid>-{pin,geo,user}``.

The idempotence key is the stream name; its capacity mode and (provisioned) shard count are
converged in place. ``destroy`` deletes only streams ``apply`` created.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from aws_deploy.context import DeployContext, Step, gone
from aws_deploy.plan import Action, Change, noop
from aws_deploy.state import Record

NAME = "kinesis"


def _summary(kinesis: Any, stream: str) -> dict[str, Any] | None:
    try:
        return dict(kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def _wait_active(ctx: DeployContext, kinesis: Any, stream: str) -> None:
    kinesis.get_waiter("stream_exists").wait(
        StreamName=stream,
        WaiterConfig={"Delay": 1, "MaxAttempts": 300},
    )


def _stream_change(ctx: DeployContext, stream: str) -> Change:
    kinesis = ctx.clients("kinesis")
    want = ctx.target.kinesis
    current = _summary(kinesis, stream)
    wanted = want.mode if want.mode == "ON_DEMAND" else f"PROVISIONED, {want.shards} shard(s)"
    if current is None:

        def create() -> str:
            kwargs: dict[str, Any] = {
                "StreamName": stream,
                "StreamModeDetails": {"StreamMode": want.mode},
            }
            if want.mode == "PROVISIONED":
                kwargs["ShardCount"] = want.shards
            kinesis.create_stream(**kwargs)
            ctx.state.record(NAME, "stream", stream)
            _wait_active(ctx, kinesis, stream)
            return "active"

        return Change(NAME, "stream", stream, Action.CREATE, wanted, create)

    mode = current.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
    shards = current.get("OpenShardCount")
    if mode != want.mode:

        def switch_mode() -> str:
            kinesis.update_stream_mode(
                StreamARN=current["StreamARN"], StreamModeDetails={"StreamMode": want.mode}
            )
            _wait_active(ctx, kinesis, stream)
            return f"now {want.mode}"

        return Change(NAME, "stream", stream, Action.UPDATE, f"{mode} → {want.mode}", switch_mode)
    if want.mode == "PROVISIONED" and shards != want.shards:

        def reshard() -> str:
            kinesis.update_shard_count(
                StreamName=stream, TargetShardCount=want.shards, ScalingType="UNIFORM_SCALING"
            )
            _wait_active(ctx, kinesis, stream)
            return f"{want.shards} shard(s)"

        return Change(
            NAME, "stream", stream, Action.UPDATE, f"shards {shards} → {want.shards}", reshard
        )
    return noop(NAME, "stream", stream, wanted)


def plan(ctx: DeployContext) -> list[Change]:
    """One change per stream."""
    return [_stream_change(ctx, stream) for stream in ctx.settings.streams.values()]


def destroy(ctx: DeployContext, record: Record) -> Change:
    """Delete a stream ``apply`` created."""
    kinesis = ctx.clients("kinesis")
    if _summary(kinesis, record.id) is None:
        return gone(ctx, record, "stream", record.id)

    def delete() -> str:
        kinesis.delete_stream(StreamName=record.id)
        kinesis.get_waiter("stream_not_exists").wait(
            StreamName=record.id, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
        )
        ctx.state.forget(record)
        return "deleted"

    return Change(NAME, "stream", record.id, Action.DELETE, "", delete)


STEP = Step(NAME, "the three data streams", (), plan, destroy, local=True)
