#!/usr/bin/env bash
# scripts/common.sh's ensure_numpy against fake commands: a `python3` whose pip succeeds, refuses
# (PEP 668, as Debian 12's and Ubuntu 24.04's python3 do) or is missing, whose `import numpy` fails
# until something installed it, and whose `-m venv` works or fails; an `apt-get` that installs
# python3-numpy or fails (no network).  In every case a `set -e` script that calls ensure_numpy
# must go on (the old `python3 -m pip install numpy` in scripts/test.sh ended it on PEP 668), and
# SM_NUMPY_PYTHON must name the interpreter that has numpy.  Also checks that no script but
# common.sh runs pip itself.
#
#   tests/scripts/ensure_numpy.sh <work dir>      (ctest: scripts.ensure_numpy)
#
# SM_COMMON_SH=<file> tests another common.sh (to check that this test fails on the old logic).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
common=${SM_COMMON_SH:-$root/scripts/common.sh}
work=${1:?usage: ensure_numpy.sh <work dir>}
rm -rf "$work"
mkdir -p "$work/bin"
failures=0

# ---- The fakes.  Behaviour from FAKE_PIP (ok, pep668, missing), FAKE_APT (ok, fail) and FAKE_VENV
# (ok, fail); what happened is appended to $STATE/log; $STATE/numpy means "installed for the system
# python", $STATE/venv-numpy "installed in the venv".
cat > "$work/bin/python3" <<'PY'
#!/usr/bin/env bash
echo "$0 $*" >> "$STATE/log"
venv=0; [ "$0" = "$SM_NUMPY_VENV/bin/python" ] && venv=1
marker=$STATE/numpy; [ $venv = 1 ] && marker=$STATE/venv-numpy
case "$1 ${2:-} ${3:-}" in
  "-c "*)
    [ -e "$marker" ] && exit 0
    echo "ModuleNotFoundError: No module named 'numpy'" >&2; exit 1 ;;
  "-m pip --version")
    [ $venv = 0 ] && [ "$FAKE_PIP" = missing ] && { echo "No module named pip" >&2; exit 1; }
    echo "pip 23.0.1"; exit 0 ;;
  "-m pip install")
    if [ $venv = 0 ]; then
      case $FAKE_PIP in
        pep668) printf '%s\n' "error: externally-managed-environment" "" \
                  "× This environment is externally managed" \
                  "╰─> To install Python packages system-wide, try apt install python3-xyz" >&2
                exit 1 ;;
        missing) echo "$0: No module named pip" >&2; exit 1 ;;
      esac
    fi
    touch "$marker"; exit 0 ;;
  "-m venv "*)
    mkdir -p "$3/bin"
    if [ "$FAKE_VENV" = fail ]; then
      echo "The virtual environment was not created successfully because ensurepip is not available." >&2
      exit 1
    fi
    cp "$0" "$3/bin/python"; exit 0 ;;
esac
echo "fake python3: unexpected arguments: $*" >&2; exit 2
PY
cat > "$work/bin/apt-get" <<'APT'
#!/usr/bin/env bash
echo "apt-get $*" >> "$STATE/log"
[ "$FAKE_APT" = ok ] || { echo "E: Failed to fetch (no network)" >&2; exit 100; }
case " $* " in *" install "*python3-numpy*) touch "$STATE/numpy" ;; esac
exit 0
APT
chmod +x "$work/bin/python3" "$work/bin/apt-get"

# scenario <name> <pip> <apt> <venv> <numpy already there: 0/1> <expected: system (python3 with
#          numpy), venv (the venv's python with numpy), without (python3, without numpy), none>
#          <grep -E that the log must match, or -> <grep -E that the log must not match, or ->
#          [ensure_numpy's argument]
scenario() {
  local name=$1 pip=$2 apt=$3 venv=$4 present=$5 expect=$6 must=$7 mustnot=$8 arg=${9:-python3}
  local dir=$work/$name
  mkdir -p "$dir"
  : > "$dir/log"
  [ "$present" = 1 ] && touch "$dir/numpy"
  local out rc
  out=$(cd "$dir" && env PATH="$work/bin:$PATH" STATE="$dir" SM_NUMPY_VENV="$dir/venv" \
        FAKE_PIP="$pip" FAKE_APT="$apt" FAKE_VENV="$venv" COMMON="$common" ARG="$arg" \
        bash -c 'set -euo pipefail
                 . "$COMMON"
                 as_root() { "$@"; }      # the fake apt-get needs no root
                 ensure_numpy "$ARG"
                 echo "after ensure_numpy: SM_NUMPY_PYTHON=${SM_NUMPY_PYTHON-unset}"' 2>&1)
  rc=$?
  local want
  case $expect in
    system|without) want=$work/bin/python3 ;;
    venv) want=$dir/venv/bin/python ;;
    none) want= ;;
  esac
  local why=
  [ $rc = 0 ] || why="exit status $rc"
  grep -qxF "after ensure_numpy: SM_NUMPY_PYTHON=$want" <<<"$out" \
    || why="${why:+$why; }the script did not go on with SM_NUMPY_PYTHON=$want"
  if [ "$must" != - ] && ! grep -qE -e "$must" "$dir/log"; then why="${why:+$why; }nothing matched '$must'"; fi
  if [ "$mustnot" != - ] && grep -qE -e "$mustnot" "$dir/log"; then why="${why:+$why; }unexpected '$mustnot'"; fi
  if [ "$expect" = system ] && [ ! -e "$dir/numpy" ]; then why="${why:+$why; }numpy not installed"; fi
  if [ "$venv" = fail ] && [ -e "$dir/venv" ]; then why="${why:+$why; }the failed venv was left behind"; fi
  if [ -n "$why" ]; then
    echo "FAIL $name: $why"
    sed 's/^/    | /' <<<"$out"
    sed 's/^/    log: /' "$dir/log"
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}

#        name                 pip     apt  venv present expect  must                          must not
scenario already_there        ok      ok   ok   1       system  -                             'pip|apt-get'
scenario pip_works            ok      ok   ok   0       system  'pip install'                 'apt-get|venv'
scenario pep668_apt           pep668  ok   ok   0       system  'apt-get install -y python3-numpy' 'venv'
scenario no_pip_apt           missing ok   ok   0       system  'apt-get install -y python3-numpy' 'venv'
scenario pep668_venv          pep668  fail ok   0       venv    '-m venv'                     -
scenario pep668_nothing_works pep668  fail fail 0       without '-m venv'                     -
scenario no_python            ok      ok   ok   0       none    -                             'python3|apt-get' \
  python3-that-does-not-exist
# When nothing works, the tests that need numpy are named as skipped (python3 stays the one to use).
out=$(cd "$work/pep668_nothing_works" && env PATH="$work/bin:$PATH" STATE=. SM_NUMPY_VENV=./venv \
      FAKE_PIP=pep668 FAKE_APT=fail FAKE_VENV=fail bash -c '. "$0"; as_root() { "$@"; }; ensure_numpy' \
      "$common" 2>&1)
if grep -q "will be skipped" <<<"$out"; then echo "ok   nothing_works_says_so"; else
  echo "FAIL nothing_works_says_so: no message that the numpy tests will be skipped"; failures=$((failures + 1))
fi

# Only common.sh runs pip: every script installs numpy through ensure_numpy.
if grep -ln 'pip install' "$root"/scripts/*.sh | grep -v '/common\.sh$'; then
  echo "FAIL: the scripts above run pip themselves instead of ensure_numpy"; failures=$((failures + 1))
else
  echo "ok   only_common_sh_runs_pip"
fi

if [ $failures -gt 0 ]; then echo "$failures failed"; exit 1; fi
echo "all passed"
