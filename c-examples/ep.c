/*
 * ep.c -- the kernel of the NAS Parallel Benchmarks' EP ("embarrassingly parallel"), with
 * per-worker reductions: OpenMP's `reduction(+:sx, sy)` ported in a line or two.
 *
 * EP draws pairs of uniform numbers (x, y) in (-1, 1), keeps those inside the unit circle,
 * turns each into a pair of Gaussian deviates (X, Y) with the Marsaglia polar method, and sums
 * them (sx, sy) and counts them by annulus: q[l] counts pairs with l <= max(|X|, |Y|) < l + 1.
 * The OpenMP original is, in essence:
 *
 *     #pragma omp parallel for reduction(+:sx, sy) reduction(+:q[:NQ])
 *     for (k = 0; k < NBATCH; k++) { ...pairs of batch k... sx += X; sy += Y; q[l] += 1; }
 *
 * What it shows:
 *   - per-worker results: each worker gets its own zeroed `struct acc` (sm_map_opts.wresult_size);
 *     jobs and regions reach it with sm_worker_local(), so the loop body is the OpenMP one with
 *     `a->` in front of the reduction variables. worker_reduce then adds each worker's struct
 *     into the caller's totals, once per worker, in worker order, after the loop. Nothing is kept
 *     per worker in ctx, and no worker_init or worker_fini is needed.
 *   - the same with sm_map_ex (one job per batch) and with a region, sm_parallel_ex, whose
 *     workers share the loop with sm_for_next (`omp parallel for schedule(static)`).
 *   - ctx passed by copy (sm_map_opts.ctx_size): the workers only read it (the pool), and
 *     worker_reduce, on the caller, gets the caller's own ctx to add into; so ctx may live on the
 *     stack on every backend, persistent workers (which see ordinary memory only as it was at
 *     sm_pool_new) included.
 *   - both agree with a serial computation of the same sums: counts exactly, sums to rounding
 *     (the parallel versions add the same numbers in another order).
 *
 * Usage: ep [process|persistent|thread|serial]     (default: process)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sharedmem.h"
#include "backend_arg.h"

#define NBATCH 256
#define PAIRS_PER_BATCH (1 << 14)
#define NQ 10
#define NWORKERS 4

/* The reduction variables of one worker, and of the whole computation. */
struct acc {
  double sx, sy;
  double q[NQ];
};

struct ep_ctx {
  sm_pool *pool;  /* for sm_for_next in the region */
  struct acc sum; /* the caller's totals: written by worker_reduce only */
};

/* splitmix64: each batch seeds its own generator, so the numbers do not depend on which worker
 * runs which batch (NAS EP jumps ahead in its linear congruential sequence for the same reason). */
static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static double uniform_pm1(uint64_t *state) {
  return 2.0 * ((double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0)) - 1.0;
}

/* The body of the OpenMP loop for batch k: adds into *a (the reduction variables). */
static void ep_batch(size_t k, struct acc *a) {
  uint64_t state = 271828183ULL * (k + 1);
  for (int i = 0; i < PAIRS_PER_BATCH; i++) {
    double x = uniform_pm1(&state), y = uniform_pm1(&state);
    double t = x * x + y * y;
    if (t > 1.0 || t == 0.0) continue;
    double f = sqrt(-2.0 * log(t) / t);
    double gx = x * f, gy = y * f;
    int l = (int)fmax(fabs(gx), fabs(gy));
    if (l < NQ) a->q[l] += 1;
    a->sx += gx;
    a->sy += gy;
  }
}

/* ---- with sm_map_ex: one job per batch */

static int ep_job(void *ctx, size_t k, void *result) {
  (void)ctx;
  (void)result;
  ep_batch(k, sm_worker_local()); /* this worker's struct acc */
  return 0;
}

/* On the caller, once per worker: the `+` of reduction(+: ...). */
static int add_worker(void *ctx, int worker, void *wresult) {
  (void)worker;
  struct ep_ctx *c = ctx;
  const struct acc *a = wresult;
  c->sum.sx += a->sx;
  c->sum.sy += a->sy;
  for (int l = 0; l < NQ; l++) c->sum.q[l] += a->q[l];
  return 0;
}

/* ---- with sm_parallel_ex: a region sharing the loop */

static int ep_region(void *ctx) {
  struct ep_ctx *c = ctx;
  struct acc *a = sm_worker_local();
  size_t lo, hi;
  while (sm_for_next(c->pool, 0, NBATCH, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi))
    for (size_t k = lo; k < hi; k++) ep_batch(k, a);
  return 0;
}

static int agrees(const char *how, const struct acc *got, const struct acc *want) {
  int ok = 1;
  for (int l = 0; l < NQ; l++) ok &= got->q[l] == want->q[l];
  /* The sums are of ~10^6 deviates of size ~1: rounding differences stay far below 1e-8. */
  ok &= fabs(got->sx - want->sx) <= 1e-8 * (1.0 + fabs(want->sx));
  ok &= fabs(got->sy - want->sy) <= 1e-8 * (1.0 + fabs(want->sy));
  printf("%-14s sx = %.12f  sy = %.12f  q[0..2] = %.0f %.0f %.0f  %s\n", how, got->sx, got->sy, got->q[0],
         got->q[1], got->q[2], ok ? "agrees" : "DIFFERS from the serial loop");
  return ok;
}

int main(int argc, char **argv) {
  sm_backend backend;
  if (parse_backend(argc, argv, &backend) != 0) return 2;

  struct acc serial;
  memset(&serial, 0, sizeof serial);
  for (size_t k = 0; k < NBATCH; k++) ep_batch(k, &serial);

  sm_pool *pool = sm_pool_new(NWORKERS, backend);
  if (!pool) {
    fprintf(stderr, "sm_pool_new: %s\n", sm_last_error());
    return 1;
  }
  sm_map_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.size = sizeof opts;
  opts.wresult_size = sizeof(struct acc); /* each worker's reduction variables, zeroed */
  opts.worker_reduce = add_worker;
  opts.ctx_size = sizeof(struct ep_ctx);

  struct ep_ctx by_map = {pool, {0, 0, {0}}};
  sm_status s = sm_map_ex(pool, NBATCH, ep_job, NULL, 0, &by_map, &opts);
  if (s != SM_OK) {
    fprintf(stderr, "sm_map_ex: %s\n", sm_last_error());
    return 1;
  }
  struct ep_ctx by_region = {pool, {0, 0, {0}}};
  s = sm_parallel_ex(pool, ep_region, &by_region, &opts);
  if (s != SM_OK) {
    fprintf(stderr, "sm_parallel_ex: %s\n", sm_last_error());
    return 1;
  }
  sm_pool_free(pool);

  double pairs = 0;
  for (int l = 0; l < NQ; l++) pairs += serial.q[l];
  printf("EP: %d x %d pairs, %.0f Gaussian pairs\n", NBATCH, PAIRS_PER_BATCH, pairs);
  int ok = agrees("serial loop", &serial, &serial);
  ok &= agrees("sm_map_ex", &by_map.sum, &serial);
  ok &= agrees("sm_parallel_ex", &by_region.sum, &serial);
  /* A sanity check that the kernel computed something: about pi/4 of the pairs are kept. */
  ok &= fabs(pairs / ((double)NBATCH * PAIRS_PER_BATCH) - 0.7853981634) < 0.01;
  return ok ? 0 : 1;
}
