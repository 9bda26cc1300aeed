/* Failures of sm_mpi_map, on a non-root rank (on the only rank when there is one), on every local
 * backend:
 *
 * - a job error: jobs from J = 3000 on fail with 7 on every rank but root. Which rank runs which job
 *   is decided at run time, so each rank notes the smallest job it failed (sm_empty) and the
 *   first failure F is the smallest over the ranks. Every rank returns SM_ERR_JOB, with a message
 *   naming job F, the value 7 and the rank that ran it; root reduced exactly jobs 0..F-1.
 * - SM_STOP from J on, likewise: SM_STOPPED everywhere, root reduced exactly 0..F.
 * - a killed worker (process and persistent backends): raise(SIGKILL) in jobs from J on:
 *   SM_ERR_WORKER_DIED everywhere, naming job F and the rank; root reduced exactly 0..F-1; no
 *   child process of the rank is left (a persistent pool's zygote aside), nor, on a rank where a
 *   worker died, a worker of its persistent pool (its zygote kills the others and they are
 *   reaped before the call returns).
 * After each failure a plain map on the same pools succeeds (nothing left over from the failed one;
 * the persistent pool's dead workers replaced).
 *
 * Root's jobs from J on are slowed down (1 ms each), so that other ranks surely run some of them.
 *
 * Usage: test_failures (under mpiexec, any number of ranks) */
#include "mpitest.h"

#define NJOBS 10000
#define FAIL_FROM 3000

enum { FAIL_ERROR, FAIL_STOP, FAIL_KILL };

/* In sm_empty memory: persistent workers see no later write to the caller's other memory. */
typedef struct {
  int mode;
  int root;
  _Atomic uint64_t *first; /* sm_empty: the smallest job this rank failed (UINT64_MAX: none) */
  size_t reduced, out_of_order;
} fail_ctx;

static int fails_here(const fail_ctx *c, size_t job) {
  return job >= FAIL_FROM && (g_nranks == 1 || g_rank != c->root);
}

static int work(void *ctx_, size_t job, void *result) {
  fail_ctx *c = ctx_;
  *(uint64_t *)result = mix64(job);
  if (job >= FAIL_FROM && g_nranks > 1 && g_rank == c->root) usleep_full(1000);
  if (!fails_here(c, job)) return 0;
  mt_atomic_min(c->first, job);
  switch (c->mode) {
  case FAIL_ERROR:
    return 7;
  case FAIL_STOP:
    return SM_STOP;
  default:
    raise(SIGKILL);
    return 0;
  }
}

static int reduce(void *ctx_, size_t job, void *result) {
  fail_ctx *c = ctx_;
  if (job != c->reduced || *(uint64_t *)result != mix64(job)) c->out_of_order++;
  c->reduced++;
  return 0;
}

static int plain_work(void *ctx, size_t job, void *result) {
  (void)ctx;
  *(uint64_t *)result = job;
  return 0;
}

static int plain_reduce(void *ctx, size_t job, void *result) {
  size_t *n = ctx;
  if (*(uint64_t *)result != job || job != *n) return 1;
  (*n)++;
  return 0;
}

static void run_case(sm_pool *pool, int mode, const char *what) {
  int root = g_nranks - 1; /* any root will do; not 0, for a change */
  fail_ctx *c = must_empty(1, sizeof *c);
  c->mode = mode;
  c->root = root;
  c->first = must_empty(1, sizeof(uint64_t));
  atomic_store(c->first, UINT64_MAX);
  JRESET();
  sm_status st = sm_mpi_map(pool, MPI_COMM_WORLD, root, NJOBS, work, reduce, 8, c);
  sm_status expected = mode == FAIL_ERROR ? SM_ERR_JOB
                       : mode == FAIL_STOP ? SM_STOPPED
                                           : SM_ERR_WORKER_DIED;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", last_err());
  mt_check_status_all(MPI_COMM_WORLD, st, expected, what);

  /* F, the first failing job over all ranks, and the rank that ran it. */
  size_t mine = (size_t)atomic_load(c->first);
  size_t first = mt_min_all(MPI_COMM_WORLD, mine);
  CHECK(first != (size_t)UINT64_MAX, "%s [%s]: no rank failed a job", what, g_backend_name);
  int owner = mine == first ? g_rank : INT_MAX, who = INT_MAX;
  MPI_Allreduce(&owner, &who, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

  if (mode != FAIL_STOP) {
    /* The same message on every rank names the job, the rank and the cause. */
    CHECK(has_number(msg, (long long)first), "%s [%s]: the message does not name job %zu: \"%s\"",
          what, g_backend_name, first, msg);
    CHECK(icontains(msg, "rank") && has_number(msg, who),
          "%s [%s]: the message does not name rank %d, which ran job %zu: \"%s\"", what,
          g_backend_name, who, first, msg);
    if (mode == FAIL_ERROR)
      CHECK(has_number(msg, 7), "%s [%s]: the message does not give the value 7: \"%s\"", what,
            g_backend_name, msg);
    else
      CHECK(icontains(msg, "signal") || icontains(msg, "SIGKILL") || icontains(msg, "killed"),
            "%s [%s]: the message does not say the worker was killed: \"%s\"", what,
            g_backend_name, msg);
  }
  size_t reduced_expected = mode == FAIL_STOP ? first + 1 : first;
  if (g_rank == root) {
    CHECK(c->out_of_order == 0, "%s [%s]: reduce saw jobs out of order or with a wrong result",
          what, g_backend_name);
    CHECK(c->reduced == reduced_expected,
          "%s [%s]: root reduced %zu jobs, expected exactly %zu (jobs 0..%zu; the first failure "
          "was job %zu, on rank %d)",
          what, g_backend_name, c->reduced, reduced_expected, reduced_expected - 1, first, who);
  } else {
    CHECK(c->reduced == 0, "%s [%s]: reduce ran on rank %d, not root", what, g_backend_name,
          g_rank);
  }
  sm_free((void *)c->first);
  sm_free(c);
  if (mode == FAIL_KILL) {
    CHECK_NO_CHILDREN(what);
    int left = count_pool_workers();
    CHECK(mine == (size_t)UINT64_MAX || left == 0,
          "%s [%s]: %d worker(s) of this rank's persistent pool (zombies included) remain after the "
          "map in which one of them died; the others are killed and reaped before the call returns",
          what, g_backend_name, left);
  }

  /* The next map on the same pool is not disturbed by the failed one. */
  size_t *n = must_empty(1, sizeof *n);
  st = sm_mpi_map(pool, MPI_COMM_WORLD, 0, 5000, plain_work, plain_reduce, 8, n);
  mt_check_status_all(MPI_COMM_WORLD, st, SM_OK, "a plain map after a failed one");
  if (g_rank == 0) CHECK(*n == 5000, "root reduced %zu jobs of 5000 in order", *n);
  sm_free(n);
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, 100);
  for (size_t b = 0; b < MT_NBACKENDS; b++) {
    sm_pool *pool = mt_pool(&MT_BACKENDS[b]);
    run_case(pool, FAIL_ERROR, "a job error on a non-root rank");
    run_case(pool, FAIL_STOP, "SM_STOP on a non-root rank");
    if (!MT_BACKENDS[b].null_pool && workers_are_processes(MT_BACKENDS[b].backend))
      run_case(pool, FAIL_KILL, "a killed worker on a non-root rank");
    if (pool) sm_pool_free(pool);
    if (g_rank == 0) printf("backend %s: OK\n", MT_BACKENDS[b].name);
  }
  return mt_finish("test_failures");
}
