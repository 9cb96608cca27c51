"""Binary templates and element substitution for building a training database (pure pymatgen)."""

import pytest
from pymatgen.core import Lattice, Structure

from aiida_ccdcgan.dataset import read_dataset
from aiida_ccdcgan.dataset.records import CrystalRecord
from aiida_ccdcgan.dataset.templates import (
    TemplateFilter,
    aflow_templates,
    binary_templates,
    rescale_to_bonds,
    substitute,
    substituted_records,
)
from aiida_ccdcgan.errors import DatasetError

BI_SE_BOND = 1.60 + 1.15  # pymatgen atomic radii of Bi and Se (Å)


def test_substitution_makes_both_assignments_rescaled_to_the_new_bonds():
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5] * 3])
    (only,) = substitute(rocksalt, ["Bi", "Se"])  # both assignments give the same crystal: one is kept
    assert only.composition.reduced_formula == "BiSe"
    assert min(d for row in only.distance_matrix for d in row if d > 0) == pytest.approx(BI_SE_BOND)

    cdi2 = Structure(
        Lattice.hexagonal(4.1, 6.8), ["Cd", "I", "I"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
    )
    first, second = substitute(cdi2, ["Bi", "Se"])
    assert (first.composition.reduced_formula, second.composition.reduced_formula) == ("BiSe2", "Bi2Se")
    with pytest.raises(DatasetError, match="different elements, at least as many"):
        substitute(cdi2, ["Bi", "Bi"])
    with pytest.raises(DatasetError, match="different elements, at least as many"):
        substitute(Structure(Lattice.cubic(5), ["Ca", "Ti", "O"], [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0]]), ["Li", "O"])


def test_substitution_in_a_ternary_system_takes_every_order_of_the_elements():
    """A binary template in Li–Co–O: the six ordered pairs; a ternary one: the six orders of all three."""
    cdi2 = Structure(
        Lattice.hexagonal(4.1, 6.8), ["Cd", "I", "I"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
    )
    formulas = [s.composition.reduced_formula for s in substitute(cdi2, ["Li", "Co", "O"])]
    assert formulas == ["LiCo2", "LiO2", "Li2Co", "CoO2", "Li2O", "Co2O"]  # Cd (less electronegative) gets the first
    perovskite = Structure(
        Lattice.cubic(3.9),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    orders = substitute(perovskite, ["Li", "Co", "O"])
    formulas = [s.composition.formula for s in orders]
    assert formulas == ["Li1 Co1 O3", "Li1 Co3 O1", "Li1 Co1 O3", "Li3 Co1 O1", "Li1 Co3 O1", "Li3 Co1 O1"]
    assert [str(s[0].specie) for s in orders] == ["Li", "Li", "Co", "Co", "O", "O"]  # on Sr's site, in that order
    with pytest.raises(DatasetError, match="no bond"):
        rescale_to_bonds(Structure(Lattice.cubic(3), ["Bi"], [[0, 0, 0]]))


def test_records_carry_template_ids_and_respect_the_paper_limits():
    cdi2 = Structure(
        Lattice.hexagonal(4.1, 6.8), ["Cd", "I", "I"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
    )
    big = cdi2.copy()
    big.make_supercell([3, 3, 1])  # 27 atoms: over the 20-atom limit
    templates = [CrystalRecord("CdI2", cdi2, group_key="CdI2"), CrystalRecord("big", big, group_key="big")]
    records = substituted_records(templates, ["Bi", "Se"])
    assert [r.source_id for r in records] == ["CdI2_copy1", "CdI2_copy2"]
    assert {r.group_key for r in records} == {"CdI2"} and records[1].properties == {"template": "CdI2", "assignment": 2}
    assert substituted_records(templates, ["Bi", "Se"], TemplateFilter(max_edge=4.0)) == []


def test_template_sources(shared_data):
    aflow = aflow_templates(2)  # ships with pymatgen: works with no data at all
    assert len(aflow) > 150 and all(len(r.structure.composition.elements) == 2 for r in aflow)
    assert len({r.source_id for r in aflow}) == len(aflow)  # labels shared by several prototypes are made unique
    assert {"AB_oP8_62_c_c-SnS", "AB_oP8_62_c_c-MnP", "AB_cF8_225_a_b"} <= {r.source_id for r in aflow}
    vo = binary_templates(read_dataset("vo-csv", shared_data / "vo_imatgen_dft.csv.gz"))
    assert len(vo) == 5687 and len({r.source_id for r in vo}) == 5687  # one per template (prototype_mp_id)
    assert all(r.formation_energy is None for r in vo[:10])
