"""Bad input at the Python API and the process inputs (the CLI's table is in test_cli.py).

Every case must be refused with a ValueError that says what is wrong and what to do, before anything is stored:
a process's validation fails before its node exists, so `verdi run` of such a script exits with status 1 and the
profile's node count does not change. The exit codes of processes that fail later are in docs/troubleshooting.md.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiida import orm
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from dataset_files import QUICK_RELAX, TINY_CONFIG, make_crystals, without_ml_extra
from loop_support import training_dataset

from aiida_ccdcgan.calculations.sample import SampleCalculation
from aiida_ccdcgan.calculations.train import TrainCalculation
from aiida_ccdcgan.data.model import KerasModelData
from aiida_ccdcgan.data.structures import StructureBatchData
from aiida_ccdcgan.models.config import TrainingConfig
from aiida_ccdcgan.tools.codes import script_code
from aiida_ccdcgan.tools.design import launch_refusal
from aiida_ccdcgan.workflows.database import DatabaseWorkChain
from aiida_ccdcgan.workflows.inverse_design import InverseDesignWorkChain
from aiida_ccdcgan.workflows.relax import RelaxWorkChain

ROLES = ("generator", "site_decoder", "lattice_decoder", "constraint", "site_encoder", "lattice_encoder")


def _model(folder, role: str, representation: dict, altered: bool = False) -> KerasModelData:
    """A stored model node recording ``representation`` (the file's content does not matter to validation)."""
    path = folder / f"{role}-{uuid.uuid4().hex}.keras"
    path.write_bytes(f"{role} weights".encode())
    config = TrainingConfig.from_dict({**TINY_CONFIG, "representation": representation})
    model = KerasModelData(
        path,
        role=role,
        representation_digest=config.representation.digest(),
        config_digest=config.digest(),
        keras_version="3",
        backend="tensorflow",
        representation=config.representation.to_dict(),
    )
    if altered:  # the content changes after the hash was recorded
        (folder / "altered.keras").write_bytes(b"other weights")
        model.set_file(folder / "altered.keras", filename=f"{role}.keras")
    return model.store()


class Kit:
    """What the cases build on: codes, a training set, stored models of the tiny configuration."""

    def __init__(self, codes, relax_code, tmp_path):
        self.codes, self.relax_code, self.tmp_path = codes, relax_code, tmp_path
        self.representation = TINY_CONFIG["representation"]
        self.models = {role: _model(tmp_path, role, self.representation) for role in ROLES}

    def models_with(self, **representation) -> dict:
        """Stored models trained for the tiny representation changed by ``representation``."""
        return {role: _model(self.tmp_path, role, {**self.representation, **representation}) for role in ROLES}

    def loop(self, train: bool = True, **changes):
        """A loop builder that trains (tiny configuration) unless ``train`` is False, with ``changes`` as inputs."""
        builder = InverseDesignWorkChain.get_builder()
        builder.elements = orm.List(["Bi", "Se"])
        builder.dataset = training_dataset(self.tmp_path)
        builder.graphs_per_round = orm.Int(6)
        if train:
            builder.train.train.code = self.codes["train"]
            builder.train.train.config = orm.Dict(TINY_CONFIG)
        builder.sample.code = self.codes["sample"]
        builder.relax.engine = orm.Str("mlip")
        builder.relax.mlip.code = self.relax_code
        builder.relax.mlip.settings = orm.Dict(QUICK_RELAX)
        for name, value in changes.items():
            setattr(builder, name, value)
        return builder

    def loop_with_models(self, models=None, config=None, elements=("Bi", "Se"), **changes):
        """A loop builder on given models instead of training, with ``changes`` set as inputs."""
        builder = self.loop(train=False, elements=orm.List(list(elements)), **changes)
        builder.models = self.models if models is None else models
        if config is not None:
            builder.config = orm.Dict(config)
        return builder

    def relax(self, engine="mlip", **namespace):
        """A relaxation builder of one crystal."""
        builder = RelaxWorkChain.get_builder()
        builder.structures = StructureBatchData.from_structures([make_crystals()[0].structure])
        builder.engine = orm.Str(engine)
        for name, value in namespace.items():
            setattr(builder.mlip if name in ("code", "settings") else builder.vasp, name, value)
        return builder

    def sample(self, **changes):
        """A sampling builder on the stored models."""
        builder = SampleCalculation.get_builder()
        builder.code, builder.config, builder.count = self.codes["sample"], orm.Dict(TINY_CONFIG), orm.Int(5)
        builder.models = self.models
        for name, value in changes.items():
            setattr(builder, name, value)
        return builder

    def train(self, config=TINY_CONFIG, **changes):
        """A training builder."""
        builder = TrainCalculation.get_builder()
        builder.code, builder.config, builder.dataset = (
            self.codes["train"],
            orm.Dict(config),
            training_dataset(self.tmp_path),
        )
        for name, value in changes.items():
            setattr(builder, name, value)
        return builder

    def database(self, elements):
        """A database-builder builder for ``elements``."""
        builder = DatabaseWorkChain.get_builder()
        builder.elements = orm.List(elements)
        builder.templates = StructureBatchData.from_structures([make_crystals()[4].structure])
        builder.group_label = orm.Str("bad-input-database")
        builder.relax.engine = orm.Str("mlip")
        builder.relax.mlip.code, builder.relax.mlip.settings = self.relax_code, orm.Dict(QUICK_RELAX)
        return builder


def _pretrained(kind: str, name: str = "vo-fast") -> dict:
    """The tiny configuration with one autoencoder starting from the shipped set ``name``."""
    return {**TINY_CONFIG, kind: {**TINY_CONFIG[kind], "pretrained": name}}


CASES = {
    "loop: unknown mode": (lambda k: k.loop(mode=orm.Str("gan")), "mode must be one of dcgan, dcgan_constraint"),
    "loop: one element twice": (
        lambda k: k.loop(elements=orm.List(["Bi", "Bi"])),
        "two or more different element symbols",
    ),
    "loop: unknown element symbol": (lambda k: k.loop(elements=orm.List(["Bi", "Xx"])), "'Xx' is not an element"),
    "loop: elements not in the model's order": (
        lambda k: k.loop(elements=orm.List(["Se", "Bi"])),
        r"elements \['Se', 'Bi'\] differ from the representation's element channels \['Bi', 'Se'\]",
    ),
    "loop: zero rounds": (lambda k: k.loop(rounds=orm.Int(0)), "rounds and graphs_per_round must be at least 1"),
    "loop: zero samples per round": (
        lambda k: k.loop(graphs_per_round=orm.Int(0)),
        "rounds and graphs_per_round must be at least 1",
    ),
    "loop: GAN mode of the training differs": (
        lambda k: k.loop(mode=orm.Str("dcgan")),
        "The loop mode dcgan needs a GAN trained in mode dcgan, but train's config has ccdcgan",
    ),
    "loop: neither models nor training": (lambda k: k.loop_with_models(models={}), "Give either trained models"),
    "loop: models without their config": (lambda k: k.loop_with_models(), "Given models need the config"),
    "loop: a model is missing": (
        lambda k: k.loop_with_models({r: m for r, m in k.models.items() if r != "generator"}, TINY_CONFIG),
        "models lacks generator",
    ),
    "loop: models of another element order": (
        lambda k: k.loop_with_models(k.models_with(elements=["Se", "Bi"]), TINY_CONFIG),
        r"trained for another representation than the configuration describes: elements \['Bi', 'Se'\] "
        r"\(trained with \['Se', 'Bi'\]\)",
    ),
    "loop: models of another grid": (
        lambda k: k.loop_with_models(k.models_with(site_grid=32), TINY_CONFIG),
        r"site_grid 16 \(trained with 32\)",
    ),
    "loop: a model file altered after it was stored": (
        lambda k: k.loop_with_models(
            {**k.models, "generator": _model(k.tmp_path, "generator", k.representation, altered=True)}, TINY_CONFIG
        ),
        "the file was altered after it was stored",
    ),
    "loop: fine-tuning without a training code": (
        lambda k: k.loop_with_models(k.models, TINY_CONFIG, fine_tune_steps=orm.Int(2)),
        "fine_tune_steps needs a ccdcgan-train code",
    ),
    "relax: unknown engine": (lambda k: k.relax("dft"), "engine must be one of mlip, vasp, not 'dft'"),
    "relax: mlip without a code": (lambda k: k.relax(), r"engine 'mlip' needs mlip.code"),
    "relax: unknown potential": (
        lambda k: k.relax(code=k.relax_code, settings=orm.Dict({**QUICK_RELAX, "potential": "mace"})),
        "Invalid relaxation settings",
    ),
    "relax: POTCAR family not in the profile": (
        lambda k: RelaxWorkChain.get_builder_from_protocol(
            StructureBatchData.from_structures([make_crystals()[0].structure]),
            k.relax_code,
            engine="vasp",
            overrides={"vasp": {"potential_family": "PBE.missing"}},
        ),
        r"No POTCAR family 'PBE.missing' in this profile; upload one with `aiida-vasp potcar uploadfamily",
    ),
    "sample: zero samples": (lambda k: k.sample(count=orm.Int(0)), "count must be at least 1, not 0"),
    "sample: unknown step scale": (
        lambda k: k.sample(step_scale=orm.Str("half")),
        "step_scale must be one of learnt, uniform, backoff, fallback, not 'half'",
    ),
    "sample: a scaled step without an anchored generator": (
        lambda k: k.sample(step_scale=orm.Str("uniform")),
        "step_scale 'uniform' needs an anchored generator, not gan.architecture 'graph'",
    ),
    "sample: a backed-off step without an anchored generator": (
        lambda k: k.sample(step_scale=orm.Str("backoff")),
        "step_scale 'backoff' needs an anchored generator, not gan.architecture 'graph'; sample it with step_scale",
    ),
    "sample: screening without a constraint": (
        lambda k: k.sample(
            models={r: m for r, m in k.models.items() if r != "constraint"}, max_predicted_energy=orm.Float(0.3)
        ),
        "Screening by predicted formation energy needs models.constraint",
    ),
    "sample: screening without the encoders": (
        lambda k: k.sample(
            models={r: m for r, m in k.models.items() if not r.endswith("_encoder")},
            max_predicted_energy=orm.Float(0.3),
        ),
        "needs models.site_encoder, models.lattice_encoder: the encoders read each decoded crystal back",
    ),
    "sample: screening without the crystal energy network": (
        lambda k: k.sample(
            config=orm.Dict({**TINY_CONFIG, "crystal_energy": {"input": "partial_rdfs"}}),
            max_predicted_energy=orm.Float(0.3),
        ),
        "needs models.crystal_energy: the crystal energy network judges each decoded crystal from its partial RDFs",
    ),
    "sample: models of another representation": (
        lambda k: k.sample(models=k.models_with(sigma=0.3)),
        r"sigma 0.6 \(trained with 0.3\)",
    ),
    "train: unknown setting": (
        lambda k: k.train({**TINY_CONFIG, "typo": 1}),
        "Invalid training configuration: Unknown training setting",
    ),
    "train: unknown stage": (lambda k: k.train(stage=orm.Str("everything")), "stage must be one of"),
    "train: fine-tuning another stage": (
        lambda k: k.train(fine_tune=orm.Bool(True), models=k.models),
        "fine_tune continues the gan stage; set stage to gan, not 'all'",
    ),
    "train: fine-tuning without the networks": (
        lambda k: k.train(fine_tune=orm.Bool(True), stage=orm.Str("gan")),
        "fine_tune needs the networks to continue from: give generator, discriminator in models",
    ),
    "train: unknown pretrained set": (
        lambda k: k.train(_pretrained("lattice_autoencoder", "vo-slow")),
        "No pretrained autoencoders named 'vo-slow'; available: vo-fast",
    ),
    "train: pretrained set of other settings": (
        lambda k: k.train(_pretrained("site_autoencoder")),
        "The pretrained site autoencoder 'vo-fast' does not fit these settings",
    ),
    "database: unknown element symbol": (lambda k: k.database(["Bi", "Foo"]), "'Foo' is not an element symbol"),
    "codes: a Computer that does not exist": (
        lambda k: script_code("ccdcgan-train", "gpu-cluster"),
        r"No Computer 'gpu-cluster' in this profile .*`verdi computer setup`",
    ),
    "codes: an unknown console script": (lambda k: script_code("ccdcgan-fly"), "No console script 'ccdcgan-fly'"),
}


@pytest.fixture
def kit(codes, relax_code, tmp_path):
    """The shared material of the cases."""
    return Kit(codes, relax_code, tmp_path)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_before_anything_is_stored(case, kit, node_count):
    make, message = CASES[case]
    before = node_count()
    with pytest.raises(ValueError, match=message):
        builder = make(kit)
        before = node_count()  # models a case stores for itself are not the refused process's doing
        instantiate_process(get_manager().get_runner(), builder)
    assert node_count() == before


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bise_workchain.py"


def _run_example(profile, *options: str, environment: dict | None = None) -> subprocess.CompletedProcess:
    """``verdi run examples/bise_workchain.py`` with ``options`` on the test profile."""
    verdi = [str(Path(sys.executable).with_name("verdi")), "-p", profile.name, "run", str(EXAMPLE)]
    return subprocess.run(
        [*verdi, *options], capture_output=True, text=True, timeout=300, env={**os.environ, **(environment or {})}
    )


@pytest.mark.parametrize(
    "options, refusal",
    [
        ({"rounds": 0}, "--rounds 0: give 1 or more"),
        ({"graphs": 0}, "--graphs 0: give 1 or more"),
        ({"gan_steps": -3}, "--gan-steps -3: give 1 or more"),
        ({"fine_tune_steps": -1}, "--fine-tune-steps -1: give 0 (no fine-tuning) or more"),
        ({"figure": "hull.txt"}, "--figure hull.txt: name a .png, .pdf, .svg file"),
        ({"figure": "no-such-folder/hull.png"}, "--figure no-such-folder/hull.png: the folder no-such-folder does"),
        ({"report": 10**9}, f"--report {10**9}: no node has this pk here"),
    ],
)
def test_example_options_are_refused_in_one_line(aiida_profile, options, refusal):
    assert launch_refusal(**options).startswith(refusal)


def test_a_finished_loop_is_the_only_report(aiida_profile):
    assert "is not a finished ccdcgan.inverse_design loop" in launch_refusal(report=orm.Int(1).store().pk)
    assert launch_refusal(rounds=2, graphs=10, fine_tune_steps=100, figure="hull.pdf") is None


@pytest.mark.slow
def test_the_example_refuses_before_storing_anything(aiida_profile, node_count, tmp_path):
    """The example's bad option (``--graphs 0`` once ran the protocol's 150 graphs) and a Python environment
    without the ``ml`` extra: one line, exit status 1, nothing stored (no node, no Computer)."""
    nodes, computers = node_count(), orm.Computer.collection.count()
    graphs = _run_example(aiida_profile, "--graphs", "0")
    assert graphs.returncode == 1 and "Traceback" not in graphs.stderr, graphs.stderr
    assert graphs.stderr.strip().splitlines()[-1].startswith("bise_workchain.py: --graphs 0: give 1 or more")
    without = _run_example(aiida_profile, environment=without_ml_extra(tmp_path / "no-ml"))
    assert without.returncode == 1 and "Traceback" not in without.stderr, without.stderr
    last = without.stderr.strip().splitlines()[-1]
    assert last.startswith("bise_workchain.py: ccdcgan-train needs aiida-ccdcgan's `ml` extra"), last
    assert "pip install 'aiida-ccdcgan[ml]'" in last
    assert (node_count(), orm.Computer.collection.count()) == (nodes, computers)
