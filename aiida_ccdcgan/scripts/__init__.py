"""Console scripts that run on a compute node (``ccdcgan-train``, ``-sample``, ``-relax``) and their exit codes.

The AiiDA parsers map these exit codes to process exit codes; keep them in this one place.
"""

import os
import sys

EXIT_OK = 0
EXIT_BAD_INPUT = 10
EXIT_NAN_LOSS = 11
EXIT_OUT_OF_MEMORY = 12
EXIT_MISSING_EXTRA = 13


ERROR_LINE = "ERROR [code {code}]: {message}"
"""How a script states its failure on stderr; parsers read the code back from this line."""


def quiet_backend() -> None:
    """Keep TensorFlow's C++ start-up chatter out of the script's stderr (call before Keras is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def missing_extra(script: str) -> int | None:
    """State and return ``EXIT_MISSING_EXTRA`` when this environment lacks the modules ``script`` needs (the
    ``ml`` extra), before anything imports them; None when it has them."""
    from ..dependencies import ml_extra_refusal

    refusal = ml_extra_refusal(script)
    return None if refusal is None else fail(EXIT_MISSING_EXTRA, refusal)


def fail(code: int, message: str) -> int:
    """Print ``message`` to stderr as the script's one-line error and return ``code``."""
    print(ERROR_LINE.format(code=code, message=message), file=sys.stderr)
    return code
