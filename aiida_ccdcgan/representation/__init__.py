"""Crystal ↔ voxel representation of CCDCGAN, in plain NumPy (no AiiDA, no Keras)."""

from .config import VoxelConfig, own_elements
from .decode import DecodeFailure, DecodeResult, decode_batch, decode_crystal, decode_lattice, find_peaks
from .encode import (
    CanonicalCrystal,
    canonical_crystal,
    check_representable,
    encode_structures,
    lattice_voxels,
    representable_crystals,
    site_voxels,
)

__all__ = (
    "CanonicalCrystal",
    "DecodeFailure",
    "DecodeResult",
    "VoxelConfig",
    "canonical_crystal",
    "check_representable",
    "decode_batch",
    "decode_crystal",
    "decode_lattice",
    "encode_structures",
    "find_peaks",
    "lattice_voxels",
    "own_elements",
    "representable_crystals",
    "site_voxels",
)
