"""Figures of results (matplotlib, no AiiDA): formation energy against composition with the convex hull."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pymatgen.core import Composition

from .thermodynamics import phase_diagram


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def fractions(points):
        return [Composition(c).get_atomic_fraction(elements[1]) for c, _ in points], [e for _, e in points]

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
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
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=130)
    plt.close(figure)
    return path
