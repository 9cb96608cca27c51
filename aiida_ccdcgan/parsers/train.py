"""Parser of ``ccdcgan.train``: models, metrics and learning curves become nodes."""

import json

from aiida import orm

from ..data.model import KerasModelData
from ..jobs.contract import LEARNING_CURVES_FILE, METRICS_FILE, MODELS_FOLDER
from ..models.config import model_file
from .base import ScriptParser


class TrainParser(ScriptParser):
    """Turn the retrieved ``models/`` folder into KerasModelData nodes, a metrics Dict and the learning-curve PNG."""

    def parse(self, **kwargs):
        """Parse the retrieved files."""
        failure = self.job_failure()
        if failure is not None:
            return failure
        with self.retrieved.as_path() as root:
            folder = root / MODELS_FOLDER
            if not (folder / METRICS_FILE).is_file():
                return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=f"{MODELS_FOLDER}/{METRICS_FILE}")
            metrics = json.loads((folder / METRICS_FILE).read_text())
            for path in sorted(folder.glob(model_file("*"))):
                self.out(f"models.{path.stem}", KerasModelData.from_training_run(path, metrics))
            if (folder / LEARNING_CURVES_FILE).is_file():
                self.out("learning_curves", orm.SinglefileData(folder / LEARNING_CURVES_FILE))
        self.out("metrics", orm.Dict(metrics))
        return None
