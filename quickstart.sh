#!/usr/bin/env bash
# The main job, from a fresh clone: install into .venv, create an AiiDA profile with `verdi presto` if there is
# none (SQLite storage + ZeroMQ broker, no services needed), then run the CCDCGAN inverse-design loop for Bi–Se on
# the database that ships with the package (examples/bise_workchain.py: ≈ 8–12 min on 2 cores). Safe to run again:
# an existing profile is kept, the database is stored once, the elemental references are reused.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/install.sh
source .venv/bin/activate
if ! verdi profile show >/dev/null 2>&1; then
    verdi presto
fi
verdi run examples/bise_workchain.py "$@"
echo
echo "Next: 'verdi process list -a', 'verdi group list -a -p ccdcgan', docs/user_guide.md."
