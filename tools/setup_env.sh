#!/usr/bin/env bash
# Creates .venv in the repo and installs asr with its dependencies, once.
# Re-runs the install only when pyproject.toml changed since the last one.
#
# k2 is taken from ../shared/wheels when that folder exists (this project's
# machines); elsewhere set K2_FIND_LINKS to k2's wheel index (see README).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.asr-installed"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

if [ -f "$stamp" ] && [ "$stamp" -nt "$root/pyproject.toml" ]; then
  exit 0
fi
echo "setup_env: installing asr into $venv (first run; torch is a large download)" >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
find_links="${K2_FIND_LINKS:-}"
if [ -z "$find_links" ] && [ -d "$root/../shared/wheels" ]; then
  find_links="$root/../shared/wheels"
fi
args=()
[ -n "$find_links" ] && args+=(--find-links "$find_links")
"$venv/bin/pip" install --quiet "${args[@]}" -e "$root[test]"
touch "$stamp"
