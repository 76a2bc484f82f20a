# Which Python FastFace Workbench is installed into (sourced by install.sh and test.sh).
#
#   fastface_python [--create] [--quiet]   sets PY (the interpreter), PY_WHY (why that one) and
#                                          FASTFACE_VENV_DIR (the venv it chose in case 3, else "")
#
# 1. PYTHON=/path/to/python if set, else python3 on PATH, is the base interpreter; it must be
#    Python >= 3.10.
# 2. Inside a virtual environment (an active venv, or PYTHON pointing into one): that Python.
# 3. An "externally managed" Python (PEP 668: <stdlib>/EXTERNALLY-MANAGED, e.g. Debian's and
#    Ubuntu's /usr/bin/python3, where `pip install` refuses): the virtual environment
#    FASTFACE_VENV (default: .venv in the repository), made with --create if it is missing
#    (without --create, PY names the python it would have).
# 4. Otherwise (pyenv, conda, python.org builds): that Python itself.
#
# Errors name the interpreter and the fix, and return 1.
#
#   fastface_link_cli VENV   makes `fastface` of VENV callable without activating VENV: a link in
#                            the first writable ~/.local/bin or /usr/local/bin on PATH (never over
#                            a file that is not a link), else it says how to activate

FASTFACE_MIN_PY="3.10"

_ff_say() { [[ -n "${FF_QUIET:-}" ]] || echo "$*" >&2; }

_ff_probe() {  # prints: <venv|managed|plain> <major.minor> <ok|old> <sys.executable>
  "$1" - <<'PYEOF'
import os, sys, sysconfig
venv = sys.prefix != sys.base_prefix
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
kind = "venv" if venv else ("managed" if os.path.isfile(marker) else "plain")
ok = "ok" if sys.version_info >= (3, 10) else "old"
print(kind, "%d.%d" % sys.version_info[:2], ok, sys.executable)
PYEOF
}

_ff_make_venv() {  # $1 base python, $2 venv dir, $3 base python's major.minor
  if "$1" -m venv "$2" >/dev/null 2>&1; then return 0; fi
  rm -rf "$2"
  # Debian/Ubuntu ship venv's ensurepip in a separate package
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    _ff_say "install.sh: '$1 -m venv' needs Debian's venv package; installing python$3-venv (apt-get)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$3-venv" >/dev/null) \
      || (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null) || true
    if "$1" -m venv "$2"; then return 0; fi
    rm -rf "$2"
  fi
  echo "install.sh: could not create a virtual environment with '$1 -m venv $2'." >&2
  echo "install.sh: fix: 'sudo apt-get install python3-venv' (Debian/Ubuntu), or activate a venv of your own" >&2
  echo "install.sh:      ('python3 -m venv ~/ffenv && . ~/ffenv/bin/activate'), or use another Python: PYTHON=/path/to/python3" >&2
  return 1
}

fastface_python() {
  local create="" arg
  FASTFACE_VENV_DIR=""
  for arg in "$@"; do
    case "$arg" in
      --create) create=1 ;;
      --quiet) FF_QUIET=1 ;;
    esac
  done
  local base="${PYTHON:-python3}"
  if ! command -v "$base" >/dev/null 2>&1; then
    echo "install.sh: no Python interpreter '$base' found; install Python >= $FASTFACE_MIN_PY" \
         "(Debian/Ubuntu: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3" >&2
    return 1
  fi
  local kind ver ok exe
  if ! read -r kind ver ok exe < <(_ff_probe "$base"); then
    echo "install.sh: '$base' did not run; set PYTHON=/path/to/python3 (>= $FASTFACE_MIN_PY)" >&2
    return 1
  fi
  if [[ "$ok" != ok ]]; then
    echo "install.sh: $exe is Python $ver; FastFace Workbench needs Python >= $FASTFACE_MIN_PY (tested: 3.11)." \
         "Set PYTHON=/path/to/python3.11 or install a newer Python." >&2
    return 1
  fi
  case "$kind" in
    venv)
      PY="$exe"; PY_WHY="the virtual environment of $exe" ;;
    plain)
      PY="$exe"; PY_WHY="$exe (not externally managed)" ;;
    managed)
      local dir="${FASTFACE_VENV:-$PWD/.venv}"
      FASTFACE_VENV_DIR="$dir"
      if [[ ! -x "$dir/bin/python" ]]; then
        if [[ -z "$create" ]]; then  # only asked where: say what --create would do
          PY="$dir/bin/python"; PY_WHY="a new virtual environment $dir ($exe is externally managed)"
          export PY PY_WHY
          return 0
        fi
        _ff_say "install.sh: $exe is externally managed (PEP 668: pip may not install into it);"
        _ff_say "install.sh: creating a virtual environment at $dir"
        _ff_make_venv "$base" "$dir" "$ver" || return 1
      fi
      PY="$dir/bin/python"; PY_WHY="the virtual environment $dir ($exe is externally managed)" ;;
  esac
  export PY PY_WHY
}

fastface_link_cli() {
  local target="$1/bin/fastface" dir linked=""
  hash -r
  if [[ "$(command -v fastface 2>/dev/null || true)" -ef "$target" ]]; then
    echo "install.sh: 'fastface' on your PATH is $target" >&2
    return 0
  fi
  for dir in "$HOME/.local/bin" /usr/local/bin; do
    case ":$PATH:" in *":$dir:"*) ;; *) continue ;; esac
    [[ -d "$dir" && -w "$dir" ]] || continue
    [[ -e "$dir/fastface" && ! -L "$dir/fastface" ]] && continue  # never replace someone's file
    ln -sfn "$target" "$dir/fastface"
    linked="$dir/fastface"
    break
  done
  hash -r
  if [[ -n "$linked" && "$(command -v fastface)" -ef "$target" ]]; then
    echo "install.sh: linked $linked -> $target (so 'fastface' works without activating the venv)" >&2
  else
    echo "install.sh: 'fastface' is not on your PATH: run '. $1/bin/activate' first (or call $target)" >&2
    [[ -z "$linked" ]] || echo "install.sh: ($linked was linked, but another 'fastface' comes first on PATH)" >&2
  fi
}
