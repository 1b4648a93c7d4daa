#!/usr/bin/env bash
# Set up a virtual environment (once) and run lint, types and the whole test suite.
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu gets the CPU-only torch (scripts/_setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_setup.sh
if ! installed test; then
  install_torch                                 # before anything else: extras keep this torch
  python -m pip install -q -e ".[test,integrations,docs]"   # torch is pinned above: none of these replace it
  # the real peers the conversion tests step (tests/convert/_peers.py), without their heavy
  # extras (torchvision, opencv): --no-deps cannot replace torch
  python -m pip install -q --no-deps timm mmengine
  python -m pip install -q addict yapf termcolor   # mmengine's own imports
  python -m pip install -q "ray>=2.9"            # the Ray backend of lrkit compare is tested for real
  mark_installed
fi
python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 'an extra replaced torch: ' + torch.__version__)"
. scripts/_browser.sh
ruff check src tests benchmarks
mypy
python -m pytest -q -ra
