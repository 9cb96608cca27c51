"""``ccdcgan.inverse_design``: train (or take) the CCDCGAN models, then generate → decode → relax → judge, round by round.

Outline: train the autoencoders, constraint and GAN (``ccdcgan.train.base``) unless ``models`` are given →
elemental references (``ccdcgan.references``, cached) → for each round: sample (``ccdcgan.sample``; with
``dcgan_constraint`` screened by the constraint's prediction) → the valid candidates → relax (``ccdcgan.relax``) →
formation energy, hull and classification against everything known before the round (``ccdcgan.assess_relaxed``;
the hull and the "distinct" reference grow with every round) → Groups ``<prefix>/round-<k>/{candidates, relaxed,
stable, distinct}`` → (with ``fine_tune_steps``, before the next round) the training set plus the new distinct
crystals within ``fine_tune_max_e_above_hull`` of the hull, and the GAN trained that many more steps on it
(``ccdcgan.train.base``, stage gan) → ``summary``: the paper's table per round and in total.

Candidates stay one batch node per round; only the relaxed, converged crystals become single StructureData, each
with queryable extras (formation energy, E_hull, class, distinct, round, mode, the generator's uuid).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_

from ..calculations.functions.design import (
    augmented_training_set,
    design_summary,
    fine_tuning_additions,
    known_before_round,
    new_candidates,
    training_set,
    valid_candidates,
)
from ..calculations.functions.thermodynamics import assess
from ..calculations.sample import SampleCalculation, models_refusal
from ..common import extras
from ..common.validators import define_elements_input
from ..data.model import KerasModelData
from ..jobs.contract import SAMPLING_MODELS, screening_models
from ..thermodynamics import shared_hull_refusal
from .protocols import ProtocolMixin
from .references import ReferencesWorkChain
from .relax import RelaxWorkChain, relaxation_energy_scale
from .train import TrainBaseWorkChain

MODES = {"dcgan": "dcgan", "dcgan_constraint": "dcgan", "ccdcgan": "ccdcgan"}
"""Loop mode → the GAN training mode it needs (DCGAN + constraint screens the samples of a plain DCGAN)."""

ROUND_GROUPS = ("candidates", "relaxed", "stable", "distinct")


def _validate_inputs(inputs, _):
    """Need models or training inputs; the training's GAN mode must be the loop's."""
    mode = inputs["mode"].value
    if mode not in MODES:
        return f"mode must be one of {', '.join(MODES)}, not {mode!r}."
    if inputs["rounds"].value < 1 or inputs["graphs_per_round"].value < 1:
        return "rounds and graphs_per_round must be at least 1."
    has_train_code = "code" in inputs.get("train", {}).get("train", {})
    if inputs["fine_tune_steps"].value > 0 and "fine_tune_code" not in inputs and not has_train_code:
        return "fine_tune_steps needs a ccdcgan-train code: give fine_tune_code (or train.train.code)."
    if "models" in inputs and inputs["models"]:
        if "config" not in inputs:
            return "Given models need the config they were trained with (input config)."
        config = inputs["config"].get_dict()
        screening = screening_models(config)
        missing = [r for r in (*SAMPLING_MODELS, *screening) if r not in inputs["models"]]
        if missing and (mode == "dcgan_constraint" or set(missing) - set(screening)):
            return f"models lacks {', '.join(missing)}; give all trained models or train inputs instead."
        return _elements_refusal(inputs["elements"].get_list(), config) or models_refusal(inputs["models"], config)
    if "train" not in inputs or "train" not in inputs["train"]:
        return "Give either trained models (models + config) or the training inputs (train)."
    config = inputs["train"]["train"]["config"].get_dict()
    gan_mode = config.get("gan", {}).get("mode", "ccdcgan")
    if gan_mode != MODES[mode]:
        return f"The loop mode {mode} needs a GAN trained in mode {MODES[mode]}, but train's config has {gan_mode}."
    return _elements_refusal(inputs["elements"].get_list(), config)


def _elements_refusal(elements: list, config: dict) -> str | None:
    """The loop's elements must be the representation's channels, in their order."""
    channels = list(config.get("representation", {}).get("elements") or [])
    if elements != channels:
        return (
            f"elements {elements} differ from the representation's element channels {channels} in the training "
            "configuration; give the same symbols in the same order."
        )
    return None


class InverseDesignWorkChain(ProtocolMixin, WorkChain):
    """Generate, relax and judge new crystals of two or more elements with DCGAN, DCGAN + constraint or CCDCGAN."""

    _protocol_name = "inverse_design"

    @classmethod
    def define(cls, spec):
        """Inputs, outline, outputs."""
        super().define(spec)
        define_elements_input(spec)
        spec.input(
            "dataset",
            valid_type=orm.SinglefileData,
            help="The training set: extended XYZ with formation_energy (eV/atom) per frame (load_bise_database()).",
        )
        spec.input("mode", valid_type=orm.Str, default=lambda: orm.Str("ccdcgan"), help=", ".join(MODES))
        spec.input("rounds", valid_type=orm.Int, default=lambda: orm.Int(1), help="Sampling rounds.")
        spec.input("graphs_per_round", valid_type=orm.Int, help="Crystal graphs generated per round (paper: 13,000).")
        spec.input("seed", valid_type=orm.Int, default=lambda: orm.Int(0), help="Round k samples with seed + k.")
        spec.input(
            "screening_max_energy",
            valid_type=orm.Float,
            default=lambda: orm.Float(0.3),
            help="dcgan_constraint only: keep valid crystals whose predicted E_f (the constraint's for the decoded "
            "crystal, re-encoded) is at most this (eV/atom) — the paper's '0.3 eV/atom tolerance' read as 0.3 eV/atom "
            "above the elemental tie line.",
        )
        spec.input(
            "database_on_hull",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(True),
            help="Put the training set's formation energies on the hull (only if computed like the relaxations).",
        )
        spec.input(
            "new_candidates_only",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help="Relax only the valid candidates that, as decoded, match no training crystal, no crystal of an "
            "earlier round and no earlier candidate of the round (StructureMatcher): no relaxation is spent on a "
            "crystal already known.",
        )
        spec.input(
            "fine_tune_steps",
            valid_type=orm.Int,
            default=lambda: orm.Int(0),
            help="After each round but the last, add the distinct crystals within fine_tune_max_e_above_hull of the "
            "hull to the training set and train the GAN this many more steps on it (0: never).",
        )
        spec.input(
            "fine_tune_max_e_above_hull",
            valid_type=orm.Float,
            default=lambda: orm.Float(0.1),
            help="eV/atom: which new distinct crystals join the training set for fine-tuning.",
        )
        spec.input(
            "fine_tune_code",
            valid_type=orm.AbstractCode,
            required=False,
            help="A ccdcgan-train code for fine-tuning; default: train.train.code.",
        )
        spec.input("group_prefix", valid_type=orm.Str, required=False, help="Default: ccdcgan/inverse_design/<pk>.")
        spec.input_namespace("models", valid_type=KerasModelData, dynamic=True, required=False, help="Trained models.")
        spec.input("config", valid_type=orm.Dict, required=False, help="The TrainingConfig of the given models.")
        spec.expose_inputs(
            TrainBaseWorkChain,
            namespace="train",
            exclude=("train.dataset",),
            namespace_options={"required": False, "populate_defaults": False},
        )
        spec.expose_inputs(
            SampleCalculation, namespace="sample", exclude=("config", "models", "count", "seed", "max_predicted_energy")
        )
        spec.expose_inputs(RelaxWorkChain, namespace="relax", exclude=("structures",))
        spec.inputs.validator = _validate_inputs
        spec.outline(
            cls.setup,
            if_(cls.needs_training)(cls.train, cls.inspect_training),
            cls.references,
            cls.inspect_references,
            while_(cls.more_rounds)(
                cls.sample,
                cls.inspect_sample,
                if_(cls.has_candidates)(cls.relax, cls.assess),
                cls.finish_round,
                if_(cls.should_fine_tune)(cls.fine_tune, cls.inspect_fine_tune),
            ),
            cls.results,
        )
        spec.output_namespace("models", valid_type=KerasModelData, dynamic=True, help="The models that generated.")
        spec.output("summary", valid_type=orm.Dict, help="The paper's table: one row per round and the total.")
        spec.output("hull", valid_type=orm.Dict, required=False, help="The stable phases after the last round.")
        spec.exit_code(410, "ERROR_INVALID_DATASET", message="The dataset cannot train the models: {message}")
        spec.exit_code(
            411, "ERROR_ENERGY_SCALES_DIFFER", message="The training set cannot join the rounds' hull: {message}"
        )
        spec.exit_code(420, "ERROR_SUB_PROCESS_FAILED", message="{process} failed: {message}")

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: dict[str, orm.AbstractCode],
        dataset: orm.SinglefileData,
        elements,
        mode: str = "ccdcgan",
        protocol: str | None = None,
        overrides: dict | None = None,
    ):
        """A builder for ``protocol`` (``fast`` or ``paper``): ``codes`` maps ``train``, ``sample`` and ``relax`` to
        codes (``relax`` a VASP code when ``overrides`` sets ``relax_engine: vasp``). ``overrides`` is merged into
        the protocol's values (``{"graphs_per_round": 200, "train": {"config": {"gan": {"steps": 300}}}}``).
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        if mode not in MODES:
            raise ValueError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}.")
        train_overrides = _merge_mode(inputs.get("train", {}), MODES[mode])
        train = TrainBaseWorkChain.get_builder_from_protocol(
            codes["train"], dataset, elements, protocol=inputs["train_protocol"], overrides=train_overrides
        )
        relax = RelaxWorkChain.get_builder_from_protocol(
            None, codes["relax"], engine=inputs["relax_engine"], protocol=inputs["relax_protocol"],
            overrides=inputs.get("relax", {}),
        )  # fmt: skip
        builder = cls.get_builder()
        builder.elements = orm.List(list(elements))
        builder.dataset = dataset
        builder.mode = orm.Str(mode)
        builder.rounds = orm.Int(inputs["rounds"])
        builder.graphs_per_round = orm.Int(inputs["graphs_per_round"])
        builder.seed = orm.Int(inputs["seed"])
        builder.screening_max_energy = orm.Float(inputs["screening_max_energy"])
        builder.new_candidates_only = orm.Bool(inputs["new_candidates_only"])
        train_inputs = train._inputs(prune=True)
        del train_inputs["train"]["dataset"]  # the loop passes its own dataset on
        builder.train._merge(train_inputs)
        builder.sample.code = codes["sample"]
        builder.sample.step_scale = orm.Str(inputs["step_scale"])
        builder.sample.metadata.options._merge(train.train.metadata.options._inputs(prune=True))
        builder.relax._merge(relax._inputs(prune=True))
        return builder

    def setup(self):
        """Round counter, group prefix, the training set as a batch (a file that is not one ends the loop)."""
        self.ctx.round = 0
        self.ctx.assessed = {}  # label → uuid of each round's assessed batch
        self.ctx.rows = {}  # label → uuid of each round's sampling / assessment summary
        self.ctx.prefix = self.inputs.group_prefix.value if "group_prefix" in self.inputs else None
        self.ctx.prefix = self.ctx.prefix or f"ccdcgan/inverse_design/{self.node.pk}"
        try:
            training = training_set(self.inputs.dataset)
        except ValueError as exception:  # DatasetError too: a file that is not a training set
            return self.exit_codes.ERROR_INVALID_DATASET.format(message=str(exception))
        self.ctx.training_uuid = training.uuid
        if self.inputs.database_on_hull.value:
            scale = relaxation_energy_scale(self.exposed_inputs(RelaxWorkChain, "relax"))
            refusal = shared_hull_refusal(
                training.info("energy_scale").tolist(), scale, self.inputs.elements.get_list()
            )
            if refusal:
                return self.exit_codes.ERROR_ENERGY_SCALES_DIFFER.format(message=f"{refusal} (database_on_hull False)")
        if "models" in self.inputs and self.inputs.models:
            self.ctx.models = {role: node.uuid for role, node in self.inputs.models.items()}
            self.ctx.config = self.inputs.config.get_dict()

    def needs_training(self) -> bool:
        """Whether models must be trained first."""
        return "models" not in self.ctx

    def train(self):
        """Train the autoencoders, the constraint and the GAN on the dataset."""
        inputs = self.exposed_inputs(TrainBaseWorkChain, "train")
        inputs["train"]["dataset"] = self.inputs.dataset
        inputs["metadata"] = {"call_link_label": "train"}
        return ToContext(training=self.submit(TrainBaseWorkChain, **inputs))

    def inspect_training(self):
        """Take the trained models."""
        node = self.ctx.training
        if not node.is_finished_ok:
            return self._failed(node)
        self.ctx.models = {role: model.uuid for role, model in node.outputs.models.items()}
        self.ctx.config = node.inputs.train.config.get_dict()
        stages = node.outputs.metrics.get_dict()["stages"]
        reconstruction = stages["autoencoders"].get("reconstruction_validation", {}).get("ratio")
        constraint = stages["constraint"].get("validation", {}).get("mae")
        crystal = stages["constraint"].get("validation_crystal_energy", {}).get("mae")
        self.report(
            f"models trained: held-out reconstruction {reconstruction}, constraint MAE {constraint} eV/atom"
            + (f", crystal energy MAE {crystal} eV/atom" if crystal is not None else "")
            + f", {sum(stage['seconds'] for stage in stages.values()):.0f} s"
        )
        return None

    def references(self):
        """The elemental references, relaxed like the candidates will be (cached across runs)."""
        inputs = {"elements": self.inputs.elements, "relax": self.exposed_inputs(RelaxWorkChain, "relax")}
        inputs["metadata"] = {"call_link_label": "references"}
        return ToContext(references=self.submit(ReferencesWorkChain, **inputs))

    def inspect_references(self):
        """Keep the reference energies."""
        node = self.ctx.references
        if not node.is_finished_ok:
            return self._failed(node)
        self.ctx.reference_energies = {element: f.value for element, f in node.outputs.energies.items()}
        return None

    def more_rounds(self) -> bool:
        """Whether another round is due."""
        return self.ctx.round < self.inputs.rounds.value

    def sample(self):
        """Generate this round's crystal graphs and decode them."""
        self.ctx.round += 1
        inputs = self.exposed_inputs(SampleCalculation, "sample")
        inputs["config"] = orm.Dict(self.ctx.config)
        # every candidate's predicted E_f, its decoded crystal's E_f; screening if asked
        roles = (*SAMPLING_MODELS, "constraint", *screening_models(self.ctx.config))
        inputs["models"] = {role: orm.load_node(uuid) for role, uuid in self.ctx.models.items() if role in roles}
        if self.inputs.mode.value == "dcgan_constraint":
            inputs["max_predicted_energy"] = self.inputs.screening_max_energy
        inputs["count"] = self.inputs.graphs_per_round
        inputs["seed"] = orm.Int(self.inputs.seed.value + self.ctx.round)
        inputs["metadata"] = {**inputs.get("metadata", {}), "call_link_label": f"sample_round_{self.ctx.round}"}
        return ToContext(sampling=self.submit(SampleCalculation, **inputs))

    def inspect_sample(self):
        """Keep the valid candidates of the round; file the batch in the round's candidates group."""
        node = self.ctx.sampling
        if not node.is_finished_ok:
            return self._failed(node)
        summary = node.outputs.summary
        self.ctx.rows[f"sampling_{self.ctx.round}"] = summary.uuid
        self.ctx.candidates_uuid = None
        new = ""
        if "candidates" in node.outputs:
            self._group("candidates").add_nodes(node.outputs.candidates)
            if summary["valid"]:
                candidates = valid_candidates(node.outputs.candidates)
                if self.inputs.new_candidates_only.value:
                    candidates = new_candidates(candidates, self._known_before_round()["structures"])
                    new = f", {candidates.count} of them new"
                self.ctx.candidates_uuid = candidates.uuid if candidates.count else None
        self.report(f"round {self.ctx.round}: {summary['valid']} valid crystals of {summary['graphs']} graphs{new}")
        return None

    def has_candidates(self) -> bool:
        """Whether the round has valid crystals to relax."""
        return self.ctx.candidates_uuid is not None

    def relax(self):
        """Relax the round's valid crystals."""
        inputs = self.exposed_inputs(RelaxWorkChain, "relax")
        inputs["structures"] = orm.load_node(self.ctx.candidates_uuid)
        inputs["metadata"] = {"call_link_label": f"relax_round_{self.ctx.round}"}
        return ToContext(relaxation=self.submit(RelaxWorkChain, **inputs))

    def assess(self):
        """Formation energy, hull and classes against everything known before the round; groups and extras."""
        node = self.ctx.relaxation
        if "relaxed" not in node.outputs:
            return self._failed(node)
        relaxed = node.outputs.relaxed
        if node.outputs.summary["statuses"].get("converged", 0) == 0:
            self.report(f"round {self.ctx.round}: no relaxation converged ({node.outputs.summary['statuses']})")
            return None
        known = self._known_before_round()
        assessment, structures = assess(
            relaxed,
            self.ctx.reference_energies,
            node.outputs.summary["energy_scale"],
            known_phases=known["phases"],
            known_structures=known["structures"],
        )
        for structure in structures.values():
            structure.base.extras.set_many(
                {
                    extras.DESIGN_ROUND: self.ctx.round,
                    extras.DESIGN_MODE: self.inputs.mode.value,
                    extras.GENERATOR: self.ctx.models["generator"],
                }
            )
        self._group("relaxed").add_nodes(list(structures.values()))
        classes = {"stable": [], "distinct": []}
        for structure in structures.values():
            if structure.base.extras.get(extras.CLASSIFICATION) == "stable":
                classes["stable"].append(structure)
            if structure.base.extras.get(extras.DISTINCT):
                classes["distinct"].append(structure)
        for name, nodes in classes.items():
            self._group(name).add_nodes(nodes)
        self.ctx.assessed[f"round_{self.ctx.round:03d}"] = assessment.outputs.assessed.uuid
        self.ctx.rows[f"assessment_{self.ctx.round}"] = assessment.outputs.summary.uuid
        self.ctx.hull_uuid = assessment.outputs.hull.uuid
        return None

    def finish_round(self):
        """Make sure the round's groups exist (also when empty); report the round's line of the table."""
        for name in ROUND_GROUPS:
            self._group(name)
        summary = self.ctx.rows.get(f"assessment_{self.ctx.round}")
        counts = orm.load_node(summary).get_dict() if summary else {}
        self.report(
            f"round {self.ctx.round}: {counts.get('converged', 0)} relaxed, {counts.get('stable', 0)} stable, "
            f"{counts.get('distinct_stable', 0)} distinct stable; groups {self.ctx.prefix}/round-{self.ctx.round}/…"
        )

    def should_fine_tune(self) -> bool:
        """Whether to fine-tune the GAN before the next round: asked for, a round follows, and new crystals."""
        if self.inputs.fine_tune_steps.value < 1 or not self.more_rounds():
            return False
        label = f"round_{self.ctx.round:03d}"
        threshold = self.inputs.fine_tune_max_e_above_hull.value
        added = (
            fine_tuning_additions(orm.load_node(self.ctx.assessed[label]), threshold)
            if label in self.ctx.assessed
            else []
        )
        if not added:
            self.report(f"round {self.ctx.round}: no new distinct crystal within {threshold} eV/atom; no fine-tuning")
        return bool(added)

    def fine_tune(self):
        """Train the GAN further on the training set plus the new low-energy distinct crystals of all rounds."""
        dataset = augmented_training_set(
            self.inputs.dataset,
            self.inputs.fine_tune_max_e_above_hull,
            **{label: orm.load_node(uuid) for label, uuid in self.ctx.assessed.items()},
        )
        config = {**self.ctx.config, "gan": {**self.ctx.config["gan"], "steps": self.inputs.fine_tune_steps.value}}
        code = self.inputs.fine_tune_code if "fine_tune_code" in self.inputs else self.inputs.train.train.code
        sampling_options = self.exposed_inputs(SampleCalculation, "sample").get("metadata", {}).get("options", {})
        options = {key: value for key, value in sampling_options.items() if key != "parser_name"}  # same machine
        inputs = {
            "train": {
                "code": code,
                "config": orm.Dict(config),
                "dataset": dataset,
                "stage": orm.Str("gan"),
                "fine_tune": orm.Bool(True),
                "models": {role: orm.load_node(uuid) for role, uuid in self.ctx.models.items()},
                "metadata": {"options": options},
            },
            "metadata": {"call_link_label": f"fine_tune_round_{self.ctx.round}"},
        }
        return ToContext(fine_tuning=self.submit(TrainBaseWorkChain, **inputs))

    def inspect_fine_tune(self):
        """Sample the next rounds with the fine-tuned generator."""
        node = self.ctx.fine_tuning
        if not node.is_finished_ok:
            return self._failed(node)
        for role in ("generator", "discriminator"):
            self.ctx.models[role] = node.outputs.models[role].uuid
        self.report(f"round {self.ctx.round}: GAN fine-tuned for {self.inputs.fine_tune_steps.value} steps")
        return None

    def results(self):
        """The table of all rounds, the final hull and the models."""
        self.out("summary", design_summary(**{label: orm.load_node(uuid) for label, uuid in self.ctx.rows.items()}))
        if "hull_uuid" in self.ctx:
            self.out("hull", orm.load_node(self.ctx.hull_uuid))
        self.out_many({f"models.{role}": orm.load_node(uuid) for role, uuid in self.ctx.models.items()})

    def _known_before_round(self) -> dict:
        """The crystals and phases this round is judged against (``known_before_round``, run once per round)."""
        if self.ctx.get("known_round") != self.ctx.round:
            previous = {label: orm.load_node(uuid) for label, uuid in self.ctx.assessed.items()}
            known = known_before_round(orm.load_node(self.ctx.training_uuid), self.inputs.database_on_hull, **previous)
            self.ctx.known_round, self.ctx.known = self.ctx.round, {name: node.uuid for name, node in known.items()}
        return {name: orm.load_node(uuid) for name, uuid in self.ctx.known.items()}

    def _group(self, name: str) -> orm.Group:
        """The group ``<prefix>/round-<k>/<name>`` of the current round."""
        group, _ = orm.Group.collection.get_or_create(f"{self.ctx.prefix}/round-{self.ctx.round}/{name}")
        return group

    def _failed(self, node):
        """The exit code for a failed child."""
        return self.exit_codes.ERROR_SUB_PROCESS_FAILED.format(
            process=f"{node.process_label}<{node.pk}>", message=node.exit_message or f"exit status {node.exit_status}"
        )


def _merge_mode(train_overrides: dict, gan_mode: str) -> dict:
    """``train_overrides`` with the GAN training mode set."""
    config = dict(train_overrides.get("config", {}))
    config["gan"] = {**config.get("gan", {}), "mode": gan_mode}
    return {**train_overrides, "config": config}
