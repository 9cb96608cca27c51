"""The package's console scripts as AiiDA codes on this machine (``localhost``), created once and reused."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from aiida import orm
from aiida.common.exceptions import NotExistent

from ..dependencies import MissingExtraError, ml_extra_refusal

SCRIPT_PLUGINS = {
    "ccdcgan-train": "ccdcgan.train",
    "ccdcgan-sample": "ccdcgan.sample",
    "ccdcgan-relax": "ccdcgan.relax.mlip",
}
"""Each console script and the CalcJob that runs it."""


def localhost_computer(label: str = "localhost") -> orm.Computer:
    """The Computer ``label`` (``verdi presto`` makes ``localhost``), or a new one: this machine, ``core.direct``.

    A new one runs its commands without a login shell: the codes are absolute paths, and a login shell would source
    the user's profile (pyenv or conda set-up) before every command of the transport.
    """
    try:
        return orm.load_computer(label)
    except NotExistent:
        computer = orm.Computer(
            label=label,
            hostname="localhost",
            description="This machine",
            transport_type="core.local",
            scheduler_type="core.direct",
            workdir=str(Path(tempfile.gettempdir()) / "aiida_run"),
        ).store()
        computer.configure(safe_interval=0, use_login_shell=False)
        computer.set_minimum_job_poll_interval(1.0)
        return computer


def script_code(script: str, computer: orm.Computer | str | None = None) -> orm.InstalledCode:
    """The InstalledCode ``<script>@<computer>`` running this environment's ``script`` (e.g. ``ccdcgan-relax``).

    ``computer``: a Computer, the label of one set up in this profile, or None for this machine (``localhost``).
    Made on first use; the executable is the one installed beside this Python interpreter. Raises
    MissingExtraError, before anything is stored, when the script would run here and this environment lacks the
    ``ml`` extra it needs.
    """
    if script not in SCRIPT_PLUGINS:
        raise ValueError(f"No console script {script!r}; choose one of {', '.join(SCRIPT_PLUGINS)}.")
    if isinstance(computer, str):
        try:
            computer = orm.load_computer(computer)
        except NotExistent:
            known = ", ".join(c.label for c in orm.Computer.collection.all()) or "none"
            raise ValueError(
                f"No Computer {computer!r} in this profile (set up: {known}); set it up with `verdi computer setup` "
                "and `verdi computer configure` (docs/user_guide.md, GPU section)."
            ) from None
    if computer is None or computer.hostname == "localhost":  # this environment runs the script
        refusal = ml_extra_refusal(script)
        if refusal is not None:
            raise MissingExtraError(refusal)
    computer = computer or localhost_computer()
    try:
        return orm.load_code(f"{script}@{computer.label}")
    except NotExistent:
        executable = Path(sys.executable).parent / script
        if not executable.exists():
            found = shutil.which(script)
            if found is None:
                raise FileNotFoundError(
                    f"The console script {script} is not installed; run `pip install -e .` (or scripts/install.sh)."
                ) from None
            executable = Path(found)
        return orm.InstalledCode(
            label=script,
            computer=computer,
            filepath_executable=str(executable),
            default_calc_job_plugin=SCRIPT_PLUGINS[script],
        ).store()


def loop_codes() -> dict[str, orm.InstalledCode]:
    """The inverse-design loop's codes on this machine, ``{"train", "sample", "relax"}`` (see :func:`script_code`);
    all three scripts are checked before any code is made."""
    scripts = {name: f"ccdcgan-{name}" for name in ("train", "sample", "relax")}
    for script in scripts.values():
        if (refusal := ml_extra_refusal(script)) is not None:
            raise MissingExtraError(refusal)
    return {name: script_code(script) for name, script in scripts.items()}
