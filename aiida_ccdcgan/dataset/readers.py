"""Readers that turn dataset files into :class:`CrystalRecord` lists, checking every crystal on the way.

Every reader raises :class:`DatasetError` with the file and the row (or frame, or file name) at fault,
so that a caller can refuse the whole import before anything is stored.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import inspect
import io
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from ..errors import DatasetError
from .checks import ImportChecks, check_structure
from .records import CrystalRecord, parse_energy, sanitise_key, scalar_property

STRUCTURE_FILE_PATTERNS = ("*.cif", "*.vasp", "*.poscar", "POSCAR*", "CONTCAR*")
"""File names :func:`read_structure_folder` treats as structures."""


@dataclasses.dataclass(frozen=True)
class CsvLayout:
    """Which columns of a structure CSV hold what.

    ``structure_format`` is ``cif`` or ``poscar``; ``energy_column`` and ``group_key_column`` may be
    ``None`` when the file has no such column. All other columns are kept as properties.
    """

    structure_column: str
    structure_format: str
    id_column: str
    energy_column: str | None
    group_key_column: str | None = None


CDVAE_CSV = CsvLayout("cif", "cif", "material_id", "formation_energy_per_atom")
"""The CDVAE/MP-20 layout: CIF text in ``cif``, ids in ``material_id``, energies in eV/atom."""

VO_CSV = CsvLayout("poscar", "poscar", "id", "formation_energy", "prototype_mp_id")
"""The iMatGen V–O layout: POSCAR text, ids ``mp-<template>_copy<k>_opt``, grouped by template."""


def _open_text(path: Path) -> io.TextIOBase:
    """Open a text file, transparently decompressing ``.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _require_file(path: str | Path) -> Path:
    """Return ``path`` as a Path or raise a :class:`DatasetError` if it is not a readable, non-empty file."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file. Check the path.")
    if not path.is_file():
        raise DatasetError(f"{path}: not a file.")
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: the file is empty.")
    return path


def _parse_structure_text(text: str, fmt: str, where: str) -> Structure:
    """Parse CIF or POSCAR text into a Structure, turning every parser failure into a :class:`DatasetError`."""
    if not text or not text.strip():
        raise DatasetError(f"{where}: the structure text is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_str(text, fmt=fmt)
    except Exception as exception:  # pymatgen raises many types for bad text
        raise DatasetError(
            f"{where}: cannot read the {fmt.upper()} text ({type(exception).__name__}: {exception})."
        ) from None
    return structure


def read_structure_csv(
    path: str | Path,
    layout: CsvLayout,
    checks: ImportChecks = ImportChecks(),
    progress: Callable[[Iterator], Iterator] | None = None,
) -> list[CrystalRecord]:
    """Read a CSV (optionally gzipped) with one structure per row, laid out as ``layout`` says."""
    path = _require_file(path)
    csv.field_size_limit(2**31 - 1)
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if not columns:
            raise DatasetError(f"{path}: the file has no header line.")
        required = [layout.structure_column, layout.id_column]
        required += [c for c in (layout.energy_column, layout.group_key_column) if c]
        missing = [c for c in required if c not in columns]
        if missing:
            raise DatasetError(
                f"{path}: the column(s) {', '.join(map(repr, missing))} are missing (found: {', '.join(columns)}). "
                "Name the right columns with --structure-column / --id-column / --energy-column."
            )
        used = set(required)
        property_columns = {column: sanitise_key(column) for column in columns if column not in used}
        rows = reader if progress is None else progress(reader)
        records = []
        for row_number, row in enumerate(rows, start=1):
            where = f"{path.name}, row {row_number} (id {row.get(layout.id_column)!r})"
            if None in row:
                raise DatasetError(f"{where}: the row has more fields than the header.")
            structure = _parse_structure_text(row[layout.structure_column], layout.structure_format, where)
            check_structure(structure, where, checks)
            energy = None
            if layout.energy_column:
                energy = parse_energy(row[layout.energy_column], where, layout.energy_column)
            records.append(
                CrystalRecord(
                    source_id=str(row[layout.id_column]),
                    structure=structure,
                    formation_energy=energy,
                    group_key=row[layout.group_key_column] if layout.group_key_column else None,
                    properties={key: _csv_value(row[column]) for column, key in property_columns.items()},
                )
            )
    if not records:
        raise DatasetError(f"{path}: the file has a header but no rows.")
    return records


def _csv_value(text: str | None):
    """Return a CSV cell as int, float or text, whichever it reads as."""
    if text is None or text == "":
        return None
    for convert in (int, float):
        try:
            return scalar_property(convert(text))
        except ValueError:
            pass
    return text


def read_extxyz(
    path: str | Path,
    energy_key: str | None = "formation_energy",
    id_key: str = "source_id",
    group_key: str | None = "group_key",
    checks: ImportChecks = ImportChecks(),
) -> list[CrystalRecord]:
    """Read an extended XYZ file of periodic frames; energies (eV/atom) come from each frame's info."""
    from ase.io import read

    path = _require_file(path)
    try:
        if path.suffix == ".gz":  # ASE seeks back in its input: in a gzip stream each seek decompresses from the start
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                frames = read(io.StringIO(handle.read()), index=":", format="extxyz")
        else:
            frames = read(path, index=":", format="extxyz")
    except Exception as exception:
        raise DatasetError(f"{path}: cannot read as extended XYZ ({type(exception).__name__}: {exception}).") from None
    if not frames:
        raise DatasetError(f"{path}: the file holds no frames.")
    records = []
    for index, atoms in enumerate(frames):
        where = f"{path.name}, frame {index}"
        if not atoms.pbc.all():
            raise DatasetError(
                f"{where}: the frame is not periodic in all three directions (pbc={atoms.pbc.tolist()})."
            )
        records.append(
            _record_from_atoms(atoms, dict(atoms.info), f"{index}", where, energy_key, id_key, group_key, checks)
        )
    return records


def read_ase_db(
    path: str | Path,
    energy_key: str | None = "formation_energy",
    id_key: str = "source_id",
    group_key: str | None = "group_key",
    checks: ImportChecks = ImportChecks(),
) -> list[CrystalRecord]:
    """Read an ASE database (SQLite file); energies (eV/atom) come from each row's key-value pairs."""
    import ase.db

    path = _require_file(path)
    try:
        with ase.db.connect(path, type="db") as database:
            rows = list(database.select())
    except Exception as exception:
        raise DatasetError(
            f"{path}: cannot read as an ASE database ({type(exception).__name__}: {exception})."
        ) from None
    if not rows:
        raise DatasetError(f"{path}: the database holds no rows.")
    return [
        _record_from_atoms(
            row.toatoms(),
            dict(row.key_value_pairs),
            f"{row.id}",
            f"{path.name}, row id {row.id}",
            energy_key,
            id_key,
            group_key,
            checks,
        )
        for row in rows
    ]


def _record_from_atoms(atoms, info, default_id, where, energy_key, id_key, group_key, checks) -> CrystalRecord:
    """Build a checked record from ASE atoms and their info/key-value dictionary."""
    try:
        structure = AseAtomsAdaptor.get_structure(atoms)
    except Exception as exception:
        raise DatasetError(f"{where}: cannot build a crystal ({type(exception).__name__}: {exception}).") from None
    check_structure(structure, where, checks)
    energy = parse_energy(info.get(energy_key), where, energy_key) if energy_key else None
    used = {energy_key, id_key, group_key}
    properties = {sanitise_key(k): scalar_property(v) for k, v in info.items() if k not in used and _is_scalar(v)}
    return CrystalRecord(
        source_id=str(info.get(id_key, default_id)),
        structure=structure,
        formation_energy=energy,
        group_key=str(info[group_key]) if group_key and group_key in info else None,
        properties=properties,
    )


def _is_scalar(value) -> bool:
    """Whether ``value`` is a scalar worth keeping as a property."""
    return isinstance(value, bool | int | float | str) or (hasattr(value, "ndim") and value.ndim == 0)


def structure_files(folder: Path) -> list[Path]:
    """Return the structure files of ``folder`` (see :data:`STRUCTURE_FILE_PATTERNS`), sorted by name."""
    return sorted({p for pattern in STRUCTURE_FILE_PATTERNS for p in folder.glob(pattern) if p.is_file()})


def read_structure_folder(
    folder: str | Path,
    energies_csv: str | Path | None = None,
    file_column: str = "filename",
    energy_column: str = "formation_energy",
    checks: ImportChecks = ImportChecks(),
) -> list[CrystalRecord]:
    """Read every CIF/POSCAR file of a folder; energies (eV/atom) optionally from a CSV keyed by file name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder. Check the path.")
    files = structure_files(folder)
    if not files:
        raise DatasetError(f"{folder}: no structure files ({', '.join(STRUCTURE_FILE_PATTERNS)}) in the folder.")
    energies = _read_energy_table(energies_csv, file_column, energy_column) if energies_csv else None
    if energies is not None:
        unknown = sorted(set(energies) - {p.name for p in files})
        if unknown:
            raise DatasetError(
                f"{energies_csv}: energies given for files that are not in {folder}: {', '.join(unknown[:5])}."
            )
    records = []
    for path in files:
        where = f"{folder.name}/{path.name}"
        if path.stat().st_size == 0:
            raise DatasetError(f"{where}: the file is empty.")
        fmt = "cif" if path.suffix.lower() == ".cif" else "poscar"
        structure = _parse_structure_text(path.read_text(encoding="utf-8", errors="replace"), fmt, where)
        check_structure(structure, where, checks)
        energy = None
        if energies is not None:
            if path.name not in energies:
                raise DatasetError(f"{where}: no energy for this file in {energies_csv}.")
            energy = parse_energy(energies[path.name], f"{energies_csv}, file {path.name}", energy_column)
        records.append(CrystalRecord(source_id=path.name, structure=structure, formation_energy=energy))
    return records


def _read_energy_table(path: str | Path, file_column: str, energy_column: str) -> dict[str, str]:
    """Read a CSV mapping file names to energy strings."""
    path = _require_file(path)
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in (file_column, energy_column) if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(
                f"{path}: the column(s) {', '.join(map(repr, missing))} are missing (found: {reader.fieldnames})."
            )
        return {row[file_column]: row[energy_column] for row in reader}


CSV_LAYOUTS = {"cdvae-csv": CDVAE_CSV, "vo-csv": VO_CSV}
"""Named CSV layouts; their columns can be overridden per import."""

IMPORT_FORMATS = ("cdvae-csv", "vo-csv", "csv", "extxyz", "folder", "ase-db")
"""Formats :func:`read_dataset` reads."""


def source_digest(path: Path, extra_files: Iterable[Path] = ()) -> str:
    """Return the sha256 of a file, or of a folder's structure files (names and contents), plus extra files."""
    digest = hashlib.sha256()
    if path.is_dir():
        files = structure_files(path)
    else:
        files = [path]
    for file in [*files, *extra_files]:
        digest.update(file.name.encode() if path.is_dir() else b"")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_dataset(fmt: str, path: str | Path, checks: ImportChecks = ImportChecks(), **options) -> list[CrystalRecord]:
    """Read a dataset file in one of :data:`IMPORT_FORMATS` into checked records.

    Options by format: ``cdvae-csv`` and ``vo-csv`` take column overrides (``structure_column``,
    ``id_column``, ``energy_column``, ``group_key_column``); ``csv`` needs all of ``structure_column``,
    ``structure_format`` and ``id_column``; ``extxyz`` and ``ase-db`` take ``energy_key``, ``id_key`` and
    ``group_key``; ``folder`` takes ``energies_csv``, ``file_column`` and ``energy_column``.
    """
    progress = options.pop("progress", None)
    options = {k: v for k, v in options.items() if v is not None}
    if fmt in CSV_LAYOUTS or fmt == "csv":
        unknown = set(options) - {field.name for field in dataclasses.fields(CsvLayout)}
        if unknown:
            raise DatasetError(f"Unknown option(s) for a {fmt} import: {', '.join(sorted(unknown))}.")
        fields = dataclasses.asdict(CSV_LAYOUTS[fmt]) if fmt in CSV_LAYOUTS else {}
        fields.update(options)
        for optional in ("energy_column", "group_key_column"):
            fields[optional] = fields.get(optional) or None
        missing = [f.name for f in dataclasses.fields(CsvLayout) if f.name not in fields]
        if missing:
            raise DatasetError(f"A plain CSV import needs {', '.join(missing)}.")
        if fields["structure_format"] not in ("cif", "poscar"):
            raise DatasetError(f"structure_format must be 'cif' or 'poscar', not {fields['structure_format']!r}.")
        return read_structure_csv(path, CsvLayout(**fields), checks=checks, progress=progress)
    readers: dict[str, Callable[..., list[CrystalRecord]]] = {
        "extxyz": read_extxyz,
        "ase-db": read_ase_db,
        "folder": read_structure_folder,
    }
    if fmt not in readers:
        raise DatasetError(f"Unknown dataset format {fmt!r}; choose one of {', '.join(IMPORT_FORMATS)}.")
    for optional in ("energy_key", "group_key"):
        if options.get(optional) == "":
            options[optional] = None
    unknown = set(options) - set(inspect.signature(readers[fmt]).parameters)
    if unknown:
        raise DatasetError(f"Unknown option(s) for a {fmt} import: {', '.join(sorted(unknown))}.")
    return readers[fmt](path, checks=checks, **options)
