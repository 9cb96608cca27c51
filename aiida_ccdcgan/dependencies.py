"""The optional ``ml`` extra: which of its modules each compute-node script needs, and the refusal where they are
missing. Only looks the modules up (``importlib.util.find_spec``); imports none of them."""

from __future__ import annotations

import importlib.util
import os

ML_EXTRA_INSTALL = "pip install 'aiida-ccdcgan[ml]'"
"""What installs the ``ml`` extra (``scripts/install.sh`` does it for a checkout)."""

KERAS_BACKENDS = ("tensorflow", "torch", "jax")

SCRIPT_MODULES = {
    "ccdcgan-train": (("keras",), KERAS_BACKENDS),
    "ccdcgan-sample": (("keras",), KERAS_BACKENDS),
    "ccdcgan-relax": (("torch",), ("sevenn", "chgnet")),
}
"""Console script → the modules it needs: one of each tuple (for Keras, the backend ``KERAS_BACKEND`` names)."""


class MissingExtraError(ImportError):
    """An optional extra of aiida-ccdcgan that a requested job needs is not installed."""


def missing_modules(script: str) -> list[str]:
    """The modules ``script`` needs that this Python environment lacks (``one of a, b`` where either would do)."""
    backend = os.environ.get("KERAS_BACKEND")
    missing = []
    for choices in SCRIPT_MODULES[script]:
        if choices == KERAS_BACKENDS and backend in KERAS_BACKENDS:
            choices = (backend,)
        if not any(importlib.util.find_spec(name) is not None for name in choices):
            missing.append(choices[0] if len(choices) == 1 else f"one of {', '.join(choices)}")
    return missing


def ml_extra_refusal(script: str) -> str | None:
    """Why ``script`` cannot run in this Python environment, naming the extra to install; None when it can."""
    missing = missing_modules(script)
    if not missing:
        return None
    return (
        f"{script} needs aiida-ccdcgan's `ml` extra, and this Python environment lacks {' and '.join(missing)}: "
        f"{ML_EXTRA_INSTALL} (or bash scripts/install.sh in a checkout)"
    )
