"""``ccdcgan.train``: run ``ccdcgan-train`` on any AiiDA Computer (localhost by default, a GPU machine in production)."""

import json
import os

from aiida import orm
from aiida.engine import CalcJob

from ..data.model import KerasModelData
from ..jobs.contract import (
    CONFIG_FILE,
    LEARNING_CURVES_FILE,
    METRICS_FILE,
    MODELS_FOLDER,
    TRAINING_DATA,
)
from ..models.config import STAGE_NAMES, TrainingConfig, model_file, training_stage
from .common import (
    define_script_exit_codes,
    define_script_options,
    script_calcinfo,
    validate_training_config,
)

STAGES = (*STAGE_NAMES, "all")


def _validate_stage(value, _):
    """Refuse an unknown stage."""
    if value is not None and value.value not in STAGES:
        return f"stage must be one of {', '.join(STAGES)}, not {value.value!r}."
    return None


def _validate_fine_tuning(inputs, _):
    """Refuse fine-tuning without the gan stage or without the networks to continue from."""
    if "fine_tune" not in inputs or not inputs["fine_tune"].value:
        return None
    stage = inputs["stage"].value if "stage" in inputs else "all"
    if stage != "gan":
        return f"fine_tune continues the gan stage; set stage to gan, not {stage!r}."
    missing = [role for role in training_stage("gan").models if role not in inputs.get("models", {})]
    if missing:
        return f"fine_tune needs the networks to continue from: give {', '.join(missing)} in models."
    return None


class TrainCalculation(CalcJob):
    """Train the CCDCGAN models (autoencoders, constraint, GAN) from a configuration and an extended XYZ dataset."""

    @classmethod
    def define(cls, spec):
        """Inputs, outputs and exit codes."""
        super().define(spec)
        spec.input(
            "config",
            valid_type=orm.Dict,
            validator=validate_training_config,
            help="A TrainingConfig as a dictionary: representation, the four stages, seed.",
        )
        spec.input(
            "dataset",
            valid_type=orm.SinglefileData,
            help="Extended XYZ with formation_energy (eV/atom) and optionally split in each frame's info.",
        )
        spec.input(
            "parent_folder",
            valid_type=orm.RemoteData,
            required=False,
            help="The remote folder of an earlier run on the same Computer: its finished stages are reused.",
        )
        spec.input_namespace(
            "models",
            valid_type=KerasModelData,
            dynamic=True,
            required=False,
            help="Models to start from, copied into the run's models folder (e.g. to fine-tune the GAN).",
        )
        spec.input(
            "stage",
            valid_type=orm.Str,
            default=lambda: orm.Str("all"),
            validator=_validate_stage,
            help="Which stage to train: autoencoders, constraint, gan or all.",
        )
        spec.input(
            "fine_tune",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help="Continue the GAN from the generator and discriminator given in `models` for the configuration's "
            "gan.steps (stage gan): the inverse-design loop's fine-tuning.",
        )
        spec.inputs.validator = _validate_fine_tuning
        define_script_options(spec, "ccdcgan.train")
        spec.output_namespace("models", valid_type=KerasModelData, dynamic=True, help="The trained networks, by role.")
        spec.output("metrics", valid_type=orm.Dict, help="metrics.json: dataset counts, losses, held-out quality.")
        spec.output("learning_curves", valid_type=orm.SinglefileData, required=False, help="learning_curves.png")
        define_script_exit_codes(spec)

    def prepare_for_submission(self, folder):
        """Write config.json, copy the dataset (and a parent run's models) in, run ``ccdcgan-train … --output models``."""
        config = TrainingConfig.from_dict(self.inputs.config.get_dict())
        for model in self.inputs.get("models", {}).values():
            model.verify(config.representation.digest())
        with folder.open(CONFIG_FILE, "w") as handle:
            json.dump(config.to_dict(), handle, indent=2)
        calcinfo = script_calcinfo(
            self.inputs.code,
            [
                CONFIG_FILE,
                TRAINING_DATA,
                "--output",
                MODELS_FOLDER,
                "--stage",
                self.inputs.stage.value,
                *(["--fine-tune"] if self.inputs.fine_tune.value else []),
            ],
            [
                (self.inputs.dataset.uuid, self.inputs.dataset.filename, TRAINING_DATA),
                *(
                    (model.uuid, model.filename, f"{MODELS_FOLDER}/{model_file(role)}")
                    for role, model in self.inputs.get("models", {}).items()
                ),
            ],
            # the models and metrics, not a GAN checkpoint left by an interrupted run (it stays in the remote folder)
            [
                (f"{MODELS_FOLDER}/{pattern}", ".", 2)
                for pattern in (model_file("*"), METRICS_FILE, LEARNING_CURVES_FILE)
            ],
        )
        if "parent_folder" in self.inputs:
            parent = self.inputs.parent_folder
            calcinfo.remote_copy_list = [
                (parent.computer.uuid, os.path.join(parent.get_remote_path(), MODELS_FOLDER), MODELS_FOLDER)
            ]
        return calcinfo
