"""Passwords never reach the terminal or --json unless asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pinpipe.cli.output import HIDDEN, known_secrets, redact
from services.core.settings import Settings
from services.stack.airflow_standalone import AirflowService
from tests.conftest import unique_name

pytestmark = pytest.mark.unit


def _settings(tmp_path: Path) -> tuple[Settings, str, str]:
    db_password, airflow_password = unique_name("db"), unique_name("af")
    creds = tmp_path / "db_creds.yaml"
    creds.write_text(
        yaml.safe_dump({"HOST": "127.0.0.1", "USER": "u", "PASSWORD": db_password, "DATABASE": "d"})
    )
    settings = Settings(state_dir=tmp_path / "state", db_creds_file=creds)
    service = AirflowService(settings)
    service.password_file.parent.mkdir(parents=True)
    service.password_file.write_text(json.dumps({"admin": airflow_password}))
    return settings, db_password, airflow_password


def test_every_password_is_known_with_the_file_that_holds_it(tmp_path: Path) -> None:
    settings, db_password, airflow_password = _settings(tmp_path)
    found = known_secrets(settings)
    assert found[db_password] == str(settings.db_creds_file)
    assert found[airflow_password] == str(AirflowService(settings).password_file)


def test_redact_hides_them_in_text_and_json(tmp_path: Path) -> None:
    settings, db_password, airflow_password = _settings(tmp_path)
    rows = [
        {"name": "airflow", "detail": f"login admin / {airflow_password}", "pid": 7},
        {"name": "mysql", "endpoint": f"mysql://u:{db_password}@127.0.0.1/d", "tags": ["x"]},
    ]
    hidden = redact(rows, known_secrets(settings))
    text = json.dumps(hidden)
    assert db_password not in text and airflow_password not in text
    assert hidden[0] == {"name": "airflow", "detail": f"login admin / {HIDDEN}", "pid": 7}
    assert hidden[1]["tags"] == ["x"]


def test_nothing_to_hide_before_anything_is_written(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, db_creds_file=tmp_path / "none.yaml")
    assert redact("plain text", known_secrets(settings)) == "plain text"
