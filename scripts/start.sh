#!/usr/bin/env bash
# Start the playground from an installed environment (scripts/install.sh made it): the Docker
# images' CMD. Settings come from PLAYGROUND_* variables (docs/TEACHERS.md lists them); any
# option (--host, --port, --data-dir, --device) is passed to `python -m server`. A bad setting
# stops it with a message naming the variable (exit status 2).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PLAYGROUND_VENV:-.venv}/bin/python" -m server "$@"
