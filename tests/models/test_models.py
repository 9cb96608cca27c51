"""The CCDCGAN networks (Keras 3 on TensorFlow): architecture fidelity, graph layout, real training on tiny data."""

import dataclasses

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from aiida_ccdcgan.models.config import AutoencoderSettings, ConstraintSettings, CrystalEnergySettings  # noqa: E402
from aiida_ccdcgan.models.graph import ELEMENT_FEATURES, GraphLayout, element_features  # noqa: E402
from aiida_ccdcgan.models.inference import (  # noqa: E402
    cell_order_graphs,
    crystal_formation_energies,
    crystal_rdf_features,
    decode_graphs,
    encode_crystals,
    sample_graphs,
)
from aiida_ccdcgan.models.metrics import regression_metrics  # noqa: E402
from aiida_ccdcgan.models.networks import (  # noqa: E402
    build_autoencoder,
    build_constraint,
    build_discriminator,
    build_generator,
)
from aiida_ccdcgan.models.training import (  # noqa: E402
    train_autoencoder,
    train_constraint,
    train_crystal_energy,
    weighted_binary_crossentropy,
)
from aiida_ccdcgan.representation import DecodeFailure, VoxelConfig, canonical_crystal  # noqa: E402


def _trainable(model) -> int:
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def test_paper_sized_networks_have_the_reference_parameter_counts():
    """Counts from the authors' Bi–Se code (reference §2.1–2.5); a layer out of place changes them."""
    site_encoder, site_decoder, site = build_autoencoder(64, 200)
    lattice_encoder, lattice_decoder, _ = build_autoencoder(32, 25)
    assert (site_encoder.count_params(), site_decoder.count_params()) == (1_609_728, 1_609_728)
    assert (lattice_encoder.count_params(), lattice_decoder.count_params()) == (630_784, 630_784)
    assert site.output_shape == (None, 64, 64, 64, 1)
    assert _trainable(build_generator(200, 28)) == 1_483_009
    assert _trainable(build_discriminator(28)) == 392_833
    assert _trainable(build_constraint(28)) == 4_994_561
    # the fast protocol's narrower GAN: widths scale with ``filters`` (16 → a sixteenth of the convolutions)
    assert (
        _trainable(build_generator(100, 40, filters=16))
        == 100 * 3200 + 3200 + (9 * 32 * 32 + 32) + 9 * 32 * 16 + 16 + 2 * 32 + 2 * 16 + 9 * 16 + 1
    )
    assert _trainable(build_discriminator(40, filters=16)) < _trainable(build_discriminator(40)) / 10
    with pytest.raises(ValueError, match="4·2ⁿ"):
        build_autoencoder(48, 10)


def test_graph_layout_permutes_the_element_slots():
    """``with_elements_permuted``: the graphs, then each with its site latents moved to the other elements' slots;
    the lattice latent stays."""
    layout = GraphLayout(n_elements=2, site_latent=8, lattice_latent=4)
    rng = np.random.default_rng(0)
    lattice, sites = rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (3, 2, 8))
    graphs = layout.to_graphs(lattice, sites)
    permuted = layout.with_elements_permuted(graphs)
    assert permuted.shape == (6, *graphs.shape[1:]) and np.array_equal(permuted[:3], graphs)
    twin_lattice, twin_sites = layout.from_graphs(permuted[3:])
    assert np.allclose(twin_lattice, lattice) and np.allclose(twin_sites, sites[:, ::-1])
    ternary = GraphLayout(n_elements=3, site_latent=8, lattice_latent=4)
    ternary_graphs = ternary.to_graphs(lattice, rng.uniform(-1, 1, (3, 3, 8)))
    assert len(ternary.with_elements_permuted(ternary_graphs)) == 6 * 3  # every order of three elements


def test_graph_layout_matches_the_paper_and_round_trips():
    layout = GraphLayout(2)
    assert layout.side == 28 and GraphLayout(3).side == 32 and GraphLayout(1).side == 20
    rng = np.random.default_rng(0)
    lattice, sites = rng.uniform(-1, 1, (3, 25)), rng.uniform(-1, 1, (3, 2, 200))
    graphs = layout.to_graphs(lattice, sites)
    flat = graphs.reshape(3, -1)
    assert graphs.shape == (3, 28, 28, 1)
    np.testing.assert_allclose(flat[:, :25], lattice, rtol=1e-6)
    np.testing.assert_allclose(flat[:, 200:400], sites[:, 0], rtol=1e-6)
    np.testing.assert_allclose(flat[:, 400:600], sites[:, 1], rtol=1e-6)
    assert not flat[:, 25:200].any() and not flat[:, 600:].any()
    back_lattice, back_sites = layout.from_graphs(graphs)
    np.testing.assert_allclose(back_lattice, lattice, rtol=1e-6)
    np.testing.assert_allclose(back_sites, sites, rtol=1e-6)
    with pytest.raises(ValueError, match="Expected graphs"):
        layout.from_graphs(np.zeros((1, 32, 32, 1)))


TINY = VoxelConfig(elements=("Bi", "Se"), site_grid=16, lattice_grid=16, sigma=0.6)


@pytest.fixture(scope="module")
def tiny_models():
    """Autoencoders and a constraint trained for a few steps on four Bi–Se crystals (16³ grids)."""
    from dataset_files import make_crystals

    records = [r for r in make_crystals() if "Na" not in r.structure.composition]
    crystals = [canonical_crystal(r.structure, TINY) for r in records]
    settings = AutoencoderSettings(latent=8, filters=8, epochs=2, batch_size=4)
    site = train_autoencoder(crystals, TINY, "site", settings, seed=3)
    lattice = train_autoencoder(
        crystals, TINY, "lattice", AutoencoderSettings(latent=4, filters=8, epochs=2, batch_size=4), seed=3
    )
    layout = GraphLayout(2, site_latent=8, lattice_latent=4)
    graphs = encode_crystals(crystals, TINY, layout, site[0], lattice[0])
    energies = np.array([r.formation_energy for r in records])
    constraint, constraint_losses = train_constraint(
        graphs, energies, ConstraintSettings(epochs=3, batch_size=4), seed=3
    )
    return {
        "crystals": crystals,
        "site": site,
        "lattice": lattice,
        "layout": layout,
        "graphs": graphs,
        "energies": energies,
        "constraint": constraint,
        "constraint_losses": constraint_losses,
    }


def test_autoencoders_train_on_voxels_built_on_the_fly(tiny_models):
    _, _, site_losses = tiny_models["site"]
    _, _, lattice_losses = tiny_models["lattice"]
    assert len(site_losses["loss"]) == 2 and len(lattice_losses["loss"]) == 2 and "val_loss" not in site_losses
    assert all(np.isfinite(site_losses["loss"] + lattice_losses["loss"])) and 0 < site_losses["loss"][0] < 1
    graphs = tiny_models["graphs"]
    assert graphs.shape == (4, 8, 8, 1) and np.all(np.abs(graphs) <= 1)  # tanh latents


def test_autoencoders_learn_from_crystals_each_with_its_own_elements():
    """A multi-system dataset (MP-20): one representation per crystal, each with its own elements; the site
    autoencoder learns from every element channel of every crystal, and representations that differ in more than
    their elements are refused."""
    from dataset_files import make_crystals

    from aiida_ccdcgan.models.pipeline import VoxelBatches
    from aiida_ccdcgan.representation import own_elements, site_voxels

    records = make_crystals()
    configs = [dataclasses.replace(TINY, elements=own_elements(r.structure)) for r in records]
    crystals = [canonical_crystal(r.structure, config) for r, config in zip(records, configs)]
    batches = VoxelBatches(crystals, configs, "site", batch_size=4, seed=0, shuffle=False)
    # Bi2Se3 2, Bi 1, Se 1, BiSe 2, NaCl 2 channels: NaCl's Na and Cl images are its own, not the Bi–Se channels.
    assert len(batches.samples) == 8 and len(batches) == 2
    images, targets = batches[1]
    assert images.shape == (4, 16, 16, 16, 1) and images is targets
    nacl = site_voxels([crystals[4]], configs[4])[0]
    np.testing.assert_array_equal(images[2:, ..., 0], np.moveaxis(nacl, -1, 0))
    assert all(images[k].max() > 0.5 for k in range(4))  # every image holds atoms: no empty channel

    encoder, _, losses = train_autoencoder(
        crystals, configs, "site", AutoencoderSettings(latent=8, filters=8, epochs=2, batch_size=4), seed=3
    )
    assert len(losses["loss"]) == 2 and all(np.isfinite(losses["loss"])) and encoder.output_shape == (None, 8)
    lattice = train_autoencoder(
        crystals, configs, "lattice", AutoencoderSettings(latent=4, filters=8, epochs=1, batch_size=4, max_structures=3)
    )
    assert np.isfinite(lattice[2]["loss"][0])
    with pytest.raises(ValueError, match="differ in their elements only"):
        VoxelBatches(crystals, [*configs[:4], dataclasses.replace(configs[4], sigma=0.5)], "site", 4, 0)
    with pytest.raises(ValueError, match="one per crystal"):
        VoxelBatches(crystals, configs[:3], "site", 4, 0)


def test_training_is_reproducible_with_a_seed(tiny_models):
    again = train_autoencoder(
        tiny_models["crystals"],
        TINY,
        "lattice",
        AutoencoderSettings(latent=4, filters=8, epochs=2, batch_size=4),
        seed=3,
    )
    assert again[2] == tiny_models["lattice"][2]


def test_spatial_latent_batch_norm_and_weighted_cross_entropy(tiny_models):
    """The fast protocol's autoencoder options: a 4³ spatial latent, BatchNorm, foreground-weighted BCE, cosine."""
    encoder, decoder, autoencoder = build_autoencoder(16, 64, filters=8, latent_grid=4, batch_norm=True)
    assert encoder.output_shape == (None, 64) and autoencoder.output_shape == (None, 16, 16, 16, 1)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in encoder.layers)
    with pytest.raises(ValueError, match="latent_grid"):
        build_autoencoder(16, 100, latent_grid=4)
    encoder, decoder, _ = build_autoencoder(16, 1024, filters=8, latent_grid=8)
    assert encoder.output_shape == (None, 1024) and decoder.output_shape == (None, 16, 16, 16, 1)
    assert encoder.layers[-2].output.shape[1:] == (8, 8, 8, 2)  # 8³ × 2 channels before the flatten
    with pytest.raises(ValueError, match="halved at least once"):
        build_autoencoder(8, 512, latent_grid=8)

    loss = weighted_binary_crossentropy(9.0)
    y_true, y_pred = np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])
    # voxel weights 1 + 9·1 = 10 and 1: mean of (10·ln 2, ln 2)
    assert float(loss(y_true, y_pred)) == pytest.approx(5.5 * np.log(2), rel=1e-5)

    settings = AutoencoderSettings(
        latent=64,
        filters=8,
        latent_grid=4,
        batch_norm=True,
        loss="weighted_bce",
        foreground_weight=50.0,
        schedule="cosine",
        epochs=2,
        batch_size=4,
    )
    site_encoder, _, losses = train_autoencoder(tiny_models["crystals"], TINY, "site", settings, seed=3)
    assert len(losses["loss"]) == 2 and all(np.isfinite(losses["loss"])) and losses["loss"][1] < losses["loss"][0]
    assert site_encoder.output_shape == (None, 64)


@pytest.mark.parametrize(
    "change, message",
    [({"loss": "l1"}, "loss must be"), ({"schedule": "step"}, "schedule must be"), ({"latent_grid": 2}, "latent_grid")],
)
def test_autoencoder_settings_name_what_is_wrong(change, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderSettings(latent=64, **change)


def test_constraint_trains_and_is_measured(tiny_models):
    losses = tiny_models["constraint_losses"]["loss"]
    assert len(losses) == 3 and all(np.isfinite(losses))
    predicted = tiny_models["constraint"].predict(tiny_models["graphs"], verbose=0)
    metrics = regression_metrics(predicted, tiny_models["energies"])
    assert metrics["n"] == 4 and np.isfinite(metrics["mae"]) and metrics["rmse"] >= metrics["mae"]
    assert regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == {"mae": 0.0, "rmse": 0.0, "r2": 1.0, "n": 3}


def test_a_crystal_s_energy_is_the_mean_over_its_cell_orders(tiny_models):
    """What screening and the held-out metric use: each crystal re-encoded in several orders of its cell vectors,
    the constraint's predictions averaged; NaN for a crystal the representation cannot hold."""
    from dataset_files import make_crystals
    from pymatgen.core import Lattice, Structure

    from aiida_ccdcgan.models.config import TrainingConfig

    structures = [r.structure for r in make_crystals() if "Na" not in r.structure.composition]
    encoders = (tiny_models["layout"], tiny_models["site"][0], tiny_models["lattice"][0])
    models = {"site_encoder": encoders[1], "lattice_encoder": encoders[2], "constraint": tiny_models["constraint"]}
    settings = {
        "representation": TINY.to_dict(),
        "site_autoencoder": {"latent": 8},
        "lattice_autoencoder": {"latent": 4},
        "constraint": {"cell_orders": 1},
    }
    config = TrainingConfig.from_dict(settings)
    assert config.layout == tiny_models["layout"]
    as_given = crystal_formation_energies(structures, config, models)
    predicted = tiny_models["constraint"].predict(tiny_models["graphs"], verbose=0).ravel()
    np.testing.assert_allclose(as_given, predicted, atol=1e-5)

    graphs, owners = cell_order_graphs(structures, TINY, *encoders, orders=3)
    assert owners.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    np.testing.assert_allclose(graphs[::3], tiny_models["graphs"], atol=1e-6)  # the first order is the crystal as given
    # a "constraint" that sums the graph, so that every view counts: the other orders are other graphs
    summing = keras.Sequential(
        [keras.Input(graphs.shape[1:]), keras.layers.Flatten(), keras.layers.Dense(1, kernel_initializer="ones")]
    )
    views = summing.predict(graphs, verbose=0).reshape(4, 3)
    assert np.ptp(views, axis=1).max() > 1e-3
    too_large = Structure(Lattice.cubic(30.0), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    config = TrainingConfig.from_dict({**settings, "constraint": {"cell_orders": 3}})
    mean = crystal_formation_energies([*structures, too_large], config, {**models, "constraint": summing})
    np.testing.assert_allclose(mean[:4], views.mean(axis=1), rtol=1e-6)
    assert np.isnan(mean[4])
    others, owners = cell_order_graphs(structures, TINY, *encoders, orders=3, given=False)
    assert owners.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    np.testing.assert_allclose(others, np.delete(graphs, np.s_[::3], axis=0), atol=1e-6)


def test_dense_constraint_predicts_in_ev_per_atom(tiny_models):
    """The fast protocol's constraint: a perceptron on the flattened graph, Huber loss, cosine decay, targets' scale built in."""
    graphs, energies = tiny_models["graphs"], tiny_models["energies"]
    settings = ConstraintSettings(
        network="dense", hidden_units=[16, 8], dropout=0.1, loss="huber", schedule="cosine", epochs=3, batch_size=4
    )
    assert settings.hidden_units == (16, 8)
    model, losses = train_constraint(graphs, energies, settings, seed=3)
    assert len(losses["loss"]) == 3 and all(np.isfinite(losses["loss"]))
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [16, 8, 1]
    rescaling = model.layers[-1]
    assert rescaling.scale == pytest.approx(energies.std()) and rescaling.offset == pytest.approx(energies.mean())
    again, _ = train_constraint(graphs, energies, settings, seed=3)
    np.testing.assert_array_equal(model.predict(graphs, verbose=0), again.predict(graphs, verbose=0))


def test_constraint_of_many_systems_reads_which_element_each_slot_holds(tiny_models):
    """Graphs of crystals of different systems share one layout; the element features say which element is where."""
    features = element_features("LiCoO2", ["Co", "Li", "O"], slots=4).reshape(4, len(ELEMENT_FEATURES))
    np.testing.assert_allclose(features[:, 0], [0.27, 0.03, 0.08, 0.0])  # atomic numbers / 100, the empty slot zero
    np.testing.assert_allclose(features[:, -1], [0.25, 0.25, 0.5, 0.0])  # atomic fractions
    assert element_features("Ar", ["Ar"], slots=1)[3] == 0.0  # no electronegativity: zero, not NaN
    with pytest.raises(ValueError, match="3 elements do not fit 2 element slots"):
        element_features("LiCoO2", ["Co", "Li", "O"], slots=2)

    graphs, energies = tiny_models["graphs"], tiny_models["energies"]
    systems = (("Bi", "Se"), ("Se", "Te"), ("Bi", "Se"), ("Se", "Te"))
    table = np.stack([element_features("BiSe", elements, slots=2) for elements in systems])
    settings = ConstraintSettings(network="dense", hidden_units=[8], epochs=2, batch_size=4)
    model, losses = train_constraint(graphs, energies, settings, seed=1, element_features=table)
    assert [tuple(t.shape) for t in model.inputs] == [(None, *graphs.shape[1:]), (None, 12)] and len(
        losses["loss"]
    ) == 2
    same_graph = np.repeat(graphs[:1], 2, axis=0)
    first, second = model.predict([same_graph, table[:2]], verbose=0).ravel()
    assert first != second  # the same graph in another system is another crystal
    with pytest.raises(ValueError, match="Element features need the dense constraint"):
        train_constraint(graphs, energies, ConstraintSettings(epochs=1), element_features=table)


def test_crystal_energy_network_reads_partial_rdfs_and_judges_crystals(tiny_models, tmp_path):
    """``crystal_energy.input: partial_rdfs``: a perceptron on the crystal's standardised partial RDFs, its scale in eV/atom
    built in, seeded, saved and loaded in safe mode; :func:`crystal_formation_energies` then judges crystals with it."""
    from dataset_files import make_crystals

    from aiida_ccdcgan.models.config import TrainingConfig

    structures = [r.structure for r in make_crystals() if "Na" not in r.structure.composition]
    config = TrainingConfig.from_dict(
        {
            "representation": TINY.to_dict(),
            "crystal_energy": {"input": "partial_rdfs", "hidden_units": [16, 8], "epochs": 40, "batch_size": 4},
        }
    )
    settings, energies = config.crystal_energy, tiny_models["energies"]
    features = crystal_rdf_features(structures, config)
    assert features.shape == (4, 3 * len(settings.rdf_centres)) and len(settings.rdf_centres) == 55
    model, losses = train_crystal_energy(features, energies, settings, seed=3)
    assert len(losses["loss"]) == 40 and losses["loss"][-1] < losses["loss"][0] / 2
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [16, 8, 1]
    assert model.layers[-1].offset == pytest.approx(energies.mean())
    again, _ = train_crystal_energy(features, energies, settings, seed=3)
    predicted = model.predict(features, verbose=0).ravel()
    np.testing.assert_array_equal(predicted, again.predict(features, verbose=0).ravel())
    model.save(tmp_path / "crystal_energy.keras")
    loaded = keras.saving.load_model(tmp_path / "crystal_energy.keras", safe_mode=True, compile=False)
    judged = crystal_formation_energies(structures, config, {"crystal_energy": loaded})  # no graph, no encoder
    np.testing.assert_allclose(judged, predicted, rtol=1e-6)
    assert np.mean(np.abs(judged - energies)) < np.mean(np.abs(energies - energies.mean()))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"input": "graph_and_rdfs"}, "Crystal energy input must be 'graph' or 'partial_rdfs'"),
        ({"rdf_start": 6.0}, "0 < rdf_start < rdf_stop"),
        ({"rdf_sigma": 0.0}, "positive rdf_step and rdf_sigma"),
    ],
)
def test_crystal_energy_settings_name_what_is_wrong(change, message):
    with pytest.raises(ValueError, match=message):
        CrystalEnergySettings(**change)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"network": "gnn"}, "network must be"),
        ({"loss": "l1"}, "loss must be"),
        ({"schedule": "step"}, "schedule must be"),
        ({"cell_orders": 7}, "cell_orders must be 1 to 6"),
    ],
)
def test_constraint_settings_name_what_is_wrong(change, message):
    with pytest.raises(ValueError, match=message):
        ConstraintSettings(**change)


def test_validation_losses_are_scored_after_each_epoch_without_changing_training(tiny_models):
    """Held-out crystals (graphs) give a ``val_loss`` per epoch; the training itself is the same as without them."""
    crystals, settings = tiny_models["crystals"], AutoencoderSettings(latent=4, filters=8, epochs=2, batch_size=4)
    _, _, scored = train_autoencoder(crystals[:3], TINY, "lattice", settings, seed=3, validation=crystals[3:])
    _, _, plain = train_autoencoder(crystals[:3], TINY, "lattice", settings, seed=3)
    assert len(scored["val_loss"]) == 2 and all(np.isfinite(scored["val_loss"])) and scored["loss"] == plain["loss"]
    graphs, energies = tiny_models["graphs"], tiny_models["energies"]
    constraint = ConstraintSettings(epochs=3, batch_size=4)
    _, history = train_constraint(graphs[:3], energies[:3], constraint, seed=3, validation=(graphs[3:], energies[3:]))
    assert (
        len(history["val_loss"]) == 3
        and history["loss"] == train_constraint(graphs[:3], energies[:3], constraint, seed=3)[1]["loss"]
    )
    with pytest.raises(ValueError, match="one representation for all"):
        train_autoencoder(crystals, [TINY] * 4, "lattice", settings, validation=crystals[:1])


def test_autoencoder_trains_on_a_seeded_subset(tiny_models):
    """``max_structures`` trains on a seeded subset: 2 of the 4 crystals give one batch of 2 per epoch."""
    settings = AutoencoderSettings(latent=4, filters=8, epochs=2, batch_size=4, max_structures=2)
    first = train_autoencoder(tiny_models["crystals"], TINY, "lattice", settings, seed=3)
    second = train_autoencoder(tiny_models["crystals"], TINY, "lattice", settings, seed=3)
    assert first[2] == second[2] and first[2] != tiny_models["lattice"][2]


def test_graphs_decode_into_crystals_or_classified_failures(tiny_models):
    site_decoder, lattice_decoder = tiny_models["site"][1], tiny_models["lattice"][1]
    results = decode_graphs(tiny_models["graphs"], TINY, tiny_models["layout"], site_decoder, lattice_decoder)
    assert len(results) == 4
    for result in results:  # barely trained decoders: any outcome, but always a crystal or a named failure
        assert (result.structure is None) != (result.failure is None)
        assert result.failure is None or isinstance(result.failure, DecodeFailure)


def test_sampling_is_reproducible_with_a_seed():
    keras.utils.set_random_seed(0)
    generator = build_generator(16, 8)
    first, second = sample_graphs(generator, 3, seed=5), sample_graphs(generator, 3, seed=5)
    assert first.shape == (3, 8, 8, 1) and np.array_equal(first, second)
    assert not np.array_equal(first, sample_graphs(generator, 3, seed=6))


def _weights(model):
    return [np.array(keras.ops.convert_to_numpy(w.value)) for w in model.weights if "moving" not in w.path]


def _moved(before, after):
    return max(float(np.abs(a - b).max()) for a, b in zip(before, after))


@pytest.mark.parametrize("mode", ["dcgan", "ccdcgan"])
def test_gan_steps_move_only_the_weights_they_should(tiny_models, mode):
    from aiida_ccdcgan.models.config import GanSettings
    from aiida_ccdcgan.models.training import build_gan, gan_step

    keras.utils.set_random_seed(0)
    settings = GanSettings(mode=mode, noise_dim=16, batch_size=4)
    constraint = tiny_models["constraint"]
    generator, discriminator, combined = build_gan(8, settings, constraint if mode == "ccdcgan" else None)
    noise = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    g0, d0, c0 = _weights(generator), _weights(discriminator), _weights(constraint)
    discriminator.trainable = True
    discriminator.train_on_batch(tiny_models["graphs"], np.ones((4, 1), np.float32))
    discriminator.trainable = False
    d1 = _weights(discriminator)
    combined.train_on_batch(noise, [np.ones((4, 1)), np.zeros((4, 1))] if mode == "ccdcgan" else np.ones((4, 1)))
    assert _moved(d0, d1) > 0  # the discriminator learns in its own step
    assert _moved(d1, _weights(discriminator)) == 0  # and is frozen in the generator's
    assert _moved(g0, _weights(generator)) > 0
    assert _moved(c0, _weights(constraint)) == 0  # the constraint is never trained by the GAN
    first, second = combined(noise, training=True), combined(noise, training=True)
    for a, b in zip(*(x if isinstance(x, list) else [x] for x in (first, second))):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )  # no dropout in critics
    losses = gan_step(generator, discriminator, combined, tiny_models["graphs"], noise)
    assert len(losses) == 3 and all(np.isfinite(losses))


def test_train_gan_is_seeded(tiny_models):
    from aiida_ccdcgan.models.config import GanSettings
    from aiida_ccdcgan.models.training import train_gan

    settings = GanSettings(mode="ccdcgan", noise_dim=16, batch_size=4, steps=3, fe_loss="linear")
    first = train_gan(tiny_models["graphs"], settings, tiny_models["constraint"], seed=2)
    second = train_gan(tiny_models["graphs"], settings, tiny_models["constraint"], seed=2)
    assert first[2]["g"].shape == (3,) and np.array_equal(first[2]["g"], second[2]["g"])
    np.testing.assert_array_equal(sample_graphs(first[0], 2, seed=1), sample_graphs(second[0], 2, seed=1))
    with pytest.raises(ValueError, match="needs the trained constraint"):
        train_gan(tiny_models["graphs"], settings, None)
    with pytest.raises(ValueError, match="GAN mode"):
        GanSettings(mode="wgan")


def test_anchored_gan_steps_within_its_radius_around_every_training_graph(tiny_models, tmp_path):
    """The anchored generator: a training graph drawn by the noise (each equally often) plus a learnt step of at most
    ``anchor_radius`` on every pixel; it trains as a CCDCGAN, is seeded, and reloads in safe mode."""
    from aiida_ccdcgan.models.config import GanSettings
    from aiida_ccdcgan.models.training import build_gan, train_gan

    pattern = np.random.default_rng(0).uniform(-0.1, 0.1, (8, 8, 1))
    graphs = np.stack([level + pattern for level in (-0.6, -0.2, 0.2, 0.6)]).astype(np.float32)
    settings = GanSettings(
        mode="ccdcgan", architecture="anchored", anchor_radius=0.05, noise_dim=16, filters=4, batch_size=4, steps=3
    )
    generator, discriminator, losses = train_gan(graphs, settings, tiny_models["constraint"], seed=0)
    assert losses["g"].shape == (3,) and np.all(np.isfinite(losses["g"]))
    generated = sample_graphs(generator, 400, seed=1)
    steps = np.abs(generated[:, None] - graphs[None]).max(axis=(2, 3, 4))  # (generated, training graph)
    assert steps.min(axis=1).max() <= 0.05 + 1e-6 and steps.min(axis=1).min() > 0
    drawn = np.bincount(steps.argmin(axis=1), minlength=4)
    assert drawn.min() > 60, drawn  # 100 expected of each
    again = train_gan(graphs, settings, tiny_models["constraint"], seed=0)[0]
    np.testing.assert_array_equal(sample_graphs(again, 5, seed=1), generated[:5])
    generator.save(tmp_path / "generator.keras")
    reloaded = keras.saving.load_model(tmp_path / "generator.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(sample_graphs(reloaded, 5, seed=1), generated[:5], atol=1e-6)

    more = np.concatenate([graphs, graphs[:1] - 0.3])  # the loop's retraining: one crystal more
    tuned = dataclasses.replace(settings, steps=1)
    retrained = train_gan(more, tuned, tiny_models["constraint"], seed=1, initial=(generator, discriminator))[0]
    steps = np.abs(sample_graphs(retrained, 400, seed=1)[:, None] - more[None]).max(axis=(2, 3, 4))
    assert steps.min(axis=1).max() <= 0.05 + 1e-6 and np.bincount(steps.argmin(axis=1), minlength=5).min() > 40
    with pytest.raises(ValueError, match="needs the training crystals' graphs"):
        build_gan(8, settings, tiny_models["constraint"])
    with pytest.raises(ValueError, match="anchor_radius must lie in"):
        GanSettings(architecture="anchored", anchor_radius=0)


def test_uniform_step_scale_samples_the_way_from_the_training_graph_to_the_learnt_step(tiny_models):
    """``step_scale`` ``uniform``: each graph is its training graph plus the learnt step times one factor in [0, 1],
    the factors spread over that range; seeded; a generator without training graphs to step from is refused."""
    from aiida_ccdcgan.models.config import GanSettings
    from aiida_ccdcgan.models.training import train_gan

    graphs = np.stack([np.full((8, 8, 1), level) for level in (-0.6, -0.2, 0.2, 0.6)]).astype(np.float32)
    settings = GanSettings(
        mode="ccdcgan", architecture="anchored", anchor_radius=0.3, noise_dim=16, filters=4, batch_size=4, steps=2
    )
    generator = train_gan(graphs, settings, tiny_models["constraint"], seed=0)[0]
    learnt = sample_graphs(generator, 300, seed=4)
    scaled = sample_graphs(generator, 300, seed=4, step_scale="uniform")
    anchors = graphs[np.abs(learnt[:, None] - graphs[None]).max(axis=(2, 3, 4)).argmin(axis=1)]
    steps, taken = (learnt - anchors).reshape(300, -1), (scaled - anchors).reshape(300, -1)
    factors = (steps * taken).sum(axis=1) / (steps * steps).sum(axis=1)
    np.testing.assert_allclose(taken, factors[:, None] * steps, atol=1e-6)  # one factor per graph
    assert factors.min() >= 0 and factors.max() <= 1
    assert np.histogram(factors, bins=4, range=(0, 1))[0].min() > 50  # ≈ 75 in each quarter
    np.testing.assert_array_equal(scaled, sample_graphs(generator, 300, seed=4, step_scale="uniform"))
    for step_scale in ("uniform", "backoff", "fallback"):
        with pytest.raises(ValueError, match="Only an anchored generator .* has training graphs to step from"):
            sample_graphs(build_generator(16, 8), 2, seed=0, step_scale=step_scale)
    with pytest.raises(ValueError, match="step_scale must be one of learnt, uniform, backoff, fallback, not 'half'"):
        sample_graphs(generator, 2, seed=0, step_scale="half")


@pytest.mark.parametrize("step_scale", ["backoff", "fallback"])
def test_backoff_sampling_shortens_the_step_of_a_sample_until_its_crystal_is_valid(step_scale):
    """``backoff``: a sample whose crystal from the learnt step is valid keeps it; one whose crystal is not takes
    half the step, then a quarter, keeping the first valid crystal (the full step's when none is); ``fallback`` at
    last takes no step, its anchor's crystal. The shipped V–O autoencoders (element-agnostic) decode the Bi–Se graphs;
    the generator steps a fixed ±0.8 pattern from them."""
    from aiida_ccdcgan.dataset.shipped import load_bise_database
    from aiida_ccdcgan.models import pretrained
    from aiida_ccdcgan.models.bundle import ModelBundle, sample_candidates
    from aiida_ccdcgan.models.config import BACKOFF_FACTORS, TrainingConfig
    from aiida_ccdcgan.models.networks import build_anchored_generator
    from aiida_ccdcgan.representation.validity import validity

    record = pretrained.pretrained_record("vo-fast")
    fixed = ("latent", "latent_grid", "filters", "batch_norm")
    config = TrainingConfig.from_dict(
        {
            "representation": {**record["representation"], "elements": ["Bi", "Se"]},
            **{
                f"{kind}_autoencoder": {k: record[f"{kind}_autoencoder"][k] for k in fixed}
                for kind in ("site", "lattice")
            },
        }
    )
    networks = {}
    for kind in ("site", "lattice"):
        networks[f"{kind}_encoder"], networks[f"{kind}_decoder"] = pretrained.load_pretrained("vo-fast", kind)
    bundle = ModelBundle(config, networks)

    def valid(results):
        return [r.structure is not None and validity(r.structure, config.representation)[0] is None for r in results]

    crystals = [canonical_crystal(r.structure, config.representation) for r in load_bise_database()[:12]]
    graphs = bundle.encode(crystals)
    graphs = graphs[valid(bundle.decode(graphs))]  # training graphs that decode to valid crystals
    generator = build_anchored_generator(8, graphs, 0.8, filters=4)
    step_layer = [layer for layer in generator.layers if isinstance(layer, keras.layers.Dense)][-1]  # tanh step
    kernel, bias = step_layer.get_weights()
    step_layer.set_weights([np.zeros_like(kernel), np.random.default_rng(2).normal(0, 3, bias.shape)])
    networks["generator"] = generator

    count = 2 * len(graphs)
    anchors, learnt = bundle.anchors(count, seed=1), bundle.sample(count, seed=1)
    tried = {f: bundle.decode(anchors + f * (learnt - anchors)) for f in (1.0, *BACKOFF_FACTORS[step_scale])}
    judged = {f: valid(results) for f, results in tried.items()}
    kept = [next((f for f in tried if judged[f][i]), None) for i in range(count)]
    assert all(kept.count(f) for f in tried)  # every step length is taken by some sample
    assert (None in kept) == (step_scale == "backoff")  # the anchors' crystals are valid: fallback keeps every sample

    candidates = sample_candidates(bundle, count, 1, ["constraint"], step_scale=step_scale)
    assert [c.sample for c in candidates] == list(range(count))
    for candidate, factor in zip(candidates, kept):
        assert (candidate.outcome == "valid") == (factor is not None)
        expected = tried[1.0 if factor is None else factor][candidate.sample].structure
        if expected is None:
            assert candidate.structure is None
            continue
        assert len(candidate.structure) == len(expected)
        np.testing.assert_allclose(candidate.structure.lattice.matrix, expected.lattice.matrix, atol=1e-3)
    plain = sample_candidates(bundle, count, 1, ["constraint"])
    assert sum(c.outcome == "valid" for c in plain) == kept.count(1.0)


def test_train_gan_fine_tunes_the_networks_it_is_given(tiny_models):
    """Fine-tuning continues from the given generator and discriminator, for the given number of steps."""
    from aiida_ccdcgan.models.config import GanSettings
    from aiida_ccdcgan.models.training import train_gan

    settings = GanSettings(mode="dcgan", noise_dim=16, batch_size=4, steps=2)
    generator, discriminator, _ = train_gan(tiny_models["graphs"], settings, seed=2)
    before = [weights.copy() for weights in generator.get_weights()]
    tuned = GanSettings(mode="dcgan", noise_dim=16, batch_size=4, steps=3)
    generator_after, discriminator_after, losses = train_gan(
        tiny_models["graphs"], tuned, seed=3, initial=(generator, discriminator)
    )
    assert generator_after is generator and discriminator_after is discriminator and losses["g"].shape == (3,)
    changed = [not np.allclose(old, new) for old, new in zip(before, generator_after.get_weights())]
    assert any(changed) and len(before) == len(changed)


def test_train_gan_resumes_from_its_checkpoint(tiny_models, tmp_path):
    """An interrupted GAN run continues from its last checkpoint and ends exactly where an uninterrupted one does."""
    from aiida_ccdcgan.models.config import GanSettings
    from aiida_ccdcgan.models.training import train_gan

    settings = GanSettings(mode="ccdcgan", noise_dim=16, batch_size=4, steps=4)
    graphs, constraint = tiny_models["graphs"], tiny_models["constraint"]
    whole = train_gan(graphs, settings, constraint, seed=5)
    checkpoint = tmp_path / "gan_checkpoint.npz"
    train_gan(graphs, settings, constraint, seed=5, checkpoint=checkpoint, checkpoint_key="k", checkpoint_every=2)
    state = dict(np.load(checkpoint))
    assert int(state["step"]) == 2
    state["losses"][:] = 99.0  # mark the steps the resumed run must not redo
    np.savez(checkpoint, **state)

    resumed = train_gan(graphs, settings, constraint, seed=5, checkpoint=checkpoint, checkpoint_key="k")
    np.testing.assert_array_equal(resumed[2]["g"][:2], [99.0, 99.0])
    np.testing.assert_allclose(resumed[2]["g"][2:], whole[2]["g"][2:], rtol=1e-5)
    for after, reference in zip(resumed[0].get_weights(), whole[0].get_weights()):
        np.testing.assert_allclose(after, reference, rtol=1e-5, atol=1e-6)
    other_settings = train_gan(graphs, settings, constraint, seed=5, checkpoint=checkpoint, checkpoint_key="other")
    assert not np.any(other_settings[2]["g"] == 99.0)


@pytest.mark.slow
def test_models_run_on_the_torch_backend(tmp_path):
    """The same model code trains under KERAS_BACKEND=torch, as on a GPU machine without TensorFlow."""
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np, keras\n"
        "assert keras.backend.backend() == 'torch'\n"
        "from aiida_ccdcgan.models.config import GanSettings\n"
        "from aiida_ccdcgan.models.training import train_gan\n"
        "from aiida_ccdcgan.models.inference import sample_graphs\n"
        "graphs = np.random.default_rng(0).uniform(-1, 1, (6, 8, 8, 1)).astype('float32')\n"
        "g, d, losses = train_gan(graphs, GanSettings(mode='dcgan', noise_dim=8, batch_size=4, steps=2), seed=0)\n"
        "assert np.all(np.isfinite(losses['g'])) and sample_graphs(g, 2, seed=0).shape == (2, 8, 8, 1)\n"
        "print('torch ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "torch"},
    )
    assert result.returncode == 0 and "torch ok" in result.stdout, result.stderr[-2000:]


def test_training_starts_from_the_shipped_pretrained_autoencoders(tmp_path, monkeypatch):
    """``pretrained`` loads the shipped V–O weights (sha256-checked) into the new networks; misfits are refused."""
    import shutil

    from aiida_ccdcgan.dataset.shipped import load_bise_database
    from aiida_ccdcgan.models import pretrained
    from aiida_ccdcgan.models.config import TrainingConfig

    assert "vo-fast" in pretrained.pretrained_names()
    record = pretrained.pretrained_record("vo-fast")
    assert record["trained_on"]["elements"] == ["V", "O"] and record["reconstruction_validation"]["ratio"] >= 0.96
    settings = {k: record["lattice_autoencoder"][k] for k in ("latent", "latent_grid", "filters", "batch_norm")}
    representation = VoxelConfig(elements=("Bi", "Se"), **record["representation"])
    crystals = [canonical_crystal(r.structure, representation) for r in load_bise_database()[:4]]
    lattice = AutoencoderSettings(
        **settings, pretrained="vo-fast", epochs=1, batch_size=4, learning_rate=1e-12, loss="weighted_bce"
    )
    encoder, decoder, _ = train_autoencoder(crystals, representation, "lattice", lattice, seed=0)
    shipped_encoder, shipped_decoder = pretrained.load_pretrained("vo-fast", "lattice")
    for trained, shipped in ((encoder, shipped_encoder), (decoder, shipped_decoder)):
        for after, before in zip(trained.trainable_weights, shipped.trainable_weights):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(after), keras.ops.convert_to_numpy(before), atol=1e-6)

    with pytest.raises(ValueError, match="No pretrained autoencoders named 'mp-big'; available: vo-fast"):
        pretrained.pretrained_record("mp-big")
    misfit = {
        "representation": {"elements": ["Bi", "Se"], "site_grid": 64},
        "lattice_autoencoder": {**settings, "latent": 25, "latent_grid": 1, "pretrained": "vo-fast"},
    }
    with pytest.raises(ValueError, match=r"latent 25 \(trained with 128\).*site_grid 64 \(trained with 32\)"):
        TrainingConfig.from_dict(misfit)

    tampered = tmp_path / "vo-fast"
    shutil.copytree(pretrained.PRETRAINED / "vo-fast", tampered)
    with (tampered / "lattice_decoder.keras").open("ab") as handle:
        handle.write(b"\0")
    monkeypatch.setattr(pretrained, "PRETRAINED", tmp_path)
    with pytest.raises(ValueError, match="does not match the sha256"):
        pretrained.load_pretrained("vo-fast", "lattice")


def test_spatial_gan_lays_its_latents_out_as_the_graph_and_trains(tmp_path):
    """The spatial networks read and write the crystal graph exactly as GraphLayout does, train, and reload in safe mode."""
    from aiida_ccdcgan.models.config import GanSettings, TrainingConfig
    from aiida_ccdcgan.models.networks import GraphFromLatents, LatentsFromGraph
    from aiida_ccdcgan.models.training import train_gan

    layout = GraphLayout(2, site_latent=128, lattice_latent=16, site_latent_grid=4, lattice_latent_grid=2)
    rng = np.random.default_rng(0)
    lattice, sites = rng.uniform(-1, 1, (3, 2, 2, 2, 2)), rng.uniform(-1, 1, (3, 4, 4, 4, 4))  # 2 channels per element
    expected = layout.to_graphs(
        lattice.reshape(3, -1), np.stack([sites[..., 2 * k : 2 * k + 2].reshape(3, -1) for k in range(2)], axis=1)
    )
    config = dataclasses.asdict(layout)
    graphs = keras.ops.convert_to_numpy(GraphFromLatents(config)([lattice.astype("float32"), sites.astype("float32")]))
    np.testing.assert_allclose(graphs, expected, atol=1e-6)
    back = [keras.ops.convert_to_numpy(x) for x in LatentsFromGraph(config)(expected)]
    np.testing.assert_allclose(back[0], lattice, atol=1e-6)
    np.testing.assert_allclose(back[1], sites, atol=1e-6)

    settings = GanSettings(mode="dcgan", architecture="spatial", noise_dim=8, filters=4, batch_size=3, steps=2)
    generator, discriminator, losses = train_gan(expected, settings, seed=0, layout=layout)
    assert losses["g"].shape == (2,) and np.all(np.isfinite(losses["g"]))
    generated = sample_graphs(generator, 2, seed=1)
    padding = np.ones(layout.side**2, bool)
    padding[: layout.lattice_latent] = False
    for k in range(2):
        padding[layout.site_slice(k)] = False
    assert generated.shape == (2, layout.side, layout.side, 1) and not generated.reshape(2, -1)[:, padding].any()
    generator.save(tmp_path / "generator.keras")
    reloaded = keras.saving.load_model(tmp_path / "generator.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(sample_graphs(reloaded, 2, seed=1), generated, atol=1e-6)

    with pytest.raises(ValueError, match="needs the crystal graph's layout"):
        train_gan(expected, settings, seed=0)
    with pytest.raises(ValueError, match="GAN architecture must be 'graph', 'spatial' or 'anchored'"):
        GanSettings(architecture="3d")
    with pytest.raises(ValueError, match="works on spatial latents: set the site autoencoder's latent_grid"):
        TrainingConfig(TINY, gan=GanSettings(architecture="spatial"))


def test_the_stage_table_says_what_each_stage_configures_writes_and_needs():
    """One table of stages: the models each writes (the crystal energy network with the constraint where its input is
    the partial RDFs), the models it starts from (no constraint for a DCGAN), and digests that a later stage's
    settings do not move."""
    from aiida_ccdcgan.models.config import STAGE_NAMES, TrainingConfig, model_file, training_stage

    assert STAGE_NAMES == ("autoencoders", "constraint", "gan")
    bise = {"representation": {"elements": ["Bi", "Se"]}}
    plain = TrainingConfig.from_dict(bise)
    config = TrainingConfig.from_dict({**bise, "crystal_energy": {"input": "partial_rdfs"}})
    assert config.stage_models("constraint") == ("constraint", "crystal_energy")
    assert plain.stage_models("constraint") == ("constraint",)
    assert config.needed_models("autoencoders") == ()
    assert config.needed_models("gan") == (*training_stage("autoencoders").models, "constraint")
    dcgan = TrainingConfig.from_dict({**bise, "gan": {"mode": "dcgan"}})
    assert "constraint" not in dcgan.needed_models("gan")
    assert training_stage("constraint").sections == ("constraint", "crystal_energy")
    changed = TrainingConfig.from_dict({**bise, "constraint": {"learning_rate": 1e-5}})
    assert changed.stage_digest("autoencoders") == plain.stage_digest("autoencoders")
    assert changed.stage_digest("constraint") != plain.stage_digest("constraint")
    assert changed.stage_digest("gan") != plain.stage_digest("gan")
    assert dcgan.stage_digest("gan") == TrainingConfig.from_dict(
        {**bise, "gan": {"mode": "dcgan"}, "constraint": {"learning_rate": 1e-5}}
    ).stage_digest("gan")
    with pytest.raises(ValueError, match='The representation needs its elements, one channel each: e.g. "elements"'):
        TrainingConfig.from_dict({"gan": {"mode": "dcgan"}})
    assert model_file("generator") == "generator.keras"


def test_a_model_bundle_saves_loads_encodes_and_decodes(tiny_models, tmp_path):
    """A bundle of the tiny networks: its networks saved by role load back (those present only), encode as the
    five-argument call does, decode every graph, and judge graphs with the constraint."""
    from aiida_ccdcgan.models.bundle import ModelBundle
    from aiida_ccdcgan.models.config import TrainingConfig

    config = TrainingConfig.from_dict(
        {"representation": TINY.to_dict(), "site_autoencoder": {"latent": 8}, "lattice_autoencoder": {"latent": 4}}
    )
    (site_encoder, site_decoder, _), (lattice_encoder, lattice_decoder, _) = tiny_models["site"], tiny_models["lattice"]
    networks = {
        "site_encoder": site_encoder,
        "site_decoder": site_decoder,
        "lattice_encoder": lattice_encoder,
        "lattice_decoder": lattice_decoder,
        "constraint": tiny_models["constraint"],
    }
    ModelBundle(config, networks).save(tmp_path, networks)
    loaded = ModelBundle.load(config, tmp_path, [*networks, "generator"])
    assert set(loaded.networks) == set(networks) and not loaded.has(["generator"])
    graphs = loaded.encode(tiny_models["crystals"])
    np.testing.assert_allclose(graphs, tiny_models["graphs"], atol=1e-6)
    assert len(loaded.decode(graphs)) == len(graphs)
    expected = tiny_models["constraint"].predict(graphs, verbose=0).ravel()
    np.testing.assert_allclose(loaded.predicted_energies(graphs), expected, atol=1e-6)
