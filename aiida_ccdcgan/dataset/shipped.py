"""The Bi–Se training database that ships with the package (built with SevenNet-0, see docs/datasets.md)."""

from __future__ import annotations

import json
from pathlib import Path

from .readers import read_extxyz
from .records import CrystalRecord

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
BISE_DATABASE = RESOURCES / "bise_sevennet.extxyz.gz"
"""Relaxed Bi–Se crystals: ``source_id``, ``group_key`` (template), ``formation_energy`` (eV/atom, SevenNet-0
against Bi A7 and Se A8 relaxed the same way), ``energy_per_atom``, ``e_above_hull``, ``classification``."""
BISE_BUILD = RESOURCES / "bise_sevennet.json"
"""How the database was built: templates, relax settings, counts, hull, wall time."""


def load_bise_database() -> list[CrystalRecord]:
    """The shipped Bi–Se database as CrystalRecords (formation energies on the SevenNet-0 scale)."""
    return read_extxyz(BISE_DATABASE)


def bise_build_record() -> dict:
    """The build record of the shipped Bi–Se database."""
    return json.loads(BISE_BUILD.read_text())
