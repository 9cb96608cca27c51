"""Parser of ``ccdcgan.train``: models, metrics and learning curves become nodes."""

import json

from aiida import orm

from ..calculations.common import MODELS_FOLDER
from ..data.model import KerasModelData
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
            if not (folder / "metrics.json").is_file():
                return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=f"{MODELS_FOLDER}/metrics.json")
            metrics = json.loads((folder / "metrics.json").read_text())
            for path in sorted(folder.glob("*.keras")):
                self.out(f"models.{path.stem}", KerasModelData.from_training_run(path, metrics))
            if (folder / "learning_curves.png").is_file():
                self.out("learning_curves", orm.SinglefileData(folder / "learning_curves.png"))
        self.out("metrics", orm.Dict(metrics))
        return None
