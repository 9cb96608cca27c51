"""Benchmark: the crystal ↔ voxel representation, without any neural network.

Measures, in one run on this machine:

* the round trip (encode → decode → StructureMatcher 0.2/0.3/5°) on the V–O dataset (elements V,O) and on the
  1–3-element rows of the MP-20 subset (each structure with its own elements): coverage of the
  representation's limits, match rate, failures by reason, encode and decode speed;
* the fast encoder against the naive reference that does what the original code does (ASE minimum-image
  distances from every atom to every grid point), on the same seeded sample of V–O structures: structures per
  second of each and their ratio (the naive encoder needs seconds per structure, so the sample is small);
* how many structures fit the 15 Å site box with the paper's box convention and with ours.

Usage: ``python benchmarks/bench_representation.py [--naive-sample 5] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from aiida_ccdcgan.dataset import read_dataset
from aiida_ccdcgan.representation import VoxelConfig, canonical_crystal, lattice_voxels, own_elements, site_voxels
from aiida_ccdcgan.representation.encode import canonical_cell
from aiida_ccdcgan.representation.reference import naive_lattice_voxel, naive_site_voxels
from aiida_ccdcgan.representation.roundtrip import roundtrip

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _fast_rate(structures, config: VoxelConfig, repeats: int = 1, batch_size: int = 32) -> float:
    """Structures per second of the fast encoder (canonical frame + site and lattice voxels)."""
    start = time.perf_counter()
    for _ in range(repeats):
        for i in range(0, len(structures), batch_size):
            crystals = [canonical_crystal(s, config) for s in structures[i : i + batch_size]]
            site_voxels(crystals, config)
            lattice_voxels(crystals, config)
    return repeats * len(structures) / (time.perf_counter() - start)


def encoder_speeds(structures, config: VoxelConfig, naive_sample: int, seed: int = 0) -> dict:
    """Time the naive encoder on a seeded random sample and the fast one on the same sample, in the same run.

    The fast encoder's throughput on all ``structures`` is reported too.
    """
    rng = np.random.default_rng(seed)
    sample = [structures[i] for i in rng.choice(len(structures), naive_sample, replace=False)]
    start = time.perf_counter()
    for structure in sample:
        crystal = canonical_crystal(structure, config)
        naive_site_voxels(crystal, config)
        naive_lattice_voxel(crystal, config)
    naive = len(sample) / (time.perf_counter() - start)
    fast_same = _fast_rate(sample, config, repeats=200)
    return {
        "naive_structures_per_s": round(naive, 4),
        "fast_structures_per_s_same_sample": round(fast_same, 1),
        "speedup": round(fast_same / naive),
        "sample": len(sample),
        "sample_mean_atoms": round(sum(len(s) for s in sample) / len(sample), 2),
        "fast_structures_per_s_all": round(_fast_rate(structures, config), 1),
        "all": len(structures),
        "all_mean_atoms": round(sum(len(s) for s in structures) / len(structures), 2),
    }


def box_coverage(structures, elements) -> dict:
    """Fraction of structures whose atoms fit the site box: the paper's convention against ours.

    Paper: Cartesian positions as stored in the file (in the canonical frame), centroid at the box centre.
    Ours: compact periodic images, bounding box at the centre (:func:`canonical_crystal`).
    """
    fits = {"paper_centroid_as_stored": 0, "ours_compact_bounding_box": 0}
    for structure in structures:
        config = VoxelConfig(elements=tuple(elements or own_elements(structure)))
        limit = config.box_length / 2 - config.cutoff
        cell, signs = canonical_cell(structure.lattice.matrix)
        stored = (structure.frac_coords * signs) @ cell
        fits["paper_centroid_as_stored"] += np.abs(stored - stored.mean(axis=0)).max() < limit
        fits["ours_compact_bounding_box"] += np.abs(canonical_crystal(structure, config).positions).max() < limit
    return {name: round(count / len(structures), 4) for name, count in fits.items()}


def main():
    """Run the benchmark and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--naive-sample", type=int, default=5, help="Structures for the naive encoder.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()

    vo = [
        r.structure
        for r in read_dataset("vo-csv", DATA / "vo_imatgen_dft.csv.gz", energy_column="", group_key_column="")
    ]
    mp20 = [r.structure for r in read_dataset("cdvae-csv", DATA / "mp20_subset_trainval.csv.gz", energy_column="")]
    mp20_small = [s for s in mp20 if len(s.composition.elements) <= 3]
    start = time.perf_counter()
    results = {
        "machine": f"{platform.node()}: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "roundtrip_vo": roundtrip(vo, ["V", "O"]),
        "roundtrip_mp20_1to3_elements": roundtrip(mp20_small, None),
        "encoder_vs_naive_vo": encoder_speeds(vo, VoxelConfig(elements=("V", "O")), args.naive_sample),
        "box_coverage_vo": box_coverage(vo, ["V", "O"]),
        "box_coverage_mp20_1to3_elements": box_coverage(mp20_small, None),
    }
    results["mp20_rows"] = {"all": len(mp20), "1to3_elements": len(mp20_small)}
    results["wall_s"] = round(time.perf_counter() - start, 1)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
