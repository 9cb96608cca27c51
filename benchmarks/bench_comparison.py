"""Benchmark: the paper's comparison — DCGAN, DCGAN + constraint and CCDCGAN on the same Bi–Se database.

Runs three ``ccdcgan.inverse_design`` loops on the shipped Bi–Se database (SevenNet-0) with one protocol, one seed
and one number of graphs:

* ``dcgan``: trains the autoencoders, the constraint and a plain DCGAN, samples, relaxes, judges;
* ``dcgan_constraint``: the *same* DCGAN's models (given to the loop), the same seed — so the same graphs — screened
  by the constraint (the decoded crystal's predicted E_f — re-encoded in its six cell orders, the predictions
  averaged — ≤ the protocol's ``screening_max_energy``, 0.3 eV/atom) before relaxing, as the paper screens the
  DCGAN's output;
* ``ccdcgan``: trains the same autoencoders and constraint (same settings and seed) and a GAN with the constraint
  back-propagated into the generator (ω 0.1), with the same number of GAN steps as the DCGAN.

Relaxations and the hull use SevenNet-0 (the loop's default ``mlip`` engine); stable, metastable and distinct are
the paper's definitions (``aiida_ccdcgan.thermodynamics``). Prints the paper's table for the three modes next to
the paper's own numbers (per 13,000 graphs, as rates where the counts are not comparable), with the field's
metrics of each loop's candidates (``aiida-ccdcgan evaluate``: valid, unique, novel, S.U.N., the known phases
Bi2Se3 R-3m and BiSe P-3m1 among the relaxed crystals), and writes it, with the machine and the wall times, to
``--output`` (JSON and Markdown; the evaluation's tables in ``--output``/<mode>/).

``--leave-out Bi2Se3`` trains on the database without any crystal of that composition (the paper's hold-out
test) and counts how often the known Bi2Se3 structure comes back among the relaxed crystals. The loops judge
stability against the hull of what they were trained on, which without Bi2Se3 lies higher; the table then adds
the count of crystals stable against the full database's hull.

Beside the three modes, a reference column: ``--reference-graphs`` (300) of the training crystals' own graphs,
through the DCGAN loop's encoders, each with Gaussian noise of ``--reference-noise`` (0.1) added to every pixel,
decoded by its decoders, checked by the loop's validity rule and relaxed and judged like the loops' crystals
(``relax_and_assess``: the same relax protocol and potential, the training set on the hull and for "distinct").
It is what a generator that reproduces the data up to that noise would score with the same decoders and judge —
how much of the gap to the paper lies in the generator rather than in the representation or the judge.
``--reference-graphs 0`` leaves it out.

``--gan JSON`` merges GAN settings into the protocol's for all three modes, e.g. ``'{"architecture": "graph"}'``
for the paper's 2D generator instead of the ``fast`` loop's anchored one, or ``'{"architecture": "spatial",
"steps": 3000}'`` (``models.config.GanSettings``).

Usage: ``verdi run benchmarks/bench_comparison.py [--graphs 150] [--protocol fast] [--leave-out FORMULA]
[--gan JSON] [--reference-graphs 300] [--reference-noise 0.1] [--output benchmarks/results/comparison]`` (needs a
profile: ``verdi presto``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import run_get_node
from pymatgen.core import Composition

from aiida_ccdcgan.dataset import CrystalRecord
from aiida_ccdcgan.dataset.shipped import load_bise_database
from aiida_ccdcgan.dataset.writers import write_extxyz
from aiida_ccdcgan.thermodynamics import classify, energies_above_hull
from aiida_ccdcgan.tools.codes import script_code
from aiida_ccdcgan.tools.design import table_cell, training_config, training_records, trainings
from aiida_ccdcgan.tools.evaluate import evaluate_and_write, loop_results, relax_and_assess
from aiida_ccdcgan.tools.shipped import bise_database
from aiida_ccdcgan.workflows.inverse_design import InverseDesignWorkChain

PAPER = {  # Long et al. 2021, Table 1 (npj text), per 13,000 generated graphs
    "dcgan": {"valid": 2832, "formation_energy_below_zero": 2548, "metastable": 1233, "stable": 58,
              "distinct": 476, "distinct_metastable": 73, "distinct_stable": 15, "mean_formation_energy": -0.08},
    "dcgan_constraint": {"valid": 2148, "formation_energy_below_zero": 2037, "metastable": 1145, "stable": 36,
                         "distinct": 247, "distinct_metastable": 67, "distinct_stable": 12,
                         "mean_formation_energy": -0.09},
    "ccdcgan": {"valid": 3743, "formation_energy_below_zero": 3556, "metastable": 1910, "stable": 307,
                "distinct": 511, "distinct_metastable": 187, "distinct_stable": 42, "mean_formation_energy": -0.11},
}  # fmt: skip
PAPER_GRAPHS = 13000
MODES = ("dcgan", "dcgan_constraint", "ccdcgan")
REFERENCE = "training_graphs"
"""The reference column's key: the training crystals' graphs with noise, decoded and judged like the loops'."""
EVALUATION_KEYS = (
    "structures",
    "unique_fraction",
    "novel_fraction",
    "sun_fraction",
    "sun_compounds",
    "mean_rmsd",
    "known_phases",
)
"""Of ``aiida-ccdcgan evaluate``'s summary: the loop's valid candidates, their S.U.N. fractions, the known phases."""
COLUMNS = (
    ("graphs", "graphs"),
    ("valid", "valid crystals"),
    ("compounds", "of them compounds (≥ 2 elements)"),
    ("success_rate", "success rate"),
    ("formation_energy_below_zero", "E_f < 0"),
    ("metastable", "metastable"),
    ("stable", "stable"),
    ("stable_fraction", "stable / valid"),
    ("distinct", "distinct"),
    ("distinct_metastable", "distinct metastable"),
    ("distinct_stable", "distinct stable"),
    ("mean_formation_energy", "mean E_f (eV/atom)"),
)
FULL_HULL_COLUMN = ("stable_full_hull", "stable against the full database's hull")
"""With ``--leave-out``: the stable count judged against the hull of the database the loop did not train on."""


def paper_row(mode: str) -> dict:
    """The paper's numbers for ``mode`` with its rates."""
    row = dict(PAPER[mode], graphs=PAPER_GRAPHS)
    row["success_rate"] = row["valid"] / PAPER_GRAPHS
    row["stable_fraction"] = row["stable"] / row["valid"]
    return row


def run_loop(builder) -> tuple[orm.WorkflowNode, float]:
    """Run a loop here; its node and wall time. A failed loop stops the benchmark with its exit message."""
    start = time.perf_counter()
    _, node = run_get_node(builder)
    if not node.is_finished_ok:
        raise SystemExit(f"{node.process_label}<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
    return node, time.perf_counter() - start


def evaluation_table(results: dict) -> str:
    """The field's metrics of each mode's valid candidates (fractions of the valid candidates the loop judged)."""
    lines = ["| | " + " | ".join(results) + " |", "|---|" + "---:|" * len(results)]
    for key in EVALUATION_KEYS:
        cells = []
        for result in results.values():
            value = result["evaluation"][key]
            if isinstance(value, dict):
                cells.append(", ".join(f"{name} {count}" for name, count in value.items()))
            elif isinstance(value, float):
                cells.append(f"{100 * value:.1f} %" if key.endswith("_fraction") else f"{value:.3f}")
            else:
                cells.append("–" if value is None else str(value))
        lines.append(f"| {key.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_table(results: dict) -> str:
    """Modes as columns, ours next to the paper's, then the reference column; the rows of :data:`COLUMNS`."""
    columns = []
    for mode, result in results.items():
        if mode == REFERENCE:
            columns.append((f"training graphs + noise σ {result['noise']}", result["total"]))
        else:
            columns += [(f"{mode} (ours)", result["total"]), (f"{mode} (paper)", paper_row(mode))]
    lines = ["| | " + " | ".join(header for header, _ in columns) + " |", "|---|" + "---:|" * len(columns)]
    full_hull = any(FULL_HULL_COLUMN[0] in result["total"] for result in results.values())
    for name, label in COLUMNS + ((FULL_HULL_COLUMN,) if full_hull else ()):
        lines.append(f"| {label} | " + " | ".join(table_cell(name, total.get(name)) for _, total in columns) + " |")
    return "\n".join(lines)


def perturbed_training_crystals(
    node: orm.WorkflowNode, training: list[CrystalRecord], count: int, noise: float, seed: int
) -> list[CrystalRecord]:
    """``count`` graphs drawn (seeded) from the loop's ``training`` crystals through its encoders, each with Gaussian
    noise of standard deviation ``noise`` on every pixel (clipped to the latents' tanh range), decoded through its
    decoders; the crystals that pass the loop's validity rule (ids ``reference/sample-i``). Imports Keras, on the
    backend of the loop's training job unless ``KERAS_BACKEND`` is set."""
    for name, value in (trainings(node)[0][1].get_option("environment_variables") or {}).items():
        os.environ.setdefault(name, value)  # the Keras backend the loop trained and sampled with
    from aiida_ccdcgan.models.config import TrainingConfig
    from aiida_ccdcgan.models.inference import decode_graphs, encode_structures_to_graphs
    from aiida_ccdcgan.representation.validity import validity

    config = TrainingConfig.from_dict(training_config(node))
    roles = ("site_encoder", "lattice_encoder", "site_decoder", "lattice_decoder")
    models = {role: node.outputs.models[role].load() for role in roles}
    graphs, _ = encode_structures_to_graphs(
        [record.structure for record in training],
        config.representation,
        config.layout,
        models["site_encoder"],
        models["lattice_encoder"],
    )
    rng = np.random.default_rng(seed)
    chosen = graphs[rng.integers(0, len(graphs), count)]
    noisy = np.clip(chosen + noise * rng.standard_normal(chosen.shape), -1.0, 1.0).astype(np.float32)
    decoded = decode_graphs(
        noisy, config.representation, config.layout, models["site_decoder"], models["lattice_decoder"]
    )
    return [
        CrystalRecord(f"reference/sample-{index}", result.structure)
        for index, result in enumerate(decoded)
        if result.structure is not None and validity(result.structure, config.representation)[0] is None
    ]


def reference_column(node: orm.WorkflowNode, count: int, noise: float, seed: int, protocol: str, output: Path) -> dict:
    """The reference column (:func:`perturbed_training_crystals` of the DCGAN loop ``node``, relaxed and judged with
    the loop's potential and the relax protocol of its ``protocol``, the training set on the hull and for
    "distinct"), with its evaluation."""
    training, elements = training_records(node), node.inputs.elements.get_list()
    generated = perturbed_training_crystals(node, training, count, noise, seed)
    if not generated:
        empty = {"graphs": count, "valid": 0, "compounds": 0, "success_rate": 0.0, "stable_fraction": 0.0}
        return {"noise": noise, "total": empty, "evaluation": dict.fromkeys(EVALUATION_KEYS)}
    relaxation = relax_and_assess(
        {index: record.structure for index, record in enumerate(generated)},
        elements,
        training,
        reference_on_hull=True,
        potential=node.inputs.relax.mlip.settings["potential"],
        protocol=InverseDesignWorkChain.get_protocol_inputs(protocol)["relax_protocol"],
        count=len(generated),
    )
    judged = orm.load_node(relaxation.provenance["assessment"]).outputs.summary.get_dict()
    valid = len(generated)
    total = {
        "graphs": count,
        "valid": valid,
        "compounds": sum(len(record.structure.composition.elements) > 1 for record in generated),
        "success_rate": valid / count,
        **{name: judged[name] for name, _ in COLUMNS if name in judged},
        "stable_fraction": judged["stable"] / valid,
    }
    evaluation = evaluate_and_write(generated, training, elements, output, relaxation)
    return {"noise": noise, "total": total, "evaluation": {key: evaluation[key] for key in EVALUATION_KEYS}}


def stable_against(hull, generated, relaxation, elements) -> int:
    """How many relaxed crystals are stable by the paper's definition (E_f < 0, within 0.1 eV/atom of the hull)
    against the hull of ``hull`` — (composition, E_f) pairs; with ``--leave-out`` the whole shipped database's, not
    the hull the loop judged by."""
    judged = [
        (record.structure.composition, row["formation_energy"])
        for record, row in zip(generated, relaxation.assessment)
        if row and row.get("formation_energy") is not None
    ]
    if not judged:
        return 0
    above = energies_above_hull(judged, elements, hull_phases=hull)
    return sum(
        classify(energy, e_hull, elements=len(composition.elements)) == "stable"
        for (composition, energy), e_hull in zip(judged, above)
    )


def training_dataset(leave_out: str | None) -> tuple[orm.SinglefileData, str]:
    """The shipped Bi–Se database as the loop's dataset, without the crystals of composition ``leave_out``."""
    dataset, database = bise_database()
    if not leave_out:
        return dataset, f"{database.label} ({database.count()} crystals, SevenNet-0)"
    target = Composition(leave_out).reduced_formula
    kept = [r for r in load_bise_database() if r.structure.composition.reduced_formula != target]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"bise_sevennet_without_{target}.extxyz"
        write_extxyz(kept, path)
        reduced = orm.SinglefileData(path).store()
    left = database.count() - len(kept)
    return reduced, f"{database.label} without its {left} {target} crystals ({len(kept)}, SevenNet-0)"


def main() -> None:
    """Run the three loops, evaluate their candidates and write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", type=int, default=150, help="Graphs per mode (paper: 13,000).")
    parser.add_argument("--protocol", default="fast", choices=("fast", "paper"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--leave-out", metavar="FORMULA", help="Train without the crystals of this composition.")
    parser.add_argument("--gan", type=json.loads, default={}, metavar="JSON", help="GAN settings to override.")
    parser.add_argument("--reference-graphs", type=int, default=300, help="Graphs of the reference column (0: none).")
    parser.add_argument("--reference-noise", type=float, default=0.1, help="Its noise on every graph pixel.")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/comparison"))
    args = parser.parse_args()

    dataset, description = training_dataset(args.leave_out)
    codes = {name: script_code(f"ccdcgan-{name}") for name in ("train", "sample", "relax")}
    overrides = {
        "graphs_per_round": args.graphs,
        "seed": args.seed,
        "new_candidates_only": False,  # the paper's rates count every valid crystal, relaxed
        "train": {"config": {"gan": args.gan}},
    }

    def builder(mode: str):
        return InverseDesignWorkChain.get_builder_from_protocol(
            codes, dataset, ["Bi", "Se"], mode=mode, protocol=args.protocol, overrides=overrides
        )

    nodes, seconds = {}, {}
    nodes["dcgan"], seconds["dcgan"] = run_loop(builder("dcgan"))
    screening = builder("dcgan_constraint")
    del screening.train  # the DCGAN's own models: the same samples, screened
    screening.models = dict(nodes["dcgan"].outputs.models)
    screening.config = orm.Dict(training_config(nodes["dcgan"]))
    nodes["dcgan_constraint"], seconds["dcgan_constraint"] = run_loop(screening)
    nodes["ccdcgan"], seconds["ccdcgan"] = run_loop(builder("ccdcgan"))

    full_hull = [(record.structure.composition, record.formation_energy) for record in load_bise_database()]
    results = {}
    for mode, node in nodes.items():
        generated, relaxation, training, elements = loop_results(node)
        evaluation = evaluate_and_write(generated, training, elements, args.output / mode, relaxation)
        results[mode] = {
            "pk": node.pk,
            "uuid": node.uuid,
            "seconds": round(seconds[mode], 1),
            "total": node.outputs.summary["total"],
            "evaluation": {key: evaluation[key] for key in EVALUATION_KEYS},
        }
        if args.leave_out:
            results[mode]["total"] = dict(
                results[mode]["total"], stable_full_hull=stable_against(full_hull, generated, relaxation, elements)
            )
    if args.reference_graphs > 0:
        start = time.perf_counter()
        results[REFERENCE] = reference_column(
            nodes["dcgan"],
            args.reference_graphs,
            args.reference_noise,
            args.seed,
            args.protocol,
            args.output / REFERENCE,
        )
        results[REFERENCE]["seconds"] = round(time.perf_counter() - start, 1)
    record = {
        "graphs_per_mode": args.graphs,
        "protocol": args.protocol,
        "seed": args.seed,
        "gan_overrides": args.gan,
        "training_set": description,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
        "paper": {mode: paper_row(mode) for mode in MODES},
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "comparison.json").write_text(json.dumps(record, indent=2))
    text = "\n\n".join([markdown_table(results), evaluation_table(results)])
    (args.output / "comparison.md").write_text(text + "\n")
    print(f"{record['training_set']}; {args.graphs} graphs per mode, protocol {args.protocol}, seed {args.seed}")
    print(f"GAN settings overridden: {json.dumps(args.gan)}\n" if args.gan else "")
    print(text)
    print("\nWall time: " + ", ".join(f"{mode} {results[mode]['seconds']:.0f} s" for mode in results))
    print(f"Written: {args.output / 'comparison.json'}, {args.output / 'comparison.md'}")


main()
