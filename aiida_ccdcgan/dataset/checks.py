"""Sanity checks a crystal must pass before it enters a dataset."""

from __future__ import annotations

import dataclasses

import numpy as np
from pymatgen.core import Structure
from pymatgen.core.periodic_table import DummySpecies

from ..errors import DatasetError


@dataclasses.dataclass(frozen=True)
class ImportChecks:
    """Thresholds for accepting a crystal into a dataset.

    The defaults are the structural validity thresholds of CDVAE (Xie et al. 2022), which the field uses
    to call a crystal physically possible: no two atoms closer than 0.5 Å (periodic images included) and a
    cell volume of at least 0.1 Å³. They catch broken input (overlapping or duplicated atoms, degenerate
    cells), not chemically unlikely but real crystals.
    """

    min_distance: float = 0.5
    min_volume: float = 0.1


def check_structure(structure: Structure, where: str, checks: ImportChecks = ImportChecks()) -> None:
    """Raise a :class:`DatasetError` naming ``where`` if ``structure`` cannot be a crystal of a dataset."""
    if len(structure) == 0:
        raise DatasetError(f"{where}: the structure has no atoms.")
    matrix = structure.lattice.matrix
    if not np.all(np.isfinite(matrix)) or not np.all(np.isfinite(structure.frac_coords)):
        raise DatasetError(f"{where}: the cell or the atomic coordinates contain NaN or infinite numbers.")
    volume = float(np.linalg.det(matrix))
    if abs(volume) < checks.min_volume:
        raise DatasetError(
            f"{where}: the cell volume is {volume:.3g} Å³ (zero or degenerate; at least "
            f"{checks.min_volume} Å³ is required). Check the lattice vectors."
        )
    if not structure.is_ordered:
        raise DatasetError(
            f"{where}: the structure has partially occupied sites; only ordered crystals can be imported. "
            "Order it first (e.g. pymatgen's OrderDisorderedStructureTransformation)."
        )
    dummies = sorted({str(site.specie) for site in structure if isinstance(site.specie, DummySpecies)})
    if dummies:
        raise DatasetError(
            f"{where}: {', '.join(dummies)} is not a chemical element. Use element symbols (e.g. Bi, Se)."
        )
    centres, neighbours, _, distances = structure.get_neighbor_list(checks.min_distance, exclude_self=True)
    if len(distances):
        closest = int(np.argmin(distances))
        raise DatasetError(
            f"{where}: atoms {centres[closest]} ({structure[int(centres[closest])].species_string}) and "
            f"{neighbours[closest]} ({structure[int(neighbours[closest])].species_string}) are "
            f"{distances[closest]:.3f} Å apart (periodic images included), closer than "
            f"{checks.min_distance} Å: overlapping atoms. Remove the duplicate atom or fix the coordinates."
        )
