"""``ccdcgan.train.base``: ``ccdcgan.train`` with automatic restarts (NaN loss, out of memory, walltime)."""

from __future__ import annotations

import dataclasses

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from ..calculations.train import TrainCalculation
from ..jobs.contract import STDERR, read_error
from ..models.config import TrainingConfig, training_stage
from .protocols import ProtocolMixin


class TrainBaseWorkChain(ProtocolMixin, BaseRestartWorkChain):
    """Run ``ccdcgan.train`` and restart it when it fails in a way that a changed input can fix.

    Handlers: a NaN loss lowers the failing stage's learning rate ×0.1; out of memory halves its batch size;
    running out of walltime restarts as it was. Every restart reuses the finished stages of the previous run
    (its remote folder), so only the failed stage and the ones after it are trained again.
    """

    _process_class = TrainCalculation
    _protocol_name = "train"
    LEARNING_RATE_FACTOR = 0.1

    @classmethod
    def define(cls, spec):
        """Inputs (those of ``ccdcgan.train`` under ``train``), outline, outputs."""
        super().define(spec)
        spec.expose_inputs(TrainCalculation, namespace="train")
        spec.expose_outputs(TrainCalculation)
        spec.outline(cls.setup, while_(cls.should_run_process)(cls.run_process, cls.inspect_process), cls.results)
        spec.exit_code(
            320, "ERROR_UNRECOVERABLE_FAILURE", message="The calculation failed in a way no restart can fix."
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.Code,
        dataset: orm.SinglefileData,
        elements,
        protocol: str | None = None,
        overrides: dict | None = None,
        options: dict | None = None,
    ):
        """Return a builder with the inputs of ``protocol`` (``fast`` or ``paper``) for ``dataset`` and ``elements``.

        ``overrides`` is merged into the protocol's values (``{"config": {"gan": {"steps": 100}}}``); ``options``
        into the CalcJob's metadata options (e.g. resources and walltime of a GPU Computer).
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        config = inputs["config"]
        config.setdefault("representation", {})["elements"] = list(elements)
        TrainingConfig.from_dict(config)  # refuse a bad merge here, with the setting named
        builder = cls.get_builder()
        builder.max_iterations = orm.Int(inputs["max_iterations"])
        builder.train.code = code
        builder.train.dataset = dataset
        builder.train.config = orm.Dict(config)
        for key, value in {**inputs.get("options", {}), **(options or {})}.items():
            builder.train.metadata.options[key] = value
        return builder

    def setup(self):
        """Collect the inputs of the first calculation."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(TrainCalculation, "train"))

    def _restart_after(self, node, change: str, setting: str | None = None, factor: float | None = None):
        """Change ``setting`` of the failed stage by ``factor`` (if given), reuse the node's finished stages, report."""
        stage = _failed_stage(node)
        if setting is not None:
            if stage is None:
                self.report(
                    f"{node.process_label}<{node.pk}> failed ({node.exit_message}) in no stage named; cannot {change}."
                )
                return ProcessHandlerReport(True, self.exit_codes.ERROR_UNRECOVERABLE_FAILURE)
            config = self.ctx.inputs.config.get_dict()
            for section in training_stage(stage).sections:
                settings = config.setdefault(section, {})
                value = settings.get(setting, _default(section, setting)) * factor
                settings[setting] = max(1, int(value)) if setting == "batch_size" else value
            self.ctx.inputs.config = orm.Dict(config)
        self.ctx.inputs.parent_folder = node.outputs.remote_folder
        self.report(
            f"{node.process_label}<{node.pk}> failed ({node.exit_message}); {change} and restart with its finished stages."
        )
        return ProcessHandlerReport(True)

    @process_handler(priority=500, exit_codes=[TrainCalculation.exit_codes.ERROR_NAN_LOSS])
    def handle_nan_loss(self, node):
        """A loss became NaN: lower the failed stage's learning rate."""
        return self._restart_after(
            node, f"lower the learning rate ×{self.LEARNING_RATE_FACTOR}", "learning_rate", self.LEARNING_RATE_FACTOR
        )

    @process_handler(priority=490, exit_codes=[TrainCalculation.exit_codes.ERROR_OUT_OF_MEMORY])
    def handle_out_of_memory(self, node):
        """Out of memory: halve the failed stage's batch size."""
        return self._restart_after(node, "halve the batch size", "batch_size", 0.5)

    @process_handler(priority=480, exit_codes=[TrainCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME])
    def handle_out_of_walltime(self, node):
        """Out of walltime: restart as it was, from the finished stages."""
        return self._restart_after(node, "keep the settings")


def _failed_stage(node) -> str | None:
    """The training stage the script of ``node`` says it failed in (its error line on stderr), or None."""
    retrieved = node.outputs.retrieved if "retrieved" in node.outputs else None
    if retrieved is None or STDERR not in retrieved.base.repository.list_object_names():
        return None
    error = read_error(retrieved.base.repository.get_object_content(STDERR))
    return None if error is None else error.stage


def _default(section: str, setting: str):
    """The default value of ``setting`` in the TrainingConfig ``section``."""
    field = next(field for field in dataclasses.fields(TrainingConfig) if field.name == section)
    return getattr(field.default_factory(), setting)
