"""Run by Airflow's venv for the tests beside it: parse or run the DAG, write what it saw as JSON.

``python dag_probe.py inspect|run CONFIG.json RESULT.json``. Airflow can't be imported in
the project's venv, so each test module starts this once and asserts on its JSON. The
caller sets AIRFLOW_HOME and the rest of Airflow's test configuration in the environment.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

from airflow.models.dagbag import DagBag
from airflow.utils.file import iter_airflow_imports

# pinpipe's modules are imported only after the first parse is timed: the DAG processor
# parses each file in a fresh child process, where they are not imported yet.
COMMITTED_DAGS = Path(__file__).resolve().parents[3] / "airflow" / "dags"
# A DAG with the same Airflow imports as ours: parsing it first pays Airflow's own lazy
# imports, as a long-running DAG processor has, so the next parse times our file alone.
REFERENCE_DAG = """
from datetime import datetime
from airflow.exceptions import AirflowFailException
from airflow.sdk import XComArg, dag, task

@dag(schedule=None, start_date=datetime(2025, 1, 1))
def reference():
    @task.bash
    def command() -> str:
        return "true"

    @task
    def after(value: str) -> str:
        return value

    after(command())

reference()
"""


LOADED: dict[str, list[str]] = {}


def load(folder: Path) -> tuple[DagBag, float]:
    """Parse a folder as the DAG processor does; the seconds its one file took.

    The modules the parse itself imported (beyond those Airflow's own imports of the file
    brought in) are kept in ``LOADED`` under the folder, for the tests on parse cost.
    """
    for path in folder.glob("*.py"):
        for module in iter_airflow_imports(str(path)):
            importlib.import_module(module)
    before = set(sys.modules)
    bag = DagBag(str(folder), include_examples=False, load_op_links=False)
    LOADED[str(folder)] = sorted(set(sys.modules) - before)
    return bag, sum(s.duration.total_seconds() for s in bag.dagbag_stats)


def describe(bag: DagBag) -> dict[str, Any]:
    """Everything the tests assert about each DAG a bag holds."""
    return {
        "import_errors": dict(bag.import_errors),
        "dags": {
            dag_id: {
                "file": Path(dag.fileloc).name,
                "schedule": str(dag.schedule),
                "catchup": dag.catchup,
                "max_active_runs": dag.max_active_runs,
                "tags": sorted(dag.tags),
                "tasks": {
                    t.task_id: {
                        "operator": type(t).__name__,
                        "retries": t.retries,
                        "retry_delay": t.retry_delay.total_seconds(),
                        "upstream": sorted(t.upstream_task_ids),
                        "downstream": sorted(t.downstream_task_ids),
                    }
                    for t in dag.tasks
                },
            }
            for dag_id, dag in bag.dags.items()
        },
    }


def databricks_payload(bag: DagBag, dag_id: str) -> dict[str, Any]:
    """What ``run_batch`` would send to Databricks, captured at the hook: no network."""
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    op = bag.dags[dag_id].get_task("run_batch")
    with (
        mock.patch.object(DatabricksHook, "submit_run", return_value=1) as submit,
        mock.patch.object(DatabricksHook, "run_now", return_value=1) as run_now,
    ):
        op.submit_job({})
    call = submit if submit.called else run_now
    return {
        "operator": type(op).__name__,
        "conn_id": op.databricks_conn_id,
        "endpoint": "runs/submit" if submit.called else "run-now",
        "payload": call.call_args.args[0],
    }


def inspect(config: dict[str, Any]) -> dict[str, Any]:
    """Parse the committed DAG folder, a rendered file and the MWAA variants."""
    tmp = Path(config["tmp"])
    reference = tmp / "reference"
    reference.mkdir()
    (reference / "reference_dag.py").write_text(REFERENCE_DAG)
    started = time.perf_counter()
    load(reference)
    result: dict[str, Any] = {"airflow_first_parse_seconds": time.perf_counter() - started}

    committed, seconds = load(COMMITTED_DAGS)
    result |= {
        "committed": describe(committed),
        "parse_seconds": seconds,
        "parse_imports": LOADED[str(COMMITTED_DAGS)],
    }

    from pinpipe_tasks.dag_file import write_dag_file

    from services.core.settings import Settings

    folder = tmp / "dags"
    write_dag_file(Settings(user_id=config["user_id"]), folder)
    rendered, _ = load(folder)
    result["rendered"] = describe(rendered)

    dag_id = Settings(user_id=config["user_id"]).dag_id
    for variant, env in config["databricks_variants"].items():
        os.environ.update(env)
        bag, seconds = load(folder)
        result[variant] = describe(bag) | {
            "parse_seconds": seconds,
            "parse_imports": LOADED[str(folder)],
        }
        if dag_id in bag.dags:
            result[variant]["run_batch"] = databricks_payload(bag, dag_id)
        for key in env:
            del os.environ[key]
    return result


def run(config: dict[str, Any]) -> dict[str, Any]:
    """``dag.test()`` of the local variant: every task for real, in this process."""
    from airflow.models.xcom import XComModel
    from airflow.utils.db import initdb
    from pinpipe_tasks.dag_file import write_dag_file

    from services.core.settings import Settings

    initdb()
    settings = Settings(user_id=config["user_id"])
    folder = Path(config["tmp"]) / "dags"
    write_dag_file(settings, folder)
    bag, _ = load(folder)
    if bag.import_errors:
        return {"import_errors": dict(bag.import_errors)}
    started = time.perf_counter()
    dag_run = bag.dags[settings.dag_id].test()
    xcoms = XComModel.get_many(run_id=dag_run.run_id, dag_ids=settings.dag_id, key="return_value")
    return {
        "state": str(dag_run.state),
        "seconds": time.perf_counter() - started,
        "tasks": {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()},
        # The stored JSON as is: deserialize_value would also decode a string that holds JSON.
        "xcom": {x.task_id: x.value for x in xcoms},
    }


if __name__ == "__main__":
    command, config_path, result_path = sys.argv[1:4]
    config = json.loads(Path(config_path).read_text())
    outcome = {"inspect": inspect, "run": run}[command](config)
    Path(result_path).write_text(json.dumps(outcome, default=str))
