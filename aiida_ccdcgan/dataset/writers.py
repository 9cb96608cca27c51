"""Writers for CrystalRecord lists: CIF files, one extended XYZ file, and a CSV summary."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter

from .records import CrystalRecord

SUMMARY_COLUMNS = ("source_id", "formula", "natoms", "formation_energy", "group_key")
"""Leading columns of the CSV summary; the records' properties follow."""

_UNSAFE_FILENAME = re.compile(r"[^0-9A-Za-z._+-]+")


def safe_file_stem(name: str) -> str:
    """Return ``name`` as a file stem without path separators or shell-special characters."""
    stem = _UNSAFE_FILENAME.sub("_", name).strip("._")
    return stem or "structure"


def write_cif_folder(records: Sequence[CrystalRecord], folder: str | Path) -> list[Path]:
    """Write one CIF per record into ``folder`` (created if needed), named after the source ids."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths, used = [], set()
    for record in records:
        stem = safe_file_stem(record.source_id.removesuffix(".cif"))
        candidate, counter = stem, 1
        while candidate in used:
            counter += 1
            candidate = f"{stem}-{counter}"
        used.add(candidate)
        path = folder / f"{candidate}.cif"
        CifWriter(record.structure).write_file(path)
        paths.append(path)
    return paths


def write_extxyz(records: Sequence[CrystalRecord], path: str | Path, energy_key: str = "formation_energy") -> Path:
    """Write all records to one extended XYZ file with ids, energies (eV/atom) and properties in each frame's info."""
    from ase.io import write

    frames = []
    for record in records:
        atoms = AseAtomsAdaptor.get_atoms(record.structure)
        atoms.info = {k: v for k, v in record.properties.items() if v is not None}
        atoms.info["source_id"] = record.source_id
        if record.group_key is not None:
            atoms.info["group_key"] = record.group_key
        if record.formation_energy is not None:
            atoms.info[energy_key] = record.formation_energy
        frames.append(atoms)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, frames, format="extxyz")
    return path


def write_summary_csv(records: Sequence[CrystalRecord], path: str | Path) -> Path:
    """Write one CSV line per record: id, formula, atom count, formation energy, group key, then properties."""
    property_names = sorted({key for record in records for key in record.properties})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*SUMMARY_COLUMNS, *property_names])
        for record in records:
            writer.writerow(
                [
                    record.source_id,
                    record.structure.composition.reduced_formula,
                    len(record.structure),
                    "" if record.formation_energy is None else repr(record.formation_energy),
                    record.group_key or "",
                    *(record.properties.get(name, "") for name in property_names),
                ]
            )
    return path
