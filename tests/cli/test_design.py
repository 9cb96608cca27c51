"""``aiida-ccdcgan design``'s orchestration (``aiida_ccdcgan.tools.systems``): a new system's database built once,
the loop on it, and a second call that reuses every calculation through AiiDA caching."""

import pytest
from aiida import orm
from dataset_files import QUICK_RELAX, TINY_CONFIG

from aiida_ccdcgan.tools.systems import (
    DesignOptions,
    default_min_distance,
    design_refusal,
    design_templates,
    parse_elements,
    run_design,
    template_pool,
)


def test_systems_and_their_defaults():
    assert parse_elements(" Cd, Li") == (["Cd", "Li"], None)
    assert parse_elements("Li,Co,O")[0] == ["Li", "Co", "O"]
    assert parse_elements("Cd;Li")[1].startswith("'Cd;Li' in 'Cd;Li' is not an element symbol")
    # the paper's 2.0 Å where bonds are long, 0.9 × the shortest covalent bond (O–O 1.32 Å) in an oxide
    assert [default_min_distance(s) for s in (["Bi", "Se"], ["Cd", "Li"], ["Li", "Co", "O"])] == [2.0, 2.0, 1.19]
    assert DesignOptions(("Cd", "Li"), min_distance=1.5).validity_distance == 1.5


def test_templates_are_a_seeded_sample_of_the_binary_pool():
    pool = template_pool()
    assert len(pool) == 856 and len({record.source_id for record in pool}) == 856  # 176 AFLOW + 680 V–O
    assert sum(record.source_id.startswith(("mp-", "mvc-")) for record in pool) == 680
    assert all(len(record.structure.composition.elements) == 2 for record in pool)
    first = [record.source_id for record in design_templates(["Cd", "Li"], 20, seed=0)]
    assert first == [record.source_id for record in design_templates(["Cd", "Li"], 20, seed=0)]
    assert first != [record.source_id for record in design_templates(["Cd", "Li"], 20, seed=1)]
    ternary = design_templates(["Li", "Co", "O"], 20, seed=0)
    assert len(ternary) == 20 + 48 and [record.source_id for record in ternary[:20]] == first


@pytest.mark.slow
def test_a_new_system_is_built_once_and_a_second_call_comes_from_the_cache(codes, relax_code):
    """Cd–Li on the tiny settings: ASE's hcp Cd and the built-in bcc Li as references, a few templates relaxed with
    CHGNet into the Group ccdcgan/database/Cd-Li, the loop on it; called again, nothing is built or computed anew."""
    options = DesignOptions(("Cd", "Li"), potential="chgnet", templates=3, graphs=4, seed=3)
    tiny = {**TINY_CONFIG, "representation": {**TINY_CONFIG["representation"], "elements": ["Cd", "Li"]}}
    for network in ("site_autoencoder", "lattice_autoencoder"):  # no shipped weights, the tiny latent as a vector
        tiny[network] = {**tiny[network], "pretrained": None, "latent_grid": 1}
    del tiny["seed"]  # the options' seed reaches the training
    overrides = {"train": {"config": tiny}}
    all_codes = {**codes, "relax": relax_code}
    assert design_refusal(options) is None
    messages = []
    first = run_design(options, all_codes, settings=QUICK_RELAX, overrides=overrides, say=messages.append)
    assert first.build.is_finished_ok and first.database.label == "ccdcgan/database/Cd-Li"
    assert messages[0] == "Building the Cd-Li database from 3 templates with chgnet (ccdcgan.database)…"
    (references,) = [child for child in first.build.called_descendants if child.process_label == "ReferencesWorkChain"]
    assert sorted(references.outputs.energies) == ["Cd", "Li"]  # hcp Cd from ASE's reference states
    assert first.database.count() == first.build.outputs.summary["distinct"] > 0
    assert {node.base.extras.get("energy_scale") for node in first.database.nodes} == {"chgnet:0.3.0"}
    loop = first.loop
    assert loop.is_finished_ok, (loop.exit_status, loop.exit_message)
    config = loop.inputs.train.train.config.get_dict()  # the options reach the loop
    assert config["representation"]["min_distance"] == 2.0 and config["seed"] == 3
    assert loop.inputs.graphs_per_round.value == 4 and loop.inputs.seed.value == 3
    assert loop.inputs.relax.mlip.settings["potential"] == "chgnet"

    again = run_design(options, all_codes, settings=QUICK_RELAX, overrides=overrides, say=messages.append)
    assert (
        again.build is None and again.database.uuid == first.database.uuid and again.dataset.uuid == first.dataset.uuid
    )
    assert "(built before)" in messages[-2]
    assert again.loop.is_finished_ok and again.loop.uuid != loop.uuid
    jobs = [node for node in again.loop.called_descendants if isinstance(node, orm.CalcJobNode)]
    assert jobs and all(job.base.caching.is_created_from_cache for job in jobs)
    assert again.loop.outputs.summary.get_dict() == loop.outputs.summary.get_dict()
    # the built database is on CHGNet's scale: SevenNet's relaxations are refused before anything is stored
    refusal = design_refusal(DesignOptions(("Li", "Cd"), potential="sevennet"))
    assert "'ccdcgan/database/Cd-Li' was built on the energy scale chgnet:0.3.0" in refusal
