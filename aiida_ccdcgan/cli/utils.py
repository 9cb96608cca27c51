"""Helpers shared by the command-line modules."""

import contextlib
import gzip
import json
from pathlib import Path

import click
from aiida.cmdline.utils import echo

from ..errors import DatasetError, UserInputError


@contextlib.contextmanager
def clear_errors():
    """Turn a :class:`~aiida_ccdcgan.errors.UserInputError` (a dataset's, the representation's, an option's) into a
    one-line critical message and exit code 1."""
    try:
        yield
    except UserInputError as exception:
        echo.echo_critical(str(exception))


def input_format(path: Path) -> tuple[str, dict]:
    """Guess the dataset format of ``path`` and the options that read it without energies."""
    name = path.name.lower()
    if name.endswith((".extxyz", ".xyz")):
        return "extxyz", {"energy_key": ""}
    if name.endswith((".csv", ".csv.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        try:
            with opener(path, "rt") as handle:
                header = handle.readline().strip().split(",")
        except OSError as exception:
            raise DatasetError(f"{path}: cannot read ({exception}).") from None
        if "poscar" in header:
            return "vo-csv", {"energy_column": "", "group_key_column": ""}
        if "cif" in header:
            return "cdvae-csv", {"energy_column": ""}
        raise DatasetError(f"{path}: a CSV needs a 'poscar' (V–O layout) or 'cif' (CDVAE layout) column.")
    raise DatasetError(f"{path}: use an extended XYZ file (.extxyz) or a CSV (.csv, .csv.gz).")


def load_node(identifier: str, otherwise: str = "not the pk or uuid of a node in this profile"):
    """The node of a pk or uuid; else a UserInputError: ``'<identifier>' is <otherwise>.``"""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        return orm.load_node(int(identifier) if identifier.isdigit() else identifier)
    except (NotExistent, MultipleObjectsError, ValueError):
        raise UserInputError(f"{identifier!r} is {otherwise}.") from None


def progress_bar(description: str):
    """Return a function wrapping an iterable in a progress bar on stderr (silent when stderr is no terminal)."""
    from tqdm import tqdm

    return lambda iterable: tqdm(iterable, desc=description, unit=" structures", disable=None, leave=False)


def print_summary(summary: dict, as_json: bool) -> None:
    """Print a dataset summary as JSON or as a short human-readable table."""
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    rows = [
        ("group", f"{summary['group']} ({summary['group_uuid']})"),
        ("structures", summary["structures"]),
        ("elements", ", ".join(summary["elements"])),
        ("chemical systems", summary["chemical_systems"]),
        ("distinct formulas", summary["formulas"]),
        ("most common", ", ".join(f"{k} ({v})" for k, v in summary["most_common_formulas"].items())),
        ("atoms per cell", "{min}–{max} (mean {mean})".format(**summary["natoms"]) if summary["natoms"] else "-"),
        ("grouping keys", summary["group_keys"] or "-"),
        ("with formation energy", summary["with_formation_energy"]),
    ]
    if "formation_energy_per_atom" in summary:
        energy = summary["formation_energy_per_atom"]
        rows.append(
            (
                "E_f (eV/atom)",
                f"{energy['min']} … {energy['max']} (mean {energy['mean']}, {energy['below_zero']} below 0)",
            )
        )
    if summary.get("import"):
        rows.append(("source", f"{summary['import']['source']} ({summary['import']['format']})"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        click.echo(f"{name:>{width}}  {value}")
