"""The naive voxeliser, as the original code works: ASE minimum-image distances from every atom to every grid point.

It is the reference the fast encoder is checked against (tests) and timed against
(benchmarks/bench_representation.py); it is not used for real work. Like the authors' code, it asks
``ase.geometry.get_distances(..., mic=True)`` for the distance from each atom to all G³ grid points.
"""

from __future__ import annotations

import numpy as np
from ase.geometry import get_distances

from .config import VoxelConfig
from .encode import CanonicalCrystal


def _grid(size: int) -> np.ndarray:
    """Fractional coordinates i/size of all size³ grid points, in C order."""
    axis = np.arange(size) / size
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def _density(distances: np.ndarray, config: VoxelConfig) -> np.ndarray:
    """Truncated Gaussian of the distances."""
    density = np.exp(-(distances**2) / (2 * config.sigma**2))
    density[density < config.threshold] = 0.0
    return density


def naive_site_voxels(crystal: CanonicalCrystal, config: VoxelConfig) -> np.ndarray:
    """Return the site voxels ``(G, G, G, C)`` of one crystal by brute force over all grid points."""
    grid, box = config.site_grid, config.box_length
    cell = np.eye(3) * box
    points = _grid(grid) * box
    voxels = np.zeros((grid**3, len(config.elements)), dtype=np.float32)
    for position, channel in zip(crystal.positions + box / 2, crystal.channels):
        _, distances = get_distances(position[None, :], points, cell=cell, pbc=True)
        voxels[:, channel] += _density(distances[0], config).astype(np.float32)
    return voxels.reshape(grid, grid, grid, len(config.elements))


def naive_lattice_voxel(crystal: CanonicalCrystal, config: VoxelConfig) -> np.ndarray:
    """Return the lattice voxel ``(L, L, L)`` of one crystal by brute force over all grid points."""
    size = config.lattice_grid
    points = _grid(size) @ crystal.cell
    centre = np.full((1, 3), 0.5) @ crystal.cell
    _, distances = get_distances(centre, points, cell=crystal.cell, pbc=True)
    return _density(distances[0], config).astype(np.float32).reshape(size, size, size)
