"""``aiida-ccdcgan represent``: the crystal ↔ voxel representation, measured without any neural network."""

import json
from pathlib import Path

import click

from ..errors import DatasetError, UserInputError
from . import cmd_root
from .utils import clear_errors, input_format, progress_bar


@cmd_root.group("represent")
def cmd_represent():
    """Work with the crystal ↔ voxel representation."""


@cmd_represent.command("roundtrip")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--elements",
    required=True,
    help="Comma-separated element list of the representation (e.g. Bi,Se), or 'auto' for each structure's own.",
)
@click.option("--limit", type=int, help="Only the first N structures (after --max-elements).")
@click.option("--max-elements", type=int, help="Only structures with at most this many elements.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Structures encoded and decoded at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def represent_roundtrip(path, elements, limit, max_elements, batch_size, as_json):
    """Encode every structure of PATH into voxels and decode it back; report the StructureMatcher match rate.

    PATH: extended XYZ, a CDVAE-style CSV (cif column) or the V–O CSV (poscar column), optionally gzipped.
    Structures beyond the representation's limits (atoms per cell, site box, lattice grid) are counted by
    reason and left out of the match rate.
    """
    from ..dataset import read_dataset
    from ..representation.roundtrip import roundtrip

    with clear_errors():
        symbols = (
            None if elements.strip().lower() == "auto" else tuple(s.strip() for s in elements.split(",") if s.strip())
        )
        if symbols == ():
            raise UserInputError("--elements is empty; give e.g. Bi,Se or auto.")
        fmt, options = input_format(path)
        structures = [
            record.structure for record in read_dataset(fmt, path, progress=progress_bar("reading"), **options)
        ]
        if max_elements is not None:
            structures = [s for s in structures if len(s.composition.elements) <= max_elements]
        if limit is not None:
            structures = structures[:limit]
        if not structures:
            raise DatasetError(f"{path}: no structures left to round-trip.")
        result = roundtrip(structures, symbols, batch_size=batch_size, progress=progress_bar("round trip"))
    result["input"] = str(path)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{result['matched']} of {result['within_limits']} structures within the limits match after the round trip "
        f"({100 * result['match_rate']:.2f} %); {result['n'] - result['within_limits']} of {result['n']} outside the limits."
    )
    click.echo(f"failures: {result['failures'] or 'none'}; outside limits: {result['outside_limits'] or 'none'}")
    click.echo(
        f"encode {result['encode_structures_per_s']} structures/s, decode {result['decode_structures_per_s']} structures/s"
    )
