"""``ccdcgan.relax_and_assess``: relax crystals and the elemental references alike, then place the crystals on the hull.

Outline: the elemental references (``ccdcgan.references``, cached across runs) beside the relaxation of the
crystals (``ccdcgan.relax``), in chunks of ``chunk_size`` one after another → formation energies, hull, the paper's
classes and "distinct" (``ccdcgan.assess_relaxed``, its results mirrored into extras of each assessed crystal).
The database builder (``ccdcgan.database``) and ``verdi data ccdcgan evaluate`` both judge crystals this way.

Under AiiDA caching a run stopped part-way and run again with the same inputs reuses every finished chunk.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, while_

from ..calculations.functions.database import batch_slice, concatenate_batches
from ..calculations.functions.thermodynamics import assess
from ..common.validators import define_elements_input
from ..data.structures import StructureBatchData
from .references import ReferencesWorkChain
from .relax import RelaxWorkChain


class RelaxAndAssessWorkChain(WorkChain):
    """Relax a batch of crystals and the elemental references with one engine and settings; assess them on the hull."""

    @classmethod
    def define(cls, spec):
        """Inputs, outline, outputs."""
        super().define(spec)
        define_elements_input(spec)
        spec.input("structures", valid_type=StructureBatchData, help="The crystals to relax and assess.")
        spec.input(
            "chunk_size",
            valid_type=orm.Int,
            default=lambda: orm.Int(0),
            help="Relax the crystals in chunks of this many, one ccdcgan.relax after another (0: all in one); with "
            "caching on, a run again after a stop reuses every finished chunk.",
        )
        spec.input(
            "known_phases",
            valid_type=orm.List,
            required=False,
            help="Phases already known ({'composition': 'BiSe', 'formation_energy': -0.3}, eV/atom on the "
            "assessment's scale) that join the hull.",
        )
        spec.input(
            "known_structures",
            valid_type=StructureBatchData,
            required=False,
            help="Crystals already known (a training database): a crystal matching one of them is not distinct.",
        )
        spec.input(
            "criteria",
            valid_type=orm.Dict,
            required=False,
            help="thermodynamics.Criteria fields (thresholds, matcher, distinct_energy_window, energy_correction).",
        )
        spec.expose_inputs(RelaxWorkChain, namespace="relax", exclude=("structures",))
        spec.outline(
            cls.start_references,
            while_(cls.more_chunks)(cls.relax_chunk, cls.inspect_chunk),
            cls.assess,
            cls.results,
        )
        spec.output("relaxed", valid_type=StructureBatchData, help="Every crystal after relaxing, in input order.")
        spec.output(
            "assessed",
            valid_type=StructureBatchData,
            help="The converged crystals with index, formation_energy, e_above_hull, classification, distinct, "
            "same_as (ccdcgan.assess_relaxed).",
        )
        spec.output("hull", valid_type=orm.Dict, help="The stable phases.")
        spec.output("summary", valid_type=orm.Dict, help="The paper's counts and the energy scale.")
        spec.output_namespace("references", valid_type=orm.Float, dynamic=True, help="Element → eV/atom.")
        spec.exit_code(420, "ERROR_SUB_PROCESS_FAILED", message="{process} failed: {message}")

    def start_references(self):
        """The elemental references, relaxed with the same engine and settings beside the first chunk."""
        count, size = self.inputs.structures.count, self.inputs.chunk_size.value
        size = size if 0 < size < count else count
        self.ctx.chunks = [(start, min(start + size, count)) for start in range(0, count, size)]
        self.ctx.relaxed_chunks = []
        relax_inputs = self.exposed_inputs(RelaxWorkChain, "relax")
        references = self.submit(ReferencesWorkChain, elements=self.inputs.elements, relax=relax_inputs)
        return ToContext(references=references)

    def more_chunks(self) -> bool:
        """Whether a chunk is still to be relaxed."""
        return len(self.ctx.relaxed_chunks) < len(self.ctx.chunks)

    def relax_chunk(self):
        """Relax the next chunk of the crystals."""
        number = len(self.ctx.relaxed_chunks)
        start, stop = self.ctx.chunks[number]
        whole = len(self.ctx.chunks) == 1
        batch = self.inputs.structures
        structures = batch if whole else batch_slice(batch, orm.Int(start), orm.Int(stop))
        inputs = self.exposed_inputs(RelaxWorkChain, "relax")
        inputs["metadata"] = {"call_link_label": "relax" if whole else f"relax_chunk_{number:04d}"}
        return ToContext(relaxation=self.submit(RelaxWorkChain, structures=structures, **inputs))

    def inspect_chunk(self):
        """Keep the chunk's relaxed batch; a chunk that gave none ends the run."""
        node = self.ctx.relaxation
        if "relaxed" not in node.outputs:
            return self._failed(node)
        self.ctx.relaxed_chunks.append(node.pk)
        if len(self.ctx.chunks) > 1:
            done, total = self.ctx.chunks[len(self.ctx.relaxed_chunks) - 1][1], self.inputs.structures.count
            cached = " (from the cache)" if any(c.base.caching.is_created_from_cache for c in node.called) else ""
            self.report(
                f"chunk {len(self.ctx.relaxed_chunks)}/{len(self.ctx.chunks)}{cached}: "
                f"{node.outputs.summary['statuses']}; {done} of {total} crystals relaxed"
            )
        return None

    def assess(self):
        """Formation energies, hull, classes and distinctness (``ccdcgan.assess_relaxed``), mirrored into extras."""
        references = self.ctx.references
        if not references.is_finished_ok:
            return self._failed(references)
        chunks = [orm.load_node(pk) for pk in self.ctx.relaxed_chunks]
        if len(chunks) == 1:
            relaxed = chunks[0].outputs.relaxed
        else:
            relaxed = concatenate_batches(**{f"chunk_{k:04d}": c.outputs.relaxed for k, c in enumerate(chunks)})
        energies = {element: node.value for element, node in references.outputs.energies.items()}
        known = {name: self.inputs[name] for name in ("known_phases", "known_structures") if name in self.inputs}
        criteria = self.inputs.criteria.get_dict() if "criteria" in self.inputs else None
        node, _ = assess(relaxed, energies, chunks[0].outputs.summary["energy_scale"], criteria=criteria, **known)
        self.ctx.relaxed_uuid, self.ctx.assessment_uuid = relaxed.uuid, node.uuid
        return None

    def results(self):
        """Outputs: the relaxed batch, the assessment's batch, hull and summary, the reference energies."""
        assessment = orm.load_node(self.ctx.assessment_uuid)
        self.out("relaxed", orm.load_node(self.ctx.relaxed_uuid))
        for name in ("assessed", "hull", "summary"):
            self.out(name, assessment.outputs[name])
        self.out("references", dict(self.ctx.references.outputs.energies))

    def _failed(self, node):
        """The exit code of a sub-process that failed."""
        return self.exit_codes.ERROR_SUB_PROCESS_FAILED.format(
            process=f"{node.process_label}<{node.pk}>", message=node.exit_message or "no output"
        )
