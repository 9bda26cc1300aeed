#!/usr/bin/env bash
# scripts/test.sh's bookkeeping, against fake tools: a copy of test.sh and common.sh in a scratch
# repository whose cargo, cmake, ctest, compilers and python3 are fakes on PATH and whose
# fuzz.sh, soak.sh and sanitize.sh are stubs.  Checks that every step runs after one failed, that
# a step whose input failed is "not run" and counts as failed, that the counts of cargo test,
# ctest and sanitize.sh are summed, that the last line is "sharedmem tests: N passed, M failed",
# and the exit status.
#
#   tests/scripts/test_summary.sh <work dir>      (ctest: scripts.test_summary)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:?usage: test_summary.sh <work dir>}
rm -rf "$work"
mkdir -p "$work/bin"
failures=0

fake() { printf '#!/usr/bin/env bash\n%s\n' "$2" > "$work/bin/$1"; chmod +x "$work/bin/$1"; }
# Each fake logs its call; FAIL_<WHAT>=1 makes it fail.
fake cargo 'echo "cargo $*" >> "$LOG"
case $1 in
  fmt) [ "${FAIL_FMT:-0}" = 0 ] ;;
  clippy) [ "${FAIL_CLIPPY:-0}" = 0 ] ;;
  test) echo "test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out"
        echo "test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
        echo "   Doc-tests sharedmem"
        echo "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out" ;;
esac'
fake cmake 'echo "cmake $*" >> "$LOG"
if [ "$1" = -S ]; then
  [ "${FAIL_CONFIGURE:-0}" = 0 ] || exit 1
  dir=build; prev=
  for a in "$@"; do [ "$prev" = -B ] && dir=$a; prev=$a; done
  mkdir -p "$dir" && echo "CMAKE_GENERATOR:INTERNAL=Unix Makefiles" > "$dir/CMakeCache.txt"; exit
fi
[ "${FAIL_BUILD:-0}" = 0 ]'
fake ctest 'echo "ctest $*" >> "$LOG"
echo "2/10 Test  #2: c.argsort_numpy ...***Skipped   0.01 sec"
echo "90% tests passed, 1 tests failed out of 10"
echo "The following tests did not run:"
printf "\t  2 - c.argsort_numpy (Skipped)\n"
echo "The following tests FAILED:"
printf "\t  7 - c.basic.thread (Failed)\n"
exit 8'
fake python3 'exit 0'   # numpy is there
for t in cc gcc c++ gfortran pkg-config readelf mpicc.openmpi mpirun.openmpi mpif90.openmpi \
         mpicc.mpich mpiexec.mpich mpif90.mpich; do fake "$t" 'exit 0'; done

# run <name> [VAR=1 ...]: test.sh in a fresh scratch repository; its output in $work/<name>.out.
run() {
  local name=$1; shift
  local repo=$work/$name
  mkdir -p "$repo/scripts"
  cp "$root/scripts/test.sh" "$root/scripts/common.sh" "$repo/scripts/"
  printf 'echo "fuzz $*" >> "$LOG"\n' > "$repo/scripts/fuzz.sh"
  printf 'echo "soak $*" >> "$LOG"\n' > "$repo/scripts/soak.sh"
  printf 'echo "sanitize" >> "$LOG"\necho "--- asan: 3 passed, 1 failed (1 s)"\necho "4 passed, 1 failed"\nexit 1\n' \
    > "$repo/scripts/sanitize.sh"
  : > "$repo/calls.log"
  env PATH="$work/bin:$PATH" LOG="$repo/calls.log" CARGO_HOME="$work/no-cargo-home" "$@" \
    bash "$repo/scripts/test.sh" > "$work/$name.out" 2>&1 </dev/null
  echo $? > "$work/$name.rc"
}

# expect <name> <exit status: 0 or nonzero> <last line> <calls that must be in the log...>
expect() {
  local name=$1 rc=$2 last=$3; shift 3
  local why='' got
  got=$(cat "$work/$name.rc")
  if [ "$rc" = 0 ]; then [ "$got" = 0 ] || why="exit status $got, expected 0"
  else [ "$got" != 0 ] || why="exit status 0, expected nonzero"; fi
  [ "$(tail -n 1 "$work/$name.out")" = "$last" ] || why="${why:+$why; }last line is not '$last'"
  [ "$(grep -c '^sharedmem tests: ' "$work/$name.out")" = 1 ] || why="${why:+$why; }not exactly one overall line"
  local call
  for call in "$@"; do
    grep -qE -e "$call" "$work/$name/calls.log" || why="${why:+$why; }'$call' did not run"
  done
  if [ -n "$why" ]; then
    echo "FAIL $name: $why"; sed 's/^/    | /' "$work/$name.out" | tail -n 40; failures=$((failures + 1))
  else
    echo "ok   $name: $(tail -n 1 "$work/$name.out")"
  fi
}

# clippy fails: everything after it still runs.  Passed: setup 1, fmt 1, cargo test 7, configure 1,
# build 1, ctest 10 - 1 failed - 1 skipped = 8, mpi-ompi 8, mpi-mpich 8, fuzz 1, soak 1, sanitize 4
# = 41; failed: clippy 1, ctest 1, mpi-ompi 1, mpi-mpich 1, sanitize 1 = 5.
run clippy_fails FAIL_CLIPPY=1
expect clippy_fails 1 "sharedmem tests: 41 passed, 5 failed" '^cargo clippy' '^cargo test' '^ctest' \
  '^cmake -S \. -B build-mpi-openmpi .*-DMPI_C_COMPILER=mpicc.openmpi' \
  '^cmake -S \. -B build-mpi-mpich .*-DMPI_C_COMPILER=mpicc.mpich' \
  '^cmake --build build-mpi-mpich .*--target sharedmem_mpi_tests' '^ctest -L mpi' \
  '^fuzz 30' '^soak 0.5' '^sanitize'
grep -qE '^  mpi-mpich +FAILED +8 +1 ' "$work/clippy_fails.out" \
  || { echo "FAIL clippy_fails: the table's mpi-mpich row"; failures=$((failures + 1)); }
grep -qE '^cmake -S \. -B build .*-DSM_WITH_MPI=OFF' "$work/clippy_fails/calls.log" \
  || { echo "FAIL clippy_fails: build/ not configured without MPI"; failures=$((failures + 1)); }
grep -qE '^  ctest +FAILED +8 +1 .*1 skipped' "$work/clippy_fails.out" \
  || { echo "FAIL clippy_fails: the table's ctest row"; failures=$((failures + 1)); }

# configure fails: build and ctest are not run and count as failed; the MPI steps' configure fails
# too, so they run no ctest and count one failure each; fuzz, soak, sanitize still run.
# Passed: 1 + 1 + 1 + 7 + 0 + 0 + 0 + 0 + 0 + 1 + 1 + 4 = 16; failed: configure, build, ctest,
# mpi-ompi, mpi-mpich, sanitize = 6.
run configure_fails FAIL_CONFIGURE=1
expect configure_fails 1 "sharedmem tests: 16 passed, 6 failed" '^fuzz 30' '^sanitize'
if grep -qE '^ctest' "$work/configure_fails/calls.log"; then
  echo "FAIL configure_fails: ctest ran without a build"; failures=$((failures + 1))
fi
grep -qE '^  build +not run' "$work/configure_fails.out" \
  || { echo "FAIL configure_fails: build not reported as not run"; failures=$((failures + 1)); }

# build fails: ctest still runs (the tests whose programs were built give their results), in the
# MPI build directories too.
# Passed: 1 + 1 + 1 + 7 + 1 + 0 + 8 + 8 + 8 + 1 + 1 + 4 = 41; failed: build, ctest 1, mpi-ompi 1,
# mpi-mpich 1, sanitize 1 = 5.
run build_fails FAIL_BUILD=1
expect build_fails 1 "sharedmem tests: 41 passed, 5 failed" '^cmake --build build .* -k' '^ctest' \
  '^ctest -L mpi' '^sanitize'

if [ $failures -gt 0 ]; then echo "$failures failed"; exit 1; fi
echo "all passed"
