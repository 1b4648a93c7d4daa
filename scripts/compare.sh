#!/usr/bin/env bash
# Set up a virtual environment (once) and run lrkit's main job: `lrkit compare`.
# Arguments go to `lrkit compare`; the report of an earlier run is replaced (--force).
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu gets the CPU-only torch (scripts/_setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_setup.sh
if ! installed compare; then
  install_torch                                 # before anything else: extras keep this torch
  python -m pip install -q -e ".[cli]"
  mark_installed
fi
lrkit compare --force "$@"
