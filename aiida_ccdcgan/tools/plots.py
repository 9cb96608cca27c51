"""Figures of a finished ``ccdcgan.inverse_design`` loop (``aiida-ccdcgan plot``), drawn by :mod:`..plotting`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aiida import orm

from ..dataset import CrystalRecord
from ..errors import UserInputError
from ..plotting import (
    learning_curves,
    plot_energy_distributions,
    plot_formation_energies,
    plot_graph_map,
    plot_learning_curves,
)
from .design import finished_loop, relaxed_points, training_config, training_records, trainings

GRAPH_MAP_MODELS = ("site_encoder", "lattice_encoder", "generator", "constraint")
"""The models the map of crystal graphs needs (a loop given only the sampling models has no encoders)."""


def crystal_graphs(node: orm.WorkflowNode, records: list[CrystalRecord], count: int) -> dict:
    """Name → (graphs, energies) for the map: the training crystals through the loop's encoders (with their
    formation energies) and ``count`` graphs of its final generator (seeded with the loop's seed, with the
    constraint's predicted energies). Imports Keras."""
    from ..models.bundle import ModelBundle
    from ..models.config import TrainingConfig

    bundle = ModelBundle(
        TrainingConfig.from_dict(training_config(node)),
        {role: node.outputs.models[role].load() for role in GRAPH_MAP_MODELS},
    )
    graphs, kept = bundle.encode_structures([record.structure for record in records])
    generated = bundle.sample(count, node.inputs.seed.value)
    predicted = bundle.predicted_energies(generated)
    return {
        "training set": (graphs, [records[index].formation_energy for index in kept]),
        "generated (predicted E_f)": (generated, predicted.tolist()),
    }


def loop_figures(node: orm.Node, output: Path, kinds: Sequence[str], suffix: str = "png", count: int = 500) -> dict:
    """Draw the figures ``kinds`` of a finished loop into ``output`` (``<kind>.<suffix>``): ``hull`` (E_f against
    composition with the convex hull, the paper's Fig. 3b), ``energies`` (E_f histograms of the training set and
    the relaxed generated crystals), ``curves`` (the learning curves of every training in the loop), ``graphs``
    (the map of crystal graphs, Fig. 2c; ``count`` generated). Return kind → the written path, or the reason it
    was not drawn (a loop on given models without fine-tuning has no learning curves, one given no encoders no map)."""
    node = finished_loop(node)
    output.mkdir(parents=True, exist_ok=True)
    elements = node.inputs.elements.get_list()
    records = training_records(node)
    database = [(r.structure.composition.formula, r.formation_energy) for r in records]
    generated, highlighted = relaxed_points(node)
    written: dict[str, Path | str] = {}
    for kind in kinds:
        path = output / f"{kind}.{suffix}"
        if kind == "hull":
            title = f"{'–'.join(elements)}: {node.process_label}<{node.pk}>"
            written[kind] = plot_formation_energies(elements, database, generated, highlighted, path, title)
        elif kind == "energies":
            energies = {"training set": [e for _, e in database], "generated, relaxed": [e for _, e in generated]}
            written[kind] = plot_energy_distributions(energies, path)
        elif kind == "curves":
            curves = {
                f"{label} {name}": curve
                for label, job in trainings(node)
                for name, curve in learning_curves(job.outputs.metrics.get_dict()).items()
            }
            written[kind] = plot_learning_curves(curves, path) if curves else "no training ran in this loop"
        elif kind == "graphs":
            missing = [role for role in GRAPH_MAP_MODELS if role not in node.outputs.models]
            written[kind] = (
                f"the loop's models lack {', '.join(missing)}"
                if missing
                else plot_graph_map(crystal_graphs(node, records, count), path)
            )
        else:
            raise UserInputError(f"Unknown figure {kind!r}: choose from hull, energies, curves, graphs.")
    return written
