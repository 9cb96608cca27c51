"""How good is a set of generated crystals? The field's definitions next to the paper's (pure pymatgen/SMACT).

Per structure (``evaluate``):

* **validity** (CDVAE, also used by MatterGen): *structural* — no two atoms closer than 0.5 Å (an atom's own
  periodic images not counted, as CDVAE pads the diagonal) and a cell volume of at least 0.1 Å³; *composition* —
  SMACT's ``smact_validity`` with the Pauling test and alloys allowed (CDVAE's settings; SMACT 4's default
  oxidation states); *valid* = both. Besides, *paper_valid*: the paper's Bi–Se rule of the representation
  (:func:`~aiida_ccdcgan.representation.validity.validity`: 2.0 Å including images, the system's elements, ≤ 20
  atoms).
* **unique** — no StructureMatcher match (ltol 0.2, stol 0.3, angle 5°) with an earlier valid structure of the
  set; **novel** — no match in the reference set; both judged on the relaxed structure where there is one.
* **known_phase** — the name of the given known crystal (e.g. Bi2Se3 R-3m) the structure matches with the same
  matcher, judged like novelty; empty when none.
* **compound** — two or more elements (a new packing of one element can be S.U.N. too; ``sun_compounds`` in the
  summary counts the compounds only).
* **stable** (MatterGen) — E_hull ≤ 0.1 eV/atom; **S.U.N.** — valid, stable, unique and novel. The paper's
  classes (stable: E_f < 0 and E_hull < 0.10; metastable < 0.15) come from :mod:`aiida_ccdcgan.thermodynamics`.
* **RMSD** (MatterGen) — between the generated and the relaxed structure: StructureMatcher ltol 0.5, stol 0.5,
  angle 10°, no scaling, supercells allowed; pymatgen's normalised rms times (V/N)^(1/3) of the mean volume per
  atom, in Å; a structure that does not match its relaxed self counts as 0.5 × (V/N)^(1/3).

``summarize`` turns the rows into fractions of *all* structures (invalid ones count in every denominator).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure

from .dataset.checks import ImportChecks
from .representation.config import MATCHER_SETTINGS, VoxelConfig
from .representation.validity import validity
from .thermodynamics import Criteria, distinct_flags


@dataclasses.dataclass(frozen=True)
class EvaluationSettings:
    """Thresholds of the evaluation: CDVAE validity (the thresholds of :class:`ImportChecks`), MatterGen stability
    and RMSD, the matcher of unique/novel."""

    min_distance: float = ImportChecks.min_distance
    min_volume: float = ImportChecks.min_volume
    stability_threshold: float = 0.1
    matcher: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(MATCHER_SETTINGS))
    rmsd_matcher: Mapping[str, object] = dataclasses.field(
        default_factory=lambda: {"ltol": 0.5, "stol": 0.5, "angle_tol": 10, "scale": False, "attempt_supercell": True}
    )
    max_rmsd: float = 0.5


def structural_invalidity(structure: Structure, settings: EvaluationSettings = EvaluationSettings()) -> str | None:
    """CDVAE's structural test: the reason a structure fails it (``volume_too_small``, ``atoms_too_close``), or None."""
    if not math.isfinite(structure.volume) or structure.volume < settings.min_volume:
        return "volume_too_small"
    if len(structure) > 1:
        distances = structure.distance_matrix + np.eye(len(structure)) * (settings.min_distance + 10)
        if distances.min() < settings.min_distance:
            return "atoms_too_close"
    return None


def composition_valid(composition: Composition | str) -> bool:
    """CDVAE's composition test: SMACT charge neutrality and Pauling electronegativity order; alloys pass."""
    from smact.screening import smact_validity

    return bool(smact_validity(Composition(composition), use_pauling_test=True, include_alloys=True))


def rmsd_angstrom(
    generated: Structure, relaxed: Structure, settings: EvaluationSettings = EvaluationSettings()
) -> float:
    """MatterGen's RMSD (Å) between a generated structure and its relaxed self; unmatched: ``max_rmsd``·(V/N)^(1/3)."""
    length = ((generated.volume / len(generated) + relaxed.volume / len(relaxed)) / 2) ** (1 / 3)
    result = StructureMatcher(**settings.rmsd_matcher).get_rms_dist(generated, relaxed)
    return (settings.max_rmsd if result is None else result[0]) * length


def evaluate(
    generated: Sequence[Structure],
    reference: Sequence[Structure],
    elements: Sequence[str],
    relaxed: Sequence[Structure | None] | None = None,
    e_above_hull: Sequence[float | None] | None = None,
    settings: EvaluationSettings = EvaluationSettings(),
    known_phases: Mapping[str, Structure] | None = None,
) -> list[dict]:
    """One row per generated structure (see the module docstring); ``relaxed`` and ``e_above_hull`` (eV/atom) are
    per structure, None where a structure was not relaxed; without them stability, S.U.N. and RMSD are None.
    ``known_phases`` (name → crystal) are looked for among the valid structures."""
    count = len(generated)
    relaxed = list(relaxed) if relaxed is not None else [None] * count
    e_above_hull = list(e_above_hull) if e_above_hull is not None else [None] * count
    if not len(relaxed) == len(e_above_hull) == count:
        raise ValueError(f"{count} generated structures need as many relaxed structures and E_hull values (or None).")
    paper_config = VoxelConfig(elements=tuple(elements))
    rows = []
    for index, structure in enumerate(generated):
        structural = structural_invalidity(structure, settings)
        composition = composition_valid(structure.composition)
        paper_reason, _ = validity(structure, paper_config)
        rows.append(
            {
                "index": index,
                "formula": structure.composition.reduced_formula,
                "natoms": len(structure),
                "compound": len(structure.composition.elements) > 1,
                "structure_valid": structural is None,
                "composition_valid": composition,
                "valid": structural is None and composition,
                "invalid_reason": structural or ("charge_balance" if not composition else ""),
                "paper_valid": paper_reason is None,
                "paper_invalid_reason": paper_reason.value if paper_reason else "",
            }
        )
    valid = [row["index"] for row in rows if row["valid"]]
    judged = [relaxed[i] if relaxed[i] is not None else generated[i] for i in valid]
    criteria = Criteria(matcher=dict(settings.matcher))
    unique = dict(zip(valid, distinct_flags(judged, [], criteria)))
    novel = dict(zip(valid, distinct_flags(judged, reference, criteria, among_candidates=False)))
    matcher = StructureMatcher(**settings.matcher)
    known = {
        index: next((name for name, phase in (known_phases or {}).items() if matcher.fit(structure, phase)), "")
        for index, structure in zip(valid, judged)
    }
    for row in rows:
        index = row["index"]
        e_hull, after = e_above_hull[index], relaxed[index]
        row["unique"] = unique.get(index, False)
        row["novel"] = novel.get(index, False)
        row["known_phase"] = known.get(index, "")
        row["e_above_hull"] = e_hull
        row["stable"] = None if e_hull is None else bool(row["valid"] and e_hull <= settings.stability_threshold)
        row["sun"] = None if e_hull is None else bool(row["stable"] and row["unique"] and row["novel"])
        row["rmsd"] = None if after is None else rmsd_angstrom(generated[index], after, settings)
    return rows


def summarize(rows: Sequence[dict]) -> dict:
    """Counts and fractions of all structures; means over the structures that have a value."""
    total = len(rows)

    def fraction(key: str) -> float | None:
        values = [row[key] for row in rows if row[key] is not None]
        return round(sum(bool(v) for v in values) / total, 6) if total and values else None

    rmsds = [row["rmsd"] for row in rows if row["rmsd"] is not None]
    return {
        "structures": total,
        **{f"{key}_fraction": fraction(key) for key in ("structure_valid", "composition_valid", "valid")},
        **{f"{key}_fraction": fraction(key) for key in ("paper_valid", "unique", "novel", "stable", "sun")},
        **{key: sum(bool(row[key]) for row in rows) for key in ("valid", "paper_valid", "unique", "novel", "sun")},
        "sun_compounds": sum(bool(row["sun"]) and row["compound"] for row in rows),
        "relaxed": len(rmsds),
        "mean_rmsd": round(float(np.mean(rmsds)), 6) if rmsds else None,
    }
