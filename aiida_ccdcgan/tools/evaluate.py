"""Relax generated crystals through AiiDA, place them on the hull and judge them with :mod:`aiida_ccdcgan.evaluation`."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from aiida import orm
from aiida.engine import run_get_node
from aiida.manage.caching import enable_caching
from pymatgen.core import Structure

from ..calculations.functions.design import valid_indices
from ..common import extras
from ..data.structures import StructureBatchData
from ..dataset import CrystalRecord
from ..dataset.shipped import known_phases
from ..errors import DatasetError
from ..evaluation import EvaluationSettings, evaluate, summarize
from ..relaxation.settings import RelaxSettings
from ..thermodynamics import shared_hull_refusal
from ..workflows.relax import RelaxWorkChain
from ..workflows.relax_and_assess import RelaxAndAssessWorkChain
from .codes import script_code
from .design import finished_loop, training_records


@dataclasses.dataclass
class Relaxation:
    """What relaxing and assessing gave, per generated structure (None where it was not relaxed or converged)."""

    structures: list[Structure | None]
    assessment: list[dict | None]
    provenance: dict


def assessment_rows(assessed: StructureBatchData) -> dict[int, dict]:
    """Index into the relaxed batch → formation energy, E_hull and class, from an ``assess_relaxed`` output."""
    columns = [assessed.info(name).tolist() for name in ("index", "formation_energy", "e_above_hull", "classification")]
    return {
        index: {"formation_energy": formation, "e_above_hull": e_hull, "classification": label}
        for index, formation, e_hull, label in zip(*columns)
    }


def relax_and_assess(
    structures: dict[int, Structure],
    elements: Sequence[str],
    reference: Sequence[CrystalRecord],
    reference_on_hull: bool,
    potential: str,
    protocol: str,
    count: int,
) -> Relaxation:
    """Relax ``structures`` (index → structure) and the elemental references with the MLIP engine, then compute
    formation energies, E_hull, the paper's classes and "distinct" (new against the reference and each other):
    ``ccdcgan.relax_and_assess``, as the database builder does. The reference phases join the hull only if
    ``reference_on_hull``; a reference whose crystals name another energy scale is then refused (DatasetError).
    With AiiDA caching on, a repeated evaluation reuses every finished relaxation."""
    overrides = {"mlip": {"settings": {"potential": potential}}}
    if reference_on_hull:  # refused before anything is stored
        settings = RelaxWorkChain.get_protocol_inputs(protocol, overrides)["mlip"]["settings"]
        scales = [str(record.properties.get(extras.ENERGY_SCALE, "")) for record in reference]
        refusal = shared_hull_refusal(scales, RelaxSettings.from_dict(settings).energy_scale(), elements)
        if refusal:
            raise DatasetError(f"--reference-on-hull: {refusal}")
    code = script_code("ccdcgan-relax")
    batch = StructureBatchData.from_structures(list(structures.values()))
    builder = RelaxWorkChain.get_builder_from_protocol(
        batch, code, engine="mlip", protocol=protocol, overrides=overrides
    )
    inputs = {
        "structures": batch,
        "elements": orm.List(list(elements)),
        "relax": {key: value for key, value in builder._inputs(prune=True).items() if key != "structures"},
    }
    if reference_on_hull:
        inputs["known_phases"] = orm.List(
            [
                {"composition": r.structure.composition.formula, "formation_energy": r.formation_energy}
                for r in reference
            ]
        )
    if reference:
        inputs["known_structures"] = StructureBatchData.from_structures([r.structure for r in reference])
    with enable_caching():
        _, evaluation = run_get_node(RelaxAndAssessWorkChain, **inputs)
    if not evaluation.is_finished_ok:
        raise RuntimeError(
            f"{evaluation.process_label}<{evaluation.pk}> failed: [{evaluation.exit_status}] {evaluation.exit_message}"
        )
    relaxed, assessed = evaluation.outputs.relaxed, evaluation.outputs.assessed
    order = list(structures)
    after: list[Structure | None] = [None] * count
    judged: list[dict | None] = [None] * count
    relaxed_structures, statuses = relaxed.get_structures(), relaxed.info("status").tolist()
    for position, index in enumerate(order):
        if statuses[position] == "converged":
            after[index] = relaxed_structures[position]
    for position, row in assessment_rows(assessed).items():
        judged[order[position]] = row
    provenance = {
        "relaxation": evaluation.uuid,
        "assessment": assessed.creator.uuid,
        "energy_scale": evaluation.outputs.summary["energy_scale"],
    }
    return Relaxation(after, judged, provenance)


def loop_results(node: orm.WorkflowNode) -> tuple[list[CrystalRecord], Relaxation, list[CrystalRecord], list[str]]:
    """What a finished ``ccdcgan.inverse_design`` loop generated and found: the valid candidates of every round
    (ids ``round-k/sample-i``), their relaxed structures and assessment (None for a candidate the loop did not relax:
    with ``new_candidates_only``, one it already knew), the training set and the elements."""
    from aiida.common.links import LinkType

    training = training_records(finished_loop(node))
    calls = node.base.links.get_outgoing(link_type=LinkType.CALL_CALC).all()
    calls += node.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all()
    by_label = {link.link_label: link.node for link in calls}
    rounds = sorted(int(label.rsplit("_", 1)[1]) for label in by_label if label.startswith("sample_round_"))
    generated, after, judged, scales = [], [], [], []
    for number in rounds:
        sampling = by_label[f"sample_round_{number}"]
        if "candidates" not in sampling.outputs:
            continue
        candidates = sampling.outputs.candidates
        valid = valid_indices(candidates)
        samples = candidates.info("sample").tolist()
        structures = candidates.get_structures()
        generated += [CrystalRecord(f"round-{number}/sample-{samples[i]}", structures[i]) for i in valid]
        position = {samples[i]: len(after) + k for k, i in enumerate(valid)}
        after += [None] * len(valid)
        judged += [None] * len(valid)
        relaxation = by_label.get(f"relax_round_{number}")
        if relaxation is None or "relaxed" not in relaxation.outputs:
            continue
        relaxed = relaxation.outputs.relaxed
        relaxed_samples = relaxation.inputs.structures.info("sample").tolist()
        statuses = relaxed.info("status").tolist()
        for sample, structure, status in zip(relaxed_samples, relaxed.get_structures(), statuses):
            after[position[sample]] = structure if status == "converged" else None
        assessments = orm.QueryBuilder().append(orm.Node, filters={"uuid": relaxed.uuid}, tag="relaxed")
        assessments.append(
            orm.CalcFunctionNode,
            with_incoming="relaxed",
            filters={"attributes.process_label": "assess_relaxed"},
            project="*",
        )
        for (assessment,) in assessments.all():
            for index, row in assessment_rows(assessment.outputs.assessed).items():
                judged[position[relaxed_samples[index]]] = row
            # assessments before MP2020 corrections existed name no scale: theirs is the relaxation's
            scales.append(assessment.outputs.summary.get("energy_scale", relaxation.outputs.summary["energy_scale"]))
    provenance = {"loop": node.uuid, "energy_scale": scales[0] if scales else None}
    return generated, Relaxation(after, judged, provenance), training, node.inputs.elements.get_list()


def evaluate_and_write(
    generated: Sequence[CrystalRecord],
    reference: Sequence[CrystalRecord],
    elements: Sequence[str],
    output: Path,
    relax: Relaxation | None = None,
    settings: EvaluationSettings = EvaluationSettings(),
) -> dict:
    """Judge ``generated`` (looking for the shipped known phases of ``elements`` among them) and write
    ``structures.csv`` (a row each), ``summary.json`` and ``relaxed.extxyz`` (the converged relaxed crystals) into
    ``output``; return the summary."""
    structures = [record.structure for record in generated]
    e_hull = [judged and judged["e_above_hull"] for judged in relax.assessment] if relax else None
    known = known_phases(elements)
    rows = evaluate(
        structures, [r.structure for r in reference], elements, relax and relax.structures, e_hull, settings, known
    )
    for row, record in zip(rows, generated):
        judged = relax.assessment[row["index"]] if relax else None
        row["id"] = record.source_id
        row["relaxed"] = relax is not None and relax.structures[row["index"]] is not None
        row["formation_energy"] = judged and judged["formation_energy"]
        row["paper_class"] = judged["classification"] if judged else ""
    summary = summarize(rows) | {
        "paper_stable": sum(row["paper_class"] == "stable" for row in rows),
        "paper_metastable": sum(row["paper_class"] == "metastable" for row in rows),
        "paper_distinct_stable": sum(row["paper_class"] == "stable" and row["unique"] and row["novel"] for row in rows),
        "known_phases": {name: sum(row["known_phase"] == name for row in rows) for name in known},
        "elements": list(elements),
        "reference_structures": len(reference),
        "settings": dataclasses.asdict(settings),
        "provenance": relax.provenance if relax else None,
    }
    output.mkdir(parents=True, exist_ok=True)
    columns = ["index", "id", *[key for key in rows[0] if key not in ("index", "id")]] if rows else ["index", "id"]
    with open(output / "structures.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    if relax:
        _write_relaxed(output / "relaxed.extxyz", rows, relax)
    return summary


def _write_relaxed(path: Path, rows: Sequence[dict], relax: Relaxation) -> None:
    """The converged relaxed crystals as extended XYZ with id, formation energy and E_hull per frame."""
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = []
    for row in rows:
        structure = relax.structures[row["index"]]
        if structure is None:
            continue
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.info = {"id": row["id"], "formation_energy": row["formation_energy"], "e_above_hull": row["e_above_hull"]}
        frames.append(atoms)
    write(path, frames, format="extxyz")
