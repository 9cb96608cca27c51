"""Calcfunctions of the inverse-design loop: the training set as a batch, the valid candidates of a round, what is
known before a round (structures for "distinct", phases for the hull) and the table of all rounds."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from ...common import extras
from ...data.structures import StructureBatchData

ROUND_COLUMNS = (
    "graphs",
    "valid",
    "compounds",
    "success_rate",
    "screened_out",
    "relaxed",
    "converged",
    "unphysical",
    "formation_energy_below_zero",
    "metastable",
    "stable",
    "stable_fraction",
    "distinct",
    "distinct_metastable",
    "distinct_stable",
    "mean_formation_energy",
)
"""The columns of the per-round table: the paper's Table 1 plus the relaxation counts (see :func:`design_summary`)."""


@calcfunction
def training_set(dataset: orm.SinglefileData) -> StructureBatchData:
    """The crystals of an extended XYZ training set as one batch, with ``source_id``, ``formation_energy`` and
    ``energy_scale`` (blank where a frame names none)."""
    from ...dataset.readers import read_extxyz

    with dataset.as_path() as path:
        records = read_extxyz(path)
    missing = [record.source_id for record in records if record.formation_energy is None]
    if missing:
        raise ValueError(f"{len(missing)} training crystals lack formation_energy (e.g. {missing[0]}).")
    return StructureBatchData.from_structures(
        [record.structure for record in records],
        {
            "source_id": [record.source_id for record in records],
            "formation_energy": [record.formation_energy for record in records],
            "energy_scale": [str(record.properties.get(extras.ENERGY_SCALE, "")) for record in records],
        },
    )


def fine_tuning_additions(assessed: StructureBatchData, max_e_above_hull: float) -> list[int]:
    """Rows of an assessed round that fine-tuning adds to the training set: distinct and within ``max_e_above_hull``."""
    flags, e_hull = assessed.info("distinct").tolist(), assessed.info("e_above_hull").tolist()
    return [row for row, (distinct, energy) in enumerate(zip(flags, e_hull)) if distinct and energy <= max_e_above_hull]


@calcfunction
def augmented_training_set(
    dataset: orm.SinglefileData, max_e_above_hull: orm.Float, **assessed: StructureBatchData
) -> orm.SinglefileData:
    """The training set plus the distinct crystals of the given assessed rounds within ``max_e_above_hull``
    (eV/atom) of the hull, as training frames ``<round>/<index>`` with their formation energies: the data the
    loop fine-tunes its GAN on."""
    import tempfile
    from pathlib import Path

    from ...dataset import CrystalRecord
    from ...dataset.readers import read_extxyz
    from ...dataset.writers import write_extxyz

    with dataset.as_path() as path:
        records = read_extxyz(path)
    for label, batch in sorted(assessed.items()):
        structures, energies, indices = (
            batch.get_structures(),
            batch.info("formation_energy").tolist(),
            batch.info("index").tolist(),
        )
        records += [
            CrystalRecord(f"{label}/{indices[row]}", structures[row], energies[row], properties={"split": "train"})
            for row in fine_tuning_additions(batch, max_e_above_hull.value)
        ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "training_set.extxyz"
        write_extxyz(records, path)
        return orm.SinglefileData(path)


def valid_indices(candidates: StructureBatchData) -> list[int]:
    """The positions of a sampling's candidates whose outcome is ``valid`` (decoded, passed validity and any
    screening)."""
    return [i for i, outcome in enumerate(candidates.info("outcome").tolist()) if outcome == "valid"]


@calcfunction
def valid_candidates(candidates: StructureBatchData) -> StructureBatchData:
    """The candidates of a sampling whose outcome is ``valid`` (:func:`valid_indices`)."""
    return _subset(candidates, valid_indices(candidates))


@calcfunction
def new_candidates(candidates: StructureBatchData, known: StructureBatchData) -> StructureBatchData:
    """The candidates that, as decoded, match no ``known`` crystal and no earlier candidate (StructureMatcher,
    ``thermodynamics.earlier_matches``): those worth a relaxation."""
    from ...thermodynamics import earlier_matches

    matches = earlier_matches(candidates.get_structures(), known.get_structures())
    return _subset(candidates, [i for i, match in enumerate(matches) if match is None])


def _subset(candidates: StructureBatchData, keep: list[int]) -> StructureBatchData:
    """The crystals ``keep`` of a batch, with their info columns."""
    structures = candidates.get_structures()
    info = {name: [candidates.info(name)[i].item() for i in keep] for name in candidates.info_names}
    return StructureBatchData.from_structures([structures[i] for i in keep], info)


@calcfunction
def known_before_round(training: StructureBatchData, on_hull: orm.Bool, **assessed: StructureBatchData) -> dict:
    """What a round is judged against: ``structures`` (the training set and every crystal assessed in earlier
    rounds, for "distinct") and ``phases`` (their compositions and formation energies, for the hull; the training
    set's only when ``on_hull``, i.e. it was computed at the same level of theory as the relaxations)."""
    structures = list(training.get_structures())
    phases = _phases(structures, training.info("formation_energy").tolist()) if on_hull.value else []
    for _, batch in sorted(assessed.items()):
        found = batch.get_structures()
        structures += found
        phases += _phases(found, batch.info("formation_energy").tolist())
    return {"structures": StructureBatchData.from_structures(structures), "phases": orm.List(phases)}


def _phases(structures, formation_energies) -> list[dict]:
    """Hull entries ``{"composition", "formation_energy"}`` of crystals with their formation energies (eV/atom)."""
    return [
        {"composition": s.composition.reduced_formula, "formation_energy": e}
        for s, e in zip(structures, formation_energies)
    ]


@calcfunction
def design_summary(**rounds: orm.Dict) -> orm.Dict:
    """The table of all rounds from ``sampling_<k>`` (sampling.json) and, where the round relaxed anything,
    ``assessment_<k>`` (assess_relaxed's summary). Fractions: success rate = valid / graphs (the paper's 28.8 %),
    stable fraction = stable / valid (the paper's 8.2 % = 307 of 3,743). ``compounds``: the valid crystals of two or
    more elements (the paper does not report it; an elemental crystal cannot be "stable", as E_f < 0 is asked)."""
    table = []
    for k in sorted({int(label.rsplit("_", 1)[1]) for label in rounds}):
        sampling = rounds[f"sampling_{k}"].get_dict()
        assessment = rounds[f"assessment_{k}"].get_dict() if f"assessment_{k}" in rounds else {}
        row = {"round": k, "graphs": sampling["graphs"], "valid": sampling["valid"]}
        row["compounds"] = sampling.get("valid_compounds")  # absent from samplings before it was counted
        row["success_rate"] = sampling["valid"] / sampling["graphs"]
        row["screened_out"] = sampling.get("outcomes", {}).get("screened_out", 0)
        row |= {name: assessment.get(name, 0) for name in _ASSESSMENT_COUNTS}
        row["stable_fraction"] = row["stable"] / row["valid"] if row["valid"] else 0.0
        row["mean_formation_energy"] = assessment.get("mean_formation_energy")
        table.append(row)
    total = {name: sum(row[name] for row in table) for name in ROUND_COLUMNS if name not in (*_RATIOS, "compounds")}
    compounds = [row["compounds"] for row in table]
    total["compounds"] = None if None in compounds else sum(compounds)
    total["success_rate"] = total["valid"] / total["graphs"] if total["graphs"] else 0.0
    total["stable_fraction"] = total["stable"] / total["valid"] if total["valid"] else 0.0
    means = [(row["mean_formation_energy"], row["converged"]) for row in table if row["converged"]]
    total["mean_formation_energy"] = (
        sum(mean * count for mean, count in means) / sum(count for _, count in means) if means else None
    )
    return orm.Dict({"columns": ["round", *ROUND_COLUMNS], "rounds": table, "total": total})


_RATIOS = ("success_rate", "stable_fraction", "mean_formation_energy")
_ASSESSMENT_COUNTS = tuple(name for name in ROUND_COLUMNS[ROUND_COLUMNS.index("relaxed") :] if name not in _RATIOS)
"""The columns taken from assess_relaxed's summary (0 for a round that relaxed nothing)."""
