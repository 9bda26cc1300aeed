"""The mpi4py peer of sm_mpi_map's dispatch benchmark (issue 13): NJOBS trivial jobs (result: one
float) through mpi4py.futures.MPICommExecutor.map with a good chunksize, every rank but root a
worker, the results summed on root in job order. Prints "peer mpi4py <ns/job> ns/job [min .. max]",
the median of 5 runs after a warm-up.

    mpirun -np 4 python3 -m mpi4py bench/mpi4py_peer.py [NJOBS [CHUNKSIZE]]
"""

import sys
import time

from mpi4py import MPI
from mpi4py.futures import MPICommExecutor


def job(j):
    return float(j % 8)


def main():
    njobs = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    chunksize = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    comm = MPI.COMM_WORLD
    want = float(sum(j % 8 for j in range(njobs)))
    times = []
    for run in range(6):
        comm.Barrier()
        with MPICommExecutor(comm, root=0) as executor:
            if executor is None:
                continue  # a worker rank: it served the map
            t0 = time.perf_counter()
            total = 0.0
            for r in executor.map(job, range(njobs), chunksize=chunksize):
                total += r
            seconds = time.perf_counter() - t0
            if total != want:
                sys.exit(f"mpi4py_peer: sum {total}, expected {want}")
            if run > 0:  # run 0 is the warm-up
                times.append(seconds / njobs * 1e9)
    if comm.Get_rank() == 0:
        times.sort()
        print(f"mpi4py {MPI.Get_library_version().splitlines()[0]}")
        print(f"njobs {njobs} chunksize {chunksize}")
        print(f"peer mpi4py {times[len(times) // 2]:.4g} ns/job [{times[0]:.4g} .. {times[-1]:.4g}]")


if __name__ == "__main__":
    main()
