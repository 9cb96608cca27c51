"""The batched route: many crystals relaxed together, one model call per optimiser step for all of them.

TorchSim's FIRE (ASE's flavour) with its Fréchet cell filter keeps a FIRE state per crystal; this module keeps
the batch full. Crystals enter, largest first, up to ``settings.atoms_per_batch`` atoms, once the batch has fallen
to :data:`REFILL_FRACTION` of that, and each one leaves it as soon as it is converged, exploded or out of steps,
with the same statuses and checks as the per-crystal ASE route
(:func:`~aiida_ccdcgan.relaxation.engine.relax_structure`). A crystal that makes the potential fail is isolated by
evaluating the batch's crystals one by one, and leaves as ``failed``; the others go on. Each result's ``seconds``
is its share of the batch's wall time (by atoms in flight). torch is imported only where crystals are relaxed (in
the worker processes), not by the process that hands them out.
"""

from __future__ import annotations

import math
import multiprocessing
import queue
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

from .engine import (
    Exploded,
    RelaxResult,
    check_bonds,
    check_sane,
    closest_distance,
    die_with_parent,
    sanity_problem,
    thread_environment,
)
from .settings import RelaxSettings, Status

if TYPE_CHECKING:
    import torch

REFILL_FRACTION = 0.5
"""New crystals enter the batch once the atoms in flight fall to this fraction of ``atoms_per_batch`` (each entry
costs two model calls of its own: the initial forces and the first step)."""


def _optimizer(model, settings: RelaxSettings):
    """TorchSim's (init, step) functions: FIRE with a Fréchet cell filter, or on the positions alone."""
    from torch_sim.optimizers import fire, frechet_cell_fire

    if settings.relax_cell:
        return frechet_cell_fire(model=model, md_flavor="ase_fire")
    return fire(model=model, md_flavor="ase_fire")


def _max_forces(state) -> torch.Tensor:
    """Per crystal: the largest force on an atom and, with the cell relaxed, on the cell (as ASE's filter counts)."""
    import torch

    norms = state.forces.norm(dim=1)
    largest = torch.zeros(state.n_systems, dtype=norms.dtype, device=norms.device)
    largest = largest.scatter_reduce(0, state.system_idx, norms, reduce="amax", include_self=True)
    cell_forces = getattr(state, "cell_forces", None)
    if cell_forces is not None:
        largest = torch.maximum(largest, cell_forces.norm(dim=2).max(dim=1).values)
    return largest


def _finite(state) -> torch.Tensor:
    """Per crystal: whether its energy, forces and stress are all finite."""
    import torch

    atoms_ok = torch.isfinite(state.forces).all(dim=1).to(torch.int64)
    bad_atoms = torch.zeros(state.n_systems, dtype=torch.int64, device=atoms_ok.device)
    bad_atoms = bad_atoms.index_add(0, state.system_idx, 1 - atoms_ok)
    return torch.isfinite(state.energy) & (bad_atoms == 0) & torch.isfinite(state.stress).flatten(1).all(dim=1)


class _InFlight:
    """One crystal in the batch: its input index, its atoms before relaxing, steps taken and time charged."""

    def __init__(self, index: int, atoms: Atoms):
        self.index, self.atoms, self.steps, self.seconds = index, atoms, 0, 0.0
        self.volume = atoms.get_volume()


def _as_atoms(flight: _InFlight, state, position: int) -> Atoms:
    """The crystal at ``position`` of ``state`` as a copy of its input atoms with the relaxed cell and positions."""
    atoms = flight.atoms.copy()
    mask = (state.system_idx == position).cpu().numpy()
    atoms.set_cell(state.row_vector_cell[position].detach().cpu().numpy(), scale_atoms=False)
    atoms.positions = state.positions.detach().cpu().numpy()[mask]
    return atoms


def relax_batched(
    structures: Sequence[Atoms],
    order: Sequence[int],
    settings: RelaxSettings,
    record: Callable[[int, RelaxResult], None],
) -> None:
    """Relax ``structures``, taken in ``order``, in batches of at most ``settings.atoms_per_batch`` atoms;
    ``record(index, result)`` each one as it leaves its batch.

    With ``settings.workers`` > 1, that many processes of ``threads_per_worker`` torch threads each run a batch of
    their own (on a few CPU cores this beats one batch on all of them, since a SevenNet call costs more per atom as
    the batch grows beyond ≈ 50 atoms; docs/benchmarks.md) over their share of the crystals (:func:`deal`). The
    shares are fixed before any worker starts, so which crystals share a batch, and so every energy to the last bit,
    is the same on every run; with one queue for all workers it depended on their timing (energies differing by up
    to 2·10⁻⁷ eV/atom between two runs, enough to change a model trained on them).
    """
    if settings.workers == 1 or len(structures) <= 1:
        waiting = [(index, structures[index]) for index in order]
        _relax_stream(lambda: waiting.pop(0) if waiting else None, settings, record)
        return
    context = multiprocessing.get_context("spawn")  # torch does not survive fork reliably
    done, shares = context.Queue(), []
    for share in deal(structures, order, min(settings.workers, len(structures))):
        tasks = context.Queue()
        for index in share:
            tasks.put((index, structures[index]))
        tasks.put(None)
        shares.append(tasks)
    with thread_environment(settings.threads_per_worker):
        processes = [context.Process(target=_worker, args=(settings, tasks, done), daemon=True) for tasks in shares]
        for process in processes:
            process.start()
    try:
        remaining = len(structures)
        while remaining:
            try:
                message = done.get(timeout=5)
            except queue.Empty:
                if not any(process.is_alive() for process in processes):
                    raise RuntimeError(
                        f"the batched relaxation workers ended with {remaining} crystal(s) not relaxed (a worker died; "
                        "from a script, call relax_batch under `if __name__ == '__main__':`)"
                    ) from None
                continue
            if isinstance(message, str):
                raise RuntimeError(f"a batched relaxation worker failed: {message}")
            record(*message)
            remaining -= 1
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


def deal(structures: Sequence[Atoms], order: Sequence[int], workers: int) -> list[list[int]]:
    """The crystals of each of ``workers`` workers: ``order`` dealt one by one to the worker with the fewest atoms so
    far (the first of them on a tie), each share kept in ``order``."""
    shares, atoms = [[] for _ in range(workers)], [0] * workers
    for index in order:
        lightest = atoms.index(min(atoms))
        shares[lightest].append(index)
        atoms[lightest] += len(structures[index])
    return shares


def _worker(settings: RelaxSettings, tasks, done) -> None:
    """A worker process of :func:`relax_batched`: relax crystals from ``tasks`` until its end mark, report each one
    (or the worker's own failure, as text) to ``done``."""
    die_with_parent()
    try:
        _relax_stream(tasks.get, settings, lambda index, result: done.put((index, result)))
    except BaseException as exception:  # noqa: BLE001 — the parent must hear of it, not wait forever
        done.put(f"{type(exception).__name__}: {exception}")


def _relax_stream(take: Callable[[], tuple[int, Atoms] | None], settings: RelaxSettings, emit) -> None:
    """Relax the crystals ``take()`` hands out — (index, atoms), then None when there are no more — in one batch
    of at most ``settings.atoms_per_batch`` atoms on ``settings.threads_per_worker`` threads; ``emit(index,
    result)`` each one as it leaves the batch."""
    import torch
    import torch_sim as ts

    from .batch_models import make_batch_model

    torch.set_num_threads(settings.threads_per_worker)
    model = make_batch_model(settings)
    initialize, step = _optimizer(model, settings)
    flights: list[_InFlight] = []
    held: list[tuple[int, Atoms]] = []  # taken but not yet in the batch (it had no room)
    exhausted = False
    state = None

    def finish(flight: _InFlight, atoms: Atoms, status: Status, energy=math.nan, max_force=math.nan, error="") -> None:
        if status in (Status.CONVERGED, Status.NOT_CONVERGED):
            status, error = check_bonds(atoms, settings, status)
        result = RelaxResult(
            atoms=atoms,
            status=status,
            energy=energy,
            steps=flight.steps,
            max_force=max_force,
            volume_ratio=atoms.get_volume() / flight.volume,
            seconds=flight.seconds,
            error=error,
        )
        emit(flight.index, result)

    def one_by_one(members: list[_InFlight], alone, atoms_of, steps_taken: int) -> tuple[list[_InFlight], object]:
        """``alone(position)`` for each of ``members`` by itself, after the batch as a whole failed: the crystals
        whose call fails leave as failed (having taken ``steps_taken`` more steps); the others and their state go on."""
        kept, states = [], []
        for position, flight in enumerate(members):
            try:
                states.append(alone(position))
                kept.append(flight)
            except Exception as exception:  # noqa: BLE001 — this crystal breaks the potential, the rest go on
                flight.steps += steps_taken
                error = f"{type(exception).__name__}: {exception}"
                finish(flight, atoms_of(position), Status.FAILED, error=error)
        return kept, ts.concatenate_states(states) if states else None

    def admit(batch: list[_InFlight]) -> tuple[list[_InFlight], object]:
        """Initialise the sane crystals of ``batch`` (one model call); a crystal that fails alone leaves as failed."""
        sane = []
        for flight in batch:
            try:
                check_sane(flight.atoms, flight.volume, settings)
                sane.append(flight)
            except Exploded as exception:
                finish(flight, flight.atoms.copy(), Status.EXPLODED, error=str(exception))
        if not sane:
            return sane, None
        try:
            return sane, initialize(ts.initialize_state([f.atoms for f in sane], model.device, model.dtype))
        except Exception:  # noqa: BLE001 — find the crystal the potential cannot take, keep the rest
            return one_by_one(
                sane,
                lambda i: initialize(ts.initialize_state([sane[i].atoms], model.device, model.dtype)),
                lambda i: sane[i].atoms.copy(),
                steps_taken=0,
            )

    def advance(state, members: list[_InFlight]) -> tuple[list[_InFlight], object]:
        """One optimiser step of every crystal of ``members``; on a failure, step them one by one and let the failing
        ones leave as failed. Returns the crystals still in the batch and their state."""
        start = time.perf_counter()
        try:
            kept, state = members, step(state)
        except Exception:  # noqa: BLE001
            kept, state = one_by_one(
                members, lambda i: step(state[i]), lambda i: _as_atoms(members[i], state, i), steps_taken=1
            )
        charge(kept, time.perf_counter() - start)
        for flight in kept:
            flight.steps += 1
        return kept, state

    def settle(state, members: list[_InFlight], checked_steps: bool) -> list[int]:
        """Finish every crystal of ``members`` (as ordered in ``state``) that is done — converged, exploded,
        non-finite or out of steps —; return the positions of the others."""
        finite, largest = _finite(state).tolist(), _max_forces(state).tolist()
        energies, volumes = state.energy.tolist(), state.volume.tolist()
        positions = state.positions.detach().cpu().numpy()
        cells = state.row_vector_cell.detach().cpu().numpy()
        ends = np.cumsum([len(flight.atoms) for flight in members])
        keep = []
        for position, flight in enumerate(members):
            if finite[position]:
                closest = closest_distance(
                    positions[ends[position] - len(flight.atoms) : ends[position]],
                    cells[position],
                    settings.min_distance,
                )
                problem = sanity_problem(volumes[position] / flight.volume, closest, settings)
            else:
                problem = "the energy or forces are not finite"
            if problem:
                finish(flight, _as_atoms(flight, state, position), Status.EXPLODED, error=problem)
                continue
            if largest[position] < settings.fmax:
                finish(
                    flight, _as_atoms(flight, state, position), Status.CONVERGED, energies[position], largest[position]
                )
            elif checked_steps and flight.steps >= settings.max_steps:
                atoms = _as_atoms(flight, state, position)
                finish(flight, atoms, Status.NOT_CONVERGED, energies[position], largest[position])
            else:
                keep.append(position)
        return keep

    def charge(members: list[_InFlight], seconds: float) -> None:
        """Share ``seconds`` of batch time among ``members`` by their atoms."""
        atoms = sum(len(flight.atoms) for flight in members)
        for flight in members:
            flight.seconds += seconds * len(flight.atoms) / atoms

    def still_running(state, members: list[_InFlight], checked_steps: bool) -> tuple[list[_InFlight], object]:
        """``members`` and ``state`` without the crystals :func:`settle` finished."""
        kept = settle(state, members, checked_steps)
        return [members[i] for i in kept], (state[kept] if kept else None)

    while not exhausted or held or flights:
        in_flight = sum(len(flight.atoms) for flight in flights)
        if (held or not exhausted) and in_flight <= REFILL_FRACTION * settings.atoms_per_batch:
            room, entering = settings.atoms_per_batch - in_flight, []
            while True:
                item = held.pop() if held else (None if exhausted else take())
                if item is None:
                    exhausted = True
                    break
                if len(item[1]) > room and (flights or entering):
                    held.append(item)
                    break
                entering.append(_InFlight(*item))
                room -= len(item[1])
            start = time.perf_counter()
            entered, new_state = admit(entering)
            if new_state is not None:
                charge(entered, time.perf_counter() - start)
                entered, new_state = still_running(new_state, entered, checked_steps=False)  # as ASE: converged at 0
            if new_state is not None:
                # TorchSim's FIRE takes a whole batch's first step as every crystal's first step when any has
                # no velocities yet: newcomers take theirs alone, so the crystals already in flight are not reset.
                entered, new_state = advance(new_state, entered)
            if new_state is not None:
                entered, new_state = still_running(new_state, entered, checked_steps=True)
            if new_state is not None:
                flights.extend(entered)
                state = new_state if state is None else ts.concatenate_states([state, new_state])
        if not flights:
            continue
        flights[:], state = advance(state, flights)
        if state is not None:
            flights[:], state = still_running(state, flights, checked_steps=True)
