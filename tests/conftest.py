"""Test profile on real storage (PostgreSQL or SQLite) with the ZeroMQ broker, and shared fixtures.

The storage backend is chosen by ``AIIDA_TEST_STORAGE`` (``psql`` or ``sqlite``). Without it, PostgreSQL is
used when a server is given (``AIIDA_TEST_PG_DSN``, or the ``PG*`` variables that ``pg_virtualenv`` exports),
SQLite otherwise. The README's test command (``scripts/test.sh``) runs the suite inside ``pg_virtualenv -t``, a
throw-away PostgreSQL cluster that also works as root.
"""

from __future__ import annotations

import locale
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest_plugins = ["aiida.tools.pytest_fixtures"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""The datasets beside the repository (never copied into it)."""


def _postgres_dsn() -> str | None:
    """Return the DSN of the PostgreSQL server to test on, if one is given."""
    if os.environ.get("AIIDA_TEST_PG_DSN"):
        return os.environ["AIIDA_TEST_PG_DSN"]
    if os.environ.get("PGHOST"):
        parts = {
            "host": os.environ["PGHOST"],
            "port": os.environ.get("PGPORT", "5432"),
            "user": os.environ.get("PGUSER", "postgres"),
            "password": os.environ.get("PGPASSWORD"),
        }
        return " ".join(f"{key}={value}" for key, value in parts.items() if value)
    return None


def storage_choice() -> str:
    """Return ``psql`` or ``sqlite``: the storage backend this test run uses."""
    choice = os.environ.get("AIIDA_TEST_STORAGE") or ("psql" if _postgres_dsn() else "sqlite")
    if choice not in ("psql", "sqlite"):
        raise pytest.UsageError(f"AIIDA_TEST_STORAGE must be 'psql' or 'sqlite', not {choice!r}.")
    return choice


def _patch_create_db_locale() -> None:
    """Let aiida create databases where the en_US.UTF-8 locale is missing (Debian slim images)."""
    try:
        previous = locale.setlocale(locale.LC_COLLATE)
        locale.setlocale(locale.LC_COLLATE, "en_US.UTF-8")
        locale.setlocale(locale.LC_COLLATE, previous)
    except locale.Error:
        from aiida.manage.external import postgres

        postgres._CREATE_DB_COMMAND = 'CREATE DATABASE "{}" OWNER "{}" ENCODING \'UTF8\' TEMPLATE=template0'


_patch_create_db_locale()

# The daemon and the CLI tests start `verdi` and `aiida-ccdcgan` from the environment running the tests,
# also when it was not activated.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


class ExternalPostgresCluster:
    """A PostgreSQL server given by a DSN, with the interface of aiida's pgtest-based ``PostgresCluster``.

    It creates ``aiida_test_<hex>`` databases and drops them when the test run ends.
    """

    def __init__(self, dsn: str):
        self.conninfo = dsn
        self.params = dict(item.split("=", 1) for item in dsn.split())
        self.created: list[str] = []

    def create_database(self, database_name=None, database_username=None, database_password=None) -> dict:
        """Create a fresh database (and its role) and return aiida's storage configuration for it."""
        import psycopg

        name = database_name or f"aiida_test_{uuid.uuid4().hex[:12]}"
        user, password = database_username or "aiida_test", database_password or "aiida_test"
        with psycopg.connect(self.conninfo, dbname="postgres", autocommit=True) as connection:
            if not connection.execute("SELECT 1 FROM pg_roles WHERE rolname=%s", (user,)).fetchone():
                connection.execute(f"CREATE ROLE \"{user}\" LOGIN CREATEDB PASSWORD '{password}'")
            connection.execute(f'CREATE DATABASE "{name}" OWNER "{user}" ENCODING \'UTF8\' TEMPLATE template0')
        self.created.append(name)
        return {
            "database_engine": "postgresql_psycopg",
            "database_name": name,
            "database_username": user,
            "database_password": password,
            "database_hostname": self.params.get("host", "localhost"),
            "database_port": int(self.params.get("port", 5432)),
        }

    def _close(self) -> None:
        """Drop every database this cluster created."""
        import psycopg

        with psycopg.connect(self.conninfo, dbname="postgres", autocommit=True) as connection:
            for name in self.created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_cluster():
    """The PostgreSQL server of the test run: the one given by DSN, else a pgtest cluster (not as root)."""
    dsn = _postgres_dsn()
    if dsn:
        cluster = ExternalPostgresCluster(dsn)
    else:
        from aiida.tools.pytest_fixtures.storage import PostgresCluster

        cluster = PostgresCluster()
    yield cluster
    cluster._close()


@pytest.fixture(scope="session")
def aiida_profile(aiida_config, aiida_profile_factory, config_psql_dos, config_sqlite_dos):
    """The session's AiiDA profile: PostgreSQL or SQLite storage (see module docstring), ZeroMQ broker."""
    psql = storage_choice() == "psql"
    with aiida_profile_factory(
        aiida_config,
        storage_backend="core.psql_dos" if psql else "core.sqlite_dos",
        storage_config=config_psql_dos() if psql else config_sqlite_dos(),
        broker_backend="core.zeromq",
    ) as profile:
        yield profile


def pytest_report_header(config):
    """Say which storage backend the run uses, so the log shows it."""
    backend = storage_choice()
    where = f" at {_postgres_dsn().split('password')[0].strip()}" if backend == "psql" and _postgres_dsn() else ""
    return f"aiida-ccdcgan test storage: {'core.psql_dos (PostgreSQL)' if backend == 'psql' else 'core.sqlite_dos (SQLite)'}{where}"


SLURM_CLUSTER = "ccdcgan-test"
"""The single-node Slurm cluster of ``scripts/slurm.sh``: the only one the ``slurm`` tests submit to."""
SLURM_JOBS = pytest.StashKey[list]()


def slurm_refusal() -> str | None:
    """Why the ``slurm`` tests cannot run here (None: the test cluster answers)."""
    try:
        config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30)
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exception:
        return f"no Slurm here ({exception}); bash scripts/slurm.sh starts the test cluster (as root)"
    if not re.search(rf"^ClusterName\s*=\s*{SLURM_CLUSTER}$", config.stdout, re.MULTILINE):
        return f"Slurm's cluster is not {SLURM_CLUSTER}: the tests submit only to the test cluster of scripts/slurm.sh"
    if not {"idle", "mixed", "allocated"} & set(states.stdout.split()):
        return f"the node of {SLURM_CLUSTER} is not up ({states.stdout.strip() or states.stderr.strip()})"
    return None


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``psql`` when the run is on SQLite, and those marked ``slurm`` without the test cluster
    (fail them instead under ``CCDCGAN_TEST_SLURM=required``)."""
    if storage_choice() != "psql":
        skip = pytest.mark.skip(reason="needs PostgreSQL storage (AIIDA_TEST_STORAGE=psql)")
        for item in items:
            if "psql" in item.keywords:
                item.add_marker(skip)
    slurm_items = [item for item in items if "slurm" in item.keywords]
    refusal = slurm_refusal() if slurm_items else None
    if refusal and os.environ.get("CCDCGAN_TEST_SLURM") == "required":
        raise pytest.UsageError(f"CCDCGAN_TEST_SLURM=required, but {refusal}.")
    for item in slurm_items if refusal else []:
        item.add_marker(pytest.mark.skip(reason=refusal))


@pytest.fixture(scope="session")
def slurm_jobs(request) -> list:
    """The Slurm jobs the tests ran, as lines that the end of the run prints (CI's log shows their ids)."""
    return request.config.stash.setdefault(SLURM_JOBS, [])


def pytest_terminal_summary(terminalreporter, config):
    """Print the Slurm jobs the tests ran."""
    jobs = config.stash.get(SLURM_JOBS, [])
    if jobs:
        terminalreporter.section(f"Slurm jobs on {SLURM_CLUSTER}")
        for line in jobs:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of shared datasets; the tests that need it fail clearly if it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"The shared datasets are expected in {SHARED_DATA} (../shared/data beside the repository).")
    return SHARED_DATA


@pytest.fixture(scope="session")
def daemon_client(aiida_profile):
    """The session's daemon client (replacing aiida's fixture of that name), stopped at the end with up to 3 min for
    a busy worker to finish — aiida's fixture allows the profile's 20 s, which a worker that has just run a loop
    with training and relaxations sometimes needs more than."""
    from aiida.engine.daemon import get_daemon_client
    from aiida.engine.daemon.client import DaemonNotRunningException

    client = get_daemon_client(aiida_profile.name)
    yield client
    try:
        client.stop_daemon(wait=True, timeout=180)
    except DaemonNotRunningException:
        pass


@pytest.fixture
def aiida_localhost(aiida_computer_local):
    """The test ``localhost`` (replacing aiida's fixture of that name), configured without a login shell.

    A login shell sources root's profile, whose ``pyenv init`` rehashes under a lock file: one left behind by a killed
    shell made every transport command wait 60 s, and the daemon tests time out.
    """
    computer = aiida_computer_local(label="localhost", configure=False)
    computer.configure(use_login_shell=False)
    return computer


@pytest.fixture
def node_count():
    """Return a function counting all nodes in the profile's storage."""
    from aiida import orm

    return lambda: orm.QueryBuilder().append(orm.Node).count()


@pytest.fixture
def group_label(request) -> str:
    """A group label unique to the test, so tests sharing the session profile do not collide."""
    return f"test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def crystals():
    """A few small real crystals as CrystalRecords (see :func:`make_crystals`)."""
    from dataset_files import make_crystals

    return make_crystals()


@pytest.fixture
def codes(aiida_code_installed):
    """InstalledCodes for the training and sampling console scripts on the test localhost."""
    return {
        name: aiida_code_installed(
            default_calc_job_plugin=f"ccdcgan.{name}",
            filepath_executable=str(Path(sys.executable).parent / f"ccdcgan-{name}"),
        )
        for name in ("train", "sample")
    }


@pytest.fixture
def relax_code(aiida_code_installed):
    """The ccdcgan-relax console script as an InstalledCode on the test localhost."""
    return aiida_code_installed(
        default_calc_job_plugin="ccdcgan.relax.mlip",
        filepath_executable=str(Path(sys.executable).parent / "ccdcgan-relax"),
    )
