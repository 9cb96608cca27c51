"""Settings of the CCDCGAN models and their training, in one dataclass per stage."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from ..representation import VoxelConfig
from .graph import GraphLayout
from .pretrained import check_compatible


@dataclasses.dataclass(frozen=True)
class AutoencoderSettings:
    """An autoencoder and its training. Paper: Adam lr 0.003 (code 3e-4), β (0.9, 0.99) (code 0.999), batch 1.

    ``latent_grid`` 1 is the paper's 1³ latent vector, 4 or 8 a 4³ or 8³ spatial latent of the same size (see
    :func:`~aiida_ccdcgan.models.networks.build_autoencoder`); ``batch_norm`` adds BatchNormalization to the hidden
    layers. ``loss``: ``mse`` (the paper) or ``weighted_bce`` — binary cross-entropy against the voxel density with
    voxel weight ``1 + foreground_weight·density``, so the few voxels near atoms are not drowned by the empty box.
    ``schedule``: ``constant`` learning rate (the paper) or ``cosine`` decay to zero over the run.
    ``max_structures``: train on at most this many training structures, a seeded subset (the constraint and the
    GAN still learn from all of them); ``None``: all. ``pretrained``: the name of shipped autoencoder weights to
    start from (:mod:`~aiida_ccdcgan.models.pretrained`); the epochs then fine-tune them.
    """

    latent: int
    filters: int = 64
    learning_rate: float = 3e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    batch_size: int = 8
    epochs: int = 10
    latent_grid: int = 1
    batch_norm: bool = False
    loss: str = "mse"
    foreground_weight: float = 0.0
    schedule: str = "constant"
    max_structures: int | None = None
    pretrained: str | None = None

    def __post_init__(self):
        if self.loss not in ("mse", "weighted_bce"):
            raise ValueError(f"Autoencoder loss must be 'mse' or 'weighted_bce', not {self.loss!r}.")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"Autoencoder schedule must be 'constant' or 'cosine', not {self.schedule!r}.")
        if self.latent_grid not in (1, 4, 8, 16) or self.latent % self.latent_grid**3:
            raise ValueError(
                f"latent_grid must be 1, 4, 8 or 16, with a latent divisible by latent_grid³ (got {self.latent_grid}, {self.latent})."
            )


@dataclasses.dataclass(frozen=True)
class ConstraintSettings:
    """The formation-energy network and its training. Code: the CNN, Adam 2e-4, β₁ 0.5, batch 64, MSE.

    ``network``: ``cnn`` (the paper's: the discriminator's trunk and dense layers 1024…64) or ``dense`` (a
    multilayer perceptron on the flattened graph with ``hidden_units``, LeakyReLU and ``dropout``, its output
    scaled by the training targets' standard deviation and mean). ``loss``: ``mse`` (the code) or ``huber``
    (δ = 1 eV/atom, less pulled by the few outliers); ``schedule``: ``constant`` or ``cosine`` decay to zero.
    ``cell_orders``: train on every crystal seen with its cell vectors in this many of their six orders (1: as
    given; the energy is the same, the canonical frame and so the crystal graph differ), an epoch then being a
    pass over all of them.
    """

    network: str = "cnn"
    hidden_units: tuple[int, ...] = (512, 256, 64)
    dropout: float = 0.2
    loss: str = "mse"
    schedule: str = "constant"
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    batch_size: int = 64
    epochs: int = 100
    cell_orders: int = 1

    def __post_init__(self):
        if not 1 <= self.cell_orders <= 6:
            raise ValueError(
                f"Constraint cell_orders must be 1 to 6 (the orders of three cell vectors), not {self.cell_orders}."
            )
        if self.network not in ("cnn", "dense"):
            raise ValueError(f"Constraint network must be 'cnn' or 'dense', not {self.network!r}.")
        if self.loss not in ("mse", "huber"):
            raise ValueError(f"Constraint loss must be 'mse' or 'huber', not {self.loss!r}.")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"Constraint schedule must be 'constant' or 'cosine', not {self.schedule!r}.")
        object.__setattr__(self, "hidden_units", tuple(int(units) for units in self.hidden_units))


@dataclasses.dataclass(frozen=True)
class CrystalEnergySettings:
    """What gives a crystal's formation energy: screening, each candidate's ``crystal_formation_energy`` and the
    held-out figures per crystal.

    ``input``: ``graph`` — the constraint, its predictions for the crystal's graphs in its ``cell_orders`` averaged
    (the paper's constraint, judging a crystal); ``partial_rdfs`` — a dense network on the crystal's partial radial
    distribution functions (:func:`~aiida_ccdcgan.representation.pair_distribution.partial_rdfs`: for every pair of
    elements, the neighbours per atom from ``rdf_start`` to ``rdf_stop`` Å in steps of ``rdf_step``, Gaussians of
    width ``rdf_sigma``), standardised, then ``hidden_units`` with LeakyReLU, Huber loss (δ 1 eV/atom), Adam with
    cosine decay; trained in the constraint stage on the training crystals. It reads the crystal, not its graph,
    so it cannot enter the generator's loss: CCDCGAN's generator learns from the constraint either way.
    """

    input: str = "graph"
    hidden_units: tuple[int, ...] = (512, 256, 64)
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 60
    rdf_start: float = 0.5
    rdf_stop: float = 5.9
    rdf_step: float = 0.1
    rdf_sigma: float = 0.3

    def __post_init__(self):
        if self.input not in ("graph", "partial_rdfs"):
            raise ValueError(f"Crystal energy input must be 'graph' or 'partial_rdfs', not {self.input!r}.")
        if not (0 < self.rdf_start < self.rdf_stop and 0 < self.rdf_step and 0 < self.rdf_sigma):
            raise ValueError(
                "The partial RDFs need 0 < rdf_start < rdf_stop and positive rdf_step and rdf_sigma (Å), not "
                f"{self.rdf_start}, {self.rdf_stop}, {self.rdf_step}, {self.rdf_sigma}."
            )
        object.__setattr__(self, "hidden_units", tuple(int(units) for units in self.hidden_units))

    @property
    def rdf_centres(self) -> np.ndarray:
        """The distances (Å) the partial RDFs are sampled at: ``rdf_start`` to ``rdf_stop`` by ``rdf_step``."""
        count = int(round((self.rdf_stop - self.rdf_start) / self.rdf_step)) + 1
        return self.rdf_start + self.rdf_step * np.arange(count)


@dataclasses.dataclass(frozen=True)
class GanSettings:
    """The DCGAN and its training. Code: Adam 2e-4, β₁ 0.5, batch 128, 10⁶ steps, noise 200.

    ``mode``: ``dcgan`` (no constraint in the generator loss) or ``ccdcgan`` (the constraint's prediction
    enters the generator loss with weight ``fe_weight``, as ``exp`` — the mean of exp(E_f), as coded — or
    ``linear`` — the mean of E_f, as the paper's equation (2)). ``filters`` sets the widths of the generator
    (2·, 2·, 1·filters) and the discriminator (½, 1, 2, 4·filters); the paper's networks have 64.
    ``architecture``: ``graph`` (the paper's 2D networks on the crystal graph) or ``spatial`` (3D convolutions on
    the autoencoders' spatial latents, laid out as the same graph, and a discriminator without BatchNorm, so the
    generator learns against the network that judged it; needs ``latent_grid`` > 1 in both autoencoders) or
    ``anchored`` (a training graph drawn by the noise plus a learnt step of at most ``anchor_radius`` on every pixel,
    :func:`~aiida_ccdcgan.models.networks.build_anchored_generator`, against the paper's discriminator: the graphs
    stay where the decoders learnt to decode).
    ``permute_elements``: the GAN also learns from every training graph with its element slots permuted — each
    crystal with its elements exchanged, the substitution move in the graph, which changes the composition (the
    anchored generator then steps from these too).
    """

    mode: str = "ccdcgan"
    noise_dim: int = 200
    filters: int = 64
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    batch_size: int = 128
    steps: int = 10_000
    fe_loss: str = "exp"
    fe_weight: float = 0.1
    architecture: str = "graph"
    anchor_radius: float = 0.2
    permute_elements: bool = False

    def __post_init__(self):
        if self.mode not in ("dcgan", "ccdcgan"):
            raise ValueError(f"GAN mode must be 'dcgan' or 'ccdcgan', not {self.mode!r}.")
        if self.architecture not in ("graph", "spatial", "anchored"):
            raise ValueError(f"GAN architecture must be 'graph', 'spatial' or 'anchored', not {self.architecture!r}.")
        if not 0 < self.anchor_radius <= 2:
            raise ValueError(f"anchor_radius must lie in (0, 2] (the tanh range is 2 wide), not {self.anchor_radius}.")
        if self.fe_loss not in ("exp", "linear"):
            raise ValueError(f"fe_loss must be 'exp' or 'linear', not {self.fe_loss!r}.")


def _typed(kind, values: dict) -> dict:
    """Cast the values of float fields to float: JSON and AiiDA's Dict may hand 1e30 or 1.0 back as integers."""
    floats = {f.name for f in dataclasses.fields(kind) if f.type == "float"}
    return {key: float(value) if key in floats else value for key, value in values.items()}


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: the settings sections that configure it and the models (by role) it writes."""

    name: str
    sections: tuple[str, ...]
    models: tuple[str, ...]


TRAINING_STAGES = (
    Stage(
        "autoencoders",
        ("site_autoencoder", "lattice_autoencoder"),
        ("site_encoder", "site_decoder", "lattice_encoder", "lattice_decoder"),
    ),
    Stage("constraint", ("constraint", "crystal_energy"), ("constraint",)),
    Stage("gan", ("gan",), ("generator", "discriminator")),
)
"""The training stages in the order they run; each starts from the models of those before it
(:meth:`TrainingConfig.needed_models`)."""
STAGE_NAMES = tuple(stage.name for stage in TRAINING_STAGES)
"""The names of :data:`TRAINING_STAGES`, in order."""


STEP_SCALES = ("learnt", "uniform", "backoff", "fallback")
"""How an anchored generator's graphs are sampled: ``learnt``, the training graph drawn by the noise plus the learnt
step; ``uniform``, plus that step times a factor drawn uniformly from [0, 1] for each sample — every point of the
way from the training graph (its element-exchanged twin: a substitution) to the learnt step; ``backoff``, the learnt
step, shortened by the factors of :data:`BACKOFF_FACTORS` in turn for a sample whose decoded crystal is not valid;
``fallback``, as ``backoff`` and at last no step: the training graph itself (a training crystal, not new, or its
element-exchanged twin, the substitution move)."""

BACKOFF_FACTORS = {"backoff": (0.5, 0.25), "fallback": (0.5, 0.25, 0.0)}
"""By step scale, the fractions of the learnt step tried in order for a sample whose crystal decoded from the full
step fails decoding or the validity check; the first that gives a valid crystal is kept."""


def step_scale_refusal(step_scale: str, architecture: str) -> str | None:
    """Why a generator of GAN ``architecture`` cannot be sampled with ``step_scale``, or None when it can."""
    if step_scale not in STEP_SCALES:
        return f"step_scale must be one of {', '.join(STEP_SCALES)}, not {step_scale!r}."
    if step_scale != "learnt" and architecture != "anchored":
        return (
            f"step_scale {step_scale!r} needs an anchored generator, not gan.architecture {architecture!r}; "
            "sample it with step_scale 'learnt'."
        )
    return None


ANCHOR_LAYER = "training_graphs"
"""The name of the anchored generator's layer that holds the training graphs and draws one for each noise vector."""


def model_file(role: str) -> str:
    """The file name of the model of ``role`` in a models folder."""
    return f"{role}.keras"


def training_stage(name: str) -> Stage:
    """The training stage called ``name``."""
    return TRAINING_STAGES[STAGE_NAMES.index(name)]


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything one training run needs: the representation, the settings of each model, and the seed.

    Read from and written to JSON (``to_dict`` / ``from_dict``); its digest is recorded with every model.
    """

    representation: VoxelConfig
    site_autoencoder: AutoencoderSettings = dataclasses.field(default_factory=lambda: AutoencoderSettings(latent=200))
    lattice_autoencoder: AutoencoderSettings = dataclasses.field(default_factory=lambda: AutoencoderSettings(latent=25))
    constraint: ConstraintSettings = dataclasses.field(default_factory=ConstraintSettings)
    crystal_energy: CrystalEnergySettings = dataclasses.field(default_factory=CrystalEnergySettings)
    gan: GanSettings = dataclasses.field(default_factory=GanSettings)
    seed: int = 0

    def __post_init__(self):
        for kind in ("site", "lattice"):
            settings = getattr(self, f"{kind}_autoencoder")
            if settings.pretrained is not None:
                check_compatible(settings.pretrained, kind, dataclasses.asdict(settings), self.representation.to_dict())
        if self.gan.architecture == "spatial":
            site, lattice = self.site_autoencoder.latent_grid, self.lattice_autoencoder.latent_grid
            if not (site >= 4 and lattice >= 2 and site % lattice == 0 and (site // lattice).bit_count() == 1):
                raise ValueError(
                    "The spatial GAN (gan.architecture 'spatial') works on spatial latents: set the site "
                    "autoencoder's latent_grid to 4 or more and the lattice autoencoder's to 2 or more, the site grid "
                    f"the lattice grid times a power of two (the fast protocol: 8 and 4), not {site} and {lattice}."
                )

    @property
    def layout(self) -> GraphLayout:
        """The crystal-graph layout these settings imply."""
        return GraphLayout(
            len(self.representation.elements),
            self.site_autoencoder.latent,
            self.lattice_autoencoder.latent,
            self.site_autoencoder.latent_grid,
            self.lattice_autoencoder.latent_grid,
        )

    def to_dict(self) -> dict:
        """Return the configuration as a JSON-safe dictionary."""
        values = dataclasses.asdict(self)
        values["representation"] = self.representation.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> TrainingConfig:
        """Build a configuration from a dictionary, refusing unknown keys at any level."""
        sections = {
            "site_autoencoder": AutoencoderSettings,
            "lattice_autoencoder": AutoencoderSettings,
            "constraint": ConstraintSettings,
            "crystal_energy": CrystalEnergySettings,
            "gan": GanSettings,
        }
        unknown = set(values) - {*sections, "representation", "seed"}
        if unknown:
            raise ValueError(f"Unknown training setting(s): {', '.join(sorted(unknown))}.")
        kwargs = {"seed": int(values.get("seed", 0))}
        kwargs["representation"] = VoxelConfig.from_dict(values.get("representation", {}))
        for name, kind in sections.items():
            if name in values:
                fields = {f.name for f in dataclasses.fields(kind)}
                wrong = set(values[name]) - fields
                if wrong:
                    raise ValueError(f"Unknown setting(s) in '{name}': {', '.join(sorted(wrong))}.")
                kwargs[name] = kind(**_typed(kind, values[name]))
        return cls(**kwargs)

    def digest(self) -> str:
        """sha256 of the whole configuration."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def stage_models(self, name: str) -> tuple[str, ...]:
        """The models the stage ``name`` writes under these settings: its :attr:`Stage.models`, and
        ``crystal_energy`` with the constraint where ``crystal_energy.input`` is ``partial_rdfs``."""
        if name == "constraint" and self.crystal_energy.input == "partial_rdfs":
            return (*training_stage(name).models, "crystal_energy")
        return training_stage(name).models

    def needed_models(self, name: str) -> tuple[str, ...]:
        """The models of the earlier stages that the stage ``name`` starts from (the constraint not for a DCGAN)."""
        return tuple(
            model
            for earlier in TRAINING_STAGES[: STAGE_NAMES.index(name)]
            for model in earlier.models
            if not (model == "constraint" and self.gan.mode == "dcgan")
        )

    def stage_digest(self, stage: str) -> str:
        """sha256 of what a stage's result depends on: representation, seed, its settings and the earlier stages'.

        A restart that changes only the constraint's settings keeps the trained autoencoders.
        """
        values = self.to_dict()
        sections = [
            section for earlier in TRAINING_STAGES[: STAGE_NAMES.index(stage) + 1] for section in earlier.sections
        ]
        relevant = {key: values[key] for key in ("representation", "seed", *sections)}
        if stage == "gan":
            relevant.pop("crystal_energy")  # the generator never learns from it
            if self.gan.mode == "dcgan":
                relevant.pop("constraint")
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
