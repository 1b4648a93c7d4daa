#!/usr/bin/env bash
# Set up a virtual environment from scratch and run lint, types and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q torch==2.13.0          # the CPU build; install before anything else
python -m pip install -q -e ".[test,integrations,docs]"   # torch is pinned above: none of these replace it
python -m pip install -q "ray>=2.9"              # the Ray backend of lrkit compare is tested for real
# the real peers the conversion tests step (tests/convert/_peers.py), without their heavy
# extras (torchvision, opencv): --no-deps cannot replace torch
python -m pip install -q --no-deps timm mmengine
python -m pip install -q addict yapf termcolor   # mmengine's own imports
python -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 'an extra replaced torch: ' + torch.__version__)"
if command -v apt-get >/dev/null && ! command -v chromium >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "could not install chromium"
fi
export LRKIT_REQUIRE_BROWSER=1   # the report's browser test must run here, not skip
ruff check src tests benchmarks
mypy
python -m pytest -q -ra
