"""What the crystal graph lacks for the formation energy: the constraint with and without the periodic neighbourhood.

On ../shared/data/vo_imatgen_dft.csv.gz (split 90/10 by ``prototype_mp_id``, seed 0), every crystal encoded in its six
cell orders through the shipped ``vo-fast`` autoencoders; the `fast` protocol's dense constraint (its settings, but
on all six orders) trained three ways, and the `fast` protocol's crystal energy network, judged on the 987 held-out
crystals, each crystal's prediction the mean over its six orders:

* ``graph``: the crystal graph alone — the constraint as it is;
* ``graph_and_true_rdfs``: the graph and the crystal's own partial radial distribution functions (V–V, V–O, O–O on
  the `fast` protocol's ``crystal_energy`` grid: 0.5–5.9 Å by 0.1 Å, Gaussian σ 0.3 Å, per atom; computed from the
  structure with its periodic images) — what knowing the periodic neighbourhood exactly gives;
* ``graph_to_rdfs_to_energy``: one network that predicts those RDFs from the graph (a head with an MSE loss of weight
  0.3 on the standardised RDFs) and the energy (Huber loss, δ 1 eV/atom) from the graph and its predicted RDFs — a
  function of the graph alone, so it could be back-propagated into the generator;
* ``true_rdfs_alone``: the crystal energy network of the `fast` protocol (``crystal_energy``, its settings exactly),
  the RDFs without the graph, one prediction per crystal — what screening and the candidates' energies use.

Each held-out crystal counts as ``near`` when one of its graphs lies within 0.1 (Euclidean) of a training graph —
another template that relaxed to the same crystal — and ``far`` otherwise. Run with ``KERAS_BACKEND=torch``
(~20 min on 2 cores); ``--train-limit`` for a quick run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from aiida_ccdcgan.dataset import group_split, read_dataset
from aiida_ccdcgan.models.config import TrainingConfig
from aiida_ccdcgan.workflows.train import TrainBaseWorkChain

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "vo_imatgen_dft.csv.gz"
NEAR_DISTANCE = 0.1
RDF_HEAD_WEIGHT = 0.3


def nearest_training_distance(graphs, owners, train_graphs, count: int, chunk: int = 256) -> np.ndarray:
    """For each of ``count`` crystals, the smallest distance between one of its graphs and any training graph."""
    train = train_graphs.reshape(len(train_graphs), -1).astype(np.float64)
    train_norms = (train**2).sum(axis=1)
    flat = graphs.reshape(len(graphs), -1).astype(np.float64)
    nearest = np.empty(len(flat))
    for start in range(0, len(flat), chunk):
        block = flat[start : start + chunk]
        squared = (block**2).sum(axis=1)[:, None] + train_norms[None, :] - 2 * block @ train.T
        nearest[start : start + chunk] = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
    result = np.full(count, np.inf)
    np.minimum.at(result, owners, nearest)
    return result


def build_graph_to_rdfs_to_energy(side: int, rdf_size: int, hidden_units, mean: float, scale: float):
    """Graph → RDF head (Dense 512, 512) and graph + predicted RDFs → energy (the dense constraint's layers)."""
    import keras
    from keras import layers

    graph = keras.Input((side, side, 1), name="graph")
    flat = layers.Flatten()(graph)
    x = flat
    for units in (512, 512):
        x = layers.LeakyReLU(0.2)(layers.Dense(units)(x))
    rdfs = layers.Dense(rdf_size, name="rdfs")(x)
    y = layers.Concatenate()([flat, rdfs])
    for units in hidden_units:
        y = layers.LeakyReLU(0.2)(layers.Dense(units)(y))
    energy = layers.Rescaling(scale, offset=mean, name="energy")(layers.Dense(1)(y))
    return keras.Model(graph, {"rdfs": rdfs, "energy": energy})


def main() -> None:
    """Run the three constraints and the crystal energy network side by side; print (and save) their held-out figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-limit", type=int, help="Use only this many training crystals (seeded choice).")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/constraint_inputs.json"))
    args = parser.parse_args()

    import keras

    from aiida_ccdcgan.models.inference import cell_order_graphs, crystal_rdf_features, mean_over_views
    from aiida_ccdcgan.models.metrics import regression_metrics
    from aiida_ccdcgan.models.pipeline import seed_everything
    from aiida_ccdcgan.models.pretrained import load_pretrained
    from aiida_ccdcgan.models.training import learning_rate_schedule, train_constraint, train_crystal_energy

    inputs = TrainBaseWorkChain.get_protocol_inputs("fast")
    config = TrainingConfig.from_dict(
        inputs["config"] | {"representation": {**inputs["config"]["representation"], "elements": ["V", "O"]}}
    )
    settings = dataclasses.replace(config.constraint, cell_orders=6)
    records = read_dataset("vo-csv", DATA)
    split = group_split([r.group_key for r in records], (0.9, 0.1, 0.0), config.seed)
    train = sorted(np.random.default_rng(config.seed).permutation(split["train"])[: args.train_limit or None])
    parts = {"train": train, "validation": split["validation"]}
    site_encoder, _ = load_pretrained("vo-fast", "site")
    lattice_encoder, _ = load_pretrained("vo-fast", "lattice")

    data, start = {}, time.perf_counter()
    for name, indices in parts.items():
        structures = [records[i].structure for i in indices]
        graphs, owners = cell_order_graphs(
            structures, config.representation, config.layout, site_encoder, lattice_encoder, settings.cell_orders
        )
        data[name] = {
            "graphs": graphs,
            "owners": owners,
            "energies": np.array([records[i].formation_energy for i in indices], dtype=np.float32),
            "rdfs": crystal_rdf_features(structures, config),
        }
    encoding_seconds = time.perf_counter() - start
    train_data, held_out = data["train"], data["validation"]
    rdf_mean, rdf_scale = train_data["rdfs"].mean(axis=0), train_data["rdfs"].std(axis=0) + 1e-3
    for part in data.values():
        part["view_rdfs"] = ((part["rdfs"] - rdf_mean) / rdf_scale)[part["owners"]]
    targets = train_data["energies"][train_data["owners"]]
    count = len(held_out["energies"])
    near = (
        nearest_training_distance(held_out["graphs"], held_out["owners"], train_data["graphs"], count) < NEAR_DISTANCE
    )

    def judge(predicted_views) -> dict:
        """Held-out figures of per-view predictions: per graph, per crystal (mean over its views), near and far."""
        owners, energies = held_out["owners"], held_out["energies"]
        per_crystal = mean_over_views(predicted_views, owners, count)
        errors = np.abs(per_crystal - energies)
        return {
            "per_graph": regression_metrics(predicted_views, energies[owners]),
            "per_crystal": regression_metrics(per_crystal, energies),
            "near": {"n": int(near.sum()), "mae": float(errors[near].mean()) if near.any() else None},
            "far": {"n": int((~near).sum()), "mae": float(errors[~near].mean()) if (~near).any() else None},
        }

    results = {}
    for name, with_rdfs in (("graph", False), ("graph_and_true_rdfs", True)):
        start = time.perf_counter()
        model, _ = train_constraint(
            train_data["graphs"],
            targets,
            settings,
            config.seed,
            element_features=train_data["view_rdfs"] if with_rdfs else None,
        )
        held_out_inputs = [held_out["graphs"], held_out["view_rdfs"]] if with_rdfs else held_out["graphs"]
        predicted = model.predict(held_out_inputs, verbose=0, batch_size=1024).ravel()
        results[name] = judge(predicted) | {"seconds": time.perf_counter() - start}

    start = time.perf_counter()
    seed_everything(config.seed)
    model = build_graph_to_rdfs_to_energy(
        config.layout.side,
        train_data["rdfs"].shape[1],
        settings.hidden_units,
        float(targets.mean()),
        float(targets.std()),
    )
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate_schedule(settings, -(-len(targets) // settings.batch_size)), settings.beta_1
        ),
        loss={"rdfs": "mse", "energy": keras.losses.Huber(1.0)},
        loss_weights={"rdfs": RDF_HEAD_WEIGHT, "energy": 1.0},
    )
    model.fit(
        train_data["graphs"],
        {"rdfs": train_data["view_rdfs"], "energy": targets},
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        shuffle=True,
        verbose=0,
    )
    predicted = model.predict(held_out["graphs"], verbose=0, batch_size=1024)["energy"].ravel()
    results["graph_to_rdfs_to_energy"] = judge(predicted) | {"seconds": time.perf_counter() - start}

    start = time.perf_counter()
    model, _ = train_crystal_energy(train_data["rdfs"], train_data["energies"], config.crystal_energy, config.seed)
    predicted = model.predict(held_out["rdfs"], verbose=0, batch_size=1024).ravel()[held_out["owners"]]
    results["true_rdfs_alone"] = judge(predicted) | {"seconds": time.perf_counter() - start}

    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "backend": keras.backend.backend(),
        "train_crystals": len(train),
        "train_graphs": len(targets),
        "held_out_crystals": count,
        "encoding_seconds": encoding_seconds,
        "constraint_settings": dataclasses.asdict(settings),
        "crystal_energy_settings": dataclasses.asdict(config.crystal_energy),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    for name, figures in results.items():
        print(
            f"{name:26s} MAE per graph {figures['per_graph']['mae']:.4f}, per crystal {figures['per_crystal']['mae']:.4f} "
            f"(R² {figures['per_crystal']['r2']:.3f}); near {figures['near']['n']}: {figures['near']['mae']}, "
            f"far {figures['far']['n']}: {figures['far']['mae']}; {figures['seconds']:.0f} s"
        )


if __name__ == "__main__":
    main()
