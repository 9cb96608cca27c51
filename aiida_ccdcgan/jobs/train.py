"""``ccdcgan-train``: train the CCDCGAN models from a JSON configuration and an extended XYZ dataset.

Stages: ``autoencoders`` (site and lattice), ``constraint``, ``gan``; ``all`` runs them in order. Each stage
writes its ``.keras`` models and its part of ``metrics.json`` (with the digest of the settings it depends on)
into the output folder; a stage whose outputs exist for the same settings is skipped, so an interrupted run —
or a restart with, say, a lower constraint learning rate — resumes after the last valid finished stage. Within
the gan stage a checkpoint every 500 steps (``gan_checkpoint.npz``) lets a rerun continue from the last one.
TensorFlow (or the Keras backend named by ``KERAS_BACKEND``) is imported only here and in ``ccdcgan-sample``.

Exit codes: 0 done; 10 bad input; 11 a loss became NaN; 12 out of memory (see :mod:`aiida_ccdcgan.jobs.contract`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..models.config import STAGE_NAMES, TrainingConfig, model_file, training_stage
from ..plotting import learning_curves, plot_learning_curves
from . import fail, missing_extra, quiet_backend
from .contract import (
    EXIT_BAD_INPUT,
    EXIT_NAN_LOSS,
    EXIT_OK,
    EXIT_OUT_OF_MEMORY,
    GAN_CHECKPOINT,
    LEARNING_CURVES_FILE,
    METRICS_FILE,
)

KINDS = ("site", "lattice")
"""The two autoencoders of the autoencoders stage."""


class NanLoss(RuntimeError):
    """A training loss became NaN or infinite."""


def load_dataset(path: Path, config):
    """Read the dataset and split it: the frames' ``split`` info if present, else 90/10 by group key (seeded with the configuration's seed)."""
    from ..dataset import group_split, read_extxyz
    from ..representation import representable_crystals

    records = read_extxyz(path, energy_key=None)  # energies and splits stay in the properties
    energies = [record.properties.get("formation_energy") for record in records]
    splits = [record.properties.get("split") for record in records]
    if any(s is None for s in splits):
        keys = [r.group_key or r.source_id for r in records]
        indices = group_split(keys, (0.9, 0.1, 0.0), config.seed)
        splits = [None] * len(records)
        for name, members in indices.items():
            for i in members:
                splits[i] = name
    crystals, indices, skipped = representable_crystals([r.structure for r in records], config.representation)
    kept = [
        {"record": records[i], "crystal": crystal, "energy": energies[i], "split": splits[i]}
        for i, crystal in zip(indices, crystals)
    ]
    return kept, skipped


def _part(items, name):
    """The items of one split."""
    return [item for item in items if item["split"] == name]


def _check_finite(stage: str, losses: dict) -> None:
    """Raise :class:`NanLoss` if any loss is not finite."""
    values = np.concatenate([np.ravel(v) for v in losses.values()])
    if not np.all(np.isfinite(values)):
        raise NanLoss(f"a loss of the {stage} stage became NaN or infinite; lower the learning rate")


LOSS_NAMES = {"mse": "mean squared error", "weighted_bce": "weighted binary cross-entropy", "huber": "Huber loss"}
"""The loss settings of the configuration, as the learning curves name them."""


def loss_functions(stage: str, config) -> dict[str, str]:
    """What each network of ``stage`` minimises, in words, per loss curve of the stage's metrics."""
    if stage == "autoencoders":
        return {f"{kind}_autoencoder": LOSS_NAMES[getattr(config, f"{kind}_autoencoder").loss] for kind in KINDS}
    if stage == "constraint":
        return {
            "constraint": f"{LOSS_NAMES[config.constraint.loss]} of E_f (eV/atom)",
            "crystal_energy": "Huber loss of E_f (eV/atom)",
        }
    energy_term = "mean exp(E_f)" if config.gan.fe_loss == "exp" else "mean E_f"
    constraint = f" + {config.gan.fe_weight} × {energy_term}" if config.gan.mode == "ccdcgan" else ""
    return {
        "d_real": "discriminator, training graphs: binary cross-entropy",
        "d_fake": "discriminator, generated graphs: binary cross-entropy",
        "g": f"generator: binary cross-entropy{constraint}",
    }


def _split_losses(histories: dict) -> dict:
    """A stage's metrics ``losses`` (per network, the training loss per epoch) and, where the network was scored
    on the validation split after each epoch, ``validation_losses``, from :func:`train_autoencoder`'s and
    :func:`train_constraint`'s histories."""
    metrics = {"losses": {name: history["loss"] for name, history in histories.items()}}
    validation = {name: history["val_loss"] for name, history in histories.items() if "val_loss" in history}
    return metrics | ({"validation_losses": validation} if validation else {})


def _graphs(items, bundle):
    """Crystal graphs of dataset items through the bundle's encoders."""
    return bundle.encode([item["crystal"] for item in items])


def constraint_validation(items, bundle) -> dict:
    """Held-out MAE, RMSE and R²: ``validation`` for the constraint on each crystal's graph as given; with
    ``cell_orders`` > 1, ``validation_cell_orders`` for the mean of its predictions over the crystal's cell orders
    (:func:`~aiida_ccdcgan.models.inference.constraint_over_cell_orders`); with the crystal energy network,
    ``validation_crystal_energy`` for it. What screening uses
    (:func:`~aiida_ccdcgan.models.inference.crystal_formation_energies`) is the last of these present."""
    from ..models.inference import constraint_over_cell_orders
    from ..models.metrics import regression_metrics

    config = bundle.config
    energies = [i["energy"] for i in items]
    structures = [i["record"].structure for i in items]
    predicted = bundle.predicted_energies(_graphs(items, bundle))
    metrics = {"validation": regression_metrics(predicted, energies)}
    if config.constraint.cell_orders > 1:
        mean = constraint_over_cell_orders(structures, config, bundle.networks)
        metrics["validation_cell_orders"] = regression_metrics(mean, energies)
    if config.crystal_energy.input == "partial_rdfs":
        crystal = bundle.formation_energies(structures)
        metrics["validation_crystal_energy"] = regression_metrics(crystal, energies)
    return metrics


def reconstruction(items, bundle) -> dict:
    """Encode → decode held-out crystals through the autoencoders and count StructureMatcher matches."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from ..representation.config import MATCHER_SETTINGS

    if not items:
        return {"n": 0, "matched": 0, "ratio": None, "failures": {}}
    results = bundle.decode(_graphs(items, bundle))
    matcher, matched, failures = StructureMatcher(**MATCHER_SETTINGS), 0, {}
    for item, result in zip(items, results):
        reason = (
            result.failure.value
            if result.failure
            else (None if matcher.fit(item["record"].structure, result.structure) else "no_match")
        )
        if reason:
            failures[reason] = failures.get(reason, 0) + 1
        else:
            matched += 1
    return {"n": len(items), "matched": matched, "ratio": matched / len(items), "failures": failures}


@dataclasses.dataclass
class TrainingRun:
    """What the stages of one ``ccdcgan-train`` run share: the output folder, whether the gan stage continues from
    the generator and discriminator in it (``--fine-tune``, the loop's fine-tuning), and the training crystals'
    graphs, encoded once with this run's autoencoders."""

    output: Path
    fine_tune: bool = False
    training_graphs: np.ndarray | None = None


def train_autoencoders(items, bundle, run: TrainingRun) -> dict:
    """The autoencoders stage: the site and lattice autoencoders on the training crystals (from the pretrained ones
    where the configuration names them), their losses and held-out reconstruction."""
    from ..models.pretrained import pretrained_record
    from ..models.training import train_autoencoder

    config, models = bundle.config, bundle.networks
    train, validation = _part(items, "train"), _part(items, "validation")
    crystals, held_out = [i["crystal"] for i in train], [i["crystal"] for i in validation]
    histories = {}
    for kind in KINDS:
        models[f"{kind}_encoder"], models[f"{kind}_decoder"], histories[f"{kind}_autoencoder"] = train_autoencoder(
            crystals, config.representation, kind, getattr(config, f"{kind}_autoencoder"), config.seed, held_out
        )
    metrics = _split_losses(histories)
    _check_finite("autoencoders", metrics["losses"])
    metrics["reconstruction_validation"] = reconstruction(validation, bundle)
    for kind in KINDS:
        name = getattr(config, f"{kind}_autoencoder").pretrained
        if name is not None:
            files = pretrained_record(name)["sha256"]
            metrics.setdefault("pretrained", {})[kind] = {
                "name": name,
                "sha256": {file: digest for file, digest in files.items() if file.startswith(kind)},
            }
    return metrics


def _training_graphs(items, bundle, run: TrainingRun):
    """The training crystals' graphs, encoded once per run with this run's autoencoders."""
    if run.training_graphs is None:
        run.training_graphs = _graphs(_part(items, "train"), bundle)
    return run.training_graphs


def train_constraint_stage(items, bundle, run: TrainingRun) -> dict:
    """The constraint stage: the constraint on the training graphs (and their other cell orders) and, where the
    configuration has one, the crystal energy network; their losses and held-out errors."""
    from ..models.inference import crystal_rdf_features
    from ..models.training import train_constraint, train_crystal_energy

    config, models = bundle.config, bundle.networks
    train, validation = _part(items, "train"), _part(items, "validation")
    graphs = _training_graphs(items, bundle, run)
    energies = [i["energy"] for i in train]
    if any(e is None for e in energies):
        raise ValueError("the constraint needs a formation_energy in every training frame")
    if config.constraint.cell_orders > 1:
        more_graphs, owners = bundle.cell_order_graphs(
            [i["record"].structure for i in train], config.constraint.cell_orders, given=False
        )
        graphs, energies = np.concatenate([graphs, more_graphs]), energies + [energies[i] for i in owners]
    scored = bool(validation) and all(i["energy"] is not None for i in validation)
    held_out = (_graphs(validation, bundle), [i["energy"] for i in validation]) if scored else None
    models["constraint"], history = train_constraint(
        graphs, energies, config.constraint, config.seed, validation=held_out
    )
    metrics = _split_losses({"constraint": history}) | {"training_graphs": len(graphs)}
    if config.crystal_energy.input == "partial_rdfs":
        features = crystal_rdf_features([i["record"].structure for i in train], config)
        models["crystal_energy"], history = train_crystal_energy(
            features, [i["energy"] for i in train], config.crystal_energy, config.seed
        )
        metrics["losses"]["crystal_energy"] = history["loss"]
    _check_finite("constraint", metrics["losses"])
    if scored:
        metrics.update(constraint_validation(validation, bundle))
    return metrics


def train_gan_stage(items, bundle, run: TrainingRun) -> dict:
    """The gan stage: the generator and discriminator on the training graphs (with their element-permuted twins
    where configured; against the constraint for CCDCGAN), from a checkpoint or an earlier run's networks
    (``--fine-tune``) where there is one."""
    from ..models.training import train_gan

    config, models = bundle.config, bundle.networks
    graphs = _training_graphs(items, bundle, run)
    if config.gan.permute_elements:
        graphs = config.layout.with_elements_permuted(graphs)
    constraint = models.get("constraint") if config.gan.mode == "ccdcgan" else None
    initial = None
    if run.fine_tune:
        from ..models.bundle import ModelBundle

        roles = training_stage("gan").models
        earlier = ModelBundle.load(config, run.output, roles)
        if not earlier.has(roles):
            raise ValueError("fine-tuning needs the generator.keras and discriminator.keras of an earlier run")
        initial = tuple(earlier.networks[role] for role in roles)
    models["generator"], models["discriminator"], losses = train_gan(
        graphs,
        config.gan,
        constraint,
        config.seed,
        checkpoint=run.output / GAN_CHECKPOINT,
        checkpoint_key=config.stage_digest("gan"),
        initial=initial,
        layout=config.layout,
    )
    _check_finite("gan", losses)
    return {
        "losses": {k: v.tolist() for k, v in losses.items()},
        "training_graphs": len(graphs),
        "steps": config.gan.steps,
        "mode": config.gan.mode,
    }


STAGE_TRAINERS = {"autoencoders": train_autoencoders, "constraint": train_constraint_stage, "gan": train_gan_stage}
"""The function that trains each stage of :data:`~aiida_ccdcgan.models.config.TRAINING_STAGES`."""


def run_stage(stage: str, items, bundle, run: TrainingRun) -> dict:
    """Train one stage (:data:`STAGE_TRAINERS`), put its networks into ``bundle`` and save them into ``output``,
    return its metrics."""
    start = time.perf_counter()
    metrics = STAGE_TRAINERS[stage](items, bundle, run)
    bundle.save(run.output, bundle.config.stage_models(stage))
    if stage == "gan":  # finished: the next run starts afresh
        (run.output / GAN_CHECKPOINT).unlink(missing_ok=True)
    functions = loss_functions(stage, bundle.config)
    metrics["loss_functions"] = {k: v for k, v in functions.items() if k in metrics["losses"]}
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    return metrics


def _out_of_memory(exception: BaseException) -> bool:
    """Whether an exception means the device or host ran out of memory (any backend)."""
    return isinstance(exception, MemoryError) or any(
        marker in type(exception).__name__ for marker in ("ResourceExhausted", "OutOfMemory")
    )


def main(argv=None) -> int:
    """Entry point of ``ccdcgan-train``."""
    parser = argparse.ArgumentParser(
        prog="ccdcgan-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path, help="JSON training configuration (TrainingConfig).")
    parser.add_argument(
        "data", type=Path, help="Extended XYZ dataset: formation_energy and optional split in each frame's info."
    )
    parser.add_argument(
        "--output", type=Path, default=Path("."), help="Folder for models, metrics.json, learning_curves.png."
    )
    parser.add_argument("--stage", choices=(*STAGE_NAMES, "all"), default="all")
    parser.add_argument(
        "--fine-tune",
        action="store_true",
        help="Continue the gan stage (--stage gan) from generator.keras and discriminator.keras in the output folder "
        "for the configuration's gan.steps, instead of new networks: the inverse-design loop's fine-tuning.",
    )
    args = parser.parse_args(argv)
    if (refused := missing_extra("ccdcgan-train")) is not None:
        return refused
    quiet_backend()
    if args.fine_tune and args.stage != "gan":
        return fail(EXIT_BAD_INPUT, f"--fine-tune continues the gan stage; give --stage gan, not --stage {args.stage}")
    try:
        config = TrainingConfig.from_dict(json.loads(args.config.read_text()))
    except (OSError, ValueError, TypeError) as exception:
        return fail(EXIT_BAD_INPUT, f"cannot use the configuration {args.config}: {exception}")
    args.output.mkdir(parents=True, exist_ok=True)
    metrics_path = args.output / METRICS_FILE
    previous = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    metrics = {
        "config_digest": config.digest(),
        "representation_digest": config.representation.digest(),
        "config": config.to_dict(),
        "stages": previous.get("stages", {}),
    }
    try:
        items, skipped = load_dataset(args.data, config)
    except Exception as exception:  # any unreadable input is bad input for this script
        return fail(EXIT_BAD_INPUT, f"cannot use the dataset {args.data}: {exception}")
    if not _part(items, "train"):
        return fail(
            EXIT_BAD_INPUT, f"the dataset {args.data} has no training structures within the representation's limits"
        )
    metrics["dataset"] = {
        "within_limits": len(items),
        "outside_limits": skipped,
        **{name: len(_part(items, name)) for name in ("train", "validation", "test")},
    }

    import keras

    metrics.update(keras_version=keras.__version__, backend=keras.backend.backend())
    from ..models.bundle import ModelBundle

    bundle, run = ModelBundle(config), TrainingRun(args.output, args.fine_tune)
    for stage in STAGE_NAMES if args.stage == "all" else (args.stage,):
        roles = config.stage_models(stage)
        done = metrics["stages"].get(stage, {}).get("digest") == config.stage_digest(stage)
        if done and not args.fine_tune and all((args.output / model_file(role)).exists() for role in roles):
            bundle.networks.update(ModelBundle.load(config, args.output, roles).networks)
            print(f"ccdcgan-train: {stage} already done for this configuration; resuming after it", file=sys.stderr)
            continue
        metrics["stages"] = {
            k: v for k, v in metrics["stages"].items() if STAGE_NAMES.index(k) < STAGE_NAMES.index(stage)
        }
        earlier = [role for role in config.needed_models(stage) if role not in bundle.networks]
        missing = [role for role in earlier if not (args.output / model_file(role)).exists()]
        if missing:
            return fail(
                EXIT_BAD_INPUT, f"the {stage} stage needs {', '.join(missing)}; run the earlier stages first", stage
            )
        bundle.networks.update(ModelBundle.load(config, args.output, earlier).networks)
        try:
            metrics["stages"][stage] = {
                "digest": config.stage_digest(stage),
                **run_stage(stage, items, bundle, run),
            }
        except NanLoss as exception:
            return fail(EXIT_NAN_LOSS, str(exception), stage)
        except ValueError as exception:
            return fail(EXIT_BAD_INPUT, f"cannot run the {stage} stage: {exception}", stage)
        except Exception as exception:
            if _out_of_memory(exception):
                return fail(
                    EXIT_OUT_OF_MEMORY, f"out of memory in the {stage} stage; halve the batch size ({exception})", stage
                )
            raise
        metrics_path.write_text(json.dumps(metrics, indent=2))
        print(f"ccdcgan-train: {stage} done in {metrics['stages'][stage]['seconds']} s", file=sys.stderr)
    plot_learning_curves(learning_curves(metrics), args.output / LEARNING_CURVES_FILE)
    metrics_path.write_text(json.dumps(metrics, indent=2))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
