/*
 * ordered.c -- jobs that finish in any order, but print in job order.
 *
 * Each job first "works" for an uneven, pseudo-random time (a short sleep),
 * so the jobs finish out of order.  Then it prints "job N" inside
 * sm_ordered_enter()/sm_ordered_leave(): the library lets job N into its
 * ordered section only after jobs 0..N-1 have been through theirs, so the
 * lines come out as job 0, job 1, job 2, ... whatever the timing.
 *
 * What it shows:
 *   - sm_ordered_enter()/sm_ordered_leave(): a section that runs in job
 *     order, like OpenMP's `ordered`.  The work before it runs in parallel.
 *   - printing from workers: with the process and persistent backends every
 *     worker is a separate process with its own stdio buffer, so a job must
 *     fflush(stdout) *inside* the ordered section; otherwise its line would
 *     sit in its buffer and come out later, in any order.
 *   - ctx passed by copy (sm_map_ex with sm_map_opts.ctx_size): the jobs
 *     only read it, so it may live on the caller's stack.  Persistent
 *     workers, forked once at sm_pool_new, see ordinary memory only as it
 *     was then; the copy made at each call is what they read.
 *   - a second, machine-checkable record of the order: each job also appends
 *     its number to a log in sm_empty (shared) memory, and the caller checks
 *     it.  (The ctest test checks the printed lines as well.)
 *
 * Usage: ordered [process|persistent|thread|serial]     (default: process)
 */
#define _DEFAULT_SOURCE /* usleep() */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sharedmem.h"
#include "backend_arg.h"

#define NJOBS 24 /* c-examples/CMakeLists.txt checks for job 0..NJOBS-1 */
#define NWORKERS 4

/* Shared log of the order in which jobs ran their ordered section. */
struct order_log {
  size_t n;
  size_t jobs[NJOBS];
};

struct ordered_ctx {
  sm_pool *pool;
  struct order_log *log; /* points into sm_empty memory */
};

/* A job's "work time": 0..19 ms, pseudo-random but fixed per job. */
static unsigned work_usec(size_t job) {
  uint64_t z = (uint64_t)job * 0x9E3779B97F4A7C15ULL + 12345;
  z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ULL;
  z ^= z >> 29;
  return (unsigned)(z % 20) * 1000;
}

static int job_fn(void *ctx_, size_t job, void *result) {
  (void)result;
  const struct ordered_ctx *ctx = ctx_;

  usleep(work_usec(job)); /* the parallel part: uneven durations */

  sm_status st = sm_ordered_enter(ctx->pool); /* waits for jobs 0..job-1 */
  if (st != SM_OK) return (int)st;
  printf("job %zu\n", job);
  fflush(stdout); /* before leaving: workers may be separate processes */
  ctx->log->jobs[ctx->log->n++] = job;
  st = sm_ordered_leave(ctx->pool);
  if (st != SM_OK) return (int)st;

  return 0;
}

int main(int argc, char **argv) {
  sm_backend backend;
  if (parse_backend(argc, argv, &backend) != 0) return 2;

  struct order_log *log = sm_empty(1, sizeof *log);
  if (!log) {
    fprintf(stderr, "sm_empty failed: %s\n", sm_last_error());
    return 1;
  }
  sm_pool *pool = sm_pool_new(NWORKERS, backend);
  if (!pool) {
    fprintf(stderr, "sm_pool_new failed: %s\n", sm_last_error());
    sm_free(log);
    return 1;
  }

  struct ordered_ctx ctx = {.pool = pool, .log = log};
  sm_map_opts opts = {.size = sizeof(sm_map_opts), .ctx_size = sizeof ctx};
  sm_status st = sm_map_ex(pool, NJOBS, job_fn, NULL, 0, &ctx, &opts);
  sm_pool_free(pool);
  if (st != SM_OK) {
    fprintf(stderr, "sm_map_ex: %s: %s\n", sm_status_str(st), sm_last_error());
    sm_free(log);
    return 1;
  }

  int ok = (log->n == NJOBS);
  for (size_t i = 0; ok && i < NJOBS; i++) ok = (log->jobs[i] == i);
  if (!ok) {
    fprintf(stderr, "FAIL: shared log has %zu entries:", log->n);
    for (size_t i = 0; i < log->n && i < NJOBS; i++) fprintf(stderr, " %zu", log->jobs[i]);
    fprintf(stderr, "\n");
    sm_free(log);
    return 1;
  }
  sm_free(log);
  printf("OK: %d jobs ran their ordered section in job order\n", NJOBS);
  return 0;
}
