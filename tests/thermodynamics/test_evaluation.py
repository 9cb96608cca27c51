"""The field's evaluation definitions (CDVAE validity, uniqueness, novelty, MatterGen S.U.N. and RMSD) on crystals
whose answers are known by construction."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from ase.io import read
from dataset_files import make_crystals
from pymatgen.core import Lattice, Structure

from aiida_ccdcgan.dataset.writers import write_extxyz
from aiida_ccdcgan.evaluation import (
    composition_valid,
    evaluate,
    rmsd_angstrom,
    structural_invalidity,
    summarize,
)
from aiida_ccdcgan.plotting import (
    learning_curves,
    plot_energy_distributions,
    plot_graph_map,
    plot_learning_curves,
    principal_axes,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def known():
    """Bi2Se3, Bi, Se, BiSe (make_crystals) by name."""
    return {record.source_id: record.structure for record in make_crystals()}


def test_structural_and_composition_validity(known):
    assert structural_invalidity(known["Bi2Se3-R-3m"]) is None
    overlapping = Structure(Lattice.cubic(5.0), ["Bi", "Se"], [[0, 0, 0], [0.08, 0, 0]])  # 0.4 Å apart
    assert structural_invalidity(overlapping) == "atoms_too_close"
    flat = Structure(Lattice([[4, 0, 0], [0, 4, 0], [0, 0, 0.005]]), ["Bi"], [[0, 0, 0]])  # 0.08 Å³
    assert structural_invalidity(flat) == "volume_too_small"
    assert structural_invalidity(Structure(Lattice.cubic(1.0), ["Bi"], [[0, 0, 0]])) is None  # images do not count
    assert composition_valid("Bi2Se3") and composition_valid("Bi") and composition_valid("NaCl")
    assert not composition_valid("NaCl2")  # no charge-neutral assignment


def test_rmsd_is_in_angstrom_and_bounded_for_a_failed_match(known):
    bi2se3 = known["Bi2Se3-R-3m"]
    assert rmsd_angstrom(bi2se3, bi2se3) == pytest.approx(0.0, abs=1e-8)
    moved = bi2se3.copy()
    moved.translate_sites([0], [0.1, 0, 0], frac_coords=False)  # one of five atoms moves 0.1 Å
    assert 0.01 < rmsd_angstrom(bi2se3, moved) < 0.1
    per_atom_length = (bi2se3.volume / len(bi2se3)) ** (1 / 3)
    assert rmsd_angstrom(bi2se3, known["BiSe-hex"].scale_lattice(bi2se3.volume / 5 * 2)) == pytest.approx(
        0.5 * per_atom_length, rel=1e-6
    )


def test_rows_and_summary_follow_the_definitions(known):
    overlapping = Structure(Lattice.cubic(5.0), ["Bi", "Se"], [[0, 0, 0], [0.08, 0, 0]])
    short_bond = Structure(Lattice.cubic(4.0), ["Bi", "Se"], [[0, 0, 0], [0.45, 0, 0]])  # 1.8 Å: CDVAE-valid only
    supercell = known["BiSe-hex"].copy()
    supercell.make_supercell([1, 1, 2])  # the same crystal as BiSe-hex
    generated = [known["Bi2Se3-R-3m"], known["BiSe-hex"], supercell, overlapping, short_bond]
    reference = [known["Bi2Se3-R-3m"], known["Bi-A7"], known["Se-A8"]]
    relaxed = [generated[0], generated[1], None, None, generated[4]]
    e_hull = [0.0, 0.05, None, None, 0.3]
    phases = {"Bi2Se3 (known)": known["Bi2Se3-R-3m"], "BiSe (known)": known["BiSe-hex"]}
    rows = evaluate(generated, reference, ["Bi", "Se"], relaxed, e_hull, known_phases=phases)
    assert [row["known_phase"] for row in rows] == ["Bi2Se3 (known)", "BiSe (known)", "BiSe (known)", "", ""]
    assert [row["valid"] for row in rows] == [True, True, True, False, True]
    assert [row["paper_valid"] for row in rows] == [True, True, True, False, False]
    assert rows[3]["invalid_reason"] == "atoms_too_close" and rows[4]["paper_invalid_reason"] == "atoms_too_close"
    assert [row["unique"] for row in rows] == [True, True, False, False, True]
    assert [row["novel"] for row in rows] == [False, True, True, False, True]  # Bi2Se3 is in the reference
    assert [row["stable"] for row in rows] == [True, True, None, None, False]
    assert [row["sun"] for row in rows] == [False, True, None, None, False]
    assert rows[0]["rmsd"] == pytest.approx(0.0, abs=1e-8) and rows[2]["rmsd"] is None
    summary = summarize(rows)
    assert summary["structures"] == 5 and summary["valid"] == 4 and summary["valid_fraction"] == 0.8
    assert summary["paper_valid"] == 3 and summary["unique"] == 3 and summary["novel"] == 3
    assert summary["sun"] == 1 and summary["sun_fraction"] == 0.2 and summary["stable_fraction"] == 0.4
    assert summary["relaxed"] == 3 and summary["mean_rmsd"] == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError, match="need as many relaxed structures"):
        evaluate(generated, reference, ["Bi", "Se"], relaxed[:2], e_hull)


def test_sun_compounds_leaves_out_new_packings_of_one_element(known):
    """A new stable packing of Bi is S.U.N. by the field's definition; ``sun_compounds`` counts the compound only."""
    bcc_bismuth = Structure(Lattice.cubic(3.9), ["Bi", "Bi"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    generated = [known["BiSe-hex"], bcc_bismuth]
    rows = evaluate(generated, [known["Bi2Se3-R-3m"]], ["Bi", "Se"], generated, [0.0, 0.05])
    assert [row["compound"] for row in rows] == [True, False]
    assert [row["sun"] for row in rows] == [True, True]
    summary = summarize(rows)
    assert summary["sun"] == 2 and summary["sun_compounds"] == 1


def test_principal_axes_find_the_direction_of_largest_spread():
    rng = np.random.default_rng(0)
    along = rng.normal(size=(200, 1)) * np.array([[3.0, 0.0, 0.0, 4.0]]) / 5  # spread along (3, 0, 0, 4)/5
    points = (along + 0.01 * rng.normal(size=(200, 4)) + 7.0).reshape(200, 2, 2)
    mean, axes = principal_axes(points)
    assert mean == pytest.approx(np.full(4, 7.0), abs=0.1) and axes.shape == (2, 4)
    assert abs(axes[0] @ np.array([0.6, 0.0, 0.0, 0.8])) == pytest.approx(1.0, abs=1e-3)
    _, single = principal_axes(np.ones((1, 3)))  # one graph: one axis, the second is zero
    assert single.shape == (2, 3) and not single[1].any()


def test_figures_are_written_in_the_format_of_their_suffix(tmp_path):
    constraint = {
        "losses": {"constraint": [1.0, 0.5]},
        "validation_losses": {"constraint": [1.2, 0.8]},
        "loss_functions": {"constraint": "mean squared error of E_f (eV/atom)"},
    }
    metrics = {"stages": {"constraint": constraint, "gan": {"losses": {"g": [2, 1, 0]}}}}  # a run before names
    curves = learning_curves(metrics)
    assert curves == {
        "constraint: constraint": {
            "training": [1.0, 0.5],
            "validation": [1.2, 0.8],
            "loss": "mean squared error of E_f (eV/atom)",
            "x": "epoch",
        },
        "gan: g": {"training": [2, 1, 0], "validation": None, "loss": "loss", "x": "GAN step"},
    }
    rng = np.random.default_rng(1)
    written = [
        plot_learning_curves(curves, tmp_path / "curves.png"),
        plot_energy_distributions({"database": [-0.3, 0.1, 0.2], "generated": [0.5], "none": []}, tmp_path / "e.png"),
        plot_graph_map(
            {
                "training": (rng.normal(size=(20, 4, 4, 1)), rng.normal(size=20)),
                "generated": (np.zeros((0, 4, 4, 1)), []),
            },
            tmp_path / "graphs.svg",
        ),
    ]
    assert [path.read_bytes()[:8] for path in written[:2]] == [PNG_SIGNATURE] * 2
    assert written[2].read_text().lstrip().startswith("<?xml") and "<svg" in written[2].read_text()


@pytest.mark.slow
def test_evaluate_command_on_a_folder_of_cifs(aiida_profile, known, tmp_path):
    """Known crystals, a duplicate, an overlapping and a foreign one, written as CIFs by pymatgen; relaxed with
    CHGNet through AiiDA; the CSV, the JSON and the relaxed structures agree; a second run is served by the cache."""
    folder = tmp_path / "generated"
    folder.mkdir()
    supercell = known["BiSe-hex"].copy()
    supercell.make_supercell([1, 1, 2])
    crystals = {
        "a_Bi2Se3": known["Bi2Se3-R-3m"],  # in the reference: not novel
        "b_BiSe": known["BiSe-hex"],
        "c_BiSe_supercell": supercell,  # the same crystal as b: not unique
        "d_overlapping": Structure(Lattice.cubic(5.0), ["Bi", "Se"], [[0, 0, 0], [0.08, 0, 0]]),
        "e_NaCl2": Structure(Lattice.cubic(5.0), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]]),
    }
    for name, structure in crystals.items():
        structure.to(filename=str(folder / f"{name}.cif"))
    reference = [r for r in make_crystals() if r.source_id in ("Bi2Se3-R-3m", "Bi-A7", "Se-A8")]
    write_extxyz(reference, tmp_path / "reference.extxyz")
    command = [
        str(Path(sys.executable).with_name("aiida-ccdcgan")),
        "-p",
        aiida_profile.name,
        "evaluate",
        folder,
        "--elements",
        "Bi,Se",
        "--reference",
        tmp_path / "reference.extxyz",
        "--potential",
        "chgnet",
        "--output",
        tmp_path / "out",
    ]
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "Relaxing 3 of 5 crystals with chgnet" in done.stdout and "5 crystals: valid 60.0 %" in done.stdout
    assert "Known phases among them: Bi2Se3 R-3m 1×, BiSe P-3m1 0×, Bi4Se3 R-3m 0×, Bi3Se4 R-3m 0×." in done.stdout
    with open(tmp_path / "out" / "structures.csv") as handle:
        rows = list(csv.DictReader(handle))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [row["id"] for row in rows] == [f"{name}.cif" for name in crystals]
    assert [row["valid"] for row in rows] == ["True", "True", "True", "False", "False"]
    assert rows[3]["invalid_reason"] == "atoms_too_close" and rows[4]["invalid_reason"] == "charge_balance"
    assert [row["novel"] for row in rows][:3] == ["False", "True", "True"]
    assert [row["unique"] for row in rows][:3] == ["True", "True", "False"]
    assert [row["known_phase"] for row in rows][:3] == ["Bi2Se3 R-3m", "", ""]
    assert sum(summary["known_phases"].values()) == 1 and len(summary["known_phases"]) == 4
    for key in ("valid", "unique", "novel", "sun"):
        assert summary[key] == sum(row[key] == "True" for row in rows)
        assert summary[f"{key}_fraction"] == pytest.approx(summary[key] / 5)
    assert summary["sun_compounds"] == sum(row["sun"] == row["compound"] == "True" for row in rows)
    assert f"S.U.N.: {summary['sun']} crystals, {summary['sun_compounds']} of them compounds" in done.stdout
    assert summary["paper_distinct_stable"] == sum(
        row["paper_class"] == "stable" and row["unique"] == row["novel"] == "True" for row in rows
    )
    relaxed_rows = [row for row in rows if row["relaxed"] == "True"]
    assert summary["relaxed"] == len(relaxed_rows) == len(read(tmp_path / "out" / "relaxed.extxyz", index=":")) > 0
    assert all(float(row["rmsd"]) >= 0 and row["e_above_hull"] != "" for row in relaxed_rows)
    relaxation = orm.load_node(summary["provenance"]["relaxation"])
    assert relaxation.is_finished_ok and summary["provenance"]["energy_scale"].startswith("chgnet")

    again = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    rerun = orm.load_node(json.loads((tmp_path / "out" / "summary.json").read_text())["provenance"]["relaxation"])
    calculations = [c for c in rerun.called_descendants if isinstance(c, orm.CalcJobNode)]
    assert calculations and all(c.base.caching.is_created_from_cache for c in calculations)
