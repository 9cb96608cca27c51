"""``ccdcgan.database``: a training database for a chemical system, from templates, relaxed and on a hull.

Outline: substitute the elements into every template (every assignment, bond-rescaled, the paper's limits; or, with
``substitute`` False, the templates as they are: known crystals of the system) → elemental references
(``ccdcgan.references``, cached) beside the relaxation of the substituted crystals (``ccdcgan.relax``), in chunks of
``chunk_size`` one after another → formation energies, hull and classification (``ccdcgan.assess_relaxed``) → every
converged crystal that repeats no earlier one (StructureMatcher, formation energies within
``duplicate_energy_window``) as a StructureData with dataset extras (``source_id``, ``group_key`` = template,
``templates`` = every template that relaxed to it, ``formation_energy_per_atom``, ``e_above_hull``, …) in the Group
``group_label``, ready for ``ccdcgan.train``. How far each crystal is relaxed is the relax settings' business.

A build stopped at any point (a killed ``verdi run``, a machine switched off) continues where it stopped when it
is run again with the same inputs under AiiDA caching (``enable_caching()``): the substitution and every finished
chunk come from the cache, only the missing chunks are relaxed, and the database is the same as in one sitting.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, while_
from aiida.manage import get_manager

from ..calculations.functions.database import batch_slice, concatenate_batches, crystals_as_given, substitute_templates
from ..calculations.functions.thermodynamics import assess
from ..common import extras
from ..common.validators import define_elements_input
from ..data.structures import StructureBatchData
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
        spec.outline(
            cls.substitute,
            cls.start_references,
            while_(cls.more_chunks)(cls.relax_chunk, cls.inspect_chunk),
            cls.assess,
            cls.results,
        )
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

    def start_references(self):
        """The elemental references, relaxed with the same engine and settings beside the first chunk."""
        relax_inputs = self.exposed_inputs(RelaxWorkChain, "relax")
        count, size = self.ctx.substituted.count, self.inputs.chunk_size.value
        size = size if 0 < size < count else count
        self.ctx.chunks = [(start, min(start + size, count)) for start in range(0, count, size)]
        self.ctx.relaxed_chunks = []
        references = self.submit(ReferencesWorkChain, elements=self.inputs.elements, relax=relax_inputs)
        return ToContext(references=references)

    def more_chunks(self) -> bool:
        """Whether a chunk is still to be relaxed."""
        return len(self.ctx.relaxed_chunks) < len(self.ctx.chunks)

    def relax_chunk(self):
        """Relax the next chunk of the substituted crystals."""
        number = len(self.ctx.relaxed_chunks)
        start, stop = self.ctx.chunks[number]
        whole = len(self.ctx.chunks) == 1
        structures = self.ctx.substituted if whole else batch_slice(self.ctx.substituted, orm.Int(start), orm.Int(stop))
        inputs = self.exposed_inputs(RelaxWorkChain, "relax")
        inputs["metadata"] = {"call_link_label": "relax" if whole else f"relax_chunk_{number:04d}"}
        return ToContext(relaxation=self.submit(RelaxWorkChain, structures=structures, **inputs))

    def inspect_chunk(self):
        """Keep the chunk's relaxed batch; a chunk that gave none ends the build."""
        node = self.ctx.relaxation
        if "relaxed" not in node.outputs:
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED.format(
                process=f"{node.process_label}<{node.pk}>", message=node.exit_message
            )
        self.ctx.relaxed_chunks.append(node.pk)
        done, total = self.ctx.chunks[len(self.ctx.relaxed_chunks) - 1][1], self.ctx.substituted.count
        cached = " (from the cache)" if any(c.base.caching.is_created_from_cache for c in node.called) else ""
        self.report(
            f"chunk {len(self.ctx.relaxed_chunks)}/{len(self.ctx.chunks)}{cached}: {node.outputs.summary['statuses']}; "
            f"{done} of {total} crystals relaxed"
        )
        return None

    def assess(self):
        """Formation energies, hull, classification; store the converged crystals, each once, in the group."""
        references = self.ctx.references
        if not references.is_finished_ok:
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED.format(
                process=f"{references.process_label}<{references.pk}>", message=references.exit_message
            )
        chunks = [orm.load_node(pk) for pk in self.ctx.relaxed_chunks]
        scales = {chunk.outputs.summary["energy_scale"] for chunk in chunks}
        if len(chunks) == 1:
            relaxed = chunks[0].outputs.relaxed
        else:
            relaxed = concatenate_batches(**{f"chunk_{k:04d}": c.outputs.relaxed for k, c in enumerate(chunks)})
        self.ctx.relaxed_uuid = relaxed.uuid
        energies = {element: node.value for element, node in references.outputs.energies.items()}
        window = self.inputs.duplicate_energy_window.value
        node, structures = assess(relaxed, energies, scales.pop(), criteria={"distinct_energy_window": window})
        source_ids = self.ctx.substituted.info("source_id").tolist()
        templates = self.ctx.substituted.info("template").tolist()
        copies: dict[int, list[str]] = {index: [templates[index]] for index in structures}
        assessed = node.outputs.assessed  # each ``node.outputs`` access queries every output crystal
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
        self.ctx.assessment = node
        self.report(
            f"{len(kept)} distinct converged crystals stored in the group {group.label!r} "
            f"({len(structures) - len(kept)} repeats of them left out)"
        )
        return None

    def results(self):
        """Outputs."""
        self.out("relaxed", orm.load_node(self.ctx.relaxed_uuid))
        self.out("hull", self.ctx.assessment.outputs.hull)
        self.out("summary", self.ctx.assessment.outputs.summary)
