"""The ``aiida-ccdcgan`` command line.

Exit codes: 0 success (including an import that found its file already imported), 1 bad input or a
failed operation (the message says what is wrong and what to do), 2 a usage error (unknown option,
missing argument).
"""

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params.options import PROFILE
from aiida.cmdline.params.types.profile import ProfileParamType


@click.group("aiida-ccdcgan", cls=VerdiCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@PROFILE(type=ProfileParamType(load_profile=True), expose_value=False)
def cmd_root():
    """aiida-ccdcgan: generative inverse design of crystal structures with CCDCGAN on AiiDA."""


from .datasets import cmd_dataset, cmd_export  # noqa: E402
from .design import cmd_design  # noqa: E402
from .evaluate import cmd_evaluate  # noqa: E402
from .imports import cmd_import  # noqa: E402
from .plot import cmd_plot  # noqa: E402
from .represent import cmd_represent  # noqa: E402

__all__ = (
    "cmd_dataset",
    "cmd_design",
    "cmd_evaluate",
    "cmd_export",
    "cmd_import",
    "cmd_plot",
    "cmd_represent",
    "cmd_root",
)
