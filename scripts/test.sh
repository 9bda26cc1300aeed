#!/usr/bin/env bash
# The whole test suite, on a fresh machine:
#   Setup:  cmake, gcc, g++, gfortran, pkg-config, binutils, clang + libomp, OpenBLAS (pthreads and
#           OpenMP builds) with apt-get when missing; cargo; numpy
#           (scripts/common.sh's ensure_numpy: pip, else the distribution's python3-numpy, else a
#           virtual environment; without numpy the numpy comparisons skip, with the reason)
#   Rust: cargo fmt --check, cargo clippy (warnings are errors), cargo test
#   C:    cmake configure + build in build/, then ctest (examples, tests/c, tests/omp,
#         tests/package, tests/scripts)
#   MPI:  sm_mpi_map's component built and tested twice, against Open MPI (build-mpi-openmpi/) and
#         MPICH (build-mpi-mpich/): the target sharedmem_mpi_tests, then ctest -L mpi (tests/mpi
#         under the launcher, the MPI examples and package tests); installs both MPIs with apt-get
#         when missing (common.sh's ensure_mpi). The main build/ is configured without MPI.
#   Fuzz:   scripts/fuzz.sh 30 (each libFuzzer target for 30 s; a finding fails)
#   Soak:   scripts/soak.sh 0.5 (random maps for 30 s, every result checked)
#   Memory: scripts/sanitize.sh (tests/c under ASan/LSan and valgrind memcheck, the Rust tests
#           under memcheck: the CI subset; installs valgrind when missing)
#
#   scripts/test.sh
#
# Every step runs, even after one failed (a step whose input failed, e.g. the build and ctest after
# the configure step, is reported as not run, and counts as failed; ctest runs after a failed build,
# and the tests whose programs are missing fail).  At the end: a table of the steps, and one line
#
#   sharedmem tests: N passed, M failed
#
# counting tests where a step reports them (cargo test: every "test result" line; ctest: its tests,
# skipped ones apart; sanitize.sh: its "N passed, M failed") and the step itself, as one, where it
# does not (fmt, clippy, setup, configure, build, fuzz, soak).  A step that fails without a count
# of failed tests counts as one failure.  Exits nonzero when M > 0.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. scripts/common.sh || exit 1

jobs="$(nproc 2>/dev/null || echo 2)"
logs=target/test-logs
mkdir -p "$logs"

total_passed=0 total_failed=0
summary=()
declare -A outcome=()

# record <name> <result> <passed> <failed> <skipped> <seconds>
record() {
  outcome[$1]=$2
  total_passed=$((total_passed + $3))
  total_failed=$((total_failed + $4))
  local note=
  [ "$5" -gt 0 ] && note="  $5 skipped"
  summary+=("$(printf '  %-10s %-7s %7s %7s  %5ss%s' "$1" "$2" "$3" "$4" "$6" "$note")")
}

# count <name> <log>: prints "passed failed skipped" as the step's output reports them, or nothing.
count() {
  case $1 in
    cargo-test)
      # "test result: ok. 12 passed; 0 failed; 1 ignored; ..." once per test binary and doc tests
      awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i;
             if ($(i+1) ~ /^failed;?$/) f += $i; if ($(i+1) ~ /^ignored;?$/) s += $i } ; n++ }
           END { if (n) print p + 0, f + 0, s + 0 }' "$2" ;;
    ctest|mpi-*)
      # "97% tests passed, 3 tests failed out of 160"; skipped tests are listed as "(Skipped)"
      local line failed total skipped
      line=$(grep -E '[0-9]+ tests? failed out of [0-9]+' "$2" | tail -n 1) || return 0
      failed=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
      total=$(sed -E 's/.*failed out of ([0-9]+).*/\1/' <<<"$line")
      skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)' "$2")
      echo "$((total - failed - skipped)) $failed $skipped" ;;
    sanitize)
      # its last line: "N passed, M failed"
      grep -E '^[0-9]+ passed, [0-9]+ failed$' "$2" | tail -n 1 | awk '{ print $1, $3, 0 }' ;;
  esac
}

# step <name> <needs|-> <description> <command...>: runs the command (output to the terminal and
# to target/test-logs/<name>.log) unless the step it needs did not pass, and records the outcome.
step() {
  local name=$1 needs=$2 what=$3; shift 3
  local log=$logs/$name.log
  echo; echo "==> $what"
  if [ "$needs" != - ] && [ "${outcome[$needs]:-}" != ok ]; then
    echo "not run: step '$needs' did not pass"
    record "$name" "not run" 0 1 0 0
    return
  fi
  local t0=$SECONDS rc
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local counts p f s
  counts=$(count "$name" "$log")
  if [ -n "$counts" ]; then
    read -r p f s <<<"$counts"
    # a failing step without a failed test (e.g. a compile error) is still one failure
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  elif [ "$rc" -eq 0 ]; then p=1 f=0 s=0
  else p=0 f=1 s=0
  fi
  record "$name" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)" "$p" "$f" "$s" $((SECONDS - t0))
}

# Setup runs in this shell (ensure_cargo and ensure_numpy set PATH and SM_NUMPY_PYTHON), each part
# even when another failed.
setup() {
  local rc=0
  ensure_tools cmake:cmake cc:gcc gcc:gcc c++:g++ gfortran:gfortran pkg-config:pkg-config \
    readelf:binutils || rc=1
  ensure_omp_blas || rc=1
  # Open MPI and MPICH, side by side, for the MPI component's two test runs.
  ensure_mpi || rc=1
  ensure_cargo || rc=1
  # numpy is the reference of tests/c/argsort_numpy.py; never fails (the test then skips).
  ensure_numpy python3
  return $rc
}
echo "==> setup (tools, cargo, numpy)"
t0=$SECONDS
if setup; then record setup ok 1 0 0 $((SECONDS - t0)); else record setup FAILED 0 1 0 $((SECONDS - t0)); fi

cmake_python=()
[ -n "${SM_NUMPY_PYTHON:-}" ] && cmake_python=(-DSM_PYTHON3="$SM_NUMPY_PYTHON")

step fmt - "cargo fmt --check" cargo fmt --check
step clippy - "cargo clippy --all-targets -- -D warnings" cargo clippy --all-targets -- -D warnings
step cargo-test - "cargo test --release" cargo test --release
# Tests, examples and benchmarks are asked for, in case build/ was configured without them.
# The MPI component is built and tested in build directories of its own, one per MPI (below).
step configure - "cmake configure (build/)" \
  configure_build -DSM_BUILD_TESTS=ON -DSM_BUILD_BENCH=ON -DSM_BUILD_EXAMPLES=ON -DSM_WITH_MPI=OFF \
  "${cmake_python[@]}"
# The build goes on past a target that fails to compile, and ctest runs whatever was built: one
# broken test program must not hide the results of all the others (its tests fail as "Not Run").
build_keep_going() {
  case $(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' build/CMakeCache.txt) in
    Ninja*) cmake --build build -j "$jobs" -- -k 0 ;;
    *Makefiles) cmake --build build -j "$jobs" -- -k ;;
    *) cmake --build build -j "$jobs" ;;
  esac
}
step build configure "cmake build" build_keep_going
# A per-test timeout for tests that set none, so a hang cannot eat CI's budget.
step ctest configure "ctest" bash -c 'cd build && ctest --output-on-failure --timeout 300'

# ---- sm_mpi_map (issue 13): the MPI component against each MPI, in its own build directory.
# mpi_suite <dir> <mpicc> <mpiexec> <mpif90>: configure (afresh if <dir> belongs to another source
# tree), build the component with its tests and examples (going on past a failing target), then
# ctest -L mpi (skipped when the configure step failed). Every test has its own timeout; 120 s
# is the fallback.
mpi_suite() {
  local dir=$1 mpicc=$2 mpiexec=$3 mpif90=$4 rc=0
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$PWD" "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  cmake -S . -B "$dir" -DSM_BUILD_TESTS=ON -DSM_BUILD_EXAMPLES=ON -DSM_BUILD_BENCH=OFF \
    -DSM_WITH_MPI=ON -DMPI_C_COMPILER="$mpicc" -DMPIEXEC_EXECUTABLE="$(command -v "$mpiexec")" \
    -DMPI_Fortran_COMPILER="$mpif90" "${cmake_python[@]}" || return 1
  case $(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$dir/CMakeCache.txt" 2>/dev/null) in
    Ninja*) cmake --build "$dir" -j "$jobs" --target sharedmem_mpi_tests -- -k 0 || rc=1 ;;
    *Makefiles) cmake --build "$dir" -j "$jobs" --target sharedmem_mpi_tests -- -k || rc=1 ;;
    *) cmake --build "$dir" -j "$jobs" --target sharedmem_mpi_tests || rc=1 ;;
  esac
  (cd "$dir" && ctest -L mpi -j "$jobs" --output-on-failure --timeout 120) || rc=1
  return $rc
}
step mpi-ompi - "sm_mpi_map against Open MPI (build-mpi-openmpi/, ctest -L mpi)" \
  mpi_suite build-mpi-openmpi mpicc.openmpi mpirun.openmpi mpif90.openmpi
step mpi-mpich - "sm_mpi_map against MPICH (build-mpi-mpich/, ctest -L mpi)" \
  mpi_suite build-mpi-mpich mpicc.mpich mpiexec.mpich mpif90.mpich

# ---- Short fuzz and soak runs (issue 6); the long ones are run by hand (README, "Run the tests").
step fuzz - "scripts/fuzz.sh 30 (libFuzzer: argsort against a reference, every export's argument checks)" \
  bash scripts/fuzz.sh 30
step soak - "scripts/soak.sh 0.5 (random maps, faults and regions for 30 s)" bash scripts/soak.sh 0.5

# ---- Memory checks (issue 6): tests/c under AddressSanitizer/LeakSanitizer and valgrind memcheck,
# and the Rust tests under memcheck; the CI subset (a few minutes).  Everything: scripts/sanitize.sh full.
step sanitize - "scripts/sanitize.sh (ASan + LSan, valgrind memcheck)" bash scripts/sanitize.sh

echo
echo "==> summary (logs in $logs/)"
printf '  %-10s %-7s %7s %7s  %6s\n' step result passed failed time
printf '%s\n' "${summary[@]}"
echo "sharedmem tests: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
