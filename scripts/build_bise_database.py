"""Build the Bi–Se training database that ships with aiida-ccdcgan (``aiida_ccdcgan/resources/``).

    verdi run scripts/build_bise_database.py [--vo-templates all|N] [--chunk-size 400] [--relax-protocol fast]
        [--seed 0] [--group bise-sevennet-build] [--output aiida_ccdcgan/resources]

Templates: every binary prototype of pymatgen's AFLOW library plus every iMatGen V–O template (or a seeded sample)
(../shared/data/vo_imatgen_dft.csv.gz, the paper's own template source); Bi and Se put on both sites, cells
rescaled to the atoms' radii, the paper's limits (≤ 20 atoms, longest edge < 10 Å). Relaxed with SevenNet-0
(``ccdcgan.relax`` protocol ``fast``: FIRE + FrechetCellFilter, fmax 0.1 eV/Å, ≤ 150 steps — the protocol the
``fast`` inverse-design loop relaxes its candidates with, so both sit on one hull) through
``ccdcgan.database``; the distinct converged crystals with their formation energy, energy above hull and templates
go to ``bise_sevennet.extxyz.gz``, the build's settings, counts, hull, wall time (this sitting's, and the
relaxations' over all sittings) and machine to ``bise_sevennet.json``.

Crystals are relaxed in chunks of ``--chunk-size`` under AiiDA caching: a build stopped at any point (Ctrl-C, a
closed terminal, a machine switched off) continues when the same command is run again in the same profile, with
only the chunks not yet relaxed; a crystal found from several templates is kept once, naming them all.
"""

import argparse
import datetime
import gzip
import json
import os
import platform
import random
import time
from pathlib import Path

from aiida import orm
from aiida.engine import run_get_node
from aiida.manage.caching import enable_caching

import aiida_ccdcgan
from aiida_ccdcgan.calculations.relax import RelaxCalculation
from aiida_ccdcgan.common import extras
from aiida_ccdcgan.dataset.readers import read_dataset
from aiida_ccdcgan.dataset.templates import aflow_templates, binary_templates
from aiida_ccdcgan.dataset.writers import write_extxyz
from aiida_ccdcgan.tools.codes import script_code
from aiida_ccdcgan.tools.datasets import crystal_record
from aiida_ccdcgan.workflows.database import DatabaseWorkChain, template_batch
from aiida_ccdcgan.workflows.relax import RelaxWorkChain

ROOT = Path(aiida_ccdcgan.__file__).resolve().parents[1]  # `verdi run` gives __file__ without its folder


def relax_seconds(build: orm.WorkflowNode) -> float:
    """Wall time of the build's relaxation jobs (not the references'), over all its sittings (a chunk from the
    cache: its source's)."""
    total = 0.0
    evaluations = [child for child in build.called if child.process_label == "RelaxAndAssessWorkChain"]
    chunks = [
        child for evaluation in evaluations for child in evaluation.called if child.process_label == "RelaxWorkChain"
    ]
    for chunk in chunks:
        for job in chunk.called:
            if isinstance(job, orm.CalcJobNode):
                source = job.base.caching.get_cache_source()
                ran = orm.load_node(source) if source else job
                total += (ran.mtime - ran.ctime).total_seconds()
    return total


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--vo-csv", type=Path, default=ROOT.parent / "shared/data/vo_imatgen_dft.csv.gz")
parser.add_argument(
    "--vo-templates", default="all", help="How many V–O templates to sample (seeded), or 'all' (the shipped database)."
)
parser.add_argument("--chunk-size", type=int, default=400, help="Crystals per ccdcgan.relax job (0: all in one).")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--relax-protocol", default="fast", help="ccdcgan.relax protocol: fast or moderate.")
parser.add_argument("--group", default="bise-sevennet-build")
parser.add_argument("--output", type=Path, default=ROOT / "aiida_ccdcgan/resources")
args = parser.parse_args()

vo_templates = binary_templates(read_dataset("vo-csv", args.vo_csv))
if args.vo_templates != "all":
    vo_templates = random.Random(args.seed).sample(vo_templates, int(args.vo_templates))
templates = aflow_templates(2) + vo_templates
group = orm.Group.collection.get_or_create(args.group)[0]
if group.count():
    raise SystemExit(
        f"The group {args.group!r} already holds {group.count()} crystals of a finished build; name another."
    )
relax = RelaxWorkChain.get_builder_from_protocol(
    None,
    script_code("ccdcgan-relax"),
    engine="mlip",
    protocol=args.relax_protocol,
    overrides={"mlip": {"options": {"max_wallclock_seconds": 6 * 3600}}},
)
start = time.perf_counter()
# A stopped build goes on from its finished chunks. Only the relaxations come from the cache: cloning an assessment's
# ~9,000 output crystals takes AiiDA ≈ 25 min on this VM, twice as long as assessing them again.
with enable_caching(identifier=RelaxCalculation.build_process_type()):
    results, node = run_get_node(
        DatabaseWorkChain,
        elements=orm.List(["Bi", "Se"]),
        templates=template_batch(templates),
        group_label=orm.Str(args.group),
        chunk_size=orm.Int(args.chunk_size),
        relax={"engine": relax.engine, "mlip": dict(relax.mlip)},
    )
seconds = time.perf_counter() - start
if not node.is_finished_ok:
    raise SystemExit(f"ccdcgan.database<{node.pk}> failed: {node.exit_status} {node.exit_message}")

records = []
for structure in orm.load_group(args.group).nodes:
    record = crystal_record(structure)
    values = structure.base.extras.all
    record.properties = {
        "template": record.group_key,
        "energy_per_atom": values[extras.ENERGY_PER_ATOM],
        "e_above_hull": values[extras.E_ABOVE_HULL],
        "classification": values[extras.CLASSIFICATION],
        extras.ENERGY_SCALE: values[extras.ENERGY_SCALE],
        extras.TEMPLATES: " ".join(values[extras.TEMPLATES]),
    }
    records.append(record)
records.sort(key=lambda record: record.source_id)
args.output.mkdir(parents=True, exist_ok=True)
plain = args.output / "bise_sevennet.extxyz"
write_extxyz(records, plain)
with open(plain, "rb") as source, gzip.GzipFile(plain.with_suffix(".extxyz.gz"), "wb", mtime=0) as target:
    target.write(source.read())
plain.unlink()
build = {
    "elements": ["Bi", "Se"],
    "templates": {"aflow": len(aflow_templates(2)), "vo": len(vo_templates), "seed": args.seed},
    "chunk_size": args.chunk_size,
    "relax": {"engine": "mlip", "settings": dict(relax.mlip.settings)},
    "summary": results["summary"].get_dict(),
    "substituted": results["relaxed"].count,
    "stored": len(records),
    "hull": results["hull"].get_dict(),
    "wall_seconds": round(seconds, 1),
    "relax_seconds": round(relax_seconds(node), 1),
    "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    "date": datetime.date.today().isoformat(),
    "workchain": node.uuid,
}
(args.output / "bise_sevennet.json").write_text(json.dumps(build, indent=2) + "\n")
print(json.dumps(build, indent=2))
