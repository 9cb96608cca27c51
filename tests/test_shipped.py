"""The Bi–Se database shipped with the package: readable offline, consistent with its build record, stored once."""

from aiida import orm

from aiida_ccdcgan.dataset.shipped import bise_build_record, load_bise_database
from aiida_ccdcgan.thermodynamics import phase_diagram
from aiida_ccdcgan.tools.shipped import bise_database


def test_the_shipped_database_matches_its_build_record():
    records = load_bise_database()
    build = bise_build_record()
    assert len(records) == build["stored"] == build["summary"]["converged"]
    assert {str(e) for r in records for e in r.structure.composition.elements} == {"Bi", "Se"}
    assert all(len(r.structure) <= 20 for r in records)  # (relaxation may stretch a cell past the 10 Å limit)
    assert len({r.source_id for r in records}) == len(records)
    assert all(r.group_key and r.properties["template"] == r.group_key for r in records)
    energies = [r.formation_energy for r in records]
    assert sum(e < 0 for e in energies) == build["summary"]["formation_energy_below_zero"]
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
