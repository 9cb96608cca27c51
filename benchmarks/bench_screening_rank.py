"""Benchmark: can the loop's models tell which decoded candidates will relax near the hull?

Screening candidates by a model's energy before relaxing them only pays if the model ranks them. This trains the
``ccdcgan`` arm's models of ``bench_discovery.py`` (the `fast` loop's generator on the shipped Bi–Se database, seed
``--seed``), samples ``--graphs`` graphs with every valid crystal's predicted formation energy (the crystal energy
network on its partial RDFs, as screening uses it; and the constraint on its graph), marks the candidates that match
a database crystal or an earlier candidate before relaxation, relaxes ``--relax`` valid candidates drawn at random
(seeded) with the database's settings, and compares the predicted energy above the database's hull with the relaxed
one: Spearman's ρ, and how many of the best-predicted quarter and half end within 25 and 100 meV/atom.

Usage: ``python benchmarks/bench_screening_rank.py [--seed 0] [--graphs 3000] [--relax 300] [--output
benchmarks/results/discovery/screening-rank-seed0.json]``; models and samples go to ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from ase.io import read
from pymatgen.io.ase import AseAtomsAdaptor
from scipy.stats import spearmanr

from aiida_ccdcgan.dataset.shipped import bise_build_record, load_bise_database
from aiida_ccdcgan.dataset.writers import write_extxyz
from aiida_ccdcgan.relaxation import RelaxSettings, Status, relax_batch
from aiida_ccdcgan.thermodynamics import earlier_matches, energies_above_hull, formation_energy_per_atom

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_discovery import ELEMENTS, elemental_energies, loop_training_config  # noqa: E402


def main() -> None:
    """Train, sample, relax a random share of the valid candidates, and write the ranking figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--graphs", type=int, default=3000)
    parser.add_argument("--relax", type=int, default=300)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/discovery/work/screening-rank"))
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/discovery/screening-rank-seed0.json"))
    args = parser.parse_args()
    records = load_bise_database()
    config, variables = loop_training_config("ccdcgan", args.seed)
    environment = {**os.environ, **variables}
    work = args.work / f"seed{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(config, indent=2))
    write_extxyz(records, work / "training.extxyz")
    scripts = Path(sys.executable).parent
    start = time.perf_counter()
    subprocess.run(
        [scripts / "ccdcgan-train", work / "config.json", work / "training.extxyz", "--output", work / "models"],
        check=True,
        env=environment,
    )
    samples = work / "samples"
    subprocess.run(
        [scripts / "ccdcgan-sample", work / "config.json", work / "models", "--count", str(args.graphs),
         "--seed", str(1000 * args.seed + 500), "--max-predicted-energy", "100", "--output", samples],
        check=True,
        env=environment,
    )  # fmt: skip
    frames = [a for a in read(samples / "candidates.extxyz", ":") if a.info["outcome"] == "valid"]
    structures = [AseAtomsAdaptor.get_structure(a) for a in frames]
    hull = [(r.structure.composition, r.formation_energy) for r in records]
    crystal = np.array([a.info.get("crystal_formation_energy", np.nan) for a in frames])
    graph = np.array([a.info.get("predicted_formation_energy", np.nan) for a in frames])
    predicted_above = energies_above_hull(
        [(s.composition, e if np.isfinite(e) else 9.0) for s, e in zip(structures, crystal)], ELEMENTS, hull
    )
    unlike = [match is None for match in earlier_matches(structures, [r.structure for r in records])]
    pick = random.Random(args.seed).sample(range(len(frames)), min(args.relax, len(frames)))
    results = relax_batch([frames[i] for i in pick], RelaxSettings.from_dict(bise_build_record()["relax"]["settings"]))
    references = elemental_energies(records)
    rows = []
    for index, result in zip(pick, results):
        if result.status != Status.CONVERGED:
            continue
        relaxed = AseAtomsAdaptor.get_structure(result.atoms)
        formation = formation_energy_per_atom(relaxed.composition, result.energy_per_atom, references)
        (above,) = energies_above_hull([(relaxed.composition, formation)], ELEMENTS, hull)
        rows.append((predicted_above[index], graph[index], above, unlike[index]))
    table = np.array([row[:3] for row in rows], dtype=float)
    order = np.argsort(table[:, 0])
    best = {
        f"best-predicted {share}": {
            "relaxed": int(len(order) * share),
            "within 25 meV": int((table[order[: int(len(order) * share)], 2] <= 0.025).sum()),
            "within 100 meV": int((table[order[: int(len(order) * share)], 2] <= 0.1).sum()),
        }
        for share in (0.25, 0.5, 1.0)
    }
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "seed": args.seed,
        "graphs": args.graphs,
        "valid": len(frames),
        "valid_unlike_database_and_each_other": int(sum(unlike)),
        "relaxed_converged": len(rows),
        "spearman_predicted_vs_relaxed_e_above_hull": round(float(spearmanr(table[:, 0], table[:, 2])[0]), 3),
        "spearman_graph_energy_vs_relaxed_e_above_hull": round(float(spearmanr(table[:, 1], table[:, 2])[0]), 3),
        "by_predicted_rank": best,
        "seconds": round(time.perf_counter() - start, 1),
    }
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
