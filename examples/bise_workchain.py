"""The main job: new Bi–Se crystals with CCDCGAN, from the database that ships with aiida-ccdcgan.

    verdi run examples/bise_workchain.py                 # run the loop here and now (≈ 10–11 min on 2 cores)
    verdi run examples/bise_workchain.py --submit        # hand it to the daemon (`verdi daemon start` first)
    verdi run examples/bise_workchain.py --report <pk>   # the table, figure and queries of a finished run

Trains the autoencoders, the formation-energy constraint and the CCDCGAN on the shipped Bi–Se database (SevenNet-0),
generates crystal graphs, decodes them, relaxes the valid crystals with SevenNet-0 and judges them on the convex
hull: the ``fast`` protocol of ``ccdcgan.inverse_design``. Prints the paper's table per round, writes
``bise_hull.png`` (formation energy against Se fraction, like the paper's Fig. 3b) and three QueryBuilder lines.
"""

import argparse

from aiida import orm
from aiida.engine import run_get_node, submit

from aiida_ccdcgan.dataset.shipped import bise_build_record
from aiida_ccdcgan.dependencies import MissingExtraError
from aiida_ccdcgan.tools.codes import loop_codes
from aiida_ccdcgan.tools.design import launch_refusal, loop_report
from aiida_ccdcgan.tools.shipped import bise_database
from aiida_ccdcgan.workflows.inverse_design import InverseDesignWorkChain

parser = argparse.ArgumentParser(description="CCDCGAN inverse design of Bi–Se crystals.")
parser.add_argument("--submit", action="store_true", help="Submit to the daemon instead of running here.")
parser.add_argument("--report", type=int, metavar="PK", help="Report on a finished run instead of starting one.")
parser.add_argument("--mode", default="ccdcgan", choices=("dcgan", "dcgan_constraint", "ccdcgan"))
parser.add_argument("--protocol", default="fast", choices=("fast", "paper"))
parser.add_argument("--rounds", type=int, default=1)
parser.add_argument("--graphs", type=int, help="Crystal graphs per round (default: the protocol's).")
parser.add_argument(
    "--fine-tune-steps",
    type=int,
    default=0,
    help="Between rounds, train the GAN this many more steps on the new distinct crystals near the hull (default 0).",
)
parser.add_argument("--figure", default="bise_hull.png")
args = parser.parse_args()
refusal = launch_refusal(
    rounds=args.rounds,
    graphs=args.graphs,
    fine_tune_steps=args.fine_tune_steps,
    submit=args.submit,
    report=args.report,
    figure=args.figure,
)
if refusal is not None:
    raise SystemExit(f"bise_workchain.py: {refusal}")


def report(node: orm.WorkflowNode, database: orm.Group) -> None:
    """Print the table, where the results are and the queries; write the figure."""
    if not node.is_finished_ok:
        raise SystemExit(f"{node.process_label}<{node.pk}> did not finish well: {node.exit_status} {node.exit_message}")
    hull = bise_build_record()["hull"]  # the database's, shown where the loop relaxed nothing
    for line in loop_report(node, database, args.figure, hull=hull):
        print(line)


if args.report is not None:
    report(orm.load_node(args.report), bise_database()[1])
    raise SystemExit(0)

try:
    codes = loop_codes()
except MissingExtraError as exception:
    raise SystemExit(f"bise_workchain.py: {exception}") from None
dataset, database = bise_database()
overrides = {"rounds": args.rounds} | ({"graphs_per_round": args.graphs} if args.graphs is not None else {})
builder = InverseDesignWorkChain.get_builder_from_protocol(
    codes, dataset, ["Bi", "Se"], mode=args.mode, protocol=args.protocol, overrides=overrides
)
builder.fine_tune_steps = orm.Int(args.fine_tune_steps)
print(f"Training set: {database.count()} Bi–Se crystals (group {database.label!r}); protocol {args.protocol}.")
if args.submit:
    node = submit(builder)
    print(f"Submitted {node.process_label}<{node.pk}>. Follow it with `verdi process list` and `verdi process "
          f"report {node.pk}`; when it is done: verdi run examples/bise_workchain.py --report {node.pk}")  # fmt: skip
else:
    _, node = run_get_node(builder)
    report(node, database)
