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
from aiida_ccdcgan.thermodynamics import phase_diagram
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
    SevenNet-0) and the test's own Bi2Se3; the idealised BiSe stacking has nevskite's space group P-3m1."""
    phases = known_phases(["Bi", "Se"])
    bi2se3, bise = phases.values()
    assert [s.composition.reduced_formula for s in phases.values()] == ["Bi2Se3", "BiSe"]
    assert len(bi2se3) == 15 and len(bise) == 12
    assert SpacegroupAnalyzer(bise, symprec=0.01).get_space_group_symbol() == "P-3m1"
    assert SpacegroupAnalyzer(bi2se3, symprec=0.01).get_space_group_symbol() == "R-3m"
    matcher = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5)
    tetradymite = next(r for r in load_bise_database() if r.source_id == "A2B3_hR5_166_c_ac_copy1")
    assert matcher.fit(bi2se3, tetradymite.structure)
    assert matcher.fit(bi2se3, next(r for r in make_crystals() if r.source_id == "Bi2Se3-R-3m").structure)
    assert not matcher.fit(bise, tetradymite.structure)
    assert known_phases(["Bi"]) == {} and known_phases(["V", "O"]) == {}


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
