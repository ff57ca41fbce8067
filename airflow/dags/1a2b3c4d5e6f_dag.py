"""The pipeline's daily batch: check the bucket has fresh data, run the batch job, report.

Which operator runs the batch job is configuration (``PINPIPE_DAG_RUNNER``): ``local`` runs
``pinpipe batch run`` in the project's venv on this machine; ``databricks`` (MWAA) runs the
same job on Databricks, either the job ``pinpipe deploy`` created or a one-off run of
``spark/jobs/batch_job.py`` with the same arguments. This file only wires tasks: the logic
lives in ``services/orchestration``.

One file per user id, ``<uid>_dag.py``: ``pinpipe airflow up`` renders it from this one
(``airflow/pinpipe_tasks/dag_file.py``), and the ``USER_ID`` line is all that differs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.exceptions import AirflowFailException
from airflow.sdk import XComArg, dag, task
from pinpipe_tasks.run_batch import (
    databricks_run_now,
    databricks_submit_run,
    local_batch_command,
    summarize_databricks_run,
    summarize_local_run,
)

from services.core.errors import TerminalError
from services.core.settings import Settings

USER_ID = "1a2b3c4d5e6f"

settings = Settings(user_id=USER_ID)


@dag(
    dag_id=settings.dag_id,
    schedule="@daily",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    # Every run rewrites the same tables: two at once would race.
    max_active_runs=1,
    default_args={
        "owner": "pinpipe",
        "retries": settings.dag_retries,
        "retry_delay": timedelta(minutes=settings.dag_retry_delay_minutes),
    },
    tags=["pinpipe", "batch", settings.dag_runner],
    doc_md=__doc__,
)
def daily_batch() -> None:
    @task
    def check_fresh_data() -> dict[str, Any]:
        # boto3 is imported when the task runs, not each time the scheduler parses this file.
        from pinpipe_tasks.freshness import require_fresh_data

        return require_fresh_data(settings)

    if settings.dag_runner == "databricks":
        from airflow.providers.databricks.operators.databricks import (
            DatabricksRunNowOperator,
            DatabricksSubmitRunOperator,
        )

        # The job aws_deploy created holds the entry file, parameters and cluster; without
        # one, the same job goes as a one-off run.
        run_batch = (
            DatabricksRunNowOperator(
                task_id="run_batch",
                databricks_conn_id=settings.databricks_conn_id,
                json=databricks_run_now(settings),
            )
            if settings.databricks_batch_job_id is not None
            else DatabricksSubmitRunOperator(
                task_id="run_batch",
                databricks_conn_id=settings.databricks_conn_id,
                json=databricks_submit_run(settings),
            )
        )
        outcome = XComArg(run_batch, key="run_page_url")
    else:

        @task.bash
        def run_batch_locally() -> str:
            return local_batch_command(settings)

        outcome = run_batch_locally.override(task_id="run_batch")()

    @task
    def report(outcome: str | None) -> dict[str, Any]:
        if settings.dag_runner == "databricks":
            return summarize_databricks_run(outcome)
        try:
            return summarize_local_run(outcome)
        except TerminalError as exc:
            # Missing outputs stay missing: fail now instead of retrying.
            raise AirflowFailException(str(exc)) from exc

    check_fresh_data() >> outcome
    report(outcome)


daily_batch()
