/* sm_mpi_map's results, on every local backend (process, thread, serial, persistent pools and a
 * NULL pool):
 *
 * - njobs 0, 1, nranks-1, 1000 and 10^6 trivial jobs: every job runs exactly once on some rank
 *   (counted per job in sm_empty memory, summed over the ranks), reduce runs on root only, once
 *   per job, in order 0..njobs-1, with each job's result; the sum equals what one local sm_map of
 *   the same work and reduce gives on root;
 * - 10^5 jobs without reduce: each exactly once;
 * - 10^4 jobs of deterministic pseudo-random duration (0-40 us): as above;
 * - 1 MiB results, a pattern derived from the job number: intact on root;
 * - root = nranks-1 (and root = nranks/2): reduce there only.
 *
 * Usage: test_results (under mpiexec, any number of ranks) */
#include "mpitest.h"

/* In sm_empty memory for sm_mpi_map (persistent workers see no later write to other memory); the
 * local reference map on a thread pool keeps it on the stack. */
typedef struct {
  int duration;           /* jobs sleep a pseudo-random 0..39 us */
  size_t result_words;    /* 64-bit words of each result (1: a trivial job) */
  _Atomic unsigned char *runs; /* sm_empty: how often each job ran on this rank */
  size_t njobs;
  /* reduce's record (reduce runs on the calling thread) */
  size_t reduced, out_of_order, bad_value;
  uint64_t sum;
} results_ctx;

static uint64_t value_of(size_t job, size_t word) { return mix64((uint64_t)job * 1000003u + word); }

static int work(void *ctx_, size_t job, void *result) {
  results_ctx *c = ctx_;
  JCHECK(job < c->njobs, "job %zu out of [0, %zu)", job, c->njobs);
  if (c->runs) atomic_fetch_add(&c->runs[job], 1);
  if (c->duration) {
    long us = (long)(mix64(job) % 40);
    if (us) usleep_full(us);
  }
  uint64_t *r = result;
  if (r)
    for (size_t w = 0; w < c->result_words; w++) r[w] = value_of(job, w);
  return 0;
}

static int reduce(void *ctx_, size_t job, void *result) {
  results_ctx *c = ctx_;
  if (job != c->reduced) c->out_of_order++;
  const uint64_t *r = result;
  for (size_t w = 0; w < c->result_words; w++)
    if (r[w] != value_of(job, w)) {
      c->bad_value++;
      break;
    }
  c->sum += r[0];
  c->reduced++;
  return 0;
}

/* What one local sm_map of the same jobs gives on root: the reference sum. */
static uint64_t local_reference(size_t njobs, size_t words) {
  sm_pool *p = new_pool(MT_WORKERS, SM_BACKEND_THREAD);
  results_ctx c;
  memset(&c, 0, sizeof c);
  c.njobs = njobs;
  c.result_words = words;
  sm_status st = sm_map(p, njobs, work, reduce, words * 8, &c);
  CHECK(st == SM_OK, "the local reference sm_map failed: %s", last_err());
  CHECK(c.reduced == njobs && c.out_of_order == 0 && c.bad_value == 0, "local reference map");
  sm_pool_free(p);
  return c.sum;
}

/* One map: `njobs` jobs with results of `words` words (0: no result), reduce or not, on `root`. */
static void run_case(sm_pool *pool, size_t njobs, size_t words, int with_reduce, int duration,
                     int root, const char *what) {
  results_ctx *c = must_empty(1, sizeof *c);
  c->njobs = njobs;
  c->duration = duration;
  c->result_words = words;
  c->runs = must_empty(njobs ? njobs : 1, 1);
  JRESET();
  sm_status st = sm_mpi_map(pool, MPI_COMM_WORLD, root, njobs, work, with_reduce ? reduce : NULL,
                            words * 8, c);
  mt_check_status_all(MPI_COMM_WORLD, st, SM_OK, what);

  /* Every job ran exactly once, on some rank. */
  unsigned char *total = NULL;
  if (g_rank == root) {
    total = calloc(njobs ? njobs : 1, 1);
    CHECK(total, "calloc");
  }
  MPI_Reduce((void *)c->runs, total, (int)njobs, MPI_UNSIGNED_CHAR, MPI_SUM, root, MPI_COMM_WORLD);
  long long mine = 0;
  for (size_t j = 0; j < njobs; j++) mine += c->runs[j];
  if (g_rank == root) {
    for (size_t j = 0; j < njobs; j++)
      CHECK(total[j] == 1, "%s [%s]: job %zu ran %d times over all ranks, expected once", what,
            g_backend_name, j, total[j]);
    free(total);
  }
  long long all = mt_sum_all(MPI_COMM_WORLD, mine);
  CHECK(all == (long long)njobs, "%s: %lld jobs ran in all, expected %zu", what, all, njobs);

  if (g_rank == root && with_reduce) {
    CHECK(c->reduced == njobs, "%s [%s]: reduce ran %zu times on root, expected %zu", what,
          g_backend_name, c->reduced, njobs);
    CHECK(c->out_of_order == 0, "%s [%s]: reduce saw %zu jobs out of order", what, g_backend_name,
          c->out_of_order);
    CHECK(c->bad_value == 0, "%s [%s]: %zu results differ from their job's pattern", what,
          g_backend_name, c->bad_value);
    uint64_t ref = local_reference(njobs, words);
    CHECK(c->sum == ref, "%s [%s]: the sum of the results is %llu, one local sm_map gives %llu",
          what, g_backend_name, (unsigned long long)c->sum, (unsigned long long)ref);
  } else {
    CHECK(c->reduced == 0, "%s [%s]: reduce ran %zu times on rank %d, which is not root (%d)", what,
          g_backend_name, c->reduced, g_rank, root);
  }
  sm_free((void *)c->runs);
  sm_free(c);
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, 100);
  for (size_t b = 0; b < MT_NBACKENDS; b++) {
    sm_pool *pool = mt_pool(&MT_BACKENDS[b]);
    size_t sizes[] = {0, 1, (size_t)g_nranks - 1, 1000, 1000000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      char what[64];
      snprintf(what, sizeof what, "%zu trivial jobs", sizes[i]);
      run_case(pool, sizes[i], 1, 1, 0, 0, what);
    }
    run_case(pool, 100000, 0, 0, 0, 0, "10^5 jobs without result or reduce");
    run_case(pool, 10000, 1, 1, 1, 0, "10^4 jobs of random duration");
    run_case(pool, (size_t)(2 * g_nranks + 3), 131072, 1, 0, 0, "1 MiB results");
    run_case(pool, 1000, 1, 1, 0, g_nranks - 1, "root = nranks-1");
    run_case(pool, 1000, 1, 1, 1, g_nranks / 2, "root = nranks/2, random durations");
    if (pool) sm_pool_free(pool);
    if (g_rank == 0) printf("backend %s: OK\n", MT_BACKENDS[b].name);
  }
  return mt_finish("test_results");
}
