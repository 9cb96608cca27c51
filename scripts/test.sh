#!/usr/bin/env bash
# The test suite, from a bare machine with only Python and the package registries:
#   1. the .venv (scripts/install.sh) when there is none;
#   2. PostgreSQL's Debian packages (postgresql, whose pg_virtualenv makes a throw-away cluster) when missing and
#      this runs as root with apt; otherwise the suite runs on SQLite, with a notice (tests marked psql skipped);
#   3. a single-node Slurm test cluster (scripts/slurm.sh: slurm-wlm, munge) when root; otherwise the tests marked
#      slurm are skipped, with a notice;
#   4. pytest, with any arguments given here (bash scripts/test.sh -m "not slow").
# AIIDA_TEST_STORAGE=psql and CCDCGAN_TEST_SLURM=required (what .ci/run sets) turn both notices into failures.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/install.sh

if ! command -v pg_virtualenv >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing PostgreSQL with apt (for pg_virtualenv)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if ! bash scripts/slurm.sh; then
    echo "test.sh: notice: no Slurm test cluster, so the tests marked slurm are skipped"
fi

if command -v pg_virtualenv >/dev/null; then
    runner=(pg_virtualenv -t .venv/bin/python -m pytest)
elif [ "${AIIDA_TEST_STORAGE:-}" = psql ]; then
    echo "test.sh: AIIDA_TEST_STORAGE=psql, but PostgreSQL is not installed (it needs root and apt-get here)"
    exit 1
else
    echo "test.sh: notice: PostgreSQL is not installed (it needs root and apt-get), so the suite runs on SQLite"
    export AIIDA_TEST_STORAGE=sqlite
    runner=(.venv/bin/python -m pytest)
fi
echo "test.sh: ${runner[*]} $*"
exec "${runner[@]}" "$@"
