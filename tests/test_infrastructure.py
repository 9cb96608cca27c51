"""The test infrastructure itself: the chosen storage backend, the broker and the daemon are real."""

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
