/* sm_map_ex through the real header: a per-worker sum reduction equal to the serial sum (each
 * worker keeps a partial, worker_fini hands it over, worker_reduce adds them on the caller in
 * worker order), init/fini once per worker, a fixed chunk size, failing hooks, and NULL options.
 * Usage: test_map_ex <process|thread|serial> */
#include "check.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "sharedmem.h"
#include "testutil.h"

#define NJOBS 100003
#define NWORKERS 3

typedef struct {
  double total;          /* worker_reduce's accumulator (caller) */
  int reduce_order[16];  /* workers in the order worker_reduce saw them (caller) */
  int nreduced;
  int fail_init_in, fail_fini_in;
} caller_ctx;

/* Per-worker state the workers keep: in their own memory (forked workers each have a copy;
 * threads index it by worker). Padded so threads do not share a cache line. */
static double partial[16][8];
/* What the caller checks afterwards: shared memory. */
static struct shared {
  long init_calls[16], fini_calls[16];
  int chunk_owner[NJOBS]; /* worker + 1 that ran each job */
} *shared;

static int work(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  int w = sm_worker_id();
  partial[w][0] += (double)job;
  shared->chunk_owner[job] = w + 1;
  return 0;
}

static int init(void *ctx, int worker) {
  caller_ctx *c = ctx;
  shared->init_calls[worker]++;
  partial[worker][0] = 0;
  return worker == c->fail_init_in ? 17 : 0;
}

static int fini(void *ctx, int worker, void *wresult) {
  caller_ctx *c = ctx;
  shared->fini_calls[worker]++;
  memcpy(wresult, &partial[worker][0], sizeof(double));
  return worker == c->fail_fini_in ? 18 : 0;
}

static int worker_reduce(void *ctx, int worker, void *wresult) {
  caller_ctx *c = ctx;
  double v;
  memcpy(&v, wresult, sizeof v);
  c->total += v;
  c->reduce_order[c->nreduced++] = worker;
  return 0;
}

static sm_status run(sm_pool *pool, caller_ctx *c, size_t chunk) {
  sm_map_opts opts = default_opts();
  opts.chunk = chunk;
  opts.worker_init = init;
  opts.worker_fini = fini;
  opts.worker_reduce = worker_reduce;
  opts.wresult_size = sizeof(double);
  /* the workers read the copy; worker_reduce, on the caller, fills c itself */
  opts.ctx_size = sizeof *c;
  memset(shared, 0, sizeof *shared);
  return sm_map_ex(pool, NJOBS, work, NULL, 0, c, &opts);
}

int main(int argc, char **argv) {
  watchdog(60);
  sm_backend b = parse_backend(argc, argv);
  int nworkers = b == SM_BACKEND_SERIAL ? 1 : NWORKERS;
  shared = sm_empty(1, sizeof *shared);
  CHECK(shared, "sm_empty: %s", sm_last_error());
  sm_pool *pool = sm_pool_new(NWORKERS, b);
  CHECK(pool, "sm_pool_new: %s", sm_last_error());
  double serial_sum = 0;
  for (size_t j = 0; j < NJOBS; j++) serial_sum += (double)j;

  for (size_t chunk = 0; chunk <= 7; chunk += 7) {
    caller_ctx c = {0, {0}, 0, -1, -1};
    sm_status s = run(pool, &c, chunk);
    CHECK(s == SM_OK, "chunk %zu: %s: %s", chunk, sm_status_str(s), sm_last_error());
    CHECK(c.total == serial_sum, "chunk %zu: per-worker sum %.0f, serial sum %.0f", chunk, c.total, serial_sum);
    CHECK(c.nreduced == nworkers, "chunk %zu: worker_reduce ran %d times for %d workers", chunk, c.nreduced,
          nworkers);
    for (int w = 0; w < nworkers; w++) {
      CHECK(c.reduce_order[w] == w, "worker_reduce order: position %d holds worker %d", w, c.reduce_order[w]);
      CHECK(shared->init_calls[w] == 1 && shared->fini_calls[w] == 1, "worker %d: init %ld fini %ld times", w,
            shared->init_calls[w], shared->fini_calls[w]);
    }
    for (size_t j = 0; j < NJOBS; j++) {
      CHECK(shared->chunk_owner[j] != 0, "job %zu did not run", j);
      if (chunk)
        CHECK(shared->chunk_owner[j] == shared->chunk_owner[j - j % chunk], "job %zu left its chunk of %zu", j,
              chunk);
    }
  }

  caller_ctx c = {0, {0}, 0, nworkers - 1, -1};
  sm_status s = run(pool, &c, 0);
  CHECK(s == SM_ERR_JOB && strstr(sm_last_error(), "worker_init returned 17"), "failing init: %s: %s",
        sm_status_str(s), sm_last_error());
  CHECK(c.nreduced == 0, "worker_reduce ran after a failed init");

  caller_ctx d = {0, {0}, 0, -1, 0};
  s = run(pool, &d, 0);
  CHECK(s == SM_ERR_JOB && strstr(sm_last_error(), "worker_fini returned 18 in worker 0"), "failing fini: %s: %s",
        sm_status_str(s), sm_last_error());

  s = sm_map_ex(pool, NJOBS, work, NULL, 0, NULL, NULL); /* NULL options: plain sm_map */
  CHECK(s == SM_OK, "NULL options: %s: %s", sm_status_str(s), sm_last_error());

  sm_pool_free(pool);
  sm_free(shared);
  printf("map_ex OK (%s)\n", argv[1]);
  return 0;
}
