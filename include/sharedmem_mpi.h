/*
 * sharedmem_mpi: one map across the ranks of an MPI communicator (libsharedmem_mpi).
 *
 * Hand-written (sharedmem.h is generated; this header is not). Link with libsharedmem_mpi and
 * libsharedmem (CMake: `find_package(sharedmem COMPONENTS mpi)` and `sharedmem::mpi`;
 * pkg-config: `sharedmem-mpi`), and compile with the compiler wrapper (mpicc) of the MPI that
 * libsharedmem_mpi was built against: Open MPI and MPICH are not interchangeable (their MPI_Comm
 * types differ). libsharedmem itself is free of MPI.
 *
 * The same `work` and `reduce` that `sm_map` runs on one machine run unchanged across ranks:
 *
 *   MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
 *   sm_pool *pool = sm_pool_new(0, SM_BACKEND_PROCESS);       // this rank's workers
 *   sm_status s = sm_mpi_map(pool, MPI_COMM_WORLD, 0, njobs, work, reduce, sizeof(double), &ctx);
 *   // every rank gets the same s; reduce ran on rank 0 only, for jobs 0, 1, ..., njobs-1 in order
 *
 * Running it. Open MPI binds each rank to one core by default, so that sm_pool_new(0, ...), which
 * counts the CPUs the process may use, gives a pool of 1 worker: for hybrid runs (a few ranks,
 * several workers each) start with `mpirun --bind-to none ...`, or give each rank N cores with
 * `mpirun --map-by ppr:1:node:PE=N ...` (one rank per node). Forking from an MPI process can make
 * Open MPI warn about fork(); the process backend's children never call MPI, so
 * `OMPI_MCA_mpi_warn_on_fork=0` in the environment silences the warning safely.
 */

#ifndef SHAREDMEM_MPI_H
#define SHAREDMEM_MPI_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "sharedmem.h"

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// Runs `work(ctx, job, result)` once for every job in [0, njobs) across the ranks of `comm`, and
// `reduce` on rank `root` in increasing job order, as one `sm_map` spread over several machines.
//
// Collective: every rank of `comm` calls it, with the same `root`, `njobs` and `result_size`.
// Jobs are numbered globally, [0, njobs): `work` gets the global job number, whichever rank runs
// it. Jobs are handed out dynamically across the ranks, in chunks that adapt to their duration,
// and each rank runs the jobs it gets on its own `pool` (any backend); a NULL `pool` runs that
// rank's jobs serially on the calling thread (its jobs then have no pool to pass to
// `sm_critical_*` / `sm_ordered_*`: give such a rank `sm_pool_new(1, SM_BACKEND_SERIAL)`, which
// runs them the same way). `ctx` is each rank's own (pointers in it are that rank's memory).
//
// `reduce` (may be NULL) runs on `root` only, never on the other ranks: once per completed job, in
// increasing global job order, on the calling thread, while the jobs go on. It streams: results
// wait on root in a bounded window, so root's memory is bounded whatever njobs is (10^8 jobs run
// in the memory 10^4 do: at most 64 MiB of results, which root keeps for its next call on the same
// thread). Each job's `result` crosses to root as `result_size` bytes.
//
// In a job: `sm_critical_enter` / `sm_critical_leave` are mutual exclusion among the workers of
// that rank only (the section guards that node's `sm_empty` memory, which other ranks do not
// share); `sm_ordered_enter` / `sm_ordered_leave` follow global job order across all ranks (a job
// enters once every job with a smaller number, on any rank, has left its ordered section or
// finished without entering one; jobs may skip it), so output written in order from many nodes
// comes out in job order. Workers never call MPI (the children of the process backend must not,
// and thread workers have no thread level to do it with); only the calling thread does.
//
// Returns what `sm_map` returns, and the same status on every rank: SM_OK; SM_STOPPED when a job
// returned SM_STOP or reduce returned nonzero; SM_ERR_JOB, SM_ERR_WORKER_DIED, SM_ERR_INTERRUPTED
// or SM_ERR_NOMEM when that happened on any rank. `sm_last_error()` then holds, on every rank, a
// message naming the rank, the job and the cause. As with `sm_map`, the first failure in job
// order wins, and root has reduced exactly the jobs before the failing (or stopping) one (the
// stopping one included for SM_STOP).
// SM_ERR_INVALID on every rank, with a message naming the ranks that differ, when the ranks do not
// agree on `root`, `njobs`, `result_size` (or, for `sm_mpi_map_ex`, on whether options are given
// and on `wresult_size`); SM_ERR_INVALID also, on every rank, for the arguments `sm_map` refuses on
// any rank (NULL `work`, sizes out of range), and for a `root` outside [0, size of comm).
// SM_ERR_STATE when called from inside a job (on that rank, at once, before any MPI call), or on
// every rank when a rank's pool is busy with another map.
//
// MPI: MPI must be initialized (and not finalized): otherwise SM_ERR_STATE on that rank, at once.
// The thread level needed is MPI_THREAD_FUNNELED when called from the main thread
// (`MPI_Is_thread_main`), MPI_THREAD_SERIALIZED otherwise (as `MPI_Query_thread` reports it;
// initialize MPI with `MPI_Init_thread`); below it, SM_ERR_STATE on every rank, with a message
// naming the level needed. `comm` must be an intra-communicator (not MPI_COMM_NULL: SM_ERR_STATE
// on that rank). The call communicates on its own duplicate of `comm` (MPI_Comm_dup, freed before
// it returns), so its messages never mix with the program's, and sets MPI_ERRORS_ARE_FATAL on that
// duplicate: a communication failure aborts the job instead of leaving the other ranks waiting.
// Ranks may run several maps at once on disjoint communicators (from MPI_Comm_split).
//
// A whole rank dying (killed, out of memory, exit in the calling process) is not something MPI
// lets the others survive: the launcher ends the job. Open MPI's mpirun and MPICH's mpiexec
// (Hydra) both kill the other ranks and exit with a nonzero status.
sm_status sm_mpi_map(sm_pool *pool, MPI_Comm comm, int root, size_t njobs,
                     sm_work_fn work, sm_reduce_fn reduce, size_t result_size, void *ctx);

// `sm_mpi_map` with the options of `sm_map_ex` (`opts` may be NULL: then exactly `sm_mpi_map`).
// `chunk`, `worker_init`, `worker_fini`, `wresult_size` and `inner_threads` apply to each rank's
// own workers, as in `sm_map_ex` (on a rank that gets no job too: its workers run worker_init and
// worker_fini). `worker_reduce` runs on root only, after the jobs, once for every
// worker of every rank, in (rank, worker) order, with each worker's result shipped to root; the
// `worker` it gets is numbered across the ranks, rank-major: the sum of the workers of the ranks
// before it plus the worker's index in its rank (so 0..W-1 for W workers in all). `progress` runs
// on root only, with global counts (`done` jobs of all ranks out of `njobs`).
// Every rank must pass options, or none, with the same `wresult_size` (a mismatch is
// SM_ERR_INVALID on every rank, naming the ranks). Returns what `sm_mpi_map` returns.
sm_status sm_mpi_map_ex(sm_pool *pool, MPI_Comm comm, int root, size_t njobs,
                        sm_work_fn work, sm_reduce_fn reduce, size_t result_size, void *ctx,
                        const sm_map_opts *opts);

// `sm_mpi_map` with the communicator as a Fortran handle (an `integer` from `use mpi`, or
// `comm%MPI_VAL` from `use mpi_f08`), converted with MPI_Comm_f2c: the entry of the Fortran
// module `sharedmem_mpi`.
sm_status sm_mpi_map_f(sm_pool *pool, MPI_Fint comm, int root, size_t njobs,
                       sm_work_fn work, sm_reduce_fn reduce, size_t result_size, void *ctx);

// `sm_mpi_map_ex` with the communicator as a Fortran handle (see `sm_mpi_map_f`).
sm_status sm_mpi_map_ex_f(sm_pool *pool, MPI_Fint comm, int root, size_t njobs,
                          sm_work_fn work, sm_reduce_fn reduce, size_t result_size, void *ctx,
                          const sm_map_opts *opts);

// numpy's stable argsort of an array spread over the ranks of `comm`. Collective.
//
// The global array is the concatenation of every rank's `keys` (`nlocal` elements of `dtype`) in
// rank order; ranks may hold different counts, zero included. On return, rank r's `out` (nlocal
// entries) holds the global indices of the elements at positions [offset_r, offset_r + nlocal)
// of the sorted order, where offset_r is the number of elements on the ranks before r: the
// concatenation of every rank's `out` is exactly `numpy.argsort(numpy.concatenate(keys),
// kind='stable')`, with `sm_argsort`'s order (equal keys in input order; for floats -inf <
// finite < +inf < NaN, -0.0 equal to +0.0). Each rank's output has the same length as its input,
// so `sm_mpi_permute` with it reorders any payload array held the same way.
//
// Each rank sorts its part with `sm_argsort`'s engine on its pool's worker count, as threads
// (NULL pool: the default worker count), then the ranks find exact splitters (a few small
// allgathers), exchange keys and indices once (all-to-all), and each rank merges what it
// received. Extra memory per rank, whatever the keys (all equal, all on one rank, sorted,
// reversed): at most max(2 nlocal (keysize + 4), 2 nlocal (keysize + 8)) bytes, i.e.
// 2 nlocal (keysize + 8): the local sort's work buffers, then the send and receive buffers of the
// exchange (never both), plus MPI's own message buffers. `keys` is only read; `out` is also used
// as scratch during the call.
//
// Errors, the same status on every rank, with a message naming the ranks: SM_ERR_INVALID when
// the ranks pass different dtypes, or a rank passes a dtype out of range, NULL keys or out with
// nlocal > 0, out overlapping keys, or an invalid pool; SM_ERR_NOMEM when a rank cannot allocate
// its buffers (before anything is exchanged); SM_ERR_STATE for the MPI state and thread level,
// as for `sm_mpi_map` (MPI not initialized, called from inside a job, MPI_COMM_NULL: on that rank
// alone, at once). A communication failure aborts the job (MPI_ERRORS_ARE_FATAL).
sm_status sm_mpi_argsort(sm_pool *pool, MPI_Comm comm, const void *keys, size_t nlocal,
                         sm_dtype dtype, int64_t *out);

// Gathers items by global index across the ranks of `comm`: `dst[i] = global_src[index[i]]`
// for i in [0, nout), where global_src is the concatenation of every rank's `src` (`nlocal`
// items of `itemsize` bytes) in rank order. Collective; `nout` may differ from `nlocal` and
// between ranks, and indices may repeat. With the `out` of `sm_mpi_argsort` as `index` it
// reorders a payload array (positions, masses) held like the keys: `a[np.argsort(a,
// kind='stable')]` on every rank's share.
//
// `dst` may be `src` (an in-place reorder when nout == nlocal) but must not overlap `index`.
// Items are copied with the pool's worker count as threads (NULL pool: the default).
// Extra memory per rank: 8 nout + (8 + itemsize) q + itemsize nout bytes, where q is the number
// of indices (of all ranks) that point into this rank's src; for a permutation (sm_mpi_argsort's
// output), q = nlocal.
//
// Errors, the same status on every rank: SM_ERR_INVALID, naming the rank and the position, for an
// index outside [0, total items); for different itemsizes between ranks, itemsize 0, NULL src
// with nlocal > 0, NULL index or dst with nout > 0, dst overlapping index; otherwise as
// `sm_mpi_argsort`.
sm_status sm_mpi_permute(sm_pool *pool, MPI_Comm comm, const void *src, size_t nlocal,
                         size_t itemsize, const int64_t *index, size_t nout, void *dst);

// `sm_mpi_argsort` with the communicator as a Fortran handle (see `sm_mpi_map_f`): the entry of
// the Fortran module `sharedmem_mpi`.
sm_status sm_mpi_argsort_f(sm_pool *pool, MPI_Fint comm, const void *keys, size_t nlocal,
                           sm_dtype dtype, int64_t *out);

// `sm_mpi_permute` with the communicator as a Fortran handle (see `sm_mpi_map_f`): the entry of
// the Fortran module `sharedmem_mpi`.
sm_status sm_mpi_permute_f(sm_pool *pool, MPI_Fint comm, const void *src, size_t nlocal,
                           size_t itemsize, const int64_t *index, size_t nout, void *dst);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* SHAREDMEM_MPI_H */
