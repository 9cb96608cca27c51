"""The one configuration object of the crystal ↔ voxel representation."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

from pymatgen.core import Element

from ..errors import RepresentationError


@dataclasses.dataclass(frozen=True)
class VoxelConfig:
    """Everything that defines the crystal ↔ voxel representation; recorded with every model trained on it.

    Site voxels: one channel per element of ``elements`` (a fixed element → channel map), a periodic cubic
    box of ``box_length`` Å on a ``site_grid``³ grid with grid points at i·h (h = box_length / site_grid).
    Lattice voxel: a ``lattice_grid``³ grid on the crystal's own fractional coordinates with one pseudo-atom
    at the cell centre. A crystal given in a cell larger than its primitive cell (a conventional cell, a supercell)
    is first reduced to its primitive cell, found with ``primitive_tolerance`` Å (pymatgen's
    ``get_primitive_structure``; the tolerance StructureMatcher reduces with); ``None`` keeps every cell as given.
    Every atom is a Gaussian exp(−r²/2σ²) with σ = ``sigma`` Å, zero where it is below
    ``threshold``. The defaults are those of the authors' code (σ = 0.26 Å; the paper's "σ = 0.15" is a
    gaussian_filter width in voxel units, a different thing).

    Decoding: the cell is fitted to the lattice voxels of at least ``lattice_fit_threshold`` (decoded voxels are
    noisy, and the fit's ln p amplifies noise at small values); a site voxel is a peak when it is at least ``peak_threshold`` and no smaller than its 26
    neighbours; peaks of one element closer than ``merge_distance`` Å are one atom. Validity:
    ``min_distance`` Å between atoms (periodic images included; 2.0 Å is the paper's Bi–Se rule),
    ``min_volume`` Å³ per atom, at most ``max_atoms`` atoms.
    """

    elements: tuple[str, ...]
    box_length: float = 15.0
    site_grid: int = 64
    lattice_grid: int = 32
    sigma: float = 0.26
    threshold: float = 0.02
    peak_threshold: float = 0.3
    lattice_fit_threshold: float = 0.1
    merge_distance: float = 0.5
    min_distance: float = 2.0
    min_volume_per_atom: float = 1.0
    max_atoms: int = 20
    primitive_tolerance: float | None = 0.25

    def __post_init__(self):
        if not self.elements:
            raise RepresentationError("The representation needs at least one element.")
        if len(set(self.elements)) != len(self.elements):
            raise RepresentationError(
                f"The element list {list(self.elements)} repeats an element; each needs one channel."
            )
        for symbol in self.elements:
            if not Element.is_valid_symbol(symbol):
                raise RepresentationError(f"{symbol!r} is not an element symbol.")
        if self.site_grid < 8 or self.lattice_grid < 8 or self.site_grid % 2 or self.lattice_grid % 2:
            raise RepresentationError("Grid sizes must be even and at least 8.")
        if not (0 < self.threshold < self.peak_threshold < 1):
            raise RepresentationError("Need 0 < threshold < peak_threshold < 1.")
        if not (self.threshold <= self.lattice_fit_threshold < 1):
            raise RepresentationError("Need threshold ≤ lattice_fit_threshold < 1.")
        if self.sigma <= 0 or self.box_length <= 0:
            raise RepresentationError("sigma and box_length must be positive.")
        if self.primitive_tolerance is not None and self.primitive_tolerance <= 0:
            raise RepresentationError("primitive_tolerance must be positive, or null to keep every cell as given.")

    @property
    def cutoff(self) -> float:
        """Radius (Å) beyond which an atom's Gaussian is below ``threshold`` and set to zero."""
        return self.sigma * math.sqrt(2.0 * math.log(1.0 / self.threshold))

    @property
    def voxel_size(self) -> float:
        """Edge of one site voxel in Å."""
        return self.box_length / self.site_grid

    def channel(self, symbol: str) -> int:
        """Return the channel of element ``symbol``, or raise naming the elements the representation knows."""
        try:
            return self.elements.index(symbol)
        except ValueError:
            raise RepresentationError(
                f"{symbol} is not one of the representation's elements ({', '.join(self.elements)}); "
                "choose an element list that contains every element of the data."
            ) from None

    def to_dict(self) -> dict:
        """Return the configuration as a JSON-safe dictionary."""
        values = dataclasses.asdict(self)
        values["elements"] = list(self.elements)
        return values

    @classmethod
    def default_settings(cls) -> dict:
        """Every setting but the elements at its default, as :meth:`to_dict` writes them."""
        return {field.name: field.default for field in dataclasses.fields(cls) if field.name != "elements"}

    @classmethod
    def from_dict(cls, values: dict) -> VoxelConfig:
        """Build a configuration from :meth:`to_dict` output, refusing unknown keys.

        Floats are cast back to float (JSON and AiiDA's Dict may return 15.0 as 15), so digests are stable.
        """
        unknown = set(values) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise RepresentationError(f"Unknown representation setting(s): {', '.join(sorted(unknown))}.")
        floats = {f.name for f in dataclasses.fields(cls) if f.type in ("float", "float | None")}
        values = {key: float(value) if key in floats and value is not None else value for key, value in values.items()}
        if "elements" not in values:
            raise RepresentationError(
                'The representation needs its elements, one channel each: e.g. "elements": ["Bi", "Se"].'
            )
        values["elements"] = tuple(values["elements"])
        return cls(**values)

    def digest(self) -> str:
        """Return a sha256 of the settings that change the voxels, to check a model against its data."""
        encoding = {k: v for k, v in self.to_dict().items() if k in ENCODING_FIELDS}
        return hashlib.sha256(json.dumps(encoding, sort_keys=True).encode()).hexdigest()


MATCHER_SETTINGS = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5}
"""StructureMatcher tolerances of the paper's reconstruction criterion."""

ENCODING_FIELDS = ("elements", "box_length", "site_grid", "lattice_grid", "sigma", "threshold", "primitive_tolerance")
"""Settings that change the voxels themselves (the others only change decoding and validity)."""


def own_elements(structure) -> tuple[str, ...]:
    """The elements of a pymatgen ``structure``, sorted: its channels where each structure has its own elements
    (data of many chemical systems, such as MP-20)."""
    return tuple(sorted(element.symbol for element in structure.composition.elements))
