"""Writers of small dataset files in every supported input format, for the tests."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
from pymatgen.io.ase import AseAtomsAdaptor


def write_cdvae_csv(records, path: Path) -> Path:
    """Write records as a CDVAE-style CSV (material_id, formation_energy_per_atom, band_gap, cif)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "formation_energy_per_atom", "band_gap", "spacegroup.number", "cif"])
        for record in records:
            energy = "" if record.formation_energy is None else record.formation_energy
            writer.writerow(
                [record.source_id, energy, 0.5, record.properties.get("spacegroup"), record.structure.to(fmt="cif")]
            )
    return path


def write_vo_csv(records, path: Path) -> Path:
    """Write records as a gzipped V–O-style CSV (id, prototype_mp_id, formation_energy, poscar)."""
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prototype_mp_id", "formula", "formation_energy", "poscar"])
        for record in records:
            writer.writerow(
                [
                    record.source_id,
                    record.group_key,
                    record.structure.composition.reduced_formula,
                    record.formation_energy,
                    record.structure.to(fmt="poscar"),
                ]
            )
    return path


def write_extxyz_file(records, path: Path) -> Path:
    """Write records as extended XYZ with ``source_id``, ``formation_energy`` and ``group_key`` in the info."""
    from ase.io import write

    frames = []
    for record in records:
        atoms = AseAtomsAdaptor.get_atoms(record.structure)
        atoms.info = {
            "source_id": record.source_id,
            "formation_energy": record.formation_energy,
            "group_key": record.group_key,
        }
        frames.append(atoms)
    write(path, frames, format="extxyz")
    return path


def write_folder(records, folder: Path, with_energies: bool = True) -> tuple[Path, Path | None]:
    """Write records as CIF and POSCAR files (alternating) plus an energies CSV keyed by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, record in enumerate(records):
        name = f"{record.source_id}.cif" if index % 2 == 0 else f"{record.source_id}.vasp"
        record.structure.to(filename=str(folder / name), fmt="cif" if name.endswith(".cif") else "poscar")
        rows.append((name, record.formation_energy))
    energies = None
    if with_energies:
        energies = folder.parent / f"{folder.name}-energies.csv"
        with open(energies, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["filename", "formation_energy"])
            writer.writerows(rows)
    return folder, energies


def write_ase_db(records, path: Path) -> Path:
    """Write records into an ASE SQLite database with ``source_id`` and ``formation_energy`` key-value pairs."""
    import ase.db

    with ase.db.connect(path, type="db", append=False) as database:
        for record in records:
            database.write(
                AseAtomsAdaptor.get_atoms(record.structure),
                source_id=record.source_id,
                formation_energy=record.formation_energy,
                group_key=record.group_key,
            )
    return path


def make_crystals():
    """Return a few small real crystals with formation energies (eV/atom): Bi2Se3, Bi, Se, BiSe, NaCl."""
    from pymatgen.core import Lattice, Structure

    from aiida_ccdcgan.dataset import CrystalRecord

    bi2se3 = Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(4.14, 28.6), ["Bi", "Se", "Se"], [[0, 0, 0.4008], [0, 0, 0], [0, 0, 0.2117]]
    ).get_primitive_structure()
    bismuth = Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(4.546, 11.862), ["Bi"], [[0, 0, 0.2341]]
    ).get_primitive_structure()
    selenium = Structure.from_spacegroup(152, Lattice.hexagonal(4.366, 4.954), ["Se"], [[0.2254, 0, 1 / 3]])
    bise = Structure(Lattice.hexagonal(4.2, 6.0), ["Bi", "Se"], [[0, 0, 0], [1 / 3, 2 / 3, 0.5]])
    rocksalt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()
    return [
        CrystalRecord("Bi2Se3-R-3m", bi2se3, -0.39, "bise-a", {"spacegroup": 166, "note": "layered"}),
        CrystalRecord("Bi-A7", bismuth, 0.0, "bi", {"spacegroup": 166}),
        CrystalRecord("Se-A8", selenium, 0.0, "se", {"spacegroup": 152}),
        CrystalRecord("BiSe-hex", bise, -0.21, "bise-a", {"spacegroup": 187}),
        CrystalRecord("NaCl-B1", rocksalt, -2.1, "nacl", {"spacegroup": 225}),
    ]


def assert_same_crystals(expected, actual):
    """Assert two record lists hold the same crystals (StructureMatcher 0.2/0.3/5°), ids and energies."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5)
    by_id = {record.source_id: record for record in actual}
    assert sorted(by_id) == sorted(record.source_id for record in expected)
    for record in expected:
        other = by_id[record.source_id]
        assert matcher.fit(record.structure, other.structure), record.source_id
        assert other.structure.composition == record.structure.composition
        if record.formation_energy is None:
            assert other.formation_energy is None
        else:
            assert other.formation_energy == pytest.approx(record.formation_energy, abs=1e-9)


TINY_CONFIG = {
    "seed": 1,
    "representation": {"elements": ["Bi", "Se"], "site_grid": 16, "lattice_grid": 16, "sigma": 0.6},
    "site_autoencoder": {"latent": 8, "filters": 8, "epochs": 2, "batch_size": 4},
    "lattice_autoencoder": {"latent": 4, "filters": 8, "epochs": 2, "batch_size": 4},
    "constraint": {"epochs": 2, "batch_size": 4},
    "gan": {"mode": "ccdcgan", "noise_dim": 16, "batch_size": 4, "steps": 3},
}
"""A training configuration small enough for tests: 16³ grids, tiny latents, a few epochs and GAN steps."""


QUICK_RELAX = {"potential": "chgnet", "fmax": 0.1, "max_steps": 40, "workers": 1}
"""Relaxation settings for tests: CHGNet (the fastest potential), loose forces, few steps, in-process."""


ML_EXTRA_MODULES = ("keras", "tensorflow", "torch", "jax", "sevenn", "chgnet", "torch_sim")
"""The top-level modules of the ``ml`` extra (and Keras's other backend)."""


def without_ml_extra(folder: Path) -> dict:
    """Environment variables under which Python runs as if the ``ml`` extra were not installed: a
    ``sitecustomize.py`` in ``folder`` sets each of its modules to None in ``sys.modules``, so that
    ``importlib.util.find_spec`` finds none and importing one raises ImportError, as after ``pip install
    aiida-ccdcgan`` without extras."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        f"import sys\n\nfor name in {ML_EXTRA_MODULES!r}:\n    sys.modules[name] = None\n"
    )
    return {"PYTHONPATH": str(folder)}
