"""``ccdcgan.train.base``: protocols, restart handlers, and reuse of finished stages across restarts."""

import copy

import pytest
from aiida import orm
from aiida.common import LinkType
from aiida.engine import run_get_node
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from dataset_files import TINY_CONFIG
from loop_support import BIN, training_dataset

from aiida_ccdcgan.calculations.train import TrainCalculation
from aiida_ccdcgan.jobs.contract import EXIT_NAN_LOSS, EXIT_OUT_OF_MEMORY, STDERR, ScriptError
from aiida_ccdcgan.models.config import TrainingConfig
from aiida_ccdcgan.workflows.train import TrainBaseWorkChain


@pytest.fixture
def train_code(aiida_code_installed):
    return aiida_code_installed(default_calc_job_plugin="ccdcgan.train", filepath_executable=str(BIN / "ccdcgan-train"))


def test_protocols_give_valid_builders(train_code, tmp_path):
    assert set(TrainBaseWorkChain.get_available_protocols()) == {"fast", "paper"}
    assert TrainBaseWorkChain.get_default_protocol() == "fast"
    dataset = training_dataset(tmp_path)
    paper = TrainBaseWorkChain.get_builder_from_protocol(train_code, dataset, ["Bi", "Se"], protocol="paper")
    config = TrainingConfig.from_dict(paper.train.config.get_dict())
    assert (config.representation.site_grid, config.representation.lattice_grid, config.representation.sigma) == (
        64,
        32,
        0.26,
    )
    assert (config.site_autoencoder.latent, config.lattice_autoencoder.latent, config.layout.side) == (200, 25, 28)
    assert (config.gan.fe_weight, config.gan.noise_dim, config.gan.steps) == (0.1, 200, 1_000_000)
    fast = TrainBaseWorkChain.get_builder_from_protocol(
        train_code,
        dataset,
        ["Bi", "Se"],
        overrides={"config": {"gan": {"steps": 5}}},
        options={"max_wallclock_seconds": 60},
    )
    fast_config = fast.train.config.get_dict()
    assert fast_config["gan"]["steps"] == 5 and fast_config["representation"]["site_grid"] == 32
    assert fast.train.metadata.options["max_wallclock_seconds"] == 60
    with pytest.raises(ValueError, match="Unknown protocol 'precise'"):
        TrainBaseWorkChain.get_builder_from_protocol(train_code, dataset, ["Bi", "Se"], protocol="precise")
    with pytest.raises(ValueError, match="Unknown setting\\(s\\) in 'gan': stepz"):
        TrainBaseWorkChain.get_builder_from_protocol(
            train_code, dataset, ["Bi", "Se"], overrides={"config": {"gan": {"stepz": 5}}}
        )


def _failed_child(exit_code, message, error: ScriptError | None = None):
    """A stored, finished TrainCalculation node that failed with ``exit_code`` and has a remote folder, and a
    retrieved folder whose stderr holds ``error``'s line where one is given."""
    computer = orm.Computer.collection.all()[0]
    node = orm.CalcJobNode(computer=computer, process_type="aiida.calculations:ccdcgan.train")
    node.set_process_state("finished")
    node.set_exit_status(exit_code.status)
    node.set_exit_message(message)
    node.store()
    remote = orm.RemoteData(remote_path="/tmp", computer=computer)
    remote.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label="remote_folder")
    remote.store()
    if error is not None:
        retrieved = orm.FolderData()
        retrieved.base.repository.put_object_from_bytes(f"training…\n{error.line()}\n".encode(), STDERR)
        retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label="retrieved")
        retrieved.store()
    return node


@pytest.fixture
def workchain(train_code, tmp_path):
    """An instantiated (not running) TrainBaseWorkChain after setup."""
    inputs = {"train": {"code": train_code, "dataset": training_dataset(tmp_path), "config": orm.Dict(TINY_CONFIG)}}
    process = instantiate_process(get_manager().get_runner(), TrainBaseWorkChain, **inputs)
    process.setup()
    return process


def test_nan_loss_lowers_the_failed_stage_learning_rate(workchain):
    stated = "a loss of the constraint stage became NaN or infinite; lower the learning rate"
    node = _failed_child(
        TrainCalculation.exit_codes.ERROR_NAN_LOSS,
        f"A training loss became NaN: {stated}",
        ScriptError(EXIT_NAN_LOSS, stated, "constraint"),
    )
    report = workchain.handle_nan_loss(node)
    assert report.do_break and report.exit_code.status == 0
    config = workchain.ctx.inputs.config.get_dict()
    assert config["constraint"]["learning_rate"] == pytest.approx(2e-5)
    assert config["crystal_energy"]["learning_rate"] == pytest.approx(
        1e-4
    )  # the stage's other network, from its default
    assert config["site_autoencoder"] == TINY_CONFIG["site_autoencoder"]  # other stages keep their settings
    assert workchain.ctx.inputs.parent_folder.pk == node.outputs.remote_folder.pk


def test_out_of_memory_halves_the_batch_and_walltime_restarts(workchain):
    stated = "out of memory in the autoencoders stage; halve the batch size"
    node = _failed_child(
        TrainCalculation.exit_codes.ERROR_OUT_OF_MEMORY,
        f"The script ran out of memory: {stated}",
        ScriptError(EXIT_OUT_OF_MEMORY, stated, "autoencoders"),
    )
    before = copy.deepcopy(workchain.ctx.inputs.config.get_dict())
    workchain.handle_out_of_memory(node)
    config = workchain.ctx.inputs.config.get_dict()
    assert config["site_autoencoder"]["batch_size"] == 2 and config["lattice_autoencoder"]["batch_size"] == 2
    assert config["constraint"] == before["constraint"]
    walltime = _failed_child(
        TrainCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME, "The job ran out of walltime."
    )
    workchain.handle_out_of_walltime(walltime)
    assert (
        workchain.ctx.inputs.config.get_dict() == config
        and workchain.ctx.inputs.parent_folder.pk == walltime.outputs.remote_folder.pk
    )
    unknown = _failed_child(  # a stated failure that names no stage cannot be mended
        TrainCalculation.exit_codes.ERROR_NAN_LOSS, "NaN somewhere", ScriptError(EXIT_NAN_LOSS, "NaN somewhere")
    )
    assert (
        workchain.handle_nan_loss(unknown).exit_code.status
        == TrainBaseWorkChain.exit_codes.ERROR_UNRECOVERABLE_FAILURE.status
    )


@pytest.mark.slow
def test_restart_reuses_finished_stages_and_the_workchain_runs(train_code, tmp_path):
    dataset = training_dataset(tmp_path)
    _, first = run_get_node(
        TrainCalculation, code=train_code, config=orm.Dict(TINY_CONFIG), dataset=dataset, stage=orm.Str("autoencoders")
    )
    assert first.is_finished_ok and sorted(first.outputs.models) == [
        "lattice_decoder",
        "lattice_encoder",
        "site_decoder",
        "site_encoder",
    ]
    _, second = run_get_node(
        TrainCalculation,
        code=train_code,
        config=orm.Dict(TINY_CONFIG),
        dataset=dataset,
        stage=orm.Str("constraint"),
        parent_folder=first.outputs.remote_folder,
    )
    assert second.is_finished_ok, second.exit_message
    assert "constraint" in second.outputs.models
    assert (
        second.outputs.models.site_encoder.sha256 == first.outputs.models.site_encoder.sha256
    )  # reused, not retrained

    # the fast protocol's own settings (autoencoders with BatchNorm, spatial latents, weighted cross-entropy and
    # cosine decay on a subset; the dense constraint; the narrow GAN) on tiny sizes: a site latent of 512 is 8³ × 1
    # (the 16³ grid halved once), a lattice latent of 64 is 4³ × 1
    tiny = {
        **TINY_CONFIG,
        "site_autoencoder": {**TINY_CONFIG["site_autoencoder"], "latent": 512},
        "lattice_autoencoder": {**TINY_CONFIG["lattice_autoencoder"], "latent": 64},
    }
    builder = TrainBaseWorkChain.get_builder_from_protocol(
        train_code, dataset, ["Bi", "Se"], overrides={"config": tiny}
    )
    config = builder.train.config.get_dict()
    assert (config["site_autoencoder"]["latent_grid"], config["lattice_autoencoder"]["latent_grid"]) == (8, 4)
    assert (config["constraint"]["network"], config["gan"]["filters"]) == ("dense", 16)
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_status
    assert {"generator", "constraint"} <= set(node.outputs.models) and "metrics" in node.outputs
