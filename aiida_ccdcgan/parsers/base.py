"""What the training and sampling parsers share: reading the script's stated failure."""

from aiida.parsers import Parser

from ..calculations.common import SCRIPT_EXIT_CODES
from ..jobs.contract import STDERR, read_error


class ScriptParser(Parser):
    """A parser for a ccdcgan console script: a stated failure on stderr becomes the matching exit code."""

    def job_failure(self):
        """Return the exit code of the failure the script stated on stderr or, where it stated none, of the one the
        scheduler reported (out of walltime or memory: already on the node, from the scheduler's output), or None.

        A job that the scheduler killed leaves no outputs: its own exit code, not a missing file, is what a restart
        workflow's handler needs to see."""
        stderr = (
            self.retrieved.base.repository.get_object_content(STDERR)
            if STDERR in self.retrieved.base.repository.list_object_names()
            else ""
        )
        error = read_error(stderr)
        if error is None:
            status = self.node.exit_status
            return next((code for code in self.exit_codes.values() if status and code.status == status), None)
        if error.code in SCRIPT_EXIT_CODES:
            return self.exit_codes[SCRIPT_EXIT_CODES[error.code][1]].format(message=error.message)
        return self.exit_codes.ERROR_SCRIPT_FAILED.format(message=error.message)
