"""Parser of ``ccdcgan.relax.mlip``: every relaxed structure in one batch node, and the summary."""

import json

from aiida import orm

from ..data.structures import StructureBatchData
from ..jobs.contract import RELAX_FOLDER, RELAX_SUMMARY, RELAXED_FILE
from .base import ScriptParser

COLUMNS = ("status", "total_energy", "energy_per_atom", "steps", "max_force", "volume_ratio", "seconds")


class RelaxParser(ScriptParser):
    """Turn ``relaxation/relaxed.extxyz`` into a StructureBatchData and ``relax.json`` into a Dict."""

    def parse(self, **kwargs):
        """Parse the retrieved files."""
        from ase.io import read
        from pymatgen.io.ase import AseAtomsAdaptor

        from ..relaxation.settings import Status

        failure = self.job_failure()
        if failure is not None:
            return failure
        with self.retrieved.as_path() as root:
            folder = root / RELAX_FOLDER
            for name in (RELAX_SUMMARY, RELAXED_FILE):
                if not (folder / name).is_file():
                    return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=f"{RELAX_FOLDER}/{name}")
            summary = json.loads((folder / RELAX_SUMMARY).read_text())
            frames = read(folder / RELAXED_FILE, index=":", format="extxyz")
        info = {name: [frame.info[name] for frame in frames] for name in COLUMNS}
        info["exit_code"] = [Status(status).exit_code for status in info["status"]]
        info["error"] = [frame.info.get("error", "") for frame in frames]
        structures = [AseAtomsAdaptor.get_structure(frame) for frame in frames]
        self.out("relaxed", StructureBatchData.from_structures(structures, info))
        self.out("summary", orm.Dict(summary))
        if Status.CONVERGED.value not in summary["statuses"]:
            return self.exit_codes.ERROR_NONE_CONVERGED.format(statuses=summary["statuses"])
        return None
