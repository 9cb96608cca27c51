"""Validity of a (decoded or generated) crystal, with the reason when it is not valid."""

from __future__ import annotations

import enum

import numpy as np
from pymatgen.core import Structure

from .config import VoxelConfig


class Invalid(str, enum.Enum):
    """Why a crystal is not valid."""

    NO_ATOMS = "no_atoms"
    FOREIGN_ELEMENT = "foreign_element"
    TOO_MANY_ATOMS = "too_many_atoms"
    SMALL_VOLUME = "small_volume"
    TOO_CLOSE = "atoms_too_close"


def validity(structure: Structure, config: VoxelConfig) -> tuple[Invalid | None, str]:
    """Return ``(None, '')`` for a valid crystal, else the reason and a detail.

    Valid: at least one atom, only the system's elements, at most ``max_atoms`` atoms, at least
    ``min_volume_per_atom`` Å³ per atom, and no two atoms — or an atom and its own periodic image — closer
    than ``min_distance`` Å (the paper's 2.0 Å for Bi–Se; the original code used 0.5 Å and ignored images).
    """
    if len(structure) == 0:
        return Invalid.NO_ATOMS, "the structure has no atoms"
    foreign = sorted({el.symbol for el in structure.composition.elements} - set(config.elements))
    if foreign:
        return Invalid.FOREIGN_ELEMENT, f"{', '.join(foreign)} not in the system ({', '.join(config.elements)})"
    if len(structure) > config.max_atoms:
        return Invalid.TOO_MANY_ATOMS, f"{len(structure)} atoms, more than {config.max_atoms}"
    volume = structure.volume / len(structure)
    if not np.isfinite(volume) or volume < config.min_volume_per_atom:
        return Invalid.SMALL_VOLUME, f"{volume:.3g} Å³ per atom, less than {config.min_volume_per_atom}"
    _, _, _, distances = structure.get_neighbor_list(config.min_distance, exclude_self=True)
    if len(distances):
        return (
            Invalid.TOO_CLOSE,
            f"atoms {distances.min():.2f} Å apart (periodic images included), less than {config.min_distance} Å",
        )
    return None, ""
