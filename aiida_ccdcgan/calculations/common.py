"""What the CalcJobs of the console scripts share: their exit codes as process exit codes, options, config validation."""

from aiida.common import CalcInfo, CodeInfo

from ..jobs.contract import EXIT_BAD_INPUT, EXIT_MISSING_EXTRA, EXIT_NAN_LOSS, EXIT_OUT_OF_MEMORY, STDERR, STDOUT

SCRIPT_EXIT_CODES = {
    EXIT_BAD_INPUT: (310, "ERROR_BAD_INPUT", "The script refused its input: {message}"),
    EXIT_NAN_LOSS: (311, "ERROR_NAN_LOSS", "A training loss became NaN: {message}"),
    EXIT_OUT_OF_MEMORY: (312, "ERROR_OUT_OF_MEMORY", "The script ran out of memory: {message}"),
    EXIT_MISSING_EXTRA: (313, "ERROR_MISSING_ML_EXTRA", "The code's Python environment cannot run it: {message}"),
}
"""Script exit code → (process exit status, label, message)."""


def define_script_options(spec, parser_name: str) -> None:
    """Defaults both CalcJobs share: one serial process, and their parser."""
    options = spec.inputs["metadata"]["options"]
    options["resources"].default = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
    options["withmpi"].default = False
    options["parser_name"].default = parser_name


def script_calcinfo(code, arguments, local_copy_list, retrieve_list) -> CalcInfo:
    """The CalcInfo of one run of a ccdcgan console script with stdout and stderr captured."""
    codeinfo = CodeInfo()
    codeinfo.code_uuid = code.uuid
    codeinfo.cmdline_params = list(arguments)
    codeinfo.stdout_name, codeinfo.stderr_name = STDOUT, STDERR
    calcinfo = CalcInfo()
    calcinfo.codes_info = [codeinfo]
    calcinfo.local_copy_list = list(local_copy_list)
    calcinfo.retrieve_list = [STDOUT, STDERR, *retrieve_list]
    return calcinfo


def define_script_exit_codes(spec) -> None:
    """Add the exit codes both CalcJobs share to ``spec``."""
    spec.exit_code(
        300, "ERROR_OUTPUT_MISSING", message="The script finished without writing {filename}; see stderr.txt."
    )
    spec.exit_code(301, "ERROR_SCRIPT_FAILED", message="The script failed without a stated reason: {message}")
    for status, label, message in SCRIPT_EXIT_CODES.values():
        spec.exit_code(status, label, message=message)


def validate_training_config(value, _):
    """Refuse a configuration the scripts would refuse, before anything is submitted."""
    from ..models.config import TrainingConfig

    try:
        TrainingConfig.from_dict(value.get_dict())
    except (ValueError, TypeError) as exception:
        return f"Invalid training configuration: {exception}"
    return None
