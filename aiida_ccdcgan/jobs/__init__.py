"""Console scripts that run on a compute node (``ccdcgan-train``, ``-sample``, ``-relax``) and what they share.

What the AiiDA layer may rely on — files, exit codes, the error line — is in :mod:`aiida_ccdcgan.jobs.contract`.
"""

import os
import sys

from .contract import EXIT_MISSING_EXTRA, ScriptError


def quiet_backend() -> None:
    """Keep TensorFlow's C++ start-up chatter out of the script's stderr (call before Keras is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def missing_extra(script: str) -> int | None:
    """State and return ``EXIT_MISSING_EXTRA`` when this environment lacks the modules ``script`` needs (the
    ``ml`` extra), before anything imports them; None when it has them."""
    from ..dependencies import ml_extra_refusal

    refusal = ml_extra_refusal(script)
    return None if refusal is None else fail(EXIT_MISSING_EXTRA, refusal)


def fail(code: int, message: str, stage: str | None = None) -> int:
    """Print the script's one error line (``code``, the training ``stage`` it failed in, ``message``) to stderr and
    return ``code``."""
    print(ScriptError(code, message, stage).line(), file=sys.stderr)
    return code
