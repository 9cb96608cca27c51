"""Training the CCDCGAN networks: autoencoders, constraint, crystal energy network, GAN.

Backend-agnostic Keras 3 (``compile``/``fit``/``train_on_batch`` only); every function takes a seed. The voxels come
from :mod:`.pipeline`; using the trained networks is :mod:`.inference`'s business, judging them :mod:`.metrics`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from ..representation import CanonicalCrystal, VoxelConfig
from .config import AutoencoderSettings, ConstraintSettings, CrystalEnergySettings, GanSettings
from .graph import GraphLayout
from .networks import (
    build_anchored_generator,
    build_autoencoder,
    build_constraint,
    build_crystal_energy_network,
    build_dense_constraint,
    build_discriminator,
    build_generator,
    build_spatial_discriminator,
    build_spatial_generator,
)
from .pipeline import VoxelBatches, seed_everything, shared_voxel_config
from .pretrained import load_pretrained


class HeldOutLoss(keras.callbacks.Callback):
    """After each epoch, the model's loss on held-out data, in ``logs["val_loss"]``, leaving every random state
    (Python's, NumPy's, torch's) as it was: with the torch backend, Keras's own ``validation_data`` draws from them
    and changes the training that follows (measured); this does not."""

    def __init__(self, data, batch_size: int):
        super().__init__()
        self.data, self.batch_size = data, batch_size

    def on_epoch_end(self, epoch, logs=None):
        import random

        states = random.getstate(), np.random.get_state(), _torch_rng_state()
        inputs, targets = self.data if isinstance(self.data, tuple) else (self.data, None)
        loss = self.model.evaluate(inputs, targets, batch_size=self.batch_size, verbose=0, return_dict=True)["loss"]
        random.setstate(states[0])
        np.random.set_state(states[1])
        if states[2] is not None:
            import torch

            torch.set_rng_state(states[2])
        if logs is not None:
            logs["val_loss"] = loss


def _torch_rng_state():
    """torch's CPU random state when Keras runs on torch, else None."""
    if keras.backend.backend() != "torch":
        return None
    import torch

    return torch.get_rng_state()


def weighted_binary_crossentropy(foreground_weight: float):
    """Binary cross-entropy against voxel densities, each voxel weighted ``1 + foreground_weight·density``."""

    def loss(y_true, y_pred):
        y_pred = keras.ops.clip(y_pred, 1e-6, 1 - 1e-6)
        entropy = -(y_true * keras.ops.log(y_pred) + (1 - y_true) * keras.ops.log(1 - y_pred))
        return keras.ops.mean((1 + foreground_weight * y_true) * entropy)

    return loss


def learning_rate_schedule(settings, steps_per_epoch: int):
    """The settings' learning rate: constant, or decaying to zero over the run with ``schedule: cosine``."""
    if settings.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(settings.learning_rate, settings.epochs * steps_per_epoch)
    return settings.learning_rate


def train_autoencoder(
    crystals,
    config: VoxelConfig | Sequence[VoxelConfig],
    kind: str,
    settings: AutoencoderSettings,
    seed: int = 0,
    validation: Sequence[CanonicalCrystal] = (),
):
    """Train the site or lattice autoencoder on plain sigmoid outputs; return ``(encoder, decoder, losses)``:
    ``losses["loss"]`` per epoch and, with ``validation`` crystals (held out; one representation ``config`` for
    all), ``losses["val_loss"]``, the same loss on them after each epoch.

    ``config``: the representation of all crystals, or one per crystal (each with its own elements, see
    :class:`VoxelBatches`). With ``settings.max_structures`` below the number of crystals, a subset drawn with
    ``seed`` is used; with ``settings.pretrained`` the networks start from those shipped weights.
    """
    if validation and not isinstance(config, VoxelConfig):
        raise ValueError("Validation crystals need one representation for all crystals.")
    seed_everything(seed)
    shared = shared_voxel_config(config)
    if settings.max_structures is not None and len(crystals) > settings.max_structures:
        chosen = sorted(np.random.default_rng(seed).choice(len(crystals), settings.max_structures, replace=False))
        crystals = [crystals[i] for i in chosen]
        config = config if isinstance(config, VoxelConfig) else [config[i] for i in chosen]
    grid = shared.site_grid if kind == "site" else shared.lattice_grid
    encoder, decoder, autoencoder = build_autoencoder(
        grid,
        settings.latent,
        settings.filters,
        name=f"{kind}_autoencoder",
        latent_grid=settings.latent_grid,
        batch_norm=settings.batch_norm,
    )
    if settings.pretrained is not None:
        for model, start in zip((encoder, decoder), load_pretrained(settings.pretrained, kind)):
            model.set_weights(start.get_weights())
    batches = VoxelBatches(crystals, config, kind, settings.batch_size, seed)
    learning_rate = learning_rate_schedule(settings, len(batches))
    loss = "mse" if settings.loss == "mse" else weighted_binary_crossentropy(settings.foreground_weight)
    autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate, settings.beta_1, settings.beta_2), loss=loss)
    callbacks = []
    if validation:
        held_out = VoxelBatches(validation, config, kind, settings.batch_size, seed, shuffle=False)
        callbacks.append(HeldOutLoss(held_out, settings.batch_size))
    history = autoencoder.fit(batches, epochs=settings.epochs, callbacks=callbacks, verbose=0)
    return encoder, decoder, _losses(history)


def _losses(history) -> dict[str, list[float]]:
    """The per-epoch ``loss`` (and ``val_loss``, where validation data was given) of a Keras ``fit``."""
    return {name: [float(v) for v in history.history[name]] for name in ("loss", "val_loss") if name in history.history}


def train_constraint(
    graphs, energies, settings: ConstraintSettings, seed: int = 0, element_features=None, validation=None
):
    """Train the formation-energy network on crystal graphs (eV/atom); return ``(model, losses)``: ``loss`` per
    epoch and, with ``validation`` = ``(graphs, energies)`` held out, ``val_loss`` on them after each epoch.

    ``element_features`` ``(N, F)`` (:func:`~aiida_ccdcgan.models.graph.element_features`): a second input of the
    dense network, for graphs of crystals of many systems; the CNN takes graphs only.
    """
    seed_everything(seed)
    energies = np.asarray(energies, dtype=np.float32)
    if settings.network == "cnn":
        if element_features is not None:
            raise ValueError("Element features need the dense constraint (constraint network 'dense').")
        model = build_constraint(graphs.shape[1])
    else:
        model = build_dense_constraint(
            graphs.shape[1],
            settings.hidden_units,
            settings.dropout,
            float(energies.mean()),
            float(energies.std()) or 1.0,
            0 if element_features is None else element_features.shape[1],
        )
    inputs = graphs if element_features is None else [graphs, np.asarray(element_features, dtype=np.float32)]
    learning_rate = learning_rate_schedule(settings, -(-len(graphs) // settings.batch_size))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, settings.beta_1), loss=settings.loss)
    if validation is not None and element_features is not None:
        raise ValueError("Validation graphs are not taken with element features.")
    callbacks = []
    if validation is not None:
        held_out = (validation[0], np.asarray(validation[1], dtype=np.float32))
        callbacks.append(HeldOutLoss(held_out, settings.batch_size))
    history = model.fit(
        inputs,
        energies,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )
    return model, _losses(history)


def train_crystal_energy(features, energies, settings: CrystalEnergySettings, seed: int = 0):
    """Train the crystal energy network on partial RDFs ``(N, F)`` (:func:`~aiida_ccdcgan.models.inference.crystal_rdf_features`) and formation
    energies (eV/atom); return ``(model, losses)``, ``losses["loss"]`` per epoch."""
    seed_everything(seed)
    features, energies = np.asarray(features, dtype=np.float32), np.asarray(energies, dtype=np.float32)
    model = build_crystal_energy_network(
        features.mean(axis=0),
        features.var(axis=0) + 1e-6,
        settings.hidden_units,
        float(energies.mean()),
        float(energies.std()) or 1.0,
    )
    steps = settings.epochs * -(-len(features) // settings.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(settings.learning_rate, steps)),
        loss="huber",
    )
    history = model.fit(
        features, energies, batch_size=settings.batch_size, epochs=settings.epochs, shuffle=True, verbose=0
    )
    return model, _losses(history)


def _formation_energy_loss(kind: str):
    """The constraint term of the generator loss: mean exp(E_f) (as coded) or mean E_f (as the paper); y_true unused."""
    if kind == "exp":
        return lambda y_true, y_pred: keras.ops.mean(keras.ops.exp(y_pred))
    return lambda y_true, y_pred: keras.ops.mean(y_pred)


def build_gan(
    side: int,
    settings: GanSettings,
    constraint=None,
    initial: tuple | None = None,
    layout: GraphLayout | None = None,
    graphs=None,
):
    """Return ``(generator, discriminator, combined)`` compiled for training on ``side``×``side`` graphs; new
    networks (``settings.architecture``; the spatial ones need the graph's ``layout``, the anchored one the
    training ``graphs``), or the ``initial`` ``(generator, discriminator)`` to train further.

    ``combined`` (a :class:`GeneratorWithCritics`) maps noise to the frozen discriminator's verdict — and, for
    CCDCGAN, the frozen constraint's formation energy, weighted ``fe_weight`` — both in inference mode
    (BatchNorm statistics and Dropout off; the original ran them in training mode).
    """
    if settings.mode == "ccdcgan" and constraint is None:
        raise ValueError("CCDCGAN needs the trained constraint model.")
    if settings.architecture == "anchored" and (graphs is None or not len(graphs)):
        raise ValueError("The anchored GAN needs the training crystals' graphs to draw from.")
    if initial is not None:
        generator, discriminator = initial
        if settings.architecture == "anchored":
            generator = _anchored_on(generator, graphs, settings)
    elif settings.architecture == "spatial":
        if layout is None or layout.side != side:
            raise ValueError("The spatial GAN needs the crystal graph's layout (TrainingConfig.layout).")
        generator = build_spatial_generator(settings.noise_dim, layout, settings.filters)
        discriminator = build_spatial_discriminator(layout, settings.filters)
    elif settings.architecture == "anchored":
        generator = build_anchored_generator(settings.noise_dim, graphs, settings.anchor_radius, settings.filters)
        discriminator = build_discriminator(side, settings.filters)
    else:
        generator, discriminator = (
            build_generator(settings.noise_dim, side, settings.filters),
            build_discriminator(side, settings.filters),
        )
    discriminator.trainable = True
    discriminator.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate, settings.beta_1), loss="binary_crossentropy"
    )
    critics = [discriminator]
    losses, weights = ["binary_crossentropy"], [1.0]
    if settings.mode == "ccdcgan":
        constraint.trainable = False
        critics.append(constraint)
        losses.append(_formation_energy_loss(settings.fe_loss))
        weights.append(settings.fe_weight)
    combined = GeneratorWithCritics(generator, critics, name=settings.mode)
    discriminator.trainable = False
    combined.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate, settings.beta_1), loss=losses, loss_weights=weights
    )
    combined(np.zeros((1, settings.noise_dim), np.float32))  # build
    return generator, discriminator, combined


def _anchored_on(generator, graphs, settings: GanSettings):
    """The anchored ``generator``'s learnt step on new training ``graphs``: a new generator drawing from ``graphs``
    with the given one's trained weights (the step's layers do not depend on how many graphs there are)."""
    rebuilt = build_anchored_generator(settings.noise_dim, graphs, settings.anchor_radius, settings.filters)
    if len(rebuilt.trainable_weights) != len(generator.trainable_weights):
        raise ValueError("Fine-tuning an anchored GAN needs an anchored generator (gan.architecture 'anchored').")
    for new, trained in zip(rebuilt.trainable_weights, generator.trainable_weights):
        new.assign(trained)
    return rebuilt


class GeneratorWithCritics(keras.Model):
    """Noise → generated graph → the critics' outputs (discriminator, constraint), critics in inference mode.

    A subclassed model, because Keras 3 does not keep ``training=False`` for nested models in a functional
    graph: their Dropout stays active in ``train_on_batch`` (measured), as in the original code.
    """

    def __init__(self, generator, critics, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.critics = generator, list(critics)

    def call(self, noise, training=None):
        graphs = self.generator(noise, training=training)
        outputs = [critic(graphs, training=False) for critic in self.critics]
        return outputs if len(outputs) > 1 else outputs[0]


def gan_step(generator, discriminator, combined, real, noise) -> tuple[float, float, float]:
    """One training step; returns the losses ``(d_real, d_fake, g)``.

    The discriminator learns on the real batch (label 1) and a generated one (label 0) while trainable, then
    the generator learns through the combined model with the discriminator frozen. Keras 3 reads
    ``trainable`` at every step on the TensorFlow and torch backends (a test checks which weights move).
    """
    ones, zeros = np.ones((len(real), 1), np.float32), np.zeros((len(real), 1), np.float32)
    discriminator.trainable = True
    d_real = float(discriminator.train_on_batch(real, ones))
    d_fake = float(discriminator.train_on_batch(generator.predict(noise, verbose=0), zeros))
    discriminator.trainable = False
    g_loss = combined.train_on_batch(noise, [ones, zeros] if len(combined.critics) == 2 else ones)
    return d_real, d_fake, float(g_loss[0] if isinstance(g_loss, list) else g_loss)


def train_gan(
    graphs,
    settings: GanSettings,
    constraint=None,
    seed: int = 0,
    checkpoint: Path | None = None,
    checkpoint_key: str = "",
    checkpoint_every: int = 500,
    initial: tuple | None = None,
    layout: GraphLayout | None = None,
):
    """Train the DCGAN (``mode='dcgan'``) or CCDCGAN (``mode='ccdcgan'``, needs ``constraint``) on crystal graphs.

    Step k draws its batch and noise from a generator seeded with ``(seed, k)``. With ``checkpoint`` (a file
    path) the weights, optimizer states and losses are saved every ``checkpoint_every`` steps, and a run that
    finds a checkpoint with the same ``checkpoint_key`` (the digest of the settings) continues from its step.
    ``initial``: ``(generator, discriminator)`` to continue training (fine-tuning) instead of new networks;
    ``layout``: the graphs' layout, which the ``spatial`` architecture needs (the ``anchored`` one draws from
    ``graphs`` themselves, and a fine-tuned one draws from the ``graphs`` it is fine-tuned on).
    Returns ``(generator, discriminator, losses)`` with per-step arrays ``d_real``, ``d_fake``, ``g``.
    """
    seed_everything(seed)
    generator, discriminator, combined = build_gan(graphs.shape[1], settings, constraint, initial, layout, graphs)
    batch = min(settings.batch_size, len(graphs))

    def draw(step):
        rng = np.random.default_rng([seed, step])
        real = graphs[rng.integers(0, len(graphs), batch)]
        return real, rng.standard_normal((batch, settings.noise_dim)).astype(np.float32)

    losses, first = [], 0
    if checkpoint is not None and checkpoint.exists():
        state = np.load(checkpoint)
        if str(state["key"]) == checkpoint_key:
            gan_step(generator, discriminator, combined, *draw(0))  # builds the optimizers' variables
            for index, variable in enumerate(_checkpointed(generator, discriminator, combined)):
                variable.assign(state[f"v{index}"])
            losses, first = [tuple(row) for row in state["losses"]], int(state["step"])
    for step in range(first, settings.steps):
        losses.append(gan_step(generator, discriminator, combined, *draw(step)))
        if checkpoint is not None and (step + 1) % checkpoint_every == 0 and step + 1 < settings.steps:
            values = {f"v{i}": v.numpy() for i, v in enumerate(_checkpointed(generator, discriminator, combined))}
            partial = checkpoint.with_suffix(".partial.npz")
            np.savez(partial, key=checkpoint_key, step=step + 1, losses=np.array(losses), **values)
            partial.replace(checkpoint)
    history = np.array(losses).reshape(-1, 3)
    return generator, discriminator, {"d_real": history[:, 0], "d_fake": history[:, 1], "g": history[:, 2]}


def _checkpointed(generator, discriminator, combined) -> list:
    """Every variable a GAN checkpoint restores: both networks' weights and dropout seeds, both optimizers' states."""
    return [
        *generator.variables,
        *discriminator.variables,
        *discriminator.optimizer.variables,
        *combined.optimizer.variables,
    ]
