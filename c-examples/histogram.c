/*
 * histogram.c -- many jobs fill one histogram in shared memory.
 *
 * Each job draws samples (the sum of 4 uniform numbers, a bell-shaped
 * distribution on [0, 4)) and adds each one to a histogram that all workers
 * share.
 *
 * What it shows:
 *   - sm_empty(): zero-filled memory shared between the caller and the
 *     workers.  With the process and persistent backends the workers are
 *     forked processes, and ordinary memory (globals, malloc) is
 *     copy-on-write in them: their writes would never reach the caller.
 *     Writes into sm_empty memory do.
 *   - ctx passed by copy (sm_map_ex with sm_map_opts.ctx_size): the jobs
 *     only read it (two pointers), so it may live on the caller's stack.
 *     Persistent workers, forked once at sm_pool_new, see ordinary memory
 *     only as it was then; the copy made at each call is what they read.
 *   - sm_critical_enter()/sm_critical_leave(): mutual exclusion among the
 *     workers of a pool.  `bins[b]++` is a plain read-modify-write, not an
 *     atomic operation; two workers doing it at once on the same bin would
 *     lose counts.  Inside the critical section only one worker at a time
 *     runs it, so no count is lost.
 *
 * (Taking the lock once per sample keeps the example simple and really
 * exercises the lock; a real program would fill a private histogram in the
 * job and merge it in a single critical section at the end.)
 *
 * The caller then recomputes the same histogram serially (every job seeds its
 * PRNG from its job number, so the samples are reproducible) and checks that
 * every bin, and the total count, match.
 *
 * Usage: histogram [process|persistent|thread|serial]     (default: process)
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sharedmem.h"
#include "backend_arg.h"

#define NJOBS 40
#define SAMPLES_PER_JOB 2500
#define NSAMPLES ((long)NJOBS * SAMPLES_PER_JOB)
#define NBINS 16
#define NWORKERS 4

/* The shared histogram (lives in sm_empty memory). */
struct histogram {
  long count;       /* number of samples added */
  long bins[NBINS]; /* bins over [0, 4) */
};

/* What every job gets through ctx. */
struct hist_ctx {
  sm_pool *pool;           /* needed by sm_critical_enter/leave */
  struct histogram *hist;  /* shared: points into sm_empty memory */
};

/* xorshift64*: tiny PRNG, state must be nonzero. */
static uint64_t xorshift64s(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static double uniform01(uint64_t *s) {
  return (double)(xorshift64s(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Seed for a job: any fixed, job-dependent, nonzero value will do. */
static uint64_t job_seed(size_t job) {
  return 0x9E3779B97F4A7C15ULL * ((uint64_t)job + 1);
}

/* The bin of one sample: sum of 4 uniforms in [0, 4), NBINS equal bins. */
static int draw_bin(uint64_t *state) {
  double v = uniform01(state) + uniform01(state) + uniform01(state) + uniform01(state);
  int b = (int)(v * NBINS / 4.0);
  return b < NBINS ? b : NBINS - 1;
}

static int fill(void *ctx_, size_t job, void *result) {
  (void)result; /* this job returns nothing through `result` */
  const struct hist_ctx *ctx = ctx_;
  uint64_t state = job_seed(job);
  for (int i = 0; i < SAMPLES_PER_JOB; i++) {
    int b = draw_bin(&state);
    sm_status st = sm_critical_enter(ctx->pool);
    if (st != SM_OK) return (int)st; /* nonzero: the map fails with SM_ERR_JOB */
    ctx->hist->bins[b]++; /* non-atomic: safe only inside the critical section */
    ctx->hist->count++;
    st = sm_critical_leave(ctx->pool);
    if (st != SM_OK) return (int)st;
  }
  return 0;
}

int main(int argc, char **argv) {
  sm_backend backend;
  if (parse_backend(argc, argv, &backend) != 0) return 2;

  /* The shared histogram: one zero-filled struct, visible to all workers. */
  struct histogram *hist = sm_empty(1, sizeof *hist);
  if (!hist) {
    fprintf(stderr, "sm_empty failed: %s\n", sm_last_error());
    return 1;
  }

  sm_pool *pool = sm_pool_new(NWORKERS, backend);
  if (!pool) {
    fprintf(stderr, "sm_pool_new failed: %s\n", sm_last_error());
    sm_free(hist);
    return 1;
  }

  struct hist_ctx ctx = {.pool = pool, .hist = hist};
  sm_map_opts opts = {.size = sizeof(sm_map_opts), .ctx_size = sizeof ctx};
  sm_status st = sm_map_ex(pool, NJOBS, fill, NULL, 0, &ctx, &opts);
  sm_pool_free(pool);
  if (st != SM_OK) {
    fprintf(stderr, "sm_map_ex: %s: %s\n", sm_status_str(st), sm_last_error());
    sm_free(hist);
    return 1;
  }

  /* Recompute serially in the caller for comparison. */
  long expected[NBINS] = {0};
  for (size_t job = 0; job < NJOBS; job++) {
    uint64_t state = job_seed(job);
    for (int i = 0; i < SAMPLES_PER_JOB; i++) expected[draw_bin(&state)]++;
  }

  /* Print the histogram, scaled to 50 columns for the largest bin. */
  long max = 1, sum = 0;
  for (int b = 0; b < NBINS; b++) {
    if (hist->bins[b] > max) max = hist->bins[b];
    sum += hist->bins[b];
  }
  int bad = 0;
  for (int b = 0; b < NBINS; b++) {
    int width = (int)(50 * hist->bins[b] / max);
    printf("[%4.2f,%4.2f) %6ld %.*s%s\n", 4.0 * b / NBINS, 4.0 * (b + 1) / NBINS, hist->bins[b],
           width, "##################################################",
           hist->bins[b] == expected[b] ? "" : "   <-- MISMATCH");
    if (hist->bins[b] != expected[b]) bad = 1;
  }
  printf("samples: %ld counted, %ld in bins, %ld expected\n", hist->count, sum, NSAMPLES);

  if (hist->count != NSAMPLES || sum != NSAMPLES || bad) {
    fprintf(stderr, "FAIL: lost or wrong counts (is the critical section exclusive?)\n");
    sm_free(hist);
    return 1;
  }
  sm_free(hist);
  printf("OK\n");
  return 0;
}
