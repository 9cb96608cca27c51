"""The test infrastructure itself: the chosen storage backend, the broker and the daemon are real."""

import sys

import pytest
from aiida import orm
from conftest import storage_choice


def test_profile_uses_the_chosen_storage_backend(aiida_profile):
    expected = {"psql": "core.psql_dos", "sqlite": "core.sqlite_dos"}[storage_choice()]
    assert aiida_profile.storage_backend == expected
    assert aiida_profile.process_control_backend == "core.zeromq"


@pytest.mark.psql
def test_postgresql_is_really_postgresql():
    from aiida.manage import get_manager

    storage = get_manager().get_profile_storage()
    assert storage.get_session().bind.dialect.name == "postgresql"
    assert (
        storage.get_session()
        .execute(__import__("sqlalchemy").text("select version()"))
        .scalar()
        .startswith("PostgreSQL")
    )


@pytest.mark.daemon
def test_daemon_runs_a_submitted_calcjob(submit_and_await, aiida_code_installed):
    """A CalcJob goes through the ZeroMQ broker to a daemon worker and back."""
    from aiida.calculations.arithmetic.add import ArithmeticAddCalculation

    code = aiida_code_installed(default_calc_job_plugin="core.arithmetic.add", filepath_executable="/bin/bash")
    node = submit_and_await(ArithmeticAddCalculation, code=code, x=orm.Int(3), y=orm.Int(4), timeout=120)
    assert node.is_finished_ok, node.exit_status
    assert node.outputs.sum.value == 7
    assert node.outputs.retrieved.base.repository.get_object_content("aiida.out").strip() == "7"


def test_the_plugins_own_localhost_needs_no_login_shell(aiida_profile):
    """A Computer the plugin makes for its codes runs its commands without a login shell (no shell profile, so no
    pyenv or conda set-up before every transport command) and runs this environment's console scripts."""
    from pathlib import Path

    from aiida_ccdcgan.tools.codes import localhost_computer, script_code

    computer = localhost_computer(f"plugin-localhost-{aiida_profile.name[:8]}")
    assert computer.get_configuration()["use_login_shell"] is False
    assert localhost_computer(computer.label).pk == computer.pk  # made once, then reused
    code = script_code("ccdcgan-relax", computer)
    assert code.filepath_executable == Path(sys.executable).parent / "ccdcgan-relax"
    assert script_code("ccdcgan-relax", computer.label).pk == code.pk
