"""The CCDCGAN networks in Keras 3, backend-agnostic (TensorFlow here; JAX or torch on a GPU machine).

Layer by layer as the authors' Bi–Se code (../shared/reference/ccdcgan_reference.md §2), with the grid
sizes as parameters: an autoencoder halves its grid with stride-2 convolutions down to 4³ and closes with a
4³ VALID convolution to a 1³ latent, so 64³ gives the paper's five encoder layers and 32³ the lattice
autoencoder's four. With the paper's sizes the parameter counts equal the reference's (a test checks them).
Deliberate differences: the autoencoders end in a plain sigmoid (the code's "threshold" op kills the
gradients); optional BatchNorm and a spatial latent for the autoencoders, narrower GAN networks and a dense
constraint (settings; the paper's protocol keeps the paper's networks).
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
from keras import layers

from .config import ANCHOR_LAYER
from .graph import GraphLayout

LEAKY_SLOPE = 0.2
BATCHNORM_MOMENTUM = 0.8


def _halvings(grid: int, latent_grid: int) -> int:
    """Number of stride-2 steps from ``grid`` down to the 4³ (or a spatial latent's) grid; refuses grids that are not 4·2ⁿ."""
    steps = math.log2(grid / 4)
    if grid < 8 or steps != int(steps):
        raise ValueError(f"An autoencoder grid must be 4·2ⁿ and at least 8 (8, 16, 32, 64, …), not {grid}.")
    if latent_grid > 1:
        steps = math.log2(grid / latent_grid)
        if steps < 1 or steps != int(steps):
            raise ValueError(f"A {latent_grid}³ spatial latent must be the {grid}³ grid halved at least once.")
    return int(steps)


def build_autoencoder(
    grid: int,
    latent: int,
    filters: int = 64,
    name: str = "autoencoder",
    latent_grid: int = 1,
    batch_norm: bool = False,
) -> tuple[keras.Model, keras.Model, keras.Model]:
    """Return ``(encoder, decoder, autoencoder)`` for one-channel ``grid``³ voxels and a tanh latent of size ``latent``.

    Encoder: [Conv3D(filters, 4, stride 2, same), LeakyReLU 0.2] down to 4³, then the latent: with
    ``latent_grid=1`` (the paper) Conv3D(latent, 4, valid) to a 1³ vector; with ``latent_grid=g`` (4, 8, …) the
    encoder halves down to g³ only and ends in a Conv3D(latent / g³, 3, same) — the latent laid out in space,
    which the decoder turns back into positions with convolutions alone (learns in minutes on a CPU where the 1³
    latent needs hours). Decoder: the mirror with transposed convolutions, ending in a sigmoid. No biases, as
    the original; ``batch_norm`` puts a BatchNormalization before every hidden LeakyReLU (the sparse voxel
    images otherwise give near-constant latents and vanishing gradients).
    """
    if latent % latent_grid**3:
        raise ValueError(f"latent_grid must divide the latent: {latent} is not a multiple of {latent_grid}³.")
    halvings = _halvings(grid, latent_grid)

    def hidden(x):
        return layers.LeakyReLU(LEAKY_SLOPE)(layers.BatchNormalization()(x) if batch_norm else x)

    voxels = keras.Input((grid, grid, grid, 1), name="voxels")
    x = voxels
    for _ in range(halvings):
        x = hidden(layers.Conv3D(filters, 4, strides=2, padding="same", use_bias=False)(x))
    if latent_grid == 1:
        x = layers.Conv3D(latent, 4, padding="valid", use_bias=False, activation="tanh")(x)
    else:
        x = layers.Conv3D(latent // latent_grid**3, 3, padding="same", use_bias=False, activation="tanh")(x)
    encoder = keras.Model(voxels, layers.Flatten()(x), name=f"{name}_encoder")

    code = keras.Input((latent,), name="latent")
    if latent_grid == 1:
        y = layers.Reshape((1, 1, 1, latent))(code)
        y = hidden(layers.Conv3DTranspose(filters, 4, padding="valid", use_bias=False)(y))
    else:
        y = layers.Reshape((latent_grid,) * 3 + (latent // latent_grid**3,))(code)
        y = hidden(layers.Conv3D(filters, 3, padding="same", use_bias=False)(y))
    for step in range(halvings):
        last = step == halvings - 1
        y = layers.Conv3DTranspose(
            1 if last else filters, 4, strides=2, padding="same", use_bias=False, activation="sigmoid" if last else None
        )(y)
        if not last:
            y = hidden(y)
    decoder = keras.Model(code, y, name=f"{name}_decoder")
    autoencoder = keras.Model(voxels, decoder(encoder(voxels)), name=name)
    return encoder, decoder, autoencoder


def build_generator(noise_dim: int, side: int, filters: int = 64) -> keras.Model:
    """Return the generator: noise → ``side``×``side``×1 crystal graph in (−1, 1) (the Keras DCGAN example).

    Dense → (side/4)² × 2·filters → upsample, conv 2·filters → upsample, conv filters → conv 1, tanh; the
    paper's generator has ``filters`` 64 (128, 128, 64 channels).
    """
    if side % 4:
        raise ValueError(f"The crystal-graph side must be a multiple of 4, not {side}.")
    noise = keras.Input((noise_dim,), name="noise")
    x = layers.Dense(2 * filters * (side // 4) ** 2, activation="relu")(noise)
    x = layers.Reshape((side // 4, side // 4, 2 * filters))(x)
    for width in (2 * filters, filters):
        x = layers.UpSampling2D()(x)
        x = layers.Conv2D(width, 3, padding="same")(x)
        x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM)(x)
        x = layers.Activation("relu")(x)
    graph = layers.Conv2D(1, 3, padding="same", activation="tanh")(x)
    return keras.Model(noise, graph, name="generator")


@keras.saving.register_keras_serializable(package="ccdcgan")
class GraphFromLatents(layers.Layer):
    """``[lattice latent (g_l, g_l, g_l, c_l), site latents (g_s, g_s, g_s, elements·c_s)]`` → the crystal graph
    ``(side, side, 1)``, laid out exactly as :meth:`GraphLayout.to_graphs` (each latent flattened as the encoder's
    ``Flatten`` does; element k's site latent is channels k·c_s … (k+1)·c_s − 1)."""

    def __init__(self, layout: dict, **kwargs):
        super().__init__(**kwargs)
        self.layout = GraphLayout(**layout)

    def call(self, inputs):
        lattice, sites = inputs
        layout, ops = self.layout, keras.ops

        def slot(latent):
            size = math.prod(latent.shape[1:])
            return ops.pad(ops.reshape(latent, (-1, size)), [[0, 0], [0, layout.slot - size]])

        channels = layout.site_channels
        parts = [slot(lattice)] + [
            slot(sites[..., k * channels : (k + 1) * channels]) for k in range(layout.n_elements)
        ]
        flat = ops.concatenate(parts, axis=1)
        flat = ops.pad(flat, [[0, 0], [0, layout.side**2 - layout.slot * (layout.n_elements + 1)]])
        return ops.reshape(flat, (-1, layout.side, layout.side, 1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.layout.side, self.layout.side, 1)

    def get_config(self):
        return {**super().get_config(), "layout": dataclasses.asdict(self.layout)}


@keras.saving.register_keras_serializable(package="ccdcgan")
class LatentsFromGraph(layers.Layer):
    """The crystal graph → ``[lattice latent, site latents]`` on their grids: the inverse of :class:`GraphFromLatents`."""

    def __init__(self, layout: dict, **kwargs):
        super().__init__(**kwargs)
        self.layout = GraphLayout(**layout)

    def call(self, graph):
        layout, ops = self.layout, keras.ops
        flat = ops.reshape(graph, (-1, layout.side**2))
        lattice = ops.reshape(
            flat[:, : layout.lattice_latent], (-1, *(layout.lattice_latent_grid,) * 3, layout.lattice_channels)
        )
        grid = (layout.site_latent_grid,) * 3
        sites = [
            ops.reshape(
                flat[:, layout.site_slice(k)],
                (-1, *grid, layout.site_channels),
            )
            for k in range(layout.n_elements)
        ]
        return [lattice, ops.concatenate(sites, axis=-1)]

    def compute_output_shape(self, input_shape):
        layout = self.layout
        return [
            (input_shape[0], *(layout.lattice_latent_grid,) * 3, layout.lattice_channels),
            (input_shape[0], *(layout.site_latent_grid,) * 3, layout.site_channels * layout.n_elements),
        ]

    def get_config(self):
        return {**super().get_config(), "layout": dataclasses.asdict(self.layout)}


def build_spatial_generator(noise_dim: int, layout: GraphLayout, filters: int = 64) -> keras.Model:
    """Return the spatial generator: noise → the lattice and site latents on their own grids → the crystal graph.

    Dense → g_l³ × 4·filters; the lattice latent from one Conv3D(2·filters), BN, ReLU and a tanh Conv3D; the site
    latents of all elements through [Conv3D(2·filters), BN, ReLU, UpSampling3D] up to g_s³, Conv3D(filters), BN,
    ReLU and a tanh Conv3D (the 2D generator's pattern in 3D, where neighbouring latent values are neighbours in
    the crystal's box); laid out by :class:`GraphFromLatents`.
    """
    lattice_grid, site_grid = layout.lattice_latent_grid, layout.site_latent_grid

    def block(x, width):
        x = layers.Conv3D(width, 3, padding="same")(x)
        return layers.Activation("relu")(layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM)(x))

    noise = keras.Input((noise_dim,), name="noise")
    x = layers.Dense(lattice_grid**3 * 4 * filters, activation="relu")(noise)
    x = layers.Reshape((lattice_grid,) * 3 + (4 * filters,))(x)
    lattice = layers.Conv3D(layout.lattice_channels, 3, padding="same", activation="tanh")(block(x, 2 * filters))
    sites = x
    for _ in range(round(math.log2(site_grid // lattice_grid))):
        sites = layers.UpSampling3D()(block(sites, 2 * filters))
    sites = layers.Conv3D(layout.site_channels * layout.n_elements, 3, padding="same", activation="tanh")(
        block(sites, filters)
    )
    graph = GraphFromLatents(dataclasses.asdict(layout))([lattice, sites])
    return keras.Model(noise, graph, name="generator")


def build_spatial_discriminator(layout: GraphLayout, filters: int = 64) -> keras.Model:
    """Return the spatial discriminator: crystal graph → its latents on their grids → probability that it is real.

    Site latents: Conv3D (filters, stride 1; 2·filters, stride 2; 4·filters, stride 2); lattice latent: Conv3D
    (filters, stride 1; 2·filters, stride 2); each with LeakyReLU 0.2 and Dropout 0.25, no BatchNorm — so the
    network the generator learns against (inference mode) judges as the one just trained (without Dropout).
    """

    def block(x, width, strides):
        x = layers.Conv3D(width, 3, strides=strides, padding="same")(x)
        return layers.Dropout(0.25)(layers.LeakyReLU(LEAKY_SLOPE)(x))

    graph = keras.Input((layout.side, layout.side, 1), name="graph")
    lattice, sites = LatentsFromGraph(dataclasses.asdict(layout))(graph)
    sites = block(block(block(sites, filters, 1), 2 * filters, 2), 4 * filters, 2)
    lattice = block(block(lattice, filters, 1), 2 * filters, 2)
    features = layers.Concatenate()([layers.Flatten()(sites), layers.Flatten()(lattice)])
    return keras.Model(graph, layers.Dense(1, activation="sigmoid")(features), name="discriminator")


@keras.saving.register_keras_serializable(package="ccdcgan")
class TrainingGraphFromNoise(layers.Layer):
    """Noise → one of ``count`` stored training graphs, chosen by the noise's first component: its normal quantile
    Φ(z₀) ∈ (0, 1) times ``count``, so Gaussian noise draws every training graph with the same probability. The graphs
    are a non-trainable weight, saved with the model."""

    def __init__(self, count: int, side: int, **kwargs):
        super().__init__(**kwargs)
        self.count, self.side = count, side

    def build(self, input_shape):
        self.graphs = self.add_weight(
            shape=(self.count, self.side, self.side, 1), initializer="zeros", trainable=False, name="graphs"
        )

    def call(self, noise):
        ops = keras.ops
        quantile = 0.5 * (1.0 + ops.erf(noise[:, 0] / math.sqrt(2.0)))
        index = ops.clip(ops.cast(ops.floor(quantile * self.count), "int32"), 0, self.count - 1)
        return ops.take(self.graphs, index, axis=0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.side, self.side, 1)

    def get_config(self):
        return {**super().get_config(), "count": self.count, "side": self.side}


@keras.saving.register_keras_serializable(package="ccdcgan")
class BoundedStep(layers.Layer):
    """``[graph, step in (−1, 1)]`` → graph + ``radius``·step, clipped to the tanh range (−1, 1)."""

    def __init__(self, radius: float, **kwargs):
        super().__init__(**kwargs)
        self.radius = radius

    def call(self, inputs):
        graph, step = inputs
        return keras.ops.clip(graph + self.radius * step, -1.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "radius": self.radius}


def build_anchored_generator(noise_dim: int, graphs, radius: float, filters: int = 64) -> keras.Model:
    """Return the anchored generator: noise → a training graph (drawn by the noise) + a learnt step of at most
    ``radius`` on every pixel.

    ``graphs`` ``(N, side, side, 1)``: the training crystals' graphs, stored in the model
    (:class:`TrainingGraphFromNoise`). The step: the flattened graph and the noise → Dense(16·filters), ReLU, twice
    → Dense(side²), tanh, times ``radius`` (:class:`BoundedStep`). The generator keeps its graphs where the decoders
    were trained and learns, against the discriminator (and for CCDCGAN the constraint), where around them to go.
    """
    count, side = len(graphs), graphs.shape[1]
    noise = keras.Input((noise_dim,), name="noise")
    anchors = TrainingGraphFromNoise(count, side, name=ANCHOR_LAYER)
    graph = anchors(noise)
    x = layers.Concatenate()([layers.Flatten()(graph), noise])
    for _ in range(2):
        x = layers.Dense(16 * filters, activation="relu")(x)
    step = layers.Reshape((side, side, 1))(layers.Dense(side * side, activation="tanh")(x))
    generator = keras.Model(noise, BoundedStep(radius)([graph, step]), name="generator")
    anchors.graphs.assign(np.asarray(graphs, dtype="float32"))
    return generator


def _convolutional_trunk(graph, filters: int = 64):
    """Layers 1–4 shared by the discriminator and the constraint: strided convs (filters/2, filters, 2·, 4·filters), BN, LeakyReLU, dropout."""
    x = layers.Conv2D(filters // 2, 3, strides=2, padding="same")(graph)
    x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Conv2D(filters, 3, strides=2, padding="same")(x)
    x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    for width, strides in ((None, None), (2 * filters, 2), (4 * filters, 1)):
        if width:
            x = layers.Conv2D(width, 3, strides=strides, padding="same")(x)
        x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM)(x)
        x = layers.LeakyReLU(LEAKY_SLOPE)(x)
        x = layers.Dropout(0.25)(x)
    return layers.Flatten()(x)


def build_discriminator(side: int, filters: int = 64) -> keras.Model:
    """Return the discriminator: crystal graph → probability that it is real (the paper's with ``filters`` 64)."""
    graph = keras.Input((side, side, 1), name="graph")
    return keras.Model(
        graph, layers.Dense(1, activation="sigmoid")(_convolutional_trunk(graph, filters)), name="discriminator"
    )


def build_constraint(side: int) -> keras.Model:
    """Return the paper's constraint CNN: crystal graph → formation energy (eV/atom).

    The discriminator's trunk and six dense layers (1024, 256, 256, 256, 64, 1). The original ends in a
    LeakyReLU that scales negative predictions by 0.2 (bug B10); this output is linear.
    """
    graph = keras.Input((side, side, 1), name="graph")
    x = _convolutional_trunk(graph)
    for units in (1024, 256, 256, 256, 64):
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    return keras.Model(graph, layers.Dense(1)(x), name="constraint")


def build_dense_constraint(
    side: int,
    hidden_units: tuple[int, ...],
    dropout: float,
    mean: float = 0.0,
    scale: float = 1.0,
    element_features: int = 0,
) -> keras.Model:
    """Return a dense constraint: the flattened crystal graph → hidden layers (LeakyReLU, dropout) → formation energy.

    The last unit's output is mapped to eV/atom by ``scale``·y + ``mean`` (the training targets' statistics), so
    the network itself works on standardised values. ``element_features`` > 0: a second input of that many numbers
    (:func:`~aiida_ccdcgan.models.graph.element_features`) joins the flattened graph, for graphs of many systems.
    """
    graph = keras.Input((side, side, 1), name="graph")
    x = layers.Flatten()(graph)
    inputs = graph
    if element_features:
        elements = keras.Input((element_features,), name="elements")
        x = layers.Concatenate()([x, elements])
        inputs = [graph, elements]
    for units in hidden_units:
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(LEAKY_SLOPE)(x)
        x = layers.Dropout(dropout)(x)
    energy = layers.Rescaling(scale, offset=mean)(layers.Dense(1)(x))
    return keras.Model(inputs, energy, name="constraint")


def build_crystal_energy_network(
    feature_mean: np.ndarray,
    feature_variance: np.ndarray,
    hidden_units: tuple[int, ...],
    mean: float = 0.0,
    scale: float = 1.0,
) -> keras.Model:
    """Return the crystal energy network: a crystal's partial RDFs → formation energy (eV/atom).

    The input is standardised with the training crystals' ``feature_mean`` and ``feature_variance`` (kept in the
    model), passes ``hidden_units`` with LeakyReLU, and the last unit's output is mapped to eV/atom by
    ``scale``·y + ``mean``, as in :func:`build_dense_constraint`.
    """
    rdfs = keras.Input((len(feature_mean),), name="partial_rdfs")
    x = layers.Normalization(mean=feature_mean, variance=feature_variance)(rdfs)
    for units in hidden_units:
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(LEAKY_SLOPE)(x)
    energy = layers.Rescaling(scale, offset=mean)(layers.Dense(1)(x))
    return keras.Model(rdfs, energy, name="crystal_energy")
