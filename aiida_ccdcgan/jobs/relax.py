"""``ccdcgan-relax``: relax a batch of crystals with a universal machine-learned potential.

Reads the relaxation settings (JSON, :class:`~aiida_ccdcgan.relaxation.RelaxSettings`) and the structures
(extended XYZ or any format ASE reads), relaxes them by the settings' route (``batched``, the default: many crystals
per model call; ``ase``: one ASE optimiser per crystal), and writes, in the output folder:

* ``partial.extxyz`` — each result as soon as it is done (``--resume`` skips the ones already there);
* ``relaxed.extxyz`` — every structure in input order, the final cell and positions, with ``index``, ``status``
  (converged, not_converged, exploded, failed, unphysical), ``total_energy`` and ``energy_per_atom`` (eV), ``steps``,
  ``max_force`` (eV/Å), ``volume_ratio``, ``seconds`` and ``error`` in each frame's info;
* ``relax.json`` — the counts by status, the settings, the energy scale and the wall time.

Exit codes: 0 done (also when some structures did not converge: their status says so); 10 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from . import fail, missing_extra
from .contract import EXIT_BAD_INPUT, EXIT_OK, PARTIAL_FILE, RELAX_SUMMARY, RELAXED_FILE


def _frame(index: int, result) -> object:
    """The result as ASE atoms with its record in ``info``."""
    atoms = result.atoms.copy()
    atoms.info = {
        "index": index,
        "status": result.status.value,
        "total_energy": result.energy,
        "energy_per_atom": result.energy_per_atom,
        "steps": result.steps,
        "max_force": result.max_force,
        "volume_ratio": result.volume_ratio,
        "seconds": round(result.seconds, 3),
        **({"error": result.error} if result.error else {}),
    }
    return atoms


def main(argv=None) -> int:
    """Entry point of ``ccdcgan-relax``."""
    parser = argparse.ArgumentParser(
        prog="ccdcgan-relax", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("settings", type=Path, help="JSON relaxation settings (potential, fmax, max_steps, workers…).")
    parser.add_argument("structures", type=Path, help="The crystals to relax (extended XYZ, CIF, POSCAR, …).")
    parser.add_argument("--output", type=Path, default=Path("."))
    parser.add_argument("--resume", type=Path, help="A partial.extxyz of an interrupted run: keep its results.")
    args = parser.parse_args(argv)
    if (refused := missing_extra("ccdcgan-relax")) is not None:
        return refused
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download weights at run time

    from ase.io import read, write

    from ..relaxation import RelaxSettings, relax_batch

    try:
        settings = RelaxSettings.from_dict(json.loads(args.settings.read_text()))
    except (OSError, ValueError, TypeError) as exception:
        return fail(EXIT_BAD_INPUT, f"cannot use the settings {args.settings}: {exception}")
    try:
        structures = read(args.structures, index=":")
    except Exception as exception:  # noqa: BLE001 — ASE raises many kinds for a bad file
        return fail(EXIT_BAD_INPUT, f"cannot read structures from {args.structures}: {exception}")
    if not structures:
        return fail(EXIT_BAD_INPUT, f"{args.structures} holds no structures")
    if settings.checkpoint and not Path(settings.checkpoint).is_file():
        return fail(EXIT_BAD_INPUT, f"the checkpoint {settings.checkpoint} does not exist")

    args.output.mkdir(parents=True, exist_ok=True)
    frames = {}
    if args.resume is not None and args.resume.is_file():
        frames = {frame.info["index"]: frame for frame in read(args.resume, index=":", format="extxyz")}
        write(args.output / PARTIAL_FILE, list(frames.values()), format="extxyz")
    todo = [i for i in range(len(structures)) if i not in frames]
    print(f"ccdcgan-relax: {len(todo)} to relax, {len(frames)} already done", flush=True)

    def save(position: int, result) -> None:
        frame = _frame(todo[position], result)
        frames[todo[position]] = frame
        write(args.output / PARTIAL_FILE, frame, format="extxyz", append=True)
        print(f"ccdcgan-relax: {len(frames)}/{len(structures)} {frame.info['status']}", flush=True)

    start = time.perf_counter()
    relax_batch([structures[i] for i in todo], settings, save)
    seconds = time.perf_counter() - start
    ordered = [frames[i] for i in range(len(structures))]
    write(args.output / RELAXED_FILE, ordered, format="extxyz")
    summary = {
        "engine": "mlip",
        "count": len(structures),
        "statuses": dict(Counter(frame.info["status"] for frame in ordered)),
        "relaxed_now": len(todo),
        "route": settings.route,
        "seconds": round(seconds, 2),
        "settings": settings.to_dict(),
        "energy_scale": settings.energy_scale(),
    }
    (args.output / RELAX_SUMMARY).write_text(json.dumps(summary, indent=2))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
