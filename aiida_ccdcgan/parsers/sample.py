"""Parser of ``ccdcgan.sample``: the summary and all candidates as one batch node."""

import json

from aiida import orm

from ..data.structures import StructureBatchData
from ..jobs.contract import CANDIDATES_FILE, SAMPLES_FOLDER, SAMPLING_SUMMARY
from .base import ScriptParser


class SampleParser(ScriptParser):
    """Turn ``samples/sampling.json`` into a Dict and ``samples/candidates.extxyz`` into one StructureBatchData."""

    def parse(self, **kwargs):
        """Parse the retrieved files."""
        from ase.io import read
        from pymatgen.io.ase import AseAtomsAdaptor

        failure = self.job_failure()
        if failure is not None:
            return failure
        with self.retrieved.as_path() as root:
            folder = root / SAMPLES_FOLDER
            if not (folder / SAMPLING_SUMMARY).is_file():
                return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=f"{SAMPLES_FOLDER}/{SAMPLING_SUMMARY}")
            summary = json.loads((folder / SAMPLING_SUMMARY).read_text())
            if (folder / CANDIDATES_FILE).is_file():
                frames = read(folder / CANDIDATES_FILE, index=":", format="extxyz")
                info = {name: [frame.info.get(name) for frame in frames] for name in ("sample", "outcome")}
                if all("predicted_formation_energy" in frame.info for frame in frames):
                    info["predicted_formation_energy"] = [frame.info["predicted_formation_energy"] for frame in frames]
                if any("crystal_formation_energy" in frame.info for frame in frames):  # valid crystals only
                    info["crystal_formation_energy"] = [
                        frame.info.get("crystal_formation_energy", float("nan")) for frame in frames
                    ]
                self.out(
                    "candidates",
                    StructureBatchData.from_structures([AseAtomsAdaptor.get_structure(f) for f in frames], info),
                )
        self.out("summary", orm.Dict(summary))
        return None
