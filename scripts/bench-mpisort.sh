#!/usr/bin/env bash
# The sm_mpi_argsort benchmark of issue 15: writes bench/RESULTS-mpisort.md (and prints it).
#
#   scripts/bench-mpisort.sh
#
# 4 ranks on this machine (oversubscribed on 2 CPUs: mpirun.openmpi --oversubscribe
# --bind-to none), Open MPI only (the MPICH build is not benchmarked here), each rank with 2.5e6
# float64 or int64 keys, uniform, power-law and "few values" (bench/mpisort_bench.c says how they
# are made). Measures sm_mpi_argsort, sm_argsort of the same per-rank keys on every rank at once
# (the peer of the local phase), the phases inside sm_mpi_argsort, and gathering every key to
# rank 0 + sm_argsort there (bench/mpisort_bench.c, built against libsharedmem_mpi in
# build-mpi-openmpi/, as scripts/bench-mpi.sh does), then mpsort (pip; with mpi4py) sorting
# (key, index) records of the same keys (bench/mpisort_peer.py, which reads the keys the C
# program wrote to a temporary directory), and writes the table with each target of issue 15
# marked met / NOT met.
# Installs Open MPI when missing, mpi4py built against it (ensure_mpi4py) and mpsort when
# missing: pip, built with mpicc.openmpi against the installed numpy, Cython and mpi4py
# (--no-build-isolation; numpy, cython, setuptools and wheel are installed first when missing).
# When mpsort cannot be installed, the other columns are still measured and the table says why
# mpsort's are empty. About 5 minutes on 2 CPUs once built (a fresh clone adds cargo's release
# build, about 2 minutes). NLOCAL and RUNS in the environment change the keys per rank
# (2500000) and the timed runs per measure (5) for a quick try; the table says what was used.
# This is a benchmark, not a test: it is not part of scripts/test.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
BUILD="$ROOT/build-bench"
mkdir -p "$BUILD"
PY="${PYTHON:-python3}"
RANKS=4
NLOCAL="${NLOCAL:-2500000}"
RUNS="${RUNS:-5}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun.openmpi --oversubscribe --bind-to none -np "$RANKS")

# Open MPI only (ensure_mpi would also install MPICH, which this benchmark does not use).
missing=()
command -v mpicc.openmpi >/dev/null 2>&1 || missing+=(libopenmpi-dev)
command -v mpirun.openmpi >/dev/null 2>&1 || missing+=(openmpi-bin)
install_missing "Open MPI, for the sm_mpi_argsort benchmark" "${missing[@]}"
ensure_cargo
ensure_mpi4py "$PY" || true

MPSORT_HOW="" MPSORT_WHY=""
have_mpsort=1
ensure_mpsort "$PY" "$BUILD/mpsort-install.log" || have_mpsort=0

# build_sm (as in scripts/bench-mpi.sh, Open MPI only): libsharedmem (cargo, through CMake) and
# libsharedmem_mpi in build-mpi-openmpi/ (afresh if it belongs to another source tree), then
# bench/mpisort_bench.c with mpicc.openmpi, linked to both (rpath). CMake's output goes to
# build-mpi-openmpi/bench-build.log.
dir=build-mpi-openmpi
if [ -f "$dir/CMakeCache.txt" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$dir/CMakeCache.txt"; then
  rm -rf "$dir"
fi
mkdir -p "$dir"
if ! { cmake -S . -B "$dir" -DMPI_C_COMPILER=mpicc.openmpi -DMPIEXEC_EXECUTABLE="$(command -v mpirun.openmpi)" \
         -DMPI_Fortran_COMPILER=mpif90.openmpi -DSM_BUILD_BENCH=OFF \
       && cmake --build "$dir" -j "$(nproc)" --target sharedmem_mpi; } >"$dir/bench-build.log" 2>&1; then
  cat "$dir/bench-build.log" >&2
  echo "error: building libsharedmem_mpi in $dir failed" >&2
  exit 1
fi
mpicc.openmpi -O2 -Wall -Wextra -Werror -I include bench/mpisort_bench.c -o "$BUILD/mpisort_bench" \
  -L "$dir" -lsharedmem_mpi -L target/release -lsharedmem -lm \
  -Wl,-rpath,"$ROOT/$dir" -Wl,-rpath,"$ROOT/target/release"

KEYDIR=$(mktemp -d "${TMPDIR:-/tmp}/sm-mpisort.XXXXXX")
trap 'rm -rf "$KEYDIR"' EXIT
echo "==> sm_mpi_argsort, sm_argsort, gather + sm_argsort ($RANKS ranks x $NLOCAL keys, $RUNS runs)" >&2
if ! sm=$(timeout 600 "${MPIRUN[@]}" "$BUILD/mpisort_bench" "$NLOCAL" "$RUNS" "$KEYDIR" 2>&1); then
  echo "$sm" >&2
  echo "error: bench/mpisort_bench.c failed" >&2
  exit 1
fi
echo "$sm" >&2
peer=""
if [ "$have_mpsort" = 1 ]; then
  echo "==> mpsort ($RANKS ranks, same keys)" >&2
  if ! peer=$(timeout 900 "${MPIRUN[@]}" "$PY" bench/mpisort_peer.py "$KEYDIR" "$NLOCAL" "$RUNS" 2>&1); then
    echo "$peer" >&2
    MPSORT_WHY="bench/mpisort_peer.py failed (its last line: $(echo "$peer" | tail -n 1 | tr -d '`|'))"
    have_mpsort=0
  fi
  echo "$peer" >&2
fi

# val OUTPUT PREFIX CASE MEASURE: the "median min max" (seconds) of line "PREFIX CASE MEASURE ..."
val() { echo "$1" | awk -v p="$2" -v c="$3" -v m="$4" '$1 == p && $2 == c && $3 == m && $4 != "n/a" { print $4, $5, $6 }'; }
med() { echo "$1" | awk '{ print $1 }'; }
ms() { # ms "median min max": "123 ms [120 .. 130]"; "n/a" when empty
  if [ -z "$1" ]; then echo "n/a"; else echo "$1" | awk '{ printf "%.0f ms [%.0f .. %.0f]", $1 * 1000, $2 * 1000, $3 * 1000 }'; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.2f", a / b }'; }
verdict() { # verdict RATIO lt|le LIMIT
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    if (v == "") { print "n/a"; exit }
    ok = (op == "lt") ? (v + 0 < l + 0) : (v + 0 <= l + 0)
    print ok ? "met" : "NOT met" }'
}
cell() { # cell RATIO lt|le LIMIT: "0.45: met" or "n/a"
  if [ -z "$1" ]; then echo "n/a"; else echo "$1: $(verdict "$1" "$2" "$3")"; fi
}
cases="float64-uniform float64-powerlaw float64-fewvalues int64-uniform int64-powerlaw int64-fewvalues"
gcc_v=$(gcc --version | head -n 1)
ompi_v=$(echo "$sm" | sed -n 's/^mpi //p' | sed 's/,.*//')
py_v=$("$PY" -c 'import sys; print(sys.version.split()[0])')
np_v=$("$PY" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || echo 'not installed')
mpi4py_v=$("$PY" -c 'import mpi4py; print(mpi4py.__version__)' 2>/dev/null || echo 'not installed')
mpsort_v=$("$PY" -c 'import mpsort; print(mpsort.__version__)' 2>/dev/null || echo 'not installed')
cython_v=$("$PY" -c 'import Cython; print(Cython.__version__)' 2>/dev/null || echo 'not installed')
mpsort_cell() { if [ "$have_mpsort" = 1 ]; then ms "$1"; else echo "missing (below)"; fi; }

OUT="$BUILD/RESULTS-mpisort.md.tmp"
{
  echo "# sm_mpi_argsort benchmark (issue 15)"
  echo
  echo "Command: \`scripts/bench-mpisort.sh\` ($RANKS ranks on one machine: \`${MPIRUN[*]}\`;"
  echo "Open MPI only; $NLOCAL keys per rank, $RUNS timed runs per measure after one warm-up)."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- machine: nproc $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1); kernel $(uname -sr)"
  echo "- gcc: $gcc_v"
  echo "- Open MPI: $ompi_v"
  echo "- Python $py_v, numpy $np_v, mpi4py $mpi4py_v, mpsort $mpsort_v (built with Cython $cython_v)"
  echo "- mpsort: $(if [ "$have_mpsort" = 1 ]; then echo "$MPSORT_HOW"; else echo "MISSING: $MPSORT_WHY"; fi)"
  echo "- sharedmem: $(echo "$sm" | sed -n 's/^sharedmem //p'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src mpi include 2>/dev/null || echo ' with local changes in src/, mpi/ or include/'); $(rustc --version 2>/dev/null || echo 'rustc unknown')"
  echo "- run time of the whole script: ${SECONDS} s"
  echo
  echo "Every time is the median [min .. max] of $RUNS runs, each the maximum over the $RANKS ranks of"
  echo "the time from an MPI_Barrier to the end of the call (MPI_Wtime; MPI_Allreduce MAX). Each rank"
  echo "of the C program has one pool, \`sm_pool_new(2, SM_BACKEND_THREAD)\` (2 threads per sort, so"
  echo "8 sort threads on the 2 CPUs while all ranks sort), created before any timing."
  echo
  echo "- **sm_mpi_argsort**: the whole call, keys in, every rank's \`out\` (global indices) back."
  echo "- **mpsort, by key**: the issue's spec: \`mpsort.sort(data, orderby='key', comm=comm)\` on a"
  echo "  structured array of 16-byte records (key, global index), in place. mpsort sorts integer keys"
  echo "  only: int64 keys are used as they are; float64 keys as the monotone map of their bits to"
  echo "  uint64 (negative: all bits flipped, else the sign bit set), computed before the timing."
  echo "  It promises no order for equal keys."
  echo "- **mpsort, by (key, index)**: the same 16-byte records as one field of two uint64"
  echo "  [index, key] (mpsort: the later element is the more significant), so that it returns exactly"
  echo "  sm_mpi_argsort's order (checked: identical, every case)."
  echo "- **gather + sm_argsort**: MPI_Gatherv of all keys to rank 0, then \`sm_argsort\` of the"
  echo "  $((RANKS * NLOCAL)) keys there on rank 0's pool; the result is not scattered back (not included)."
  echo "- **sm_argsort local**: \`sm_argsort\` of each rank's own keys on its pool, all ranks at once:"
  echo "  what the local phase of sm_mpi_argsort does, in the same conditions."
  echo "- **local phase**: the local sort measured inside each sm_mpi_argsort call (from the MPI calls"
  echo "  the library makes, intercepted through the MPI profiling interface in bench/mpisort_bench.c:"
  echo "  from the end of its first MPI_Allgather, the argument check, to the start of the second;"
  echo "  this includes the allocation of the exchange buffers), the maximum over the ranks."
  echo
  echo "Targets of issue 15: (1) sm_mpi_argsort faster than mpsort: ratio < 1, against mpsort by key"
  echo "(the issue's spec; the ratio against mpsort by (key, index), the same output, is given too);"
  echo "(2) the local phase within 1.5x of sm_argsort on the same per-rank data: local phase /"
  echo "sm_argsort local <= 1.5."
  echo
  echo "| case | sm_mpi_argsort | mpsort, by key | mpsort, by (key, index) | gather + sm_argsort | sm_argsort local (same per-rank keys) | local phase (inside sm_mpi_argsort) | (1) sm_mpi_argsort / mpsort by key, target < 1 | sm_mpi_argsort / mpsort by (key, index) | (2) local phase / sm_argsort local, target <= 1.5 | sm_mpi_argsort / sm_argsort local (whole call, for information) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for c in $cases; do
    a=$(val "$sm" case "$c" mpi)
    pk=$(val "$peer" peer "$c" key)
    px=$(val "$peer" peer "$c" exact)
    g=$(val "$sm" case "$c" gather)
    l=$(val "$sm" case "$c" local)
    pl=$(val "$sm" case "$c" phase_local)
    r1=$(ratio "$(med "$a")" "$(med "$pk")")
    r1x=$(ratio "$(med "$a")" "$(med "$px")")
    r2=$(ratio "$(med "$pl")" "$(med "$l")")
    r3=$(ratio "$(med "$a")" "$(med "$l")")
    c1=$(cell "$r1" lt 1)
    [ "$have_mpsort" = 1 ] || c1="n/a (mpsort missing)"
    echo "| $c | $(ms "$a") | $(mpsort_cell "$pk") | $(mpsort_cell "$px") | $(ms "$g") | $(ms "$l") | $(ms "$pl") | $c1 | ${r1x:-n/a} | $(cell "$r2" le 1.5) | ${r3:-n/a} |"
  done
  echo
  echo "## Where sm_mpi_argsort's time goes"
  echo
  echo "Per phase, each the maximum over the ranks in each run (median [min .. max] of the $RUNS runs;"
  echo "the maxima of different ranks need not add up to the whole call): local = the local sort"
  echo "(above); splitting = the splitter rounds and the bounds (allgathers, waits for slower ranks"
  echo "included); exchange = packing and the two alltoallv of keys and indices (to the end of the"
  echo "last MPI_Waitall); merge = the merge of the received runs (to the return)."
  echo
  echo "| case | sm_mpi_argsort | local | splitting | exchange | merge | sm_mpi_argsort / gather + sm_argsort |"
  echo "|---|---|---|---|---|---|---|"
  for c in $cases; do
    a=$(val "$sm" case "$c" mpi)
    g=$(val "$sm" case "$c" gather)
    echo "| $c | $(ms "$a") | $(ms "$(val "$sm" case "$c" phase_local)") | $(ms "$(val "$sm" case "$c" phase_split)") | $(ms "$(val "$sm" case "$c" phase_exchange)") | $(ms "$(val "$sm" case "$c" phase_merge)") | $(ratio "$(med "$a")" "$(med "$g")") |"
  done
  echo
  echo "## Checks (from this run)"
  echo
  echo "$sm" | sed -n 's/^check /- sm_mpi_argsort /p'
  if [ "$have_mpsort" = 1 ]; then
    echo "$peer" | sed -n 's/^check peer /- mpsort /p'
  else
    echo "- mpsort: not run: $MPSORT_WHY"
  fi
  echo
  echo "Keys (bench/mpisort_bench.c, splitmix64 seeded by case and rank): uniform = f64 in [0, 1), any"
  echo "int64; powerlaw = 1 / u, u in (0, 1] (Pareto, alpha 1; int64: its floor, so half the keys are 1,"
  echo "a sixth 2, ...); fewvalues = 90% of the keys on -1, 0, 1, the rest uniform (f64 in [-2, 2),"
  echo "any int64). The Python peer reads the very keys the C program wrote."
} >"$OUT"
mv "$OUT" bench/RESULTS-mpisort.md
cat bench/RESULTS-mpisort.md
