"""Partial radial distribution functions of a crystal: for every pair of elements, its neighbours per atom by distance.

What the crystal energy model reads (:class:`~aiida_ccdcgan.models.config.CrystalEnergySettings`). Plain NumPy and
pymatgen's neighbour list, with the periodic images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def element_pairs(elements: Sequence[str]) -> list[tuple[str, str]]:
    """The unordered pairs of ``elements`` in the order their partial RDFs are laid out:
    (e₀,e₀), (e₀,e₁), …, (e₁,e₁), …"""
    return [(first, second) for i, first in enumerate(elements) for second in elements[i:]]


def partial_rdfs(structure, elements: Sequence[str], centres: np.ndarray, sigma: float) -> np.ndarray:
    """The partial RDFs of a pymatgen ``structure`` as one vector: for each of :func:`element_pairs` ``(elements)``,
    every ordered pair of atoms of those elements within ``centres[-1] + 3 sigma`` Å (periodic images included) adds
    a Gaussian of width ``sigma`` at its distance, sampled at ``centres``; divided by the number of atoms."""
    elements = list(elements)
    present = {site.specie.symbol for site in structure}
    if not present <= set(elements):
        raise ValueError(
            f"The crystal {structure.composition.reduced_formula} has {', '.join(sorted(present - set(elements)))}, "
            f"which is not among the representation's elements {elements}."
        )
    pairs_of_elements = element_pairs(elements)
    pair_index = np.zeros((len(elements), len(elements)), dtype=int)
    for index, (first, second) in enumerate(pairs_of_elements):
        pair_index[elements.index(first), elements.index(second)] = index
        pair_index[elements.index(second), elements.index(first)] = index
    first, second, _, distances = structure.get_neighbor_list(float(centres[-1] + 3 * sigma))
    kinds = np.array([elements.index(site.specie.symbol) for site in structure])
    pairs = pair_index[kinds[first], kinds[second]]
    weights = np.exp(-((distances[:, None] - centres[None, :]) ** 2) / (2 * sigma**2))
    rdfs = np.zeros((len(pairs_of_elements), len(centres)))
    np.add.at(rdfs, pairs, weights)
    return rdfs.ravel() / len(structure)


def partial_rdf_features(structures, elements: Sequence[str], centres: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`partial_rdfs` of each of ``structures``, stacked ``(N, pairs·len(centres))`` as float32."""
    size = len(element_pairs(elements)) * len(centres)
    return np.array(
        [partial_rdfs(structure, elements, centres, sigma) for structure in structures], dtype=np.float32
    ).reshape(len(structures), size)
