#!/usr/bin/env bash
# The main job, from a fresh clone: install into .venv, create an AiiDA profile with `verdi presto` if
# there is none (SQLite storage + ZeroMQ broker, no services needed), import a dataset and summarise it.
# Safe to run again: an existing profile is kept and a dataset that is already imported is not stored twice.
set -euo pipefail
cd "$(dirname "$0")"
DATASET=${CCDCGAN_DATASET:-../shared/data/vo_imatgen_dft.csv.gz}
bash scripts/install.sh
source .venv/bin/activate
if ! verdi profile show >/dev/null 2>&1; then
    verdi presto
fi
aiida-ccdcgan import vo-csv "$DATASET" --group vo-imatgen
echo
echo "Next: 'verdi group show vo-imatgen', 'aiida-ccdcgan dataset split vo-imatgen', 'aiida-ccdcgan export vo-imatgen --csv vo.csv'."
