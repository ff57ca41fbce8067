"""Changes, one per resource, and their Terraform-like rendering.

A step's ``plan`` reads the account and returns a Change for every resource it manages:
create, update, replace or no-op (``destroy`` adds delete). The change carries the call that
makes it, so ``apply`` runs exactly what ``plan`` showed and nothing when all is no-op.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from rich.console import Console
from rich.markup import escape


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"


_STYLE = {
    Action.CREATE: ("+", "green"),
    Action.UPDATE: ("~", "yellow"),
    Action.REPLACE: ("-/+", "magenta"),
    Action.DELETE: ("-", "red"),
    Action.NOOP: ("=", "dim"),
}


@dataclass
class Change:
    """What a step would do to one resource, and the call that does it."""

    step: str
    kind: str
    name: str
    action: Action
    detail: str = ""
    run: Callable[[], str] | None = field(default=None, repr=False, compare=False)

    @property
    def pending(self) -> bool:
        return self.action is not Action.NOOP

    def execute(self) -> str:
        """Make the change; returns a short note on the outcome."""
        if self.run is None:
            return "nothing to do"
        return self.run()


def noop(step: str, kind: str, name: str, detail: str = "") -> Change:
    """A resource that is already as wanted."""
    return Change(step, kind, name, Action.NOOP, detail)


def render_change(console: Console, change: Change) -> None:
    """One line per change, Terraform's symbols and colours."""
    symbol, style = _STYLE[change.action]
    detail = f"  [dim]{escape(change.detail)}[/]" if change.detail else ""
    console.print(
        f"  [{style}]{symbol:>3}[/] {escape(change.kind)} [bold]{escape(change.name)}[/]{detail}",
        highlight=False,
        soft_wrap=True,
    )


def summary(changes: Iterable[Change]) -> str:
    """``Plan: 2 to create, 1 to update, 0 to replace, 0 to delete, 7 unchanged.``"""
    counts = Counter(c.action for c in changes)
    return (
        f"{counts[Action.CREATE]} to create, {counts[Action.UPDATE]} to update, "
        f"{counts[Action.REPLACE]} to replace, {counts[Action.DELETE]} to delete, "
        f"{counts[Action.NOOP]} unchanged."
    )
