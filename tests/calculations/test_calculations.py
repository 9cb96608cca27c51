"""The training and sampling CalcJobs on localhost: real TensorFlow through ``run`` and through the daemon."""

import json

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from dataset_files import TINY_CONFIG, without_ml_extra
from loop_support import training_dataset

from aiida_ccdcgan.calculations.sample import SampleCalculation
from aiida_ccdcgan.calculations.train import TrainCalculation
from aiida_ccdcgan.data import KerasModelData, ModelFileError, StructureBatchData


def _sample_inputs(code, train_node, count=5, seed=7):
    models = {
        role: train_node.outputs.models[role]
        for role in ("generator", "site_decoder", "lattice_decoder", "constraint", "site_encoder", "lattice_encoder")
    }
    return {
        "code": code,
        "config": orm.Dict(TINY_CONFIG),
        "models": models,
        "count": orm.Int(count),
        "seed": orm.Int(seed),
    }


def test_train_with_run_then_sample_through_the_daemon(codes, tmp_path, submit_and_await):
    train_result, train_node = run_get_node(
        TrainCalculation, code=codes["train"], config=orm.Dict(TINY_CONFIG), dataset=training_dataset(tmp_path)
    )
    assert train_node.is_finished_ok, (train_node.exit_status, train_node.exit_message)
    models = train_node.outputs.models
    assert sorted(models) == sorted(
        [
            "site_encoder",
            "site_decoder",
            "lattice_encoder",
            "lattice_decoder",
            "constraint",
            "generator",
            "discriminator",
        ]
    )
    generator = models["generator"]
    assert isinstance(generator, KerasModelData) and generator.creator.pk == train_node.pk
    assert generator.base.attributes.get("framework") == "keras" and len(generator.sha256) == 64
    metrics = train_node.outputs.metrics.get_dict()
    assert set(metrics["stages"]) == {"autoencoders", "constraint", "gan"} and metrics["backend"] == "tensorflow"
    assert train_node.outputs.learning_curves.get_content(mode="rb")[:4] == b"\x89PNG"
    assert generator.load().output_shape == (None, 8, 8, 1)

    daemon_node = submit_and_await(SampleCalculation, **_sample_inputs(codes["sample"], train_node), timeout=300)
    assert daemon_node.is_finished_ok, (daemon_node.exit_status, daemon_node.exit_message)
    summary = daemon_node.outputs.summary.get_dict()
    assert summary["graphs"] == 5 and sum(summary["outcomes"].values()) == 5
    assert daemon_node.inputs.models.generator.pk == generator.pk  # the provenance links the model used

    _, again = run_get_node(SampleCalculation, **_sample_inputs(codes["sample"], train_node))
    assert again.outputs.summary.get_dict() == summary  # same seed, same samples
    if summary["decoded"]:
        batch = again.outputs.candidates
        assert isinstance(batch, StructureBatchData) and batch.count == summary["decoded"]
        # the decoded crystal's own predicted energy comes with the valid ones, NaN for the others
        expected = {"sample", "outcome", "predicted_formation_energy"} | (
            {"crystal_formation_energy"} if summary["valid"] else set()
        )
        assert set(batch.info_names) == expected
        if summary["valid"]:
            valid = batch.info("outcome") == "valid"
            assert np.all(np.isfinite(batch.info("crystal_formation_energy")[valid]))
            assert np.all(np.isnan(batch.info("crystal_formation_energy")[~valid]))
        assert len(batch.get_structures()) == batch.count


def test_a_nan_loss_gives_its_exit_code(codes, tmp_path):
    config = {**TINY_CONFIG, "constraint": {"epochs": 2, "batch_size": 4, "learning_rate": 1e30}}
    _, node = run_get_node(
        TrainCalculation, code=codes["train"], config=orm.Dict(config), dataset=training_dataset(tmp_path)
    )
    assert node.exit_status == TrainCalculation.exit_codes.ERROR_NAN_LOSS.status
    assert "constraint stage became NaN" in node.exit_message
    assert "models" not in node.outputs


def test_a_code_without_the_ml_extra_gives_its_exit_code(codes, tmp_path):
    """A code whose Python environment lacks the ``ml`` extra: the script says so before importing Keras, and the
    CalcJob fails with 313 and the line to install, not with "No module named 'keras'" deep in stderr.txt."""
    _, node = run_get_node(
        TrainCalculation,
        code=codes["train"],
        config=orm.Dict(TINY_CONFIG),
        dataset=training_dataset(tmp_path),
        metadata={"options": {"environment_variables": without_ml_extra(tmp_path / "no-ml")}},
    )
    assert node.exit_status == TrainCalculation.exit_codes.ERROR_MISSING_ML_EXTRA.status == 313
    assert "pip install 'aiida-ccdcgan[ml]'" in node.exit_message and "lacks keras" in node.exit_message


def _fake_model(tmp_path, role="generator", digest="0" * 64) -> KerasModelData:
    path = tmp_path / f"{role}.keras"
    path.write_bytes(b"not a keras archive")
    return KerasModelData(
        path, role=role, representation_digest=digest, config_digest="1" * 64, keras_version="3", backend="tensorflow"
    )


def test_tampered_foreign_and_mismatched_models_are_refused(codes, tmp_path):
    foreign = _fake_model(tmp_path).store()
    with pytest.raises(ModelFileError, match="not a loadable Keras model"):
        foreign.load()
    tampered = _fake_model(tmp_path, "site_decoder")
    (tmp_path / "other.keras").write_bytes(b"something else")
    tampered.set_file(
        tmp_path / "other.keras", filename="site_decoder.keras"
    )  # the content changes, the recorded hash does not
    tampered.store()
    with pytest.raises(ModelFileError, match="was altered after it was stored"):
        tampered.verify()
    with pytest.raises(ModelFileError, match="trained for another representation"):
        foreign.verify(representation_digest="f" * 64)

    models = {role: _fake_model(tmp_path, role).store() for role in ("generator", "site_decoder", "lattice_decoder")}
    with pytest.raises(ValueError, match="trained for another representation than the configuration"):
        run_get_node(
            SampleCalculation, code=codes["sample"], config=orm.Dict(TINY_CONFIG), models=models, count=orm.Int(3)
        )  # more refused inputs of every process: test_bad_inputs.py


def test_structure_batch_round_trip(crystals):
    structures = [record.structure for record in crystals]
    batch = StructureBatchData.from_structures(
        structures, {"energy": [r.formation_energy for r in crystals], "label": [r.source_id for r in crystals]}
    ).store()
    loaded = orm.load_node(batch.pk)
    assert loaded.count == 5 and loaded.info_names == ["energy", "label"]
    for original, back in zip(structures, loaded.get_structures()):
        assert back.composition == original.composition
        np.testing.assert_allclose(back.lattice.matrix, original.lattice.matrix)
        np.testing.assert_allclose(back.frac_coords, original.frac_coords)
    assert loaded.info("label").tolist() == [r.source_id for r in crystals]
    with pytest.raises(ValueError, match="has 2 values for 5 structures"):
        StructureBatchData.from_structures(structures, {"bad": [1, 2]})
    assert json.dumps(loaded.base.attributes.get("count")) == "5"

    # a database build's chunks, and the chunks joined again, are the same crystals and columns
    chunks = [loaded.slice(0, 2), loaded.slice(2, 5)]
    assert [chunk.count for chunk in chunks] == [2, 3] and chunks[1].info("label").tolist() == loaded.info("label")[
        2:
    ].tolist()
    joined = StructureBatchData.concatenate(chunks).store()
    for name in ("offsets", "cells", "numbers", "frac_coords", "info_energy", "info_label"):
        np.testing.assert_array_equal(joined.get_array(name), loaded.get_array(name))
    assert joined.count == 5 and joined.base.caching.get_hash() == loaded.base.caching.get_hash()
    with pytest.raises(ValueError, match="different info columns"):
        StructureBatchData.concatenate([chunks[0], StructureBatchData.from_structures(structures[:1])])
