"""``dag.test()`` of the local variant: the real batch job runs on the test stack's bucket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.core.settings import Settings
from tests.airflow.dags import run_probe

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dag_run(ingested_bucket: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One DAG run, every task for real, in one Airflow process."""
    tmp = tmp_path_factory.mktemp("dag-run")
    return run_probe("run", {"user_id": ingested_bucket.user_id}, tmp, timeout=900)


def test_every_task_succeeds(dag_run: dict[str, Any]) -> None:
    assert dag_run.get("import_errors", {}) == {}
    assert dag_run["tasks"] == {
        "check_fresh_data": "success",
        "run_batch": "success",
        "report": "success",
    }
    assert dag_run["state"] == "success"


def test_freshness_check_saw_every_topic(
    dag_run: dict[str, Any], ingested_bucket: Settings
) -> None:
    fresh = dag_run["xcom"]["check_fresh_data"]
    assert fresh["bucket"] == ingested_bucket.bucket
    assert set(fresh["topics"]) == set(ingested_bucket.topics.values())
    assert all(t["objects"] > 0 for t in fresh["topics"].values())


def test_batch_results_exist_afterwards(dag_run: dict[str, Any], ingested_bucket: Settings) -> None:
    summary = json.loads(dag_run["xcom"]["run_batch"])
    assert Path(summary["report"]).is_file()
    assert summary["tables"], "the batch job wrote no table"
    for path in summary["tables"].values():
        assert Path(path).exists(), path
    assert all(n > 0 for n in summary["rows"]["clean"].values())
    report = dag_run["xcom"]["report"]
    assert report["report"] == summary["report"]
    assert report["rows_clean"] == summary["rows"]["clean"]
    assert Path(summary["warehouse"]).is_relative_to(ingested_bucket.state_dir)
