"""Ports and port validators shared by several processes."""

from __future__ import annotations


def validate_elements(value, _) -> str | None:
    """Refuse anything but two or more different, real element symbols (the chemical system of a loop or a database)."""
    from pymatgen.core import Element

    if value is None:
        return None
    elements = value.get_list()
    if len(elements) < 2 or len(set(elements)) != len(elements):
        return f"elements must be two or more different element symbols, not {elements}."
    unknown = [symbol for symbol in elements if not (isinstance(symbol, str) and Element.is_valid_symbol(symbol))]
    if unknown:
        return f"{', '.join(map(repr, unknown))} is not an element symbol; give symbols such as ['Bi', 'Se']."
    return None


def define_elements_input(spec) -> None:
    """Define the ``elements`` input of a process that works on one chemical system (:func:`validate_elements`)."""
    from aiida import orm

    spec.input(
        "elements",
        valid_type=orm.List,
        validator=validate_elements,
        help="The system's element symbols, e.g. ['Bi', 'Se'] or ['Li', 'Co', 'O'].",
    )
