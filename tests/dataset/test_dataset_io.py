"""The pure dataset layer: readers, checks, writers and round trips, without AiiDA."""

import csv
import gzip

import numpy as np
import pytest
from dataset_files import (
    assert_same_crystals,
    write_ase_db,
    write_cdvae_csv,
    write_extxyz_file,
    write_folder,
    write_vo_csv,
)
from pymatgen.core import Lattice, Structure

from aiida_ccdcgan.dataset import (
    CDVAE_CSV,
    VO_CSV,
    ImportChecks,
    check_structure,
    read_ase_db,
    read_extxyz,
    read_structure_csv,
    read_structure_folder,
    write_cif_folder,
    write_extxyz,
    write_summary_csv,
)
from aiida_ccdcgan.errors import DatasetError


def test_cdvae_csv_reads_structures_energies_and_properties(crystals, tmp_path):
    records = read_structure_csv(write_cdvae_csv(crystals, tmp_path / "set.csv"), CDVAE_CSV)
    assert_same_crystals(crystals, records)
    assert records[0].properties == {"band_gap": 0.5, "spacegroup_number": 166}
    assert records[0].group_key is None


def test_vo_csv_keeps_the_template_as_group_key(crystals, tmp_path):
    records = read_structure_csv(write_vo_csv(crystals, tmp_path / "vo.csv.gz"), VO_CSV)
    assert_same_crystals(crystals, records)
    assert [r.group_key for r in records] == [c.group_key for c in crystals]
    assert records[0].properties == {"formula": "Bi2Se3"}


def test_extxyz_ase_db_and_folder_readers(crystals, tmp_path):
    assert_same_crystals(crystals, read_extxyz(write_extxyz_file(crystals, tmp_path / "set.extxyz")))
    assert_same_crystals(crystals, read_ase_db(write_ase_db(crystals, tmp_path / "set.db")))
    folder, energies = write_folder(crystals, tmp_path / "cifs")
    records = read_structure_folder(folder, energies)
    for crystal in crystals:  # ids are file names in a folder import
        crystal.source_id = next(r.source_id for r in records if r.source_id.rsplit(".", 1)[0] == crystal.source_id)
    assert_same_crystals(crystals, records)


def test_folder_without_energies_has_none(crystals, tmp_path):
    folder, _ = write_folder(crystals, tmp_path / "cifs", with_energies=False)
    assert all(record.formation_energy is None for record in read_structure_folder(folder))


def test_writers_round_trip(crystals, tmp_path):
    write_extxyz(crystals, tmp_path / "out.extxyz")
    assert_same_crystals(crystals, read_extxyz(tmp_path / "out.extxyz"))
    paths = write_cif_folder(crystals, tmp_path / "cif")
    assert sorted(p.name for p in paths) == sorted(f"{c.source_id}.cif" for c in crystals)
    write_summary_csv(crystals, tmp_path / "summary.csv")
    with open(tmp_path / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["source_id"] for row in rows] == [c.source_id for c in crystals]
    assert [float(row["formation_energy"]) for row in rows] == [c.formation_energy for c in crystals]
    assert rows[0]["formula"] == "Bi2Se3" and rows[0]["natoms"] == "5" and rows[0]["note"] == "layered"


def test_cif_names_are_safe_and_unique(crystals, tmp_path):
    crystals[0].source_id = "../../etc/passwd"
    crystals[1].source_id = "a b;rm -rf"
    crystals[2].source_id = "a b;rm -rf"
    names = sorted(p.name for p in write_cif_folder(crystals[:3], tmp_path / "cif"))
    assert names == ["a_b_rm_-rf-2.cif", "a_b_rm_-rf.cif", "etc_passwd.cif"]
    assert all(p.parent == tmp_path / "cif" for p in (tmp_path / "cif").iterdir())


# ---- bad input: every case names the problem and the place ------------------------------------------------


def _vo_rows(tmp_path, rows, header=("id", "prototype_mp_id", "formation_energy", "poscar")):
    path = tmp_path / "bad.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _poscar(species, coords, lattice=Lattice.cubic(4.0)):
    return Structure(lattice, species, coords).to(fmt="poscar")


GOOD = _poscar(["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [("a", "t", "-1.0", GOOD), ("b", "t", "-1.0", "not a poscar at all")],
            r"bad.csv, row 2 .*id 'b'.*cannot read the POSCAR",
        ),
        ([("a", "t", "nan", GOOD)], r"row 1 .*'formation_energy' is nan; energies must be finite"),
        ([("a", "t", "", GOOD)], r"row 1 .*'formation_energy' is missing"),
        ([("a", "t", "abc", GOOD)], r"'formation_energy' = 'abc' is not a number"),
        (
            [("a", "t", "-1", _poscar(["Na", "Cl"], [[0, 0, 0], [0.02, 0.0, 0.0]]))],
            r"0.080 Å apart .*overlapping atoms",
        ),
        (
            [("a", "t", "-1", _poscar(["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).replace("Na", "Xx"))],
            r"Xx0\+ is not a chemical element",
        ),
        (
            [
                (
                    "a",
                    "t",
                    "-1",
                    GOOD.replace(
                        "4.0000000000000000    0.0000000000000000    0.0000000000000000",
                        "0.0000000000000000    0.0000000000000000    0.0000000000000000",
                    ),
                )
            ],
            r"row 1 .*(cell volume is 0|cannot read)",
        ),
        ([], r"has a header but no rows"),
    ],
    ids=[
        "unreadable-row",
        "nan-energy",
        "missing-energy",
        "text-energy",
        "overlapping",
        "not-an-element",
        "zero-volume",
        "no-rows",
    ],
)
def test_bad_csv_rows_are_named(tmp_path, rows, message):
    with pytest.raises(DatasetError, match=message):
        read_structure_csv(_vo_rows(tmp_path, rows), VO_CSV)


def test_unreadable_cif_row_is_named(crystals, tmp_path):
    path = write_cdvae_csv(crystals, tmp_path / "set.csv")
    text = path.read_text().replace("_cell_length_a", "_cell_length_a_broken", 2)  # break the first two CIFs' cells
    path.write_text(text)
    with pytest.raises(DatasetError, match=r"set.csv, row 1 \(id 'Bi2Se3-R-3m'\): cannot read the CIF text"):
        read_structure_csv(path, CDVAE_CSV)


def test_csv_without_structure_column(tmp_path):
    path = _vo_rows(tmp_path, [("a", "t", "-1")], header=("id", "prototype_mp_id", "formation_energy"))
    with pytest.raises(DatasetError, match=r"column\(s\) 'poscar' are missing.*--structure-column"):
        read_structure_csv(path, VO_CSV)


def test_missing_empty_and_garbage_files(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        read_structure_csv(tmp_path / "nope.csv", VO_CSV)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DatasetError, match="the file is empty"):
        read_structure_csv(tmp_path / "empty.csv", VO_CSV)
    (tmp_path / "garbage.extxyz").write_text("3\nnot an xyz header\nH 0 0\n")
    with pytest.raises(DatasetError, match="cannot read as extended XYZ"):
        read_extxyz(tmp_path / "garbage.extxyz")
    (tmp_path / "garbage.db").write_bytes(b"this is no sqlite database" * 10)
    with pytest.raises(DatasetError, match="cannot read as an ASE database"):
        read_ase_db(tmp_path / "garbage.db")
    gz = tmp_path / "truncated.csv.gz"
    gz.write_bytes(gzip.compress(b"id,prototype_mp_id,formation_energy,poscar\n" + b"a,t,1,x\n" * 50)[:40])
    with pytest.raises((DatasetError, EOFError)):
        read_structure_csv(gz, VO_CSV)


def test_folder_errors(crystals, tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        read_structure_folder(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no structure files"):
        read_structure_folder(tmp_path / "empty")
    folder, energies = write_folder(crystals, tmp_path / "cifs")
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a 3\n")
    with pytest.raises(DatasetError, match="cifs/broken.cif: cannot read the CIF"):
        read_structure_folder(folder)
    (folder / "broken.cif").unlink()
    energies.write_text("filename,formation_energy\nghost.cif,1.0\n")
    with pytest.raises(DatasetError, match="energies given for files that are not in"):
        read_structure_folder(folder, energies)


def test_extxyz_frame_errors(crystals, tmp_path):
    crystals[1].formation_energy = float("nan")
    path = write_extxyz_file(crystals, tmp_path / "nan.extxyz")
    with pytest.raises(DatasetError, match="nan.extxyz, frame 1: the energy 'formation_energy' is nan"):
        read_extxyz(path)
    assert len(read_extxyz(path, energy_key=None)) == len(crystals)


def test_check_structure_rules():
    lattice = Lattice.cubic(3.0)
    check_structure(Structure(lattice, ["Bi"], [[0, 0, 0]]), "one atom")  # a single atom in a cell is a crystal
    with pytest.raises(DatasetError, match="no atoms"):
        check_structure(Structure(lattice, [], []), "empty")
    with pytest.raises(DatasetError, match="NaN or infinite"):
        check_structure(Structure(lattice, ["Bi"], [[np.nan, 0, 0]]), "nan")
    with pytest.raises(DatasetError, match=r"own image: atoms 0 \(Bi\) and 0 \(Bi\) are 0.450 Å apart"):
        check_structure(Structure(Lattice.orthorhombic(0.45, 5, 5), ["Bi"], [[0, 0, 0]]), "own image")
    with pytest.raises(DatasetError, match="cell volume is 0.0135"):
        check_structure(Structure(Lattice.cubic(0.238), ["Bi"], [[0, 0, 0]]), "tiny")
    with pytest.raises(DatasetError, match="partially occupied"):
        check_structure(Structure(lattice, [{"Bi": 0.5, "Se": 0.5}], [[0, 0, 0]]), "disordered")
    loose = ImportChecks(min_distance=0.01)
    check_structure(Structure(lattice, ["Bi", "Se"], [[0, 0, 0], [0.05, 0, 0]]), "close", loose)
