"""``ccdcgan.inverse_design``: its calcfunctions and protocols, and the whole loop through the daemon — straight
through, and interrupted by a daemon restart in the middle."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node, submit
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from dataset_files import QUICK_RELAX, TINY_CONFIG, make_crystals
from test_calculations import _dataset

from aiida_ccdcgan.calculations.functions.design import (
    design_summary,
    known_before_round,
    training_set,
    valid_candidates,
)
from aiida_ccdcgan.data.structures import StructureBatchData
from aiida_ccdcgan.scripts.train import MODEL_FILES
from aiida_ccdcgan.tools.design import group_prefix, query_recipes, round_table
from aiida_ccdcgan.workflows.inverse_design import InverseDesignWorkChain


def test_training_set_and_valid_candidates(tmp_path):
    batch = training_set(_dataset(tmp_path))
    assert batch.count == 4 and batch.info("formation_energy").tolist() == [-0.39, 0.0, 0.0, -0.21]
    structures = [record.structure for record in make_crystals()[:3]]
    candidates = StructureBatchData.from_structures(
        structures, {"sample": [0, 4, 9], "outcome": ["valid", "atoms_too_close", "valid"]}
    )
    valid = valid_candidates(candidates)
    assert valid.info("sample").tolist() == [0, 9] and valid.info("outcome").tolist() == ["valid", "valid"]
    assert [s.composition.reduced_formula for s in valid.get_structures()] == ["Bi2Se3", "Se"]


def test_known_before_round_grows_with_each_round(tmp_path):
    training = training_set(_dataset(tmp_path))
    crystals = {record.source_id: record.structure for record in make_crystals()}
    round_1 = StructureBatchData.from_structures([crystals["BiSe-hex"]], {"formation_energy": [-0.3]})
    known = known_before_round(training, orm.Bool(True), round_001=round_1)
    assert known["structures"].count == 5
    assert known["phases"].get_list()[-1] == {"composition": "BiSe", "formation_energy": -0.3}
    assert len(known["phases"].get_list()) == 5
    apart = known_before_round(training, orm.Bool(False), round_001=round_1)
    assert apart["structures"].count == 5 and apart["phases"].get_list() == [
        {"composition": "BiSe", "formation_energy": -0.3}
    ]  # a training set of another level of theory stays off the hull


def test_design_summary_follows_the_paper_definitions():
    rounds = {
        "sampling_1": orm.Dict({"graphs": 100, "valid": 40, "outcomes": {"valid": 40, "atoms_too_close": 60}}),
        "assessment_1": orm.Dict(
            {
                "relaxed": 40,
                "converged": 38,
                "formation_energy_below_zero": 30,
                "stable": 4,
                "metastable": 2,
                "distinct": 10,
                "distinct_stable": 1,
                "distinct_metastable": 1,
                "mean_formation_energy": -0.2,
            }
        ),
        "sampling_2": orm.Dict({"graphs": 100, "valid": 0, "outcomes": {"too_many_atoms": 100}}),
    }
    summary = design_summary(**rounds).get_dict()
    first, second = summary["rounds"]
    assert first["success_rate"] == 0.4 and first["stable_fraction"] == 0.1  # valid / graphs, stable / valid
    assert second["converged"] == 0 and second["mean_formation_energy"] is None and second["stable_fraction"] == 0
    total = summary["total"]
    assert (total["graphs"], total["valid"], total["stable"], total["distinct_stable"]) == (200, 40, 4, 1)
    assert total["success_rate"] == 0.2 and total["mean_formation_energy"] == pytest.approx(-0.2)
    text = round_table(summary)
    assert "40.0 %" in text and "total" in text and "10.0 %" in text


def test_protocols_and_refused_inputs(codes, relax_code, tmp_path):
    dataset = _dataset(tmp_path)
    all_codes = {**codes, "relax": relax_code}
    fast = InverseDesignWorkChain.get_builder_from_protocol(all_codes, dataset, ["Bi", "Se"], mode="dcgan_constraint")
    config = fast.train.train.config.get_dict()
    assert config["gan"]["mode"] == "dcgan" and config["gan"]["steps"] == 1000  # the fast loop's GAN budget
    assert config["site_autoencoder"]["pretrained"] == config["lattice_autoencoder"]["pretrained"] == "vo-fast"
    assert fast.graphs_per_round.value == 150 and fast.relax.mlip.settings["fmax"] == 0.1
    assert fast.sample.metadata.options["environment_variables"] == {"KERAS_BACKEND": "torch"}
    paper = InverseDesignWorkChain.get_builder_from_protocol(all_codes, dataset, ["Bi", "Se"], protocol="paper")
    assert paper.graphs_per_round.value == 13000 and paper.train.train.config["gan"]["mode"] == "ccdcgan"
    vasp = InverseDesignWorkChain.get_builder_from_protocol(
        all_codes, dataset, ["Bi", "Se"], protocol="paper", overrides={"relax_engine": "vasp"}
    )
    incar = vasp.relax.vasp.parameters["incar"]
    assert vasp.relax.engine.value == "vasp" and (incar["gga"], incar["encut"]) == ("pe", 500)  # the paper's PBE
    with pytest.raises(ValueError, match="Unknown mode 'gan'"):
        InverseDesignWorkChain.get_builder_from_protocol(all_codes, dataset, ["Bi", "Se"], mode="gan")
    builder = InverseDesignWorkChain.get_builder_from_protocol(all_codes, dataset, ["Bi", "Se"], mode="ccdcgan")
    builder.mode = orm.Str("dcgan")
    with pytest.raises(ValueError, match="needs a GAN trained in mode dcgan"):
        instantiate_process(get_manager().get_runner(), builder)
    builder.mode, builder.elements = orm.Str("ccdcgan"), orm.List(["Bi", "Bi"])
    with pytest.raises(ValueError, match="elements must be two different element symbols"):
        instantiate_process(get_manager().get_runner(), builder)


def test_a_file_that_is_no_training_set_ends_the_loop_cleanly(codes, relax_code, tmp_path):
    (tmp_path / "bad.extxyz").write_text("this is not an extended XYZ file\n")
    builder = _tiny_loop(codes, relax_code, tmp_path, 1)
    builder.dataset = orm.SinglefileData(tmp_path / "bad.extxyz")
    _, node = run_get_node(builder)
    assert node.exit_status == InverseDesignWorkChain.exit_codes.ERROR_INVALID_DATASET.status
    assert "cannot read as extended XYZ" in node.exit_message
    assert not node.called_descendants or all(c.process_label == "training_set" for c in node.called_descendants)


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bise_workchain.py"


def _run_documented_recipes() -> dict:
    """Execute the Python blocks of docs/user_guide.md §7 (the QueryBuilder recipes) and return their names."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "user_guide.md").read_text()
    section = text.split("## 7. Querying results", 1)[1]
    namespace = {name: getattr(orm, name) for name in orm.__all__} | {"load_node": orm.load_node}
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.S):
        exec(block, namespace)
    return namespace


def _tiny_loop(codes, relax_code, tmp_path, rounds: int):
    """The loop on the tiny training configuration (TensorFlow, 16³ grids), CHGNet relaxations."""
    builder = InverseDesignWorkChain.get_builder()
    builder.elements = orm.List(["Bi", "Se"])
    builder.dataset = _dataset(tmp_path)
    builder.rounds = orm.Int(rounds)
    builder.graphs_per_round = orm.Int(6)
    builder.train.max_iterations = orm.Int(1)
    builder.train.train.code = codes["train"]
    builder.train.train.config = orm.Dict(TINY_CONFIG)
    builder.sample.code = codes["sample"]
    builder.relax.engine = orm.Str("mlip")
    builder.relax.mlip.code = relax_code
    builder.relax.mlip.settings = orm.Dict(QUICK_RELAX)
    return builder


def _check_finished_loop(node, rounds: int):
    """The loop finished; one training, one sampling per round; table, groups and models consistent."""
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    prefix = group_prefix(node)
    descendants = node.called_descendants
    labels = [child.process_label for child in descendants]
    assert labels.count("TrainCalculation") == 1 and labels.count("SampleCalculation") == rounds
    called = {link.link_label for link in node.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all()}
    called |= {link.link_label for link in node.base.links.get_outgoing(link_type=LinkType.CALL_CALC).all()}
    assert {"train", "references", *(f"sample_round_{k}" for k in range(1, rounds + 1))} <= called
    summary = node.outputs.summary.get_dict()
    assert [row["round"] for row in summary["rounds"]] == list(range(1, rounds + 1))
    assert all(row["graphs"] == 6 for row in summary["rounds"]) and summary["total"]["graphs"] == 6 * rounds
    assert sorted(node.outputs.models) == sorted(role for roles in MODEL_FILES.values() for role in roles)
    samples = sorted((c for c in descendants if c.process_label == "SampleCalculation"), key=lambda c: c.pk)
    for k, sample in enumerate(samples, start=1):
        assert (
            sample.inputs.seed.value == k and sample.inputs.models.generator.uuid == node.outputs.models.generator.uuid
        )
        group = orm.Group.collection.get_or_create(f"{prefix}/round-{k}/candidates")[0]
        assert [n.uuid for n in group.nodes] == (
            [sample.outputs.candidates.uuid] if "candidates" in sample.outputs else []
        )
    relaxed = [
        n.uuid
        for k in range(1, rounds + 1)
        for n in orm.Group.collection.get_or_create(f"{prefix}/round-{k}/relaxed")[0].nodes
    ]
    assert len(relaxed) == len(set(relaxed)) == summary["total"]["converged"]
    assert f"{prefix}/round-%/distinct" in query_recipes(node)[0]


@pytest.mark.slow
@pytest.mark.daemon
def test_the_loop_runs_through_the_daemon(codes, relax_code, tmp_path, submit_and_await, aiida_profile):
    node = submit_and_await(_tiny_loop(codes, relax_code, tmp_path, 1), timeout=900)
    _check_finished_loop(node, 1)
    example = [str(Path(sys.executable).with_name("verdi")), "-p", aiida_profile.name, "run", str(EXAMPLE)]
    report = subprocess.run(
        [*example, "--report", str(node.pk), "--figure", str(tmp_path / "hull.png")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.returncode == 0, report.stderr
    assert f"InverseDesignWorkChain<{node.pk}>" in report.stdout and "success" in report.stdout
    assert "On the hull now: Bi, " in report.stdout and "QueryBuilder recipes" in report.stdout
    assert (tmp_path / "hull.png").read_bytes()[:4] == b"\x89PNG"
    recipes = _run_documented_recipes()
    everything = orm.QueryBuilder().append(
        orm.Group, filters={"label": {"like": "ccdcgan/inverse_design/%/relaxed"}}, tag="g"
    )
    everything.append(orm.StructureData, with_group="g", project="extras")
    relaxed = [values for (values,) in everything.all()]
    expected = sorted(
        (v["formula"], v["e_above_hull"], v["generator"])
        for v in relaxed
        if v["distinct"]
        and v["classification"] == "stable"
        and v["e_above_hull"] < 0.05
        and v["chemical_system"] == "Bi-Se"
    )
    assert sorted((formula, e_hull, model.uuid) for formula, e_hull, model in recipes["rows"]) == expected
    assert len(recipes["lowest"]) == min(10, len(relaxed))
    energies = [energy for _, energy, _ in recipes["lowest"]]
    assert energies == sorted(energies)
    summary = node.outputs.summary["total"]
    assert [node.pk, summary["success_rate"], summary["stable_fraction"]] in [list(row) for row in recipes["rates"]]


@pytest.mark.slow
@pytest.mark.daemon
def test_the_loop_finishes_after_a_daemon_restart(codes, relax_code, tmp_path, started_daemon_client):
    node = submit(_tiny_loop(codes, relax_code, tmp_path, 2))
    deadline = time.monotonic() + 600
    while not any(child.process_label == "SampleCalculation" for child in node.called_descendants):
        assert not node.is_terminated, (node.exit_status, node.exit_message)
        assert time.monotonic() < deadline, "the loop never reached its first sampling"
        time.sleep(0.5)
    started_daemon_client.stop_daemon(wait=True, timeout=180)  # the worker may be busy: allow time to stop
    assert not node.is_terminated  # interrupted mid-loop: trained, sampling round 1
    started_daemon_client.start_daemon(timeout=180)
    deadline = time.monotonic() + 900
    while not node.is_terminated:
        assert time.monotonic() < deadline, "the loop did not finish after the daemon restart"
        time.sleep(1)
    _check_finished_loop(node, 2)
