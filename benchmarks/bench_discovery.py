"""Benchmark: discovery at an equal budget of relaxations, against the shipped Bi–Se database and its hull.

Every arm proposes crystals, relaxes ``--budget`` valid ones with the settings the shipped database was relaxed
with (its build record: SevenNet-0, the `fast` relax protocol) and is judged the same way against the database:

* ``random``: random symmetric Bi–Se crystals from PyXtal (random space group, composition and ≤ 20 atoms),
  kept when they pass the loop's validity check (``representation.validity``: ≤ 20 atoms, ≥ 1 Å³/atom, no two
  atoms closer than 2.0 Å) — the random-structure-search baseline;
* ``perturbed``: database crystals (drawn with replacement) with a random strain (each component of a symmetric
  strain uniform in ±``--strain``) and a rattle (Gaussian, σ ``--rattle`` Å), kept when valid — what a step around
  a training crystal gives without any generator;
* ``exchanged``: the same, with the elements of every second draw (a coin toss) exchanged first — the substitution
  move that the ``ccdcgan`` arm's generator also makes (``gan.permute_elements``), without any generator: what the
  generator adds beyond that move.

* ``ccdcgan``: the package's generator as the `fast` loop of ``ccdcgan.inverse_design`` trains it — the `fast`
  training protocol with the loop's overrides (pretrained autoencoders fine-tuned, the anchored CCDCGAN), trained on
  the database with the arm's seed (the anchored generator drawing from the training graphs and their
  element-exchanged twins), then ``ccdcgan-sample`` rounds (seeds ``1000·seed + k``) until ``--budget``
  crystals pass the sampler's validity check (the same ``representation.validity``), every one relaxed;
* ``paper_gan``: the same with the paper's 2D generator (GAN architecture ``graph``) and the same GAN steps;
* ``ccdcgan_distinct``: ``ccdcgan`` relaxing only candidates that, before relaxation, match no crystal it was trained
  on and no earlier candidate (StructureMatcher 0.2/0.3/5°; the matching's CPU time counts as proposing) — most
  decoded crystals of the anchored generator are its training crystals again. The `fast` loop ships this
  (``new_candidates_only``);
* ``ccdcgan_scaled``: ``ccdcgan_distinct`` sampling with ``--step-scale uniform``: each sample's learnt step times
  a factor uniform in [0, 1], every point of the way from the training graph (or its element-exchanged twin) to the
  learnt step; the same trained models;
* ``ccdcgan_backoff``: ``ccdcgan_distinct`` sampling with ``--step-scale backoff``: the learnt step, halved and then
  quartered for a sample whose crystal is not valid; the same trained models.

The generator arms train and sample through the compute-node scripts (``ccdcgan-train``, ``ccdcgan-sample``) in
``--work`` (models are not committed); a rerun reuses finished training stages.

``--leave-out FORMULA`` removes every database crystal of that reduced formula from what the arms start from
(``perturbed``'s and ``exchanged``'s crystals, the generators' training set) while the judge keeps the full
database and its hull; the row then counts the converged crystals of that formula, the distinct ones, and those
matching a left-out database crystal. Every row counts the converged crystals that match each known phase of
``known_phases.json``.

Per arm: proposed, valid (relaxed), converged, unphysical (formation energy more than 1 eV/atom below the database's
lowest: a hole of the potential, as the loop's assessment flags it); *new distinct* crystals — converged, physical,
compounds, matching no database crystal and no earlier one of the arm (StructureMatcher 0.2/0.3/5°,
``thermodynamics.earlier_matches``) —, and of those how many lie on or below the database's hull (E_hull ≤ 1
meV/atom), within 25 and within 100 meV/atom; *new compositions* (reduced formulas the database lacks) among them,
and how many within 25 meV/atom; the relaxation's wall and CPU time, the CPU time of proposing (PyXtal; training and
sampling for the generators), and the total CPU seconds per new distinct crystal within 25 meV/atom. Counts come
with exact 95 % Poisson intervals. Formation energies use the elemental energies the database implies (E/atom − E_f,
fitted over its crystals), so they sit on the database's own scale. Each arm's converged crystals go to
``<output>/<arm>-seed<seed>[-without-<FORMULA>].extxyz.gz`` with ``formation_energy``, ``e_above_hull`` (eV/atom),
``new_distinct`` and ``unphysical``.

Usage: ``pip install -e '.[bench]'`` (PyXtal), then ``python benchmarks/bench_discovery.py [--arms random perturbed
exchanged ccdcgan paper_gan] [--budget 1000] [--seed 0] [--leave-out Bi2Se3] [--output
benchmarks/results/discovery]``; the table goes to ``<output>/table-seed<seed>[-without-<FORMULA>].json``, each
arm's row as soon as the arm is done, so a rerun goes on with the arms still missing (``--again`` redoes them).
``python benchmarks/bench_discovery.py --markdown --output DIR`` prints the tables in DIR as docs/benchmarks.md shows
them, running nothing; ``--rejudge --output DIR`` counts the known phases again in every table of DIR from its
committed crystals (after ``known_phases.json`` changed), relaxing nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from ase.io import read
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from scipy.stats import chi2

from aiida_ccdcgan.dataset.readers import read_extxyz
from aiida_ccdcgan.dataset.records import CrystalRecord
from aiida_ccdcgan.dataset.shipped import bise_build_record, known_phases, load_bise_database
from aiida_ccdcgan.dataset.writers import write_extxyz
from aiida_ccdcgan.relaxation import RelaxSettings, Status, relax_batch
from aiida_ccdcgan.representation.config import VoxelConfig
from aiida_ccdcgan.representation.validity import validity
from aiida_ccdcgan.thermodynamics import (
    earlier_matches,
    energies_above_hull,
    formation_energy_per_atom,
    implied_elemental_energies,
    unphysical_flags,
)
from aiida_ccdcgan.workflows.inverse_design import MODES, InverseDesignWorkChain
from aiida_ccdcgan.workflows.protocols import merge_inputs
from aiida_ccdcgan.workflows.train import TrainBaseWorkChain

ELEMENTS = ("Bi", "Se")
ON_HULL = 0.001
WINDOWS = (0.025, 0.100)
MAX_TRIES = 200
"""Proposals per valid crystal before an arm gives up (PyXtal refuses many composition / space-group pairs)."""


@dataclasses.dataclass(frozen=True)
class GeneratorArm:
    """How a generator arm trains and samples: ``architecture``, the GAN architecture override of the `fast` loop's
    training configuration (None: the loop's own); ``step_scale``, ``ccdcgan-sample --step-scale``
    (``models.config.STEP_SCALES``); ``distinct``, relax only candidates that match no training crystal and no
    earlier candidate of the arm before relaxation (StructureMatcher 0.2/0.3/5°): no relaxation spent on a crystal
    already at hand."""

    architecture: str | None = None
    step_scale: str = "learnt"
    distinct: bool = False


GENERATOR_ARMS = {
    "ccdcgan": GeneratorArm(),
    "paper_gan": GeneratorArm(architecture="graph"),
    "ccdcgan_distinct": GeneratorArm(distinct=True),
    "ccdcgan_scaled": GeneratorArm(step_scale="uniform", distinct=True),
    "ccdcgan_backoff": GeneratorArm(step_scale="backoff", distinct=True),
    "ccdcgan_fallback": GeneratorArm(step_scale="fallback", distinct=True),
}
"""The generator arms by name."""
MATCHING_CHUNK = 100
"""Candidates matched at a time by a ``distinct`` generator arm, which stops matching once its budget is full."""
SAMPLING_ROUNDS = 10
"""``ccdcgan-sample`` calls before a generator arm gives up filling its budget."""


def random_crystal(rng: random.Random, config: VoxelConfig) -> Structure | None:
    """One random symmetric Bi–Se crystal from PyXtal (its primitive cell), or None when PyXtal cannot place it."""
    from pyxtal import pyxtal
    from pyxtal.msg import Comp_CompatibilityError

    atoms = rng.randint(2, config.max_atoms)
    bismuth = rng.randint(1, atoms - 1)
    crystal = pyxtal()
    try:
        crystal.from_random(
            3, rng.randint(1, 230), list(ELEMENTS), [bismuth, atoms - bismuth], random_state=rng.getrandbits(31)
        )
    except (Comp_CompatibilityError, RuntimeError, ValueError):
        return None
    if not crystal.valid:
        return None
    return crystal.to_pymatgen().get_primitive_structure()


def perturbed_crystal(
    rng: random.Random, database: list[Structure], strain: float, rattle: float, exchange: bool = False
) -> Structure:
    """A database crystal with a random symmetric strain (components uniform in ±``strain``) and a Gaussian rattle;
    with ``exchange``, its two elements exchanged first on a coin toss."""
    structure = rng.choice(database).copy()
    if exchange and rng.random() < 0.5:
        structure.replace_species(dict(zip(ELEMENTS, reversed(ELEMENTS))))
    components = np.array([[rng.uniform(-strain, strain) for _ in range(3)] for _ in range(3)])
    deformation = np.eye(3) + (components + components.T) / 2
    lattice = Lattice(structure.lattice.matrix @ deformation)
    cartesian = lattice.get_cartesian_coords(structure.frac_coords)
    noise = np.array([[rng.gauss(0.0, rattle) for _ in range(3)] for _ in range(len(structure))])
    return Structure(lattice, structure.species, cartesian + noise, coords_are_cartesian=True)


def propose(arm: str, budget: int, seed: int, database: list[Structure], args) -> tuple[list[Structure], int]:
    """``budget`` valid crystals of ``random``, ``perturbed`` or ``exchanged`` and how many proposals it took."""
    rng = random.Random(f"{arm}-{seed}")
    config = VoxelConfig(elements=ELEMENTS)
    valid, proposed = [], 0
    while len(valid) < budget and proposed < budget * MAX_TRIES:
        proposed += 1
        if arm == "random":
            structure = random_crystal(rng, config)
        else:
            structure = perturbed_crystal(rng, database, args.strain, args.rattle, exchange=arm == "exchanged")
        if structure is not None and validity(structure, config)[0] is None:
            valid.append(structure)
    return valid, proposed


def loop_training_config(arm: str, seed: int) -> tuple[dict, dict]:
    """The TrainingConfig dict the `fast` inverse-design loop trains with (seed ``seed``; ``paper_gan``: the 2D
    generator) and the environment variables of its training CalcJob."""
    loop = InverseDesignWorkChain.get_protocol_inputs("fast")
    overrides = {"config": {"seed": seed, "gan": {"mode": MODES["ccdcgan"]}}}
    if GENERATOR_ARMS[arm].architecture:
        overrides["config"]["gan"]["architecture"] = GENERATOR_ARMS[arm].architecture
    inputs = TrainBaseWorkChain.get_protocol_inputs(
        loop["train_protocol"], merge_inputs(loop.get("train", {}), overrides)
    )
    inputs["config"]["representation"]["elements"] = list(ELEMENTS)
    return inputs["config"], inputs.get("options", {}).get("environment_variables", {})


def generate(
    arm: str, budget: int, seed: int, training: list[CrystalRecord], work: Path
) -> tuple[list[Structure], int]:
    """``budget`` valid crystals from a generator arm trained on ``training``, and how many graphs it sampled
    (a ``distinct`` arm: valid crystals unlike any training crystal and any earlier one)."""
    config, variables = loop_training_config(arm, seed)
    environment = {**os.environ, **variables}
    environment.update({k: os.environ[k] for k in ("KERAS_BACKEND",) if k in os.environ})
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(config, indent=2))
    write_extxyz(training, work / "training.extxyz")
    scripts = Path(sys.executable).parent
    models = work / "models"
    subprocess.run(
        [scripts / "ccdcgan-train", work / "config.json", work / "training.extxyz", "--output", models],
        check=True,
        env=environment,
    )
    valid, sampled = [], 0
    known = [r.structure for r in training]
    for round_index in range(SAMPLING_ROUNDS):
        if len(valid) >= budget:
            break
        per_crystal = 5 if GENERATOR_ARMS[arm].distinct else 5 / 4  # ≈ 85 % valid; ≈ 30 % of those unlike the rest
        count = int(max(budget - len(valid), 1) * per_crystal) + 10
        folder = work / f"samples-{round_index}"
        subprocess.run(
            [scripts / "ccdcgan-sample", work / "config.json", models, "--count", str(count),
             "--seed", str(1000 * seed + round_index), "--step-scale", GENERATOR_ARMS[arm].step_scale,
             "--output", folder],
            check=True,
            env=environment,
        )  # fmt: skip
        sampled += count
        frames = read(folder / "candidates.extxyz", ":") if (folder / "candidates.extxyz").exists() else []
        new = [AseAtomsAdaptor.get_structure(a) for a in frames if a.info["outcome"] == "valid"]
        if not GENERATOR_ARMS[arm].distinct:
            valid += new
            continue
        for start in range(0, len(new), MATCHING_CHUNK):
            if len(valid) >= budget:
                break
            chunk = new[start : start + MATCHING_CHUNK]
            valid += [s for s, match in zip(chunk, earlier_matches(chunk, known + valid)) if match is None]
    return valid[:budget], sampled


def elemental_energies(records: list[CrystalRecord]) -> dict[str, float]:
    """The elemental energies per atom the database's formation energies imply (least squares over its crystals)."""
    phases = [(r.structure.composition, r.properties["energy_per_atom"], r.formation_energy) for r in records]
    return implied_elemental_energies(phases, ELEMENTS)


def poisson_interval(count: int) -> list[float]:
    """Exact 95 % interval of a Poisson count."""
    low = 0.0 if count == 0 else chi2.ppf(0.025, 2 * count) / 2
    return [round(float(low), 1), round(float(chi2.ppf(0.975, 2 * count + 2) / 2), 1)]


def lowest(energies: list[float]) -> float | None:
    """The lowest of ``energies`` (eV/atom, rounded), None when there are none."""
    return round(min(energies), 4) if energies else None


def cpu_seconds() -> float:
    """CPU time of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def known_matches(structures: list[Structure], references: dict[str, Structure]) -> dict:
    """How many of ``structures`` match each reference crystal (``thermodynamics.earlier_matches``)."""
    return {
        name: earlier_matches(structures, [reference], among_candidates=False).count(-1)
        for name, reference in references.items()
    }


def physical_crystals(path: Path) -> list[Structure]:
    """The crystals of a committed ``<arm><suffix>.extxyz.gz`` that are not flagged unphysical."""
    return [record.structure for record in read_extxyz(path) if not record.properties["unphysical"]]


def rejudge_known_phases(output: Path) -> None:
    """Count every known phase again among each arm's committed physical crystals, in every table of ``output``."""
    references = known_phases(ELEMENTS)
    for path in sorted(output.glob("table-seed*.json")):
        table = json.loads(path.read_text())
        suffix = path.stem.removeprefix("table")
        for arm, row in table["arms"].items():
            crystals = physical_crystals(output / f"{arm}{suffix}.extxyz.gz")
            row["known_phases_regenerated"] = known_matches(crystals, references)
            print(f"{path.name} {arm}: {row['known_phases_regenerated']}", file=sys.stderr)
        path.write_text(json.dumps(table, indent=2) + "\n")


def run_suffix(args) -> str:
    """The file-name suffix of a run: its seed and its left-out formula."""
    return f"-seed{args.seed}" + (f"-without-{args.leave_out}" if args.leave_out else "")


def run_arm(arm: str, args, records: list[CrystalRecord], settings: RelaxSettings, references: dict) -> dict:
    """Propose, relax and judge one arm; write its relaxed crystals; return its row."""
    database = [r.structure for r in records]
    left_out = [r for r in records if r.structure.composition.reduced_formula == args.leave_out]
    starting = [r for r in records if r.structure.composition.reduced_formula != args.leave_out]
    suffix = run_suffix(args)
    start_cpu = cpu_seconds()
    if arm in GENERATOR_ARMS:
        candidates, proposed = generate(arm, args.budget, args.seed, starting, args.work / f"{arm}{suffix}")
    else:
        candidates, proposed = propose(arm, args.budget, args.seed, [r.structure for r in starting], args)
    proposing_cpu = cpu_seconds() - start_cpu
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    results = relax_batch([AseAtomsAdaptor.get_atoms(s) for s in candidates], settings)
    wall, cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
    converged = [r for r in results if r.status == Status.CONVERGED]
    structures = [AseAtomsAdaptor.get_structure(r.atoms) for r in converged]
    energies = [
        formation_energy_per_atom(s.composition, r.energy_per_atom, references) for s, r in zip(structures, converged)
    ]
    hull = [(r.structure.composition, r.formation_energy) for r in records]
    above = energies_above_hull([(s.composition, e) for s, e in zip(structures, energies)], ELEMENTS, hull)
    unphysical = unphysical_flags(energies, [r.formation_energy for r in records])
    matches = earlier_matches(structures, database)
    new = [
        k
        for k, match in enumerate(matches)
        if match is None and len(structures[k].composition) == 2 and not unphysical[k]
    ]
    known_formulas = {s.composition.reduced_formula for s in database}
    new_compositions = [k for k in new if structures[k].composition.reduced_formula not in known_formulas]
    near = {f"{round(w * 1000)} meV": len([k for k in new if above[k] <= w]) for w in WINDOWS}
    close = near["25 meV"]
    physical = [k for k in range(len(structures)) if not unphysical[k]]
    frames = [
        CrystalRecord(
            f"{arm}-{index:05d}",
            structure,
            energy,
            properties={"e_above_hull": hull_energy, "new_distinct": index in new, "unphysical": flag},
        )
        for index, (structure, energy, hull_energy, flag) in enumerate(zip(structures, energies, above, unphysical))
    ]
    args.output.mkdir(parents=True, exist_ok=True)
    plain = args.output / f"{arm}{suffix}.extxyz"
    write_extxyz(frames, plain)
    with open(plain, "rb") as source, gzip.GzipFile(plain.with_suffix(".extxyz.gz"), "wb", mtime=0) as target:
        shutil.copyfileobj(source, target)
    plain.unlink()
    row = {}
    if args.leave_out:
        formula = [k for k in physical if structures[k].composition.reduced_formula == args.leave_out]
        distinct = earlier_matches([structures[k] for k in formula], [])
        row["left_out"] = {
            "formula": args.leave_out,
            "database_crystals_left_out": len(left_out),
            "converged_of_formula": len(formula),
            "distinct_of_formula": sum(match is None for match in distinct),
            "matching_a_left_out_database_crystal": earlier_matches(
                [structures[k] for k in formula], [r.structure for r in left_out], among_candidates=False
            ).count(-1),
            "lowest_e_above_hull_of_formula": lowest([above[k] for k in formula]),
        }
    total_cpu = proposing_cpu + cpu
    return row | {
        "proposed": proposed,
        "relaxed": len(candidates),
        "converged": len(converged),
        "unphysical": sum(unphysical),
        "new_distinct": len(new),
        "on_or_below_hull": len([k for k in new if above[k] <= ON_HULL]),
        "within": near,
        "within_25_meV_interval": poisson_interval(close),
        "new_compositions": sorted({structures[k].composition.reduced_formula for k in new_compositions}),
        "new_compositions_within_25_meV": len([k for k in new_compositions if above[k] <= WINDOWS[0]]),
        "relax_wall_seconds": round(wall, 1),
        "relax_cpu_seconds": round(cpu, 1),
        "proposing_cpu_seconds": round(proposing_cpu, 1),
        "cpu_seconds_per_new_within_25_meV": round(total_cpu / close, 1) if close else None,
        "lowest_e_above_hull_new": lowest([above[k] for k in new]),
        "formulas_within_100_meV": sorted({structures[k].composition.reduced_formula for k in new if above[k] <= 0.1}),
        "known_phases_regenerated": known_matches([structures[k] for k in physical], known_phases(ELEMENTS)),
    }


TABLE_COLUMNS = (
    "arm",
    "seed",
    "proposed",
    "relaxed",
    "converged",
    "new distinct",
    "on/below hull",
    "≤ 25 meV [95 %]",
    "≤ 100 meV",
    "new compositions (≤ 25 meV)",
    "lowest new E_hull (meV/atom)",
    "proposing CPU s",
    "relax CPU s",
    "known phases regenerated",
)


def markdown_table(output: Path) -> str:
    """The rows of every ``table-seed*.json`` in ``output`` as a Markdown table, one per left-out formula."""
    tables = [json.loads(path.read_text()) for path in sorted(output.glob("table-seed*.json"))]
    blocks = []
    for left_out in sorted({table["left_out"] or "" for table in tables}):
        columns = TABLE_COLUMNS + (("crystals of the left-out formula",) if left_out else ())
        lines = [
            f"Budget {tables[0]['budget']}; {'without ' + left_out if left_out else 'the full database'}.",
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
        ]
        rows = [
            (arm, table["seed"], row)
            for table in tables
            if (table["left_out"] or "") == left_out
            for arm, row in table["arms"].items()
        ]
        for arm, seed, row in sorted(rows, key=lambda item: (item[0], item[1])):
            low, high = row["within_25_meV_interval"]
            lowest_new = row["lowest_e_above_hull_new"]
            known = ", ".join(f"{phase} {count}" for phase, count in row["known_phases_regenerated"].items())
            cells = [
                arm,
                seed,
                row["proposed"],
                row["relaxed"],
                row["converged"],
                row["new_distinct"],
                row["on_or_below_hull"],
                f"{row['within']['25 meV']} [{low}, {high}]",
                row["within"]["100 meV"],
                f"{len(row['new_compositions'])} ({row['new_compositions_within_25_meV']})",
                "–" if lowest_new is None else round(1000 * lowest_new),
                round(row["proposing_cpu_seconds"]),
                round(row["relax_cpu_seconds"]),
                known,
            ]
            if left_out:
                formula = row["left_out"]
                cells.append(
                    f"{formula['converged_of_formula']} ({formula['distinct_of_formula']} distinct, "
                    f"{formula['matching_a_left_out_database_crystal']} match left-out ones)"
                )
            lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def main() -> None:
    """Run the arms and print the table as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arms = ["random", "perturbed", "exchanged", *GENERATOR_ARMS]
    parser.add_argument("--arms", nargs="+", default=arms, choices=arms)
    parser.add_argument("--budget", type=int, default=1000, help="Relaxations per arm.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--strain", type=float, default=0.05, help="Largest strain component of `perturbed`, `exchanged`."
    )
    parser.add_argument("--rattle", type=float, default=0.2, help="Rattle σ of `perturbed`, `exchanged` (Å).")
    parser.add_argument(
        "--leave-out", metavar="FORMULA", help="Start the arms without this reduced formula's crystals."
    )
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/discovery"))
    parser.add_argument("--again", action="store_true", help="Redo arms the table already has for this budget.")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/discovery/work"), help="Models, samples.")
    parser.add_argument(
        "--markdown", action="store_true", help="Print the tables in --output as Markdown; run nothing."
    )
    parser.add_argument(
        "--rejudge", action="store_true", help="Count the known phases again in the tables of --output; relax nothing."
    )
    args = parser.parse_args()
    if args.markdown:
        print(markdown_table(args.output))
        return
    if args.rejudge:
        rejudge_known_phases(args.output)
        return
    records = load_bise_database()
    if args.leave_out and args.leave_out not in {r.structure.composition.reduced_formula for r in records}:
        parser.error(f"--leave-out {args.leave_out}: no database crystal has this reduced formula (e.g. Bi2Se3, BiSe)")
    settings = RelaxSettings.from_dict(bise_build_record()["relax"]["settings"])
    references = elemental_energies(records)
    table_path = args.output / f"table{run_suffix(args)}.json"
    table = json.loads(table_path.read_text()) if table_path.exists() else {"arms": {}}
    if table.get("budget", args.budget) != args.budget:
        table = {"arms": {}}  # rows of another budget do not compare
    for arm in args.arms:
        if arm in table["arms"] and not args.again:
            print(f"{arm}: done in {table_path} (--again to redo it)", file=sys.stderr)
            continue
        row = run_arm(arm, args, records, settings, references)
        table = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "date": time.strftime("%Y-%m-%d"),
            "budget": args.budget,
            "seed": args.seed,
            "left_out": args.leave_out,
            "reference": f"the shipped database: {len(records)} crystals, {settings.energy_scale()}",
            "arms": table["arms"] | {arm: row},
        }
        table_path.write_text(json.dumps(table, indent=2) + "\n")  # each arm kept as it finishes: a rerun resumes
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
