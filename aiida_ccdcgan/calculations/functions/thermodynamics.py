"""Calcfunctions of the thermodynamics: elemental references gathered, relaxed candidates assessed on the hull, and
the assessment mirrored into queryable extras of each structure."""

from __future__ import annotations

import math

from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import calcfunction
from aiida.manage import get_manager

from ...common import extras
from ...data.structures import StructureBatchData
from .relax import STRUCTURE_LABEL


@calcfunction
def elemental_reference_structures(elements: orm.List) -> StructureBatchData:
    """The elemental reference crystals of ``elements`` (Bi A7, Se trigonal A8, …) as one batch."""
    from ...thermodynamics import reference_structure

    return StructureBatchData.from_structures(
        [reference_structure(element) for element in elements.get_list()], {"element": elements.get_list()}
    )


@calcfunction
def reference_energies(relaxed: StructureBatchData) -> dict:
    """One Float per element (eV/atom) from relaxed elemental references: outputs named by the element."""
    energies = {}
    elements = [str(structure.composition.elements[0]) for structure in relaxed.get_structures()]
    for element, status, energy in zip(
        elements, relaxed.info("status").tolist(), relaxed.info("energy_per_atom").tolist()
    ):
        if status != "converged" or not math.isfinite(energy):
            raise ValueError(f"The {element} reference did not converge ({status}); its energy cannot be a reference.")
        energies[element] = orm.Float(energy)
    return energies


@calcfunction
def assess_relaxed(
    relaxed: StructureBatchData,
    energy_scale: orm.Str,
    references: orm.Dict,
    known_phases: orm.List,
    criteria: orm.Dict,
    known_structures: StructureBatchData | None = None,
) -> dict:
    """Formation energy, energy above hull, class and distinctness of every converged relaxed crystal.

    ``relaxed``'s energies are on ``energy_scale`` (the relaxation's); where ``criteria``'s ``energy_correction``
    asks for it (``auto``: a SevenNet scale in a system with a +U element and O or F), each crystal's energy gets
    its MP2020 correction first and every result is on the scale ``<energy_scale>+mp2020``.

    A converged crystal whose formation energy lies far below every known phase (``criteria``'s
    ``unphysical_margin``) is a hole of the potential: it is left out of the hull and of every count but
    ``unphysical``, which also counts those the relaxation already marked ``unphysical`` (bonds collapsed).

    ``references``: element → raw energy per atom on ``energy_scale`` (MP2020 corrects no element);
    ``known_phases``: entries ``{"composition": "BiSe", "formation_energy": -0.3}`` of phases already known on the
    resulting scale, which join the hull; ``known_structures``: the training database, for "distinct". Outputs
    ``assessed`` (the converged crystals, columns ``index`` into ``relaxed``, ``formation_energy``,
    ``e_above_hull``, ``classification``, ``distinct``, ``same_as`` — the index into ``relaxed`` of the earlier
    crystal of this batch a non-distinct one repeats, else -1 —, ``energy_correction`` in eV/atom), ``hull`` (the
    stable phases), ``summary`` (the paper's counts: converged, E_f < 0, stable, metastable — these three of
    compounds only —, distinct, distinct stable / metastable, mean E_f; and ``energy_scale``,
    ``energy_correction``) and one StructureData per assessed crystal under ``structures``.
    """
    from ...thermodynamics import (
        Criteria,
        classify,
        corrected_scale,
        earlier_matches,
        energies_above_hull,
        energy_correction,
        formation_energy_per_atom,
        mp2020_corrections,
        phase_diagram,
        unphysical_flags,
    )

    criteria_values = Criteria(**criteria.get_dict())
    energies = references.get_dict()
    elements = sorted(energies)
    structures = relaxed.get_structures()
    statuses, per_atom = relaxed.info("status").tolist(), relaxed.info("energy_per_atom").tolist()
    converged = [i for i, status in enumerate(statuses) if status == "converged"]
    correction = energy_correction(criteria_values.energy_correction, energy_scale.value, elements)
    corrections = (
        mp2020_corrections([structures[i] for i in converged], [per_atom[i] for i in converged])
        if correction == "mp2020"
        else [0.0] * len(converged)
    )
    formation = [
        formation_energy_per_atom(structures[i].composition, per_atom[i] + shift, energies)
        for i, shift in zip(converged, corrections)
    ]
    known = [(entry["composition"], entry["formation_energy"]) for entry in known_phases.get_list()]
    holes = unphysical_flags(formation, [energy for _, energy in known], criteria_values)
    chosen = [i for i, hole in zip(converged, holes) if not hole]
    candidates = [
        (structures[i].composition, energy) for i, energy, hole in zip(converged, formation, holes) if not hole
    ]
    above_hull = energies_above_hull(candidates, elements, hull_phases=known + candidates)
    matches = earlier_matches(
        [structures[i] for i in chosen],
        known_structures.get_structures() if known_structures is not None else [],
        criteria_values,
        energies=[energy for _, energy in candidates],
    )
    distinct = [match is None for match in matches]
    info = {
        "index": chosen,
        "formation_energy": [energy for _, energy in candidates],
        "e_above_hull": above_hull,
        "classification": [
            classify(energy, hull, criteria_values, len(composition.elements))
            for (composition, energy), hull in zip(candidates, above_hull)
        ],
        "distinct": distinct,
        "same_as": [chosen[match] if match is not None and match >= 0 else -1 for match in matches],
        "energy_correction": [shift for shift, hole in zip(corrections, holes) if not hole],
    }
    diagram = phase_diagram(known + candidates, elements)
    stable = [
        {"composition": entry.composition.reduced_formula, "formation_energy": entry.energy_per_atom}
        for entry in sorted(
            diagram.stable_entries, key=lambda entry: entry.composition.get_atomic_fraction(elements[-1])
        )
    ]
    classes, formation = info["classification"], info["formation_energy"]
    summary = {
        "relaxed": len(structures),
        "converged": len(chosen),
        "unphysical": sum(holes) + statuses.count("unphysical"),
        "formation_energy_below_zero": sum(
            energy < 0 and len(composition.elements) > 1 for composition, energy in candidates
        ),
        "stable": classes.count("stable"),
        "metastable": classes.count("metastable"),
        "distinct": sum(distinct),
        "distinct_stable": sum(d and c == "stable" for d, c in zip(distinct, classes)),
        "distinct_metastable": sum(d and c == "metastable" for d, c in zip(distinct, classes)),
        "mean_formation_energy": sum(formation) / len(formation) if formation else None,
        "energy_scale": corrected_scale(energy_scale.value, correction),
        "energy_correction": correction,
    }
    outputs = {
        "assessed": StructureBatchData.from_structures([structures[i] for i in chosen], info),
        "hull": orm.Dict({"elements": elements, "stable_phases": stable}),
        "summary": orm.Dict(summary),
    }
    for i in chosen:
        outputs[f"structures.{STRUCTURE_LABEL.format(index=i)}"] = orm.StructureData(pymatgen=structures[i])
    return outputs


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
    outputs = _created(node)
    assessed, energy_scale = outputs["assessed"], outputs["summary"]["energy_scale"]
    columns = {
        name: assessed.info(name).tolist()
        for name in ("index", "formation_energy", "e_above_hull", "classification", "distinct", "energy_correction")
    }
    energies = relaxed.info("energy_per_atom").tolist()
    structures = assessed_structures(node, outputs)
    with get_manager().get_profile_storage().transaction():  # one commit, not one per crystal
        for row, index in enumerate(columns["index"]):
            structure = structures[index]
            structure.base.extras.set_many(
                {
                    **extras.composition_extras(structure.get_pymatgen_structure()),
                    extras.FORMATION_ENERGY: columns["formation_energy"][row],
                    extras.E_ABOVE_HULL: columns["e_above_hull"][row],
                    extras.CLASSIFICATION: columns["classification"][row],
                    extras.DISTINCT: bool(columns["distinct"][row]),
                    extras.ENERGY_SCALE: energy_scale,
                    extras.ENERGY_PER_ATOM: energies[index] + columns["energy_correction"][row],
                }
            )
    return structures


def assessed_structures(node: orm.CalcFunctionNode, outputs: dict | None = None) -> dict[int, orm.StructureData]:
    """The crystals an ``assess_relaxed`` run assessed, by index into its ``relaxed`` input."""
    outputs = outputs or _created(node)
    indices = outputs["assessed"].info("index").tolist()
    return {index: outputs[f"structures__{STRUCTURE_LABEL.format(index=index)}"] for index in indices}


def _created(node: orm.CalcFunctionNode) -> dict:
    """Every output of ``node`` by link label, in one query: each ``node.outputs`` access queries all of them (1.5 s
    with 9,000 outputs)."""
    return {link.link_label: link.node for link in node.base.links.get_outgoing(link_type=LinkType.CREATE).all()}
