"""Templates and element substitution: the raw material of a training database such as the paper's Bi–Se set.

The paper (and iMatGen's V–O data before it) took binary Materials Project structures as templates and put the two
new elements on their two sites both ways round (``_copy1`` / ``_copy2``). Here a template is a
:class:`CrystalRecord` of a crystal with at most as many species as the system has elements; :func:`substitute` puts
every ordered choice of the system's elements on the template's species (a binary template in a binary system: both
ways round, as the paper; in Li–Co–O: Li–Co, Co–Li, Li–O, …; a ternary template: all six orders), drops repeats,
rescales the cell so the shortest bond fits the new atoms, and :func:`substituted_records` applies the paper's filters
(≤ 20 atoms, longest cell edge < 10 Å) to the results.

Template sources: any dataset file (:func:`binary_templates`, e.g. the V–O CSV, one per template id) and the
prototypes of pymatgen's AFLOW library (:func:`aflow_templates`: 176 binary, 48 ternary), which ship with pymatgen,
so a database can be built on a fresh machine with no data at all.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Element, Structure

from ..errors import DatasetError
from .records import CrystalRecord


@dataclasses.dataclass(frozen=True)
class TemplateFilter:
    """Which substituted crystals enter a database: the paper's limits by default."""

    max_atoms: int = 20
    max_edge: float = 10.0


def within_limits(structure: Structure, limits: TemplateFilter) -> bool:
    """Whether ``structure`` has at most ``max_atoms`` atoms and every cell edge shorter than ``max_edge``."""
    return len(structure) <= limits.max_atoms and max(structure.lattice.abc) < limits.max_edge


def binary_templates(records: Iterable[CrystalRecord]) -> list[CrystalRecord]:
    """The two-element crystals of ``records``, one per ``group_key`` (template id) where the source gives one."""
    chosen, seen = [], set()
    for record in records:
        if len(record.structure.composition.elements) != 2:
            continue
        key = record.group_key or record.source_id
        if key in seen:
            continue
        seen.add(key)
        chosen.append(dataclasses.replace(record, source_id=key, formation_energy=None, properties={}))
    return chosen


def aflow_templates(species: int = 2) -> list[CrystalRecord]:
    """The prototypes with ``species`` elements of pymatgen's AFLOW prototype library (shipped with pymatgen; 176
    binary, 48 ternary), by AFLOW label.

    A label leaves out the free parameters, so a few prototypes share one (``AB_oP8_62_c_c``: SnS, FeB, GeS, MnP);
    those get the prototype's formula appended (``AB_oP8_62_c_c-SnS``) so every id is unique.
    """
    import pymatgen.analysis.prototypes as prototypes
    from monty.serialization import loadfn

    library = loadfn(Path(prototypes.__file__).parent / "aflow_prototypes.json.gz")
    chosen = [
        (entry["tags"]["aflow"], entry["snl"].structure)
        for entry in library
        if len(entry["snl"].structure.composition.elements) == species
    ]
    shared = {label for label, count in Counter(label for label, _ in chosen).items() if count > 1}
    records = []
    for label, structure in chosen:
        name = f"{label}-{structure.composition.reduced_formula}" if label in shared else label
        records.append(CrystalRecord(source_id=name, structure=structure, group_key=name))
    return records


def rescale_to_bonds(structure: Structure) -> Structure:
    """A copy scaled isotropically so the shortest interatomic distance equals the sum of the two atoms' radii."""
    distances = structure.distance_matrix + np.diag(np.full(len(structure), np.inf))
    if len(structure) == 1:
        raise DatasetError("A one-atom cell has no bond to rescale to; use a template with at least two atoms.")
    i, j = np.unravel_index(np.argmin(distances), distances.shape)
    target = sum(float(Element(structure[k].specie.symbol).atomic_radius) for k in (i, j))
    scaled = structure.copy()
    scaled.scale_lattice(structure.volume * (target / distances[i, j]) ** 3)
    return scaled


def substitute(template: Structure, elements: Sequence[str]) -> list[Structure]:
    """Every ordered choice of ``elements`` put on the template's species, each rescaled with
    :func:`rescale_to_bonds`; a crystal equal to an earlier one (StructureMatcher) is dropped.

    The template's species are ordered by electronegativity and the choices come in ``itertools.permutations``
    order, so a binary template with elements (A, B) gives assignment 1 with A where the more electropositive element
    was (Bi on V's sites in V–O) and assignment 2 the other way round, as the paper; with (Li, Co, O) a binary
    template gives Li–Co, Li–O, Co–Li, Co–O, O–Li, O–Co and a ternary one the six orders of all three.
    """
    species = sorted(template.composition.elements, key=lambda element: (element.X, element.symbol))
    if len(set(elements)) != len(elements) or len(species) > len(elements):
        raise DatasetError(
            f"Substitution needs different elements, at least as many as the template has species: "
            f"{template.composition.reduced_formula} and {list(elements)}."
        )
    matcher = StructureMatcher()
    results = []
    for choice in itertools.permutations(elements, len(species)):
        substituted = template.copy()
        substituted.replace_species(dict(zip(species, choice)))
        substituted = rescale_to_bonds(substituted)
        if not any(matcher.fit(substituted, earlier) for earlier in results):
            results.append(substituted)
    return results


def substituted_records(
    templates: Iterable[CrystalRecord], elements: Sequence[str], limits: TemplateFilter = TemplateFilter()
) -> list[CrystalRecord]:
    """Substitute ``elements`` into every template; keep those within ``limits``.

    Each result's ``source_id`` is ``<template>_copy<k>`` (k = 1, 2, …: the assignment, as the V–O data's ids),
    its ``group_key`` the template id (so a split keeps all copies on one side), and its properties record
    ``template`` and ``assignment``. No formation energy yet: relaxing comes next.
    """
    records = []
    for template in templates:
        for assignment, structure in enumerate(substitute(template.structure, elements), start=1):
            if not within_limits(structure, limits):
                continue
            records.append(
                CrystalRecord(
                    source_id=f"{template.source_id}_copy{assignment}",
                    structure=structure,
                    group_key=template.source_id,
                    properties={"template": template.source_id, "assignment": assignment},
                )
            )
    return records
