"""Inputs and checks that several test modules share: the tiny training dataset, the tiny inverse-design loop and
what a finished loop must hold."""

import sys
from pathlib import Path

from aiida import orm
from aiida.common.links import LinkType
from dataset_files import QUICK_RELAX, TINY_CONFIG, make_crystals

from aiida_ccdcgan.dataset import write_extxyz
from aiida_ccdcgan.models.config import TRAINING_STAGES
from aiida_ccdcgan.tools.design import group_prefix, query_recipes
from aiida_ccdcgan.workflows.inverse_design import InverseDesignWorkChain

BIN = Path(sys.executable).parent
"""The folder of this environment's executables (verdi, the ccdcgan console scripts)."""


def training_dataset(tmp_path) -> orm.SinglefileData:
    """The Bi–Se crystals of ``make_crystals`` (the fourth held out for validation) as the file a training takes."""
    records = [r for r in make_crystals() if "Na" not in r.structure.composition]
    for index, record in enumerate(records):
        record.properties["split"] = "validation" if index == 3 else "train"
    write_extxyz(records, tmp_path / "data.extxyz")
    return orm.SinglefileData(tmp_path / "data.extxyz")


def tiny_loop(codes, relax_code, tmp_path, rounds: int):
    """The loop on the tiny training configuration (TensorFlow, 16³ grids), CHGNet relaxations."""
    builder = InverseDesignWorkChain.get_builder()
    builder.elements = orm.List(["Bi", "Se"])
    builder.dataset = training_dataset(tmp_path)
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


def check_finished_loop(node, rounds: int):
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
    assert sorted(node.outputs.models) == sorted(role for stage in TRAINING_STAGES for role in stage.models)
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
