"""Benchmark: batched MLIP relaxation (``ccdcgan-relax``) against one-at-a-time ASE relaxation, same cells, one run.

Cells: 100 small Bi–Se crystals (2–6 atoms) made from eight prototypes (Bi2Se3 R-3m, BiSe rock salt / CsCl / zinc
blende, Bi2Se and BiSe2 CdI2-type, Bi A7, Se A8, and 2×1×1 supercells), each strained (±3 %) and rattled
(±0.09 Å) with its own seed. Arms, each relaxing all 100 with FIRE + FrechetCellFilter, fmax 0.05, ≤ 300 steps:

1. ``serial``: a plain ASE loop in one process, torch's default thread count (what a script would do);
2. ``serial-1-thread``: the same loop with ``torch.set_num_threads(1)``;
3. ``batched``: ``ccdcgan-relax`` (what the ``ccdcgan.relax.mlip`` CalcJob runs) with 2 workers × 1 thread.

Then the Bi2Se3 formation energy against relaxed Bi (A7) and Se (A8) with each potential.

Usage: ``python benchmarks/bench_relax.py [--potential sevennet] [--count 100] [--output benchmarks/results/relax]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from ase.io import write
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from aiida_ccdcgan.relaxation import RelaxSettings, relax_batch
from aiida_ccdcgan.thermodynamics import formation_energy_per_atom, reference_structure


def prototypes() -> list[Structure]:
    """The Bi–Se prototype cells the benchmark perturbs."""
    bi2se3 = Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(4.14, 28.6), ["Bi", "Se", "Se"], [[0, 0, 0.4008], [0, 0, 0], [0, 0, 0.2117]]
    ).get_primitive_structure()
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.9), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    zincblende = Structure.from_spacegroup("F-43m", Lattice.cubic(6.4), ["Bi", "Se"], [[0, 0, 0], [0.25] * 3])
    cdi2 = Lattice.hexagonal(4.2, 6.5)
    return [
        bi2se3,
        rocksalt.get_primitive_structure(),
        Structure(Lattice.cubic(3.6), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        zincblende.get_primitive_structure(),
        Structure(cdi2, ["Se", "Bi", "Bi"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]),
        Structure(cdi2, ["Bi", "Se", "Se"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]),
        reference_structure("Bi"),
        reference_structure("Se"),
    ]


def benchmark_cells(count: int) -> list:
    """``count`` perturbed prototype cells as ASE atoms (seeded); every fourth one doubled along a."""
    cells, bases = [], prototypes()
    for index in range(count):
        rng = np.random.default_rng(index)
        structure = bases[index % len(bases)].copy()
        if index % 4 == 3 and len(structure) <= 4:
            structure.make_supercell([2, 1, 1])
        strain = rng.uniform(-0.03, 0.03, (3, 3))
        structure.lattice = Lattice(structure.lattice.matrix @ (np.eye(3) + 0.5 * (strain + strain.T)))
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.positions += rng.uniform(-0.09, 0.09, atoms.positions.shape)
        cells.append(atoms)
    return cells


def serial_arm(cells, settings: RelaxSettings, threads: int | None) -> dict:
    """Relax ``cells`` one after another with plain ASE in this process."""
    import torch
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    from aiida_ccdcgan.relaxation.engine import make_calculator

    default_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    calculator = make_calculator(settings)
    converged = 0
    for atoms in cells:
        atoms = atoms.copy()
        atoms.calc = calculator
        converged += bool(
            FIRE(FrechetCellFilter(atoms), logfile=None).run(fmax=settings.fmax, steps=settings.max_steps)
        )
    seconds = time.perf_counter() - start
    torch.set_num_threads(default_threads)
    return {"seconds": round(seconds, 1), "converged": converged, "threads": threads or default_threads}


def batched_arm(cells, settings: RelaxSettings, folder: Path) -> dict:
    """Relax ``cells`` with the ``ccdcgan-relax`` script, as the CalcJob does."""
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "cells.extxyz", cells, format="extxyz")
    (folder / "settings.json").write_text(json.dumps(settings.to_dict()))
    start = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "ccdcgan-relax"), "settings.json", "cells.extxyz", "--output", "out"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    summary = json.loads((folder / "out" / "relax.json").read_text())
    return {
        "seconds": round(seconds, 1),
        "converged": summary["statuses"].get("converged", 0),
        "workers": settings.workers,
    }


def bi2se3_formation_energy(potential: str) -> dict:
    """E_f of Bi2Se3 (R-3m) against Bi (A7) and Se (A8), all relaxed with ``potential``."""
    structures = [prototypes()[0], reference_structure("Bi"), reference_structure("Se")]
    results = relax_batch([AseAtomsAdaptor.get_atoms(s) for s in structures], RelaxSettings(potential=potential))
    compound, bismuth, selenium = (r.energy_per_atom for r in results)
    return {
        "statuses": [r.status.value for r in results],
        "energy_per_atom": {"Bi2Se3": compound, "Bi": bismuth, "Se": selenium},
        "formation_energy": round(formation_energy_per_atom("Bi2Se3", compound, {"Bi": bismuth, "Se": selenium}), 4),
    }


def main() -> None:
    """Run the arms side by side and print (and save) the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--potential", default="sevennet")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/relax"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cells = benchmark_cells(args.count)
    settings = RelaxSettings(potential=args.potential, workers=2, threads_per_worker=1)
    arms = {
        "batched": batched_arm(cells, settings, args.output / "batched"),
        "serial": serial_arm(cells, settings, None),
        "serial-1-thread": serial_arm(cells, settings, 1),
    }
    for arm in arms.values():
        arm["structures_per_minute"] = round(60 * len(cells) / arm["seconds"], 1)
    result = {
        "machine": f"{platform.node()} · {os.cpu_count()} cores · {platform.processor() or platform.machine()}",
        "python": sys.version.split()[0],
        "potential": settings.energy_scale(),
        "cells": len(cells),
        "atoms": [int(min(len(c) for c in cells)), int(max(len(c) for c in cells))],
        "arms": arms,
        "speedup_batched_vs_serial": round(arms["serial"]["seconds"] / arms["batched"]["seconds"], 2),
        "speedup_batched_vs_serial_1_thread": round(arms["serial-1-thread"]["seconds"] / arms["batched"]["seconds"], 2),
        "bi2se3_formation_energy": {name: bi2se3_formation_energy(name) for name in ("sevennet", "chgnet")},
    }
    text = json.dumps(result, indent=2)
    print(text)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "benchmark.json").write_text(text)


if __name__ == "__main__":
    main()
