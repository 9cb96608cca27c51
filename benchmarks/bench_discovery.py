"""Benchmark: discovery at an equal budget of relaxations, against the shipped Bi–Se database and its hull.

Every arm proposes crystals, relaxes ``--budget`` valid ones with the settings the shipped database was relaxed
with (its build record: SevenNet-0, the `fast` relax protocol) and is judged the same way against the database:

* ``random``: random symmetric Bi–Se crystals from PyXtal (random space group, composition and ≤ 20 atoms),
  kept when they pass the loop's validity check (``representation.validity``: ≤ 20 atoms, ≥ 1 Å³/atom, no two
  atoms closer than 2.0 Å) — the random-structure-search baseline;
* ``perturbed``: database crystals (drawn with replacement) with a random strain (each component of a symmetric
  strain uniform in ±``--strain``) and a rattle (Gaussian, σ ``--rattle`` Å), kept when valid — what a step around
  a training crystal gives without any generator.

The generator arms (``ccdcgan``, ``paper_gan``) and the leave-out runs of issue 38 are not here yet.

Per arm: proposed, valid (relaxed), converged, unphysical (formation energy more than 1 eV/atom below the database's
lowest: a hole of the potential, as the loop's assessment flags it); *new distinct* crystals — converged, physical,
compounds, matching no database crystal and no earlier one of the arm (StructureMatcher 0.2/0.3/5°, ``thermodynamics.earlier_matches``) —, and of those how
many lie on or below the database's hull (E_hull ≤ 1 meV/atom), within 25 and within 100 meV/atom; *new
compositions* (reduced formulas the database lacks) among them, and how many within 25 meV/atom; the relaxation's
wall and CPU time, and CPU seconds per new distinct crystal within 25 meV/atom. Counts come with exact 95 % Poisson
intervals. Formation energies use the elemental energies the database implies (E/atom − E_f, fitted over its
crystals), so they sit on the database's own scale. Each arm's relaxed crystals go to
``<output>/<arm>-seed<seed>.extxyz.gz`` with ``formation_energy``, ``e_above_hull`` (eV/atom) and ``status``.

Usage: ``pip install -e '.[bench]'`` (PyXtal), then ``python benchmarks/bench_discovery.py [--arms random perturbed]
[--budget 1000] [--seed 0] [--output benchmarks/results/discovery]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import resource
import shutil
import time
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from scipy.stats import chi2

from aiida_ccdcgan.dataset.records import CrystalRecord
from aiida_ccdcgan.dataset.shipped import bise_build_record, load_bise_database
from aiida_ccdcgan.dataset.writers import write_extxyz
from aiida_ccdcgan.relaxation import RelaxSettings, Status, relax_batch
from aiida_ccdcgan.representation.config import VoxelConfig
from aiida_ccdcgan.representation.validity import validity
from aiida_ccdcgan.thermodynamics import (
    earlier_matches,
    energies_above_hull,
    formation_energy_per_atom,
    unphysical_flags,
)

ELEMENTS = ("Bi", "Se")
ON_HULL = 0.001
WINDOWS = (0.025, 0.100)
MAX_TRIES = 200
"""Proposals per valid crystal before an arm gives up (PyXtal refuses many composition / space-group pairs)."""


def random_crystal(rng: random.Random, config: VoxelConfig) -> Structure | None:
    """One random symmetric Bi–Se crystal from PyXtal (its primitive cell), or None when PyXtal cannot place it."""
    from pyxtal import pyxtal
    from pyxtal.msg import Comp_CompatibilityError

    atoms = rng.randint(2, config.max_atoms)
    bismuth = rng.randint(1, atoms - 1)
    crystal = pyxtal()
    try:
        crystal.from_random(
            3, rng.randint(1, 230), list(ELEMENTS), [bismuth, atoms - bismuth], seed=rng.getrandbits(31)
        )
    except (Comp_CompatibilityError, RuntimeError, ValueError):
        return None
    if not crystal.valid:
        return None
    return crystal.to_pymatgen().get_primitive_structure()


def perturbed_crystal(rng: random.Random, database: list[Structure], strain: float, rattle: float) -> Structure:
    """A database crystal with a random symmetric strain (components uniform in ±``strain``) and a Gaussian rattle."""
    structure = rng.choice(database).copy()
    components = np.array([[rng.uniform(-strain, strain) for _ in range(3)] for _ in range(3)])
    deformation = np.eye(3) + (components + components.T) / 2
    lattice = Lattice(structure.lattice.matrix @ deformation)
    cartesian = lattice.get_cartesian_coords(structure.frac_coords)
    noise = np.array([[rng.gauss(0.0, rattle) for _ in range(3)] for _ in range(len(structure))])
    return Structure(lattice, structure.species, cartesian + noise, coords_are_cartesian=True)


def propose(arm: str, budget: int, seed: int, database: list[Structure], args) -> tuple[list[Structure], int]:
    """``budget`` valid crystals of ``arm`` and how many proposals it took."""
    rng = random.Random(f"{arm}-{seed}")
    config = VoxelConfig(elements=ELEMENTS)
    valid, proposed = [], 0
    while len(valid) < budget and proposed < budget * MAX_TRIES:
        proposed += 1
        if arm == "random":
            structure = random_crystal(rng, config)
        else:
            structure = perturbed_crystal(rng, database, args.strain, args.rattle)
        if structure is not None and validity(structure, config)[0] is None:
            valid.append(structure)
    return valid, proposed


def elemental_energies(records: list[CrystalRecord]) -> dict[str, float]:
    """The elemental energies per atom the database's formation energies imply (least squares over its crystals)."""
    fractions = np.array([[r.structure.composition.get_atomic_fraction(e) for e in ELEMENTS] for r in records])
    offsets = np.array([r.properties["energy_per_atom"] - r.formation_energy for r in records])
    solution, *_ = np.linalg.lstsq(fractions, offsets, rcond=None)
    return dict(zip(ELEMENTS, solution.tolist()))


def poisson_interval(count: int) -> list[float]:
    """Exact 95 % interval of a Poisson count."""
    low = 0.0 if count == 0 else chi2.ppf(0.025, 2 * count) / 2
    return [round(float(low), 1), round(float(chi2.ppf(0.975, 2 * count + 2) / 2), 1)]


def cpu_seconds() -> float:
    """CPU time of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_arm(arm: str, args, records: list[CrystalRecord], settings: RelaxSettings, references: dict) -> dict:
    """Propose, relax and judge one arm; write its relaxed crystals; return its row."""
    database = [r.structure for r in records]
    candidates, proposed = propose(arm, args.budget, args.seed, database, args)
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
    plain = args.output / f"{arm}-seed{args.seed}.extxyz"
    write_extxyz(frames, plain)
    with open(plain, "rb") as source, gzip.GzipFile(plain.with_suffix(".extxyz.gz"), "wb", mtime=0) as target:
        shutil.copyfileobj(source, target)
    plain.unlink()
    return {
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
        "cpu_seconds_per_new_within_25_meV": round(cpu / close, 1) if close else None,
        "lowest_e_above_hull_new": round(min((above[k] for k in new), default=float("nan")), 4),
        "formulas_within_100_meV": sorted({structures[k].composition.reduced_formula for k in new if above[k] <= 0.1}),
    }


def main() -> None:
    """Run the arms and print the table as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=["random", "perturbed"], choices=["random", "perturbed"])
    parser.add_argument("--budget", type=int, default=1000, help="Relaxations per arm.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strain", type=float, default=0.05, help="Largest strain component of `perturbed`.")
    parser.add_argument("--rattle", type=float, default=0.2, help="Rattle σ of `perturbed` (Å).")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/discovery"))
    args = parser.parse_args()
    records = load_bise_database()
    settings = RelaxSettings.from_dict(bise_build_record()["relax"]["settings"])
    references = elemental_energies(records)
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "budget": args.budget,
        "seed": args.seed,
        "reference": f"the shipped database: {len(records)} crystals, {settings.energy_scale()}",
        "arms": {arm: run_arm(arm, args, records, settings, references) for arm in args.arms},
    }
    text = json.dumps(results, indent=2)
    (args.output / f"table-seed{args.seed}.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
