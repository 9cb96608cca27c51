"""Data that ships with the package: the Bi–Se training database (built with SevenNet-0, see docs/datasets.md) and
experimentally known crystals to look for among generated ones."""

from __future__ import annotations

import json
from pathlib import Path

from pymatgen.core import Lattice, Structure

from .readers import read_extxyz
from .records import CrystalRecord

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
BISE_DATABASE = RESOURCES / "bise_sevennet.extxyz.gz"
"""Relaxed Bi–Se crystals: ``source_id``, ``group_key`` (template), ``formation_energy`` (eV/atom, SevenNet-0
against Bi A7 and Se A8 relaxed the same way), ``energy_per_atom``, ``e_above_hull``, ``classification``."""
KNOWN_PHASES = RESOURCES / "known_phases.json"
"""Known crystals (Bi2Se3 R-3m, BiSe P-3m1, Bi4Se3 R-3m, Bi3Se4 R-3m) from the literature, with their sources."""
BISE_BUILD = RESOURCES / "bise_sevennet.json"
"""How the database was built: templates, relax settings, counts, hull, wall time."""


def load_bise_database() -> list[CrystalRecord]:
    """The shipped Bi–Se database as CrystalRecords (formation energies on the SevenNet-0 scale)."""
    return read_extxyz(BISE_DATABASE)


def bise_build_record() -> dict:
    """The build record of the shipped Bi–Se database."""
    return json.loads(BISE_BUILD.read_text())


def _known_structure(entry: dict) -> Structure:
    """A known phase's crystal: Wyckoff sites of its space group, or close-packed layers (A, B, C stacking)."""
    lattice = Lattice.hexagonal(entry["lattice"]["a"], entry["lattice"]["c"])
    if "sites" in entry:
        sites = entry["sites"]
        return Structure.from_spacegroup(
            entry["spacegroup"], lattice, [s["species"] for s in sites], [s["coords"] for s in sites]
        )
    layers = entry["layers"]
    lateral = {"A": (0.0, 0.0), "B": (2 / 3, 1 / 3), "C": (1 / 3, 2 / 3)}
    coords = [
        (*lateral[letter], height / entry["lattice"]["c"])
        for letter, height in zip(layers["stacking"], layers["heights"])
    ]
    return Structure(lattice, layers["species"], coords)


def known_phases(elements) -> dict[str, Structure]:
    """The shipped known crystals (name → structure) made only of ``elements``."""
    entries = json.loads(KNOWN_PHASES.read_text())["phases"]
    structures = {entry["name"]: _known_structure(entry) for entry in entries}
    return {
        name: structure
        for name, structure in structures.items()
        if {element.symbol for element in structure.composition.elements} <= set(elements)
    }
