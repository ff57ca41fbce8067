"""One DAG file per user id, rendered from the committed default's."""

from __future__ import annotations

import ast
import difflib
from pathlib import Path

import pytest
from pinpipe_tasks.dag_file import TEMPLATE, render_dag_file, write_dag_file

from services.core.errors import ConfigError
from services.core.settings import DEFAULT_USER_ID, Settings

pytestmark = pytest.mark.unit


def user_id_literal(source: str) -> object:
    """The value the DAG source assigns to ``USER_ID`` at module level."""
    (value,) = [
        node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["USER_ID"]
        and isinstance(node.value, ast.Constant)
    ]
    return value


def test_the_committed_file_is_the_default_users() -> None:
    assert TEMPLATE.name == Settings(user_id=DEFAULT_USER_ID).dag_file == "1a2b3c4d5e6f_dag.py"
    assert user_id_literal(TEMPLATE.read_text()) == "1a2b3c4d5e6f"


def test_a_rendered_file_assigns_its_own_user_id_and_compiles() -> None:
    source = render_dag_file("tother0")
    assert user_id_literal(source) == "tother0"
    compile(source, "tother0_dag.py", "exec")


def test_a_template_without_its_user_id_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Path, "read_text", lambda self: 'USER_ID = "someone_else"\n')
    with pytest.raises(ConfigError, match="expected exactly one line"):
        render_dag_file("tother3")


def test_another_user_id_changes_only_the_user_id_line() -> None:
    changed = [
        line
        for line in difflib.ndiff(
            TEMPLATE.read_text().splitlines(), render_dag_file("tother1").splitlines()
        )
        if line.startswith(("-", "+"))
    ]
    assert changed == [f'- USER_ID = "{DEFAULT_USER_ID}"', '+ USER_ID = "tother1"']


def test_ids_that_would_break_the_python_source_are_refused() -> None:
    with pytest.raises(ValueError, match="user id"):
        render_dag_file('x"; import os')


def test_write_is_idempotent(tmp_path: Path) -> None:
    settings = Settings(user_id="tother2")
    path = write_dag_file(settings, tmp_path)
    assert path == tmp_path / "tother2_dag.py"
    mtime = path.stat().st_mtime_ns
    assert write_dag_file(settings, tmp_path) == path
    # Unchanged content is not rewritten (a new mtime would queue a re-parse).
    assert path.stat().st_mtime_ns == mtime
