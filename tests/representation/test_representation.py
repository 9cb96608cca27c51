"""The crystal ↔ voxel representation on synthetic cells: exact round trips, periodicity, limits, failures."""

import dataclasses

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from aiida_ccdcgan.dataset import read_dataset
from aiida_ccdcgan.errors import RepresentationError
from aiida_ccdcgan.representation import (
    DecodeFailure,
    VoxelConfig,
    canonical_crystal,
    decode_batch,
    decode_crystal,
    decode_lattice,
    encode_structures,
    lattice_voxels,
    site_voxels,
)
from aiida_ccdcgan.representation.encode import OutsideLimits, primitive_cell, reordered_cells
from aiida_ccdcgan.representation.reference import naive_lattice_voxel, naive_site_voxels
from aiida_ccdcgan.representation.roundtrip import roundtrip
from aiida_ccdcgan.representation.validity import Invalid, validity

BISE = VoxelConfig(elements=("Bi", "Se"))
MATCHER = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5)


def _round_trip(structure, config=BISE):
    sites, lattices = encode_structures([structure], config)
    return decode_crystal(sites[0], lattices[0], config)


@pytest.mark.parametrize(
    "lattice",
    [
        Lattice.cubic(5.1),
        Lattice.hexagonal(4.14, 9.6),
        Lattice.from_parameters(4.3, 5.7, 6.2, 78.0, 101.0, 66.0),  # triclinic
        Lattice.from_parameters(2.0, 4.0, 4.5, 90, 90, 90),  # a 2 Å edge
        Lattice.from_parameters(9.9, 4.5, 5.0, 95, 90, 100),  # a 9.9 Å edge
    ],
    ids=["cubic", "hexagonal", "triclinic", "2A-edge", "9.9A-edge"],
)
def test_lattice_parameters_come_back_within_one_percent(lattice):
    structure = Structure(lattice, ["Bi"], [[0.1, 0.2, 0.3]])
    crystal = canonical_crystal(structure, BISE)
    cell = decode_lattice(lattice_voxels([crystal], BISE)[0], BISE)
    decoded = Lattice(cell)
    np.testing.assert_allclose(decoded.abc, lattice.abc, rtol=0.01)
    np.testing.assert_allclose(decoded.angles, lattice.angles, rtol=0.01)
    assert np.allclose(cell, np.tril(cell)) and np.linalg.det(cell) > 0  # canonical frame


def test_orientation_and_handedness_do_not_matter():
    base = Structure(
        Lattice.from_parameters(4.3, 5.7, 6.2, 78.0, 101.0, 66.0),
        ["Bi", "Se", "Se"],
        [[0, 0, 0], [0.31, 0.52, 0.27], [0.7, 0.1, 0.6]],
    )
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    rotated = Structure(Lattice(base.lattice.matrix @ rotation.T), base.species, base.frac_coords)
    left_handed = Structure(Lattice(base.lattice.matrix[[1, 0, 2]]), base.species, base.frac_coords[:, [1, 0, 2]])
    assert np.linalg.det(left_handed.lattice.matrix) < 0
    for variant in (base, rotated, left_handed):
        result = _round_trip(variant)
        assert result.failure is None and MATCHER.fit(base, result.structure)
        assert MATCHER.get_rms_dist(base, result.structure)[0] < 1e-4


def test_atoms_near_faces_and_corners_survive_periodicity():
    structure = Structure(
        Lattice.hexagonal(4.2, 6.0),
        ["Bi", "Bi", "Se", "Se"],
        [[0.999, 0.001, 0.9995], [0.5, 0.5, 0.0005], [0.0, 0.999, 0.5], [0.25, 0.75, 0.999]],
    )
    result = _round_trip(structure)
    assert result.failure is None
    assert result.structure.composition == structure.composition
    assert MATCHER.get_rms_dist(structure, result.structure)[0] < 1e-4


def test_numerical_noise_does_not_change_the_atoms_images():
    """Atoms on special positions tie between equivalent images; a copy of the crystal with 1e-9 noise on every
    coordinate (as a file round trip gives) gets the same images, so the same voxels and crystal graph."""
    bi2se3 = Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(4.143, 28.636), ["Bi", "Se", "Se"], [[0, 0, 0.4008], [0, 0, 0], [0, 0, 0.2117]]
    ).get_primitive_structure()
    config = VoxelConfig(elements=("Bi", "Se"), site_grid=32, lattice_grid=16, sigma=0.35)
    exact = canonical_crystal(bi2se3, config).positions
    rng = np.random.default_rng(3)
    for _ in range(20):
        noisy = Structure(bi2se3.lattice, bi2se3.species, bi2se3.frac_coords + rng.normal(scale=1e-9, size=(5, 3)))
        assert np.abs(canonical_crystal(noisy, config).positions - exact).max() < 1e-6


def test_positions_are_not_quantised_to_the_grid():
    structure = Structure(Lattice.cubic(6.0), ["Bi", "Se"], [[0.0, 0.0, 0.0], [0.4137, 0.2291, 0.1703]])
    result = _round_trip(structure)
    bismuth, selenium = ([s.species_string for s in result.structure].index(e) for e in ("Bi", "Se"))
    error = abs(result.structure.get_distance(bismuth, selenium) - structure.get_distance(0, 1))
    assert error < 1e-3, error  # the 0.234 Å site voxels alone would put atoms up to 0.2 Å off


def test_fast_encoder_equals_the_naive_reference():
    structure = Structure(
        Lattice.from_parameters(4.3, 5.7, 6.2, 78.0, 101.0, 66.0),
        ["Bi", "Se", "Se"],
        [[0, 0, 0], [0.31, 0.52, 0.27], [0.7, 0.1, 0.6]],
    )
    crystal = canonical_crystal(structure, BISE)
    np.testing.assert_allclose(site_voxels([crystal], BISE)[0], naive_site_voxels(crystal, BISE), atol=1e-6)
    np.testing.assert_allclose(lattice_voxels([crystal], BISE)[0], naive_lattice_voxel(crystal, BISE), atol=1e-6)


def test_one_element_structure_fills_its_own_channel():
    selenium = Structure.from_spacegroup(152, Lattice.hexagonal(4.366, 4.954), ["Se"], [[0.2254, 0, 1 / 3]])
    sites, lattices = encode_structures([selenium], BISE)
    assert sites.shape == (1, 64, 64, 64, 2) and lattices.shape == (1, 32, 32, 32)
    assert sites.dtype == np.float32 and lattices.dtype == np.float32
    assert sites[0, ..., 0].max() == 0.0 and sites[0, ..., 1].max() > 0.7
    result = decode_crystal(sites[0], lattices[0], BISE)
    assert result.structure.composition.reduced_formula == "Se" and MATCHER.fit(selenium, result.structure)


def test_gaussians_follow_the_configuration():
    config = VoxelConfig(
        elements=("Bi", "Se"), sigma=0.3, threshold=0.05, site_grid=32, lattice_grid=16, box_length=12.0
    )
    structure = Structure(Lattice.cubic(4.0), ["Bi"], [[0, 0, 0]])
    sites, lattices = encode_structures([structure], config)
    assert sites.shape == (1, 32, 32, 32, 2) and lattices.shape == (1, 16, 16, 16)
    nonzero = sites[sites > 0]
    assert nonzero.min() >= 0.05 and nonzero.max() <= 1.0
    assert lattices[0, 8, 8, 8] == pytest.approx(1.0)
    assert config.digest() != BISE.digest() and VoxelConfig.from_dict(BISE.to_dict()) == BISE


def test_structure_beyond_the_limits_is_rejected_with_a_reason():
    chain = Structure(
        Lattice.from_parameters(20.0, 4.0, 4.0, 90, 90, 90),
        ["Bi", "Se", "Bi", "Se"],
        [[0, 0, 0], [0.25, 0.5, 0.5], [0.5, 0, 0], [0.8, 0.5, 0.5]],  # not a supercell: no smaller cell holds it
    )
    with pytest.raises(OutsideLimits, match="too large for the box") as error:
        encode_structures([chain], BISE)
    assert error.value.reason == "too_large_for_box"
    many = Structure(Lattice.cubic(12.0), ["Bi"] * 21, np.random.default_rng(0).random((21, 3)))
    with pytest.raises(OutsideLimits, match="21 atoms, more than"):
        encode_structures([many], BISE)
    huge = Structure(Lattice.from_parameters(25.0, 3.0, 3.0, 90, 90, 90), ["Bi"], [[0, 0, 0]])
    with pytest.raises(OutsideLimits, match="lattice voxel"):
        encode_structures([huge], BISE)


def test_a_supercell_is_encoded_as_its_primitive_cell():
    """A conventional cell or supercell is the same crystal as its primitive cell and gets the same voxels; the
    decoded crystal then has the primitive cell, which StructureMatcher matches to the input."""
    rock_salt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.0), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    primitive = rock_salt.get_primitive_structure()
    assert (len(rock_salt), len(primitive)) == (8, 2)
    config = VoxelConfig(elements=("Bi", "Se"), site_grid=32, lattice_grid=16, sigma=0.35)
    sites, lattices = encode_structures([rock_salt, primitive], config)
    np.testing.assert_array_equal(sites[0], sites[1])
    np.testing.assert_array_equal(lattices[0], lattices[1])
    result = decode_crystal(sites[0], lattices[0], config)
    assert len(result.structure) == 2 and MATCHER.fit(rock_salt, result.structure)
    as_given = dataclasses.replace(config, primitive_tolerance=None)
    assert len(canonical_crystal(rock_salt, as_given).channels) == 8
    assert as_given.digest() != config.digest()
    with pytest.raises(RepresentationError, match="primitive_tolerance must be positive"):
        VoxelConfig(elements=("Bi", "Se"), primitive_tolerance=0.0)


def test_a_primitive_cell_that_does_not_match_the_input_is_not_used(shared_data):
    """pymatgen reduces a few V–O rows (here mp-753_copy2_opt, 16 atoms) to an 8-atom cell that StructureMatcher
    does not match to the input; such a crystal keeps its given cell and still round-trips exactly."""
    records = read_dataset("vo-csv", shared_data / "vo_imatgen_dft.csv.gz")
    structure = next(r.structure for r in records if r.source_id == "mp-753_copy2_opt")
    pymatgen_primitive = structure.get_primitive_structure(tolerance=0.25)
    assert len(pymatgen_primitive) < len(structure) and not MATCHER.fit(structure, pymatgen_primitive)
    config = VoxelConfig(elements=("V", "O"))
    assert primitive_cell(structure, config) is structure
    result = _round_trip(structure, config)
    assert len(result.structure) == 16 and MATCHER.fit(structure, result.structure)


def test_reordered_cells_are_the_same_crystal_in_other_frames():
    """Each order of the cell vectors is the same crystal, seen by the canonical frame from another axis (the
    constraint's training views); a supercell is reduced before it is reordered."""
    structure = Structure(
        Lattice.from_parameters(4.3, 5.7, 6.2, 78.0, 101.0, 66.0),
        ["Bi", "Se", "Se"],
        [[0, 0, 0], [0.31, 0.52, 0.27], [0.7, 0.1, 0.6]],
    )
    views = reordered_cells(structure, 6, BISE)
    assert len(views) == 6 and views[0] == structure
    assert all(MATCHER.fit(structure, view) for view in views)
    cells = [canonical_crystal(view, BISE).cell for view in views]
    assert len({tuple(np.round(cell, 6).ravel()) for cell in cells}) == 6
    supercell = structure * (2, 1, 1)
    assert [len(view) for view in reordered_cells(supercell, 2, BISE)] == [3, 3]


def test_skewed_cell_is_reduced_instead_of_rejected():
    skewed = Structure(Lattice([[4.0, 0, 0], [12.3, 3.0, 0], [0, 0, 5.0]]), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    result = _round_trip(skewed)
    assert result.failure is None and MATCHER.fit(skewed, result.structure)


def test_two_atoms_0_3_angstrom_apart_are_invalid():
    close = Structure(Lattice.cubic(5.0), ["Bi", "Se"], [[0, 0, 0], [0.06, 0, 0]])
    reason, detail = validity(close, BISE)
    assert reason is Invalid.TOO_CLOSE and "0.30 Å apart" in detail
    own_image = Structure(Lattice.from_parameters(1.8, 6, 6, 90, 90, 90), ["Bi"], [[0, 0, 0]])
    assert validity(own_image, BISE)[0] is Invalid.TOO_CLOSE
    good = Structure(Lattice.cubic(5.0), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert validity(good, BISE) == (None, "")
    assert validity(Structure(Lattice.cubic(5.0), ["Te"], [[0, 0, 0]]), BISE)[0] is Invalid.FOREIGN_ELEMENT
    assert (
        validity(Structure(Lattice.cubic(25.0), ["Bi"] * 21, np.random.default_rng(0).random((21, 3))), BISE)[0]
        is Invalid.TOO_MANY_ATOMS
    )
    assert validity(good, VoxelConfig(elements=("Bi", "Se"), min_volume_per_atom=100))[0] is Invalid.SMALL_VOLUME


def test_decoding_failures_are_classified():
    structure = Structure(Lattice.cubic(5.0), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    sites, lattices = encode_structures([structure], BISE)
    assert decode_crystal(sites[0], np.zeros_like(lattices[0]), BISE).failure is DecodeFailure.LATTICE
    assert decode_crystal(np.zeros_like(sites[0]), lattices[0], BISE).failure is DecodeFailure.NO_ATOMS
    noise = np.random.default_rng(0).random(sites[0].shape).astype(np.float32)
    assert decode_crystal(noise, lattices[0], BISE).failure is DecodeFailure.TOO_MANY_ATOMS
    overlapping = sites[0].copy()
    overlapping[..., 1] = overlapping[..., 0]  # a Se atom exactly on every Bi atom
    result = decode_crystal(overlapping, lattices[0], BISE)
    assert result.failure is DecodeFailure.ATOMS_TOO_CLOSE and "0.00 Å apart" in result.detail
    steps = (np.arange(32) - 16) / 32
    d = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1)
    indefinite = np.array([[10.0, 12.0, 0.0], [12.0, 10.0, 0.0], [0.0, 0.0, 10.0]])  # no real cell has this metric
    voxel = np.exp(-np.einsum("...i,ij,...j->...", d, indefinite, d) / (2 * BISE.sigma**2))
    voxel[(voxel < BISE.threshold) | (voxel > 1)] = 0.0
    result = decode_crystal(sites[0], voxel, BISE)
    assert result.failure is DecodeFailure.LATTICE and "not positive definite" in result.detail
    nan = lattices[0].copy()
    nan[0, 0, 0] = np.nan
    assert "NaN" in decode_crystal(sites[0], nan, BISE).detail


def test_duplicate_peaks_merge_into_one_atom():
    structure = Structure(Lattice.cubic(5.0), ["Bi"], [[0, 0, 0]])
    sites, lattices = encode_structures([structure], BISE)
    plateau = np.minimum(sites[0] * 3, 1.0)  # a flat top of equal maxima, as a near-binary decoder gives
    result = decode_crystal(plateau, lattices[0], BISE)
    assert result.failure is None and len(result.structure) == 1


def test_bad_input_gives_clear_errors():
    with pytest.raises(RepresentationError, match="no atoms"):
        encode_structures([Structure(Lattice.cubic(4.0), [], [])], BISE)
    with pytest.raises(RepresentationError, match="Te is not one of the representation's elements \\(Bi, Se\\)"):
        encode_structures([Structure(Lattice.cubic(4.0), ["Te"], [[0, 0, 0]])], BISE)
    with pytest.raises(RepresentationError, match="NaN"):
        encode_structures([Structure(Lattice.cubic(4.0), ["Bi"], [[np.nan, 0, 0]])], BISE)
    with pytest.raises(RepresentationError, match=r"shape \(N, G, G, G, C\)"):
        decode_batch(np.zeros((2, 64, 64, 64)), np.zeros((2, 32, 32, 32)), BISE)
    with pytest.raises(RepresentationError, match=r"Site voxels must have shape \(64, 64, 64, 2\)"):
        decode_crystal(np.zeros((64, 64, 64, 3)), np.zeros((32, 32, 32)), BISE)
    with pytest.raises(RepresentationError, match="lattice voxel must have shape"):
        decode_lattice(np.zeros((16, 16, 16)), BISE)
    with pytest.raises(RepresentationError, match="repeats an element"):
        VoxelConfig(elements=("Te", "Bi", "Te"))
    with pytest.raises(RepresentationError, match="'Xx' is not an element symbol"):
        VoxelConfig(elements=("Xx",))
    with pytest.raises(RepresentationError, match="Unknown representation setting"):
        VoxelConfig.from_dict({"elements": ["Bi"], "sigma_typo": 1})


def test_roundtrip_report_on_known_crystals(crystals):
    structures = [record.structure for record in crystals]
    report = roundtrip(structures, None)
    assert report["n"] == 5 and report["within_limits"] == 5 and report["matched"] == 5
    assert report["match_rate"] == 1.0 and report["failures"] == {}
    assert report["encode_structures_per_s"] > 0 and report["decode_structures_per_s"] > 0
    fixed = roundtrip(structures[:4], ["Bi", "Se"], batch_size=2)
    assert fixed["matched"] == 4 and fixed["representation"]["elements"] == ["Bi", "Se"]


def test_partial_rdfs_count_each_pair_s_neighbours_per_atom():
    """Rock salt BiSe (a = 6 Å): every atom has 6 unlike neighbours at 3 Å and 12 like ones at 4.24 Å, periodic images
    included; each pair's Gaussians land in its own block, in the order of :func:`element_pairs`."""
    from aiida_ccdcgan.representation.pair_distribution import element_pairs, partial_rdf_features, partial_rdfs

    rock_salt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.0), ["Bi", "Se"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    centres, sigma = np.array([3.0, 3.5, 6.0**0.5 * 3**0.5]), 0.1
    assert element_pairs(["Bi", "Se"]) == [("Bi", "Bi"), ("Bi", "Se"), ("Se", "Se")]
    rdfs = partial_rdfs(rock_salt, ["Bi", "Se"], centres, sigma).reshape(3, 3)
    np.testing.assert_allclose(rdfs[:, 0], [0, 6, 0], atol=1e-6)  # ordered Bi–Se and Se–Bi pairs: 6 per atom
    np.testing.assert_allclose(rdfs[:, 1], 0, atol=1e-3)  # no distance near 3.5 Å
    np.testing.assert_allclose(rdfs[:, 2], [6, 0, 6], atol=1e-6)  # half the atoms have 12 like neighbours at 4.24 Å
    flipped = partial_rdfs(rock_salt, ["Se", "Bi"], centres, sigma).reshape(3, 3)
    np.testing.assert_allclose(flipped, rdfs[::-1], atol=1e-9)
    assert partial_rdf_features([rock_salt] * 2, ["Bi", "Se"], centres, sigma).shape == (2, 9)
    with pytest.raises(ValueError, match="BiSe has Se, which is not among the representation's elements"):
        partial_rdfs(rock_salt, ["Bi", "Te"], centres, sigma)
