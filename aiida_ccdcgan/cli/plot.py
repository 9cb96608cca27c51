"""``aiida-ccdcgan plot``: the figures of a finished inverse-design loop (docs/evaluation.md)."""

from pathlib import Path

import click

from . import cmd_root
from .utils import clear_errors, load_node

FIGURE_NAMES = ("hull", "energies", "curves", "graphs")


@cmd_root.command("plot")
@click.argument("loop")
@click.option(
    "--figure",
    "figures",
    type=click.Choice(FIGURE_NAMES),
    multiple=True,
    help="Which figures (repeat the option; default: all). hull: E_f against composition with the convex hull; "
    "energies: E_f histograms of the training set and the generated crystals; curves: the learning curves of "
    "every training in the loop; graphs: the crystal graphs of the training set and of generated samples on two "
    "principal axes, coloured by E_f (loads the models with Keras).",
)
@click.option("--format", "suffix", type=click.Choice(["png", "svg", "pdf"]), default="png", show_default=True)
@click.option(
    "--samples", type=click.IntRange(min=1), default=500, show_default=True, help="Graphs generated for the map."
)
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("figures"), show_default=True)
def cmd_plot(loop, figures, suffix, samples, output):
    """Draw the figures of a finished ccdcgan.inverse_design LOOP (pk or uuid) into OUTPUT/<figure>.<format>."""
    from ..tools.plots import loop_figures

    with clear_errors():
        written = loop_figures(load_node(loop), output, figures or FIGURE_NAMES, suffix, samples)
    for kind, result in written.items():
        click.echo(f"{kind}: {result}" if isinstance(result, Path) else f"{kind}: not drawn ({result})")
