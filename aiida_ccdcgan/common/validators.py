"""Port validators shared by several processes."""

from __future__ import annotations


def validate_element_pair(value, _) -> str | None:
    """Refuse anything but two different, real element symbols (the binary system of a loop or a database)."""
    from pymatgen.core import Element

    if value is None:
        return None
    elements = value.get_list()
    if len(elements) != 2 or len(set(elements)) != 2:
        return f"elements must be two different element symbols, not {elements}."
    unknown = [symbol for symbol in elements if not (isinstance(symbol, str) and Element.is_valid_symbol(symbol))]
    if unknown:
        return f"{', '.join(map(repr, unknown))} is not an element symbol; give two symbols such as ['Bi', 'Se']."
    return None
