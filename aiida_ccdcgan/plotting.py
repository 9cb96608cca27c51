"""Figures of results (matplotlib, no AiiDA): formation energy against composition with the convex hull (the
paper's Fig. 3b), learning curves, formation-energy distributions and the map of crystal graphs (Fig. 2c). Each
function writes the file named by ``path``; its suffix (``.png``, ``.svg``, ``.pdf``) chooses the format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pymatgen.core import Composition

from .thermodynamics import phase_diagram


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | Path) -> Path:
    """Write ``figure`` to ``path`` (format from the suffix) and close it."""
    path = Path(path)
    figure.tight_layout()
    figure.savefig(path, dpi=130)
    _pyplot().close(figure)
    return path


def plot_formation_energies(
    elements: Sequence[str],
    database: Sequence[tuple[str, float]],
    generated: Sequence[tuple[str, float]],
    highlighted: Sequence[tuple[str, float]],
    path: str | Path,
    title: str = "",
) -> Path:
    """Formation energy (eV/atom) against the fraction of ``elements[1]``, like the paper's Fig. 3b: the training
    ``database`` in grey, the ``generated`` (relaxed) crystals in blue, the ``highlighted`` ones (e.g. distinct
    stable) as red stars, and the convex hull of all of them with the elements. Returns the written file."""

    def fractions(points):
        return [Composition(c).get_atomic_fraction(elements[1]) for c, _ in points], [e for _, e in points]

    figure, axes = _pyplot().subplots(figsize=(6.4, 4.4))
    for points, style in (
        (database, {"color": "0.65", "marker": "o", "s": 14, "label": f"database ({len(database)})"}),
        (generated, {"color": "tab:blue", "marker": "o", "s": 18, "label": f"generated, relaxed ({len(generated)})"}),
        (highlighted, {"color": "tab:red", "marker": "*", "s": 120, "label": f"distinct stable ({len(highlighted)})"}),
    ):
        if points:
            axes.scatter(*fractions(points), zorder=3, **style)
    diagram = phase_diagram([*database, *generated], elements)
    vertices = sorted(
        (entry.composition.get_atomic_fraction(elements[1]), diagram.get_form_energy_per_atom(entry))
        for entry in diagram.stable_entries
    )
    axes.plot(*zip(*vertices), color="black", linewidth=1, zorder=2, label="convex hull")
    axes.axhline(0.0, color="0.8", linewidth=0.8, zorder=1)
    axes.set_xlabel(f"{elements[1]} fraction")
    axes.set_ylabel("formation energy (eV/atom)")
    axes.set_xlim(-0.02, 1.02)
    axes.set_title(title or f"{'–'.join(elements)}: formation energy and convex hull")
    axes.legend(fontsize=8, loc="upper right")
    return _save(figure, path)


def learning_curves(metrics: Mapping) -> dict[str, dict]:
    """Every stage's loss curves of a ``ccdcgan-train`` ``metrics.json``, named ``"stage: network"``: each a dict
    with ``training`` (the loss per epoch, or per step for the GAN), ``validation`` (the same loss on the validation
    split after each epoch, where the stage scored one), ``loss`` (what was minimised, in words, where recorded) and
    ``x`` (``epoch`` or ``GAN step``)."""
    return {
        f"{stage}: {name}": {
            "training": values,
            "validation": entry.get("validation_losses", {}).get(name),
            "loss": entry.get("loss_functions", {}).get(name, "loss"),
            "x": "GAN step" if stage == "gan" else "epoch",
        }
        for stage, entry in metrics["stages"].items()
        for name, values in entry["losses"].items()
    }


def plot_learning_curves(curves: Mapping[str, Mapping], path: str | Path) -> Path:
    """One panel per loss curve of :func:`learning_curves` (training, and validation where there is one), its axes
    named by the curve's ``x`` and ``loss``, three panels to a row."""
    columns = min(3, max(1, len(curves)))
    rows = max(1, -(-len(curves) // columns))
    figure, axes = _pyplot().subplots(rows, columns, figsize=(4.0 * columns, 3.0 * rows), squeeze=False)
    for axis, (name, curve) in zip(axes.ravel(), curves.items()):
        for split, style in (("training", "-"), ("validation", "--")):
            values = curve.get(split)
            if values:
                axis.plot(np.arange(1, len(values) + 1), values, style, linewidth=1, label=split)
        axis.set_title(name, fontsize=8)
        axis.set_xlabel(curve["x"], fontsize=8)
        axis.set_ylabel(curve["loss"], fontsize=7)
        axis.legend(fontsize=7)
    for axis in axes.ravel()[len(curves) :]:
        axis.set_visible(False)
    return _save(figure, path)


def plot_energy_distributions(energies: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Overlaid histograms of formation energies (eV/atom), one per named set (e.g. database and generated), on
    common bins and normalised to a density so sets of different size compare."""
    figure, axes = _pyplot().subplots(figsize=(6.4, 4.0))
    values = np.concatenate([np.asarray(v, dtype=float) for v in energies.values()] or [np.zeros(0)])
    bins = np.histogram_bin_edges(values, bins=30) if values.size else 10
    for name, series in energies.items():
        if len(series):
            axes.hist(series, bins=bins, density=True, alpha=0.55, label=f"{name} ({len(series)})")
    axes.axvline(0.0, color="0.5", linewidth=0.8)
    axes.set_xlabel("formation energy (eV/atom)")
    axes.set_ylabel("density")
    axes.legend(fontsize=8)
    return _save(figure, path)


def principal_axes(reference: np.ndarray, components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the first ``components`` principal axes of ``reference`` rows (flattened), by SVD; zero axes
    where there are fewer rows than components."""
    rows = reference.reshape(len(reference), -1)
    mean = rows.mean(axis=0)
    _, _, axes = np.linalg.svd(rows - mean, full_matrices=False)
    missing = max(0, components - len(axes))
    return mean, np.vstack([axes[:components], np.zeros((missing, rows.shape[1]))])


def plot_graph_map(
    sets: Mapping[str, tuple[np.ndarray, Sequence[float]]], path: str | Path, colour_label: str = "E_f (eV/atom)"
) -> Path:
    """The crystal graphs of named sets (name → (graphs, formation energies)) projected on the two principal axes
    of the first set, coloured by energy, one marker per set — the paper's Fig. 2c."""
    plt = _pyplot()
    graphs = list(sets.values())
    mean, axes_2d = principal_axes(graphs[0][0])
    energies = np.concatenate([np.asarray(e, dtype=float) for _, e in graphs])
    low, high = np.percentile(energies, [2, 98]) if energies.size else (0.0, 1.0)
    figure, axes = plt.subplots(figsize=(6.4, 5.0))
    scatter = None
    for (name, (points, values)), marker in zip(sets.items(), ("o", "^", "s", "D")):
        if not len(points):
            continue
        projected = (points.reshape(len(points), -1) - mean) @ axes_2d.T
        scatter = axes.scatter(
            *projected.T,
            c=values,
            cmap="viridis",
            vmin=low,
            vmax=high,
            marker=marker,
            s=16,
            label=f"{name} ({len(points)})",
        )
    if scatter is not None:
        figure.colorbar(scatter, ax=axes, label=colour_label)
    axes.set_xlabel("principal component 1")
    axes.set_ylabel("principal component 2")
    axes.legend(fontsize=8)
    return _save(figure, path)
