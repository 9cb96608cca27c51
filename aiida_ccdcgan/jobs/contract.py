"""The contract between the compute-node scripts (``ccdcgan-train``, ``-sample``, ``-relax``) and the AiiDA layer.

The files each script reads and writes, its exit codes, the models each job needs, and the one line on stderr with
which a script states its failure (its code, the training stage it failed in, a message). The CalcJobs, parsers and
workflows import this module and nothing else of the scripts; it imports nothing of the package.
"""

from __future__ import annotations

import dataclasses
import re

EXIT_OK = 0
EXIT_BAD_INPUT = 10
EXIT_NAN_LOSS = 11
EXIT_OUT_OF_MEMORY = 12
EXIT_MISSING_EXTRA = 13

STDOUT, STDERR = "stdout.txt", "stderr.txt"
"""Where a CalcJob captures a script's standard output and error."""
CONFIG_FILE = "config.json"
"""The TrainingConfig (``ccdcgan-train``, ``ccdcgan-sample``)."""

TRAINING_DATA = "data.extxyz"
"""``ccdcgan-train``'s dataset: extended XYZ with ``formation_energy`` and optionally ``split`` per frame."""
MODELS_FOLDER = "models"
"""``ccdcgan-train``'s output folder (``<role>.keras``, the metrics, the curves); ``ccdcgan-sample``'s models."""
METRICS_FILE = "metrics.json"
LEARNING_CURVES_FILE = "learning_curves.png"
GAN_CHECKPOINT = "gan_checkpoint.npz"
"""Within the gan stage: weights, optimizer states and losses every 500 steps; a rerun continues from it."""

SAMPLES_FOLDER = "samples"
"""``ccdcgan-sample``'s output folder."""
SAMPLING_SUMMARY = "sampling.json"
CANDIDATES_FILE = "candidates.extxyz"

RELAX_SETTINGS_FILE = "settings.json"
RELAX_INPUT = "structures.extxyz"
RELAX_FOLDER = "relaxation"
"""``ccdcgan-relax``'s output folder."""
PARTIAL_FILE, RELAXED_FILE, RELAX_SUMMARY = "partial.extxyz", "relaxed.extxyz", "relax.json"
RESUME_FILE = "resume.extxyz"
"""An interrupted run's ``partial.extxyz``, copied in for ``--resume``."""

SAMPLING_MODELS = ("generator", "site_decoder", "lattice_decoder")
"""The models every ``ccdcgan-sample`` run needs."""
GRAPH_SCREENING_MODELS = ("constraint", "site_encoder", "lattice_encoder")
"""The models that give a decoded crystal's formation energy with crystal energy input ``graph``: the encoders read
it back, the constraint judges it."""


def screening_models(config: dict) -> tuple[str, ...]:
    """The models that give a decoded crystal's formation energy under the TrainingConfig dict ``config``:
    :data:`GRAPH_SCREENING_MODELS`, or ``crystal_energy`` alone where its input is ``partial_rdfs``."""
    if config.get("crystal_energy", {}).get("input") == "partial_rdfs":
        return ("crystal_energy",)
    return GRAPH_SCREENING_MODELS


@dataclasses.dataclass(frozen=True)
class ScriptError:
    """A script's stated failure: its exit code, the training stage it failed in (if any) and why."""

    code: int
    message: str
    stage: str | None = None

    def line(self) -> str:
        """The error line the script prints to stderr."""
        stage = f" [stage {self.stage}]" if self.stage else ""
        return f"ERROR [code {self.code}]{stage}: {self.message}"


_ERROR_LINE = re.compile(r"^ERROR \[code (\d+)\](?: \[stage (\w+)\])?: (.*)$", re.MULTILINE)


def read_error(stderr: str) -> ScriptError | None:
    """The first failure a script stated in ``stderr``, or None."""
    match = _ERROR_LINE.search(stderr)
    if match is None:
        return None
    return ScriptError(int(match.group(1)), match.group(3), match.group(2))
