"""``aiida-ccdcgan design A,B``: inverse design in any binary or ternary system in one command (docs/user_guide.md)."""

import click
from aiida.cmdline.utils import echo

from . import cmd_root


def _report(loop, database, figure: str | None) -> None:
    """Print a finished loop's report (``tools.design.loop_report``)."""
    from ..tools.design import loop_report

    for line in loop_report(loop, database, figure):
        click.echo(line)


@cmd_root.command("design")
@click.argument("elements")
@click.option(
    "--templates",
    type=int,
    help="A new system's database: binary templates drawn (seeded) from the 856 there are (176 AFLOW prototypes, 680 "
    "V–O templates); ternary systems add the 48 ternary AFLOW prototypes. Default 150. Not for Bi,Se, which trains "
    "on its shipped database.",
)
@click.option("--potential", type=click.Choice(["sevennet", "chgnet"]), default="sevennet", show_default=True)
@click.option(
    "--protocol", type=click.Choice(["fast", "paper"]), default="fast", show_default=True, help="Of the loop."
)
@click.option("--mode", default="ccdcgan", show_default=True, help="ccdcgan, dcgan_constraint (screening) or dcgan.")
@click.option("--rounds", type=int, default=1, show_default=True)
@click.option("--graphs", type=int, help="Crystal graphs per round (default: the protocol's, 150 for fast).")
@click.option("--gan-steps", type=int, help="GAN training steps (default: the protocol's, 800 for fast).")
@click.option(
    "--min-distance",
    type=float,
    help="Validity: no two atoms closer than this (Å). Default: the paper's 2.0, or 0.9 × the system's shortest "
    "bond (covalent radii) where that is shorter (1.19 in Li–Co–O).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Templates, training and sampling.")
@click.option("--submit", is_flag=True, help="Through the daemon (`verdi daemon start`): the build, then the loop.")
@click.option("--report", "report_pk", type=int, metavar="PK", help="Report on a finished loop instead.")
@click.option("--figure", help="The hull figure (binary systems). Default: <system>_hull.png here.")
def cmd_design(
    elements, templates, potential, protocol, mode, rounds, graphs, gan_steps, min_distance, seed, submit, report_pk,
    figure,
):  # fmt: skip
    """New crystals in the chemical system ELEMENTS (Cd,Li or Co,Li,O): build its training database once
    (substituted templates relaxed with the potential, the elemental references, the hull; the shipped one for
    Bi,Se), train CCDCGAN, generate, relax and judge on the hull; print the paper's table, draw the hull figure
    and print QueryBuilder lines. Everything runs under AiiDA caching, so calling again reuses what was computed.
    """
    from aiida import orm

    from ..dependencies import MissingExtraError
    from ..tools.codes import loop_codes
    from ..tools.design import launch_refusal
    from ..tools.systems import DesignOptions, chemical_system, design_refusal, parse_elements, run_design

    symbols, refusal = parse_elements(elements)
    if symbols is not None:
        system = chemical_system(symbols)
        if figure is None and len(symbols) == 2:
            figure = f"{system}_hull.png"
        if figure is not None and len(symbols) != 2:
            refusal = f"--figure {figure}: the hull figure is drawn for binary systems only"
    if refusal is None:
        refusal = launch_refusal(
            rounds=rounds, graphs=graphs, gan_steps=gan_steps, submit=submit, report=report_pk, figure=figure
        )
    if refusal is None and report_pk is None:
        options = DesignOptions(
            tuple(symbols), potential, templates, protocol, mode, rounds, graphs, gan_steps, min_distance, seed
        )
        refusal = design_refusal(options)
    if refusal is None and report_pk is not None:
        loop = orm.load_node(report_pk)
        if sorted(loop.inputs.elements.get_list()) != sorted(symbols):
            refusal = (
                f"--report {report_pk}: that loop designed {'-'.join(loop.inputs.elements.get_list())}, not {system}"
            )
    if refusal is not None:
        echo.echo_critical(refusal)
    if report_pk is not None:
        from ..tools.systems import report_database

        _report(loop, report_database(loop), figure)
        return
    try:
        codes = loop_codes()
    except MissingExtraError as exception:
        echo.echo_critical(str(exception))
    try:
        outcome = run_design(options, codes, submit=submit, say=click.echo)
    except ValueError as exception:
        echo.echo_critical(str(exception))
    loop = outcome.loop
    if loop is None:
        return
    if submit:
        click.echo(
            f"Submitted {loop.process_label}<{loop.pk}>. Follow it with `verdi process list`; when it is done: "
            f"aiida-ccdcgan design {elements} --report {loop.pk}. The daemon reuses earlier results only with "
            "`verdi config set caching.default_enabled True`."
        )
        return
    if not loop.is_finished_ok:
        echo.echo_critical(
            f"{loop.process_label}<{loop.pk}> did not finish well: {loop.exit_status} {loop.exit_message}"
        )
    _report(loop, outcome.database, figure)
