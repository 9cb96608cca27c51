"""Crystal → voxels: site voxels (one channel per element) and the lattice voxel, vectorised over batches.

The crystal is first put in a canonical frame that the lattice voxel can carry: the lattice voxel only holds
the metric (a, b, c, α, β, γ), so the decoder rebuilds the cell as the lower-triangular Cholesky factor of the
metric (a along x, b in the xy plane, right-handed). The encoder expresses the atoms in that same frame, so
cell and atoms fit together again after decoding whatever orientation the input had.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from ..errors import RepresentationError
from .config import MATCHER_SETTINGS, VoxelConfig


class OutsideLimits(RepresentationError):
    """The crystal is valid but beyond the representation's documented limits; ``reason`` says which."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class CanonicalCrystal:
    """A crystal in the representation's frame.

    ``cell``: lower-triangular, right-handed lattice matrix (rows a, b, c; Å); ``positions``: Cartesian
    positions (Å) relative to the centre of the atoms' bounding box, each atom at a compact periodic image;
    ``channels``: the element channel of every atom.
    """

    cell: np.ndarray
    positions: np.ndarray
    channels: np.ndarray


def canonical_cell(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the lower-triangular right-handed cell with the metric of ``matrix`` and the basis sign flips used.

    A left-handed basis is made right-handed by reversing its first vector (the crystal is unchanged; the
    first fractional coordinate changes sign), which the returned sign vector records.
    """
    signs = np.array([-1.0 if np.linalg.det(matrix) < 0 else 1.0, 1.0, 1.0])
    right_handed = matrix * signs[:, None]
    metric = right_handed @ right_handed.T
    return np.linalg.cholesky(metric), signs


def primitive_cell(structure: Structure, config: VoxelConfig) -> Structure:
    """The crystal in its primitive cell (found with ``config.primitive_tolerance``) if that cell is smaller than the
    given one and StructureMatcher (:data:`MATCHER_SETTINGS`) confirms it is the same crystal; otherwise, or with
    ``primitive_tolerance`` ``None``, the structure as given.

    The check catches the few cells pymatgen reduces to a cell that no longer matches the input (4 of the 9,873
    V–O rows even at 0.01 Å).
    """
    if config.primitive_tolerance is None:
        return structure
    primitive = structure.get_primitive_structure(tolerance=config.primitive_tolerance)
    if len(primitive) < len(structure) and StructureMatcher(**MATCHER_SETTINGS).fit(structure, primitive):
        return primitive
    return structure


def canonical_crystal(structure: Structure, config: VoxelConfig) -> CanonicalCrystal:
    """Return ``structure`` in the representation's frame, or raise a :class:`RepresentationError` saying why it cannot be."""
    if len(structure) == 0:
        raise RepresentationError("The structure has no atoms.")
    if not structure.is_ordered:
        raise RepresentationError(
            "The structure has partially occupied sites; only ordered crystals can be represented."
        )
    matrix = structure.lattice.matrix
    fractional = structure.frac_coords
    if not (np.all(np.isfinite(matrix)) and np.all(np.isfinite(fractional))):
        raise RepresentationError("The cell or the coordinates contain NaN or infinite numbers.")
    if abs(np.linalg.det(matrix)) < 1e-6:
        raise RepresentationError("The cell has zero volume.")
    # The same crystal in its primitive cell (the paper's data are primitive cells): fewer atoms, and the decoded
    # crystal then reduces to the same primitive cell as the input when StructureMatcher compares them.
    structure = primitive_cell(structure, config)
    matrix, fractional = structure.lattice.matrix, structure.frac_coords
    if cell_heights(matrix).min() < 2 * config.cutoff:
        # A skewed cell can have a height too small for the lattice voxel; its LLL-reduced cell describes the
        # same crystal with the largest heights.
        structure = structure.get_reduced_structure("LLL")
        matrix, fractional = structure.lattice.matrix, structure.frac_coords
    channels = np.array([config.channel(site.specie.symbol) for site in structure], dtype=np.int64)
    cell, signs = canonical_cell(matrix)
    fractional = fractional * signs
    # Choose each atom's periodic image so the atoms form a compact cluster: start from fractional coordinates
    # wrapped around their circular mean on each axis, then move every atom to its image nearest (in the box's
    # max-norm) to the cluster's centre until nothing moves; finally centre the cluster's bounding box, not its
    # centroid. On the 1–3-element MP-20 rows this fits 97.1 % in the 15 Å box against 90.0 % for the
    # paper's convention, positions as stored and centroid-centred (docs/representation.md).
    # Ties between equivalent images (atoms on special positions) are broken on rounded numbers, so a crystal and
    # its copy with 1e-9 noise (e.g. read back from a file) get the same images and the same voxels.
    angles = 2 * np.pi * np.round(fractional, _TIE_DECIMALS)
    centre = np.arctan2(np.sin(angles).mean(axis=0), np.cos(angles).mean(axis=0)) / (2 * np.pi)
    fractional = fractional - np.round(np.round(fractional - centre, _TIE_DECIMALS))
    positions = fractional @ cell
    shifts = _IMAGES @ cell
    for _ in range(_IMAGE_PASSES):
        candidates = positions[:, None, :] + shifts
        distances = np.abs(candidates - positions.mean(axis=0)).max(axis=-1)
        choice = np.round(distances, _TIE_DECIMALS).argmin(axis=1)
        if not choice.any():
            break
        positions = candidates[np.arange(len(positions)), choice]
    positions -= (positions.max(axis=0) + positions.min(axis=0)) / 2
    return CanonicalCrystal(cell, positions, channels)


_IMAGES = np.array(
    [(0, 0, 0)] + [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)]
)
_IMAGE_PASSES = 5
_TIE_DECIMALS = 6


CELL_ORDERS = tuple(itertools.permutations(range(3)))
"""The six orders of a cell's three vectors, the given order first."""


def reordered_cells(structure: Structure, count: int, config: VoxelConfig) -> list[Structure]:
    """The crystal with its cell vectors in the first ``count`` of their six orders (:data:`CELL_ORDERS`).

    The same crystal each time, but the canonical frame puts the first vector along x: each order is another view
    of it, with another crystal graph and the same energy. A cell larger than the primitive cell is reduced first,
    as :func:`canonical_crystal` does, so the orders are those of the cell that is encoded.
    """
    structure = primitive_cell(structure, config)
    return [
        Structure(structure.lattice.matrix[list(order)], structure.species, structure.frac_coords[:, list(order)])
        for order in CELL_ORDERS[:count]
    ]


def _fits_box(crystal: CanonicalCrystal, config: VoxelConfig) -> bool:
    """Whether every atom's Gaussian lies inside the site box (centred on the cluster) without wrapping around it."""
    return bool(np.abs(crystal.positions).max() + config.cutoff < config.box_length / 2)


def check_representable(crystal: CanonicalCrystal, config: VoxelConfig) -> None:
    """Raise :class:`OutsideLimits` if the crystal exceeds the representation's documented limits.

    The limits: at most ``max_atoms`` atoms; every atom's Gaussian inside the site box around the cluster
    (atoms within box/2 − cut-off = 6.77 Å of its centre along x, y and z by default); every cell height above twice the cut-off
    (1.45 Å) and every cell length below cut-off × lattice grid (23.3 Å), so the lattice voxel shows the
    pseudo-atom's Gaussian along each axis.
    """
    if len(crystal.channels) > config.max_atoms:
        raise OutsideLimits(
            "too_many_atoms",
            f"The cell has {len(crystal.channels)} atoms, more than the representation's maximum of {config.max_atoms}.",
        )
    if not _fits_box(crystal, config):
        extent = np.abs(crystal.positions).max() + config.cutoff
        raise OutsideLimits(
            "too_large_for_box",
            f"The atoms reach {extent:.2f} Å from their centre, beyond the {config.box_length / 2:.2f} Å half-width of "
            f"the {config.box_length} Å site box: the structure is too large for the box.",
        )
    heights = cell_heights(crystal.cell)
    if heights.min() < 2 * config.cutoff or _lattice_extent_voxels(crystal.cell, config).min() < 1:
        raise OutsideLimits(
            "cell_outside_lattice_grid",
            f"The cell (heights {np.round(heights, 2).tolist()} Å, lengths "
            f"{np.round(np.linalg.norm(crystal.cell, axis=1), 2).tolist()} Å) cannot be carried by the "
            f"{config.lattice_grid}³ lattice voxel: a height below {2 * config.cutoff:.2f} Å or a length above "
            f"{config.cutoff * config.lattice_grid:.1f} Å.",
        )


def representable_crystals(
    structures: Sequence[Structure], config: VoxelConfig
) -> tuple[list[CanonicalCrystal], list[int], dict[str, int]]:
    """The canonical crystals of the ``structures`` the representation can hold, their indices, and how many of
    the others fall outside each limit (:class:`OutsideLimits` reason → count)."""
    crystals, kept, outside = [], [], {}
    for index, structure in enumerate(structures):
        try:
            crystal = canonical_crystal(structure, config)
            check_representable(crystal, config)
        except OutsideLimits as exception:
            outside[exception.reason] = outside.get(exception.reason, 0) + 1
            continue
        crystals.append(crystal)
        kept.append(index)
    return crystals, kept, outside


def cell_heights(cell: np.ndarray) -> np.ndarray:
    """Distances (Å) between opposite faces of the cell, one per lattice vector."""
    return np.abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)


def _lattice_extent_voxels(cell: np.ndarray, config: VoxelConfig) -> np.ndarray:
    """Number of lattice voxels the pseudo-atom's Gaussian reaches along each cell axis."""
    return np.floor(config.cutoff * config.lattice_grid / np.linalg.norm(cell, axis=1))


def site_voxels(crystals: Sequence[CanonicalCrystal], config: VoxelConfig) -> np.ndarray:
    """Return the site voxels of a batch, shape ``(N, G, G, G, C)`` float32 (channels last, as Keras wants)."""
    grid, channels = config.site_grid, len(config.elements)
    h = config.voxel_size
    reach = int(np.ceil(config.cutoff / h))
    offsets = np.arange(-reach, reach + 1)
    positions = np.concatenate([c.positions for c in crystals]) + config.box_length / 2
    owners = np.concatenate([np.full(len(c.channels), i) for i, c in enumerate(crystals)])
    atom_channels = np.concatenate([c.channels for c in crystals])
    nearest = np.rint(positions / h).astype(np.int64)
    indices = nearest[:, :, None] + offsets  # (atoms, 3, stamp)
    profiles = np.exp(-((indices * h - positions[:, :, None]) ** 2) / (2 * config.sigma**2))
    stamps = profiles[:, 0, :, None, None] * profiles[:, 1, None, :, None] * profiles[:, 2, None, None, :]
    stamps[stamps < config.threshold] = 0.0
    wrapped = indices % grid
    flat = (
        ((owners[:, None, None, None] * grid + wrapped[:, 0, :, None, None]) * grid + wrapped[:, 1, None, :, None])
        * grid
        + wrapped[:, 2, None, None, :]
    ) * channels + atom_channels[:, None, None, None]
    voxels = np.zeros(len(crystals) * grid**3 * channels, dtype=np.float32)
    np.add.at(voxels, flat.ravel(), stamps.ravel().astype(np.float32))
    return voxels.reshape(len(crystals), grid, grid, grid, channels)


def lattice_voxels(crystals: Sequence[CanonicalCrystal], config: VoxelConfig) -> np.ndarray:
    """Return the lattice voxels of a batch, shape ``(N, L, L, L)`` float32.

    Grid point (i, j, k) sits at fractional ((i, j, k) − L/2)/L from the pseudo-atom at the cell centre; its
    value is the pseudo-atom's Gaussian at the real (metric) distance. Cells whose heights all exceed twice the
    cut-off (every cell :func:`check_representable` accepts) need no periodic images.
    """
    metrics = np.stack([c.cell @ c.cell.T for c in crystals])  # (N, 3, 3)
    coefficients = metrics[:, [0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]].astype(np.float32)
    quadratic = coefficients @ _quadratic_basis(config.lattice_grid)  # (N, 6) @ (6, L³): dᵀGd at every point
    voxels = np.exp(quadratic * np.float32(-0.5 / config.sigma**2))
    voxels[voxels < config.threshold] = 0.0
    size = config.lattice_grid
    return voxels.reshape(len(crystals), size, size, size)


@functools.lru_cache(maxsize=4)
def _quadratic_basis(size: int) -> np.ndarray:
    """The six monomials (x², y², z², 2xy, 2xz, 2yz) of the fractional offsets from the centre, shape (6, L³)."""
    steps = (np.arange(size) - size // 2) / size
    x, y, z = (a.ravel() for a in np.meshgrid(steps, steps, steps, indexing="ij"))
    return np.stack([x * x, y * y, z * z, 2 * x * y, 2 * x * z, 2 * y * z]).astype(np.float32)


def encode_structures(structures: Sequence[Structure], config: VoxelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Encode a batch of structures into ``(site voxels (N,G,G,G,C), lattice voxels (N,L,L,L))``.

    Raises a :class:`RepresentationError` naming the structure's index if one cannot be represented.
    """
    crystals = []
    for index, structure in enumerate(structures):
        try:
            crystal = canonical_crystal(structure, config)
            check_representable(crystal, config)
        except OutsideLimits as exception:
            raise OutsideLimits(
                exception.reason, f"Structure {index} ({structure.composition.reduced_formula}): {exception}"
            ) from None
        except RepresentationError as exception:
            raise RepresentationError(
                f"Structure {index} ({structure.composition.reduced_formula if len(structure) else 'empty'}): {exception}"
            ) from None
        crystals.append(crystal)
    return site_voxels(crystals, config), lattice_voxels(crystals, config)
