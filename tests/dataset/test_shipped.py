"""What ships with the package: the Bi–Se database (readable offline, consistent with its build record, stored
once, its energies reproducible) and the known Bi–Se phases."""

import random
from collections import Counter

from aiida import orm
from dataset_files import make_crystals
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_ccdcgan.common import extras
from aiida_ccdcgan.dataset.shipped import bise_build_record, known_phases, load_bise_database
from aiida_ccdcgan.relaxation import RelaxSettings, Status, relax_batch
from aiida_ccdcgan.representation.config import VoxelConfig
from aiida_ccdcgan.representation.encode import OutsideLimits, canonical_crystal, check_representable
from aiida_ccdcgan.thermodynamics import (
    energies_above_hull,
    formation_energy_per_atom,
    implied_elemental_energies,
    phase_diagram,
)
from aiida_ccdcgan.tools.shipped import bise_database


def test_the_shipped_database_matches_its_build_record():
    records = load_bise_database()
    build = bise_build_record()
    assert len(records) == build["stored"] == build["summary"]["distinct"] <= build["summary"]["converged"]
    assert {str(e) for r in records for e in r.structure.composition.elements} == {"Bi", "Se"}
    assert all(len(r.structure) <= 20 for r in records)  # (relaxation may stretch a cell past the 10 Å limit)
    assert len({r.source_id for r in records}) == len(records)
    assert all(r.group_key and r.properties["template"] == r.group_key for r in records)
    assert all(r.properties["templates"].split()[0] == r.group_key for r in records)
    classes = Counter(r.properties["classification"] for r in records)
    summary = build["summary"]
    assert (classes["stable"], classes["metastable"]) == (summary["distinct_stable"], summary["distinct_metastable"])
    diagram = phase_diagram([(r.structure.composition, r.formation_energy) for r in records], ["Bi", "Se"])
    compounds = {e.composition.reduced_formula for e in diagram.stable_entries} - {"Bi", "Se"}
    assert compounds == {p["composition"] for p in build["hull"]["stable_phases"]} - {"Bi", "Se"} == {"Bi2Se3"}


def test_bise_database_is_stored_once(group_label):
    dataset, group = bise_database(group_label)
    again, same_group = bise_database(group_label)
    assert again.pk == dataset.pk and same_group.pk == group.pk
    assert group.count() == bise_build_record()["stored"]
    assert dataset.filename == "bise_sevennet.extxyz" and dataset.get_content().count("Lattice=") == group.count()
    query = orm.QueryBuilder().append(orm.Group, filters={"id": group.pk}, tag="g")
    query.append(orm.StructureData, with_group="g", filters={"extras.formation_energy_per_atom": {"<": -0.4}})
    assert query.count() >= 1  # Bi2Se3 at −0.406 eV/atom


def test_known_phases_are_the_literature_crystals():
    """Bi2Se3 R-3m from its X-ray coordinates matches the tetradymite template of the shipped database (relaxed with
    SevenNet-0) and the test's own Bi2Se3; the idealised stackings have their phases' space groups; the
    representation holds the 5- and 7-atom rhombohedral phases but not BiSe's 12 atoms over 22.8 Å."""
    phases = known_phases(["Bi", "Se"])
    assert list(phases) == ["Bi2Se3 R-3m", "BiSe P-3m1", "Bi4Se3 R-3m", "Bi3Se4 R-3m"]
    assert [s.composition.reduced_formula for s in phases.values()] == ["Bi2Se3", "BiSe", "Bi4Se3", "Bi3Se4"]
    assert [len(s) for s in phases.values()] == [15, 12, 21, 21]
    assert [len(s.get_primitive_structure()) for s in phases.values()] == [5, 12, 7, 7]
    symbols = [SpacegroupAnalyzer(s, symprec=0.01).get_space_group_symbol() for s in phases.values()]
    assert symbols == ["R-3m", "P-3m1", "R-3m", "R-3m"]
    config = VoxelConfig(elements=("Bi", "Se"))
    representable = {}
    for name, structure in phases.items():
        try:
            check_representable(canonical_crystal(structure, config), config)
            representable[name] = True
        except OutsideLimits:
            representable[name] = False
    assert representable == {"Bi2Se3 R-3m": True, "BiSe P-3m1": False, "Bi4Se3 R-3m": True, "Bi3Se4 R-3m": True}
    bi2se3, bise = phases["Bi2Se3 R-3m"], phases["BiSe P-3m1"]
    matcher = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5)
    tetradymite = next(r for r in load_bise_database() if r.source_id == "A2B3_hR5_166_c_ac_copy1")
    assert matcher.fit(bi2se3, tetradymite.structure)
    assert matcher.fit(bi2se3, next(r for r in make_crystals() if r.source_id == "Bi2Se3-R-3m").structure)
    assert not matcher.fit(bise, tetradymite.structure)
    assert known_phases(["Bi"]) == {} and known_phases(["V", "O"]) == {}


def test_known_bi4se3_relaxes_below_the_shipped_hull():
    """The idealised Bi4Se3 R-3m, relaxed with the shipped database's settings, keeps its structure and lies below
    the database's hull (docs/evaluation.md quotes −2.5 meV/atom): a known phase the database lacks."""
    records = load_bise_database()
    settings = RelaxSettings.from_dict(bise_build_record()["relax"]["settings"])
    ideal = known_phases(["Bi", "Se"])["Bi4Se3 R-3m"]
    (result,) = relax_batch([AseAtomsAdaptor.get_atoms(ideal.get_primitive_structure())], settings)
    assert result.status == Status.CONVERGED
    relaxed = AseAtomsAdaptor.get_structure(result.atoms)
    assert StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5).fit(relaxed, ideal)
    phases = [(r.structure.composition, r.properties["energy_per_atom"], r.formation_energy) for r in records]
    references = implied_elemental_energies(phases, ["Bi", "Se"])
    formation = formation_energy_per_atom(relaxed.composition, result.energy_per_atom, references)
    hull = [(r.structure.composition, r.formation_energy) for r in records]
    (above,) = energies_above_hull([(relaxed.composition, formation)], ["Bi", "Se"], hull)
    assert -0.006 < above < -0.0005


def test_a_sample_of_shipped_crystals_re_relaxed_keeps_its_energies():
    """20 shipped crystals (seeded) relaxed again with the build record's settings land within 0.01 eV/atom of the
    energies that ship: the file, its record and the potential agree."""
    build = bise_build_record()
    settings = RelaxSettings.from_dict(build["relax"]["settings"])
    sample = random.Random(0).sample(load_bise_database(), 20)
    assert {r.properties[extras.ENERGY_SCALE] for r in sample} == {settings.energy_scale()}
    results = relax_batch([AseAtomsAdaptor.get_atoms(r.structure) for r in sample], settings)
    assert [result.status for result in results] == [Status.CONVERGED] * 20
    shifts = [abs(result.energy_per_atom - r.properties["energy_per_atom"]) for result, r in zip(results, sample)]
    assert max(shifts) < 0.01, shifts
