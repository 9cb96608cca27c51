"""``ccdcgan.references``: elemental reference energies, relaxed once per engine and settings, then reused.

Each reference energy (a Float, eV/atom, created by the ``reference_energies`` calcfunction from a relaxation) is
put in the group ``ccdcgan/references`` with the extras ``element`` and ``cache_key``; a later run with the same
engine and settings finds it there instead of relaxing again. The key is a digest of everything that sets the
energy scale: the engine, its settings (not how many workers run them) and its code.
"""

from __future__ import annotations

import hashlib
import json

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from ..calculations.functions.thermodynamics import elemental_reference_structures, reference_energies
from .relax import RelaxWorkChain

CACHE_GROUP = "ccdcgan/references"
NOT_SCALE = ("workers", "threads_per_worker", "device", "route", "batch_atoms")
"""MLIP settings that change how fast, not which energy (the two routes agree to ≈ 10⁻⁵ eV/atom): left out of the
cache key."""


def cache_key(relax_inputs: dict) -> str:
    """Digest of the inputs that decide the reference energies: engine, its settings and its code."""
    engine = relax_inputs["engine"].value
    if engine == "mlip":
        namespace = relax_inputs["mlip"]
        settings = {k: v for k, v in namespace["settings"].get_dict().items() if k not in NOT_SCALE}
        content = {"engine": engine, "settings": settings, "code": namespace["code"].uuid}
    else:
        namespace = relax_inputs["vasp"]
        content = {
            "engine": engine,
            "parameters": namespace["parameters"].get_dict(),
            "potential_family": namespace["potential_family"].value,
            "potential_mapping": namespace["potential_mapping"].get_dict(),
            "code": namespace["code"].uuid,
        }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


class ReferencesWorkChain(WorkChain):
    """Energy per atom of each element's ground-state crystal with the given relax engine, cached across runs."""

    @classmethod
    def define(cls, spec):
        """Inputs, outline, outputs."""
        super().define(spec)
        spec.input("elements", valid_type=orm.List, help="Element symbols, e.g. ['Bi', 'Se'].")
        spec.expose_inputs(RelaxWorkChain, namespace="relax", exclude=("structures",))
        spec.outline(cls.look_up, if_(cls.missing)(cls.relax, cls.store_new), cls.results)
        spec.output_namespace("energies", valid_type=orm.Float, dynamic=True, help="Element → eV/atom.")
        spec.exit_code(410, "ERROR_REFERENCE_FAILED", message="The references could not be relaxed: {message}")

    def look_up(self):
        """Find the references relaxed before with the same engine and settings."""
        self.ctx.key = cache_key(self.exposed_inputs(RelaxWorkChain, "relax"))
        group, _ = orm.Group.collection.get_or_create(CACHE_GROUP)
        query = orm.QueryBuilder().append(orm.Group, filters={"id": group.pk}, tag="group")
        elements = self.inputs.elements.get_list()
        query.append(
            orm.Float,
            with_group="group",
            filters={"extras.cache_key": self.ctx.key, "extras.element": {"in": elements}},
            project="*",
        )
        self.ctx.found = {node.base.extras.get("element"): node for (node,) in query.iterall()}
        self.ctx.missing = [e for e in elements if e not in self.ctx.found]
        if self.ctx.found:
            self.report(
                f"reusing the references of {', '.join(sorted(self.ctx.found))} (cache key {self.ctx.key[:12]})"
            )

    def missing(self) -> bool:
        """Whether any element still needs relaxing."""
        return bool(self.ctx.missing)

    def relax(self):
        """Relax the missing elements' reference crystals."""
        inputs = self.exposed_inputs(RelaxWorkChain, "relax")
        inputs["structures"] = elemental_reference_structures(orm.List(self.ctx.missing))
        return ToContext(relaxation=self.submit(RelaxWorkChain, **inputs))

    def store_new(self):
        """Turn the relaxed references into energies and cache them."""
        node = self.ctx.relaxation
        if "relaxed" not in node.outputs:
            return self.exit_codes.ERROR_REFERENCE_FAILED.format(message=node.exit_message or "no output")
        statuses = node.outputs.relaxed.info("status").tolist()
        if any(status != "converged" for status in statuses):
            return self.exit_codes.ERROR_REFERENCE_FAILED.format(
                message=f"statuses {dict(zip(self.ctx.missing, statuses))}"
            )
        energies = reference_energies(node.outputs.relaxed)
        group = orm.Group.collection.get(label=CACHE_GROUP)
        for element, energy in energies.items():
            energy.base.extras.set_many({"element": element, "cache_key": self.ctx.key})
            group.add_nodes(energy)
            self.ctx.found[element] = energy
        return None

    def results(self):
        """Output one energy per requested element."""
        for element in self.inputs.elements.get_list():
            self.out(f"energies.{element}", self.ctx.found[element])
