"""``aiida-ccdcgan dataset`` and ``aiida-ccdcgan export``: look at, split and write out dataset groups."""

import click
from aiida.cmdline.utils import decorators, echo

from ..common import extras
from . import cmd_root
from .utils import clear_errors, print_summary


@cmd_root.group("dataset")
def cmd_dataset():
    """Inspect and split dataset groups."""


@cmd_dataset.command("summary")
@click.argument("group_label")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@decorators.with_dbenv()
def dataset_summary(group_label, as_json):
    """Summarise the dataset in GROUP_LABEL: counts, elements, atoms per cell, formation energies."""
    from ..tools.datasets import dataset_summary as summarise

    with clear_errors():
        print_summary(summarise(group_label), as_json)


@cmd_dataset.command("split")
@click.argument("group_label")
@click.option("--key", default=extras.GROUP_KEY, show_default=True, help="Extra whose equal values stay on one side.")
@click.option(
    "--fractions", nargs=3, type=float, default=(0.8, 0.1, 0.1), show_default=True, help="Train, validation, test."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the shuffle.")
@decorators.with_dbenv()
def dataset_split(group_label, key, fractions, seed):
    """Split GROUP_LABEL into GROUP_LABEL/split-SEED/{train,validation,test}, keeping equal KEYs together."""
    from ..tools.datasets import split_dataset_group

    with clear_errors():
        groups = split_dataset_group(group_label, key, tuple(fractions), seed)
    for name, group in groups.items():
        echo.echo_report(f"{name:>10}: {group.count():6d} structures in group '{group.label}'")


@cmd_root.command("export")
@click.argument("group_label")
@click.option("--cif-dir", type=click.Path(file_okay=False), help="Folder to write one CIF per structure into.")
@click.option(
    "--extxyz", "extxyz_path", type=click.Path(dir_okay=False), help="Extended XYZ file with energies in the info."
)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="CSV summary, one line per structure.")
@click.option("--max-formation-energy", type=float, help="Only structures with E_f (eV/atom) at most this.")
@decorators.with_dbenv()
def cmd_export(group_label, cif_dir, extxyz_path, csv_path, max_formation_energy):
    """Export the structures of GROUP_LABEL to CIF files, extended XYZ and/or CSV."""
    from aiida import orm

    from ..tools.datasets import export_dataset, load_group

    with clear_errors():
        group = load_group(group_label)
        source = group
        if max_formation_energy is not None:
            source = orm.QueryBuilder().append(orm.Group, filters={"id": group.pk}, tag="group")
            source.append(
                orm.StructureData,
                with_group="group",
                filters={f"extras.{extras.FORMATION_ENERGY}": {"<=": max_formation_energy}},
            )
        count = export_dataset(source, cif_folder=cif_dir, extxyz_path=extxyz_path, csv_path=csv_path)
    echo.echo_success(f"Exported {count} structures from group '{group_label}'.")
