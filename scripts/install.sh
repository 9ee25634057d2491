#!/usr/bin/env bash
# Create the virtual environment (.venv, or $PLAYGROUND_VENV) and install the playground into it.
#   scripts/install.sh          the server's packages
#   scripts/install.sh --test   also what the tests need (pytest, Playwright, ruff, ONNX runtime)
#   scripts/install.sh --cluster  also Ray, to train on a Ray cluster (docs/CLUSTER.md); the
#                                 options combine: --test --cluster
# Torch is pinned to the CPU build's version (constraints.txt): a plain 'torch' requirement pulls
# a multi-GB CUDA build. Set PLAYGROUND_TORCH_INDEX to a wheel index (for example PyTorch's CPU
# index) to take torch from there. Re-running is cheap: a stamp file skips a finished install.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PLAYGROUND_VENV:-.venv}"
extras="export,client"
for option in "$@"; do
  case "$option" in
    --test) extras="$extras,test" ;;
    --cluster) extras="$extras,cluster" ;;
    *) echo "scripts/install.sh: unknown option $option (known: --test, --cluster)" >&2; exit 2 ;;
  esac
done
stamp="$venv/.installed-$extras-$(cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)"
[ -f "$stamp" ] && exit 0

python3 -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
if [ -n "${PLAYGROUND_TORCH_INDEX:-}" ]; then
  "${pip[@]}" --index-url "$PLAYGROUND_TORCH_INDEX" -c constraints.txt torch
else
  "${pip[@]}" -c constraints.txt torch
fi
"${pip[@]}" -c constraints.txt -e ".[$extras]"
touch "$stamp"
