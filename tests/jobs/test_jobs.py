"""The console scripts ``ccdcgan-train`` and ``ccdcgan-sample``: real TensorFlow training on tiny data, as a process."""

import json
import subprocess
import sys
from pathlib import Path

import ase.io
import pytest
from dataset_files import TINY_CONFIG, make_crystals

from aiida_ccdcgan.dataset import write_extxyz
from aiida_ccdcgan.jobs.contract import EXIT_BAD_INPUT, EXIT_NAN_LOSS, ScriptError, read_error

BIN = Path(sys.executable).parent


def test_the_error_line_carries_code_stage_and_message():
    """What a script prints on failure is what the parsers and the restart handler read back, stage or none."""
    for error in (ScriptError(11, "a loss of the gan stage became NaN: x: y", "gan"), ScriptError(10, "bad [input]")):
        assert read_error(f"some output\n{error.line()}\nTraceback…\n") == error
    assert ScriptError(12, "out", "constraint").line() == "ERROR [code 12] [stage constraint]: out"
    assert read_error("no error stated here\n") is None


def _run(script, *args, cwd):
    return subprocess.run([BIN / script, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def _inputs(folder: Path, config=TINY_CONFIG) -> Path:
    records = [r for r in make_crystals() if "Na" not in r.structure.composition]
    for index, record in enumerate(records):
        record.properties["split"] = "validation" if index == 3 else "train"
    folder.mkdir(parents=True, exist_ok=True)
    write_extxyz(records, folder / "data.extxyz")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder where ``ccdcgan-train`` ran every stage on four Bi–Se crystals (the constraint on three cell
    orders of each training crystal, the crystal energy network on their partial RDFs, the GAN on the training
    graphs and their element-exchanged twins)."""
    config = {
        **TINY_CONFIG,
        "constraint": {**TINY_CONFIG["constraint"], "cell_orders": 3},
        "crystal_energy": {"input": "partial_rdfs", "hidden_units": [8], "epochs": 3},
        "gan": {**TINY_CONFIG["gan"], "permute_elements": True},
    }
    folder = _inputs(tmp_path_factory.mktemp("train"), config)
    result = _run("ccdcgan-train", "config.json", "data.extxyz", "--output", "out", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def test_train_writes_models_metrics_and_curves(trained):
    out = trained / "out"
    for name in (
        "site_encoder",
        "site_decoder",
        "lattice_encoder",
        "lattice_decoder",
        "constraint",
        "crystal_energy",
        "generator",
        "discriminator",
    ):
        assert (out / f"{name}.keras").stat().st_size > 0
    assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == {"within_limits": 4, "outside_limits": {}, "train": 3, "validation": 1, "test": 0}
    assert set(metrics["stages"]) == {"autoencoders", "constraint", "gan"}
    assert metrics["stages"]["autoencoders"]["reconstruction_validation"]["n"] == 1
    assert metrics["stages"]["constraint"]["validation"]["n"] == 1
    assert metrics["stages"]["constraint"]["validation_cell_orders"]["n"] == 1  # its three orders' mean
    assert metrics["stages"]["constraint"]["training_graphs"] == 3 * 3  # three crystals, three cell orders each
    assert metrics["stages"]["constraint"]["validation_crystal_energy"]["n"] == 1
    assert len(metrics["stages"]["constraint"]["losses"]["crystal_energy"]) == 3  # epochs, one crystal each
    assert len(metrics["stages"]["gan"]["losses"]["g"]) == 3
    for stage, network in (("autoencoders", "site_autoencoder"), ("constraint", "constraint")):
        scored = metrics["stages"][stage]
        assert len(scored["validation_losses"][network]) == len(scored["losses"][network])  # one crystal held out
    assert metrics["stages"]["autoencoders"]["loss_functions"]["lattice_autoencoder"] == "mean squared error"
    assert metrics["stages"]["gan"]["loss_functions"]["g"] == "generator: binary cross-entropy + 0.1 × mean exp(E_f)"
    assert metrics["stages"]["gan"]["training_graphs"] == 2 * 3  # each training crystal and its Bi ↔ Se twin
    assert len(metrics["config_digest"]) == 64 and len(metrics["representation_digest"]) == 64


def test_train_resumes_after_finished_stages(trained):
    before = {p.name: p.stat().st_mtime_ns for p in (trained / "out").glob("*.keras")}
    result = _run("ccdcgan-train", "config.json", "data.extxyz", "--output", "out", cwd=trained)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("already done for this configuration") == 3
    assert {p.name: p.stat().st_mtime_ns for p in (trained / "out").glob("*.keras")} == before


def test_sample_is_seeded_and_counts_every_outcome(trained):
    first = _run("ccdcgan-sample", "config.json", "out", "--count", "6", "--seed", "4", "--output", "a", cwd=trained)
    second = _run("ccdcgan-sample", "config.json", "out", "--count", "6", "--seed", "4", "--output", "b", cwd=trained)
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-3000:]
    summary = json.loads((trained / "a" / "sampling.json").read_text())
    assert summary == json.loads((trained / "b" / "sampling.json").read_text())
    assert summary["graphs"] == 6 and sum(summary["outcomes"].values()) == 6
    assert summary["success_rate"] == summary["valid"] / 6 and summary["predicted_formation_energy_mean"] is not None
    frames = ase.io.read(trained / "a" / "candidates.extxyz", index=":") if summary["decoded"] else []
    valid = [atoms for atoms in frames if atoms.info["outcome"] == "valid"]
    assert len(valid) == summary["valid"]
    assert summary["valid_compounds"] == sum(len(set(atoms.get_chemical_symbols())) > 1 for atoms in valid)


def test_sample_bad_input(trained):
    zero = _run("ccdcgan-sample", "config.json", "out", "--count", "0", cwd=trained)
    assert zero.returncode == EXIT_BAD_INPUT and "--count must be at least 1" in zero.stderr
    missing = _run("ccdcgan-sample", "config.json", "nowhere", "--count", "2", cwd=trained)
    assert missing.returncode == EXIT_BAD_INPUT and "lacks generator.keras" in missing.stderr
    unknown = _run("ccdcgan-sample", "config.json", "out", "--count", "2", "--step-scale", "half", cwd=trained)
    assert (
        unknown.returncode == EXIT_BAD_INPUT
        and "--step-scale: step_scale must be one of learnt, uniform, backoff" in unknown.stderr
    )
    unanchored = _run("ccdcgan-sample", "config.json", "out", "--count", "2", "--step-scale", "uniform", cwd=trained)
    assert unanchored.returncode == EXIT_BAD_INPUT
    assert "step_scale 'uniform' needs an anchored generator, not gan.architecture 'graph'" in unanchored.stderr


def test_train_bad_input(tmp_path):
    folder = _inputs(tmp_path, {**TINY_CONFIG, "gan": {"mode": "wgan"}})
    result = _run("ccdcgan-train", "config.json", "data.extxyz", cwd=folder)
    assert result.returncode == EXIT_BAD_INPUT and "GAN mode must be 'dcgan' or 'ccdcgan'" in result.stderr
    (folder / "config.json").write_text(json.dumps({**TINY_CONFIG, "typo": 1}))
    result = _run("ccdcgan-train", "config.json", "data.extxyz", cwd=folder)
    assert result.returncode == EXIT_BAD_INPUT and "Unknown training setting(s): typo" in result.stderr
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
    result = _run("ccdcgan-train", "config.json", "missing.extxyz", cwd=folder)
    assert result.returncode == EXIT_BAD_INPUT and "missing.extxyz: no such file" in result.stderr
    result = _run("ccdcgan-train", "config.json", "data.extxyz", "--stage", "gan", "--output", "empty", cwd=folder)
    assert result.returncode == EXIT_BAD_INPUT and "run the earlier stages first" in result.stderr
    result = _run("ccdcgan-train", "config.json", "data.extxyz", "--fine-tune", cwd=folder)
    assert (
        result.returncode == EXIT_BAD_INPUT and "--fine-tune continues the gan stage; give --stage gan" in result.stderr
    )
    result = _run(
        "ccdcgan-train", "config.json", "data.extxyz", "--stage", "gan", "--fine-tune", "--output", "e", cwd=folder
    )
    assert result.returncode == EXIT_BAD_INPUT and "run the earlier stages first" in result.stderr


def test_train_and_sample_with_the_spatial_gan(tmp_path):
    """``gan.architecture: spatial`` trains on spatial latents, and ``ccdcgan-sample`` loads its generator in safe mode."""
    spatial_latents = {"latent": 64, "latent_grid": 4, "filters": 8, "epochs": 1, "batch_size": 4}
    config = {
        **TINY_CONFIG,
        "site_autoencoder": spatial_latents,
        "lattice_autoencoder": spatial_latents,
        "gan": {**TINY_CONFIG["gan"], "architecture": "spatial", "filters": 4},
    }
    folder = _inputs(tmp_path, config)
    result = _run("ccdcgan-train", "config.json", "data.extxyz", "--output", "out", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(json.loads((folder / "out" / "metrics.json").read_text())["stages"]["gan"]["losses"]["g"]) == 3
    result = _run("ccdcgan-sample", "config.json", "out", "--count", "4", "--output", "s", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((folder / "s" / "sampling.json").read_text())["graphs"] == 4
    (folder / "config.json").write_text(
        json.dumps({**config, "lattice_autoencoder": TINY_CONFIG["lattice_autoencoder"]})
    )
    result = _run("ccdcgan-train", "config.json", "data.extxyz", cwd=folder)
    assert result.returncode == EXIT_BAD_INPUT and "works on spatial latents" in result.stderr


@pytest.mark.slow
def test_train_reports_a_nan_loss(tmp_path):
    config = {**TINY_CONFIG, "constraint": {"epochs": 2, "batch_size": 4, "learning_rate": 1e30}}
    folder = _inputs(tmp_path, config)
    result = _run("ccdcgan-train", "config.json", "data.extxyz", "--stage", "all", cwd=folder)
    assert result.returncode == EXIT_NAN_LOSS, result.stderr[-3000:]
    error = read_error(result.stderr)
    assert (error.code, error.stage) == (EXIT_NAN_LOSS, "constraint")  # the stage a restart must change
    assert "constraint stage became NaN" in error.message and "lower the learning rate" in error.message
    assert "autoencoders" in json.loads((folder / "metrics.json").read_text())["stages"]  # finished work is kept


def test_train_fine_tunes_the_shipped_autoencoders(tmp_path):
    """A configuration naming ``pretrained`` autoencoders starts from them and records which files it used."""
    from aiida_ccdcgan.models.pretrained import pretrained_record

    record = pretrained_record("vo-fast")
    architecture = ("latent", "latent_grid", "filters", "batch_norm", "loss", "foreground_weight")
    config = {
        **TINY_CONFIG,
        "representation": {**record["representation"], "elements": ["Bi", "Se"]},
        **{
            f"{kind}_autoencoder": {
                **{key: record[f"{kind}_autoencoder"][key] for key in architecture},
                "pretrained": "vo-fast",
                "epochs": 1,
                "batch_size": 4,
            }
            for kind in ("site", "lattice")
        },
    }
    folder = _inputs(tmp_path, config)
    result = _run("ccdcgan-train", "config.json", "data.extxyz", "--stage", "autoencoders", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    used = json.loads((folder / "metrics.json").read_text())["stages"]["autoencoders"]["pretrained"]
    assert used["site"] == {
        "name": "vo-fast",
        "sha256": {f"site_{part}.keras": record["sha256"][f"site_{part}.keras"] for part in ("encoder", "decoder")},
    }
    assert used["lattice"]["sha256"]["lattice_decoder.keras"] == record["sha256"]["lattice_decoder.keras"]
