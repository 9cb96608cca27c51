"""``ccdcgan-sample``: generate crystal graphs with a trained generator, decode them, and judge their validity.

Writes ``candidates.extxyz`` (every decoded crystal with its sample index, validity reason and, if a constraint
is given, its prediction for the generated graph, ``predicted_formation_energy``; with the models that judge a
crystal, for each valid crystal the energy of the decoded crystal itself, ``crystal_formation_energy``: the crystal
energy network on its partial RDFs, or — crystal energy input ``graph`` — the constraint on the crystal re-encoded
in its ``cell_orders`` orders of its cell vectors, the predictions averaged) and ``sampling.json``
(counts by outcome, and ``valid_compounds``: the valid crystals of two or more elements, the ones that can lie
below the elements' line). The same seed gives the same samples. Screening (the paper's DCGAN + constraint)
keeps only valid crystals whose ``crystal_formation_energy`` is at most ``--max-predicted-energy`` eV/atom (a
crystal without an energy — one the encoders cannot hold in any order — is screened out). ``--step-scale uniform``
scales an anchored generator's step by a factor drawn uniformly from [0, 1] for each sample; ``backoff`` halves and
then quarters the step of a sample whose crystal is not valid, ``fallback`` then drops it (``models.config.STEP_SCALES``).

Exit codes: 0 done (also when no sample is valid: the counts say so); 10 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ..models.config import TrainingConfig, model_file, step_scale_refusal
from . import fail, missing_extra, quiet_backend
from .contract import (
    CANDIDATES_FILE,
    EXIT_BAD_INPUT,
    EXIT_OK,
    SAMPLING_MODELS,
    SAMPLING_SUMMARY,
    screening_models,
)


def _finite_mean(values) -> float | None:
    """The mean of the finite ``values``, None if there are none."""
    finite = [value for value in values if np.isfinite(value)]
    return float(np.mean(finite)) if finite else None


def _frame(candidate):
    """A decoded candidate as an ASE frame with its sample index, outcome, detail and energies in its info."""
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(candidate.structure)
    atoms.info = {"sample": candidate.sample, "outcome": candidate.outcome}
    if candidate.detail:  # ASE writes an empty string as `detail=`, and reads the next key=value as its value
        atoms.info["detail"] = candidate.detail
    for key in ("predicted_formation_energy", "crystal_formation_energy"):
        if getattr(candidate, key) is not None:
            atoms.info[key] = getattr(candidate, key)
    return atoms


def main(argv=None) -> int:
    """Entry point of ``ccdcgan-sample``."""
    parser = argparse.ArgumentParser(
        prog="ccdcgan-sample", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path, help="The JSON training configuration the models were trained with.")
    parser.add_argument(
        "models",
        type=Path,
        help="Folder with generator.keras, site_decoder.keras, lattice_decoder.keras (and constraint.keras, the "
        "generated graphs' predicted energies; for the decoded crystals' formation energies and screening, "
        "crystal_energy.keras or — crystal energy input graph — constraint.keras, site_encoder.keras, "
        "lattice_encoder.keras).",
    )
    parser.add_argument("--count", type=int, required=True, help="Number of crystal graphs to generate.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-predicted-energy",
        type=float,
        help="Screening: keep valid crystals whose decoded crystal the constraint puts at or below this (eV/atom).",
    )
    parser.add_argument(
        "--step-scale",
        default="learnt",
        help="An anchored generator's step: learnt (as trained), uniform (times a factor uniform in [0, 1] for "
        "each sample, from the training graph or its element-exchanged twin to the learnt step), backoff (the "
        "learnt step, halved and then quartered for a sample whose crystal is not valid) or fallback (backoff, "
        "then no step: the training graph or its twin).",
    )
    parser.add_argument("--output", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    if (refused := missing_extra("ccdcgan-sample")) is not None:
        return refused
    quiet_backend()

    if args.count < 1:
        return fail(EXIT_BAD_INPUT, f"--count must be at least 1, not {args.count}")
    try:
        config = TrainingConfig.from_dict(json.loads(args.config.read_text()))
    except (OSError, ValueError, TypeError) as exception:
        return fail(EXIT_BAD_INPUT, f"cannot use the configuration {args.config}: {exception}")
    if (refusal := step_scale_refusal(args.step_scale, config.gan.architecture)) is not None:
        return fail(EXIT_BAD_INPUT, f"--step-scale: {refusal}")
    screening = screening_models(config.to_dict())
    needed = [*SAMPLING_MODELS, *(screening if args.max_predicted_energy is not None else [])]
    missing = [name for name in needed if not (args.models / model_file(name)).exists()]
    if missing:
        return fail(EXIT_BAD_INPUT, f"{args.models} lacks {', '.join(model_file(m) for m in missing)}")

    from ..models.bundle import ModelBundle, sample_candidates
    from ..models.pipeline import seed_everything

    seed_everything(args.seed)
    bundle = ModelBundle.load(config, args.models, (*SAMPLING_MODELS, "constraint", *screening))
    candidates = sample_candidates(bundle, args.count, args.seed, screening, args.max_predicted_energy, args.step_scale)
    frames = [_frame(candidate) for candidate in candidates if candidate.structure is not None]
    outcomes = Counter(candidate.outcome for candidate in candidates)
    compounds = sum(c.outcome == "valid" and len(c.structure.composition.elements) > 1 for c in candidates)
    predicted = [c.predicted_formation_energy for c in candidates if c.predicted_formation_energy is not None]
    args.output.mkdir(parents=True, exist_ok=True)
    if frames:
        from ase.io import write

        write(args.output / CANDIDATES_FILE, frames, format="extxyz")
    summary = {
        "graphs": args.count,
        "seed": args.seed,
        "step_scale": args.step_scale,
        "decoded": len(frames),
        "valid": outcomes["valid"],
        "valid_compounds": compounds,
        "success_rate": outcomes["valid"] / args.count,
        "outcomes": dict(outcomes),
        "screening_max_predicted_energy": args.max_predicted_energy,
        "predicted_formation_energy_mean": float(np.mean(np.float32(predicted))) if predicted else None,
        "crystal_formation_energy_mean": _finite_mean(
            [c.crystal_formation_energy for c in candidates if c.crystal_formation_energy is not None]
        ),
    }
    (args.output / SAMPLING_SUMMARY).write_text(json.dumps(summary, indent=2))
    print(f"ccdcgan-sample: {outcomes['valid']} valid of {args.count} graphs", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
