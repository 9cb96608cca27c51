"""Settings of an MLIP relaxation: potential, optimiser, convergence, what counts as exploded, parallelism."""

from __future__ import annotations

import dataclasses
import enum

POTENTIALS = {"sevennet": "7net-0", "chgnet": "0.3.0"}
"""Potential family → default model (weights shipped inside the wheels: no download)."""

OPTIMIZERS = ("FIRE", "BFGS")


class Status(str, enum.Enum):
    """Outcome of one relaxation; the loop and the hull only use ``converged`` ones."""

    CONVERGED = "converged"
    NOT_CONVERGED = "not_converged"
    EXPLODED = "exploded"
    FAILED = "failed"

    @property
    def exit_code(self) -> int:
        """A per-structure exit code recorded next to the status: 0 converged, 401–403 the failures."""
        return {"converged": 0, "not_converged": 401, "exploded": 402, "failed": 403}[self.value]


@dataclasses.dataclass(frozen=True)
class RelaxSettings:
    """One source for how structures are relaxed (the ``ccdcgan-relax`` configuration and the CalcJob's input).

    ``potential`` ``sevennet`` (default; raw-PBE energy scale) or ``chgnet`` (MP2020-corrected scale);
    ``model`` the pretrained model name (default per potential) or ``checkpoint`` a local file instead.
    ``fmax`` (eV/Å) and ``max_steps`` for ASE ``optimizer`` on a ``FrechetCellFilter`` (cell relaxed too unless
    ``relax_cell`` is false). A run is *exploded* when its volume per atom leaves
    [V₀/``explode_volume_ratio``, V₀·``explode_volume_ratio``], two atoms come closer than ``min_distance`` Å, or
    the energy or forces stop being finite. ``workers`` processes with ``threads_per_worker`` torch threads each
    (1 thread per process, one process per core is fastest for small cells).
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
    workers: int = 2
    threads_per_worker: int = 1

    def __post_init__(self):
        if self.potential not in POTENTIALS:
            raise ValueError(f"potential must be one of {', '.join(POTENTIALS)}, not {self.potential!r}.")
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
