#!/usr/bin/env bash
# Create the project's virtual environment in .venv (if missing) and install aiida-ccdcgan with its
# machine-learning and test extras. torch is pinned to 2.13.0, which pip takes as a local CPU wheel
# where one is configured; never let another tool resolve torch (it would fetch a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
.venv/bin/python -m pip install --quiet --editable '.[ml,tests]'
.venv/bin/python -c "import aiida_ccdcgan, torch; print(f'aiida-ccdcgan {aiida_ccdcgan.__version__} installed in .venv (torch {torch.__version__})')"
