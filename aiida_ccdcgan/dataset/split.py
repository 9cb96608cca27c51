"""Deterministic train/validation/test splits that keep every group of related crystals on one side."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..errors import DatasetError

SPLIT_NAMES = ("train", "validation", "test")


def group_split(
    keys: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[int]]:
    """Split items by their grouping key into train/validation/test index lists.

    All items with the same key land in the same split (e.g. both V–O copies of one template). The groups
    are shuffled with ``seed`` and dealt out in turn to whichever split is furthest below its target share
    of items, so the result depends only on the keys, the fractions and the seed.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise DatasetError(
            f"Split fractions must be three non-negative numbers adding up to 1, got {fractions.tolist()}."
        )
    if not keys:
        raise DatasetError("Nothing to split: the dataset is empty.")
    if any(key is None or key == "" for key in keys):
        raise DatasetError("Some items have no grouping key; every item needs one for a group-aware split.")
    sizes = Counter(keys)
    unique = sorted(sizes)
    order = np.random.default_rng(seed).permutation(len(unique))
    targets = fractions * len(keys)
    filled = np.zeros(3)
    assignment = {}
    for position in order:
        key = unique[position]
        split = int(np.argmax(targets - filled))
        assignment[key] = split
        filled[split] += sizes[key]
    result = {name: [] for name in SPLIT_NAMES}
    for index, key in enumerate(keys):
        result[SPLIT_NAMES[assignment[key]]].append(index)
    return result
