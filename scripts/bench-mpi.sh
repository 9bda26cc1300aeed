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
# jobs) under Open MPI. Installs Open MPI and MPICH when missing (ensure_mpi), and mpi4py built
# against Open MPI when it is missing (ensure_mpi4py). sm_mpi_map's own rows come with its implementation.
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
mpicc.openmpi -O2 -Wall -Wextra -Werror bench/mpi_peer.c -o "$BUILD/mpi_peer_openmpi"
mpicc.mpich -O2 -Wall -Wextra -Werror bench/mpi_peer.c -o "$BUILD/mpi_peer_mpich"
ensure_mpi4py "$PY" || true

run() { timeout 600 "$@" 2>&1; }
openmpi=$(run mpirun.openmpi --oversubscribe -np "$RANKS" "$BUILD/mpi_peer_openmpi")
openmpi_tcp=$(run mpirun.openmpi --oversubscribe --mca btl self,tcp -np "$RANKS" "$BUILD/mpi_peer_openmpi")
mpich=$(run mpiexec.mpich -n "$RANKS" "$BUILD/mpi_peer_mpich")
if "$PY" -c 'import mpi4py' >/dev/null 2>&1; then
  mpi4py=$(run mpirun.openmpi --oversubscribe -np "$RANKS" "$PY" -m mpi4py bench/mpi4py_peer.py 100000 1000)
else
  mpi4py="peer mpi4py (not installed: pip could not build it)"
fi

field() { # field OUTPUT NAME: the "value unit [min .. max]" of line "peer NAME ..."
  echo "$1" | sed -n "s/^peer $2 //p"
}
version() { echo "$1" | sed -n 's/^mpi //p' | sed 's/,.*//' | tr -s '\t' ' '; }

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
  echo
  echo "## Peers (sm_mpi_map's rows come with its implementation)"
  echo
  echo "| measure | Open MPI (shared memory) | Open MPI (--mca btl self,tcp) | MPICH | target for sm_mpi_map |"
  echo "|---|---|---|---|---|"
  echo "| dispatch: 10^6 trivial jobs, hand-written C, MPI_Fetch_and_op counter, chunk 1000, results in order on root (ns/job, median [min .. max] of 5) | $(field "$openmpi" dispatch) | $(field "$openmpi_tcp" dispatch) | $(field "$mpich" dispatch) | <= 1.5x this, per implementation |"
  echo "| dispatch: mpi4py.futures MPICommExecutor.map, chunksize 1000, 10^5 jobs (ns/job) | $(field "$mpi4py" mpi4py) | | | sm_mpi_map >= 100x faster |"
  echo "| throughput: 1 MiB messages, MPI_Send/MPI_Recv rank 1 -> 0 (MB/s) | $(field "$openmpi" throughput) | $(field "$openmpi_tcp" throughput) | $(field "$mpich" throughput) | 1 MiB results to root >= 50% of this |"
  echo
  echo "mpi4py: root is the executor's master (it runs no jobs); the other ranks are its workers."
  echo "The C peer's root runs jobs too, and its memory holds all njobs results (no window)."
} >"$OUT"
mv "$OUT" bench/RESULTS-mpi.md
cat bench/RESULTS-mpi.md
