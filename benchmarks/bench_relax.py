"""Benchmark: the batched relaxation route against one-at-a-time ASE relaxation, same cells, side by side in one run.

Two sets of Bi–Se cells:

* ``small``: 100 small crystals (2–6 atoms) from eight prototypes (Bi2Se3 R-3m, BiSe rock salt / CsCl / zinc blende,
  Bi2Se and BiSe2 CdI2-type, Bi A7, Se A8, and 2×1×1 supercells), each strained (±3 %) and rattled (±0.09 Å) with its
  own seed; fmax 0.05 eV/Å, ≤ 300 steps (the ``moderate`` relax protocol);
* ``templates``: 200 crystals of 2–20 atoms made as the database builder makes them — Bi and Se on both
  assignments of V–O templates (../shared/data/vo_imatgen_dft.csv.gz), bond-rescaled, the paper's limits; a
  seeded draw, unrelaxed; fmax 0.1 eV/Å, ≤ 150 steps (the ``fast`` protocol the database and the loop use).

Arms, each relaxing a whole set with FIRE and a Fréchet cell filter:

1. ``serial-1-thread``: a plain ASE loop in this process with ``torch.set_num_threads(1)`` (the best one-at-a-time
   loop on this machine);
2. ``ase-2-workers``: ``ccdcgan-relax`` with ``route: ase`` (one ASE optimiser per crystal, 2 processes × 1 thread);
3. ``batched``: ``ccdcgan-relax`` with its defaults (``route: batched``, 2 processes × 1 thread, 64 atoms per batch).

The ``ccdcgan-relax`` arms are timed as the CalcJob runs them: a new process, imports and model loading included.
Each arm reports seconds, structures per minute, statuses, peak memory of its processes, and the energy per atom
against the serial arm (median and largest difference over crystals both converged). Then Bi2Se3's formation
energy against relaxed Bi (A7) and Se (A8) with each offline model, each SevenNet model's speed on the first
24 small cells (batched route), and the cost of one SevenNet-0 call by batch size (where the time goes).

Resumable: each finished arm is saved to ``<output>/benchmark.json`` at once and skipped when the benchmark runs
again (``--fresh`` starts over).

Usage: ``python benchmarks/bench_relax.py [--small 100] [--templates 200] [--output benchmarks/results/relax]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
from ase.io import read, write
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from aiida_ccdcgan.dataset import read_dataset
from aiida_ccdcgan.dataset.templates import binary_templates, substituted_records
from aiida_ccdcgan.relaxation import RelaxSettings, relax_batch
from aiida_ccdcgan.thermodynamics import formation_energy_per_atom, reference_structure

ROOT = Path(__file__).resolve().parents[1]
SETS = {"small": {"fmax": 0.05, "max_steps": 300}, "templates": {"fmax": 0.1, "max_steps": 150}}
"""Each set's convergence settings (the ``moderate`` and ``fast`` relax protocols)."""


def prototypes() -> list[Structure]:
    """The Bi–Se prototype cells the small set perturbs."""
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


def template_cells(count: int, vo_csv: Path, seed: int = 0) -> list:
    """``count`` Bi–Se crystals substituted into V–O templates as the database builder makes them (seeded draw)."""
    templates = binary_templates(read_dataset("vo-csv", vo_csv))
    rng = np.random.default_rng(seed)
    chosen = [templates[i] for i in rng.permutation(len(templates))[:count]]
    records = substituted_records(chosen, ["Bi", "Se"])[:count]
    return [AseAtomsAdaptor.get_atoms(record.structure) for record in records]


class PeakMemory:
    """The largest resident memory (MB) of a process and its children, sampled every 0.2 s while in use."""

    def __init__(self, pid: int):
        import psutil

        self.process, self.peak, self._stop = psutil.Process(pid), 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()


def serial_arm(cells, settings: RelaxSettings) -> dict:
    """Relax ``cells`` one after another with plain ASE in this process, one torch thread."""
    import torch
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    from aiida_ccdcgan.relaxation.engine import make_calculator

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with PeakMemory(os.getpid()) as memory:
        start = time.perf_counter()
        calculator = make_calculator(settings)
        statuses, energies = [], []
        for atoms in cells:
            atoms = atoms.copy()
            atoms.calc = calculator
            try:
                converged = FIRE(FrechetCellFilter(atoms), logfile=None).run(
                    fmax=settings.fmax, steps=settings.max_steps
                )
                statuses.append("converged" if converged else "not_converged")
                energies.append(atoms.get_potential_energy() / len(atoms))
            except Exception:  # noqa: BLE001 — counted as failed, as the script would
                statuses.append("failed")
                energies.append(float("nan"))
        seconds = time.perf_counter() - start
    torch.set_num_threads(threads)
    return {"seconds": round(seconds, 1), "statuses": statuses, "energies": energies, "peak_mb": round(memory.peak)}


def script_arm(cells, settings: RelaxSettings, folder: Path) -> dict:
    """Relax ``cells`` with the ``ccdcgan-relax`` script in a new process, as the CalcJob does."""
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "cells.extxyz", cells, format="extxyz")
    (folder / "settings.json").write_text(json.dumps(settings.to_dict()))
    command = [str(Path(sys.executable).parent / "ccdcgan-relax"), "settings.json", "cells.extxyz", "--output", "out"]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with PeakMemory(process.pid) as memory:
        _, errors = process.communicate()
    seconds = time.perf_counter() - start
    if process.returncode:
        raise RuntimeError(f"ccdcgan-relax failed ({process.returncode}): {errors[-2000:]}")
    frames = read(folder / "out" / "relaxed.extxyz", index=":")
    return {
        "seconds": round(seconds, 1),
        "statuses": [frame.info["status"] for frame in frames],
        "energies": [frame.info["energy_per_atom"] for frame in frames],
        "peak_mb": round(memory.peak),
    }


def summarise(arm: dict, serial: dict | None, count: int) -> dict:
    """Counts, speed, and energy differences to the serial arm over crystals both converged."""
    statuses = arm.pop("statuses")
    energies = arm.pop("energies")
    arm["structures_per_minute"] = round(60 * count / arm["seconds"], 1)
    arm["statuses"] = {status: statuses.count(status) for status in sorted(set(statuses))}
    arm["per_crystal"] = {"statuses": statuses, "energies": energies}
    if serial is not None:
        both = [
            abs(a - b)
            for a, b, s, t in zip(
                energies, serial["per_crystal"]["energies"], statuses, serial["per_crystal"]["statuses"]
            )
            if s == t == "converged"
        ]
        arm["energy_difference"] = {
            "crystals": len(both),
            "median": float(np.median(both)) if both else None,
            "max": float(np.max(both)) if both else None,
        }
        arm["same_status"] = sum(s == t for s, t in zip(statuses, serial["per_crystal"]["statuses"]))
    return arm


def bi2se3_formation_energy(potential: str, model: str) -> dict:
    """E_f of Bi2Se3 (R-3m) against Bi (A7) and Se (A8), all relaxed with one model (fmax 0.05)."""
    structures = [prototypes()[0], reference_structure("Bi"), reference_structure("Se")]
    settings = RelaxSettings(potential=potential, model=model)
    results = relax_batch([AseAtomsAdaptor.get_atoms(s) for s in structures], settings)
    compound, bismuth, selenium = (r.energy_per_atom for r in results)
    return {
        "energy_scale": settings.energy_scale(),
        "statuses": [r.status.value for r in results],
        "formation_energy": round(formation_energy_per_atom("Bi2Se3", compound, {"Bi": bismuth, "Se": selenium}), 4),
        "pbe": -0.3935,
    }


def call_costs(cells, sizes=(4, 8, 16, 32, 64, 128), repeats: int = 5) -> dict:
    """Where the batched route's time goes: the seconds of one SevenNet-0 call (energy, forces, stress) on the first
    small cells filling each of ``sizes`` atoms, and of one call of ASE's SevenNetCalculator on one 2- and one 5-atom
    cell — the one-at-a-time loop's unit of work; 1 torch thread, ``repeats`` calls each after a warm-up."""
    import torch
    import torch_sim as ts
    from sevenn.calculator import SevenNetCalculator

    from aiida_ccdcgan.relaxation.batch_models import make_batch_model

    torch.set_num_threads(1)
    model = make_batch_model(RelaxSettings())

    def timed(call) -> float:
        call()
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        return (time.perf_counter() - start) / repeats

    batched = []
    for size in sizes:
        chosen = []
        for cell in cells:
            if chosen and sum(map(len, chosen)) + len(cell) > size:
                break
            chosen.append(cell)
        state = ts.initialize_state(chosen, model.device, model.dtype)
        seconds = timed(lambda state=state: model(state))
        atoms = sum(map(len, chosen))
        batched.append({"crystals": len(chosen), "atoms": atoms, "ms_per_call": round(seconds * 1e3, 1)})
        batched[-1]["ms_per_atom"] = round(seconds * 1e3 / atoms, 2)
    calculator, ase_calls = SevenNetCalculator("7net-0"), {}
    for size in (2, 5):
        atoms = next(cell.copy() for cell in cells if len(cell) == size)
        atoms.calc = calculator

        def ase_call(atoms=atoms):
            atoms.positions[0, 0] += 1e-4  # a new geometry: the calculator must evaluate again
            atoms.get_forces()
            atoms.get_stress()

        ase_calls[f"{size}_atoms_ms"] = round(timed(ase_call) * 1e3, 1)
    return {"batched_calls": batched, "ase_calls": ase_calls, "threads": 1}


def main() -> None:
    """Run the arms side by side, saving each as it finishes, and print the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=100, help="Cells in the small set.")
    parser.add_argument("--templates", type=int, default=200, help="Crystals in the template set.")
    parser.add_argument("--vo-csv", type=Path, default=ROOT.parent / "shared" / "data" / "vo_imatgen_dft.csv.gz")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "relax")
    parser.add_argument("--fresh", action="store_true", help="Forget the arms of an earlier run.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.output.mkdir(parents=True, exist_ok=True)
    saved = args.output / "benchmark.json"
    result = json.loads(saved.read_text()) if saved.is_file() and not args.fresh else {}
    result |= {
        "machine": f"{platform.node()} · {os.cpu_count()} cores · {platform.processor() or platform.machine()}",
        "date": str(date.today()),
        "python": sys.version.split()[0],
    }
    result.setdefault("sets", {})

    def save() -> None:
        saved.write_text(json.dumps(result, indent=2))

    cells = {"small": benchmark_cells(args.small), "templates": template_cells(args.templates, args.vo_csv)}
    for name, cell_list in cells.items():
        record = result["sets"].setdefault(name, {"count": len(cell_list), "settings": SETS[name], "arms": {}})
        record["atoms"] = [min(len(c) for c in cell_list), max(len(c) for c in cell_list)]
        arms = record["arms"]
        settings = RelaxSettings(**SETS[name])
        plan = {
            "serial-1-thread": (serial_arm, (cell_list, settings)),
            "ase-2-workers": (
                script_arm,
                (cell_list, RelaxSettings(**SETS[name], route="ase"), args.output / name / "ase"),
            ),
            "batched": (script_arm, (cell_list, settings, args.output / name / "batched")),
        }
        for arm, (function, arguments) in plan.items():
            if arm in arms:
                continue
            print(f"{name}: {arm} …", flush=True)
            arms[arm] = summarise(function(*arguments), arms.get("serial-1-thread"), len(cell_list))
            save()
        serial = arms["serial-1-thread"]["seconds"]
        record["speedup_vs_serial_1_thread"] = {arm: round(serial / arms[arm]["seconds"], 2) for arm in arms}
        save()
    models = result.setdefault("models", {})
    for potential, model in (("sevennet", "7net-0"), ("sevennet", "7net-l3i5"), ("chgnet", "0.3.0")):
        key = f"{potential}:{model}"
        if key not in models:
            models[key] = bi2se3_formation_energy(potential, model)
            if potential == "sevennet":
                folder = args.output / "models" / model
                timing = script_arm(cells["small"][:24], RelaxSettings(model=model, **SETS["small"]), folder)
                models[key]["small_24"] = summarise(timing, None, 24)
                models[key]["small_24"].pop("per_crystal")
            save()
    if "calls" not in result:
        result["calls"] = call_costs(cells["small"])
        save()
    print(json.dumps({k: v for k, v in result.items() if k != "sets"} | {"sets": _brief(result["sets"])}, indent=2))


def _brief(sets: dict) -> dict:
    """The sets without per-crystal columns (for the terminal)."""
    return {
        name: {
            **{k: v for k, v in record.items() if k != "arms"},
            "arms": {
                arm: {k: v for k, v in values.items() if k != "per_crystal"} for arm, values in record["arms"].items()
            },
        }
        for name, record in sets.items()
    }


if __name__ == "__main__":
    main()
