"""The ``aiida-ccdcgan`` command line, run as a user runs it: a separate process on the test profile."""

import csv
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiida import orm
from ase.io import write
from dataset_files import write_cdvae_csv, write_vo_csv
from pymatgen.io.ase import AseAtomsAdaptor

EXECUTABLE = str(Path(sys.executable).with_name("aiida-ccdcgan"))


@pytest.fixture
def cli(aiida_profile):
    """Run ``aiida-ccdcgan -p <test profile> ARGS`` and return the completed process."""

    def run(*args, cwd=None):
        return subprocess.run(
            [EXECUTABLE, "-p", aiida_profile.name, *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=300,
        )

    return run


def test_import_summary_reimport_split_and_export(cli, crystals, tmp_path, group_label):
    crystals[0].formation_energy = -0.3917  # a file no other test imports
    path = write_vo_csv(crystals, tmp_path / "set.csv.gz")
    first = cli("import", "vo-csv", path, "--group", group_label)
    assert first.returncode == 0, first.stderr
    assert f"Imported 5 structures from set.csv.gz into group '{group_label}'" in first.stdout
    assert "structures  5" in first.stdout and "E_f (eV/atom)  -2.1 … 0.0" in first.stdout

    again = cli("import", "vo-csv", path, "--group", group_label)
    assert again.returncode == 0 and "Already imported" in again.stdout
    assert orm.load_group(group_label).count() == 5

    summary = cli("dataset", "summary", group_label, "--json")
    assert json.loads(summary.stdout)["group_keys"] == 4

    split = cli("dataset", "split", group_label, "--fractions", "0.6", "0.2", "0.2", "--seed", "3")
    assert split.returncode == 0, split.stderr
    parts = {name: orm.load_group(f"{group_label}/split-3/{name}").count() for name in ("train", "validation", "test")}
    assert sum(parts.values()) == 5

    exported = cli(
        "export",
        group_label,
        "--cif-dir",
        "cifs",
        "--extxyz",
        "all.extxyz",
        "--csv",
        "all.csv",
        "--max-formation-energy",
        "-0.3",
        cwd=tmp_path,
    )
    assert exported.returncode == 0, exported.stderr
    assert "Exported 2 structures" in exported.stdout
    assert sorted(p.name for p in (tmp_path / "cifs").iterdir()) == ["Bi2Se3-R-3m.cif", "NaCl-B1.cif"]
    assert (tmp_path / "all.csv").read_text().count("\n") == 3


BISE_POSCAR = """Bi Se
1.0
4.14 0 0
-2.07 3.585 0
0 0 28.6
Bi Se
1 1
Direct
0 0 0
0.5 0.5 0.5
"""
"""A two-atom Bi–Se cell that the bad files below spoil one way each."""

BAD_FOLDERS = {
    "garbage-cif": ("bad.cif", "data_x\n_cell_length_a 4\nloop_ garbage ###\n"),
    "garbage-poscar": ("POSCAR_bad", "hello\nworld\n1 2 3\n"),
    "overlapping-atoms": ("overlap.vasp", BISE_POSCAR.replace("0.5 0.5 0.5", "0.001 0 0")),
    "zero-volume": ("flat.vasp", BISE_POSCAR.replace("0 0 28.6", "4.14 0 0")),
    "unknown-element": ("xx.vasp", BISE_POSCAR.replace("Bi Se\n1 1", "Bi Xx\n1 1")),
}
"""Folders of one good and one bad structure file, by the kind of damage."""


def _bad_files(crystals, tmp_path):
    """Write every bad input the table below refers to into ``tmp_path``."""
    write_vo_csv(crystals, tmp_path / "vo.csv.gz")
    crystals[1].formation_energy = float("nan")
    write_vo_csv(crystals, tmp_path / "nan.csv.gz")
    (tmp_path / "empty.extxyz").write_text("")
    whole = tmp_path / "whole.extxyz"
    write(whole, [AseAtomsAdaptor.get_atoms(c.structure) for c in crystals], format="extxyz")
    (tmp_path / "truncated.extxyz").write_text(whole.read_text()[:300])
    (tmp_path / "single-atom.extxyz").write_text("1\nProperties=species:S:1:pos:R:3 formation_energy=0.0\nBi 0 0 0\n")
    for name, (filename, text) in BAD_FOLDERS.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "good.vasp").write_text(BISE_POSCAR)
        (tmp_path / name / filename).write_text(text)
    (tmp_path / "no-structures").mkdir()
    (tmp_path / "no-structures" / "notes.txt").write_text("nothing here")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "vo-csv", "missing.csv.gz"], "missing.csv.gz: no such file"),
        (
            ["import", "cdvae-csv", "vo.csv.gz"],
            "column(s) 'cif', 'material_id', 'formation_energy_per_atom' are missing",
        ),
        (["import", "extxyz", "empty.extxyz"], "empty.extxyz: the file is empty"),
        (["import", "extxyz", "truncated.extxyz"], "truncated.extxyz: cannot read as extended XYZ"),
        (["import", "extxyz", "single-atom.extxyz"], "frame 0: the frame is not periodic in all three directions"),
        (
            ["import", "csv", "vo.csv.gz", "--structure-format", "poscar", "--structure-column", "poscar"],
            "A plain CSV import needs id_column",
        ),
        (["import", "vo-csv", "nan.csv.gz"], "row 2 (id 'Bi-A7'): the energy 'formation_energy' is nan"),
        (["import", "folder", "garbage-cif"], "bad.cif: cannot read the CIF text"),
        (["import", "folder", "garbage-poscar"], "POSCAR_bad: cannot read the POSCAR text"),
        (["import", "folder", "overlapping-atoms"], "closer than 0.5 Å: overlapping atoms"),
        (["import", "folder", "zero-volume"], "the cell volume is 0 Å³"),
        (["import", "folder", "unknown-element"], "is not a chemical element. Use element symbols"),
        (["import", "folder", "no-structures"], "no structure files (*.cif, *.vasp, *.poscar, POSCAR*, CONTCAR*)"),
        (["dataset", "summary", "no-such-group"], "No group 'no-such-group'"),
        (["dataset", "summary", "EMPTY"], "holds no structures (it is empty)"),
        (["dataset", "summary", "WRONG-TYPE"], "holds no structures (its 1 node(s) are not StructureData)"),
        (["dataset", "split", "EMPTY"], "holds no structures to split"),
        (["export", "no-such-group", "--csv", "x.csv"], "No group 'no-such-group'"),
        (["export", "WRONG-TYPE", "--csv", "x.csv"], "Nothing to export: the selection holds no StructureData"),
        (
            ["represent", "roundtrip", "whole.extxyz", "--elements", "V,O"],
            "is not one of the representation's elements (V, O)",
        ),
        (["represent", "roundtrip", "whole.extxyz", "--elements", "Bi,Qq"], "'Qq' is not an element symbol"),
        (["evaluate", "999999999"], "'999999999' is neither a file or folder of structures nor the pk/uuid"),
        (["evaluate", "whole.extxyz"], "--elements is needed for files"),
        (["evaluate", "whole.extxyz", "--elements", "V,O"], "--reference is needed for a system other than Bi–Se"),
        (["evaluate", "garbage-cif", "--elements", "Bi,Se"], "bad.cif: cannot read the CIF text"),
        (
            ["evaluate", "whole.extxyz", "--elements", "Bi,Se", "--potential", "chgnet", "--reference-on-hull"],
            "on the energy scale sevennet:7net-0 and the new crystals' would be on chgnet:0.3.0",
        ),
        (["evaluate", "DATA-NODE"], "is not a finished ccdcgan.inverse_design loop"),
        (["plot", "999999999"], "'999999999' is not the pk or uuid of a node in this profile"),
        (["plot", "DATA-NODE"], "is not a finished ccdcgan.inverse_design loop"),
    ],
    ids=[
        "missing-file",
        "wrong-columns",
        "empty-file",
        "truncated-extxyz",
        "single-atom-without-a-cell",
        "csv-without-id",
        "nan-energy",
        "garbage-cif",
        "garbage-poscar",
        "overlapping-atoms",
        "zero-volume",
        "unknown-element",
        "folder-without-structures",
        "unknown-group",
        "empty-group",
        "group-of-another-type",
        "split-empty-group",
        "export-unknown-group",
        "export-group-of-another-type",
        "element-outside-the-representation",
        "unknown-element-in-the-representation",
        "evaluate-unknown-node",
        "evaluate-without-elements",
        "evaluate-without-reference",
        "evaluate-garbage-cif",
        "evaluate-on-a-hull-of-another-scale",
        "evaluate-a-data-node",
        "plot-unknown-node",
        "plot-a-data-node",
    ],
)
def test_bad_input_exits_1_with_a_clear_message_and_stores_nothing(
    cli, crystals, tmp_path, group_label, node_count, args, message
):
    """The bad-input table of the command line: exit status 1, a message naming the problem, nothing stored."""
    _bad_files(crystals, tmp_path)
    empty, _ = orm.Group.collection.get_or_create(f"{group_label}-empty")
    wrong_type, _ = orm.Group.collection.get_or_create(f"{group_label}-wrong-type")
    data_node = orm.Int(3).store()
    wrong_type.add_nodes(data_node)
    names = {"EMPTY": empty.label, "WRONG-TYPE": wrong_type.label, "DATA-NODE": str(data_node.pk)}
    args = [names.get(arg, arg) for arg in args]
    before = node_count()
    result = cli(*args, *(["--group", group_label] if args[0] == "import" else []), cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr
    assert node_count() == before


def test_group_holding_another_import_is_refused(cli, crystals, tmp_path, group_label):
    crystals[0].formation_energy = -0.3918
    assert (
        cli("import", "cdvae-csv", write_cdvae_csv(crystals, tmp_path / "a.csv"), "--group", group_label).returncode
        == 0
    )
    result = cli("import", "vo-csv", write_vo_csv(crystals, tmp_path / "b.csv.gz"), "--group", group_label)
    assert result.returncode == 1 and f"group '{group_label}' already holds a different import" in result.stderr


def test_usage_errors_exit_2(cli):
    assert cli("import", "vo-csv").returncode == 2  # no file, no group
    assert cli("import", "nonsense-format", "x", "--group", "g").returncode == 2


@pytest.mark.slow
def test_a_fresh_presto_profile_takes_an_import(tmp_path, shared_data):
    """On a fresh `verdi presto` profile (SQLite, as a new user has), the CLI imports and summarises a dataset."""
    environment = {**os.environ, "AIIDA_PATH": str(tmp_path / "aiida")}
    verdi = str(Path(sys.executable).with_name("verdi"))
    presto = subprocess.run([verdi, "presto"], capture_output=True, text=True, env=environment, timeout=300)
    assert presto.returncode == 0, presto.stderr
    profile = subprocess.run([verdi, "profile", "show"], capture_output=True, text=True, env=environment).stdout
    assert "core.sqlite_dos" in profile
    result = subprocess.run(
        [EXECUTABLE, "import", "cdvae-csv", shared_data / "mp20_subset_trainval.csv.gz", "--group", "mp20"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Imported 2129 structures" in result.stdout and "structures  2129" in result.stdout
    assert "with formation energy  2129" in result.stdout


@pytest.mark.slow
def test_full_vo_dataset_import(cli, shared_data, group_label):
    """The acceptance import: all 9,873 V–O structures, with energies and templates, queryable by energy."""
    result = cli("import", "vo-csv", shared_data / "vo_imatgen_dft.csv.gz", "--group", group_label, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["structures"] == 9873 and summary["with_formation_energy"] == 9873
    assert summary["elements"] == ["O", "V"] and summary["natoms"]["min"] == 2 and summary["natoms"]["max"] == 20
    builder = orm.QueryBuilder().append(orm.Group, filters={"label": summary["group"]}, tag="group")
    builder.append(orm.StructureData, with_group="group", filters={"extras.formation_energy_per_atom": {"<": -2.0}})
    assert 0 < builder.count() < 9873
    with gzip.open(shared_data / "vo_imatgen_dft.csv.gz", "rt", newline="") as handle:
        csv.field_size_limit(2**31 - 1)
        templates = {row["prototype_mp_id"] for row in csv.DictReader(handle)}
    assert summary["group_keys"] == len(templates)


def test_represent_roundtrip_command(cli, crystals, tmp_path):
    from aiida_ccdcgan.dataset import write_extxyz

    write_extxyz(crystals, tmp_path / "set.extxyz")
    result = cli("represent", "roundtrip", tmp_path / "set.extxyz", "--elements", "auto", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 5 and report["matched"] == 5 and report["match_rate"] == 1.0
    assert set(report) >= {"failures", "outside_limits", "encode_structures_per_s", "decode_structures_per_s"}
    wrong = cli("represent", "roundtrip", tmp_path / "set.extxyz", "--elements", "Bi,Se")
    assert wrong.returncode == 1 and "Structure 4 (NaCl)" in wrong.stderr
    assert "is not one of the representation's elements (Bi, Se)" in wrong.stderr


@pytest.mark.slow
def test_represent_roundtrip_on_the_vo_dataset(cli, shared_data):
    """Without any network, the representation gives back (nearly) every V–O crystal."""
    result = cli(
        "represent",
        "roundtrip",
        shared_data / "vo_imatgen_dft.csv.gz",
        "--elements",
        "V,O",
        "--limit",
        "3000",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 3000
    assert report["matched"] / report["n"] >= 0.999, report


DESIGN_REFUSALS = {
    "Cd,Xx": "'Xx' in 'Cd,Xx' is not an element symbol",
    "Cd,Cd": "Cd is given twice",
    "Cd": "names 1 element(s); the loop designs binary and ternary systems",
    "Cd,Li,Co,O": "names 4 element(s)",
    "Cd,Po": "sevennet was not trained on Po",
    "Mn,Se": "No built-in reference crystal for Mn",
    "Bi,Se --potential chgnet": "the shipped Bi-Se database is on the energy scale sevennet:7net-0",
    "Bi,Se --templates 5": "Bi-Se trains on its shipped database",
    "Cd,Li --templates 0": "--templates 0: give 1 to 856",
    "Cd,Li --min-distance -1": "--min-distance -1.0: give a distance in Å above 0",
    "Cd,Li --rounds 0": "--rounds 0: give 1 or more",
    "Cd,Li --mode gan": "--mode gan: choose one of dcgan, dcgan_constraint, ccdcgan",
    "Co,Li,O --figure hull.png": "the hull figure is drawn for binary systems only",
}
"""``aiida-ccdcgan design`` arguments that must be refused, and what the refusal says."""


def test_design_refuses_bad_systems_before_anything_is_stored(cli, node_count):
    before = node_count()
    for arguments, message in DESIGN_REFUSALS.items():
        result = cli("design", *arguments.split())
        assert result.returncode == 1, (arguments, result.stdout, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, (arguments, result.stderr)
    assert node_count() == before
