/* sm_mpi_map_ex's options, on every local backend (process, thread, serial, persistent pools and a
 * NULL pool):
 *
 * - per-worker results: jobs add their value into their worker's result (sm_worker_local);
 *   worker_reduce runs on root only, once for every worker of every rank (also of ranks that got
 *   no job: one map has a single job), in (rank, worker)
 *   order with the workers numbered across the ranks (0 .. W-1, W the workers of all ranks), and
 *   the per-worker sums add up to the sum over all jobs; worker_init ran in every worker before
 *   its jobs (a flag in the per-worker result);
 * - progress runs on root only, with total = njobs, done never decreasing, and a last call with
 *   done = njobs;
 * - a fixed chunk: the results are those without it;
 * - ctx passed with ctx_size (a local, which persistent workers could not read otherwise): jobs
 *   and worker_init get a copy, with ctx's contents at another address; reduce, worker_reduce and
 *   progress get ctx itself (their records above are kept there).
 *
 * Usage: test_ex (under mpiexec, any number of ranks) */
#include "mpitest.h"

#define NJOBS 20000

typedef struct {
  uint64_t sum;
  uint64_t count;
  uint64_t initialized;
  uint64_t pad;
} partial;

typedef struct {
  const void *self; /* where the caller's ctx is: jobs must get a copy, elsewhere */
  /* worker_reduce's record, on root */
  int next_worker;
  int out_of_order;
  uint64_t sum, count;
  int uninitialized;
  /* progress's record */
  long calls;
  size_t last_done, last_total;
  int went_back;
  /* reduce */
  size_t reduced;
} ex_ctx;

static uint64_t value(size_t job) { return mix64(job) >> 20; }

static int winit(void *ctx, int worker) {
  const ex_ctx *c = ctx;
  JCHECK(c->self != NULL && ctx != c->self,
         "worker_init of worker %d got ctx %p, holding %p: not a copy of the caller's ctx", worker,
         ctx, c->self);
  partial *p = sm_worker_local();
  JCHECK(p != NULL, "sm_worker_local() is NULL in worker_init of worker %d: %s", worker, last_err());
  p->initialized = 1;
  return 0;
}

static int work(void *ctx, size_t job, void *result) {
  const ex_ctx *c = ctx;
  JCHECK(c->self != NULL && ctx != c->self,
         "job %zu got ctx %p, holding %p: not a copy of the caller's ctx", job, ctx, c->self);
  partial *p = sm_worker_local();
  JCHECK(p != NULL, "sm_worker_local() is NULL in job %zu: %s", job, last_err());
  JCHECK(p->initialized == 1, "job %zu ran before its worker's worker_init", job);
  p->sum += value(job);
  p->count++;
  if (job % 500 == 0) usleep_full(200); /* long enough for a few progress calls */
  *(uint64_t *)result = value(job);
  return 0;
}

static int reduce(void *ctx_, size_t job, void *result) {
  ex_ctx *c = ctx_;
  if (job != c->reduced || *(uint64_t *)result != value(job)) c->out_of_order++;
  c->reduced++;
  return 0;
}

static int wreduce(void *ctx_, int worker, void *wresult) {
  ex_ctx *c = ctx_;
  const partial *p = wresult;
  if (worker != c->next_worker) c->out_of_order++;
  c->next_worker = worker + 1;
  if (p->initialized != 1) c->uninitialized++;
  c->sum += p->sum;
  c->count += p->count;
  return 0;
}

static void progress(void *ctx_, size_t done, size_t total) {
  ex_ctx *c = ctx_;
  if (done < c->last_done) c->went_back++;
  c->calls++;
  c->last_done = done;
  c->last_total = total;
}

static void run_case(sm_pool *pool, size_t njobs, size_t chunk, const char *what) {
  ex_ctx c;
  memset(&c, 0, sizeof c);
  c.self = &c;
  sm_map_opts o = default_opts();
  o.ctx_size = sizeof c;
  o.chunk = chunk;
  o.worker_init = winit;
  o.worker_reduce = wreduce;
  o.wresult_size = sizeof(partial);
  o.progress = progress;
  JRESET();
  sm_status st = sm_mpi_map_ex(pool, MPI_COMM_WORLD, 0, njobs, work, reduce, 8, &c, &o);
  mt_check_status_all(MPI_COMM_WORLD, st, SM_OK, what);

  long long workers = mt_sum_all(MPI_COMM_WORLD, mt_nworkers(pool));
  if (g_rank == 0) {
    uint64_t expected = 0;
    for (size_t j = 0; j < njobs; j++) expected += value(j);
    CHECK(c.reduced == njobs && c.out_of_order == 0,
          "%s [%s]: reduce ran %zu times (of %zu), worker_reduce or reduce out of order %d time(s)",
          what, g_backend_name, c.reduced, njobs, c.out_of_order);
    CHECK(c.next_worker == workers,
          "%s [%s]: worker_reduce ran for workers 0..%d, expected 0..%lld (every worker of every "
          "rank, numbered across the ranks)",
          what, g_backend_name, c.next_worker - 1, workers - 1);
    CHECK(c.uninitialized == 0, "%s [%s]: %d per-worker result(s) without worker_init", what,
          g_backend_name, c.uninitialized);
    CHECK(c.count == njobs && c.sum == expected,
          "%s [%s]: the per-worker results count %llu jobs summing to %llu, expected %zu and %llu",
          what, g_backend_name, (unsigned long long)c.count, (unsigned long long)c.sum, njobs,
          (unsigned long long)expected);
    CHECK(c.calls >= 1 && c.went_back == 0 && c.last_done == njobs && c.last_total == njobs,
          "%s [%s]: progress: %ld call(s), done went back %d time(s), last call (%zu, %zu), "
          "expected a last call (%zu, %zu)",
          what, g_backend_name, c.calls, c.went_back, c.last_done, c.last_total, njobs, njobs);
  } else {
    CHECK(c.next_worker == 0 && c.calls == 0 && c.reduced == 0,
          "%s [%s]: worker_reduce (%d), progress (%ld) or reduce (%zu) ran on rank %d, not root",
          what, g_backend_name, c.next_worker, c.calls, c.reduced, g_rank);
  }
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, 100);
  for (size_t b = 0; b < MT_NBACKENDS; b++) {
    sm_pool *pool = mt_pool(&MT_BACKENDS[b]);
    run_case(pool, NJOBS, 0, "worker_reduce and progress");
    run_case(pool, NJOBS, 7, "chunk 7");
    /* fewer jobs than ranks: ranks that get none still run worker_init and hand root their
     * workers' results */
    run_case(pool, 1, 0, "one job");
    if (pool) sm_pool_free(pool);
    if (g_rank == 0) printf("backend %s: OK\n", MT_BACKENDS[b].name);
  }
  return mt_finish("test_ex");
}
