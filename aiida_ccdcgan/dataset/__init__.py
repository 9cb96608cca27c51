"""Crystal datasets without AiiDA: reading, checking, writing and splitting."""

from .checks import ImportChecks, check_structure
from .readers import (
    CDVAE_CSV,
    CSV_LAYOUTS,
    IMPORT_FORMATS,
    VO_CSV,
    CsvLayout,
    read_ase_db,
    read_dataset,
    read_extxyz,
    read_structure_csv,
    read_structure_folder,
    source_digest,
)
from .records import CrystalRecord
from .split import SPLIT_NAMES, group_split
from .writers import write_cif_folder, write_extxyz, write_summary_csv

__all__ = (
    "CDVAE_CSV",
    "CSV_LAYOUTS",
    "IMPORT_FORMATS",
    "SPLIT_NAMES",
    "VO_CSV",
    "CrystalRecord",
    "CsvLayout",
    "ImportChecks",
    "check_structure",
    "group_split",
    "read_ase_db",
    "read_dataset",
    "read_extxyz",
    "read_structure_csv",
    "read_structure_folder",
    "source_digest",
    "write_cif_folder",
    "write_extxyz",
    "write_summary_csv",
)
