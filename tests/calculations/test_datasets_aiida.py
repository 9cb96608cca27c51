"""Datasets in the provenance graph: import, re-import, export round trips, transactions, splits."""

import csv

import pytest
from aiida import orm
from dataset_files import (
    assert_same_crystals,
    write_ase_db,
    write_cdvae_csv,
    write_extxyz_file,
    write_folder,
    write_vo_csv,
)

from aiida_ccdcgan.common import extras
from aiida_ccdcgan.dataset import read_extxyz
from aiida_ccdcgan.errors import DatasetError
from aiida_ccdcgan.tools.datasets import (
    crystal_record,
    dataset_summary,
    export_dataset,
    import_dataset,
    split_dataset_group,
    structure_nodes,
    training_file,
)


def _group_records(label):
    return [crystal_record(node) for node in structure_nodes(orm.load_group(label))]


@pytest.mark.parametrize(
    ("fmt", "writer", "name"),
    [
        ("cdvae-csv", write_cdvae_csv, "set.csv"),
        ("vo-csv", write_vo_csv, "set.csv.gz"),
        ("extxyz", write_extxyz_file, "set.extxyz"),
        ("ase-db", write_ase_db, "set.db"),
    ],
)
def test_import_each_format_and_round_trip_through_export(crystals, tmp_path, group_label, fmt, writer, name):
    report = import_dataset(fmt, writer(crystals, tmp_path / name), group_label)
    assert report.stored and report.count == len(crystals) and report.group_label == group_label
    imported = _group_records(group_label)
    assert_same_crystals(crystals, imported)

    builder = orm.QueryBuilder().append(orm.Group, filters={"label": group_label}, tag="group")
    builder.append(orm.StructureData, with_group="group", filters={f"extras.{extras.SOURCE_ID}": "Bi2Se3-R-3m"})
    node = builder.one()[0]
    values = node.base.extras.all
    assert values[extras.FORMULA] == "Bi2Se3" and values[extras.NATOMS] == 5
    assert values[extras.ELEMENTS] == ["Bi", "Se"] and values[extras.CHEMICAL_SYSTEM] == "Bi-Se"
    assert values[extras.FORMATION_ENERGY] == pytest.approx(-0.39)

    export_dataset(orm.load_group(group_label), extxyz_path=tmp_path / "out.extxyz", csv_path=tmp_path / "out.csv")
    again = import_dataset("extxyz", tmp_path / "out.extxyz", f"{group_label}-again")  # may exist from another format
    assert_same_crystals(imported, _group_records(again.group_label))
    with open(tmp_path / "out.csv") as handle:
        rows = {row["source_id"]: row for row in csv.DictReader(handle)}
    assert float(rows["NaCl-B1"]["formation_energy"]) == pytest.approx(-2.1)


def test_folder_import_and_cif_export_round_trip(crystals, tmp_path, group_label):
    folder, energies = write_folder(crystals, tmp_path / "cifs")
    import_dataset("folder", folder, group_label, energies_csv=energies)
    imported = _group_records(group_label)
    assert sorted(r.formation_energy for r in imported) == sorted(c.formation_energy for c in crystals)
    export_dataset(orm.load_group(group_label), cif_folder=tmp_path / "exported")
    again = import_dataset("folder", tmp_path / "exported", f"{group_label}-again").group_label
    for record in imported:  # CIF export names files after the ids; CIFs carry no energies
        record.source_id = record.source_id.removesuffix(".cif") + ".cif"
        record.formation_energy = None
    assert_same_crystals(imported, _group_records(again))


def test_formation_energy_is_queryable(crystals, tmp_path, group_label):
    group_label = import_dataset("cdvae-csv", write_cdvae_csv(crystals, tmp_path / "set.csv"), group_label).group_label

    def low_energy(project):
        builder = orm.QueryBuilder().append(orm.Group, filters={"label": group_label}, tag="group")
        return builder.append(
            orm.StructureData,
            with_group="group",
            project=project,
            filters={f"extras.{extras.FORMATION_ENERGY}": {"<": -0.3}},
        )

    assert sorted(low_energy(f"extras.{extras.SOURCE_ID}").all(flat=True)) == ["Bi2Se3-R-3m", "NaCl-B1"]
    assert export_dataset(low_energy("*"), extxyz_path=tmp_path / "low.extxyz") == 2
    assert sorted(r.source_id for r in read_extxyz(tmp_path / "low.extxyz")) == ["Bi2Se3-R-3m", "NaCl-B1"]


def test_training_file_of_a_group(crystals, tmp_path, group_label):
    """A database Group as the extended XYZ training input: stored once, every label kept, unlabelled refused."""
    group_label = import_dataset("cdvae-csv", write_cdvae_csv(crystals, tmp_path / "set.csv"), group_label).group_label
    group = orm.load_group(group_label)
    dataset = training_file(group, "set.extxyz")
    assert dataset.is_stored and training_file(group, "set.extxyz").pk == dataset.pk
    with dataset.as_path() as path:
        written = {r.source_id: r.formation_energy for r in read_extxyz(path)}
    assert written == {r.source_id: r.formation_energy for r in _group_records(group_label)} and len(written) == 5
    unlabelled = orm.StructureData(pymatgen=crystals[0].structure).store()
    with pytest.raises(DatasetError, match="needs a formation energy for every structure; 1 of 6"):
        training_file([*group.nodes, unlabelled], "set.extxyz")
    with pytest.raises(DatasetError, match="the selection holds no StructureData"):
        training_file([], "empty.extxyz")


def test_reimport_stores_nothing(crystals, tmp_path, group_label, node_count):
    path = write_vo_csv(crystals, tmp_path / "set.csv.gz")
    group_label = import_dataset("vo-csv", path, group_label).group_label  # another test may have imported it
    before = node_count()
    again = import_dataset("vo-csv", path, group_label)
    assert not again.stored and "Already imported" in again.message
    elsewhere = import_dataset("vo-csv", path, f"{group_label}-other")
    assert not elsewhere.stored and group_label in elsewhere.message and elsewhere.group_label == group_label
    assert node_count() == before
    assert not orm.QueryBuilder().append(orm.Group, filters={"label": f"{group_label}-other"}).count()


def test_group_with_a_different_import_is_refused(crystals, tmp_path, group_label, node_count):
    group_label = import_dataset("vo-csv", write_vo_csv(crystals, tmp_path / "set.csv.gz"), group_label).group_label
    before = node_count()
    with pytest.raises(DatasetError, match=f"group '{group_label}' already holds a different import"):
        import_dataset("cdvae-csv", write_cdvae_csv(crystals[:2], tmp_path / "other.csv"), group_label)
    assert node_count() == before and orm.load_group(group_label).count() == len(crystals)


def test_bad_row_stores_nothing(crystals, tmp_path, group_label, node_count):
    path = write_vo_csv(crystals, tmp_path / "set.csv.gz")
    text = path.read_bytes()
    import gzip

    path.write_bytes(gzip.compress(gzip.decompress(text).replace(b"Se-A8,se,Se,0.0", b"Se-A8,se,Se,nan")))
    before = node_count()
    with pytest.raises(DatasetError, match=r"row 3 .*'Se-A8'.*nan"):
        import_dataset("vo-csv", path, group_label)
    assert node_count() == before
    assert not orm.QueryBuilder().append(orm.Group, filters={"label": group_label}).count()


def test_failure_while_storing_rolls_back(crystals, tmp_path, group_label, node_count, monkeypatch):
    def broken_add_nodes(self, nodes):
        raise RuntimeError("disk full")

    crystals[0].formation_energy = -0.4242  # a file no other test imports
    before = node_count()
    monkeypatch.setattr(orm.Group, "add_nodes", broken_add_nodes)
    with pytest.raises(RuntimeError, match="disk full"):
        import_dataset("extxyz", write_extxyz_file(crystals, tmp_path / "set.extxyz"), group_label)
    assert node_count() == before
    assert not orm.QueryBuilder().append(orm.Group, filters={"label": group_label}).count()


def test_summary(crystals, tmp_path, group_label):
    group_label = import_dataset("vo-csv", write_vo_csv(crystals, tmp_path / "set.csv.gz"), group_label).group_label
    summary = dataset_summary(group_label)
    assert summary["structures"] == 5 and summary["with_formation_energy"] == 5
    assert summary["elements"] == ["Bi", "Cl", "Na", "Se"] and summary["chemical_systems"] == 4
    assert summary["group_keys"] == 4
    assert summary["natoms"] == {"min": 2, "max": 5, "mean": 2.8}
    assert (
        summary["formation_energy_per_atom"]["min"] == -2.1 and summary["formation_energy_per_atom"]["below_zero"] == 3
    )
    assert summary["import"]["format"] == "vo-csv" and summary["import"]["count"] == 5


def test_export_errors(group_label):
    with pytest.raises(DatasetError, match="Nothing to write"):
        export_dataset([])
    empty = orm.Group(label=group_label).store()
    with pytest.raises(DatasetError, match="holds no StructureData"):
        export_dataset(empty, csv_path="unused.csv")
    with pytest.raises(DatasetError, match="Only StructureData"):
        export_dataset([orm.Int(1).store()], csv_path="unused.csv")


def test_group_split_is_recorded_deterministic_and_keeps_templates_together(tmp_path, group_label):
    from pymatgen.core import Lattice, Structure

    from aiida_ccdcgan.dataset import CrystalRecord, write_extxyz

    records = [
        CrystalRecord(
            f"s{i}",
            Structure(Lattice.cubic(3 + 0.01 * i), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
            -0.1 * (i % 7),
            f"template-{i // 2}",
        )
        for i in range(40)
    ]
    write_extxyz(records, tmp_path / "set.extxyz")
    import_dataset("extxyz", tmp_path / "set.extxyz", group_label)
    groups = split_dataset_group(group_label, fractions=(0.6, 0.2, 0.2), seed=7)
    parts = {name: {n.base.extras.get(extras.GROUP_KEY) for n in group.nodes} for name, group in groups.items()}
    assert sum(group.count() for group in groups.values()) == 40
    assert [groups[name].count() for name in ("train", "validation", "test")] == [24, 8, 8]
    assert not (parts["train"] & parts["validation"]) and not (parts["train"] & parts["test"])
    assert not (parts["validation"] & parts["test"])

    info = groups["test"].base.extras.get(extras.GROUP_SPLIT)
    decision = orm.load_node(info["split_node"])
    creator = decision.creator
    assert creator.process_type == "aiida.calculations:ccdcgan.split_dataset" and creator.is_finished_ok
    assert creator.inputs.seed.value == 7 and len(creator.inputs.group_keys.get_dict()) == 40
    assert sorted(decision["test"]) == sorted(n.uuid for n in groups["test"].nodes)

    again = split_dataset_group(group_label, fractions=(0.6, 0.2, 0.2), seed=7)
    assert {name: g.uuid for name, g in again.items()} == {name: g.uuid for name, g in groups.items()}
    other = split_dataset_group(group_label, fractions=(0.6, 0.2, 0.2), seed=8)
    assert {n.uuid for n in other["test"].nodes} != {n.uuid for n in groups["test"].nodes}
    with pytest.raises(DatasetError, match="have no extra 'nothing'"):
        split_dataset_group(group_label, key="nothing")
