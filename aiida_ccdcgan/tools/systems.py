"""Inverse design in any binary or ternary system, as ``aiida-ccdcgan design`` runs it: the checks made before
anything is stored, the system's training database (the shipped one for Bi–Se, built once with ``ccdcgan.database``
for any other system and found again in its Group) and the loop's builder."""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import dataclass

from aiida import orm

from ..common import extras
from ..dataset import CrystalRecord
from ..workflows.protocols import merge_inputs

DATABASE_GROUP_PREFIX = "ccdcgan/database/"
"""The Groups of the databases built by ``aiida-ccdcgan design``: ``ccdcgan/database/<chemical system>``."""

DATABASE_CHUNK = 200
"""Crystals per relaxation CalcJob of a database build: a build stopped midway loses at most one chunk."""

DATABASE_WALLTIME = 6 * 3600
"""Wall time (s) of each relaxation CalcJob of a database build."""

MIN_DISTANCE_CAP = 2.0
"""The paper's validity rule (no two atoms closer than 2.0 Å), the largest ``--min-distance`` default."""

MIN_DISTANCE_BOND_FRACTION = 0.9
"""Below the cap, the default is this fraction of the shortest bond the system can form (covalent radii)."""


def chemical_system(elements) -> str:
    """The chemical system in pymatgen's spelling: sorted symbols joined by hyphens (``Cd-Li``, ``Co-Li-O``)."""
    return "-".join(sorted(elements))


def shipped_build(elements) -> dict | None:
    """The build record of the database that ships with the package for ``elements`` (Bi–Se), else None."""
    from ..dataset.shipped import bise_build_record

    record = bise_build_record()
    return record if sorted(elements) == sorted(record["elements"]) else None


def database_label(elements) -> str:
    """The Group that holds the database ``design`` builds for ``elements``."""
    return DATABASE_GROUP_PREFIX + chemical_system(elements)


def parse_elements(text: str) -> tuple[list[str] | None, str | None]:
    """(symbols, None) for a comma-separated list of 2 or 3 distinct element symbols such as ``Cd,Li``, else
    (None, why not)."""
    from pymatgen.core import Element

    symbols = [token.strip() for token in text.split(",")]
    unknown = [symbol for symbol in symbols if not Element.is_valid_symbol(symbol)]
    if unknown:
        return None, f"{', '.join(repr(s) for s in unknown)} in {text!r} is not an element symbol; write e.g. Cd,Li"
    repeated = sorted({symbol for symbol in symbols if symbols.count(symbol) > 1})
    if repeated:
        return None, f"{', '.join(repeated)} is given twice in {text!r}; name each element once"
    if not 2 <= len(symbols) <= 3:
        return (
            None,
            f"{text!r} names {len(symbols)} element(s); the loop designs binary and ternary systems (A,B or A,B,C)",
        )
    return symbols, None


def default_min_distance(elements) -> float:
    """The validity distance for ``elements`` (Å): the paper's 2.0 Å, or 0.9 × the shortest bond of the system
    (sum of ASE's covalent radii over every pair) where that is shorter — 1.19 Å in Li–Co–O (O–O), 2.0 in Cd–Li."""
    from ase.data import atomic_numbers, covalent_radii

    radii = [covalent_radii[atomic_numbers[element]] for element in elements]
    shortest = min(a + b for a, b in itertools.combinations_with_replacement(radii, 2))
    return round(min(MIN_DISTANCE_CAP, MIN_DISTANCE_BOND_FRACTION * shortest), 2)


def relaxation_scale(potential: str) -> str:
    """The energy scale of the relaxations ``design`` runs with the potential family ``potential``."""
    from ..relaxation.settings import RelaxSettings

    return RelaxSettings(potential=potential).energy_scale()


def database_group(elements) -> orm.Group | None:
    """The non-empty database Group of ``elements`` built earlier (shipped or by ``design``), else None."""
    label = database_label(elements)
    group = orm.QueryBuilder().append(orm.Group, filters={"label": label}).first(flat=True)
    return group if group is not None and group.count() else None


def running_build(elements) -> orm.WorkflowNode | None:
    """A ``ccdcgan.database`` build of ``elements``'s Group that has not terminated yet (e.g. submitted), else None."""
    query = (
        orm.QueryBuilder()
        .append(orm.Str, filters={"attributes.value": database_label(elements)}, tag="label")
        .append(
            orm.WorkflowNode,
            with_incoming="label",
            edge_filters={"label": "group_label"},
            filters={
                "process_type": "aiida.workflows:ccdcgan.database",
                "attributes.process_state": {"in": ["created", "waiting", "running"]},
            },
        )
    )
    return query.first(flat=True)


@functools.cache
def template_pool() -> tuple[CrystalRecord, ...]:
    """The binary templates ``design`` draws from: pymatgen's 176 AFLOW binary prototypes and the paper's iMatGen
    V–O templates as the shipped Bi–Se database holds them (the 680 template ids with a distinct crystal there, one
    crystal each, since the V–O data itself does not ship with the package): 856 in all."""
    from ..dataset.shipped import load_bise_database
    from ..dataset.templates import aflow_templates

    pool = aflow_templates(2)
    taken = {record.source_id for record in pool}
    for record in load_bise_database():
        if record.group_key not in taken:
            taken.add(record.group_key)
            pool.append(
                CrystalRecord(source_id=record.group_key, structure=record.structure, group_key=record.group_key)
            )
    return tuple(pool)


def design_templates(elements, count: int, seed: int) -> list[CrystalRecord]:
    """The templates of a ``design`` database: ``count`` binary ones drawn from :func:`template_pool` with
    ``seed``, and in a ternary system every ternary AFLOW prototype (48) as well."""
    from ..dataset.templates import aflow_templates

    chosen = random.Random(seed).sample(template_pool(), count)
    return chosen + (aflow_templates(3) if len(elements) == 3 else [])


@dataclass(frozen=True)
class DesignOptions:
    """What ``aiida-ccdcgan design`` runs: the system, the potential, the database's template budget (None: the
    shipped database, or the default), the loop's protocol, mode, rounds and sizes, validity distance and seed."""

    elements: tuple[str, ...]
    potential: str = "sevennet"
    templates: int | None = None
    protocol: str = "fast"
    mode: str = "ccdcgan"
    rounds: int = 1
    graphs: int | None = None
    gan_steps: int | None = None
    min_distance: float | None = None
    seed: int = 0

    @property
    def shipped(self) -> bool:
        """Whether the system has a database that ships with the package."""
        return shipped_build(self.elements) is not None

    @property
    def validity_distance(self) -> float:
        """``min_distance`` or the system's default (:func:`default_min_distance`)."""
        return self.min_distance if self.min_distance is not None else default_min_distance(self.elements)


DEFAULT_TEMPLATES = 150
"""Binary templates sampled for a new system's database when ``--templates`` is not given."""


def design_refusal(options: DesignOptions) -> str | None:
    """Why ``design`` cannot run with ``options``, in one line naming what to change; None when it can. Checked
    before anything is stored (the loop's own options: :func:`~aiida_ccdcgan.tools.design.launch_refusal`)."""
    from ..relaxation.settings import POTENTIALS, uncovered_elements
    from ..thermodynamics import reference_structure, shared_hull_refusal
    from ..workflows.inverse_design import MODES

    elements = list(options.elements)
    if options.mode not in MODES:
        return f"--mode {options.mode}: choose one of {', '.join(MODES)}"
    if options.potential not in POTENTIALS:
        return f"--potential {options.potential}: choose one of {', '.join(POTENTIALS)}"
    uncovered = uncovered_elements(options.potential, elements)
    if uncovered:
        return (
            f"{options.potential} was not trained on {', '.join(uncovered)} (its models know H–Bi and Ac–Pu): its "
            "energies there would be guesses; choose a system within those elements"
        )
    for element in elements:
        try:
            reference_structure(element)
        except ValueError as exception:
            return str(exception)
    if options.min_distance is not None and options.min_distance <= 0:
        return f"--min-distance {options.min_distance}: give a distance in Å above 0 (default: the system's)"
    build = shipped_build(elements)
    if build is not None:
        potential, scale = build["relax"]["settings"]["potential"], build["summary"]["energy_scale"]
        if options.potential != potential:
            return (
                f"--potential {options.potential}: the shipped {chemical_system(elements)} database is on the energy "
                f"scale {scale}, and energies of two scales never share a hull; use --potential {potential}"
            )
        if options.templates is not None:
            return (
                f"--templates {options.templates}: {chemical_system(elements)} trains on its shipped database "
                "(docs/datasets.md); leave --templates out"
            )
        return None
    if options.templates is not None:
        pool = len(template_pool())
        if not 1 <= options.templates <= pool:
            return f"--templates {options.templates}: give 1 to {pool} (the binary templates there are)"
    group = database_group(elements)
    if group is not None:
        scales = sorted({node.base.extras.get(extras.ENERGY_SCALE, "") for node in group.nodes})
        refusal = shared_hull_refusal(scales, relaxation_scale(options.potential), elements)
        if refusal is not None:
            return (
                f"the database {group.label!r} was built on the energy scale {', '.join(scales)}; run with the "
                f"potential it was built with, or delete it (`verdi group delete {group.label}`) to rebuild it"
            )
    return None


def relax_overrides(options: DesignOptions, settings: dict | None = None) -> dict:
    """Overrides of the ``fast`` relax protocol: the potential, then ``settings`` (RelaxSettings values)."""
    return {"mlip": {"settings": {"potential": options.potential, **(settings or {})}}}


def database_inputs(options: DesignOptions, relax_code: orm.AbstractCode, settings: dict | None = None) -> dict:
    """The inputs of the ``ccdcgan.database`` build of a new system (:func:`design_templates`, relaxed with the
    ``fast`` relax protocol and ``options.potential``, ``settings`` on top; chunks of :data:`DATABASE_CHUNK`)."""
    from ..workflows.database import template_batch
    from ..workflows.relax import RelaxWorkChain

    overrides = merge_inputs(
        relax_overrides(options, settings), {"mlip": {"options": {"max_wallclock_seconds": DATABASE_WALLTIME}}}
    )
    relax = RelaxWorkChain.get_builder_from_protocol(
        None, relax_code, engine="mlip", protocol="fast", overrides=overrides
    )
    templates = design_templates(options.elements, options.templates or DEFAULT_TEMPLATES, options.seed)
    return {
        "elements": orm.List(list(options.elements)),
        "templates": template_batch(templates),
        "group_label": orm.Str(database_label(options.elements)),
        "chunk_size": orm.Int(DATABASE_CHUNK),
        "relax": {"engine": relax.engine, "mlip": dict(relax.mlip)},
    }


def loop_builder(
    options: DesignOptions,
    codes: dict[str, orm.AbstractCode],
    dataset: orm.SinglefileData,
    settings: dict | None = None,
    overrides: dict | None = None,
):
    """The ``ccdcgan.inverse_design`` builder of ``options`` on ``dataset``: its protocol with the rounds, graphs,
    GAN steps, validity distance, seed and potential of ``options``, relax ``settings`` and ``overrides`` on top."""
    from ..workflows.inverse_design import InverseDesignWorkChain

    values = {
        "rounds": options.rounds,
        "seed": options.seed,
        "train": {"config": {"seed": options.seed, "representation": {"min_distance": options.validity_distance}}},
        "relax": relax_overrides(options, settings),
    }
    if options.graphs is not None:
        values["graphs_per_round"] = options.graphs
    if options.gan_steps is not None:
        values["train"]["config"]["gan"] = {"steps": options.gan_steps}
    return InverseDesignWorkChain.get_builder_from_protocol(
        codes,
        dataset,
        list(options.elements),
        mode=options.mode,
        protocol=options.protocol,
        overrides=merge_inputs(values, overrides or {}),
    )


def report_database(loop: orm.WorkflowNode) -> orm.Group | None:
    """The database Group a ``design`` loop trained on: the shipped one (Bi–Se) or the one built for its system."""
    elements = loop.inputs.elements.get_list()
    if shipped_build(elements) is not None:
        from .shipped import bise_database

        return bise_database()[1]
    return database_group(elements)


@dataclass
class DesignRun:
    """What :func:`run_design` did: the training file and database Group it used (None while a build runs in the
    daemon), the database build it ran or submitted (None when the database was there), the loop it ran or
    submitted (None when only the build was submitted)."""

    dataset: orm.SinglefileData | None = None
    database: orm.Group | None = None
    build: orm.WorkflowNode | None = None
    loop: orm.WorkflowNode | None = None


def run_design(
    options: DesignOptions,
    codes: dict[str, orm.AbstractCode],
    submit: bool = False,
    settings: dict | None = None,
    overrides: dict | None = None,
    say=print,
) -> DesignRun:
    """Build or find the database of ``options.elements``, then run (or ``submit``) the loop on it, everything under
    AiiDA caching so that a second call reuses every calculation the first one made. ``settings``: relax settings
    on top of the ``fast`` protocol's (database and loop); ``overrides``: of the loop's protocol; ``say`` reports
    progress. Submitting while the database is still to be built submits the build alone: call again when it is
    done. Raises ValueError when the database build did not finish well (the loop's outcome is the caller's to read)."""
    from aiida.engine import run_get_node
    from aiida.engine import submit as submit_process
    from aiida.manage.caching import enable_caching

    from ..workflows.database import DatabaseWorkChain
    from .datasets import training_file
    from .shipped import bise_database

    outcome = DesignRun()
    system = chemical_system(options.elements)
    if options.shipped:
        outcome.dataset, outcome.database = bise_database()
        say(
            f"Database: the shipped {system} database, {outcome.database.count()} crystals (group {outcome.database.label!r})."
        )
    else:
        outcome.database = database_group(options.elements)
        if outcome.database is not None:
            say(
                f"Database: {outcome.database.count()} {system} crystals in the group {outcome.database.label!r} (built before)."
            )
        elif (running := running_build(options.elements)) is not None:
            say(
                f"Database: {running.process_label}<{running.pk}> is still building it; call again when it has finished."
            )
            outcome.build = running
            return outcome
        else:
            inputs = database_inputs(options, codes["relax"], settings)
            count = inputs["templates"].count
            if submit:
                outcome.build = submit_process(DatabaseWorkChain, **inputs)
                say(
                    f"Submitted {outcome.build.process_label}<{outcome.build.pk}> ({count} templates); call again when it is done."
                )
                return outcome
            say(f"Building the {system} database from {count} templates with {options.potential} (ccdcgan.database)…")
            with enable_caching():
                _, outcome.build = run_get_node(DatabaseWorkChain, **inputs)
            if not outcome.build.is_finished_ok:
                raise ValueError(
                    f"{outcome.build.process_label}<{outcome.build.pk}> failed: {outcome.build.exit_status} "
                    f"{outcome.build.exit_message}"
                )
            outcome.database = database_group(options.elements)
            if outcome.database is None:
                raise ValueError(f"{outcome.build.process_label}<{outcome.build.pk}> relaxed no crystal to the end.")
            say(f"Database: {outcome.database.count()} distinct crystals in the group {outcome.database.label!r}.")
        outcome.dataset = training_file(outcome.database, f"{system}.extxyz")
    builder = loop_builder(options, codes, outcome.dataset, settings, overrides)
    if submit:
        outcome.loop = submit_process(builder)
        return outcome
    say(f"Running ccdcgan.inverse_design ({options.mode}, protocol {options.protocol}) on {system}…")
    with enable_caching():
        _, outcome.loop = run_get_node(builder)
    return outcome
