"""The database builder on tiny settings: templates → substituted → relaxed (CHGNet, a few steps) → hull → Group."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiida import orm
from aiida.engine import run_get_node
from dataset_files import QUICK_RELAX
from pymatgen.core import Lattice, Structure

from aiida_ccdcgan.data.structures import StructureBatchData
from aiida_ccdcgan.dataset.records import CrystalRecord
from aiida_ccdcgan.tools.datasets import crystal_record

pytest.importorskip("chgnet")

from aiida_ccdcgan.workflows.database import DatabaseWorkChain, template_batch  # noqa: E402
from aiida_ccdcgan.workflows.relax_and_assess import RelaxAndAssessWorkChain  # noqa: E402


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
    assert len(group.nodes) == summary["distinct"] > 0  # each crystal once
    records = sorted((crystal_record(n) for n in group.nodes), key=lambda r: r.source_id)
    assert {r.source_id for r in records} <= {"rocksalt_copy1", "CdI2_copy1", "CdI2_copy2"}
    assert all(r.formation_energy is not None and r.group_key in {"rocksalt", "CdI2"} for r in records)
    assert {p["composition"] for p in results["hull"]["stable_phases"]} >= {"Bi", "Se"}
    # provenance: each stored structure was created by the assessment, which used the relaxation's output
    creator = group.nodes[0].creator
    assert creator.inputs.relaxed.pk == results["relaxed"].pk


@pytest.mark.slow
def test_database_builder_in_a_ternary_system(relax_code):
    """Li–Co–O: a binary template gives the distinct ordered pairs, a ternary one the orders of all three; the
    references are relaxed for all three elements and the hull spans the ternary system."""
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5] * 3])
    perovskite = Structure(
        Lattice.cubic(3.9),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    templates = template_batch(
        [CrystalRecord("rocksalt", rocksalt.get_primitive_structure()), CrystalRecord("perovskite", perovskite)]
    )
    relax = {"engine": orm.Str("mlip"), "mlip": {"code": relax_code, "settings": orm.Dict(QUICK_RELAX)}}
    results, node = run_get_node(
        DatabaseWorkChain,
        elements=orm.List(["Li", "Co", "O"]),
        templates=templates,
        group_label=orm.Str("licoo-tiny"),
        relax=relax,
    )
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    substituted = results["relaxed"]
    formulas = sorted(s.composition.reduced_formula for s in substituted.get_structures())
    assert formulas == sorted(["LiCo", "Li2O2", "CoO", "LiCoO3", "Li3CoO", "LiCoO3", "LiCo3O", "Li3CoO", "LiCo3O"])
    assert results["hull"]["elements"] == ["Co", "Li", "O"]
    records = [crystal_record(n) for n in orm.load_group("licoo-tiny").nodes]
    assert len(records) == results["summary"]["distinct"] > 0
    assert all(r.formation_energy is not None and r.group_key in {"rocksalt", "perovskite"} for r in records)


@pytest.mark.slow
def test_database_of_known_crystals_relaxed_as_given(relax_code):
    """substitute False: known crystals of the system (e.g. a Materials Project import) relaxed as they are; a crystal
    of another system ends the build with an exit code before anything is relaxed."""
    li2o = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.63), ["O", "Li"], [[0, 0, 0], [0.25] * 3])
    licoo2 = Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(2.82, 14.05), ["Li", "Co", "O"], [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.2604]]
    )
    records = [
        CrystalRecord("mp-1960", li2o.get_primitive_structure()),
        CrystalRecord("mp-22526", licoo2.get_primitive_structure()),  # 4 atoms: the 14 Å hexagonal cell is too long
    ]
    relax = {"engine": orm.Str("mlip"), "mlip": {"code": relax_code, "settings": orm.Dict(QUICK_RELAX)}}
    inputs = {"elements": orm.List(["Li", "Co", "O"]), "substitute": orm.Bool(False), "relax": relax}
    results, node = run_get_node(
        DatabaseWorkChain, templates=template_batch(records), group_label=orm.Str("licoo-known"), **inputs
    )
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    formulas = [s.composition.reduced_formula for s in results["relaxed"].get_structures()]
    assert formulas == ["Li2O", "LiCoO2"]
    stored = {r.source_id: r for r in (crystal_record(n) for n in orm.load_group("licoo-known").nodes)}
    assert set(stored) <= {"mp-1960", "mp-22526"} and len(stored) == results["summary"]["converged"] > 0
    assert all(r.group_key == r.source_id and r.formation_energy is not None for r in stored.values())

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    foreign = template_batch([*records, CrystalRecord("NaCl", nacl)])
    _, refused = run_get_node(DatabaseWorkChain, templates=foreign, group_label=orm.Str("licoo-refused"), **inputs)
    assert refused.exit_status == DatabaseWorkChain.exit_codes.ERROR_FOREIGN_ELEMENTS.status
    assert "NaCl is NaCl, outside Co-Li-O" in refused.exit_message and not refused.called


@pytest.mark.slow
def test_relax_and_assess_puts_known_phases_on_the_hull_and_judges_distinct_against_known_crystals(relax_code):
    """The workflow the database builder and ``evaluate`` share: known phases join the hull (a BiSe phase far below
    every crystal here puts them all above it), a crystal among the known structures is not distinct, the reference
    energies come out, and two chunks give one assessment in input order."""
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.8), ["Bi", "Se"], [[0, 0, 0], [0.5] * 3])
    cscl = Structure(Lattice.cubic(3.5), ["Bi", "Se"], [[0, 0, 0], [0.5] * 3])
    batch = StructureBatchData.from_structures([rocksalt.get_primitive_structure(), cscl])
    relax = {"engine": orm.Str("mlip"), "mlip": {"code": relax_code, "settings": orm.Dict(QUICK_RELAX)}}
    results, node = run_get_node(
        RelaxAndAssessWorkChain,
        structures=batch,
        elements=orm.List(["Bi", "Se"]),
        chunk_size=orm.Int(1),
        known_phases=orm.List([{"composition": "BiSe", "formation_energy": -0.9}]),
        known_structures=StructureBatchData.from_structures([cscl]),
        relax=relax,
    )
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    assert sorted(results["references"]) == ["Bi", "Se"]
    assert len([c for c in node.called if c.process_label == "RelaxWorkChain"]) == 2  # one per chunk
    assessed = results["assessed"]
    assert assessed.info("index").tolist() == [0, 1]  # both converge (rock salt and CsCl BiSe), input order kept
    formation = assessed.info("formation_energy").tolist()
    assert assessed.info("e_above_hull").tolist() == pytest.approx([energy + 0.9 for energy in formation], abs=1e-6)
    assert assessed.info("distinct").tolist() == [True, False]  # the CsCl cell is among the known crystals
    hull = [(p["composition"], p["formation_energy"]) for p in results["hull"]["stable_phases"]]
    assert hull == [("Bi", 0.0), ("BiSe", pytest.approx(-0.9)), ("Se", 0.0)]
    assert results["relaxed"].count == 2 and results["summary"]["converged"] == 2


BUILD = """
import json, sys
from aiida import orm
from aiida.engine import run_get_node
from aiida.manage.caching import disable_caching, enable_caching
from pymatgen.core import Lattice, Structure
from aiida_ccdcgan.calculations.relax import RelaxCalculation
from aiida_ccdcgan.data.structures import StructureBatchData
from aiida_ccdcgan.dataset.records import CrystalRecord
from aiida_ccdcgan.workflows.database import DatabaseWorkChain, template_batch

group, code, settings, caching = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4] == "cache"
rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5] * 3])
cdi2 = Structure(Lattice.hexagonal(4.1, 6.8), ["Cd", "I", "I"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
templates = [
    CrystalRecord("rocksalt", rocksalt.get_primitive_structure()),
    CrystalRecord("rocksalt-conventional", rocksalt),  # the same crystal in a 4× cell: relaxes to the same one
    CrystalRecord("CdI2", cdi2),
]
relax = {"engine": orm.Str("mlip"), "mlip": {"code": orm.load_code(code), "settings": orm.Dict(settings)}}
with enable_caching(identifier=RelaxCalculation.build_process_type()) if caching else disable_caching():
    _, node = run_get_node(
        DatabaseWorkChain,
        elements=orm.List(["Bi", "Se"]),
        templates=template_batch(templates),
        group_label=orm.Str(group),
        chunk_size=orm.Int(1),
        relax=relax,
    )
print("BUILD", node.pk, node.exit_status)
"""


def _chunk_calculations(after: int) -> list:
    """The relaxations of a build's chunks (not of its references) after node ``after`` that finished well."""
    query = orm.QueryBuilder().append(orm.WorkflowNode, filters={"id": {">": after}}, tag="evaluation", project=[])
    query.append(
        orm.WorkflowNode, with_incoming="evaluation", edge_filters={"label": {"like": "relax_chunk_%"}}, tag="chunk"
    )
    sealed = {"attributes.sealed": True, "attributes.exit_status": 0}  # sealed: only then a cache source
    query.append(orm.CalcJobNode, with_incoming="chunk", filters=sealed, project="*")
    return query.all(flat=True)


@pytest.mark.slow
def test_a_stopped_build_goes_on_to_the_database_of_one_sitting(relax_code, aiida_profile, tmp_path):
    """A chunked build killed after its first chunk, run again under caching, relaxes only the missing chunks and
    gives the database of a build in one sitting; a crystal reached from two templates is kept once, naming both."""
    script = tmp_path / "build.py"
    script.write_text(BUILD)
    verdi = [str(Path(sys.executable).with_name("verdi")), "-p", aiida_profile.name, "run", str(script)]
    arguments = [relax_code.full_label, json.dumps(QUICK_RELAX)]
    start = orm.QueryBuilder().append(orm.Node, project="id").order_by({orm.Node: {"id": "desc"}}).first()[0]

    first = subprocess.Popen([*verdi, "stopped", *arguments, "cache"], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not _chunk_calculations(start) and time.time() < deadline and first.poll() is None:
        time.sleep(0.5)
    first.kill()
    first.wait()
    relaxed_before = len(_chunk_calculations(start))
    stopped = (relaxed_before, first.returncode, first.stdout.read())
    assert relaxed_before >= 1 and first.returncode != 0, stopped  # stopped after a chunk or more, before the end

    def build(group: str, caching: str) -> orm.WorkflowNode:
        done = subprocess.run([*verdi, group, *arguments, caching], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        pk, status = done.stdout.split("BUILD")[1].split()
        assert status == "0", done.stdout
        return orm.load_node(int(pk))

    resumed = build("stopped", "cache")
    (evaluation,) = [c for c in resumed.called if c.process_label == "RelaxAndAssessWorkChain"]
    chunks = [c for c in evaluation.called if c.process_label == "RelaxWorkChain"]
    assert len(chunks) == 4  # rock salt (primitive), rock salt (conventional), CdI2 both ways: one chunk each
    from_cache = [any(j.base.caching.is_created_from_cache for j in chunk.called) for chunk in chunks]
    assert sum(from_cache) >= relaxed_before and not all(from_cache), (from_cache, stopped)  # only what was missing

    single = build("one-sitting", "no-cache")
    assert not any(j.base.caching.is_created_from_cache for j in single.called_descendants)

    def database(label: str) -> list:
        return sorted(
            (r.source_id, round(r.formation_energy, 6)) for r in map(crystal_record, orm.load_group(label).nodes)
        )

    def templates_of(label: str) -> dict:
        return {n.base.extras.get("source_id"): n.base.extras.get("templates") for n in orm.load_group(label).nodes}

    assert database("stopped") == database("one-sitting")
    assert templates_of("stopped") == templates_of("one-sitting")
    assert templates_of("stopped")["rocksalt_copy1"] == ["rocksalt", "rocksalt-conventional"]
    assert "rocksalt-conventional_copy1" not in templates_of("stopped")
    assert resumed.outputs.summary["converged"] == 4 and resumed.outputs.summary["distinct"] == 3
