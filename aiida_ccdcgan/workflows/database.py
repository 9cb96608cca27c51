"""``ccdcgan.database``: a training database for a chemical system, from templates, relaxed and on a hull.

Outline: substitute the elements into every template (every assignment, bond-rescaled, the paper's limits; or, with
``substitute`` False, the templates as they are: known crystals of the system) →
elemental references (``ccdcgan.references``, cached) and the relaxation of all substituted crystals
(``ccdcgan.relax``) side by side → formation energies, hull and classification (``ccdcgan.assess_relaxed``) →
every converged crystal as a StructureData with dataset extras (``source_id``, ``group_key`` = template,
``formation_energy_per_atom``, ``e_above_hull``, …) in the Group ``group_label``, ready for ``ccdcgan.train``.
How far each crystal is relaxed is the relax settings' business (``max_steps``: a full relaxation or a few steps).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain

from ..calculations.functions.database import crystals_as_given, substitute_templates
from ..common import extras
from ..common.validators import validate_elements
from ..data.structures import StructureBatchData
from ..tools.assess import assess
from .references import ReferencesWorkChain
from .relax import RelaxWorkChain


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
        spec.input(
            "elements",
            valid_type=orm.List,
            validator=validate_elements,
            help="The system's element symbols, e.g. ['Bi', 'Se'] or ['Li', 'Co', 'O'].",
        )
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
        spec.expose_inputs(RelaxWorkChain, namespace="relax", exclude=("structures",))
        spec.outline(cls.substitute, cls.relax, cls.assess, cls.results)
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

    def relax(self):
        """References and the substituted crystals, relaxed with the same engine and settings, side by side."""
        relax_inputs = self.exposed_inputs(RelaxWorkChain, "relax")
        references = self.submit(ReferencesWorkChain, elements=self.inputs.elements, relax=relax_inputs)
        relaxation = self.submit(RelaxWorkChain, structures=self.ctx.substituted, **relax_inputs)
        return ToContext(references=references, relaxation=relaxation)

    def assess(self):
        """Formation energies, hull, classification; store the converged crystals in the group."""
        for name in ("references", "relaxation"):
            node = self.ctx[name]
            if not node.is_finished_ok and not (name == "relaxation" and "relaxed" in node.outputs):
                return self.exit_codes.ERROR_SUB_PROCESS_FAILED.format(
                    process=f"{node.process_label}<{node.pk}>", message=node.exit_message
                )
        relaxed = self.ctx.relaxation.outputs.relaxed
        energies = {element: node.value for element, node in self.ctx.references.outputs.energies.items()}
        energy_scale = self.ctx.relaxation.outputs.summary["energy_scale"]
        node, structures = assess(relaxed, energies, energy_scale)
        source_ids = self.ctx.substituted.info("source_id").tolist()
        templates = self.ctx.substituted.info("template").tolist()
        for index, structure in structures.items():
            structure.base.extras.set_many({extras.SOURCE_ID: source_ids[index], extras.GROUP_KEY: templates[index]})
        group, _ = orm.Group.collection.get_or_create(self.inputs.group_label.value)
        group.add_nodes(list(structures.values()))
        self.ctx.assessment = node
        self.report(f"{len(structures)} converged crystals stored in the group {group.label!r}")
        return None

    def results(self):
        """Outputs."""
        self.out("relaxed", self.ctx.relaxation.outputs.relaxed)
        self.out("hull", self.ctx.assessment.outputs.hull)
        self.out("summary", self.ctx.assessment.outputs.summary)
