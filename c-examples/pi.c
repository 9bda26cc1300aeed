/*
 * pi.c -- estimate pi by Monte Carlo with sharedmem.
 *
 * The classic embarrassingly parallel job: throw random points into the unit
 * square and count how many land inside the quarter circle x^2 + y^2 <= 1.
 * That fraction tends to pi/4.
 *
 * What it shows:
 *   - sm_map_ex() with a `result` buffer: each job writes its hit count (a
 *     uint64_t) into the result_size bytes the library hands it.  With the
 *     process and persistent backends the job runs in a forked worker, so
 *     writing to an ordinary global would be lost (copy-on-write); `result`
 *     is how a job sends a value back.
 *   - a reduce callback: it runs in the caller, in job order, once per job,
 *     and adds the hits up.  It may freely update the caller's own state.
 *   - ctx passed by copy (sm_map_ex with sm_map_opts.ctx_size): the jobs
 *     only read it, so the library copies it to the workers at the call and
 *     it may live on the caller's stack on every backend.  (Persistent
 *     workers, forked once at sm_pool_new, see the caller's ordinary memory
 *     only as it was then, so they need the copy.)  reduce() still gets the
 *     caller's own ctx, where its totals land.
 *   - reproducible randomness: every job seeds its own PRNG from its job
 *     number, so the answer does not depend on which worker ran which job
 *     (and we never call rand(), which is neither reproducible across
 *     workers nor thread-safe).
 *
 * Usage: pi [process|persistent|thread|serial]     (default: process)
 * Exit status 0 when the estimate is within tolerance of pi.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sharedmem.h"
#include "backend_arg.h"

#define NJOBS 32
#define POINTS_PER_JOB 1000000ULL
#define NWORKERS 4
#define TOLERANCE 0.005 /* ~17 standard deviations for 32M points */
#define PI 3.14159265358979323846

/* splitmix64: a tiny, good-quality PRNG; its whole state is one uint64_t. */
static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* A uniform double in [0, 1) from the top 53 bits. */
static double uniform01(uint64_t *state) {
  return (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Read-only parameters for the jobs, plus the caller's running totals that
 * only reduce() (which runs in the caller) touches. */
struct pi_ctx {
  uint64_t seed;          /* read by the jobs */
  uint64_t points;        /* read by the jobs */
  uint64_t total_hits;    /* written by reduce() only */
  size_t reduced_jobs;    /* written by reduce() only */
  int reduce_out_of_order;
};

/* work(): runs on some worker, once per job.  `result` points to
 * sizeof(uint64_t) zeroed bytes owned by this job. */
static int count_hits(void *ctx_, size_t job, void *result) {
  const struct pi_ctx *ctx = ctx_;
  uint64_t state = ctx->seed ^ ((uint64_t)job * 0xD1B54A32D192ED03ULL);
  uint64_t hits = 0;
  for (uint64_t i = 0; i < ctx->points; i++) {
    double x = uniform01(&state), y = uniform01(&state);
    hits += (x * x + y * y <= 1.0);
  }
  memcpy(result, &hits, sizeof hits); /* send the answer back */
  return 0;                           /* 0 = success */
}

/* reduce(): runs in the caller, in increasing job order. */
static int add_hits(void *ctx_, size_t job, void *result) {
  struct pi_ctx *ctx = ctx_;
  uint64_t hits;
  memcpy(&hits, result, sizeof hits);
  if (job != ctx->reduced_jobs) ctx->reduce_out_of_order = 1;
  ctx->total_hits += hits;
  ctx->reduced_jobs++;
  return 0;
}

int main(int argc, char **argv) {
  sm_backend backend;
  if (parse_backend(argc, argv, &backend) != 0) return 2;

  sm_pool *pool = sm_pool_new(NWORKERS, backend);
  if (!pool) {
    fprintf(stderr, "sm_pool_new failed: %s\n", sm_last_error());
    return 1;
  }

  struct pi_ctx ctx = {.seed = 20240601, .points = POINTS_PER_JOB};
  sm_map_opts opts = {.size = sizeof(sm_map_opts), .ctx_size = sizeof ctx};
  sm_status st = sm_map_ex(pool, NJOBS, count_hits, add_hits, sizeof(uint64_t), &ctx, &opts);
  sm_pool_free(pool);

  if (st != SM_OK) {
    fprintf(stderr, "sm_map_ex: %s: %s\n", sm_status_str(st), sm_last_error());
    return 1;
  }

  uint64_t total_points = (uint64_t)NJOBS * POINTS_PER_JOB;
  double estimate = 4.0 * (double)ctx.total_hits / (double)total_points;
  double error = fabs(estimate - PI);
  printf("pi ~= %.6f  (%llu points in %d jobs, %d workers, error %.6f)\n", estimate,
         (unsigned long long)total_points, NJOBS, NWORKERS, error);

  if (ctx.reduced_jobs != NJOBS || ctx.reduce_out_of_order) {
    fprintf(stderr, "FAIL: reduce ran %zu times (expected %d)%s\n", ctx.reduced_jobs, NJOBS,
            ctx.reduce_out_of_order ? ", not in job order" : "");
    return 1;
  }
  if (error > TOLERANCE) {
    fprintf(stderr, "FAIL: estimate is off by more than %g\n", TOLERANCE);
    return 1;
  }
  printf("OK\n");
  return 0;
}
