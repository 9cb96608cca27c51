"""Benchmark: ``thermodynamics.earlier_matches`` against its definition, StructureMatcher.fit on every pair.

``earlier_matches`` decides which crystals are new (the loop's ``new_candidates``, the assessment's ``distinct``, the
discovery benchmark's arms). It reduces each crystal once (Niggli, then primitive) and matches the reduced cells;
the definition lets StructureMatcher reduce both crystals inside every ``fit``. Both run here side by side on the
same crystals — the first ``--candidates`` relaxed crystals of a committed discovery arm, against the shipped Bi–Se
database — and must give the same answer for every crystal; the JSON holds both times and their ratio.

Usage: ``python benchmarks/bench_matching.py [--candidates 200] [--output benchmarks/results/matching.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from aiida_ccdcgan.dataset.readers import read_extxyz
from aiida_ccdcgan.dataset.shipped import load_bise_database
from aiida_ccdcgan.thermodynamics import Criteria, earlier_matches

CANDIDATES = Path("benchmarks/results/discovery/budget-1000/ccdcgan_distinct-seed0.extxyz.gz")


def pairwise_matches(candidates: list[Structure], known: list[Structure]) -> list[int | None]:
    """What ``earlier_matches`` answers, by definition: -1 if a candidate fits a known crystal of its formula, else
    the index of the first earlier distinct candidate it fits, else None; one StructureMatcher.fit per pair."""
    matcher = StructureMatcher(**Criteria().matcher)
    kept: list[int] = []
    matches: list[int | None] = []
    for index, candidate in enumerate(candidates):
        formula = candidate.composition.reduced_formula
        same = [other for other in known if other.composition.reduced_formula == formula]
        match = -1 if any(matcher.fit(candidate, other) for other in same) else None
        if match is None:
            match = next((k for k in kept if matcher.fit(candidate, candidates[k])), None)
        if match is None:
            kept.append(index)
        matches.append(match)
    return matches


def main() -> None:
    """Time both on the same crystals, check they agree, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=200, help="How many relaxed crystals to match.")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/matching.json"))
    args = parser.parse_args()
    known = [record.structure for record in load_bise_database()]
    candidates = [record.structure for record in read_extxyz(CANDIDATES)][: args.candidates]
    started = time.perf_counter()
    reduced_once = earlier_matches(candidates, known)
    reduced_once_seconds = time.perf_counter() - started
    started = time.perf_counter()
    definition = pairwise_matches(candidates, known)
    definition_seconds = time.perf_counter() - started
    if reduced_once != definition:
        raise SystemExit("earlier_matches disagrees with StructureMatcher.fit pair by pair")
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "candidates": len(candidates),
        "known": len(known),
        "new": reduced_once.count(None),
        "matching_a_known_crystal": reduced_once.count(-1),
        "earlier_matches_seconds": round(reduced_once_seconds, 2),
        "pairwise_fit_seconds": round(definition_seconds, 2),
        "speed_up": round(definition_seconds / reduced_once_seconds, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
