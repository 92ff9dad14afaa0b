# Sourced by recipes/<corpus>/run.sh after it sets its option defaults
# (`corpus`, `workdir`, `stage`, `stop_stage`, ..., and `usage`):
# parses --name value options (Kaldi's parse_options.sh, reduced), installs
# the environment on first use, resolves the corpus path, enters the work
# dir, and defines `asr`, `py` and `log`.
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) echo "$usage"; exit 0 ;;
    --*=*) opt="${1%%=*}"; val="${1#*=}"; shift ;;
    --*) opt="$1"; val="${2:?option $1 needs a value}"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; echo "$usage" >&2; exit 2 ;;
  esac
  name="${opt#--}"; name="${name//-/_}"
  if ! declare -p "$name" >/dev/null 2>&1; then
    echo "unknown option: $opt" >&2; echo "$usage" >&2; exit 2
  fi
  printf -v "$name" '%s' "$val"
done

"$root/tools/setup_env.sh"
asr="$root/.venv/bin/asr"
py="$root/.venv/bin/python"
corpus="$(cd "$corpus" 2>/dev/null && pwd)" || { echo "$0: corpus dir not found" >&2; exit 1; }
mkdir -p "$workdir" && cd "$workdir"
log() { echo "$(date +%T) stage $1: $2" >&2; }
