"""Assess relaxed candidates on the convex hull and mirror the results into queryable extras of each structure."""

from __future__ import annotations

from aiida import orm
from aiida.common.links import LinkType
from aiida.manage import get_manager

from ..calculations.functions.relax import STRUCTURE_LABEL
from ..calculations.functions.thermodynamics import assess_relaxed
from ..common import extras
from ..data.structures import StructureBatchData


def assess(
    relaxed: StructureBatchData,
    references: dict[str, float],
    energy_scale: str,
    known_phases: list[dict] | orm.List | None = None,
    known_structures: StructureBatchData | None = None,
    criteria: dict | None = None,
) -> tuple[orm.CalcFunctionNode, dict[int, orm.StructureData]]:
    """Run ``assess_relaxed`` and copy each crystal's results into its extras; return the calcfunction node and the
    assessed structures by index into ``relaxed``. ``known_phases`` may be a stored List (its provenance is kept).

    After this, ``QueryBuilder().append(StructureData, filters={'extras.e_above_hull': {'<': 0.1}})`` finds
    the candidates near the hull. ``relaxed`` and ``references`` are on ``energy_scale`` (the relaxation's);
    ``known_phases`` on the assessment's (``summary["energy_scale"]``: with ``+mp2020`` where it corrects).
    """
    inputs = {
        "relaxed": relaxed,
        "energy_scale": orm.Str(energy_scale),
        "references": orm.Dict(references),
        "known_phases": known_phases if isinstance(known_phases, orm.List) else orm.List(known_phases or []),
        "criteria": orm.Dict(criteria or {}),
    }
    if known_structures is not None:
        inputs["known_structures"] = known_structures
    _, node = assess_relaxed.run_get_node(**inputs)
    return node, mirror_assessment(node, relaxed)


def mirror_assessment(node: orm.CalcFunctionNode, relaxed: StructureBatchData) -> dict[int, orm.StructureData]:
    """Copy the results of an ``assess_relaxed`` run into extras of its output structures; return them by index.
    ``energy_scale`` and ``energy_per_atom`` are the assessment's: with MP2020 corrections where it applied them."""
    # every output in one query: each ``node.outputs`` access queries all of them (1.5 s with 9,000 outputs)
    outputs = {link.link_label: link.node for link in node.base.links.get_outgoing(link_type=LinkType.CREATE).all()}
    assessed, energy_scale = outputs["assessed"], outputs["summary"]["energy_scale"]
    columns = {
        name: assessed.info(name).tolist()
        for name in ("index", "formation_energy", "e_above_hull", "classification", "distinct", "energy_correction")
    }
    energies = relaxed.info("energy_per_atom").tolist()
    structures = {}
    with get_manager().get_profile_storage().transaction():  # one commit, not one per crystal
        for row, index in enumerate(columns["index"]):
            structure = outputs[f"structures__{STRUCTURE_LABEL.format(index=index)}"]
            composition = structure.get_pymatgen_structure().composition
            elements = sorted(str(e) for e in composition.elements)
            structure.base.extras.set_many(
                {
                    extras.FORMULA: composition.reduced_formula,
                    extras.ELEMENTS: elements,
                    extras.CHEMICAL_SYSTEM: "-".join(elements),
                    extras.NATOMS: len(structure.sites),
                    extras.FORMATION_ENERGY: columns["formation_energy"][row],
                    extras.E_ABOVE_HULL: columns["e_above_hull"][row],
                    extras.CLASSIFICATION: columns["classification"][row],
                    extras.DISTINCT: bool(columns["distinct"][row]),
                    extras.ENERGY_SCALE: energy_scale,
                    extras.ENERGY_PER_ATOM: energies[index] + columns["energy_correction"][row],
                }
            )
            structures[index] = structure
    return structures
