#!/usr/bin/env bash
# Set up a virtual environment from scratch and run lrkit's main job: `lrkit compare`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q torch==2.13.0          # the CPU build; install before anything else
python -m pip install -q -e ".[cli]"
lrkit compare "$@"
