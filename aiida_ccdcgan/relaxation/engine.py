"""Relax crystals: the per-crystal ASE route (one at a time, or over worker processes), the checks both routes
share, and :func:`relax_batch`, which takes the route the settings name (the batched one is in :mod:`.batched`).

In the ASE route each worker process loads the potential once, limits torch to ``threads_per_worker`` threads and
relaxes the structures it is handed; a structure that fails, explodes or does not converge is recorded with its
status and the batch goes on. Results come back in input order.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from ase import Atoms

from .settings import RelaxSettings, Status

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process gets when its parent dies."""


@dataclasses.dataclass
class RelaxResult:
    """One relaxation: the final atoms (the input ones if it failed before a step), energies in eV, its status."""

    atoms: Atoms
    status: Status
    energy: float = math.nan
    steps: int = 0
    max_force: float = math.nan
    volume_ratio: float = math.nan
    seconds: float = 0.0
    error: str = ""

    @property
    def energy_per_atom(self) -> float:
        """Total energy per atom (eV/atom)."""
        return self.energy / len(self.atoms)


class Exploded(RuntimeError):
    """Raised by the optimiser's observer when a structure blows apart or collapses."""


def make_calculator(settings: RelaxSettings):
    """The ASE calculator of ``settings`` (imports torch and the potential's package; weights from the wheel)."""
    if settings.potential == "sevennet":
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator(settings.checkpoint or settings.model_name, device=settings.device)
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    if settings.checkpoint:
        model = CHGNet.from_file(settings.checkpoint)
    else:
        model = CHGNet.load(model_name=settings.model_name, use_device=settings.device, verbose=False)
    return CHGNetCalculator(model=model, use_device=settings.device, on_isolated_atoms="error")


def closest_distance(positions: np.ndarray, cell: np.ndarray, cutoff: float) -> float:
    """The shortest distance between two atoms (periodic images included) if it is below ``cutoff``, else inf."""
    from vesin import NeighborList

    (distances,) = NeighborList(cutoff=cutoff, full_list=False).compute(positions, cell, True, quantities="d")
    return float(distances.min()) if len(distances) else math.inf


def sanity_problem(volume_ratio: float, closest: float, settings: RelaxSettings) -> str | None:
    """Why a relaxation counts as exploded — V/V₀ out of range, two atoms closer than ``min_distance`` — or None."""
    if not 1 / settings.explode_volume_ratio <= volume_ratio <= settings.explode_volume_ratio:
        return f"volume changed ×{volume_ratio:.2f} (allowed ×{settings.explode_volume_ratio:g} either way)"
    if closest < settings.min_distance:
        return f"two atoms came {closest:.2f} Å apart (minimum {settings.min_distance} Å)"
    return None


def check_sane(atoms: Atoms, volume: float, settings: RelaxSettings) -> float:
    """Raise :class:`Exploded` if ``atoms`` left the allowed volume range or two atoms collide; return V/V₀."""
    ratio = atoms.get_volume() / volume
    closest = closest_distance(atoms.positions, atoms.cell.array, settings.min_distance)
    problem = sanity_problem(ratio, closest, settings)
    if problem:
        raise Exploded(problem)
    return ratio


def check_bonds(atoms: Atoms, settings: RelaxSettings, status: Status) -> tuple[Status, str]:
    """``status`` and no error, or ``unphysical`` and why: two atoms — or an atom and its own periodic image — closer
    than ``settings.min_bond_ratio`` × the sum of their covalent radii, a collapse no real crystal has (the holes of a
    potential end at 0.62–0.66)."""
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    radii = covalent_radii[atoms.numbers]
    first, second, distances = neighbor_list("ijd", atoms, settings.min_bond_ratio * 2 * float(radii.max()))
    if not len(distances):
        return status, ""
    ratios = distances / (radii[first] + radii[second])
    worst = int(np.argmin(ratios))
    if ratios[worst] >= settings.min_bond_ratio:
        return status, ""
    i, j = first[worst], second[worst]
    symbols = atoms.get_chemical_symbols()
    return Status.UNPHYSICAL, (
        f"{symbols[i]}–{symbols[j]} {distances[worst]:.2f} Å apart, {ratios[worst]:.2f} of their covalent radii "
        f"(minimum {settings.min_bond_ratio}): a hole of the potential"
    )


def relax_structure(atoms: Atoms, calculator, settings: RelaxSettings) -> RelaxResult:
    """Relax a copy of ``atoms`` with ``calculator``; never raises for a bad structure, the status says what happened."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS, FIRE

    start, atoms = time.perf_counter(), atoms.copy()
    atoms.calc = calculator
    volume = atoms.get_volume()
    result = RelaxResult(atoms=atoms, status=Status.FAILED)
    try:
        check_sane(atoms, volume, settings)
        target = FrechetCellFilter(atoms) if settings.relax_cell else atoms
        optimizer = {"FIRE": FIRE, "BFGS": BFGS}[settings.optimizer](target, logfile=None)

        def watch():
            forces = atoms.get_forces()
            if not (np.isfinite(atoms.get_potential_energy()) and np.isfinite(forces).all()):
                raise Exploded("the energy or forces are not finite")
            check_sane(atoms, volume, settings)

        optimizer.attach(watch, interval=1)
        converged = optimizer.run(fmax=settings.fmax, steps=settings.max_steps)
        result.status, result.error = check_bonds(
            atoms, settings, Status.CONVERGED if converged else Status.NOT_CONVERGED
        )
        result.steps = optimizer.nsteps
        result.energy = float(atoms.get_potential_energy())
        result.max_force = float(np.linalg.norm(target.get_forces(), axis=1).max())
    except Exploded as exception:
        result.status, result.error = Status.EXPLODED, str(exception)
    except Exception as exception:  # noqa: BLE001 — any failure of the potential is recorded, the batch goes on
        result.status, result.error = Status.FAILED, f"{type(exception).__name__}: {exception}"
    result.volume_ratio = float(atoms.get_volume() / volume)
    result.seconds = time.perf_counter() - start
    atoms.calc = None
    return result


_WORKER: dict = {}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Thread counts that the OpenMP/BLAS libraries read when a worker process imports them."""


@contextlib.contextmanager
def thread_environment(threads: int) -> Iterator[None]:
    """Set :data:`THREAD_VARIABLES` to ``threads`` while worker processes start (they inherit it), then restore.

    ``torch.set_num_threads`` alone is not enough: without these, two SevenNet workers on two cores each ran
    4× slower than one process (measured), as every worker's OpenMP runtime claims all cores.
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def die_with_parent() -> None:
    """Linux: ask the kernel to send this worker SIGTERM when its parent dies, even by SIGKILL (a cancelled job),
    so no orphaned worker goes on relaxing and holding a core."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before the request took effect
            os._exit(1)


def _start_worker(settings: RelaxSettings, in_worker_process: bool = False) -> None:
    """Worker initialiser: limit torch's threads, load the potential once (in a worker process: die with the
    parent)."""
    if in_worker_process:
        die_with_parent()
    import torch

    torch.set_num_threads(settings.threads_per_worker)
    _WORKER["settings"] = settings
    _WORKER["calculator"] = make_calculator(settings)


def _relax_in_worker(atoms: Atoms) -> RelaxResult:
    """Relax one structure in a worker started by :func:`_start_worker`."""
    return relax_structure(atoms, _WORKER["calculator"], _WORKER["settings"])


def relax_batch(
    structures: Sequence[Atoms],
    settings: RelaxSettings,
    on_result: Callable[[int, RelaxResult], None] | None = None,
) -> list[RelaxResult]:
    """Relax ``structures`` by ``settings.route``; results in input order.

    ``on_result(index, result)`` is called as each one finishes (to write progress or partial results).
    Structures are handed out largest first, so a big cell does not finish the batch alone.
    """
    results: list[RelaxResult | None] = [None] * len(structures)
    order = sorted(range(len(structures)), key=lambda i: -len(structures[i]))

    def record(index: int, result: RelaxResult) -> None:
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    if settings.route == "batched":
        from .batched import relax_batched

        relax_batched(structures, order, settings, record)
    else:
        relax_over_workers(structures, order, settings, record)
    return results


def relax_over_workers(
    structures: Sequence[Atoms],
    order: Sequence[int],
    settings: RelaxSettings,
    record: Callable[[int, RelaxResult], None],
) -> None:
    """The ASE route: ``structures`` in ``order`` over ``settings.workers`` processes (in this process when 1);
    ``record(index, result)`` each one as it finishes."""
    if settings.workers == 1 or len(structures) <= 1:
        _start_worker(settings)
        for index in order:
            record(index, _relax_in_worker(structures[index]))
        return
    context = multiprocessing.get_context("spawn")  # torch does not survive fork reliably
    workers = min(settings.workers, len(structures))
    with (
        thread_environment(settings.threads_per_worker),
        concurrent.futures.ProcessPoolExecutor(workers, context, _start_worker, (settings, True)) as pool,
    ):
        futures = {pool.submit(_relax_in_worker, structures[index]): index for index in order}
        for future in concurrent.futures.as_completed(futures):
            record(futures[future], future.result())
