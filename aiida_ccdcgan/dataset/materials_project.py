"""Materials Project entries of a chemical system as checked :class:`CrystalRecord` lists, through the official client.

Needs ``mp-api`` (``pip install 'aiida-ccdcgan[mp]'``) and an API key in the environment variable ``MP_API_KEY``
(https://next-gen.materialsproject.org/api); the key is handed to the client and never written anywhere. Each record
carries the entry's DFT formation energy (eV/atom, on the Materials Project's MP2020-corrected GGA/GGA+U scale) and
its energy above the Materials Project hull; those energies must not meet energies of another level of theory on one
hull — relax the crystals with the loop's engine first (``ccdcgan.database``) when they are to be hull references.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import warnings

from pymatgen.core import Element, Structure

from ..errors import DatasetError
from .checks import ImportChecks, check_structure
from .records import ENERGY_SCALE, CrystalRecord

API_KEY_VARIABLE = "MP_API_KEY"
"""The environment variable the API key is read from."""

FIELDS = ("material_id", "formula_pretty", "structure", "formation_energy_per_atom", "energy_above_hull")
"""The summary fields asked for."""


@dataclasses.dataclass(frozen=True)
class MaterialsProjectQuery:
    """Which entries to fetch: those of ``chemical_system`` (e.g. ``Li-Co-O``) with at most ``max_sites`` sites,
    with ``include_subsystems`` also its elements and smaller systems (Li, Co, O, Co-Li, Li-O, Co-O; what a hull over
    the system needs), and with ``max_e_above_hull`` (eV/atom) only those that close to the Materials Project hull."""

    chemical_system: str
    max_sites: int = 20
    include_subsystems: bool = True
    max_e_above_hull: float | None = None

    def __post_init__(self):
        parts = self.chemical_system.split("-")
        if not all(Element.is_valid_symbol(part) for part in parts) or len(set(parts)) != len(parts):
            raise DatasetError(
                f"{self.chemical_system!r} is not a chemical system: give different element symbols joined by '-', "
                "such as 'Li-Co-O'."
            )
        if self.max_sites < 1:
            raise DatasetError(f"max_sites must be at least 1, not {self.max_sites}.")
        object.__setattr__(self, "chemical_system", "-".join(sorted(parts)))

    @property
    def chemical_systems(self) -> list[str]:
        """The Materials Project ``chemsys`` values asked for: the system, and with subsystems every part of it."""
        elements = self.chemical_system.split("-")
        sizes = range(1, len(elements) + 1) if self.include_subsystems else [len(elements)]
        return ["-".join(part) for size in sizes for part in itertools.combinations(elements, size)]


def fetch_materials_project(
    query: MaterialsProjectQuery, checks: ImportChecks = ImportChecks()
) -> tuple[list[CrystalRecord], str]:
    """The entries of ``query`` as records (id = material id, ordered by it) and the database version they come from.

    Raises :class:`DatasetError` when the client is missing, the key is not set, the service refuses or a crystal
    fails ``checks`` — before anything is stored.
    """
    try:
        from mp_api.client import MPRester
    except ImportError:
        raise DatasetError(
            "The Materials Project import needs the official client: pip install 'aiida-ccdcgan[mp]' (mp-api)."
        ) from None
    api_key = os.environ.get(API_KEY_VARIABLE, "").strip()
    if not api_key:
        raise DatasetError(
            f"Set your Materials Project API key in the environment variable {API_KEY_VARIABLE} "
            "(https://next-gen.materialsproject.org/api); it is read from there and never stored."
        )
    search = {"chemsys": query.chemical_systems, "num_sites": (1, query.max_sites), "fields": list(FIELDS)}
    if query.max_e_above_hull is not None:
        search["energy_above_hull"] = (0.0, query.max_e_above_hull)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the client's notices about versions and deprecations
            with MPRester(api_key, use_document_model=False, mute_progress_bars=True) as rester:
                documents = rester.materials.summary.search(**search)
                version = str(rester.db_version)
    except Exception as error:  # the client raises MPRestError, requests' errors and more: all mean "no data"
        raise DatasetError(f"The Materials Project refused or could not be reached: {error}") from None
    records = [_record(document, checks) for document in documents]
    return sorted(records, key=lambda record: _id_order(record.source_id)), version


def _record(document: dict, checks: ImportChecks) -> CrystalRecord:
    """One summary document as a checked record."""
    material_id = str(document["material_id"])
    try:
        structure = Structure.from_dict(document["structure"])
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"Materials Project entry {material_id}: no readable structure ({error}).") from None
    check_structure(structure, f"Materials Project entry {material_id}", checks)
    energy = document.get("formation_energy_per_atom")
    return CrystalRecord(
        source_id=material_id,
        structure=structure,
        formation_energy=None if energy is None else float(energy),
        group_key=material_id,
        properties={
            "e_above_hull_mp": document.get("energy_above_hull"),
            "formula": document.get("formula_pretty") or structure.composition.reduced_formula,
            ENERGY_SCALE: "MP2020 (GGA/GGA+U, DFT)",
        },
    )


def _id_order(material_id: str) -> tuple[str, int, str]:
    """Sort key of ``mp-149`` before ``mp-1000``."""
    prefix, _, number = material_id.partition("-")
    return (prefix, int(number), "") if number.isdigit() else (prefix, 0, material_id)
