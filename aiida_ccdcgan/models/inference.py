"""Using trained CCDCGAN networks: crystals → crystal graphs (the encoders), graphs → crystals (the decoders), the
formation energy of a crystal (the constraint or the crystal energy network), graphs from the generator.

:class:`~aiida_ccdcgan.models.bundle.ModelBundle` is the way in: it holds the networks and the configuration these
functions take one by one.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..representation import (
    DecodeResult,
    VoxelConfig,
    decode_batch,
    lattice_voxels,
    representable_crystals,
    site_voxels,
)
from ..representation.pair_distribution import partial_rdf_features
from .config import ANCHOR_LAYER, TrainingConfig, step_scale_refusal
from .graph import GraphLayout


def encode_crystals(
    crystals, config: VoxelConfig, layout: GraphLayout, site_encoder, lattice_encoder, batch_size: int = 16
) -> np.ndarray:
    """Return the crystal graphs ``(N, side, side, 1)`` of canonical crystals."""
    graphs = []
    channels = len(config.elements)
    for start in range(0, len(crystals), batch_size):
        chunk = crystals[start : start + batch_size]
        sites = site_voxels(chunk, config)  # (B, G, G, G, C)
        per_channel = np.moveaxis(sites, -1, 1).reshape(-1, *sites.shape[1:4], 1)
        site_latents = site_encoder.predict(per_channel, verbose=0).reshape(len(chunk), channels, -1)
        lattice_latents = lattice_encoder.predict(lattice_voxels(chunk, config)[..., None], verbose=0)
        graphs.append(layout.to_graphs(lattice_latents, site_latents))
    return np.concatenate(graphs)


def encode_structures_to_graphs(
    structures, config: VoxelConfig, layout: GraphLayout, site_encoder, lattice_encoder
) -> tuple[np.ndarray, list[int]]:
    """The crystal graphs of the pymatgen ``structures`` the representation can hold, and their indices (the
    others — too large for the box, too many atoms — are left out, as in training)."""
    crystals, kept, _ = representable_crystals(structures, config)
    if not crystals:
        return np.zeros((0, layout.side, layout.side, 1), dtype=np.float32), kept
    return encode_crystals(crystals, config, layout, site_encoder, lattice_encoder), kept


def cell_order_graphs(
    structures, config: VoxelConfig, layout: GraphLayout, site_encoder, lattice_encoder, orders: int, given: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The crystal graphs of pymatgen ``structures`` with their cell vectors in the first ``orders`` of their six
    orders (:func:`~aiida_ccdcgan.representation.encode.reordered_cells`; ``given`` False: without the first, the
    order as given), and for each graph the index of its structure. Views beyond the representation's limits are
    left out. Each view is the same crystal (same energy) with another crystal graph."""
    from ..representation.encode import reordered_cells

    views, owners = [], []
    for index, structure in enumerate(structures):
        cells = reordered_cells(structure, orders, config)[0 if given else 1 :]
        views += cells
        owners += [index] * len(cells)
    # reordered_cells has already reduced each crystal to the cell that is encoded
    graphs, kept = encode_structures_to_graphs(
        views, dataclasses.replace(config, primitive_tolerance=None), layout, site_encoder, lattice_encoder
    )
    return graphs, np.array([owners[i] for i in kept], dtype=int)


def crystal_formation_energies(structures, config: TrainingConfig, models) -> np.ndarray:
    """The formation energy (eV/atom) of each of the pymatgen ``structures`` as ``config.crystal_energy`` gives it:
    ``models["crystal_energy"]`` on the crystal's partial RDFs (:func:`crystal_rdf_features`; input ``partial_rdfs``)
    or the constraint over the crystal's cell orders (:func:`constraint_over_cell_orders`; input ``graph``).

    For a decoded crystal this is the energy of the crystal itself, read as the model learnt from training crystals,
    where the constraint's prediction for the generated graph that decoded to it is not (that graph may lie anywhere
    the generator puts it)."""
    if config.crystal_energy.input == "partial_rdfs":
        features = crystal_rdf_features(structures, config)
        return models["crystal_energy"].predict(features, verbose=0).ravel().astype(float)
    return constraint_over_cell_orders(structures, config, models)


def constraint_over_cell_orders(structures, config: TrainingConfig, models) -> np.ndarray:
    """The constraint's formation energy (eV/atom) of each of the pymatgen ``structures``: the crystal encoded
    through ``models["site_encoder"]`` and ``models["lattice_encoder"]`` in the first ``config.constraint.cell_orders``
    orders of its cell vectors (:func:`cell_order_graphs`) and ``models["constraint"]``'s predictions of those graphs
    averaged; NaN for a crystal beyond the representation's limits in every order."""
    graphs, owners = cell_order_graphs(
        structures,
        config.representation,
        config.layout,
        models["site_encoder"],
        models["lattice_encoder"],
        config.constraint.cell_orders,
    )
    count = len(structures)
    if not len(owners):
        return np.full(count, np.nan)
    return mean_over_views(models["constraint"].predict(graphs, verbose=0).ravel(), owners, count)


def crystal_rdf_features(structures, config: TrainingConfig) -> np.ndarray:
    """The partial RDFs ``(N, F)`` of pymatgen ``structures`` on ``config.crystal_energy``'s grid, for the elements of
    the representation in their order."""
    settings = config.crystal_energy
    return partial_rdf_features(structures, config.representation.elements, settings.rdf_centres, settings.rdf_sigma)


def mean_over_views(predicted, owners, count: int) -> np.ndarray:
    """The mean of per-view ``predicted`` values for each of ``count`` crystals (``owners``: each view's crystal, as
    :func:`cell_order_graphs` gives them); NaN for a crystal with no view."""
    views = np.bincount(owners, minlength=count)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(views > 0, np.bincount(owners, predicted, count) / views, np.nan)


def decode_graphs(
    graphs, config: VoxelConfig, layout: GraphLayout, site_decoder, lattice_decoder, batch_size: int = 16
) -> list[DecodeResult]:
    """Decode crystal graphs through the autoencoder decoders and the representation into crystals (or failures)."""
    results = []
    channels = len(config.elements)
    for start in range(0, len(graphs), batch_size):
        lattice_latents, site_latents = layout.from_graphs(graphs[start : start + batch_size])
        lattices = lattice_decoder.predict(lattice_latents, verbose=0)[..., 0]
        sites = site_decoder.predict(site_latents.reshape(-1, site_latents.shape[-1]), verbose=0)
        sites = np.moveaxis(sites[..., 0].reshape(len(lattices), channels, *sites.shape[1:4]), 1, -1)
        results += decode_batch(sites, lattices, config)
    return results


def _generator_noise(generator, count: int, seed: int) -> tuple[np.random.Generator, np.ndarray]:
    """The seeded random generator and the ``count`` Gaussian noise vectors it draws first for ``generator``."""
    rng = np.random.default_rng(seed)
    return rng, rng.standard_normal((count, generator.input_shape[-1])).astype(np.float32)


def _anchor_layer(generator):
    """The anchored generator's layer that holds its training graphs; a generator without one is refused."""
    if ANCHOR_LAYER not in {layer.name for layer in generator.layers}:
        raise ValueError(
            "Only an anchored generator (gan.architecture 'anchored') has training graphs to step from; sample this "
            "one with step_scale 'learnt'."
        )
    return generator.get_layer(ANCHOR_LAYER)


def anchor_graphs(generator, count: int, seed: int) -> np.ndarray:
    """The training graphs an anchored generator steps from for the ``count`` samples of :func:`sample_graphs`
    with ``seed``."""
    import keras

    return keras.ops.convert_to_numpy(_anchor_layer(generator)(_generator_noise(generator, count, seed)[1]))


def sample_graphs(generator, count: int, seed: int, step_scale: str = "learnt") -> np.ndarray:
    """Generate ``count`` crystal graphs from seeded Gaussian noise (``step_scale``: :data:`~.config.STEP_SCALES`;
    ``backoff``, ``fallback``: the learnt step here: :func:`~.bundle.sample_candidates` shortens it after decoding)."""
    if (refusal := step_scale_refusal(step_scale, "anchored")) is not None:  # the name; the anchor is checked below
        raise ValueError(refusal)
    if step_scale != "learnt":
        _anchor_layer(generator)
    rng, noise = _generator_noise(generator, count, seed)
    graphs = generator.predict(noise, verbose=0)
    if step_scale != "uniform":
        return graphs
    import keras

    anchors = keras.ops.convert_to_numpy(_anchor_layer(generator)(noise))
    return anchors + rng.uniform(0.0, 1.0, (count, 1, 1, 1)).astype(np.float32) * (graphs - anchors)
