"""Benchmark: train a protocol on the V–O DFT data and measure the models' quality and speed.

Runs exactly what the ``ccdcgan.train`` and ``ccdcgan.sample`` CalcJobs run (the ``ccdcgan-train`` and
``ccdcgan-sample`` console scripts), on ../shared/data/vo_imatgen_dft.csv.gz split 90/10 by ``prototype_mp_id``
(seeded, so both substitutions of a template stay on one side), and records:

* reconstruction ratio of the held-out templates (encode → decode → StructureMatcher 0.2/0.3/5°);
* constraint MAE and R² on the held-out templates (DFT formation energies), for each crystal's graph as given
  and for the mean of its predictions over the constraint's cell orders; with ``crystal_energy.input``
  ``partial_rdfs`` (the `fast` protocol), also for the crystal energy network on the crystals' partial RDFs (the
  last of these is what screening and the candidates' energies use);
* wall time of each stage, time per training step and per sample, and sampling throughput (graphs/s, decoded
  and judged);
* the machine, the Keras backend and the thread count.

Usage: ``python benchmarks/bench_models.py [--protocol fast] [--train-limit N] [--samples 2000]
[--output benchmarks/results/models-fast]``. Set ``KERAS_BACKEND`` as the protocol's CalcJob would (the
protocol's ``environment_variables``); the script uses the protocol's value unless it is set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from aiida_ccdcgan.dataset import group_split, read_dataset
from aiida_ccdcgan.dataset.writers import write_extxyz
from aiida_ccdcgan.models.config import TrainingConfig
from aiida_ccdcgan.workflows.train import TrainBaseWorkChain

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "vo_imatgen_dft.csv.gz"
BIN = Path(sys.executable).parent


def write_split_dataset(path: Path, seed: int, train_limit: int | None) -> dict:
    """Write the V–O data as extended XYZ with a ``split`` per frame; return the counts."""
    records = read_dataset("vo-csv", DATA)
    split = group_split([r.group_key for r in records], (0.9, 0.1, 0.0), seed)
    train = list(np.random.default_rng(seed).permutation(split["train"]))[: train_limit or None]
    chosen = [(i, "train") for i in sorted(train)] + [(i, "validation") for i in sorted(split["validation"])]
    write_extxyz([dataclasses.replace(records[i], properties={"split": name}) for i, name in chosen], path)
    return {
        "train": len(train),
        "validation": len(split["validation"]),
        "templates": len(set(r.group_key for r in records)),
    }


def _steps(count: int, batch: int, epochs: int) -> int:
    """Optimizer steps of ``epochs`` passes over ``count`` samples in batches of ``batch``."""
    return epochs * -(-count // batch)


def main() -> None:
    """Run the benchmark and print (and optionally save) its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="fast")
    parser.add_argument("--train-limit", type=int, help="Use only this many training structures (seeded choice).")
    parser.add_argument("--samples", type=int, default=2000, help="Graphs to generate for the sampling throughput.")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/models"))
    args = parser.parse_args()
    inputs = TrainBaseWorkChain.get_protocol_inputs(args.protocol)
    config = TrainingConfig.from_dict(
        inputs["config"] | {"representation": {**inputs["config"]["representation"], "elements": ["V", "O"]}}
    )
    environment = {**os.environ, **inputs.get("options", {}).get("environment_variables", {})}
    environment.update({k: os.environ[k] for k in ("KERAS_BACKEND",) if k in os.environ})
    args.output.mkdir(parents=True, exist_ok=True)
    dataset = args.output / "vo.extxyz"
    counts = write_split_dataset(dataset, config.seed, args.train_limit)
    (args.output / "config.json").write_text(json.dumps(config.to_dict(), indent=2))

    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "ccdcgan-train"), str(args.output / "config.json"), str(dataset), "--output", str(args.output)],
        check=True,
        env=environment,
    )
    train_seconds = time.perf_counter() - start
    metrics = json.loads((args.output / "metrics.json").read_text())
    stages = metrics["stages"]
    used = metrics["dataset"]["train"]
    site, lattice = config.site_autoencoder, config.lattice_autoencoder
    site_steps = _steps(
        min(used, site.max_structures or used) * len(config.representation.elements), site.batch_size, site.epochs
    )
    lattice_steps = _steps(min(used, lattice.max_structures or used), lattice.batch_size, lattice.epochs)
    constraint_graphs = stages["constraint"].get("training_graphs", used)  # with every cell order
    constraint_steps = _steps(constraint_graphs, config.constraint.batch_size, config.constraint.epochs)

    start = time.perf_counter()
    subprocess.run(
        [
            str(BIN / "ccdcgan-sample"),
            str(args.output / "config.json"),
            str(args.output),
            "--count",
            str(args.samples),
            "--seed",
            "1",
            "--output",
            str(args.output / "samples"),
        ],
        check=True,
        env=environment,
    )
    sample_seconds = time.perf_counter() - start
    sampling = json.loads((args.output / "samples" / "sampling.json").read_text())

    result = {
        "machine": f"{platform.node()} · {os.cpu_count()} cores · {platform.processor() or platform.machine()}",
        "python": sys.version.split()[0],
        "backend": metrics["backend"],
        "keras": metrics["keras_version"],
        "protocol": args.protocol,
        "data": {**counts, **metrics["dataset"]},
        "reconstruction_validation": stages["autoencoders"]["reconstruction_validation"],
        "constraint_validation": stages["constraint"].get("validation"),
        "constraint_validation_cell_orders": stages["constraint"].get("validation_cell_orders"),
        "crystal_energy_validation": stages["constraint"].get("validation_crystal_energy"),
        "seconds": {stage: entry["seconds"] for stage, entry in stages.items()}
        | {"train_total": round(train_seconds, 1)},
        "ms_per_step": {
            "autoencoders (site + lattice)": round(
                1000 * stages["autoencoders"]["seconds"] / (site_steps + lattice_steps), 1
            ),
            "constraint": round(1000 * stages["constraint"]["seconds"] / constraint_steps, 2),
            "gan": round(1000 * stages["gan"]["seconds"] / config.gan.steps, 1),
        },
        "sampling": {
            "graphs": args.samples,
            "seconds": round(sample_seconds, 1),
            "graphs_per_s": round(args.samples / sample_seconds, 1),
            "outcomes": sampling.get("outcomes", sampling),
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    (args.output / "benchmark.json").write_text(text)


if __name__ == "__main__":
    main()
