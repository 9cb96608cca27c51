"""Benchmark: what the shipped Bi–Se database finds by itself, and how fast it loads and stores.

The database is a substitution search (Bi and Se on the sites of every AFLOW binary prototype and iMatGen V–O
template, relaxed with SevenNet-0): the baseline any generator must go beyond. Reports, from the shipped file:

* its convex hull (the compositions on it and their formation energies);
* how many of its distinct crystals lie within 25 and 100 meV/atom of the hull (compounds and all), and over how
  many compositions;
* which known Bi–Se phases (``known_phases.json``) it contains (StructureMatcher 0.2/0.3/5°), with their energy
  above the hull;
* the wall time of ``load_bise_database()`` and, in a throw-away ``verdi presto`` profile, of
  ``tools.shipped.bise_database()`` (the SinglefileData and the Group of StructureData, stored in one transaction).

Usage: ``python benchmarks/bench_database.py [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from pymatgen.analysis.structure_matcher import StructureMatcher

from aiida_ccdcgan.dataset.shipped import bise_build_record, known_phases, load_bise_database
from aiida_ccdcgan.thermodynamics import phase_diagram

BIN = Path(sys.executable).parent
WINDOWS = (0.025, 0.100)
STORE = (
    "import time; from aiida import load_profile; load_profile(); "
    "from aiida_ccdcgan.tools.shipped import bise_database; "
    "start = time.perf_counter(); dataset, group = bise_database(); "
    "print(time.perf_counter() - start, group.count())"
)


def findings(records) -> dict:
    """Hull, crystals near it and known phases of ``records`` (CrystalRecords with ``e_above_hull``)."""
    diagram = phase_diagram([(r.structure.composition, r.formation_energy) for r in records], ["Bi", "Se"])
    hull = sorted(
        (entry.composition.reduced_formula, round(diagram.get_form_energy_per_atom(entry), 4))
        for entry in diagram.stable_entries
    )
    near = {}
    for window in WINDOWS:
        close = [r for r in records if r.properties["e_above_hull"] <= window]
        compounds = [r for r in close if len(r.structure.composition.elements) == 2]
        near[f"{round(window * 1000)} meV"] = {
            "crystals": len(close),
            "compounds": len(compounds),
            "compositions": len({r.structure.composition.reduced_formula for r in compounds}),
        }
    matcher = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5)
    known = {}
    for name, structure in known_phases(["Bi", "Se"]).items():
        formula = structure.composition.reduced_formula
        matches = [
            r
            for r in records
            if r.structure.composition.reduced_formula == formula and matcher.fit(structure, r.structure)
        ]
        known[name] = {
            "composition": formula,
            "found": [r.source_id for r in matches],
            "e_above_hull": [round(r.properties["e_above_hull"], 4) for r in matches],
        }
    compositions = Counter(r.structure.composition.reduced_formula for r in records)
    return {
        "crystals": len(records),
        "compositions": len(compositions),
        "most_common_compositions": compositions.most_common(8),
        "hull": hull,
        "near_hull": near,
        "known_phases": known,
    }


def store_seconds() -> tuple[float, int]:
    """Wall time of storing the shipped database in a fresh ``verdi presto`` profile, and the Group's size."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "AIIDA_PATH": folder}
        subprocess.run([BIN / "verdi", "presto", "--profile-name", "bench"], env=env, check=True, capture_output=True)
        output = subprocess.run(
            [sys.executable, "-c", STORE], env=env, check=True, capture_output=True, text=True
        ).stdout
    seconds, count = output.split()[-2:]
    return float(seconds), int(count)


def main() -> None:
    """Run the measurements and print them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    start = time.perf_counter()
    records = load_bise_database()
    load = time.perf_counter() - start
    store, stored = store_seconds()
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "build": {key: bise_build_record()[key] for key in ("templates", "substituted", "stored", "summary")},
        "load_seconds": round(load, 2),
        "store_seconds": round(store, 2),
        "stored": stored,
        **findings(records),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
