"""The data pipeline of training: seeding, and voxel images built on the fly from canonical crystals, batch by batch
(nothing is written per structure)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np

from ..representation import CanonicalCrystal, VoxelConfig, lattice_voxels, site_voxels


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend, and make TensorFlow's kernels deterministic."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def shared_voxel_config(config: VoxelConfig | Sequence[VoxelConfig]) -> VoxelConfig:
    """The one representation of ``config``, or the first of per-crystal representations after checking that they
    differ in their elements only (the autoencoders' weights depend on nothing else)."""
    if isinstance(config, VoxelConfig):
        return config
    configs = list(config)
    if not configs:
        raise ValueError("No representation given: pass one VoxelConfig, or one per crystal.")
    first = {**configs[0].to_dict(), "elements": None}
    if any({**other.to_dict(), "elements": None} != first for other in configs[1:]):
        raise ValueError("Per-crystal representations may differ in their elements only (grids, box, σ the same).")
    return configs[0]


class VoxelBatches(keras.utils.PyDataset):
    """One-channel voxel images built on the fly: ``site`` (every element channel of every crystal) or ``lattice``.

    ``config``: one representation for all crystals, or one per crystal — each crystal with its own elements, as
    in a dataset of many chemical systems (MP-20): the site autoencoder sees one element's channel at a time, so it
    learns from the channels of all of them.
    """

    def __init__(
        self,
        crystals: Sequence[CanonicalCrystal],
        config: VoxelConfig | Sequence[VoxelConfig],
        kind: str,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
    ):
        super().__init__()
        if kind not in ("site", "lattice"):
            raise ValueError(f"kind must be 'site' or 'lattice', not {kind!r}.")
        self.crystals, self.kind, self.batch_size = list(crystals), kind, batch_size
        self.config = shared_voxel_config(config)
        self.configs = None if isinstance(config, VoxelConfig) else list(config)
        if self.configs is not None and len(self.configs) != len(self.crystals):
            raise ValueError(
                f"{len(self.configs)} representations for {len(self.crystals)} crystals: give one per crystal."
            )
        channels = [
            1 if kind == "lattice" else len((self.configs[i] if self.configs else self.config).elements)
            for i in range(len(self.crystals))
        ]
        self.samples = np.array([(i, c) for i in range(len(self.crystals)) for c in range(channels[i])])
        self.rng = np.random.default_rng(seed)
        self.shuffle = shuffle
        if shuffle:
            self.rng.shuffle(self.samples)

    def __len__(self) -> int:
        return math.ceil(len(self.samples) / self.batch_size)

    def __getitem__(self, index: int):
        chunk = self.samples[index * self.batch_size : (index + 1) * self.batch_size]
        crystals = [self.crystals[i] for i in chunk[:, 0]]
        if self.kind == "site" and self.configs is not None:
            voxels = np.stack([site_voxels([self.crystals[i]], self.configs[i])[0, ..., c] for i, c in chunk])
        elif self.kind == "site":
            voxels = site_voxels(crystals, self.config)[np.arange(len(chunk)), ..., chunk[:, 1]]
        else:
            voxels = lattice_voxels(crystals, self.config)
        voxels = voxels[..., None]
        return voxels, voxels

    def on_epoch_end(self):
        if self.shuffle:
            self.rng.shuffle(self.samples)
