"""The in-memory form of one crystal of a dataset, shared by every reader and writer."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from pymatgen.core import Structure

from ..errors import DatasetError

ENERGY_SCALE = "energy_scale"
"""The property (and, once stored, the extra) naming which engine and model a record's energies come from, e.g.
``sevennet:7net-0``; never compare energies across scales."""


@dataclasses.dataclass
class CrystalRecord:
    """One crystal of a dataset.

    ``source_id`` identifies the crystal in its source (a Materials Project id, a file name, a row id);
    ``formation_energy`` is in eV/atom or ``None`` when the source has none; ``group_key`` is the key a
    group-aware split keeps together (e.g. the V–O template ``prototype_mp_id``); ``properties`` holds any
    further scalar columns of the source under sanitised names.
    """

    source_id: str
    structure: Structure
    formation_energy: float | None = None
    group_key: str | None = None
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)


_KEY_PATTERN = re.compile(r"[^0-9a-zA-Z_]+")


def sanitise_key(name: str) -> str:
    """Turn a column name into a key AiiDA accepts for attributes and extras (no dots, no spaces)."""
    key = _KEY_PATTERN.sub("_", name.strip()).strip("_")
    if not key:
        raise DatasetError(f"The column name {name!r} has no usable characters; rename the column.")
    return key


def parse_energy(value: Any, where: str, column: str) -> float:
    """Return ``value`` as a finite float, or raise a :class:`DatasetError` naming ``where`` and ``column``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DatasetError(
            f"{where}: the energy '{column}' is missing. Fill it in, or import without energies "
            "(--energy-column '' on the command line, energy_column=None in Python)."
        )
    try:
        energy = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: the energy '{column}' = {value!r} is not a number.") from None
    if not math.isfinite(energy):
        raise DatasetError(
            f"{where}: the energy '{column}' is {energy}; energies must be finite numbers (eV/atom). "
            "Remove the row or fix its value."
        )
    return energy


def scalar_property(value: Any) -> Any:
    """Convert a property value to a JSON-safe scalar (numbers stay numbers, text stays text)."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return scalar_property(value.item())
    return str(value)
