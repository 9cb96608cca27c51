"""What the training and sampling parsers share: reading the script's stated failure."""

import re

from aiida.parsers import Parser

from ..calculations.common import SCRIPT_EXIT_CODES, STDERR

ERROR_PATTERN = re.compile(r"^ERROR \[code (\d+)\]: (.*)$", re.MULTILINE)


class ScriptParser(Parser):
    """A parser for a ccdcgan console script: a stated failure on stderr becomes the matching exit code."""

    def stated_failure(self):
        """Return the exit code for the failure the script stated on stderr, or None if it stated none."""
        stderr = (
            self.retrieved.base.repository.get_object_content(STDERR)
            if STDERR in self.retrieved.base.repository.list_object_names()
            else ""
        )
        match = ERROR_PATTERN.search(stderr)
        if match is None:
            return None
        code, message = int(match.group(1)), match.group(2)
        if code in SCRIPT_EXIT_CODES:
            return self.exit_codes[SCRIPT_EXIT_CODES[code][1]].format(message=message)
        return self.exit_codes.ERROR_SCRIPT_FAILED.format(message=message)
