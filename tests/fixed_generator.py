"""Replace the generator of a ``ccdcgan-train`` run by one that always returns the crystal graph of Bi2Se3.

For tests of the loop's bookkeeping (interruptions, counts) that need valid candidates in every round without
training a GAN for long: the decoders and the rest of the loop stay real. Run with the test environment's
Python: ``python fixed_generator.py CONFIG RUN_FOLDER``.
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np
from dataset_files import make_crystals

from aiida_ccdcgan.models.config import TrainingConfig
from aiida_ccdcgan.models.inference import encode_crystals
from aiida_ccdcgan.representation import canonical_crystal


def main(config_path: Path, folder: Path) -> None:
    """Encode Bi2Se3 with the run's encoders and save a generator whose output is that graph for any noise."""
    config = TrainingConfig.from_dict(json.loads(config_path.read_text()))
    encoders = [
        keras.saving.load_model(folder / f"{role}.keras", safe_mode=True, compile=False)
        for role in ("site_encoder", "lattice_encoder")
    ]
    bi2se3 = canonical_crystal(make_crystals()[0].structure, config.representation)
    graph = encode_crystals([bi2se3], config.representation, config.layout, *encoders)[0]
    noise = keras.Input((config.gan.noise_dim,), name="noise")
    dense = keras.layers.Dense(graph.size)
    generator = keras.Model(noise, keras.layers.Reshape(graph.shape)(dense(noise)), name="generator")
    dense.set_weights([np.zeros((config.gan.noise_dim, graph.size)), graph.ravel()])
    generator.save(folder / "generator.keras")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
