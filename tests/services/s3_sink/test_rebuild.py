"""A bucket that lost objects is written again from the log: same keys, same bytes.

What is looked for is a partition's tail: the bucket's last object of a partition is where
the sink resumes, and a hole before it (which no restart makes) is not searched for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.core.settings import Settings
from services.s3_sink.rebuild import Rewind, plan_rewinds, rebuild_lost_objects
from tests.services.s3_sink.conftest import (
    SinkThread,
    Topics,
    committed,
    objects,
    produce,
    rows,
    running,
    sink_config,
    wait_for,
)


@pytest.mark.unit
def test_only_partitions_committed_past_the_bucket_are_rewound() -> None:
    committed = {("t.pin", 0): 10, ("t.pin", 1): 10, ("t.geo", 0): 10, ("t.user", 0): 0}
    stored = {("t.pin", 0): 10, ("t.pin", 1): 4, ("t.geo", 0): None, ("t.user", 0): None}
    plan = plan_rewinds(committed, lambda t, p: stored[(t, p)], lambda t, p: 2)
    assert plan == [Rewind("t.geo", 0, 10, 2), Rewind("t.pin", 1, 10, 4)]


@pytest.mark.integration
def test_an_emptied_bucket_is_written_again_with_the_same_keys_and_bytes(
    native_stack: Settings,
    topics: Callable[..., Topics],
    s3: Any,
    run_sink: Callable[..., SinkThread],
) -> None:
    t = topics("pin", "geo", partitions=2)
    for topic in t.names:
        for p in (0, 1):
            produce(native_stack, topic, rows(7, start=p * 100, tag=topic), partition=p)
    config = sink_config(native_stack, t, {"flush.size": "2"})
    prefix = f"topics/{t.prefix}."

    def all_committed() -> bool:
        # Three objects of two: the seventh record waits in the sink for an eighth.
        return all(
            committed(native_stack, config.group_id, n, p) == 6 for n in t.names for p in (0, 1)
        )

    with running(run_sink, config):
        wait_for(all_committed, timeout=60, what="every record committed")
    before = objects(s3, native_stack.bucket, prefix)
    assert len(before) == 2 * 2 * 3  # 7 records, flush.size 2: three full objects each

    pin, geo = t.names
    # Everything of one topic, as after LocalStack's restart, and the tail of a partition.
    lost = [k for k in before if f"/{geo}/" in k] + [
        sorted(k for k in before if f"/{pin}/partition=1/" in k)[-1]
    ]
    s3.delete_objects(Bucket=native_stack.bucket, Delete={"Objects": [{"Key": k} for k in lost]})
    rewinds = rebuild_lost_objects(config, native_stack.kafka_bootstrap_servers, s3)
    assert rewinds == [Rewind(geo, 0, 6, 0), Rewind(geo, 1, 6, 0), Rewind(pin, 1, 6, 4)]
    # A second look changes nothing more: the group now starts where the bucket ends.
    assert rebuild_lost_objects(config, native_stack.kafka_bootstrap_servers, s3) == []

    with running(run_sink, config):
        wait_for(all_committed, timeout=60, what="every record committed again")
        wait_for(
            lambda: objects(s3, native_stack.bucket, prefix) == before,
            timeout=30,
            what="the same objects",
        )
