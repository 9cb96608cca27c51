"""Settings of an MLIP relaxation: potential, route, optimiser, convergence, what counts as exploded or unphysical,
batch size and parallelism."""

from __future__ import annotations

import dataclasses
import enum

POTENTIALS = {"sevennet": "7net-0", "chgnet": "0.3.0"}
"""Potential family → default model (weights shipped inside the wheels: no download)."""

OFFLINE_MODELS = {"sevennet": ("7net-0", "7net-l3i5"), "chgnet": ("0.3.0", "0.2.0")}
"""The pretrained models of each family whose weights ship in its wheel (any other name would be downloaded)."""

TRAINED_ATOMIC_NUMBERS = {family: frozenset([*range(1, 84), *range(89, 95)]) for family in POTENTIALS}
"""Potential family → the atomic numbers its offline models were trained on: MPtrj's 89 elements (H–Bi, Ac–Pu) for
both (SevenNet-0's and 7net-l3i5's type maps; CHGNet's training set)."""


def uncovered_elements(potential: str, elements) -> list[str]:
    """The symbols of ``elements`` that ``potential`` was not trained on (an energy there would be a guess)."""
    from pymatgen.core import Element

    return [element for element in elements if Element(element).Z not in TRAINED_ATOMIC_NUMBERS[potential]]


OPTIMIZERS = ("FIRE", "BFGS")

ROUTES = ("batched", "ase")
"""``batched``: many crystals per model call (TorchSim FIRE + Fréchet cell filter); ``ase``: one ASE optimiser per
crystal over worker processes."""

BATCH_ATOMS = {"cpu": 64, "cuda": 4096}
"""Default atoms in flight per model call of the batched route, per device (``batch_atoms`` overrides it)."""


class Status(str, enum.Enum):
    """Outcome of one relaxation; the loop and the hull only use ``converged`` ones."""

    CONVERGED = "converged"
    NOT_CONVERGED = "not_converged"
    EXPLODED = "exploded"
    FAILED = "failed"
    UNPHYSICAL = "unphysical"

    @property
    def exit_code(self) -> int:
        """A per-structure exit code recorded next to the status: 0 converged, 401–404 the failures."""
        return {"converged": 0, "not_converged": 401, "exploded": 402, "failed": 403, "unphysical": 404}[self.value]


@dataclasses.dataclass(frozen=True)
class RelaxSettings:
    """One source for how structures are relaxed (the ``ccdcgan-relax`` configuration and the CalcJob's input).

    ``potential`` ``sevennet`` (default; raw-PBE energy scale) or ``chgnet`` (MP2020-corrected scale);
    ``model`` the pretrained model name (default per potential; one of :data:`OFFLINE_MODELS`, e.g. the more
    accurate and slower ``7net-l3i5``) or ``checkpoint`` a local file instead. ``route`` ``batched`` (default:
    TorchSim's FIRE with a Fréchet cell filter over many crystals per model call, at most ``batch_atoms`` atoms,
    default :data:`BATCH_ATOMS` of ``device``, on ``workers`` × ``threads_per_worker`` torch threads in one
    process) or ``ase`` (ASE ``optimizer`` on a ``FrechetCellFilter`` per crystal, ``workers`` processes with
    ``threads_per_worker`` threads each). ``fmax`` (eV/Å) and ``max_steps`` for either; the cell is relaxed too
    unless ``relax_cell`` is false. A run is *exploded* when its volume per atom leaves
    [V₀/``explode_volume_ratio``, V₀·``explode_volume_ratio``], two atoms come closer than ``min_distance`` Å, or
    the energy or forces stop being finite; a finished one is *unphysical* (a hole of the potential) when two atoms
    end closer than ``min_bond_ratio`` × the sum of their covalent radii.
    """

    potential: str = "sevennet"
    model: str | None = None
    checkpoint: str | None = None
    device: str = "cpu"
    optimizer: str = "FIRE"
    fmax: float = 0.05
    max_steps: int = 300
    relax_cell: bool = True
    explode_volume_ratio: float = 3.0
    min_distance: float = 0.5
    min_bond_ratio: float = 0.75
    route: str = "batched"
    batch_atoms: int | None = None
    workers: int = 2
    threads_per_worker: int = 1

    def __post_init__(self):
        if self.potential not in POTENTIALS:
            raise ValueError(f"potential must be one of {', '.join(POTENTIALS)}, not {self.potential!r}.")
        if self.model is not None and self.checkpoint is None and self.model not in OFFLINE_MODELS[self.potential]:
            raise ValueError(
                f"model {self.model!r} of {self.potential} does not ship in its wheel (it would be downloaded); use one "
                f"of {', '.join(OFFLINE_MODELS[self.potential])} or a local checkpoint."
            )
        if self.route not in ROUTES:
            raise ValueError(f"route must be one of {', '.join(ROUTES)}, not {self.route!r}.")
        if self.route == "batched" and self.optimizer != "FIRE":
            raise ValueError(f"the batched route relaxes with FIRE; use route 'ase' for {self.optimizer}.")
        if self.device.split(":")[0] not in BATCH_ATOMS:
            raise ValueError(f"device must be cpu or cuda (cuda:N), not {self.device!r}.")
        if self.batch_atoms is not None and self.batch_atoms < 1:
            raise ValueError(f"batch_atoms must be ≥ 1, not {self.batch_atoms}.")
        if not 0 < self.min_bond_ratio < 1:
            raise ValueError(f"min_bond_ratio must lie between 0 and 1, not {self.min_bond_ratio}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}.")
        if self.fmax <= 0 or self.max_steps < 1:
            raise ValueError(f"fmax must be > 0 and max_steps ≥ 1 (got {self.fmax}, {self.max_steps}).")
        if self.explode_volume_ratio <= 1:
            raise ValueError(f"explode_volume_ratio must exceed 1, not {self.explode_volume_ratio}.")
        if self.workers < 1 or self.threads_per_worker < 1:
            raise ValueError(
                f"workers and threads_per_worker must be ≥ 1 (got {self.workers}, {self.threads_per_worker})."
            )

    @property
    def model_name(self) -> str:
        """The pretrained model used: ``model`` or the potential's default (ignored when ``checkpoint`` is set)."""
        return self.model or POTENTIALS[self.potential]

    @property
    def atoms_per_batch(self) -> int:
        """Atoms in flight per model call of the batched route: ``batch_atoms`` or the device's default."""
        return self.batch_atoms or BATCH_ATOMS[self.device.split(":")[0]]

    @classmethod
    def from_dict(cls, values: dict) -> RelaxSettings:
        """Build from a plain dict, naming any unknown key."""
        unknown = sorted(set(values) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"Unknown relaxation setting(s): {', '.join(unknown)}.")
        return cls(**values)

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready)."""
        return dataclasses.asdict(self)

    def energy_scale(self) -> str:
        """A label of the energy scale, so energies from different scales are never mixed on one hull."""
        return f"{self.potential}:{self.checkpoint or self.model_name}"
