"""The DAG as Airflow parses it: no import errors, its shape, and the MWAA variants' payloads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from services.core.settings import DEFAULT_USER_ID
from tests.airflow.dags import run_probe

pytestmark = pytest.mark.unit

USER_ID = "tdagcheck1"
DAG_ID = f"{USER_ID}_dag"
CONN_ID = "pinpipe_databricks"
PYTHON_FILE = "/Volumes/main/pinpipe/artifacts/0123abcd/batch.py"
WHEEL = "/Volumes/main/pinpipe/artifacts/0123abcd/pinpipe-0.1.0-py3-none-any.whl"
CLUSTER_ID = "0101-120000-abcd1234"
MWAA_BATCH_ENV = {
    "PINPIPE_DAG_RUNNER": "databricks",
    "PINPIPE_DATABRICKS_CONN_ID": CONN_ID,
    "PINPIPE_BATCH_READER": "spark",
    "PINPIPE_BATCH_SOURCE_ROOT": f"s3://user-{USER_ID}-bucket",
    "PINPIPE_WAREHOUSE_URI": f"s3://user-{USER_ID}-bucket/delta",
    "PINPIPE_TABLE_WRITER": "spark-delta",
}
VARIANTS = {
    "submit_existing_cluster": {
        **MWAA_BATCH_ENV,
        "PINPIPE_DATABRICKS_PYTHON_FILE": PYTHON_FILE,
        "PINPIPE_DATABRICKS_WHEEL": WHEEL,
        "PINPIPE_DATABRICKS_CLUSTER_ID": CLUSTER_ID,
    },
    "submit_new_cluster": {**MWAA_BATCH_ENV, "PINPIPE_DATABRICKS_PYTHON_FILE": PYTHON_FILE},
    "deployed_job": {
        "PINPIPE_DAG_RUNNER": "databricks",
        "PINPIPE_DATABRICKS_CONN_ID": CONN_ID,
        "PINPIPE_DATABRICKS_BATCH_JOB_ID": "912345678",
    },
    "misconfigured": {"PINPIPE_DAG_RUNNER": "databricks"},
}
BATCH_PARAMETERS = [
    "--user-id",
    USER_ID,
    "--reader",
    "spark",
    "--source-root",
    f"s3://user-{USER_ID}-bucket",
    "--warehouse",
    f"s3://user-{USER_ID}-bucket/delta",
    "--writer",
    "spark-delta",
]


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One Airflow process parses everything this module asserts on."""
    tmp = tmp_path_factory.mktemp("dag-definition")
    with pytest.MonkeyPatch.context() as mp:
        # The expectations are the defaults': a developer's own overrides must not leak in.
        for key in list(os.environ):
            if key.startswith(("PINPIPE_DAG_", "PINPIPE_DATABRICKS_", "PINPIPE_BATCH_")):
                mp.delenv(key)
        return run_probe("inspect", {"user_id": USER_ID, "databricks_variants": VARIANTS}, tmp)


def test_dagbag_of_the_committed_folder_has_no_import_errors(parsed: dict[str, Any]) -> None:
    committed = parsed["committed"]
    assert committed["import_errors"] == {}
    assert set(committed["dags"]) == {f"{DEFAULT_USER_ID}_dag"}
    assert committed["dags"][f"{DEFAULT_USER_ID}_dag"]["file"] == f"{DEFAULT_USER_ID}_dag.py"


def test_another_user_id_gets_its_own_file_and_dag_id(parsed: dict[str, Any]) -> None:
    rendered = parsed["rendered"]
    assert rendered["import_errors"] == {}
    assert set(rendered["dags"]) == {DAG_ID}
    assert rendered["dags"][DAG_ID]["file"] == f"{DAG_ID}.py"


def test_schedule_catchup_retries_and_tags(parsed: dict[str, Any]) -> None:
    dag = parsed["rendered"]["dags"][DAG_ID]
    assert dag["schedule"] == "@daily"
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert dag["tags"] == ["batch", "local", "pinpipe"]
    for task in dag["tasks"].values():
        assert task["retries"] == 2
        assert task["retry_delay"] == 300


def test_task_graph_is_check_then_batch_then_report(parsed: dict[str, Any]) -> None:
    tasks = parsed["rendered"]["dags"][DAG_ID]["tasks"]
    assert set(tasks) == {"check_fresh_data", "run_batch", "report"}
    assert tasks["check_fresh_data"]["upstream"] == []
    assert tasks["run_batch"]["upstream"] == ["check_fresh_data"]
    assert tasks["report"]["upstream"] == ["run_batch"]
    assert tasks["report"]["downstream"] == []
    assert tasks["run_batch"]["operator"] == "_BashDecoratedOperator"


def test_mwaa_variant_keeps_the_graph_and_swaps_only_the_batch_operator(
    parsed: dict[str, Any],
) -> None:
    local = parsed["rendered"]["dags"][DAG_ID]["tasks"]
    mwaa = parsed["submit_existing_cluster"]["dags"][DAG_ID]["tasks"]
    assert {t: (v["upstream"], v["downstream"]) for t, v in mwaa.items()} == {
        t: (v["upstream"], v["downstream"]) for t, v in local.items()
    }
    assert mwaa["run_batch"]["operator"] == "DatabricksSubmitRunOperator"
    assert parsed["submit_existing_cluster"]["dags"][DAG_ID]["tags"] == [
        "batch",
        "databricks",
        "pinpipe",
    ]


def test_mwaa_variant_submits_the_batch_job_to_an_existing_cluster(
    parsed: dict[str, Any],
) -> None:
    run_batch = parsed["submit_existing_cluster"]["run_batch"]
    assert run_batch["operator"] == "DatabricksSubmitRunOperator"
    assert run_batch["conn_id"] == CONN_ID
    assert run_batch["endpoint"] == "runs/submit"
    assert run_batch["payload"] == {
        "run_name": f"{DAG_ID} batch",
        "existing_cluster_id": CLUSTER_ID,
        "spark_python_task": {"python_file": PYTHON_FILE, "parameters": BATCH_PARAMETERS},
        "libraries": [{"whl": WHEEL}],
    }


def test_mwaa_variant_without_a_cluster_id_asks_for_a_job_cluster(
    parsed: dict[str, Any],
) -> None:
    payload = parsed["submit_new_cluster"]["run_batch"]["payload"]
    assert "existing_cluster_id" not in payload
    cluster = payload["new_cluster"]
    assert cluster["spark_version"].startswith("17.3.")  # Spark 4.0, as the project pins
    assert cluster["spark_env_vars"]["PINPIPE_USER_ID"] == USER_ID
    assert payload["spark_python_task"] == {
        "python_file": PYTHON_FILE,
        "parameters": BATCH_PARAMETERS,
    }


def test_mwaa_variant_runs_the_deployed_job_when_its_id_is_known(parsed: dict[str, Any]) -> None:
    run_batch = parsed["deployed_job"]["run_batch"]
    assert run_batch["operator"] == "DatabricksRunNowOperator"
    assert run_batch["conn_id"] == CONN_ID
    assert run_batch["endpoint"] == "run-now"
    # The provider sends ids as strings (normalise_json_content); Databricks accepts both.
    assert run_batch["payload"] == {"job_id": "912345678"}


def test_misconfigured_mwaa_variant_is_an_import_error_that_says_what_to_set(
    parsed: dict[str, Any],
) -> None:
    errors = parsed["misconfigured"]["import_errors"]
    assert [Path(f).name for f in errors] == [f"{DAG_ID}.py"]
    assert "PINPIPE_DATABRICKS_BATCH_JOB_ID" in next(iter(errors.values()))


HEAVY = ("pyspark", "deltalake", "pandas", "pyarrow", "numpy", "sqlalchemy", "confluent_kafka")


def roots(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_parsing_the_dag_file_imports_nothing_heavy(parsed: dict[str, Any]) -> None:
    # The DAG processor parses the file every 30 s: a heavy import there is paid each time.
    # What the parse costs in seconds is a number for a benchmark, not for a test.
    local = parsed["parse_imports"]
    assert "pinpipe_tasks.run_batch" in local  # the parse did import the project's tasks
    assert not roots(local) & set(HEAVY), sorted(roots(local) & set(HEAVY))
    assert not any(m.startswith("airflow.providers.databricks") for m in local)


def test_only_the_databricks_variant_imports_the_databricks_provider(
    parsed: dict[str, Any],
) -> None:
    imported = parsed["submit_existing_cluster"]["parse_imports"]
    assert any(m.startswith("airflow.providers.databricks") for m in imported)
    assert not roots(imported) & {"pyspark", "deltalake"}
