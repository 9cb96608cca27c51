"""``aiida-ccdcgan evaluate``: judge generated crystals like the field does (docs/evaluation.md)."""

from pathlib import Path

import click
from aiida.cmdline.utils import echo

from ..errors import DatasetError, UserInputError
from . import cmd_root
from .utils import clear_errors, input_format, load_node, progress_bar


def _read(path: Path, with_energies: bool):
    """Records of a folder of CIF/POSCAR files, an extended XYZ file or a CSV; broken crystals are kept (they are
    judged invalid, not refused) unless they cannot be read at all."""
    from ..dataset import read_dataset
    from ..dataset.checks import ImportChecks

    if path.is_dir():
        fmt, options = "folder", {}
    else:
        fmt, options = input_format(path)
        if with_energies:
            options = {}
    keep_broken = ImportChecks(min_distance=0.0, min_volume=0.0)
    return read_dataset(fmt, path, checks=keep_broken, progress=progress_bar(f"reading {path.name}"), **options)


@cmd_root.command("evaluate")
@click.argument("structures")
@click.option("--elements", help="Comma-separated elements of the chemical system, e.g. Bi,Se (not for a loop).")
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Known crystals with formation energies (extended XYZ or CSV) for novelty and the hull. "
    "Default for Bi,Se: the shipped Bi–Se database (SevenNet-0).",
)
@click.option(
    "--reference-on-hull/--reference-off-hull",
    default=None,
    help="Whether the reference energies join the hull: only if they share the relaxation's level of theory. "
    "Default: on for the shipped database relaxed with SevenNet-0, else off (elemental references only).",
)
@click.option("--relax/--no-relax", default=True, show_default=True, help="Relax the valid crystals (AiiDA, cached).")
@click.option("--potential", type=click.Choice(["sevennet", "chgnet"]), default="sevennet", show_default=True)
@click.option("--protocol", type=click.Choice(["fast", "moderate"]), default="fast", show_default=True)
@click.option(
    "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("evaluation"), show_default=True
)
def cmd_evaluate(structures, elements, reference, reference_on_hull, relax, potential, protocol, output):
    """Judge generated crystals: validity, uniqueness, novelty, stability, S.U.N. and RMSD after relaxation.

    STRUCTURES: a folder of CIF/POSCAR files or an extended XYZ file written by any program, or the pk / uuid of a
    finished ccdcgan.inverse_design loop (its valid candidates, already relaxed and assessed by the loop, judged
    against its training set). Writes OUTPUT/structures.csv (a row per crystal), OUTPUT/summary.json and
    OUTPUT/relaxed.extxyz. Relaxations run as AiiDA processes on this machine (the ccdcgan-relax code on
    localhost) with caching on, so a repeated evaluation reuses them.
    """
    from ..tools.evaluate import evaluate_and_write, loop_results

    with clear_errors():
        if Path(structures).exists():
            generated, known, symbols, relaxation = _files(
                Path(structures), elements, reference, reference_on_hull, relax, potential, protocol
            )
        else:
            generated, relaxation, known, symbols = loop_results(
                load_node(
                    structures, "neither a file or folder of structures nor the pk/uuid of a node in this profile"
                )
            )
        summary = evaluate_and_write(generated, known, symbols, output, relaxation)
    fractions = ", ".join(
        f"{name} {100 * summary[f'{name}_fraction']:.1f} %"
        for name in ("valid", "paper_valid", "unique", "novel", "stable", "sun")
        if summary[f"{name}_fraction"] is not None
    )
    click.echo(f"{summary['structures']} crystals: {fractions}.")
    if summary["sun_fraction"] is not None:
        click.echo(
            f"S.U.N.: {summary['sun']} crystals, {summary['sun_compounds']} of them compounds; "
            f"paper's stable {summary['paper_stable']}, distinct stable {summary['paper_distinct_stable']}."
        )
    if summary["mean_rmsd"] is not None:
        click.echo(f"Mean RMSD generated → relaxed: {summary['mean_rmsd']:.3f} Å over {summary['relaxed']} crystals.")
    if summary["known_phases"]:
        found = ", ".join(f"{name} {count}×" for name, count in summary["known_phases"].items())
        click.echo(f"Known phases among them: {found}.")
    written = ["structures.csv", "summary.json", *(["relaxed.extxyz"] if relaxation else [])]
    click.echo(f"Written: {', '.join(str(output / name) for name in written)}")


def _files(path, elements, reference, reference_on_hull, relax, potential, protocol):
    """Generated crystals from files, the reference, the elements and (if ``relax``) their relaxation."""
    from ..dataset.shipped import load_bise_database
    from ..evaluation import structural_invalidity
    from ..tools.evaluate import relax_and_assess

    symbols = [symbol.strip() for symbol in (elements or "").split(",") if symbol.strip()]
    if not symbols:
        raise UserInputError("--elements is needed for files: give the system's elements, e.g. --elements Bi,Se.")
    generated = _read(path, with_energies=False)
    if not generated:
        raise DatasetError(f"{path}: no structures to evaluate.")
    shipped = reference is None and sorted(symbols) == ["Bi", "Se"]
    if reference is None and not shipped:
        raise UserInputError("--reference is needed for a system other than Bi–Se (novelty and the hull need it).")
    known = load_bise_database() if shipped else _read(reference, with_energies=True)
    if reference_on_hull is None:
        reference_on_hull = shipped and potential == "sevennet"
    if reference_on_hull and any(record.formation_energy is None for record in known):
        raise UserInputError("--reference-on-hull needs a formation energy for every reference crystal.")
    to_relax = {
        index: record.structure
        for index, record in enumerate(generated)
        if structural_invalidity(record.structure) is None
        and {element.symbol for element in record.structure.composition.elements} <= set(symbols)
    }
    if not relax or not to_relax:
        return generated, known, symbols, None
    click.echo(f"Relaxing {len(to_relax)} of {len(generated)} crystals with {potential} ({protocol}) …")
    try:
        relaxation = relax_and_assess(to_relax, symbols, known, reference_on_hull, potential, protocol, len(generated))
    except RuntimeError as exception:
        echo.echo_critical(f"{exception}; see `verdi process report` of that process.")
    return generated, known, symbols, relaxation
