"""Inverse design in a ternary system (Li–Co–O by default): build a training database, then the CCDCGAN loop.

    verdi run examples/ternary_workchain.py                      # database (first run only), then the loop
    verdi run examples/ternary_workchain.py --submit             # both through the daemon (`verdi daemon start`)
    verdi run examples/ternary_workchain.py --report <pk>        # the table and hull of a finished loop

1. ``ccdcgan.database``: the ternary prototypes of pymatgen's AFLOW library and a seeded sample of its binary ones,
   with the system's elements put on their sites in every order, relaxed with SevenNet-0 (``fast`` relax protocol)
   together with the elemental references (bcc Li, hcp Co, solid O₂), formation energies and hull on that scale. The
   converged crystals go to the Group ``ccdcgan/database/<system>``; a later run finds it and builds nothing.
2. ``ccdcgan.inverse_design`` (``fast`` protocol, as examples/bise_workchain.py) on that database: train, generate,
   decode with one site channel per element, relax, and judge every new crystal on the hull of the whole chemical
   system (elements, binaries and ternaries of the database plus every new crystal). Validity asks for atoms at
   least ``--min-distance`` (1.2 Å) apart instead of the paper's Bi–Se 2.0 Å, which would reject LiCoO2, Li2O and
   134 of the 214 database crystals. SevenNet-0's Co oxides carry MPtrj's GGA+U energies, its Co metal GGA ones, so
   the database and the loop assess every crystal with the MP2020 corrections (scale ``sevennet:7net-0+mp2020``:
   CoO −1.22 eV/atom against experiment's −1.23; docs/relaxation.md). A database group built before they existed
   (2026-12-05) names the raw scale and the loop refuses it (exit code 411): delete the group to rebuild it.

Materials Project users can add known phases: ``aiida-ccdcgan import mp Li-Co-O -g lico-mp``, then
``ccdcgan.database`` with ``substitute=False`` on them, so that every energy sits on SevenNet-0's scale
(docs/datasets.md).
"""

import argparse
import random

from aiida import orm
from aiida.engine import run_get_node, submit

from aiida_ccdcgan.dataset.templates import aflow_templates
from aiida_ccdcgan.dependencies import MissingExtraError
from aiida_ccdcgan.tools.codes import loop_codes
from aiida_ccdcgan.tools.datasets import training_file
from aiida_ccdcgan.tools.design import launch_refusal, loop_report
from aiida_ccdcgan.workflows.database import DatabaseWorkChain, template_batch
from aiida_ccdcgan.workflows.inverse_design import InverseDesignWorkChain
from aiida_ccdcgan.workflows.relax import RelaxWorkChain

parser = argparse.ArgumentParser(description="CCDCGAN inverse design in a ternary system.")
parser.add_argument("--elements", nargs="+", default=["Li", "Co", "O"], help="The system's elements (default Li Co O).")
parser.add_argument("--binary-templates", type=int, default=30, help="AFLOW binary prototypes sampled (seeded).")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--mode", default="ccdcgan", choices=("dcgan", "dcgan_constraint", "ccdcgan"))
parser.add_argument("--rounds", type=int, default=1)
parser.add_argument("--graphs", type=int, help="Crystal graphs per round (default: the protocol's).")
parser.add_argument("--gan-steps", type=int, help="GAN training steps (default: the protocol's).")
parser.add_argument(
    "--min-distance",
    type=float,
    default=1.2,
    help="Validity: no two atoms closer than this (Å). The paper's 2.0 Å is a Bi–Se rule; Li–O and Co–O bonds are "
    "1.9 Å and the database's shortest bond is 1.25 Å (O–O), so the default is 1.2 Å.",
)
parser.add_argument("--submit", action="store_true", help="Submit to the daemon instead of running here.")
parser.add_argument("--report", type=int, metavar="PK", help="Report on a finished loop instead of starting one.")
args = parser.parse_args()
system = "-".join(args.elements)
refusal = launch_refusal(
    rounds=args.rounds, graphs=args.graphs, gan_steps=args.gan_steps, submit=args.submit, report=args.report
)
if refusal is None and args.binary_templates < 0:
    refusal = f"--binary-templates {args.binary_templates}: give 0 or more"
if refusal is not None:
    raise SystemExit(f"ternary_workchain.py: {refusal}")


def report(node: orm.WorkflowNode) -> None:
    """Print the round table, the hull and the queries of a finished loop."""
    if not node.is_finished_ok:
        raise SystemExit(f"{node.process_label}<{node.pk}> did not finish well: {node.exit_status} {node.exit_message}")
    for line in loop_report(node):
        print(line)


def database(label: str) -> orm.Group | None:
    """The database Group of the system, built by ccdcgan.database on the first run (None when submitted)."""
    group = orm.Group.collection.get_or_create(label)[0]
    if group.count():
        print(f"Database: {group.count()} {system} crystals in the group {label!r} (built before).")
        return group
    templates = aflow_templates(3) + random.Random(args.seed).sample(aflow_templates(2), args.binary_templates)
    relax = RelaxWorkChain.get_builder_from_protocol(
        None, codes["relax"], engine="mlip", protocol="fast",
        overrides={"mlip": {"options": {"max_wallclock_seconds": 6 * 3600}}},
    )  # fmt: skip
    inputs = {
        "elements": orm.List(args.elements),
        "templates": template_batch(templates),
        "group_label": orm.Str(label),
        "relax": {"engine": relax.engine, "mlip": dict(relax.mlip)},
    }
    if args.submit:
        node = submit(DatabaseWorkChain, **inputs)
        print(
            f"Submitted {node.process_label}<{node.pk}> ({len(templates)} templates); run this again when it is done."
        )
        return None
    print(f"Building the {system} database from {len(templates)} templates (SevenNet-0; tens of minutes on 2 cores)…")
    _, node = run_get_node(DatabaseWorkChain, **inputs)
    if not node.is_finished_ok:
        raise SystemExit(f"{node.process_label}<{node.pk}> failed: {node.exit_status} {node.exit_message}")
    print(f"Database: {group.count()} crystals; summary {node.outputs.summary.get_dict()}")
    return group


if args.report is not None:
    report(orm.load_node(args.report))
    raise SystemExit(0)

try:
    codes = loop_codes()
except MissingExtraError as exception:
    raise SystemExit(f"ternary_workchain.py: {exception}") from None
group = database(f"ccdcgan/database/{system}")
if group is None:
    raise SystemExit(0)
overrides = {"rounds": args.rounds} | ({"graphs_per_round": args.graphs} if args.graphs is not None else {})
overrides["train"] = {"config": {"representation": {"min_distance": args.min_distance}}}
if args.gan_steps is not None:
    overrides["train"]["config"]["gan"] = {"steps": args.gan_steps}
builder = InverseDesignWorkChain.get_builder_from_protocol(
    codes, training_file(group, f"{system}.extxyz"), args.elements, mode=args.mode, protocol="fast", overrides=overrides
)
if args.submit:
    node = submit(builder)
    print(f"Submitted {node.process_label}<{node.pk}>; when it is done: "
          f"verdi run examples/ternary_workchain.py --report {node.pk}")  # fmt: skip
else:
    _, node = run_get_node(builder)
    report(node)
