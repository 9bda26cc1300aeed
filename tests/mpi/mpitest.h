/* Helpers of the sm_mpi_map tests (tests/mpi): MPI set-up, a CHECK that aborts the whole job,
 * the five local "backends" every test loops over, and collective checks. Header-only; builds on
 * tests/c/testutil.h (job-side checks, watchdog, messages).
 *
 * CHECK runs on a rank's calling thread only (never in a job: a forked worker must not call MPI);
 * a failed one prints "[rank R] file:line: ..." and calls MPI_Abort, which ends every rank. Checks
 * inside jobs use JCHECK (recorded in sm_empty memory, reported by the rank afterwards). */
#ifndef SM_MPI_TEST_H
#define SM_MPI_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdio.h>
#include <stdlib.h>

#include <sharedmem_mpi.h>

static int g_rank = -1, g_nranks = 0;

/* Ends the whole job: a check that failed on one rank must not leave the others waiting. */
static inline void mt_abort(void) {
  int up = 0, down = 0;
  MPI_Initialized(&up);
  MPI_Finalized(&down);
  if (up && !down) MPI_Abort(MPI_COMM_WORLD, 1);
  exit(1);
}

/* check.h's CHECK, with the rank, aborting every rank (tests/c/check.h is then not included). */
#define SM_TEST_CHECK_H
#define CHECK(cond, ...)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      fflush(stdout);                                                                     \
      fprintf(stderr, "[rank %d] %s:%d: CHECK(%s) failed: ", g_rank, __FILE__, __LINE__, \
              #cond);                                                                     \
      fprintf(stderr, __VA_ARGS__);                                                       \
      fputc('\n', stderr);                                                                \
      fflush(stderr);                                                                     \
      mt_abort();                                                                         \
    }                                                                                     \
  } while (0)

#include "testutil.h"

/* ---------------------------------------------------------------- set-up */

/* MPI_Init_thread with MPI_THREAD_FUNNELED (what sm_mpi_map needs from the main thread), the
 * rank and size, a watchdog of `secs` seconds (0: none), and the job-side check record. */
static inline void mt_init(int *argc, char ***argv, unsigned secs) {
  int provided = MPI_THREAD_SINGLE;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "MPI_Init_thread failed\n");
    exit(1);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_nranks);
  CHECK(provided >= MPI_THREAD_FUNNELED, "MPI provides thread level %d, below FUNNELED", provided);
  if (secs) {
    watchdog(secs);
  } else {
    setvbuf(stdout, NULL, _IOLBF, 0);
  }
  jfail_init();
}

/* Every rank done: a last barrier, "OK" from rank 0, MPI_Finalize. */
static inline int mt_finish(const char *what) {
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank == 0) printf("%s: OK on %d rank(s)\n", what, g_nranks);
  fflush(stdout);
  MPI_Finalize();
  return 0;
}

/* ---------------------------------------------------------------- the local backends */

/* What each rank runs its jobs on: a pool of each backend, or NULL (serially on the caller).
 * Persistent workers see the caller's ordinary memory as it was at sm_pool_new: a ctx the jobs
 * read lives in sm_empty memory (or goes with ctx_size), and nothing they read is set later. */
typedef struct {
  const char *name;
  sm_backend backend;
  int null_pool;
} mt_backend;

static const mt_backend MT_BACKENDS[] = {
    {"process", SM_BACKEND_PROCESS, 0},
    {"thread", SM_BACKEND_THREAD, 0},
    {"serial", SM_BACKEND_SERIAL, 0},
    {"null", SM_BACKEND_SERIAL, 1},
    {"persistent", SM_BACKEND_PERSISTENT, 0},
};
#define MT_NBACKENDS (sizeof MT_BACKENDS / sizeof MT_BACKENDS[0])
#define MT_WORKERS 2 /* workers of each rank's pool */

/* The pool of backend `b` for this rank (NULL for the null pool), and its worker count. */
static inline sm_pool *mt_pool(const mt_backend *b) {
  g_backend_name = b->name;
  return b->null_pool ? NULL : new_pool(MT_WORKERS, b->backend);
}

static inline int mt_nworkers(sm_pool *pool) { return pool ? sm_pool_nworkers(pool) : 1; }

/* ---------------------------------------------------------------- collective checks */

/* Every rank of `comm` got the same status, and it is `expected`; prints every rank's status and
 * message on a mismatch. `what` names the case. */
static inline void mt_check_status_all(MPI_Comm comm, sm_status st, sm_status expected,
                                       const char *what) {
  int n = 0, me = 0;
  MPI_Comm_size(comm, &n);
  MPI_Comm_rank(comm, &me);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", last_err());
  int mine = (int)st;
  int *all = (int *)calloc((size_t)n, sizeof(int));
  CHECK(all, "calloc");
  MPI_Allgather(&mine, 1, MPI_INT, all, 1, MPI_INT, comm);
  int ok = 1;
  for (int r = 0; r < n; r++) ok &= all[r] == (int)expected;
  if (!ok) {
    fprintf(stderr, "[rank %d, %s] %s: got %s (%d), expected %s; sm_last_error()=\"%s\"\n", g_rank,
            g_backend_name, what, sm_status_str(st), (int)st, sm_status_str(expected), msg);
    fflush(stderr);
    MPI_Barrier(comm); /* let every rank print before one aborts */
  }
  free(all);
  CHECK(ok, "%s [%s]: the ranks did not all return %s (this rank: %s; sm_last_error()=\"%s\")",
        what, g_backend_name, sm_status_str(expected), sm_status_str(st), msg);
  JCHECK_ALL_PASSED();
}

/* The smallest of every rank's `v` (SIZE_MAX: none). Reduced as signed numbers: MPICH 4.0's
 * MPI_MIN on MPI_UNSIGNED_LONG_LONG compares them as signed, making SIZE_MAX the smallest. */
static inline size_t mt_min_all(MPI_Comm comm, size_t v) {
  long long mine = v > (size_t)LLONG_MAX ? LLONG_MAX : (long long)v, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_LONG_LONG, MPI_MIN, comm);
  return all == LLONG_MAX ? SIZE_MAX : (size_t)all;
}

static inline long long mt_sum_all(MPI_Comm comm, long long v) {
  long long all = 0;
  MPI_Allreduce(&v, &all, 1, MPI_LONG_LONG, MPI_SUM, comm);
  return all;
}

/* A deterministic pseudo-random 64-bit value of x (splitmix64's finalizer). */
static inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/* Nanoseconds of CLOCK_MONOTONIC: one clock for every process of this machine, so times taken on
 * different ranks compare (the tests run every rank on one host). */
static inline uint64_t mt_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* An atomic "smallest value" in sm_empty memory (job-side records of failures). */
static inline void mt_atomic_min(_Atomic uint64_t *a, uint64_t v) {
  uint64_t cur = atomic_load(a);
  while (v < cur && !atomic_compare_exchange_weak(a, &cur, v)) {
  }
}

#endif
