"""The DAG checked inside Airflow's own venv (this package is not named ``airflow``: with
``tests`` on sys.path that name would shadow the real package)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from services.core.settings import get_settings

PROBE = Path(__file__).with_name("dag_probe.py")


def run_probe(
    command: str, config: dict[str, Any], tmp: Path, timeout: float = 120
) -> dict[str, Any]:
    """Run dag_probe.py in Airflow's venv with a throwaway Airflow home; its JSON result."""
    python = get_settings().airflow_venv / "bin" / "python"
    if not python.exists():
        raise AssertionError(f"{python} is missing: run `make setup` (it builds Airflow's venv)")
    home = tmp / "airflow-home"
    home.mkdir()
    config_file, result_file = tmp / "probe-config.json", tmp / "probe-result.json"
    config_file.write_text(json.dumps({"tmp": str(tmp), **config}))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
    }
    proc = subprocess.run(
        [str(python), str(PROBE), command, str(config_file), str(result_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0 or not result_file.exists():
        raise AssertionError(
            f"dag_probe {command} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return dict(json.loads(result_file.read_text()))
