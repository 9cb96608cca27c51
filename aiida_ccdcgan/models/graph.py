"""The 2D "crystal graph": the lattice latent and one site latent per element, laid out on a square image."""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Sequence

import numpy as np
from pymatgen.core import Composition, Element


@dataclasses.dataclass(frozen=True)
class GraphLayout:
    """Where each latent sits in the flattened square graph.

    Slot 0 holds the lattice latent, slot k + 1 the site latent of element k; every slot is
    ``max(site_latent, lattice_latent)`` long, the rest is zero. The side is the smallest multiple of 4 whose
    square holds all slots, so two elements with latents 200 and 25 give the paper's 28 × 28 (indices 0–24
    lattice, 200–399 and 400–599 the two elements); more elements grow the graph with them instead of
    reserving 118 element slots. ``site_latent_grid`` / ``lattice_latent_grid``: the side of the autoencoders'
    spatial latents (1: a flat latent), which the spatial GAN's networks work on.
    """

    n_elements: int
    site_latent: int = 200
    lattice_latent: int = 25
    site_latent_grid: int = 1
    lattice_latent_grid: int = 1

    @property
    def slot(self) -> int:
        """Length of one slot."""
        return max(self.site_latent, self.lattice_latent)

    @property
    def side(self) -> int:
        """Side of the square graph."""
        return 4 * math.ceil(math.sqrt(self.slot * (self.n_elements + 1)) / 4)

    def site_slice(self, element: int) -> slice:
        """Where the site latent of ``element`` (0-based) lies in the flattened graph."""
        start = self.slot * (element + 1)
        return slice(start, start + self.site_latent)

    @property
    def site_channels(self) -> int:
        """Channels of one element's site latent on its ``site_latent_grid``³ grid."""
        return self.site_latent // self.site_latent_grid**3

    @property
    def lattice_channels(self) -> int:
        """Channels of the lattice latent on its ``lattice_latent_grid``³ grid."""
        return self.lattice_latent // self.lattice_latent_grid**3

    def to_graphs(self, lattice_latents: np.ndarray, site_latents: np.ndarray) -> np.ndarray:
        """Lay out lattice latents ``(N, lattice_latent)`` and site latents ``(N, n_elements, site_latent)`` as ``(N, side, side, 1)``."""
        count = len(lattice_latents)
        if lattice_latents.shape != (count, self.lattice_latent) or site_latents.shape != (
            count,
            self.n_elements,
            self.site_latent,
        ):
            raise ValueError(
                f"Expected lattice latents (N, {self.lattice_latent}) and site latents (N, {self.n_elements}, {self.site_latent}), "
                f"got {lattice_latents.shape} and {site_latents.shape}."
            )
        flat = np.zeros((count, self.side * self.side), dtype=np.float32)
        flat[:, : self.lattice_latent] = lattice_latents
        for element in range(self.n_elements):
            flat[:, self.site_slice(element)] = site_latents[:, element]
        return flat.reshape(count, self.side, self.side, 1)

    def from_graphs(self, graphs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(lattice latents, site latents)`` read back from graphs ``(N, side, side, 1)``; padding is ignored."""
        if graphs.ndim != 4 or graphs.shape[1:] != (self.side, self.side, 1):
            raise ValueError(f"Expected graphs of shape (N, {self.side}, {self.side}, 1), got {graphs.shape}.")
        flat = graphs.reshape(len(graphs), -1)
        sites = np.stack(
            [flat[:, self.site_slice(k)] for k in range(self.n_elements)],
            axis=1,
        )
        return flat[:, : self.lattice_latent].copy(), sites

    def with_elements_permuted(self, graphs: np.ndarray) -> np.ndarray:
        """``graphs`` followed by their copies under every other order of the element slots: the crystals with their
        elements exchanged (``n_elements``! graphs per input graph)."""
        lattice, sites = self.from_graphs(graphs)
        orders = itertools.permutations(range(self.n_elements))
        return np.concatenate([self.to_graphs(lattice, sites[:, list(order)]) for order in orders])


ELEMENT_FEATURES = (
    "atomic number / 100",
    "group / 18",
    "row / 7",
    "Pauling electronegativity / 4",
    "atomic radius / 3 Å",
    "atomic fraction in the crystal",
)
"""What :func:`element_features` gives for each element slot of a graph (0 where pymatgen has no value)."""


def element_features(composition: Composition | str, elements: Sequence[str], slots: int) -> np.ndarray:
    """The :data:`ELEMENT_FEATURES` of each of ``elements`` (the graph's element slots, in order) for a crystal of
    ``composition``, zero for the slots beyond them: shape ``(slots · 6,)``. With crystals of many systems in one
    graph layout (each in its own sorted elements), this is what says which element a slot holds."""
    if len(elements) > slots:
        raise ValueError(f"{len(elements)} elements do not fit {slots} element slots.")
    fractions = Composition(composition).fractional_composition
    features = np.zeros((slots, len(ELEMENT_FEATURES)), dtype=np.float32)
    for slot, symbol in enumerate(elements):
        element = Element(symbol)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns where it has no electronegativity (noble gases)
            values = (
                element.Z / 100,
                element.group / 18,
                element.row / 7,
                element.X / 4,
                (element.atomic_radius or 0) / 3,
            )
        features[slot] = [0.0 if not math.isfinite(float(v)) else float(v) for v in values] + [fractions[symbol]]
    return features.ravel()
