"""Datasets in the provenance graph: import files into a Group of StructureData, export, summarise, split.

Every import is one storage transaction: either all crystals of the file are stored and added to the
group, or nothing is. A Group holds one import; importing the same file again stores nothing.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from aiida import orm
from aiida.manage import get_manager

from .. import __version__
from ..common import extras
from ..dataset import (
    CrystalRecord,
    ImportChecks,
    read_dataset,
    source_digest,
    write_cif_folder,
    write_extxyz,
    write_summary_csv,
)
from ..dataset.materials_project import MaterialsProjectQuery, fetch_materials_project
from ..errors import DatasetError


@dataclasses.dataclass
class ImportReport:
    """What an import did: the group, how many structures it holds, and whether anything new was stored."""

    group_label: str
    group_uuid: str
    count: int
    stored: bool
    message: str


def structure_node(record: CrystalRecord) -> orm.StructureData:
    """Return an unstored StructureData for ``record`` with its queryable extras set."""
    node = orm.StructureData(pymatgen=record.structure)
    values: dict[str, Any] = {
        extras.SOURCE_ID: record.source_id,
        **extras.composition_extras(record.structure),
        extras.PROPERTIES: record.properties,
    }
    if record.formation_energy is not None:
        values[extras.FORMATION_ENERGY] = record.formation_energy
    if record.group_key is not None:
        values[extras.GROUP_KEY] = record.group_key
    if extras.ENERGY_SCALE in record.properties:
        values[extras.ENERGY_SCALE] = record.properties[extras.ENERGY_SCALE]
    node.base.extras.set_many(values)
    return node


def crystal_record(node: orm.StructureData) -> CrystalRecord:
    """Return the :class:`CrystalRecord` of a StructureData (structure and extras); the inverse of :func:`structure_node`."""
    values = node.base.extras.all
    return CrystalRecord(
        source_id=str(values.get(extras.SOURCE_ID, node.uuid)),
        structure=node.get_pymatgen_structure(),
        formation_energy=values.get(extras.FORMATION_ENERGY),
        group_key=values.get(extras.GROUP_KEY),
        properties=dict(values.get(extras.PROPERTIES, {}))
        | ({extras.ENERGY_SCALE: values[extras.ENERGY_SCALE]} if extras.ENERGY_SCALE in values else {}),
    )


def _find_group(label: str) -> orm.Group | None:
    """Return the Group with ``label`` or None."""
    return orm.QueryBuilder().append(orm.Group, filters={"label": label}).first(flat=True)


def _groups_holding(import_id: str) -> list[orm.Group]:
    """Return the groups that hold the import with identity ``import_id``."""
    builder = orm.QueryBuilder().append(orm.Group, filters={f"extras.{extras.GROUP_IMPORT}.import_id": import_id})
    return builder.all(flat=True)


def import_dataset(
    fmt: str,
    path: str | Path,
    group_label: str,
    checks: ImportChecks = ImportChecks(),
    progress: Callable[[Iterable], Iterator] | None = None,
    **options,
) -> ImportReport:
    """Import a dataset file into the Group ``group_label`` as StructureData nodes, in one transaction.

    Re-importing a file (same content, format and options) stores nothing and says where it already is.
    A group that holds a different import is refused. Raises :class:`DatasetError` for any bad input,
    before anything is stored.
    """
    if not group_label or not group_label.strip():
        raise DatasetError("The group label is empty; give a name with --group.")
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder. Check the path.")
    energies_csv = options.get("energies_csv")
    extra_files = [Path(energies_csv)] if energies_csv else []
    for extra in extra_files:
        if not extra.is_file():
            raise DatasetError(f"{extra}: no such file. Check the path.")
    digest = source_digest(path, extra_files)
    description = {k: v for k, v in options.items() if k != "progress" and v is not None}
    description.update(checks=dataclasses.asdict(checks))
    import_id = hashlib.sha256(json.dumps([fmt, digest, description], sort_keys=True, default=str).encode()).hexdigest()

    found = _earlier_import(group_label, import_id)
    if isinstance(found, ImportReport):
        return found
    records = read_dataset(fmt, path, checks=checks, progress=progress, **options)
    info = {
        "import_id": import_id,
        "format": fmt,
        "source": str(path.resolve()),
        "source_sha256": digest,
        "options": json.loads(json.dumps(description, default=str)),
    }
    return _store_import(records, found, group_label, info, path.name, progress)


def import_materials_project(
    query: MaterialsProjectQuery,
    group_label: str,
    checks: ImportChecks = ImportChecks(),
    progress: Callable[[Iterable], Iterator] | None = None,
) -> ImportReport:
    """Import the Materials Project entries of ``query`` into the Group ``group_label``, in one transaction.

    The import's identity is the query, the database version and what came back (ids and energies): the same answer
    imported again stores nothing. The API key (``MP_API_KEY``) is never stored. Raises :class:`DatasetError`.
    """
    if not group_label or not group_label.strip():
        raise DatasetError("The group label is empty; give a name with --group.")
    records, version = fetch_materials_project(query, checks)
    if not records:
        raise DatasetError(
            f"The Materials Project has no entry of {query.chemical_system} with at most {query.max_sites} sites "
            "for this query; nothing stored."
        )
    answer = [(record.source_id, record.formation_energy) for record in records]
    description = {"query": dataclasses.asdict(query), "checks": dataclasses.asdict(checks)}
    import_id = hashlib.sha256(json.dumps(["mp", version, description, answer], sort_keys=True).encode()).hexdigest()
    found = _earlier_import(group_label, import_id)
    if isinstance(found, ImportReport):
        return found
    info = {
        "import_id": import_id,
        "format": "mp",
        "source": f"Materials Project {version}, chemsys {','.join(query.chemical_systems)}",
        "database_version": version,
        "options": description,
    }
    return _store_import(
        records, found, group_label, info, f"the Materials Project ({query.chemical_system})", progress
    )


def _earlier_import(group_label: str, import_id: str) -> ImportReport | orm.Group | None:
    """An ImportReport if this import is stored already; else the existing empty Group ``group_label`` or None.
    A group that holds another import is refused with a DatasetError."""
    group = _find_group(group_label)
    if group is not None:
        info = group.base.extras.get(extras.GROUP_IMPORT, None)
        if info and info.get("import_id") == import_id:
            return ImportReport(
                group.label,
                group.uuid,
                group.count(),
                False,
                f"Already imported: group '{group.label}' holds these {group.count()} structures "
                f"from {info.get('source')}; nothing stored.",
            )
        if info or group.count():
            source = info.get("source") if info else "other nodes"
            raise DatasetError(
                f"The group '{group_label}' already holds a different import ({source}). Choose another "
                f"--group name, or remove the old one first with `verdi group delete {group_label}`."
            )
    for other in _groups_holding(import_id):
        return ImportReport(
            other.label,
            other.uuid,
            other.count(),
            False,
            f"Already imported into group '{other.label}' ({other.count()} structures); nothing "
            f"stored. To have it under another name too: verdi group copy {other.label} {group_label}",
        )
    return group


def _store_import(
    records: list[CrystalRecord],
    group: orm.Group | None,
    group_label: str,
    info: dict,
    source: str,
    progress: Callable[[Iterable], Iterator] | None,
) -> ImportReport:
    """Store ``records`` as StructureData in the Group (created if None) with the import ``info``, in one transaction;
    ``source`` names where they came from."""
    info = {
        **info,
        "count": len(records),
        "with_formation_energy": sum(r.formation_energy is not None for r in records),
        "imported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "aiida_ccdcgan_version": __version__,
    }
    storage = get_manager().get_profile_storage()
    with storage.transaction():
        if group is None:
            group = orm.Group(label=group_label, description=f"aiida-ccdcgan import of {source}")
            group.store()
        nodes = [structure_node(record).store() for record in (records if progress is None else progress(records))]
        group.add_nodes(nodes)
        group.base.extras.set(extras.GROUP_IMPORT, info)
    return ImportReport(
        group.label,
        group.uuid,
        len(nodes),
        True,
        f"Imported {len(nodes)} structures from {source} into group '{group.label}'.",
    )


def load_group(label: str) -> orm.Group:
    """Return the Group ``label`` or raise a :class:`DatasetError` saying how to list the existing ones."""
    group = _find_group(label)
    if group is None:
        raise DatasetError(f"No group '{label}'. List the existing ones with `verdi group list`.")
    return group


def structure_nodes(source: orm.Group | orm.QueryBuilder | Iterable[orm.Node]) -> list[orm.StructureData]:
    """Return the StructureData nodes of a Group, a QueryBuilder selection or an iterable of nodes, in pk order."""
    if isinstance(source, orm.Group):
        builder = orm.QueryBuilder().append(orm.Group, filters={"id": source.pk}, tag="group")
        builder.append(orm.StructureData, with_group="group", project="*")
        nodes = builder.all(flat=True)
    elif isinstance(source, orm.QueryBuilder):
        nodes = [entity for row in source.iterall() for entity in row if isinstance(entity, orm.StructureData)]
    else:
        nodes = list(source)
    wrong = [node for node in nodes if not isinstance(node, orm.StructureData)]
    if wrong:
        raise DatasetError(f"Only StructureData can be exported; node {wrong[0].pk} is a {type(wrong[0]).__name__}.")
    if not nodes:
        raise DatasetError("Nothing to export: the selection holds no StructureData.")
    return sorted({node.pk: node for node in nodes}.values(), key=lambda node: node.pk)


def export_dataset(
    source: orm.Group | orm.QueryBuilder | Iterable[orm.Node],
    cif_folder: str | Path | None = None,
    extxyz_path: str | Path | None = None,
    csv_path: str | Path | None = None,
) -> int:
    """Export structures (a Group, a QueryBuilder selection or nodes) to CIF files, extended XYZ and/or a CSV summary.

    Energies (eV/atom), ids, group keys and properties travel in the extended XYZ info and the CSV.
    Returns the number of structures written.
    """
    if not any((cif_folder, extxyz_path, csv_path)):
        raise DatasetError("Nothing to write: give at least one of a CIF folder, an extended XYZ file or a CSV file.")
    records = [crystal_record(node) for node in structure_nodes(source)]
    if cif_folder:
        write_cif_folder(records, cif_folder)
    if extxyz_path:
        write_extxyz(records, extxyz_path)
    if csv_path:
        write_summary_csv(records, csv_path)
    return len(records)


def training_file(source: orm.Group | orm.QueryBuilder | Iterable[orm.Node], filename: str) -> orm.SinglefileData:
    """The structures of ``source`` with their formation energies as one extended XYZ SinglefileData — the ``dataset``
    input of ``ccdcgan.train`` and ``ccdcgan.inverse_design``; stored once, found again while the content is the same.
    Structures without a formation energy are refused (a training set needs every label)."""
    records = [crystal_record(node) for node in structure_nodes(source)]
    unlabelled = [record.source_id for record in records if record.formation_energy is None]
    if unlabelled:
        raise DatasetError(
            f"A training file needs a formation energy for every structure; {len(unlabelled)} of {len(records)} have "
            f"none ({', '.join(unlabelled[:3])}). Relax and assess them with ccdcgan.database first."
        )
    records.sort(key=lambda record: record.source_id)
    with tempfile.TemporaryDirectory() as folder:
        path = write_extxyz(records, Path(folder) / filename)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found = orm.QueryBuilder().append(orm.SinglefileData, filters={f"extras.{extras.TRAINING_FILE}": digest})
        if found.count():
            return found.first(flat=True)
        node = orm.SinglefileData(path, filename=filename).store()
    node.base.extras.set(extras.TRAINING_FILE, digest)
    return node


def dataset_summary(label: str) -> dict[str, Any]:
    """Summarise a dataset group: counts, elements, compositions, atoms per cell, formation energies, import source."""
    group = load_group(label)
    builder = orm.QueryBuilder().append(orm.Group, filters={"id": group.pk}, tag="group")
    builder.append(orm.StructureData, with_group="group", project=["extras"])
    values = builder.all(flat=True)
    if not values:
        held = group.count()
        raise DatasetError(
            f"The group '{group.label}' holds no structures ("
            + (f"its {held} node(s) are not StructureData" if held else "it is empty")
            + "); import a dataset into it with `aiida-ccdcgan import …`."
        )
    natoms = np.array([v.get(extras.NATOMS, 0) for v in values])
    energies = np.array([v[extras.FORMATION_ENERGY] for v in values if extras.FORMATION_ENERGY in v])
    formulas = Counter(v.get(extras.FORMULA) for v in values)
    summary: dict[str, Any] = {
        "group": group.label,
        "group_uuid": group.uuid,
        "structures": len(values),
        "elements": sorted({e for v in values for e in v.get(extras.ELEMENTS, [])}),
        "chemical_systems": len({v.get(extras.CHEMICAL_SYSTEM) for v in values}),
        "formulas": len(formulas),
        "most_common_formulas": dict(formulas.most_common(5)),
        "group_keys": len({v[extras.GROUP_KEY] for v in values if extras.GROUP_KEY in v}),
        "natoms": {"min": int(natoms.min()), "max": int(natoms.max()), "mean": round(float(natoms.mean()), 2)}
        if len(natoms)
        else {},
        "with_formation_energy": len(energies),
        "import": group.base.extras.get(extras.GROUP_IMPORT, None),
    }
    if len(energies):
        summary["formation_energy_per_atom"] = {
            "min": round(float(energies.min()), 4),
            "mean": round(float(energies.mean()), 4),
            "max": round(float(energies.max()), 4),
            "below_zero": int((energies < 0).sum()),
        }
    return summary


def split_dataset_group(
    label: str, key: str = extras.GROUP_KEY, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, orm.Group]:
    """Split a dataset group into ``<label>/split-<seed>/{train,validation,test}`` groups by the extra ``key``.

    The decision is made by the ``ccdcgan.split_dataset`` calcfunction, so the split (inputs: the members'
    keys, fractions, seed; output: the assignment) is in the provenance graph. Splitting again with the
    same settings returns the existing groups.
    """
    from ..calculations.functions.split import split_dataset

    group = load_group(label)
    builder = orm.QueryBuilder().append(orm.Group, filters={"id": group.pk}, tag="group")
    builder.append(orm.StructureData, with_group="group", project=["uuid", f"extras.{key}"])
    rows = builder.all()
    if not rows:
        raise DatasetError(f"The group '{label}' holds no structures to split.")
    missing = [uuid for uuid, value in rows if value is None]
    if missing:
        raise DatasetError(
            f"{len(missing)} structures of '{label}' have no extra '{key}' to group by (e.g. {missing[0]}). "
            f"Choose a key they all have, e.g. --key {extras.SOURCE_ID} for an ungrouped split."
        )
    labels = {name: f"{label}/split-{seed}/{name}" for name in ("train", "validation", "test")}
    existing = {name: _find_group(group_label) for name, group_label in labels.items()}
    if all(existing.values()):
        recorded = existing["train"].base.extras.get(extras.GROUP_SPLIT, {})
        if recorded.get("key") == key and recorded.get("fractions") == list(fractions):
            return existing
        raise DatasetError(f"Split groups {labels['train']} etc. exist with other settings; choose another seed.")
    if any(existing.values()):
        raise DatasetError(f"Some of the split groups {', '.join(labels.values())} exist already; delete them first.")

    result = split_dataset(
        orm.Dict({uuid: str(value) for uuid, value in rows}), orm.List(list(fractions)), orm.Int(seed)
    )
    part_of = {uuid: name for name in labels for uuid in result[name]}
    storage = get_manager().get_profile_storage()
    groups = {}
    with storage.transaction():
        # Nodes are loaded only now, inside the transaction: live node objects held across commits are
        # reloaded from the database on every access, which makes large splits crawl.
        builder = orm.QueryBuilder().append(orm.Group, filters={"id": group.pk}, tag="group")
        builder.append(orm.StructureData, with_group="group", project="*")
        members = {name: [] for name in labels}
        for node in builder.all(flat=True):
            members[part_of[node.uuid]].append(node)
        for name, group_label in labels.items():
            part = orm.Group(label=group_label, description=f"{name} part of '{label}', split by '{key}', seed {seed}")
            part.store()
            part.add_nodes(members[name])
            part.base.extras.set(
                extras.GROUP_SPLIT,
                {
                    "dataset": group.uuid,
                    "key": key,
                    "fractions": list(fractions),
                    "seed": seed,
                    "part": name,
                    "split_node": result.uuid,
                },
            )
            groups[name] = part
    return groups
