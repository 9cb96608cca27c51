"""Calcfunctions of the relax workflows: k-points from a density, unpacking and gathering structures, references."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ...data.structures import StructureBatchData

STRUCTURE_LABEL = "structure_{index:05d}"
"""Link label of the ``index``-th structure of a batch when it is unpacked into single StructureData nodes."""


@calcfunction
def kpoints_from_density(structure: orm.StructureData, density: orm.Float) -> orm.KpointsData:
    """A Γ-centred mesh with n_i = ⌈density·|b_i|/2π⌉ k-points along reciprocal vector b_i (|b_i| with the 2π).

    "K-point density 40" read as a reciprocal length of 40 Å: the same mesh as aiida-vasp's
    ``kpoints_spacing = 1/40`` and VASP's ``KSPACING = 2π/40 = 0.157 Å⁻¹``, independent of how skewed the cell is.
    """
    if density.value <= 0:
        raise ValueError(f"The k-point density must be positive, not {density.value}.")
    kpoints = orm.KpointsData()
    kpoints.set_cell_from_structure(structure)
    kpoints.set_kpoints_mesh_from_density(2 * math.pi / density.value)
    return kpoints


@calcfunction
def unpack_structures(structures: StructureBatchData) -> dict:
    """Every crystal of a batch as its own StructureData (outputs ``structure_00000``, …)."""
    return {
        STRUCTURE_LABEL.format(index=index): orm.StructureData(pymatgen=structure)
        for index, structure in enumerate(structures.get_structures())
    }


def _energy_from_misc(misc: orm.Dict) -> float:
    """aiida-vasp's total energy (eV per cell, σ→0 extrapolated) from its ``misc`` output."""
    return float(misc.get_dict()["total_energies"]["energy_extrapolated"])


@calcfunction
def gather_vasp_relaxations(
    structures: StructureBatchData, statuses: orm.Dict, energy_scale: orm.Str, **relaxed
) -> dict:
    """One batch in input order from VASP relaxations, with the columns the MLIP engine writes, and a summary.

    ``statuses`` maps the index (as text) to converged / not_converged / failed; ``relaxed`` holds
    ``structure_<index>`` and ``misc_<index>`` of each relaxation that produced them. A structure without a
    result keeps its input cell and a NaN energy.
    """
    from ...relaxation.settings import Status

    originals = structures.get_structures()
    result, info = [], {"status": [], "exit_code": [], "total_energy": [], "energy_per_atom": []}
    for index, original in enumerate(originals):
        label = STRUCTURE_LABEL.format(index=index)
        status = Status(statuses[str(index)])
        misc = relaxed.get(label.replace("structure", "misc"))
        structure = relaxed[label].get_pymatgen_structure() if label in relaxed else original
        energy = _energy_from_misc(misc) if misc is not None else math.nan
        if not np.isfinite(energy) and status is Status.CONVERGED:
            status = Status.FAILED
        result.append(structure)
        info["status"].append(status.value)
        info["exit_code"].append(status.exit_code)
        info["total_energy"].append(energy)
        info["energy_per_atom"].append(energy / len(structure))
    summary = {
        "engine": "vasp",
        "count": len(result),
        "statuses": dict(Counter(info["status"])),
        "energy_scale": energy_scale.value,
    }
    return {"relaxed": StructureBatchData.from_structures(result, info), "summary": orm.Dict(summary)}
