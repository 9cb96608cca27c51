"""Voxels → crystal: lattice by a metric fit, atoms by peak finding with sub-voxel refinement, every failure classified."""

from __future__ import annotations

import dataclasses
import enum

import numpy as np
from pymatgen.core import Lattice, Structure

from ..errors import RepresentationError
from .config import VoxelConfig


class DecodeFailure(str, enum.Enum):
    """Why a pair of voxel images gave no crystal."""

    LATTICE = "lattice_failure"
    NO_ATOMS = "no_atoms"
    TOO_MANY_ATOMS = "too_many_atoms"
    ATOMS_TOO_CLOSE = "atoms_too_close"


@dataclasses.dataclass
class DecodeResult:
    """A decoded crystal, or the reason there is none (with a human-readable detail)."""

    structure: Structure | None
    failure: DecodeFailure | None = None
    detail: str = ""


class LatticeDecodeError(ValueError):
    """The lattice voxel does not determine a cell; the message says why."""


def decode_lattice(voxel: np.ndarray, config: VoxelConfig) -> np.ndarray:
    """Return the lower-triangular cell (rows a, b, c in Å) that a lattice voxel encodes.

    The voxel value at fractional offset d from the centre is exp(−dᵀGd/2σ²), so −2σ² ln p is linear in the
    six components of the metric G. They are fitted by least squares over every voxel of at least
    ``lattice_fit_threshold`` (the axes and face diagonals the paper reads, and all others), weighted by the
    value, since the noise of ln p grows as the value falls. The cell is the Cholesky factor of G. Raises :class:`LatticeDecodeError`.
    """
    size = config.lattice_grid
    if voxel.shape != (size, size, size):
        raise RepresentationError(f"A lattice voxel must have shape {(size,) * 3}, not {voxel.shape}.")
    values = np.asarray(voxel, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise LatticeDecodeError("the lattice voxel contains NaN or infinite values")
    centre = size // 2
    mask = (values >= config.lattice_fit_threshold) & (values < 1.0)
    mask[centre, centre, centre] = False
    index = np.argwhere(mask)
    if len(index) < 6:
        raise LatticeDecodeError(f"only {len(index)} lattice voxels above the threshold; at least 6 are needed")
    d = (index - centre) / size
    design = np.column_stack(
        [d[:, 0] ** 2, d[:, 1] ** 2, d[:, 2] ** 2, 2 * d[:, 0] * d[:, 1], 2 * d[:, 0] * d[:, 2], 2 * d[:, 1] * d[:, 2]]
    )
    p = values[mask]
    target = -2 * config.sigma**2 * np.log(p)
    weighted = design * (p * p)[:, None]
    normal = design.T @ weighted
    scale = np.sqrt(np.diag(normal))
    if np.any(scale == 0) or np.linalg.cond(normal / np.outer(scale, scale)) > 1e10:
        raise LatticeDecodeError("the lattice voxels do not determine all six metric components")
    solution = np.linalg.solve(normal, weighted.T @ target)
    g11, g22, g33, g12, g13, g23 = solution
    metric = np.array([[g11, g12, g13], [g12, g22, g23], [g13, g23, g33]])
    try:
        return np.linalg.cholesky(metric)
    except np.linalg.LinAlgError:
        raise LatticeDecodeError("the fitted metric is not positive definite (no real cell has it)") from None


def find_peaks(sites: np.ndarray, config: VoxelConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return sub-voxel peak positions (Å in the box), peak values and channels of site voxels ``(G, G, G, C)``.

    A peak is a voxel of at least ``peak_threshold`` that no neighbour of its channel (26, periodic) exceeds.
    Its position is refined along each axis by the vertex of the parabola through the logarithms of the three
    voxels around it, which is exact for a Gaussian, so positions are not quantised to the 0.23 Å grid.
    """
    grid = sites.shape[0]
    candidates = np.argwhere(sites >= config.peak_threshold)  # (k, 4): i, j, k, channel
    values = sites[tuple(candidates.T)]
    cells, channels = candidates[:, :3], candidates[:, 3]
    neighbours = (cells[:, None, :] + _NEIGHBOUR_SHIFTS) % grid
    around = sites[neighbours[..., 0], neighbours[..., 1], neighbours[..., 2], channels[:, None]]
    is_peak = np.all(around <= values[:, None], axis=1)
    cells, channels, values = cells[is_peak], channels[is_peak], values[is_peak]
    offsets = np.zeros(cells.shape)
    log_peak = np.log(np.maximum(values, _LOG_FLOOR))
    for axis in range(3):
        step = np.zeros(3, dtype=np.int64)
        step[axis] = 1
        below_index, above_index = (cells - step) % grid, (cells + step) % grid
        log_below = np.log(
            np.maximum(sites[below_index[:, 0], below_index[:, 1], below_index[:, 2], channels], _LOG_FLOOR)
        )
        log_above = np.log(
            np.maximum(sites[above_index[:, 0], above_index[:, 1], above_index[:, 2], channels], _LOG_FLOOR)
        )
        curvature = log_below - 2 * log_peak + log_above
        with np.errstate(divide="ignore", invalid="ignore"):
            offset = np.where(curvature < 0, 0.5 * (log_below - log_above) / curvature, 0.0)
        offsets[:, axis] = np.clip(offset, -0.5, 0.5)
    return (cells + offsets) * config.voxel_size, values, channels


_NEIGHBOUR_SHIFTS = np.array(
    [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if (a, b, c) != (0, 0, 0)]
)
_LOG_FLOOR = 1e-6


def _minimum_image_distances(fractional: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Pairwise minimum-image distances (Å) between fractional positions in ``cell`` (27 images)."""
    images = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)])
    delta = fractional[:, None, :] - fractional[None, :, :]
    delta -= np.round(delta)
    vectors = (delta[:, :, None, :] + images) @ cell
    return np.linalg.norm(vectors, axis=-1).min(axis=-1)


def decode_crystal(sites: np.ndarray, lattice: np.ndarray, config: VoxelConfig) -> DecodeResult:
    """Decode one crystal from its site voxels ``(G, G, G, C)`` and lattice voxel ``(L, L, L)``.

    Atoms are taken relative to the box centre, put into the decoded cell and wrapped into it; peaks of one
    element closer than ``merge_distance`` (periodic images included) are one atom (the highest peak stays).
    """
    grid, channels = config.site_grid, len(config.elements)
    if sites.shape != (grid, grid, grid, channels):
        raise RepresentationError(f"Site voxels must have shape {(grid, grid, grid, channels)}, not {sites.shape}.")
    try:
        cell = decode_lattice(lattice, config)
    except LatticeDecodeError as exception:
        return DecodeResult(None, DecodeFailure.LATTICE, str(exception))
    inverse = np.linalg.inv(cell)
    positions, values, peak_channels = find_peaks(np.asarray(sites), config)
    species, fractional = [], []
    for channel in range(channels):
        mine = peak_channels == channel
        if not mine.any():
            continue
        frac = ((positions[mine] - config.box_length / 2) @ inverse) % 1.0
        frac = frac[np.argsort(-values[mine])]
        if len(frac) > 4 * config.max_atoms:  # hopeless; do not spend time merging
            return DecodeResult(
                None, DecodeFailure.TOO_MANY_ATOMS, f"{len(frac)} peaks in the {config.elements[channel]} channel"
            )
        distances = _minimum_image_distances(frac, cell)
        kept = []
        for index in range(len(frac)):
            if all(distances[index, other] >= config.merge_distance for other in kept):
                kept.append(index)
        species += [config.elements[channel]] * len(kept)
        fractional.append(frac[kept])
    if not species:
        return DecodeResult(None, DecodeFailure.NO_ATOMS, "no site voxel reaches the peak threshold")
    if len(species) > config.max_atoms:
        return DecodeResult(None, DecodeFailure.TOO_MANY_ATOMS, f"{len(species)} atoms, more than {config.max_atoms}")
    fractional = np.concatenate(fractional)
    distances = _minimum_image_distances(fractional, cell)
    np.fill_diagonal(distances, np.inf)
    if len(species) > 1 and distances.min() < config.merge_distance:
        return DecodeResult(None, DecodeFailure.ATOMS_TOO_CLOSE, f"two atoms {distances.min():.2f} Å apart")
    return DecodeResult(Structure(Lattice(cell), species, fractional))


def decode_batch(sites: np.ndarray, lattices: np.ndarray, config: VoxelConfig) -> list[DecodeResult]:
    """Decode a batch: site voxels ``(N, G, G, G, C)`` and lattice voxels ``(N, L, L, L)``."""
    sites, lattices = np.asarray(sites), np.asarray(lattices)
    if sites.ndim != 5 or lattices.ndim != 4 or len(sites) != len(lattices):
        raise RepresentationError(
            f"Decoding needs site voxels of shape (N, G, G, G, C) and lattice voxels of shape (N, L, L, L) with the "
            f"same N, not {sites.shape} and {lattices.shape}."
        )
    return [decode_crystal(s, lat, config) for s, lat in zip(sites, lattices)]
