"""What every command group shares: the consoles, error handling, options and progress bars."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.core.errors import PinpipeError, ServiceStartError
from services.core.settings import Settings

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
ShowSecretsOpt = Annotated[
    bool,
    typer.Option(
        "--show-secrets", help="Print passwords too (by default only the file that holds them)."
    ),
]

HIDDEN = "***"


def known_secrets(settings: Settings) -> dict[str, str]:
    """Every password the project's commands could print, and where it is kept."""
    from services.stack.airflow_standalone import AirflowService

    found = {settings.mysql_admin_password: "PINPIPE_MYSQL_ADMIN_PASSWORD"}
    # Credentials not configured, or Airflow's file not written yet: nothing to hide there.
    with suppress(PinpipeError):
        found[settings.db.PASSWORD] = str(settings.db_creds_file)
    airflow = AirflowService(settings)
    with suppress(PinpipeError):
        found[airflow.password()] = str(airflow.password_file)
    return {secret: where for secret, where in found.items() if secret}


def redact(value: T, secrets: Iterable[str]) -> T:
    """``value`` (text, or JSON-like lists and dicts) with every secret replaced by ***."""
    ordered = sorted(set(secrets), key=len, reverse=True)

    def hide(v: Any) -> Any:
        if isinstance(v, str):
            for secret in ordered:
                v = v.replace(secret, HIDDEN)
            return v
        if isinstance(v, dict):
            return {k: hide(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return type(v)(hide(x) for x in v)
        return v

    return hide(value)  # type: ignore[no-any-return]


def friendly_errors(fn: F) -> F:
    """Turn the project's errors into one clear line (plus a log tail) and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PinpipeError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            if isinstance(exc, ServiceStartError) and exc.log_tail:
                err_console.print(f"[dim]last lines of the {exc.service} log:[/]")
                err_console.print(exc.log_tail, markup=False, highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress(label: str, total: int | None, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (none with ``quiet``); yields ``advance(n)``."""
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def titled_table(title: str, columns: Iterable[tuple[str, str]]) -> Table:
    """A rich table with a left-aligned title and ``(name, justify)`` columns."""
    table = Table(title=title, title_justify="left")
    for name, justify in columns:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    return table
