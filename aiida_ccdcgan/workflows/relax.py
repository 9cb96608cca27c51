"""``ccdcgan.relax``: relax a batch of crystals with a machine-learned potential or with VASP, outputs normalised.

Whichever engine runs, the output ``relaxed`` is one :class:`~aiida_ccdcgan.data.structures.StructureBatchData`
in input order with the info columns ``status`` (converged, not_converged, exploded, failed, unphysical), ``exit_code``,
``total_energy`` and ``energy_per_atom`` (eV), and ``summary`` says how many ended in each status and on which
energy scale the energies are (never compare energies of two scales).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_
from aiida.plugins import WorkflowFactory

from ..calculations.functions.relax import (
    STRUCTURE_LABEL,
    gather_vasp_relaxations,
    kpoints_from_density,
    unpack_structures,
)
from ..calculations.relax import RelaxCalculation
from ..data.structures import StructureBatchData
from .protocols import ProtocolMixin

ENGINES = ("mlip", "vasp")


def _validate_engine(value, _):
    """Refuse an unknown engine."""
    if value is not None and value.value not in ENGINES:
        return f"engine must be one of {', '.join(ENGINES)}, not {value.value!r}."
    return None


def _validate_inputs(inputs, _):
    """The chosen engine's namespace must be filled in."""
    engine = inputs["engine"].value
    if engine == "mlip" and "code" not in inputs.get("mlip", {}):
        return "engine 'mlip' needs mlip.code (a ccdcgan-relax code) and mlip.settings."
    needed = ("code", "parameters", "potential_family", "potential_mapping", "options")
    missing = [f"vasp.{name}" for name in needed if name not in inputs.get("vasp", {})]
    if engine == "vasp" and missing:
        return f"engine 'vasp' needs {', '.join(missing)} (get_builder_from_protocol fills them in)."
    if engine == "vasp":
        family = inputs["vasp"]["potential_family"].value
        if not orm.QueryBuilder().append(orm.Group, filters={"label": family, "type_string": "vasp.potcar"}).count():
            return (
                f"No POTCAR family {family!r} in this profile; upload one with `aiida-vasp potcar uploadfamily "
                f"--path <folder of POTCARs> --name {family}` or name an existing family (vasp.potential_family)."
            )
    return None


def vasp_energy_scale(parameters: dict, potential_family: str) -> str:
    """The energy-scale label of VASP results: functional, cutoff and POTCAR family."""
    incar = parameters["incar"]
    return f"vasp:gga={incar.get('gga', 'pe')}:encut={incar.get('encut')}:{potential_family}"


def relaxation_energy_scale(relax_inputs) -> str:
    """The energy-scale label the relaxations of ``relax_inputs`` (RelaxWorkChain's inputs, as exposed) will name,
    known before anything runs."""
    from ..relaxation.settings import RelaxSettings

    if relax_inputs["engine"].value == "vasp":
        vasp = relax_inputs["vasp"]
        return vasp_energy_scale(vasp["parameters"].get_dict(), vasp["potential_family"].value)
    return RelaxSettings.from_dict(relax_inputs["mlip"]["settings"].get_dict()).energy_scale()


class RelaxWorkChain(ProtocolMixin, WorkChain):
    """Relax every crystal of a batch with the chosen engine and normalise the outputs."""

    _protocol_name = "relax"

    @classmethod
    def define(cls, spec):
        """Inputs, outline, outputs."""
        super().define(spec)
        spec.input("structures", valid_type=StructureBatchData, help="The crystals to relax.")
        spec.input(
            "engine",
            valid_type=orm.Str,
            default=lambda: orm.Str("mlip"),
            validator=_validate_engine,
            help="mlip (ccdcgan-relax with a universal potential) or vasp (aiida-vasp's vasp.v2.relax).",
        )
        spec.expose_inputs(
            RelaxCalculation,
            namespace="mlip",
            exclude=("structures",),
            namespace_options={"required": False, "populate_defaults": False},
        )
        spec.input_namespace("vasp", required=False, populate_defaults=False, help="Inputs of the VASP engine.")
        spec.input("vasp.code", valid_type=orm.AbstractCode, required=False, help="A VASP code.")
        spec.input(
            "vasp.parameters",
            valid_type=orm.Dict,
            required=False,
            help="incar (every INCAR tag, written as given), relax_settings (aiida-vasp RelaxOptions) and "
            "kpoints_density (Å, reciprocal length: the mesh comes from kpoints_from_density).",
        )
        spec.input("vasp.potential_family", valid_type=orm.Str, required=False, help="A POTCAR family label.")
        spec.input("vasp.potential_mapping", valid_type=orm.Dict, required=False, help="Element → POTCAR symbol.")
        spec.input(
            "vasp.options", valid_type=orm.Dict, required=False, help="CalcJob options: resources, walltime, queue."
        )
        spec.inputs.validator = _validate_inputs
        spec.outline(
            if_(cls.uses_mlip)(cls.run_mlip, cls.inspect_mlip).else_(cls.run_vasp, cls.inspect_vasp),
        )
        spec.output("relaxed", valid_type=StructureBatchData, help="Every structure in input order, normalised.")
        spec.output("summary", valid_type=orm.Dict, help="Engine, energy scale, counts by status.")
        spec.exit_code(400, "ERROR_ENGINE_FAILED", message="The {engine} engine failed without results: {message}")
        spec.exit_code(401, "ERROR_NONE_CONVERGED", message="No structure converged: {statuses}")

    @classmethod
    def get_builder_from_protocol(
        cls,
        structures: StructureBatchData | None,
        code: orm.AbstractCode,
        engine: str | None = None,
        protocol: str | None = None,
        overrides: dict | None = None,
    ):
        """A builder with the inputs of ``protocol`` (``fast`` or ``moderate``) for ``engine`` on ``code``.

        ``overrides`` is merged into the protocol's values, e.g. ``{"mlip": {"settings": {"potential":
        "chgnet"}}}`` or ``{"vasp": {"potential_family": "PBE.64", "options": {"queue_name": "debug"}}}``.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        engine = engine or inputs["engine"]
        builder = cls.get_builder()
        if structures is not None:  # None: a builder for a workflow that passes the structures on itself
            builder.structures = structures
        builder.engine = orm.Str(engine)
        if engine == "mlip":
            builder.mlip.code = code
            builder.mlip.settings = orm.Dict(inputs["mlip"]["settings"])
            for key, value in inputs["mlip"].get("options", {}).items():
                builder.mlip.metadata.options[key] = value
        else:
            vasp = inputs["vasp"]
            builder.vasp.code = code
            builder.vasp.parameters = orm.Dict(
                {key: vasp[key] for key in ("incar", "relax_settings", "kpoints_density")}
            )
            builder.vasp.potential_family = orm.Str(vasp["potential_family"])
            builder.vasp.potential_mapping = orm.Dict(vasp["potential_mapping"])
            builder.vasp.options = orm.Dict(vasp["options"])
        return builder

    def uses_mlip(self) -> bool:
        """Whether the MLIP engine runs."""
        return self.inputs.engine.value == "mlip"

    def run_mlip(self):
        """Relax the whole batch in one ``ccdcgan.relax.mlip`` calculation."""
        inputs = self.exposed_inputs(RelaxCalculation, "mlip")
        inputs["structures"] = self.inputs.structures
        return ToContext(calculation=self.submit(RelaxCalculation, **inputs))

    def inspect_mlip(self):
        """Pass the normalised batch on (also when only some structures converged)."""
        node = self.ctx.calculation
        if "relaxed" not in node.outputs:
            return self.exit_codes.ERROR_ENGINE_FAILED.format(engine="mlip", message=node.exit_message)
        self.out("relaxed", node.outputs.relaxed)
        self.out("summary", node.outputs.summary)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_NONE_CONVERGED.format(statuses=node.outputs.summary["statuses"])
        return None

    def run_vasp(self):
        """One aiida-vasp ``vasp.v2.relax`` per structure, every setting explicit (INCAR, k-point mesh, POTCARs)."""
        relax_class = WorkflowFactory("vasp.v2.relax")
        parameters = self.inputs.vasp.parameters.get_dict()
        single = unpack_structures(self.inputs.structures)
        density = orm.Float(parameters["kpoints_density"])
        for label, structure in sorted(single.items()):
            builder = relax_class.get_builder()
            builder.structure = structure
            builder.relax_settings = parameters["relax_settings"]  # its serializer fills in aiida-vasp's defaults
            builder.vasp.code = self.inputs.vasp.code
            builder.vasp.parameters = orm.Dict({"incar": parameters["incar"]})
            builder.vasp.kpoints = kpoints_from_density(structure, density)
            builder.vasp.potential_family = self.inputs.vasp.potential_family
            builder.vasp.potential_mapping = self.inputs.vasp.potential_mapping
            builder.vasp.options = self.inputs.vasp.options
            self.to_context(**{label: self.submit(builder)})

    def inspect_vasp(self):
        """Gather the relaxed structures and energies into the normalised batch."""
        statuses, results = {}, {}
        for index in range(self.inputs.structures.count):
            label = STRUCTURE_LABEL.format(index=index)
            node = self.ctx[label]
            if node.is_finished_ok:
                statuses[str(index)] = "converged"
            elif node.exit_status == relax_exit_code("ERROR_RELAX_NOT_CONVERGED"):
                statuses[str(index)] = "not_converged"
            else:
                statuses[str(index)] = "failed"
                self.report(
                    f"{node.process_label}<{node.pk}> of {label} failed: [{node.exit_status}] {node.exit_message}"
                )
            if "relax" in node.outputs and "structure" in node.outputs.relax and "misc" in node.outputs:
                results[label] = node.outputs.relax.structure
                results[label.replace("structure", "misc")] = node.outputs.misc
        parameters = self.inputs.vasp.parameters.get_dict()
        energy_scale = orm.Str(vasp_energy_scale(parameters, self.inputs.vasp.potential_family.value))
        gathered = gather_vasp_relaxations(self.inputs.structures, orm.Dict(statuses), energy_scale, **results)
        self.out_many(gathered)
        counts = gathered["summary"]["statuses"]
        if "converged" not in counts:
            return self.exit_codes.ERROR_NONE_CONVERGED.format(statuses=counts)
        return None


def relax_exit_code(label: str) -> int:
    """The exit status of aiida-vasp's relax workchain with ``label``."""
    return WorkflowFactory("vasp.v2.relax").exit_codes[label].status
