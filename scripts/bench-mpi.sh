#!/usr/bin/env bash
# The MPI benchmark of issue 13: writes bench/RESULTS-mpi.md (and prints it).
#
#   scripts/bench-mpi.sh
#
# Runs, with 4 ranks on this machine (oversubscribed on 2 CPUs), under Open MPI and under MPICH:
# the hand-written C peer (bench/mpi_peer.c: 10^6 trivial jobs handed out through an
# MPI_Fetch_and_op counter in chunks of 1000, results gathered on root in job order; 1 MiB
# MPI_Send/MPI_Recv throughput), Open MPI also with the network path forced (--mca btl self,tcp),
# and the mpi4py.futures peer (bench/mpi4py_peer.py: MPICommExecutor.map, chunksize 1000, 10^5
# jobs) under Open MPI. Then sm_mpi_map's own rows (bench/mpi_bench.c: dispatch, load balance,
# 1 MiB results to root) in the same three settings, against libsharedmem_mpi built with CMake in
# build-mpi-openmpi/ and build-mpi-mpich/ (the build directories of scripts/test.sh's MPI steps),
# with ratios to the peers and each target of issue 13 marked met / NOT met.
# Installs Open MPI and MPICH when missing (ensure_mpi), and mpi4py built against Open MPI when
# it is missing (ensure_mpi4py). About 3 minutes on 2 CPUs once built (a fresh clone adds cargo's
# release build, about a minute).
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
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

ensure_mpi
ensure_cargo
mpicc.openmpi -O2 -Wall -Wextra -Werror bench/mpi_peer.c -o "$BUILD/mpi_peer_openmpi"
mpicc.mpich -O2 -Wall -Wextra -Werror bench/mpi_peer.c -o "$BUILD/mpi_peer_mpich"
ensure_mpi4py "$PY" || true

# build_sm <dir> <mpicc> <mpiexec> <mpif90> <program>: libsharedmem (cargo, through CMake) and
# libsharedmem_mpi against that MPI in <dir> (configured as scripts/test.sh configures it, afresh if
# <dir> belongs to another source tree), then bench/mpi_bench.c with that MPI's mpicc, linked to
# both libraries (found at run time through its rpath). CMake's output goes to <dir>/bench-build.log.
build_sm() {
  local dir=$1 mpicc=$2 mpiexec=$3 mpif90=$4 program=$5
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  if ! { cmake -S . -B "$dir" -DMPI_C_COMPILER="$mpicc" -DMPIEXEC_EXECUTABLE="$(command -v "$mpiexec")" \
           -DMPI_Fortran_COMPILER="$mpif90" -DSM_BUILD_BENCH=OFF \
         && cmake --build "$dir" -j "$(nproc)" --target sharedmem_mpi; } >"$dir/bench-build.log" 2>&1; then
    cat "$dir/bench-build.log" >&2
    echo "error: building libsharedmem_mpi in $dir failed" >&2
    return 1
  fi
  "$mpicc" -O2 -Wall -Wextra -Werror -I include bench/mpi_bench.c -o "$program" \
    -L "$dir" -lsharedmem_mpi -L target/release -lsharedmem -lm \
    -Wl,-rpath,"$ROOT/$dir" -Wl,-rpath,"$ROOT/target/release"
}
build_sm build-mpi-openmpi mpicc.openmpi mpirun.openmpi mpif90.openmpi "$BUILD/mpi_bench_openmpi"
build_sm build-mpi-mpich mpicc.mpich mpiexec.mpich mpif90.mpich "$BUILD/mpi_bench_mpich"

run() { timeout 600 "$@" 2>&1; }
openmpi=$(run mpirun.openmpi --oversubscribe -np "$RANKS" "$BUILD/mpi_peer_openmpi")
openmpi_tcp=$(run mpirun.openmpi --oversubscribe --mca btl self,tcp -np "$RANKS" "$BUILD/mpi_peer_openmpi")
mpich=$(run mpiexec.mpich -n "$RANKS" "$BUILD/mpi_peer_mpich")
# sm_mpi_map: --bind-to none so that each rank's pool may use every CPU (with 4 ranks on 2 CPUs
# Open MPI binds nothing anyway, as for the peer above); a failed run ends the script.
run_sm() {
  local out
  if ! out=$(run "$@"); then
    echo "$out" >&2
    echo "error: $* failed" >&2
    exit 1
  fi
  echo "$out"
}
sm_openmpi=$(run_sm mpirun.openmpi --oversubscribe --bind-to none -np "$RANKS" "$BUILD/mpi_bench_openmpi")
sm_openmpi_tcp=$(run_sm mpirun.openmpi --oversubscribe --bind-to none --mca btl self,tcp -np "$RANKS" "$BUILD/mpi_bench_openmpi")
sm_mpich=$(run_sm mpiexec.mpich -n "$RANKS" "$BUILD/mpi_bench_mpich")
if "$PY" -c 'import mpi4py' >/dev/null 2>&1; then
  mpi4py=$(run mpirun.openmpi --oversubscribe -np "$RANKS" "$PY" -m mpi4py bench/mpi4py_peer.py 100000 1000)
else
  mpi4py="peer mpi4py (not installed: pip could not build it)"
fi

field() { # field OUTPUT NAME: the "value unit [min .. max]" of line "peer NAME ..."
  echo "$1" | sed -n "s/^peer $2 //p"
}
version() { echo "$1" | sed -n 's/^mpi //p' | sed 's/,.*//' | tr -s '\t' ' '; }
smfield() { # smfield OUTPUT NAME: the "value unit [min .. max]" of line "sm NAME ..."
  echo "$1" | sed -n "s/^sm $2 //p"
}
median() { echo "$1" | awk '{print $1}'; } # the value of a field
ratio() {  # ratio A B: A / B (3 digits), empty when either is missing
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.3g", a / b }'
}
verdict() { # verdict VALUE le|ge LIMIT: "met" / "NOT met" / "n/a"
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    if (v == "") { print "n/a"; exit }
    ok = (op == "le") ? (v + 0 <= l + 0) : (v + 0 >= l + 0)
    print ok ? "met" : "NOT met" }'
}
# cell_ratio SM_OUTPUT SM_NAME PEER_OUTPUT PEER_NAME le|ge LIMIT SUFFIX: "1.23x: met"
cell_ratio() {
  local r
  r=$(ratio "$(median "$(smfield "$1" "$2")")" "$(median "$(field "$3" "$4")")")
  if [ -z "$r" ]; then echo "n/a"; else echo "$r$7: $(verdict "$r" "$5" "$6")"; fi
}
# cell_eff SM_OUTPUT NAME: the efficiency field with met / NOT met against >= 0.9
cell_eff() {
  local f
  f=$(smfield "$1" "$2")
  if [ -z "$f" ]; then echo "n/a"; else echo "$f: $(verdict "$(median "$f")" ge 0.9)"; fi
}
# speedup over mpi4py (Open MPI, shared memory): mpi4py ns/job / sm ns/job
cell_mpi4py() {
  local r
  r=$(ratio "$(median "$(field "$mpi4py" mpi4py)")" "$(median "$(smfield "$sm_openmpi" "$1")")")
  if [ -z "$r" ]; then echo "n/a"; else echo "${r}x: $(verdict "$r" ge 100)"; fi
}
info() { echo "$1" | sed -n "s/^info $2 //p"; } # the details line "info NAME ..."
# remote_cell SM_OUTPUT PEER_OUTPUT: row 3' with its ratio to the peer's MPI_Send/MPI_Recv rate
remote_cell() {
  local f r
  f=$(smfield "$1" throughput_remote)
  r=$(ratio "$(median "$f")" "$(median "$(field "$2" throughput)")")
  if [ -z "$f" ]; then echo "n/a"; else echo "$f; ${r:-n/a} of the peer"; fi
}

OUT="$BUILD/RESULTS-mpi.md.tmp"
{
  echo "# sharedmem MPI benchmark (issue 13)"
  echo
  echo "Command: \`scripts/bench-mpi.sh\` ($RANKS ranks on one machine, oversubscribed)."
  echo
  echo "Machine:"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "- nproc: $(nproc) CPUs; CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "- kernel: $(uname -sr)"
  echo "- Open MPI: $(version "$openmpi")"
  echo "- MPICH: $(version "$mpich")"
  echo "- mpi4py: $("$PY" -c 'import mpi4py; print(mpi4py.__version__)' 2>/dev/null || echo 'not installed'), Python $("$PY" -c 'import sys; print(sys.version.split()[0])')"
  echo "- sharedmem: $(echo "$sm_openmpi" | sed -n 's/^sharedmem //p'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src mpi include 2>/dev/null || echo ' with local changes in src/, mpi/ or include/'); $(rustc --version 2>/dev/null || echo 'rustc unknown')"
  echo "- run time of the whole script: ${SECONDS} s"
  echo
  echo "## Peers"
  echo
  echo "| measure | Open MPI (shared memory) | Open MPI (--mca btl self,tcp) | MPICH | target for sm_mpi_map |"
  echo "|---|---|---|---|---|"
  echo "| dispatch: 10^6 trivial jobs, hand-written C, MPI_Fetch_and_op counter, chunk 1000, results in order on root (ns/job, median [min .. max] of 5) | $(field "$openmpi" dispatch) | $(field "$openmpi_tcp" dispatch) | $(field "$mpich" dispatch) | <= 1.5x this, per implementation |"
  echo "| dispatch: mpi4py.futures MPICommExecutor.map, chunksize 1000, 10^5 jobs (ns/job) | $(field "$mpi4py" mpi4py) | | | sm_mpi_map >= 100x faster |"
  echo "| throughput: 1 MiB messages, MPI_Send/MPI_Recv rank 1 -> 0 (MB/s) | $(field "$openmpi" throughput) | $(field "$openmpi_tcp" throughput) | $(field "$mpich" throughput) | 1 MiB results to root >= 50% of this |"
  echo
  echo "mpi4py: root is the executor's master (it runs no jobs); the other ranks are its workers."
  echo "The C peer's root runs jobs too, and its memory holds all njobs results (no window)."
  echo
  echo "## sm_mpi_map (bench/mpi_bench.c)"
  echo
  echo "Same machine and run. \`mpirun.openmpi --oversubscribe --bind-to none -np $RANKS\` (and with"
  echo "\`--mca btl self,tcp\`), \`mpiexec.mpich -n $RANKS\`: --bind-to none lets each rank's pool use every"
  echo "CPU (Open MPI binds nothing anyway with $RANKS ranks on $(nproc) CPUs, so the peers run unbound too)."
  echo "Each value is the median [min .. max] of 5 runs after a warm-up, timed on root from an"
  echo "MPI_Barrier before the one sm_mpi_map call to its return; pools are created once, outside the"
  echo "timing. Ratios use the medians."
  echo
  echo "| measure | Open MPI (shared memory) | Open MPI (--mca btl self,tcp) | MPICH | target |"
  echo "|---|---|---|---|---|"
  echo "| 1a dispatch, the peer's work: 10^6 jobs, each writes (double)(job % 8) into its 8-byte result, root's reduce sums them in job order (sum checked); $RANKS ranks x 1 thread worker (ns/job) | $(smfield "$sm_openmpi" dispatch_reduce) | $(smfield "$sm_openmpi_tcp" dispatch_reduce) | $(smfield "$sm_mpich" dispatch_reduce) | |"
  echo "| 1a / hand-written C peer (same MPI) | $(cell_ratio "$sm_openmpi" dispatch_reduce "$openmpi" dispatch le 1.5 x) | $(cell_ratio "$sm_openmpi_tcp" dispatch_reduce "$openmpi_tcp" dispatch le 1.5 x) | $(cell_ratio "$sm_mpich" dispatch_reduce "$mpich" dispatch le 1.5 x) | <= 1.5x |"
  echo "| 1a: mpi4py / sm_mpi_map (per job; mpi4py ran under Open MPI's shared memory only) | $(cell_mpi4py dispatch_reduce) | | | >= 100x |"
  echo "| 1b dispatch alone: 10^6 jobs that do nothing, reduce NULL, result_size 0 (ns/job) | $(smfield "$sm_openmpi" dispatch_noreduce) | $(smfield "$sm_openmpi_tcp" dispatch_noreduce) | $(smfield "$sm_mpich" dispatch_noreduce) | |"
  echo "| 1b / hand-written C peer (which does more: results to root) | $(cell_ratio "$sm_openmpi" dispatch_noreduce "$openmpi" dispatch le 1.5 x) | $(cell_ratio "$sm_openmpi_tcp" dispatch_noreduce "$openmpi_tcp" dispatch le 1.5 x) | $(cell_ratio "$sm_mpich" dispatch_noreduce "$mpich" dispatch le 1.5 x) | <= 1.5x |"
  echo "| 1b: mpi4py / sm_mpi_map | $(cell_mpi4py dispatch_noreduce) | | | >= 100x |"
  echo "| 1c dispatch with per-worker partial sums: sm_mpi_map_ex, wresult_size 8, jobs add job % 8 into sm_worker_local(), worker_reduce on root adds them (sum checked) (ns/job) | $(smfield "$sm_openmpi" dispatch_wlocal) | $(smfield "$sm_openmpi_tcp" dispatch_wlocal) | $(smfield "$sm_mpich" dispatch_wlocal) | |"
  echo "| 1c / hand-written C peer | $(cell_ratio "$sm_openmpi" dispatch_wlocal "$openmpi" dispatch le 1.5 x) | $(cell_ratio "$sm_openmpi_tcp" dispatch_wlocal "$openmpi_tcp" dispatch le 1.5 x) | $(cell_ratio "$sm_mpich" dispatch_wlocal "$mpich" dispatch le 1.5 x) | <= 1.5x |"
  echo "| 1c: mpi4py / sm_mpi_map | $(cell_mpi4py dispatch_wlocal) | | | >= 100x |"
  echo "| 2a load balance, skewed: $RANKS ranks x 2 thread workers, 4000 jobs sleeping D = 2 ms, 10 D on rank 1; ideal = sum(D) / (2 x (3 + 0.1)) (efficiency = ideal / measured) | $(cell_eff "$sm_openmpi" balance_skewed) | $(cell_eff "$sm_openmpi_tcp" balance_skewed) | $(cell_eff "$sm_mpich" balance_skewed) | >= 0.9 |"
  echo "| 2b load balance, Pareto: $RANKS ranks x 2 thread workers, 8000 jobs sleeping a Pareto duration (alpha 1.5, min 0.5 ms, capped at 50 ms; from the job index); ideal = max(sum(d) / 8, max d) (efficiency) | $(cell_eff "$sm_openmpi" balance_pareto) | $(cell_eff "$sm_openmpi_tcp" balance_pareto) | $(cell_eff "$sm_mpich" balance_pareto) | >= 0.9 |"
  echo "| 3 throughput: 200 jobs with 1 MiB results streamed to root; 2 ranks (0 and 1, split from the $RANKS; the others wait in MPI_Barrier, as the peer's wait in MPI_Bcast) x 1 thread worker; each job writes its index into its first 8 bytes, root's reduce checks it; 200 MiB / time (MB/s) | $(smfield "$sm_openmpi" throughput) | $(smfield "$sm_openmpi_tcp" throughput) | $(smfield "$sm_mpich" throughput) | |"
  echo "| 3 / MPI_Send/MPI_Recv peer (same MPI) | $(cell_ratio "$sm_openmpi" throughput "$openmpi" throughput ge 0.5 '') | $(cell_ratio "$sm_openmpi_tcp" throughput "$openmpi_tcp" throughput ge 0.5 '') | $(cell_ratio "$sm_mpich" throughput "$mpich" throughput ge 0.5 '') | >= 0.5 |"
  echo "| 3' of which the results run on rank 1, the only ones that crossed to root (their MiB / the same time; MB/s; / the peer) | $(remote_cell "$sm_openmpi" "$openmpi") | $(remote_cell "$sm_openmpi_tcp" "$openmpi_tcp") | $(remote_cell "$sm_mpich" "$mpich") | (information) |"
  echo
  echo "Row 3: root's own results do not cross the network (they go from its worker to its window in"
  echo "memory); only the share run on rank 1 does (below), so row 3's ratio compares mostly in-memory"
  echo "results with the peer's, which all cross (a \"met\" there, with the peer's slow TCP path, says"
  echo "little); row 3' is the part that crossed. Row 2: the durations are nominal; every"
  echo "sleep overshoots by the wakeup latency of this machine (below, measured in the jobs, with the"
  echo "timer slack set to 1 ns), which the ideal does not include."
  echo
  echo "Details (root's \`info\` lines):"
  echo
  for setting in "Open MPI (shared memory)|$sm_openmpi" "Open MPI (--mca btl self,tcp)|$sm_openmpi_tcp" "MPICH|$sm_mpich"; do
    name=${setting%%|*}
    out=${setting#*|}
    echo "- $name:"
    for row in balance_skewed balance_pareto throughput; do
      echo "  - $row: $(info "$out" "$row")"
    done
  done
} >"$OUT"
mv "$OUT" bench/RESULTS-mpi.md
cat bench/RESULTS-mpi.md
