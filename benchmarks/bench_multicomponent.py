"""Benchmark: the autoencoders of a protocol trained on MP-20, each structure with its own elements (issue 9).

The site autoencoder sees one element's channel at a time and the lattice autoencoder only the cell, so both
learn from crystals of any chemical system. This trains them with the protocol's autoencoder settings on the
MP-20 ``train`` rows of ../shared/data/mp20_subset_trainval.csv.gz (1 to 6 elements; each crystal in its own
sorted element list; the protocol's ``max_structures`` seeded subset) and measures the reconstruction of the
official ``val`` rows (encode → decode → StructureMatcher 0.2/0.3/5°, as the paper and ``bench_models.py``),
by number of elements, with the rows beyond the representation's limits counted too.

Then the constraint on the DFT labels: every representable crystal's graph in one layout with as many element slots
as the largest system (each crystal in its own sorted elements, the empty slots zero) and the element features of
its slots (:func:`~aiida_ccdcgan.models.graph.element_features`: which element a slot holds and its fraction); the
protocol's dense constraint trained on the ``train`` rows (one cell order), its MAE and R² on the ``val`` rows —
and, as the control that says what the graph adds, the same network given the element features only.

Usage: ``python benchmarks/bench_multicomponent.py [--protocol fast] [--output benchmarks/results/mp20]``.
Writes ``benchmark.json`` and the four autoencoder ``.keras`` files into the output folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from aiida_ccdcgan.dataset import read_dataset
from aiida_ccdcgan.models.config import TrainingConfig
from aiida_ccdcgan.models.graph import element_features
from aiida_ccdcgan.representation import own_elements
from aiida_ccdcgan.workflows.train import TrainBaseWorkChain

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp20_subset_trainval.csv.gz"


def main() -> None:
    """Train the autoencoders on MP-20 train, measure val reconstruction, print (and save) the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="fast")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/mp20"))
    args = parser.parse_args()
    inputs = TrainBaseWorkChain.get_protocol_inputs(args.protocol)
    os.environ.setdefault(
        "KERAS_BACKEND", inputs.get("options", {}).get("environment_variables", {}).get("KERAS_BACKEND", "tensorflow")
    )
    from aiida_ccdcgan.jobs.train import reconstruction
    from aiida_ccdcgan.models.bundle import ModelBundle
    from aiida_ccdcgan.models.inference import encode_crystals
    from aiida_ccdcgan.models.metrics import regression_metrics
    from aiida_ccdcgan.models.training import train_autoencoder, train_constraint
    from aiida_ccdcgan.representation import representable_crystals

    records = read_dataset("cdvae-csv", DATA)
    every_element = sorted({str(element) for record in records for element in record.structure.composition})
    config = TrainingConfig.from_dict(  # each system gets its own element list below
        inputs["config"] | {"representation": {**inputs["config"]["representation"], "elements": every_element}}
    )
    splits: dict[str, dict] = {name: defaultdict(list) for name in ("train", "val")}
    for record in records:
        splits[record.properties["split"]][own_elements(record.structure)].append(record)

    items: dict[str, dict] = {name: {} for name in splits}
    outside: dict[str, Counter] = {name: Counter() for name in splits}
    for name, systems in splits.items():
        for elements, members in systems.items():
            voxel_config = dataclasses.replace(config.representation, elements=elements)
            crystals, kept, skipped = representable_crystals([r.structure for r in members], voxel_config)
            outside[name].update(skipped)
            items[name][elements] = [{"record": members[i], "crystal": c} for i, c in zip(kept, crystals)]

    train = [(item["crystal"], elements) for elements, group in items["train"].items() for item in group]
    crystals = [crystal for crystal, _ in train]
    voxel_configs = [dataclasses.replace(config.representation, elements=elements) for _, elements in train]
    models, seconds = {}, {}
    for kind in ("site", "lattice"):
        start = time.perf_counter()
        encoder, decoder, _ = train_autoencoder(
            crystals, voxel_configs, kind, getattr(config, f"{kind}_autoencoder"), config.seed
        )
        seconds[f"{kind}_autoencoder"] = round(time.perf_counter() - start, 1)
        models[f"{kind}_encoder"], models[f"{kind}_decoder"] = encoder, decoder

    start = time.perf_counter()
    by_elements: dict[int, Counter] = defaultdict(Counter)
    for elements, group in items["val"].items():
        system = dataclasses.replace(
            config, representation=dataclasses.replace(config.representation, elements=elements)
        )
        result = reconstruction(group, ModelBundle(system, models))
        counts = by_elements[len(elements)]
        counts.update({"n": result["n"], "matched": result["matched"], **result["failures"]})
    seconds["reconstruction"] = round(time.perf_counter() - start, 1)

    start = time.perf_counter()
    slots = max(len(elements) for split in items.values() for elements in split)
    layout = dataclasses.replace(config.layout, n_elements=slots)
    constraint_data = {}
    for name, systems in items.items():
        graphs, features, energies = [], [], []
        for elements, group in systems.items():
            if not group:  # every crystal of the system beyond the representation's limits
                continue
            own = dataclasses.replace(layout, n_elements=len(elements))
            system = dataclasses.replace(config.representation, elements=elements)
            encoded = encode_crystals(
                [item["crystal"] for item in group], system, own, models["site_encoder"], models["lattice_encoder"]
            )
            lattice_latents, site_latents = own.from_graphs(encoded)
            padded = np.zeros((len(group), slots, site_latents.shape[-1]), dtype=np.float32)
            padded[:, : len(elements)] = site_latents
            graphs.append(layout.to_graphs(lattice_latents, padded))
            features += [element_features(item["record"].structure.composition, elements, slots) for item in group]
            energies += [item["record"].formation_energy for item in group]
        constraint_data[name] = (np.concatenate(graphs), np.stack(features), np.asarray(energies, dtype=np.float32))
    seconds["constraint_graphs"] = round(time.perf_counter() - start, 1)
    settings = dataclasses.replace(config.constraint, cell_orders=1)  # the cells as given: no reordered views here
    constraint = {"slots": slots, "graph_side": layout.side, "settings": dataclasses.asdict(settings)}
    for variant, keep_graph in (("graph_and_elements", True), ("elements_only", False)):
        start = time.perf_counter()
        graphs, features, energies = constraint_data["train"]
        model, _ = train_constraint(
            graphs if keep_graph else np.zeros_like(graphs), energies, settings, config.seed, features
        )
        graphs, features, energies = constraint_data["val"]
        predicted = model.predict([graphs if keep_graph else np.zeros_like(graphs), features], verbose=0)
        constraint[variant] = regression_metrics(predicted, energies)
        seconds[f"constraint_{variant}"] = round(time.perf_counter() - start, 1)
    total = sum((counts for counts in by_elements.values()), Counter())
    val_rows = sum(len(members) for members in splits["val"].values())
    result = {
        "machine": f"{platform.node()} · {os.cpu_count()} cores · {platform.processor() or platform.machine()}",
        "python": sys.version.split()[0],
        "backend": os.environ["KERAS_BACKEND"],
        "protocol": args.protocol,
        "data": {
            "train_rows": sum(len(m) for m in splits["train"].values()),
            "train_within_limits": len(crystals),
            "autoencoder_structures": min(len(crystals), config.site_autoencoder.max_structures or len(crystals)),
            "val_rows": val_rows,
            "outside_limits": {name: dict(counter) for name, counter in outside.items()},
        },
        "reconstruction_val": {
            "within_limits": total["n"],
            "matched": total["matched"],
            "ratio_within_limits": total["matched"] / total["n"],
            "ratio_of_all_val_rows": total["matched"] / val_rows,
            "failures": {k: v for k, v in total.items() if k not in ("n", "matched")},
            "by_number_of_elements": {k: dict(v) for k, v in sorted(by_elements.items())},
        },
        "constraint_val": constraint,
        "seconds": seconds,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        model.save(args.output / f"{name}.keras")
    text = json.dumps(result, indent=2)
    print(text)
    (args.output / "benchmark.json").write_text(text)


if __name__ == "__main__":
    main()
