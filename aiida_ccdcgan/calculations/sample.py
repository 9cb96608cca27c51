"""``ccdcgan.sample``: run ``ccdcgan-sample`` with trained models on any AiiDA Computer."""

import json

from aiida import orm
from aiida.engine import CalcJob

from ..data.model import KerasModelData, ModelFileError
from ..data.structures import StructureBatchData
from ..jobs.contract import CONFIG_FILE, MODELS_FOLDER, SAMPLES_FOLDER, SAMPLING_MODELS, screening_models
from ..models.config import GanSettings, model_file, step_scale_refusal
from .common import define_script_exit_codes, define_script_options, script_calcinfo, validate_training_config


def models_refusal(models, config: dict) -> str | None:
    """Why ``models`` (role → KerasModelData) cannot run with the TrainingConfig dict ``config``, or None.

    A model trained for another representation is named with the settings that differ (element order, grids, …)
    where it recorded its representation; a file altered since it was stored is named by its hash.
    """
    from ..models.config import TrainingConfig

    try:
        representation = TrainingConfig.from_dict(config).representation
    except (ValueError, TypeError):
        return None  # the config port's own validator reports it
    digest, wanted = representation.digest(), representation.to_dict()
    for role, model in models.items():
        if model.base.attributes.get("representation_digest") != digest:
            trained = model.base.attributes.get("representation", None) or {}
            differences = [
                f"{key} {wanted.get(key)} (trained with {value})"
                for key, value in trained.items()
                if wanted.get(key) != value
            ]
            return (
                f"The {role} model (pk {model.pk}) was trained for another representation than the configuration "
                f"describes{': ' + ', '.join(differences) if differences else ''}; use the configuration the models "
                "were trained with."
            )
        try:
            model.verify()
        except ModelFileError as exception:
            return str(exception)
    return None


def _validate_inputs(inputs, _):
    """Refuse missing or unfit models (another representation, an altered file), or a screening without a constraint."""
    if "config" not in inputs or "models" not in inputs:
        return None
    missing = [role for role in SAMPLING_MODELS if role not in inputs["models"]]
    if missing:
        return f"models lacks {', '.join(missing)}: sampling needs {', '.join(SAMPLING_MODELS)}."
    refusal = models_refusal(inputs["models"], inputs["config"].get_dict())
    if refusal:
        return refusal
    lacking = [role for role in screening_models(inputs["config"].get_dict()) if role not in inputs["models"]]
    if "max_predicted_energy" in inputs and lacking:
        return f"Screening by predicted formation energy needs models.{', models.'.join(lacking)}: " + (
            "the crystal energy network judges each decoded crystal from its partial RDFs."
            if lacking == ["crystal_energy"]
            else "the encoders read each decoded crystal back into crystal graphs, the constraint predicts its "
            "energy from them."
        )
    if inputs["count"].value < 1:
        return f"count must be at least 1, not {inputs['count'].value}."
    architecture = inputs["config"].get_dict().get("gan", {}).get("architecture", GanSettings.architecture)
    return step_scale_refusal(inputs["step_scale"].value, architecture)


class SampleCalculation(CalcJob):
    """Generate crystal graphs, decode them into crystals and judge their validity (optionally screen them)."""

    @classmethod
    def define(cls, spec):
        """Inputs, outputs and exit codes."""
        super().define(spec)
        spec.input(
            "config",
            valid_type=orm.Dict,
            validator=validate_training_config,
            help="The TrainingConfig the models were trained with.",
        )
        spec.input_namespace(
            "models",
            valid_type=KerasModelData,
            dynamic=True,
            help="generator, site_decoder, lattice_decoder; optionally constraint (the generated graphs' predicted "
            "energies) and the models that judge a decoded crystal: crystal_energy, or (crystal energy input graph) "
            "constraint, site_encoder and lattice_encoder; screening needs them.",
        )
        spec.input("count", valid_type=orm.Int, help="Number of crystal graphs to generate.")
        spec.input("seed", valid_type=orm.Int, default=lambda: orm.Int(0), help="The same seed gives the same samples.")
        spec.input(
            "max_predicted_energy",
            valid_type=orm.Float,
            required=False,
            help="Screening (DCGAN + constraint): keep valid crystals whose decoded crystal the constraint puts at "
            "or below this (eV/atom).",
        )
        spec.input(
            "step_scale",
            valid_type=orm.Str,
            default=lambda: orm.Str("learnt"),
            help="An anchored generator's step: learnt (as trained), uniform (times a factor uniform in [0, 1] "
            "for each sample: from the training graph or its element-exchanged twin to the learnt step), backoff "
            "(the learnt step, halved and then quartered for a sample whose crystal is not valid) or fallback "
            "(backoff, then no step: the training graph or its twin).",
        )
        spec.inputs.validator = _validate_inputs
        define_script_options(spec, "ccdcgan.sample")
        spec.output(
            "summary", valid_type=orm.Dict, help="sampling.json: graphs, decoded, valid, success rate, outcomes."
        )
        spec.output(
            "candidates",
            valid_type=StructureBatchData,
            required=False,
            help="Every decoded crystal, with info columns sample, outcome, predicted_formation_energy (of the "
            "generated graph) and crystal_formation_energy (of the decoded crystal; NaN where not valid).",
        )
        define_script_exit_codes(spec)

    def prepare_for_submission(self, folder):
        """Verify the models, copy them in, write config.json, run ``ccdcgan-sample``."""
        for model in self.inputs.models.values():
            model.verify()
        with folder.open(CONFIG_FILE, "w") as handle:
            json.dump(self.inputs.config.get_dict(), handle, indent=2)
        folder.get_subfolder(MODELS_FOLDER, create=True)
        arguments = [
            CONFIG_FILE,
            MODELS_FOLDER,
            "--count",
            str(self.inputs.count.value),
            "--seed",
            str(self.inputs.seed.value),
            "--step-scale",
            self.inputs.step_scale.value,
            "--output",
            SAMPLES_FOLDER,
        ]
        if "max_predicted_energy" in self.inputs:
            arguments += ["--max-predicted-energy", repr(self.inputs.max_predicted_energy.value)]
        copies = [
            (model.uuid, model.filename, f"{MODELS_FOLDER}/{model_file(role)}")
            for role, model in self.inputs.models.items()
        ]
        return script_calcinfo(self.inputs.code, arguments, copies, [SAMPLES_FOLDER])
