"""The project's contract module holds the values of DATA-CONTRACT.md, letter for letter."""

from __future__ import annotations

import pytest

from services.core import contract
from services.core.settings import PROJECT_ROOT
from tests import contract_values as expected

pytestmark = pytest.mark.unit

NAMES = sorted(n for n in vars(contract) if n.isupper())


def test_the_module_and_the_typed_values_name_the_same_constants() -> None:
    typed = sorted(n for n in vars(expected) if n.isupper() and n not in expected.ONLY_HERE)
    assert typed == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_each_value_is_the_contracts(name: str) -> None:
    assert getattr(contract, name) == getattr(expected, name)


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [*strings(k), *strings(v)]]
    if isinstance(value, tuple | list):
        return [s for v in value for s in strings(v)]
    return []


def test_every_typed_value_stands_in_the_contract_page_when_it_is_beside_the_clone() -> None:
    page = PROJECT_ROOT.parent / "shared" / "DATA-CONTRACT.md"
    if not page.exists():
        pytest.skip(f"{page} is not beside this clone")
    text = page.read_text()
    missing = [s for n in NAMES for s in strings(getattr(expected, n)) if s not in text]
    assert missing == []
