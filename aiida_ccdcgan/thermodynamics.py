"""Formation energies, the convex hull and the paper's classification of crystals (pure pymatgen, no AiiDA).

Energies are in eV. The hull is built in formation-energy space: every phase enters as a pymatgen ``PDEntry``
with its formation energy per atom times its number of atoms and the elements at zero, so database phases that
come with formation energies only (the training data) and freshly relaxed ones sit on one hull — as long as
all of them were computed at one level of theory (one potential, or one DFT setting), which the caller must
ensure (CHGNet's MP2020-corrected scale and SevenNet's raw PBE scale must never meet on one hull).

Energy corrections: SevenNet's pretrained models learned MPtrj's *raw* energies — GGA+U for the oxides and
fluorides of Co, Cr, Fe, Mn, Mo, Ni, V, W, plain GGA for everything else — so a Co oxide and metallic Co sit on
two scales that only the Materials Project's MP2020 corrections reconcile (CoO: −0.06 eV/atom raw, −1.23 in
experiment). In a chemical system with such an element and O or F, every crystal's energy therefore gets
pymatgen's ``MaterialsProject2020Compatibility`` corrections (:func:`mp2020_corrections`) and the scale is named
``<scale>+mp2020`` (:func:`energy_correction`, ``Criteria.energy_correction``); elsewhere (Bi–Se) nothing changes.

The paper's definitions (Long et al. 2021): *stable* E_f < 0 and E_hull < 0.10 eV/atom; *metastable* E_f < 0 and
0.10 ≤ E_hull < 0.15 eV/atom; *distinct*: no StructureMatcher match (ltol 0.2, stol 0.3, angle 5°) with the
training database nor with another distinct candidate found before it. Stable and metastable are said of compounds:
a crystal of one element is ``elemental`` whatever its E_f — its E_f is zero up to numerical noise (−0.0003 eV/atom
for a regenerated hcp Co), or below zero only because the reference crystal is not the engine's lowest one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Element, Lattice, Structure

from .representation.config import MATCHER_SETTINGS

ENERGY_CORRECTIONS = ("auto", "none", "mp2020")
"""``Criteria.energy_correction``: ``auto`` (MP2020 where :func:`energy_correction` says the scale and the chemical
system need it), ``none`` or ``mp2020`` (always)."""

RAW_MPTRJ_SCALES = ("sevennet:7net-0", "sevennet:7net-l3i5")
"""Energy scales of potentials trained on MPtrj's uncorrected energies (GGA+U for the U elements' oxides and
fluorides, GGA elsewhere): the scales ``auto`` corrects. CHGNet learned MP2020-corrected energies, VASP here runs
plain PBE: neither is corrected."""

MP2020_SUFFIX = "+mp2020"
"""Appended to an energy scale's label when its energies carry the MP2020 corrections."""


@dataclasses.dataclass(frozen=True)
class Criteria:
    """Thresholds of the paper's classification (eV/atom) and the StructureMatcher settings for "distinct".

    ``unphysical_margin``: a relaxed crystal whose formation energy lies this far below the lowest known phase of
    its system is taken for a hole of the potential (see :func:`unphysical_flags`), not a discovery.
    ``energy_correction``: one of :data:`ENERGY_CORRECTIONS` (see :func:`energy_correction`).
    ``distinct_energy_window``: crystals whose formation energies differ by more than this (eV/atom) are taken as
    different without matching them (:func:`earlier_matches`); None compares every pair of one formula.
    """

    stable_hull: float = 0.10
    metastable_hull: float = 0.15
    max_formation_energy: float = 0.0
    unphysical_margin: float = 1.0
    energy_correction: str = "auto"
    distinct_energy_window: float | None = None
    matcher: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(MATCHER_SETTINGS))

    def __post_init__(self):
        if self.energy_correction not in ENERGY_CORRECTIONS:
            raise ValueError(
                f"energy_correction must be one of {', '.join(ENERGY_CORRECTIONS)}, not {self.energy_correction!r}."
            )
        if not self.stable_hull <= self.metastable_hull:
            raise ValueError(
                f"stable_hull ({self.stable_hull}) must not exceed metastable_hull ({self.metastable_hull})."
            )


def formation_energy_per_atom(
    composition: Composition | str, energy_per_atom: float, references: Mapping[str, float]
) -> float:
    """E_f = E/atom − Σ xᵢ·μᵢ, with μᵢ the energy per atom of element i's relaxed reference (same potential!)."""
    composition = Composition(composition)
    missing = sorted(str(el) for el in composition.elements if str(el) not in references)
    if missing:
        raise ValueError(
            f"No elemental reference energy for {', '.join(missing)}; relax the element(s) with the same engine first."
        )
    fractions = composition.fractional_composition
    return float(energy_per_atom - sum(fractions[el] * references[str(el)] for el in composition.elements))


def implied_elemental_energies(
    phases: Sequence[tuple[Composition | str, float, float]], elements: Sequence[str]
) -> dict[str, float]:
    """The elemental energies per atom that a database's (composition, energy per atom, formation energy) triples
    imply: the least-squares solution of E/atom − E_f = Σ xᵢ·μᵢ over its crystals. For judging new crystals on the
    database's own scale when its elemental references are not at hand."""
    import numpy as np

    fractions = np.array([[Composition(c).get_atomic_fraction(e) for e in elements] for c, _, _ in phases])
    offsets = np.array([energy - formation for _, energy, formation in phases])
    solution, *_ = np.linalg.lstsq(fractions, offsets, rcond=None)
    return dict(zip(elements, solution.tolist()))


@functools.cache
def _mp2020():
    """pymatgen's MP2020 scheme, without the POTCAR check (an MLIP has no POTCARs)."""
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    return MaterialsProject2020Compatibility(check_potcar=False)


def u_elements(anion: str = "O") -> dict[str, float]:
    """The elements the Materials Project computes with GGA+U in oxides (``anion`` O) or fluorides (F), with their
    U (eV), as pymatgen's MP2020 configuration lists them."""
    return dict(_mp2020().u_settings[anion])


def energy_correction(choice: str, energy_scale: str, elements: Sequence[str]) -> str:
    """``none`` or ``mp2020``: what ``choice`` (one of :data:`ENERGY_CORRECTIONS`) means for crystals of the chemical
    system ``elements`` on ``energy_scale``. ``auto`` is ``mp2020`` for a scale of :data:`RAW_MPTRJ_SCALES` in a
    system holding O or F together with an element of :func:`u_elements`, else ``none``; the choice is made per
    system, never per crystal, so that every crystal of one hull carries the same corrections."""
    if choice not in ENERGY_CORRECTIONS:
        raise ValueError(f"energy_correction must be one of {', '.join(ENERGY_CORRECTIONS)}, not {choice!r}.")
    if choice != "auto":
        return choice
    needs_u = any(anion in elements and set(u_elements(anion)) & set(elements) for anion in ("O", "F"))
    return "mp2020" if needs_u and energy_scale in RAW_MPTRJ_SCALES else "none"


def corrected_scale(energy_scale: str, correction: str) -> str:
    """The label of ``energy_scale`` after ``correction`` (``none`` or ``mp2020``)."""
    return energy_scale + MP2020_SUFFIX if correction == "mp2020" else energy_scale


def shared_hull_refusal(
    known_scales: Sequence[str], relaxation_scale: str, elements: Sequence[str], choice: str = "auto"
) -> str | None:
    """Why known phases on ``known_scales`` (blank: not recorded) cannot join a hull with crystals relaxed on
    ``relaxation_scale`` and assessed with ``choice`` of correction in the system ``elements``, or None if they can."""
    expected = corrected_scale(relaxation_scale, energy_correction(choice, relaxation_scale, elements))
    foreign = sorted(set(known_scales) - {expected, ""})
    if not foreign:
        return None
    return (
        f"the known phases' formation energies are on the energy scale {', '.join(foreign)} and the new crystals' "
        f"would be on {expected}: energies of two scales never share a hull. Relax with the potential and model the "
        "known phases were relaxed with, rebuild the database with this one, or leave the known phases off the hull."
    )


def mp2020_corrections(structures: Sequence[Structure], energies_per_atom: Sequence[float]) -> list[float]:
    """The MP2020 correction (eV/atom, to add) of each crystal with its raw MPtrj-scale energy: anion corrections
    (oxide, peroxide, superoxide by the O–O bonds; F, Se, S, …) and the GGA/GGA+U mixing correction of the U elements
    in oxides and fluorides, each crystal taken as GGA+U where the Materials Project would have used U. Elements
    get 0, so raw elemental references stay valid."""
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    scheme = _mp2020()
    corrections = []
    for structure, energy in zip(structures, energies_per_atom):
        present = {str(element) for element in structure.composition.elements}
        hubbards = {}
        for anion in ("F", "O"):  # MP: fluorides take precedence over oxides
            if anion in present and present & set(scheme.u_settings[anion]):
                hubbards = {element: scheme.u_settings[anion].get(element, 0.0) for element in present}
                break
        entry = ComputedStructureEntry(
            structure,
            energy * len(structure),
            parameters={"run_type": "GGA+U" if hubbards else "GGA", "hubbards": hubbards},
        )
        adjustments = scheme.get_adjustments(entry)
        corrections.append(float(sum(adjustment.value for adjustment in adjustments) / len(structure)))
    return corrections


def phase_diagram(phases: Sequence[tuple[Composition | str, float]], elements: Sequence[str]) -> PhaseDiagram:
    """The convex hull of ``phases`` — (composition, formation energy per atom) pairs — and the pure ``elements``."""
    entries = [PDEntry(Composition({element: 1}), 0.0, name=element) for element in elements]
    for composition, formation_energy in phases:
        composition = Composition(composition)
        foreign = sorted(str(el) for el in composition.elements if str(el) not in elements)
        if foreign:
            raise ValueError(
                f"{composition.reduced_formula} contains {', '.join(foreign)}, outside {'-'.join(elements)}."
            )
        entries.append(PDEntry(composition, formation_energy * composition.num_atoms))
    return PhaseDiagram(entries, elements=[Element(e) for e in elements])


def energies_above_hull(
    phases: Sequence[tuple[Composition | str, float]], elements: Sequence[str], hull_phases=None
) -> list[float]:
    """Energy above the hull (eV/atom, ≥ 0) of each of ``phases``; the hull is built from ``hull_phases`` (default:
    the phases themselves) plus the elements, so a phase below the known hull gets 0 only when it is part of it."""
    hull_phases = list(phases) if hull_phases is None else list(hull_phases)
    diagram = phase_diagram(hull_phases, elements)
    energies = []
    for composition, formation_energy in phases:
        composition = Composition(composition)
        entry = PDEntry(composition, formation_energy * composition.num_atoms)
        energies.append(float(diagram.get_e_above_hull(entry, allow_negative=True)))
    return energies


def classify(
    formation_energy: float, energy_above_hull: float, criteria: Criteria = Criteria(), elements: int = 2
) -> str:
    """``stable``, ``metastable`` or ``unstable`` by the paper's thresholds for a compound; ``elemental`` for a crystal
    of one element (``elements`` 1)."""
    if elements < 2:
        return "elemental"
    if formation_energy < criteria.max_formation_energy:
        if energy_above_hull < criteria.stable_hull:
            return "stable"
        if energy_above_hull < criteria.metastable_hull:
            return "metastable"
    return "unstable"


def unphysical_flags(
    formation_energies: Sequence[float], known_formation_energies: Sequence[float], criteria: Criteria = Criteria()
) -> list[bool]:
    """For each formation energy (eV/atom): True if it lies more than ``criteria.unphysical_margin`` below the lowest
    of ``known_formation_energies`` (the system's database at the same level of theory). Without known phases
    nothing is flagged: there is nothing to be far below. SevenNet-0's holes in Bi–Se reach −2.3 and −11.8 eV/atom
    where the lowest real crystal lies at −0.41."""
    if not known_formation_energies:
        return [False] * len(formation_energies)
    floor = min(known_formation_energies) - criteria.unphysical_margin
    return [energy < floor for energy in formation_energies]


def earlier_matches(
    candidates: Sequence[Structure],
    known: Sequence[Structure],
    criteria: Criteria = Criteria(),
    among_candidates: bool = True,
    energies: Sequence[float] | None = None,
) -> list[int | None]:
    """For each candidate: None if it matches no ``known`` structure and (if ``among_candidates``) no earlier
    distinct candidate; else -1 (it matches a known structure) or the index of the earlier distinct candidate it
    matches. With ``energies`` (one per candidate, eV/atom) and ``criteria.distinct_energy_window``, two candidates
    whose energies differ by more than the window are never compared: a relaxed crystal and its copy lie at one
    minimum, and a database of thousands is deduplicated in minutes instead of hours. Known structures are always
    compared. Each structure is reduced once (:func:`matcher_reduced`), not once per pair."""
    matcher = StructureMatcher(**criteria.matcher)
    primitive_cell = criteria.matcher.get("primitive_cell", True)
    window = criteria.distinct_energy_window if energies is not None else None
    known_by_formula: dict[str, list[Structure]] = {}
    for structure in known:
        known_by_formula.setdefault(structure.composition.reduced_formula, []).append(structure)
    reduced_known: dict[str, list[Structure]] = {}  # a formula's known structures, reduced when first asked for
    kept_by_formula: dict[str, list[tuple[int, Structure]]] = {}  # distinct candidates: (index, reduced)
    matches: list[int | None] = []
    for index, candidate in enumerate(candidates):
        formula = candidate.composition.reduced_formula
        if formula not in reduced_known:
            reduced_known[formula] = [matcher_reduced(s, primitive_cell) for s in known_by_formula.get(formula, [])]
        reduced = matcher_reduced(candidate, primitive_cell)
        match = None
        if any(matcher.fit(reduced, other, skip_structure_reduction=True) for other in reduced_known[formula]):
            match = -1
        elif among_candidates:
            for earlier, other in kept_by_formula.get(formula, []):
                if window is not None and abs(energies[earlier] - energies[index]) > window:
                    continue
                if matcher.fit(reduced, other, skip_structure_reduction=True):
                    match = earlier
                    break
            if match is None:
                kept_by_formula.setdefault(formula, []).append((index, reduced))
        matches.append(match)
    return matches


def matcher_reduced(structure: Structure, primitive_cell: bool = True) -> Structure:
    """``structure`` as StructureMatcher reduces it before each comparison: Niggli-reduced, then (with
    ``primitive_cell``) primitive. Reducing once and matching with ``skip_structure_reduction`` gives the same
    answers; the reduction took six sevenths of :func:`earlier_matches`'s time."""
    reduced = structure.get_reduced_structure(reduction_algo="niggli")
    return reduced.get_primitive_structure() if primitive_cell else reduced


def distinct_flags(
    candidates: Sequence[Structure],
    known: Sequence[Structure],
    criteria: Criteria = Criteria(),
    among_candidates: bool = True,
    energies: Sequence[float] | None = None,
) -> list[bool]:
    """For each candidate: True if it matches no ``known`` structure and (if ``among_candidates``) no earlier
    distinct candidate (:func:`earlier_matches`). ``distinct_flags(c, [])`` is uniqueness,
    ``distinct_flags(c, ref, among_candidates=False)`` novelty against ``ref``."""
    return [match is None for match in earlier_matches(candidates, known, criteria, among_candidates, energies)]


def _bi_a7() -> Structure:
    """Bi: A7 (R-3m, a 4.546, c 11.862 Å, z 0.2341), its 2-atom primitive cell."""
    conventional = Structure.from_spacegroup("R-3m", Lattice.hexagonal(4.546, 11.862), ["Bi"], [[0, 0, 0.2341]])
    return conventional.get_primitive_structure()


def _bcc(element: str, a: float) -> Structure:
    """The 1-atom primitive cell of the bcc crystal of ``element`` with cubic edge ``a`` (Å)."""
    return Structure(Lattice.cubic(a), [element, element], [[0, 0, 0], [0.5] * 3]).get_primitive_structure()


REFERENCE_CRYSTALS = {
    "Bi": _bi_a7,
    "Se": lambda: Structure.from_spacegroup(152, Lattice.hexagonal(4.366, 4.954), ["Se"], [[0.2254, 0, 1 / 3]]),
    "V": lambda: _bcc("V", 3.03),
    "Li": lambda: _bcc("Li", 3.51),
    "Co": lambda: Structure(
        Lattice.hexagonal(2.507, 4.070), ["Co", "Co"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
    ),
    "O": lambda: Structure(Lattice.tetragonal(3.3, 4.3), ["O", "O"], [[0, 0, 0.605 / 4.3], [0, 0, -0.605 / 4.3]]),
}
"""Element → its ground-state crystal at experimental geometry (the relaxation takes it to the engine's minimum).
Se: trigonal A8 (P3₁21, a 4.366, c 4.954 Å, x 0.2254); V: bcc (a 3.03 Å); Li: bcc (a 3.51 Å); Co: hcp (a 2.507,
c 4.070 Å); O: solid O₂, one 1.21 Å molecule per tetragonal cell (a 3.3, c 4.3 Å) — SevenNet-0 relaxes these to
−1.913 (Li), −7.073 (Co) and −4.885 (O) eV/atom, against the Materials Project's PBE −1.909, −7.108 and −4.948."""


def reference_structure(element: str) -> Structure:
    """The crystal of ``element`` used as its formation-energy reference: :data:`REFERENCE_CRYSTALS`, else ASE's
    reference state (``ase.build.bulk``: the element's crystal structure and lattice constant from Kittel — fcc,
    bcc, hcp, diamond, bct, rhombohedral or orthorhombic with one or two atoms; Cd hcp, Ni fcc, Ta bcc, …). Elements
    whose ground state neither gives (Mn, Ga, B, P, S, Te, Pu, …) are refused with what to do instead."""
    if element in REFERENCE_CRYSTALS:
        return REFERENCE_CRYSTALS[element]()
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        return AseAtomsAdaptor.get_structure(bulk(element))
    except (ValueError, NotImplementedError, KeyError):
        raise ValueError(
            f"No built-in reference crystal for {element} (its ground state is none of ASE's one- or two-atom "
            "reference states); relax its ground-state crystal with the "
            "same engine and pass its energy per atom as a reference, or add it to "
            "aiida_ccdcgan.thermodynamics.REFERENCE_CRYSTALS."
        ) from None
