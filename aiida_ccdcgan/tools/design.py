"""Results of ``ccdcgan.inverse_design`` for people: the loop and its training set, the round table as text, the
points of the hull figure, and QueryBuilder recipes to paste."""

from __future__ import annotations

from pathlib import Path

from aiida import orm
from aiida.common.exceptions import NotExistent

from ..calculations.functions.design import ROUND_COLUMNS
from ..common import extras
from ..dataset import CrystalRecord, read_dataset
from ..errors import UserInputError

HEADERS = {
    "graphs": "graphs",
    "valid": "valid",
    "compounds": "compounds",
    "success_rate": "success",
    "screened_out": "screened",
    "relaxed": "relaxed",
    "converged": "converged",
    "unphysical": "unphys.",
    "formation_energy_below_zero": "E_f<0",
    "metastable": "metast.",
    "stable": "stable",
    "stable_fraction": "stable/valid",
    "distinct": "distinct",
    "distinct_metastable": "d.metast.",
    "distinct_stable": "d.stable",
    "mean_formation_energy": "mean E_f",
}


def finished_loop(node: orm.Node) -> orm.WorkflowNode:
    """``node`` if it is a finished ``ccdcgan.inverse_design`` loop, else a UserInputError that says so."""
    if getattr(node, "process_type", None) != "aiida.workflows:ccdcgan.inverse_design" or not node.is_finished_ok:
        label = getattr(node, "process_label", None) or type(node).__name__
        raise UserInputError(f"{label}<{node.pk}> is not a finished ccdcgan.inverse_design loop.")
    return node


FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
"""The figure formats the examples write (matplotlib's, by the file name's suffix)."""


def launch_refusal(
    *,
    rounds: int = 1,
    graphs: int | None = None,
    fine_tune_steps: int = 0,
    gan_steps: int | None = None,
    submit: bool = False,
    report: int | None = None,
    figure: str | None = None,
) -> str | None:
    """Why a loop cannot be launched, or reported on, with these command-line options: one line that names the
    option and says what to change; None when it can. Checked before anything is stored."""
    if report is not None:
        try:
            finished_loop(orm.load_node(report))
        except NotExistent:
            return f"--report {report}: no node has this pk here; `verdi process list -a` lists the loops"
        except UserInputError as exception:
            return f"--report {report}: {exception}"
    else:
        counts = {"--rounds": rounds, "--graphs": graphs, "--gan-steps": gan_steps}
        for option, value in counts.items():
            if value is not None and value < 1:
                return f"{option} {value}: give 1 or more (leave --graphs and --gan-steps out for the protocol's)"
        if fine_tune_steps < 0:
            return f"--fine-tune-steps {fine_tune_steps}: give 0 (no fine-tuning) or more"
        if submit:
            from aiida.engine.daemon.client import get_daemon_client

            if not get_daemon_client().is_daemon_running:
                return "--submit: the daemon is not running; start it with `verdi daemon start` (or drop --submit)"
    if figure is not None:
        path = Path(figure)
        if path.suffix.lower() not in FIGURE_SUFFIXES:
            return f"--figure {figure}: name a {', '.join(FIGURE_SUFFIXES)} file"
        if not path.parent.resolve().is_dir():
            return f"--figure {figure}: the folder {path.parent} does not exist; create it or name another"
    return None


def training_records(node: orm.WorkflowNode) -> list[CrystalRecord]:
    """The loop's training crystals (its ``dataset`` input), with their formation energies."""
    with node.inputs.dataset.as_path() as path:
        return read_dataset("extxyz", path)


def trainings(node: orm.WorkflowNode) -> list[tuple[str, orm.CalcJobNode]]:
    """The loop's finished ``ccdcgan.train`` jobs, oldest first, each labelled ``training`` (the initial one) or
    ``fine-tuning k``."""
    jobs = sorted(
        (
            child
            for child in node.called_descendants
            if child.process_type == "aiida.calculations:ccdcgan.train" and child.is_finished_ok
        ),
        key=lambda job: job.ctime,
    )
    labelled, fine_tunings = [], 0
    for job in jobs:
        fine_tuning = "fine_tune" in job.inputs and job.inputs.fine_tune.value
        fine_tunings += fine_tuning
        labelled.append((f"fine-tuning {fine_tunings}" if fine_tuning else "training", job))
    return labelled


def training_config(node: orm.WorkflowNode) -> dict:
    """The TrainingConfig of the loop's models: its ``config`` input, or that of its initial training."""
    if "config" in node.inputs:
        return node.inputs.config.get_dict()
    return trainings(node)[0][1].inputs.config.get_dict()


def table_cell(name: str, value) -> str:
    """One table cell: percentages for rates, eV/atom with 3 decimals, counts as integers."""
    if value is None:
        return "–"
    if name in ("success_rate", "stable_fraction"):
        return f"{100 * value:.1f} %"
    if name == "mean_formation_energy":
        return f"{value:.3f}"
    return str(value)


def round_table(summary: dict) -> str:
    """The per-round table of a loop's ``summary`` output as aligned text, with a total line."""
    rows = [["round", *(HEADERS[name] for name in ROUND_COLUMNS)]]
    for row in summary["rounds"]:
        rows.append([str(row["round"]), *(table_cell(name, row[name]) for name in ROUND_COLUMNS)])
    if len(summary["rounds"]) > 1:
        rows.append(["total", *(table_cell(name, summary["total"][name]) for name in ROUND_COLUMNS)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows)


def group_prefix(node: orm.WorkflowNode) -> str:
    """The prefix of the groups of a loop run."""
    prefix = node.inputs.group_prefix.value if "group_prefix" in node.inputs else ""
    return prefix or f"ccdcgan/inverse_design/{node.pk}"


def database_points(group: orm.Group | None) -> list[tuple[str, float]]:
    """(formula, E_f) of every crystal of a database Group (none for None): the grey points of the hull figure."""
    if group is None:
        return []
    query = orm.QueryBuilder().append(orm.Group, filters={"id": group.pk}, tag="group")
    query.append(
        orm.StructureData, with_group="group", project=[f"extras.{extras.FORMULA}", f"extras.{extras.FORMATION_ENERGY}"]
    )
    return [(formula, energy) for formula, energy in query.iterall()]


def relaxed_points(node: orm.WorkflowNode) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(formula, E_f) of every relaxed crystal of a loop run, and of its distinct stable ones."""
    query = orm.QueryBuilder().append(
        orm.Group, filters={"label": {"like": f"{group_prefix(node)}/round-%/relaxed"}}, tag="group"
    )
    query.append(orm.StructureData, with_group="group", project="extras")
    generated, highlighted = [], []
    for (values,) in query.iterall():
        formula, energy = values[extras.FORMULA], values[extras.FORMATION_ENERGY]
        generated.append((formula, energy))
        if values.get(extras.DISTINCT) and values.get(extras.CLASSIFICATION) == "stable":
            highlighted.append((formula, energy))
    return generated, highlighted


def query_recipes(node: orm.WorkflowNode) -> list[str]:
    """Three QueryBuilder one-liners (Python) about a loop run's results, ready to paste into ``verdi shell``."""
    prefix = group_prefix(node)
    return [
        # every distinct stable crystal near the hull, with its E_hull and the generator model that made it
        "QueryBuilder().append(Group, filters={'label': {'like': '" + prefix + "/round-%/distinct'}}, tag='g')"
        ".append(StructureData, with_group='g', filters={'extras.classification': 'stable', "
        "'extras.e_above_hull': {'<': 0.05}}, project=['extras.formula', 'extras.e_above_hull', "
        "'extras.generator']).all()",
        # the ten lowest formation energies among all relaxed candidates
        "QueryBuilder().append(Group, filters={'label': {'like': '" + prefix + "/round-%/relaxed'}}, tag='g')"
        ".append(StructureData, with_group='g', project=['extras.formula', 'extras.formation_energy_per_atom'])"
        ".order_by({StructureData: {'extras.formation_energy_per_atom': {'order': 'asc', 'cast': 'f'}}})"
        ".limit(10).all()",
        # the models of this run and their roles
        f"QueryBuilder().append(WorkflowNode, filters={{'id': {node.pk}}}, tag='loop')"
        ".append(Data, with_incoming='loop', edge_filters={'label': {'like': 'models__%'}}, "
        "project=['attributes.role', 'uuid']).all()",
    ]


def loop_report(
    node: orm.WorkflowNode,
    database: orm.Group | None = None,
    figure: str | Path | None = None,
    hull: dict | None = None,
) -> list[str]:
    """What a finished loop tells its user, as lines to print: the round table, the hull after it (``hull``, e.g. the
    database's, where the loop relaxed nothing), where its crystals are, its figure of formation energies against
    composition (a binary system, with ``database`` and ``figure``: written there) and QueryBuilder lines."""
    from ..plotting import plot_formation_energies

    elements = node.inputs.elements.get_list()
    lines = [
        f"\n{node.process_label}<{node.pk}> ({node.inputs.mode.value}, {'-'.join(elements)}, "
        f"{node.inputs.graphs_per_round.value} graphs/round)",
        round_table(node.outputs.summary.get_dict()),
    ]
    hull = node.outputs.hull if "hull" in node.outputs else hull
    if hull is not None:
        lines.append(f"\nOn the hull now: {', '.join(phase['composition'] for phase in hull['stable_phases'])}")
    lines.append(
        f"Groups: {group_prefix(node)}/round-<k>/{{candidates,relaxed,stable,distinct}}  (verdi group list -a -p ccdcgan)"
    )
    lines.append(f"Process tree: verdi process status {node.pk}")
    if figure is not None and database is not None and len(elements) == 2:
        generated, highlighted = relaxed_points(node)
        path = plot_formation_energies(elements, database_points(database), generated, highlighted, figure)
        lines.append(f"Figure: {path.resolve()}")
    lines.append("\nQueryBuilder recipes (in `verdi shell`):")
    lines.extend(f"  {recipe}" for recipe in query_recipes(node))
    return lines
