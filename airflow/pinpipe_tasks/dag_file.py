"""Each user id gets its own DAG file, ``<uid>_dag.py``, rendered from the default user's.

The file carries its user id as a literal rather than reading ``PINPIPE_USER_ID``: an MWAA
environment is often shared, its DAG folder holding one file per user, and each file must
still define its own ``<uid>_dag`` (two files reading one variable would clash).
"""

from __future__ import annotations

from pathlib import Path

from services.core.errors import ConfigError
from services.core.settings import DEFAULT_USER_ID, PROJECT_ROOT, Settings

TEMPLATE = PROJECT_ROOT / "airflow" / "dags" / f"{DEFAULT_USER_ID}_dag.py"
USER_ID_LINE = 'USER_ID = "{}"\n'


def render_dag_file(user_id: str) -> str:
    """The DAG file's source for a user id (the committed default's, with its id swapped)."""
    # The id is written into Python source: only ids the settings accept (a-z, 0-9, -) may be.
    Settings(user_id=user_id)
    source = TEMPLATE.read_text()
    marker = USER_ID_LINE.format(DEFAULT_USER_ID)
    if source.count(marker) != 1:
        raise ConfigError(f"{TEMPLATE}: expected exactly one line {marker.strip()!r}")
    return source.replace(marker, USER_ID_LINE.format(user_id))


def write_dag_file(settings: Settings, folder: Path | None = None) -> Path:
    """Write ``<uid>_dag.py`` into the DAG folder; its path.

    An unchanged file is not rewritten: a new mtime sends it to the front of the parse queue.
    """
    path = (folder or settings.airflow_dags_folder) / settings.dag_file
    source = render_dag_file(settings.user_id)
    if not path.exists() or path.read_text() != source:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return path
