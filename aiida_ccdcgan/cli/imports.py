"""``aiida-ccdcgan import``: read dataset files into a Group of StructureData."""

import click
from aiida.cmdline.utils import decorators, echo

from . import cmd_root
from .utils import clear_errors, print_summary, progress_bar

GROUP = click.option(
    "-g", "--group", "group_label", required=True, help="Label of the Group that will hold the structures."
)
MIN_DISTANCE = click.option(
    "--min-distance",
    type=float,
    default=0.5,
    show_default=True,
    help="Refuse crystals with two atoms closer than this (Å, periodic images included).",
)
MIN_VOLUME = click.option(
    "--min-volume", type=float, default=0.1, show_default=True, help="Refuse cells smaller than this (Å³)."
)
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")


def csv_column_options(function):
    """Options naming the columns of a structure CSV (defaults come from the format's layout)."""
    for option in reversed(
        (
            click.option("--structure-column", help="Column holding the CIF or POSCAR text."),
            click.option("--id-column", help="Column holding each structure's id."),
            click.option("--energy-column", help="Column with the formation energy in eV/atom ('' for none)."),
            click.option(
                "--group-key-column", help="Column with the key a group-aware split keeps together ('' for none)."
            ),
        )
    ):
        function = option(function)
    return function


def atoms_key_options(function):
    """Options naming the info keys of extended XYZ frames or ASE database rows."""
    for option in reversed(
        (
            click.option(
                "--energy-key",
                default="formation_energy",
                show_default=True,
                help="Key of the formation energy in eV/atom ('' for none).",
            ),
            click.option(
                "--id-key", default="source_id", show_default=True, help="Key of each structure's id (else its index)."
            ),
            click.option(
                "--group-key", default="group_key", show_default=True, help="Key a group-aware split keeps together."
            ),
        )
    ):
        function = option(function)
    return function


def import_options(function):
    """The options every import command shares (group, checks, JSON output) and the loaded profile."""
    for option in reversed((GROUP, MIN_DISTANCE, MIN_VOLUME, AS_JSON)):
        function = option(function)
    return decorators.with_dbenv()(function)


@cmd_root.group("import")
def cmd_import():
    """Import crystal datasets into a Group of StructureData (one storage transaction per import)."""


def _run_import(fmt, path, group_label, min_distance, min_volume, as_json, **options):
    """Import, then print what happened and the dataset's summary."""
    from ..dataset import ImportChecks
    from ..tools.datasets import dataset_summary, import_dataset

    with clear_errors():
        report = import_dataset(
            fmt,
            path,
            group_label,
            checks=ImportChecks(min_distance, min_volume),
            progress=progress_bar(f"reading {fmt}"),
            **options,
        )
    (echo.echo_success if report.stored else echo.echo_report)(report.message, err=as_json)
    print_summary(dataset_summary(report.group_label), as_json)


@cmd_import.command("cdvae-csv")
@click.argument("path", type=click.Path(dir_okay=False))
@csv_column_options
@import_options
def import_cdvae_csv(path, group_label, min_distance, min_volume, as_json, **columns):
    """Import a CDVAE-style CSV (CIF text in 'cif', ids in 'material_id', 'formation_energy_per_atom')."""
    _run_import("cdvae-csv", path, group_label, min_distance, min_volume, as_json, **columns)


@cmd_import.command("vo-csv")
@click.argument("path", type=click.Path(dir_okay=False))
@csv_column_options
@import_options
def import_vo_csv(path, group_label, min_distance, min_volume, as_json, **columns):
    """Import the iMatGen V–O CSV (POSCAR text in 'poscar', 'formation_energy', template 'prototype_mp_id')."""
    _run_import("vo-csv", path, group_label, min_distance, min_volume, as_json, **columns)


@cmd_import.command("csv")
@click.argument("path", type=click.Path(dir_okay=False))
@csv_column_options
@click.option(
    "--structure-format", type=click.Choice(["cif", "poscar"]), required=True, help="Format of the structure text."
)
@import_options
def import_csv(path, group_label, min_distance, min_volume, as_json, **columns):
    """Import any CSV with one structure (CIF or POSCAR text) per row; name its columns with the options."""
    _run_import("csv", path, group_label, min_distance, min_volume, as_json, **columns)


@cmd_import.command("extxyz")
@click.argument("path", type=click.Path(dir_okay=False))
@atoms_key_options
@import_options
def import_extxyz(path, group_label, min_distance, min_volume, as_json, **keys):
    """Import an extended XYZ file of periodic frames, energies in each frame's info."""
    _run_import("extxyz", path, group_label, min_distance, min_volume, as_json, **keys)


@cmd_import.command("ase-db")
@click.argument("path", type=click.Path(dir_okay=False))
@atoms_key_options
@import_options
def import_ase_db(path, group_label, min_distance, min_volume, as_json, **keys):
    """Import an ASE database (SQLite file), energies in each row's key-value pairs."""
    _run_import("ase-db", path, group_label, min_distance, min_volume, as_json, **keys)


@cmd_import.command("folder")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--energies", "energies_csv", type=click.Path(dir_okay=False), help="CSV of energies keyed by file name.")
@click.option(
    "--file-column", default="filename", show_default=True, help="Column of the energies CSV holding the file name."
)
@click.option(
    "--energy-column", default="formation_energy", show_default=True, help="Column of the energies CSV with eV/atom."
)
@import_options
def import_folder(path, group_label, min_distance, min_volume, as_json, **options):
    """Import a folder of CIF / POSCAR files (*.cif, *.vasp, *.poscar, POSCAR*, CONTCAR*)."""
    _run_import("folder", path, group_label, min_distance, min_volume, as_json, **options)


@cmd_import.command("mp")
@click.argument("chemical_system")
@click.option("--max-sites", type=int, default=20, show_default=True, help="Entries with at most this many sites.")
@click.option(
    "--subsystems/--no-subsystems",
    default=True,
    show_default=True,
    help="Also the elements and smaller systems (what a hull over the system needs).",
)
@click.option("--max-e-above-hull", type=float, help="Only entries this close to the Materials Project hull (eV/atom).")
@import_options
def import_mp(chemical_system, max_sites, subsystems, max_e_above_hull, group_label, min_distance, min_volume, as_json):
    """Import the Materials Project entries of CHEMICAL_SYSTEM (e.g. Li-Co-O) with the official client (mp-api).

    The API key is read from the environment variable MP_API_KEY and never stored. Energies are the Materials
    Project's DFT formation energies (MP2020 scale): relax the crystals with ccdcgan.database before putting them on a
    hull with the loop's own energies.
    """
    from ..dataset import ImportChecks
    from ..dataset.materials_project import MaterialsProjectQuery
    from ..tools.datasets import dataset_summary, import_materials_project

    with clear_errors():
        query = MaterialsProjectQuery(chemical_system, max_sites, subsystems, max_e_above_hull)
        report = import_materials_project(
            query, group_label, ImportChecks(min_distance, min_volume), progress=progress_bar("storing")
        )
    (echo.echo_success if report.stored else echo.echo_report)(report.message, err=as_json)
    print_summary(dataset_summary(report.group_label), as_json)
