# Sourced by scripts/compare.sh and scripts/test.sh (not a command of its own): make or
# reuse .venv, and tell whether pip has to run.
#
#   TORCH_INDEX_URL  where torch comes from, e.g. https://download.pytorch.org/whl/cpu for
#                    the CPU-only wheel; default: pip's configuration (PyPI: on Linux x86-64,
#                    the CUDA build)
#
# pip runs when the stamp of the script's name, its text, pyproject.toml and TORCH_INDEX_URL
# is missing from .venv (the first run, or something changed); later runs skip it.

[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate

# Usage: install_torch. torch, pinned; from TORCH_INDEX_URL when that is set.
install_torch() {
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    python -m pip install -q torch==2.13.0 --index-url "$TORCH_INDEX_URL"
  else
    python -m pip install -q torch==2.13.0
  fi
}

# Usage: installed NAME (compare or test). True when scripts/NAME.sh already installed
# everything with these inputs.
installed() {
  STAMP_NAME=$1
  STAMP=".venv/.installed-$1-$( { cat "scripts/$1.sh" pyproject.toml;
    echo "${TORCH_INDEX_URL:-}"; } | sha256sum | cut -c1-16)"
  [ -e "$STAMP" ]
}

# Usage: mark_installed. Records that the install checked by `installed NAME` completed.
mark_installed() {
  rm -f .venv/.installed-"$STAMP_NAME"-*
  touch "$STAMP"
}
