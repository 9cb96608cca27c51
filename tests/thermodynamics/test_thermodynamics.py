"""Formation energies, the convex hull and the paper's classification (pure pymatgen)."""

import pytest
from pymatgen.core import Lattice, Structure

from aiida_ccdcgan.relaxation.settings import OFFLINE_MODELS, RelaxSettings
from aiida_ccdcgan.thermodynamics import (
    RAW_MPTRJ_SCALES,
    Criteria,
    classify,
    distinct_flags,
    earlier_matches,
    energies_above_hull,
    energy_correction,
    formation_energy_per_atom,
    implied_elemental_energies,
    mp2020_corrections,
    phase_diagram,
    reference_structure,
    shared_hull_refusal,
    unphysical_flags,
)


def test_formation_energy_from_references():
    # Bi2Se3 with the SevenNet-0 energies of mlip_notes.md §2b
    energy = formation_energy_per_atom("Bi2Se3", -4.0309, {"Bi": -3.8604, "Se": -3.4739})
    assert energy == pytest.approx(-4.0309 - (2 * -3.8604 + 3 * -3.4739) / 5)
    with pytest.raises(ValueError, match="No elemental reference energy for Se"):
        formation_energy_per_atom("Bi2Se3", -4.0, {"Bi": -3.86})


def test_hull_matches_pymatgen_reference_values():
    """The values of mlip_notes.md §3: Bi2Se3 on the hull, BiSe 27.9 and Bi3Se4 44.8 meV/atom above it."""
    phases = [("Bi2Se3", -0.3935), ("BiSe", -0.30), ("Bi3Se4", -0.33)]
    assert energies_above_hull(phases, ["Bi", "Se"]) == pytest.approx([0.0, 0.027917, 0.044762], abs=1e-6)
    stable = {entry.composition.reduced_formula for entry in phase_diagram(phases, ["Bi", "Se"]).stable_entries}
    assert stable == {"Bi", "Se", "Bi2Se3"}
    # a candidate judged against a known hull that it is not part of: its distance can be negative (below it)
    assert energies_above_hull([("Bi2Se3", -0.5)], ["Bi", "Se"], hull_phases=phases)[0] == pytest.approx(-0.1065)
    with pytest.raises(ValueError, match="contains V, outside Bi-Se"):
        phase_diagram([("VSe2", -0.5)], ["Bi", "Se"])


@pytest.mark.parametrize(
    "formation_energy, above_hull, expected",
    [
        (-0.3, 0.0, "stable"),
        (-0.3, 0.0999, "stable"),
        (-0.3, 0.10, "metastable"),
        (-0.3, 0.1499, "metastable"),
        (-0.3, 0.15, "unstable"),
        (0.0, 0.0, "unstable"),  # E_f < 0 is required
    ],
)
def test_classification_follows_the_paper(formation_energy, above_hull, expected):
    assert classify(formation_energy, above_hull) == expected
    assert classify(formation_energy, above_hull, elements=1) == "elemental"  # a compound's word, never an element's


def test_criteria_are_checked():
    with pytest.raises(ValueError, match="must not exceed"):
        Criteria(stable_hull=0.2, metastable_hull=0.1)


def test_formation_energies_far_below_every_known_phase_are_unphysical():
    known = [-0.4059, -0.3375, 0.12]  # the shipped Bi–Se database's lowest, SevenNet-0
    assert unphysical_flags([-11.8, -2.26, -1.2, -0.45], known) == [True, True, False, False]
    assert unphysical_flags([-2.26], known, Criteria(unphysical_margin=2.0)) == [False]
    assert unphysical_flags([-11.8], []) == [False]  # nothing known: nothing to be far below


def test_distinct_against_known_and_each_other():
    rocksalt = Structure(Lattice.cubic(5.9), ["Bi", "Se"] * 4, _rocksalt_sites())
    primitive = rocksalt.get_primitive_structure()
    strained = primitive.copy()
    strained.apply_strain(0.05)
    other = Structure(Lattice.cubic(3.6), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])  # CsCl type
    assert distinct_flags([primitive, other, other.copy()], known=[rocksalt]) == [False, True, False]
    assert distinct_flags([strained], known=[]) == [True]


def _rocksalt_sites():
    corners = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    sites = []
    for corner in corners:
        sites += [corner, [(c + 0.5) % 1 for c in corner]]
    return sites


def test_reference_structures():
    bi, se = reference_structure("Bi"), reference_structure("Se")
    assert (len(bi), bi.get_space_group_info()[1]) == (2, 166)
    assert (len(se), se.get_space_group_info()[1]) == (3, 152)
    space_groups = {element: reference_structure(element).get_space_group_info()[1] for element in ("V", "Li", "Co")}
    assert space_groups == {"V": 229, "Li": 229, "Co": 194}  # bcc, bcc, hcp
    oxygen = reference_structure("O")
    assert oxygen.composition.reduced_formula == "O2" and oxygen.get_distance(0, 1) == pytest.approx(1.21)
    ase_states = {element: reference_structure(element) for element in ("Cd", "Ni", "Ta")}  # ASE's reference states
    assert {e: (len(s), s.get_space_group_info()[1]) for e, s in ase_states.items()} == {
        "Cd": (2, 194),
        "Ni": (1, 225),
        "Ta": (1, 229),
    }
    assert ase_states["Cd"].lattice.a == pytest.approx(2.98)
    with pytest.raises(ValueError, match="No built-in reference crystal for Mn"):
        reference_structure("Mn")  # α-Mn: 58 atoms, neither a built-in nor an ASE reference state


def test_assessment_is_stored_and_queryable(aiida_profile_clean):
    """assess_relaxed on a batch with hand-set energies; the results become extras a QueryBuilder can filter."""
    from aiida import orm

    from aiida_ccdcgan.calculations.functions.thermodynamics import assess
    from aiida_ccdcgan.data import StructureBatchData

    references = {"Bi": -3.86, "Se": -3.47}
    bi2se3 = Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(4.14, 28.6), ["Bi", "Se", "Se"], [[0, 0, 0.4008], [0, 0, 0], [0, 0, 0.2117]]
    ).get_primitive_structure()
    rocksalt = Structure(Lattice.cubic(5.9), ["Bi", "Se"] * 4, _rocksalt_sites()).get_primitive_structure()
    cscl = Structure(Lattice.cubic(3.6), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    mixture = (2 * -3.86 + 3 * -3.47) / 5
    relaxed = StructureBatchData.from_structures(
        [bi2se3, rocksalt, cscl, cscl],
        {
            "status": ["converged", "converged", "converged", "exploded"],
            "energy_per_atom": [mixture - 0.40, -3.665 - 0.25, -3.665 + 0.05, float("nan")],
        },
    )
    known = [{"composition": "BiSe", "formation_energy": -0.30}]
    node, _ = assess(
        relaxed,
        references,
        "test:scale",
        known_phases=known,
        known_structures=StructureBatchData.from_structures([cscl]),
    )
    assessed = node.outputs.assessed
    assert assessed.info("index").tolist() == [0, 1, 2]  # the exploded one is not assessed
    assert assessed.info("formation_energy") == pytest.approx([-0.40, -0.25, 0.05])
    assert assessed.info("classification").tolist() == ["stable", "stable", "unstable"]
    assert assessed.info("distinct").tolist() == [True, True, False]  # CsCl is in the "training data"
    # BiSe rock salt at −0.25 lies 0.05 above the known BiSe (−0.30), itself 0.04 above the Bi2Se3 tie line
    assert node.outputs.summary.get_dict() == {
        "relaxed": 4,
        "converged": 3,
        "unphysical": 0,
        "formation_energy_below_zero": 2,
        "stable": 2,
        "metastable": 0,
        "distinct": 2,
        "distinct_stable": 2,
        "distinct_metastable": 0,
        "mean_formation_energy": pytest.approx(-0.2),
        "energy_scale": "test:scale",
        "energy_correction": "none",
    }
    hull = node.outputs.hull.get_dict()
    assert {p["composition"] for p in hull["stable_phases"]} == {"Bi", "Se", "Bi2Se3"}

    query = orm.QueryBuilder().append(
        orm.StructureData,
        filters={"extras.e_above_hull": {"<": 0.10}, "extras.energy_scale": "test:scale"},
        project=["extras.formula", "extras.classification"],
    )
    assert sorted(query.all()) == [["Bi2Se3", "stable"], ["BiSe", "stable"]]


def test_mp2020_corrections_are_chosen_per_system_for_the_raw_mptrj_scales():
    """SevenNet's scales in a system with a +U element and O or F get MP2020; Bi–Se, Li–O and CHGNet do not."""
    assert all(RelaxSettings(model=model).energy_scale() in RAW_MPTRJ_SCALES for model in OFFLINE_MODELS["sevennet"])
    assert energy_correction("auto", "sevennet:7net-0", ["Li", "Co", "O"]) == "mp2020"
    assert energy_correction("auto", "sevennet:7net-l3i5", ["Fe", "F"]) == "mp2020"
    assert energy_correction("auto", "sevennet:7net-0", ["Li", "O"]) == "none"  # no +U element
    assert energy_correction("auto", "sevennet:7net-0", ["Bi", "Se"]) == "none"  # the Se correction stays off
    assert energy_correction("auto", "chgnet:0.3.0", ["Co", "O"]) == "none"  # CHGNet learned corrected energies
    assert energy_correction("mp2020", "sevennet:my.pth", ["Bi", "Se"]) == "mp2020"
    with pytest.raises(ValueError, match="energy_correction must be one of auto, none, mp2020"):
        Criteria(energy_correction="mp2023")

    coo = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.26), ["Co", "O"], [[0, 0, 0], [0.5] * 3])
    li2o = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["O", "Li"], [[0, 0, 0], [0.25] * 3])
    crystals = [coo.get_primitive_structure(), li2o.get_primitive_structure(), *map(reference_structure, ["O", "Co"])]
    corrections = mp2020_corrections(crystals, [-7.0, -5.0, -4.9, -7.0])
    # MP2020: oxide −0.687 eV per O, Co in an oxide −1.638 eV per Co; no element is corrected
    assert corrections == pytest.approx([(-0.687 - 1.638) / 2, -0.687 / 3, 0.0, 0.0], abs=1e-3)


def test_known_phases_of_another_energy_scale_are_refused():
    assert shared_hull_refusal(["sevennet:7net-0", ""], "sevennet:7net-0", ["Bi", "Se"]) is None
    assert shared_hull_refusal(["sevennet:7net-0+mp2020"], "sevennet:7net-0", ["Li", "Co", "O"]) is None
    message = shared_hull_refusal(["sevennet:7net-0"], "sevennet:7net-l3i5", ["Bi", "Se"])
    assert "on the energy scale sevennet:7net-0 and the new crystals' would be on sevennet:7net-l3i5" in message
    assert "never share a hull" in message
    # an uncorrected Li–Co–O database against the corrected assessment of new crystals
    assert "would be on sevennet:7net-0+mp2020" in shared_hull_refusal(
        ["sevennet:7net-0"], "sevennet:7net-0", ["Li", "Co", "O"]
    )


def test_earlier_matches_name_the_crystal_a_copy_repeats():
    """A copy points at the first crystal it repeats; with an energy window, crystals far apart in energy are
    never compared (a database's duplicates at one minimum are found, fast); known structures always are."""
    rocksalt = Structure(Lattice.cubic(5.9), ["Bi", "Se"] * 4, _rocksalt_sites())
    primitive = rocksalt.get_primitive_structure()
    cscl = Structure(Lattice.cubic(3.6), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    crystals, energies = [primitive, cscl, rocksalt, primitive], [-0.30, -0.10, -0.31, 0.50]
    assert earlier_matches(crystals, []) == [None, None, 0, 0]
    windowed = earlier_matches(crystals, [], Criteria(distinct_energy_window=0.02), energies=energies)
    assert windowed == [None, None, 0, None]  # the last one is 0.8 eV/atom away: taken as another crystal
    assert earlier_matches([rocksalt, cscl], [primitive], Criteria(distinct_energy_window=0.02), True, [0.0, 0.0]) == [
        -1,
        None,
    ]
    assert distinct_flags(crystals, []) == [True, True, False, False]


def test_matching_each_crystal_reduced_once_answers_as_structure_matcher_does():
    """``earlier_matches`` reduces every crystal once and matches the reduced cells; its answers are those of
    StructureMatcher.fit on the crystals as given, pair by pair: a sheared cell and a supercell of the known crystal,
    that crystal stretched 50 % along one axis, another structure type and its own sheared cell."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    rocksalt = Structure(Lattice.cubic(5.9), ["Bi", "Se"] * 4, _rocksalt_sites())
    primitive = rocksalt.get_primitive_structure()
    sheared, supercell, stretched = primitive.copy(), primitive.copy(), primitive.copy()
    sheared.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 1]])  # the same crystal in a cell that is not Niggli's
    supercell.make_supercell([2, 1, 1])
    stretched.apply_strain([0.5, 0, 0])
    cscl = Structure(Lattice.cubic(3.6), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cscl_sheared = cscl.copy()
    cscl_sheared.make_supercell([[1, 0, 2], [0, 1, 0], [0, 0, 1]])
    crystals = [sheared, stretched, cscl, supercell, cscl_sheared]
    matcher = StructureMatcher(**Criteria().matcher)
    expected, kept = [], []
    for index, crystal in enumerate(crystals):  # the definition, one StructureMatcher.fit per pair
        match = (
            -1 if matcher.fit(crystal, rocksalt) else next((k for k in kept if matcher.fit(crystal, crystals[k])), None)
        )
        kept += [index] if match is None else []
        expected.append(match)
    assert earlier_matches(crystals, [rocksalt]) == expected == [-1, None, None, -1, 2]


def test_implied_elemental_energies_recover_the_references_a_database_was_built_with():
    """Energies made from formation energies with μ(Bi) = −3.86, μ(Se) = −3.47 eV/atom give those μ back, and
    formation energies computed with them agree with the database's."""
    references = {"Bi": -3.86, "Se": -3.47}
    formations = {"Bi": 0.0, "Se": 0.0, "Bi2Se3": -0.41, "BiSe": -0.30, "Bi4Se3": -0.28}
    phases = [
        (formula, formation + (-formation_energy_per_atom(formula, 0.0, references)), formation)
        for formula, formation in formations.items()
    ]  # E/atom = E_f + Σ xᵢ·μᵢ
    implied = implied_elemental_energies(phases, ["Bi", "Se"])
    assert implied == pytest.approx(references, abs=1e-9)
    assert formation_energy_per_atom("Bi2Se3", phases[2][1], implied) == pytest.approx(-0.41, abs=1e-9)
