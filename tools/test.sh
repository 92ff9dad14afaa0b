#!/usr/bin/env bash
# The test command (README and CI): installs into .venv if needed, then runs pytest.
# Extra arguments go to pytest, e.g. `tools/test.sh -m slow` for the long end-to-end runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
