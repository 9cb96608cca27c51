"""``ccdcgan.relax.mlip``: relax a batch of crystals with ``ccdcgan-relax`` (a universal potential) on any Computer."""

import json
import os

from aiida import orm
from aiida.engine import CalcJob

from ..data.structures import StructureBatchData
from ..jobs.contract import PARTIAL_FILE, RELAX_FOLDER, RELAX_INPUT, RELAX_SETTINGS_FILE, RESUME_FILE
from .common import define_script_exit_codes, define_script_options, script_calcinfo


def validate_relax_settings(value, _):
    """Refuse settings ``ccdcgan-relax`` would refuse, before anything is submitted."""
    from ..relaxation.settings import RelaxSettings

    try:
        RelaxSettings.from_dict(value.get_dict())
    except (ValueError, TypeError) as exception:
        return f"Invalid relaxation settings: {exception}"
    return None


class RelaxCalculation(CalcJob):
    """Relax every crystal of a batch with a machine-learned potential; failures are recorded per structure."""

    @classmethod
    def define(cls, spec):
        """Inputs, outputs and exit codes."""
        super().define(spec)
        spec.input("structures", valid_type=StructureBatchData, help="The crystals to relax.")
        spec.input(
            "settings",
            valid_type=orm.Dict,
            validator=validate_relax_settings,
            help="RelaxSettings: potential, model or checkpoint, optimizer, fmax, max_steps, workers…",
        )
        spec.input(
            "parent_folder",
            valid_type=orm.RemoteData,
            required=False,
            help="The remote folder of an interrupted run on the same Computer: its finished structures are kept.",
        )
        define_script_options(spec, "ccdcgan.relax.mlip")
        spec.output(
            "relaxed",
            valid_type=StructureBatchData,
            help="Every structure in input order with info columns status, exit_code, total_energy, energy_per_atom "
            "(eV), steps, max_force, volume_ratio, seconds.",
        )
        spec.output("summary", valid_type=orm.Dict, help="relax.json: counts by status, settings, energy scale.")
        define_script_exit_codes(spec)
        spec.exit_code(
            350,
            "ERROR_NONE_CONVERGED",
            message="No structure converged ({statuses}); the outputs hold what each one did.",
        )

    def prepare_for_submission(self, folder):
        """Write settings.json and the structures as extended XYZ, run ``ccdcgan-relax``."""
        from ase.io import write
        from pymatgen.io.ase import AseAtomsAdaptor

        with folder.open(RELAX_SETTINGS_FILE, "w") as handle:
            json.dump(self.inputs.settings.get_dict(), handle, indent=2)
        with folder.open(RELAX_INPUT, "w") as handle:
            atoms = [AseAtomsAdaptor.get_atoms(s) for s in self.inputs.structures.get_structures()]
            write(handle, atoms, format="extxyz")
        arguments = [RELAX_SETTINGS_FILE, RELAX_INPUT, "--output", RELAX_FOLDER]
        calcinfo = script_calcinfo(self.inputs.code, arguments, [], [RELAX_FOLDER])
        if "parent_folder" in self.inputs:
            parent = self.inputs.parent_folder
            partial = os.path.join(parent.get_remote_path(), RELAX_FOLDER, PARTIAL_FILE)
            calcinfo.remote_copy_list = [(parent.computer.uuid, partial, RESUME_FILE)]
            codeinfo = calcinfo.codes_info[0]
            codeinfo.cmdline_params = [*arguments, "--resume", RESUME_FILE]
        return calcinfo
