# Sourced by recipes: parses --stage N, --stop-stage N and --name value options
# (Kaldi's parse_options.sh, reduced). Variables must be defined before sourcing.
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
