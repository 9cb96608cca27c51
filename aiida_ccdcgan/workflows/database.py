"""``ccdcgan.database``: a training database for a chemical system, from templates, relaxed and on a hull.

Outline: substitute the elements into every template (every assignment, bond-rescaled, the paper's limits; or, with
``substitute`` False, the templates as they are: known crystals of the system) → ``ccdcgan.relax_and_assess``:
elemental references (``ccdcgan.references``, cached) beside the relaxation of the substituted crystals
(``ccdcgan.relax``), in chunks of ``chunk_size`` one after another, then formation energies, hull and
classification (``ccdcgan.assess_relaxed``) → every converged crystal that repeats no earlier one (StructureMatcher,
formation energies within ``duplicate_energy_window``) as a StructureData with dataset extras (``source_id``,
``group_key`` = template, ``templates`` = every template that relaxed to it, ``formation_energy_per_atom``,
``e_above_hull``, …) in the Group ``group_label``, ready for ``ccdcgan.train``. How far each crystal is relaxed is
the relax settings' business.

A build stopped at any point (a killed ``verdi run``, a machine switched off) continues where it stopped when it
is run again with the same inputs under AiiDA caching (``enable_caching()``): the substitution and every finished
chunk come from the cache, only the missing chunks are relaxed, and the database is the same as in one sitting.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain
from aiida.manage import get_manager

from ..calculations.functions.database import crystals_as_given, substitute_templates
from ..calculations.functions.thermodynamics import assessed_structures
from ..common import extras
from ..common.validators import define_elements_input
from ..data.structures import StructureBatchData
from .relax import RelaxWorkChain
from .relax_and_assess import RelaxAndAssessWorkChain


def template_batch(records) -> StructureBatchData:
    """Templates (CrystalRecords, e.g. from ``aflow_templates``) as the batch node ``ccdcgan.database`` takes."""
    return StructureBatchData.from_structures(
        [record.structure for record in records], {"source_id": [record.source_id for record in records]}
    )


class DatabaseWorkChain(WorkChain):
    """Build a relaxed, hull-assessed training database for two or more elements from templates."""

    @classmethod
    def define(cls, spec):
        """Inputs, outline, outputs."""
        super().define(spec)
        define_elements_input(spec)
        spec.input(
            "templates",
            valid_type=StructureBatchData,
            help="Templates (at most as many species as elements) with a source_id column.",
        )
        spec.input(
            "limits",
            valid_type=orm.Dict,
            default=lambda: orm.Dict({"max_atoms": 20, "max_edge": 10.0}),
            help="TemplateFilter: the paper's ≤ 20 atoms and longest edge < 10 Å by default.",
        )
        spec.input(
            "substitute",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(True),
            help="False: relax the templates as they are (known crystals of the system, e.g. from the Materials "
            "Project) instead of putting the elements on them.",
        )
        spec.input("group_label", valid_type=orm.Str, help="The Group that receives the database's structures.")
        spec.input(
            "chunk_size",
            valid_type=orm.Int,
            default=lambda: orm.Int(0),
            help="Relax the crystals in chunks of this many, one ccdcgan.relax after another (0: all in one); with "
            "caching on, a build run again after a stop reuses every finished chunk.",
        )
        spec.input(
            "duplicate_energy_window",
            valid_type=orm.Float,
            default=lambda: orm.Float(0.02),
            help="Two converged crystals are one (kept once, the first) when StructureMatcher matches them and their "
            "formation energies differ by at most this (eV/atom).",
        )
        spec.expose_inputs(RelaxWorkChain, namespace="relax", exclude=("structures",))
        spec.outline(cls.substitute, cls.relax_and_assess, cls.store, cls.results)
        spec.output("relaxed", valid_type=StructureBatchData, help="Every substituted crystal after relaxing.")
        spec.output("hull", valid_type=orm.Dict, help="The stable phases of the database.")
        spec.output("summary", valid_type=orm.Dict, help="Counts: templates, substituted, converged, stable.")
        spec.exit_code(
            410,
            "ERROR_FOREIGN_ELEMENTS",
            message="With substitute False every crystal must be of the system: {name} is {formula}, outside {system}.",
        )
        spec.exit_code(420, "ERROR_SUB_PROCESS_FAILED", message="{process} failed: {message}")

    def substitute(self):
        """Put the elements on every template, every order (``substitute``); or take the templates as they are."""
        if not self.inputs.substitute.value:
            system = set(self.inputs.elements.get_list())
            for name, structure in zip(self.inputs.templates.info("source_id"), self.inputs.templates.get_structures()):
                if not {str(element) for element in structure.composition.elements} <= system:
                    return self.exit_codes.ERROR_FOREIGN_ELEMENTS.format(
                        name=name, formula=structure.composition.reduced_formula, system="-".join(sorted(system))
                    )
            self.ctx.substituted = crystals_as_given(self.inputs.templates, self.inputs.elements, self.inputs.limits)
            self.report(f"{self.ctx.substituted.count} crystals as given, of {self.inputs.templates.count}")
            return None
        self.ctx.substituted = substitute_templates(self.inputs.templates, self.inputs.elements, self.inputs.limits)
        self.report(f"{self.ctx.substituted.count} substituted crystals from {self.inputs.templates.count} templates")
        return None

    def relax_and_assess(self):
        """Relax the crystals and the elemental references, in chunks; place them on the hull
        (``ccdcgan.relax_and_assess``)."""
        inputs = {
            "structures": self.ctx.substituted,
            "elements": self.inputs.elements,
            "chunk_size": self.inputs.chunk_size,
            "criteria": orm.Dict({"distinct_energy_window": self.inputs.duplicate_energy_window.value}),
            "relax": self.exposed_inputs(RelaxWorkChain, "relax"),
            "metadata": {"call_link_label": "relax_and_assess"},
        }
        return ToContext(evaluation=self.submit(RelaxAndAssessWorkChain, **inputs))

    def store(self):
        """Store every converged crystal that repeats no earlier one in the group, with its dataset extras."""
        node = self.ctx.evaluation
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED.format(
                process=f"{node.process_label}<{node.pk}>", message=node.exit_message
            )
        assessed = node.outputs.assessed
        structures = assessed_structures(assessed.creator)
        source_ids = self.ctx.substituted.info("source_id").tolist()
        templates = self.ctx.substituted.info("template").tolist()
        copies: dict[int, list[str]] = {index: [templates[index]] for index in structures}
        rows = list(zip(assessed.info("index").tolist(), assessed.info("same_as").tolist()))
        for index, same_as in rows:
            if same_as >= 0 and templates[index] not in copies[same_as]:
                copies[same_as].append(templates[index])
        kept = [index for index, same_as in rows if same_as < 0]
        group, _ = orm.Group.collection.get_or_create(self.inputs.group_label.value)
        with get_manager().get_profile_storage().transaction():  # one commit for the whole database
            for index in kept:
                structures[index].base.extras.set_many(
                    {
                        extras.SOURCE_ID: source_ids[index],
                        extras.GROUP_KEY: templates[index],
                        extras.TEMPLATES: copies[index],
                    }
                )
            group.add_nodes([structures[index] for index in kept])
        self.report(
            f"{len(kept)} distinct converged crystals stored in the group {group.label!r} "
            f"({len(structures) - len(kept)} repeats of them left out)"
        )
        return None

    def results(self):
        """Outputs: the relaxed crystals, the hull and the counts of ``ccdcgan.relax_and_assess``."""
        for name in ("relaxed", "hull", "summary"):
            self.out(name, self.ctx.evaluation.outputs[name])
