"""Benchmark: importing the V–O dataset (9,873 structures) into AiiDA, and querying it by formation energy.

Runs in a fresh, throw-away AiiDA profile for each storage backend (SQLite always; PostgreSQL when a server
is given through the ``PG*`` variables, e.g. under ``pg_virtualenv -t``) and measures, side by side on the
same data in one run:

* the whole ``aiida-ccdcgan import vo-csv`` command (read, check, store in one transaction, group);
* the same store step done the naive way, one commit per node, for the ratio;
* QueryBuilder filters on ``extras.formation_energy_per_atom`` over the imported group.

Usage: ``python benchmarks/bench_import.py [--data ../shared/data/vo_imatgen_dft.csv.gz] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(args, env, **kwargs):
    """Run a command, failing loudly with its output."""
    result = subprocess.run(args, env=env, capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _make_profile(backend: str, folder: Path) -> dict:
    """Create a throw-away profile in ``folder`` and return the environment that selects it."""
    env = {**os.environ, "AIIDA_PATH": str(folder)}
    if backend == "sqlite":
        _run([BIN / "verdi", "presto", "--profile-name", "bench"], env)
        return env
    import psycopg

    name = f"aiida_bench_{uuid.uuid4().hex[:8]}"
    dsn = (
        f"host={os.environ['PGHOST']} port={os.environ.get('PGPORT', 5432)} user={os.environ.get('PGUSER', 'postgres')}"
    )
    with psycopg.connect(dsn, password=os.environ.get("PGPASSWORD"), dbname="postgres", autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
    _run(
        [
            BIN / "verdi",
            "profile",
            "setup",
            "core.psql_dos",
            "--non-interactive",
            "--profile-name",
            "bench",
            "--email",
            "bench@localhost",
            "--first-name",
            "bench",
            "--last-name",
            "bench",
            "--institution",
            "bench",
            "--broker",
            "none",
            "--database-hostname",
            os.environ["PGHOST"],
            "--database-port",
            os.environ.get("PGPORT", "5432"),
            "--database-username",
            os.environ.get("PGUSER", "postgres"),
            "--database-password",
            os.environ.get("PGPASSWORD", ""),
            "--database-name",
            name,
            "--repository-uri",
            (folder / "repository").as_uri(),
        ],
        env,
    )
    return env


MEASURE_IN_PROFILE = r"""
import json, sys, time
from aiida import load_profile, orm
load_profile()
from aiida.manage import get_manager
from aiida_ccdcgan.common import extras
from aiida_ccdcgan.tools.datasets import read_dataset, structure_node

path, label = sys.argv[1], sys.argv[2]
builder = lambda: orm.QueryBuilder().append(orm.Group, filters={"label": label}, tag="g").append(
    orm.StructureData, with_group="g", filters={f"extras.{extras.FORMATION_ENERGY}": {"<": -2.0}}, project="id")
builder().count()  # warm the connection
queries = {}
for name, run in (("count", lambda: builder().count()), ("all_ids", lambda: len(builder().all(flat=True)))):
    times = []
    for _ in range(5):
        start = time.perf_counter(); hits = run(); times.append(time.perf_counter() - start)
    queries[name] = {"hits": hits, "best_s": min(times), "median_s": sorted(times)[2]}

start = time.perf_counter()
records = read_dataset("vo-csv", path)
read_s = time.perf_counter() - start
start = time.perf_counter()
with get_manager().get_profile_storage().transaction():
    for record in records:
        structure_node(record).store()
one_transaction_s = time.perf_counter() - start
start = time.perf_counter()
for record in records:
    structure_node(record).store()
per_node_commit_s = time.perf_counter() - start
print(json.dumps({"queries": queries, "read_and_check_s": read_s, "store_one_transaction_s": one_transaction_s,
                  "store_commit_per_node_s": per_node_commit_s, "n": len(records)}))
"""


def bench_backend(backend: str, data: Path) -> dict:
    """Measure import and queries on a fresh profile of ``backend``."""
    folder = Path(tempfile.mkdtemp(prefix=f"ccdcgan-bench-{backend}-"))
    try:
        env = _make_profile(backend, folder)
        start = time.perf_counter()
        output = _run([BIN / "aiida-ccdcgan", "import", "vo-csv", data, "--group", "vo", "--json"], env).stdout
        import_s = time.perf_counter() - start
        summary = json.loads(output)
        inner = json.loads(
            _run([sys.executable, "-c", MEASURE_IN_PROFILE, data, "vo"], env).stdout.strip().splitlines()[-1]
        )
        return {
            "backend": backend,
            "cli_import_s": round(import_s, 2),
            "structures": summary["structures"],
            **inner,
            "store_speedup_one_transaction": round(
                inner["store_commit_per_node_s"] / inner["store_one_transaction_s"], 2
            ),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main():
    """Run the benchmark on every available backend and print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "vo_imatgen_dft.csv.gz")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    backends = ["sqlite"] + (["psql"] if os.environ.get("PGHOST") else [])
    results = {
        "machine": f"{platform.node()}: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "data": str(args.data.name),
        "results": [bench_backend(backend, args.data.resolve()) for backend in backends],
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
