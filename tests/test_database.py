"""The database builder on tiny settings: templates → substituted → relaxed (CHGNet, a few steps) → hull → Group."""

import pytest
from aiida import orm
from aiida.engine import run_get_node
from dataset_files import QUICK_RELAX
from pymatgen.core import Lattice, Structure

from aiida_ccdcgan.dataset.records import CrystalRecord
from aiida_ccdcgan.tools.datasets import crystal_record

pytest.importorskip("chgnet")

from aiida_ccdcgan.workflows.database import DatabaseWorkChain, template_batch  # noqa: E402


@pytest.mark.slow
def test_database_builder_fills_a_group_ready_for_training(relax_code):
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5] * 3])
    cdi2 = Structure(
        Lattice.hexagonal(4.1, 6.8), ["Cd", "I", "I"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
    )
    templates = template_batch(
        [CrystalRecord("rocksalt", rocksalt.get_primitive_structure()), CrystalRecord("CdI2", cdi2)]
    )
    relax = {"engine": orm.Str("mlip"), "mlip": {"code": relax_code, "settings": orm.Dict(QUICK_RELAX)}}
    results, node = run_get_node(
        DatabaseWorkChain,
        elements=orm.List(["Bi", "Se"]),
        templates=templates,
        group_label=orm.Str("bise-tiny"),
        relax=relax,
    )
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    assert results["relaxed"].count == 3  # rock salt once (both assignments are one crystal), CdI2 both ways
    summary = results["summary"].get_dict()
    group = orm.load_group("bise-tiny")
    assert len(group.nodes) == summary["converged"] > 0
    records = sorted((crystal_record(n) for n in group.nodes), key=lambda r: r.source_id)
    assert {r.source_id for r in records} <= {"rocksalt_copy1", "CdI2_copy1", "CdI2_copy2"}
    assert all(r.formation_energy is not None and r.group_key in {"rocksalt", "CdI2"} for r in records)
    assert {p["composition"] for p in results["hull"]["stable_phases"]} >= {"Bi", "Se"}
    # provenance: each stored structure was created by the assessment, which used the relaxation's output
    creator = group.nodes[0].creator
    assert creator.inputs.relaxed.pk == results["relaxed"].pk
