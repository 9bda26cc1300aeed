/*
 * heat.c -- the steady-state heat equation on a square plate, by Jacobi iteration: an OpenMP
 * loop nest ported to a sharedmem parallel region.
 *
 * The plate is an N x N grid; its edges are held at fixed temperatures (the top edge at 100, the
 * others at 0) and every interior point is repeatedly replaced by the mean of its four neighbours
 * until the largest change in one sweep (the residual) drops below TOL, or MAX_ITER sweeps.
 *
 * The OpenMP original:
 *
 *   double *u = a, *unew = b, res = 0.0, last;
 *   int iter = 0;
 *   #pragma omp parallel firstprivate(u, unew)
 *   for (;;) {
 *     #pragma omp for reduction(max:res)           // (implicit barrier)
 *     for (size_t i = 1; i < N - 1; i++)
 *       for (size_t j = 1; j < N - 1; j++) {
 *         unew[i*N + j] = 0.25 * (u[(i-1)*N + j] + u[(i+1)*N + j] + u[i*N + j-1] + u[i*N + j+1]);
 *         double d = fabs(unew[i*N + j] - u[i*N + j]);
 *         if (d > res) res = d;
 *       }
 *     #pragma omp single
 *     { last = res; res = 0.0; iter++; }           // (implicit barrier)
 *     double *t = u; u = unew; unew = t;           // every thread swaps its own pointers
 *     if (last < TOL || iter >= MAX_ITER) break;
 *   }
 *
 * The port, jacobi_region() below, has the same structure; what changes:
 *   - `#pragma omp parallel` is sm_parallel(pool, jacobi_region, ctx): every worker runs the
 *     region once. firstprivate variables are the region's locals (u, unew).
 *   - `#pragma omp for` is `while (sm_for_next(...)) for (i = lo; i < hi; i++)`.
 *   - reduction(max:res) and the loop's barrier: each worker keeps its own maximum, stores it in
 *     partial[worker] after its last rows (hence SM_FOR_NOWAIT), then sm_barrier; the single
 *     worker (sm_single) combines the partials into ctx->res (`last`). (A max is exact and
 *     does not depend on the order it is taken in: the residual is the serial one to the bit.)
 *   - the single's implicit barrier is an explicit sm_barrier after the `if (sm_single(pool))`.
 *   - shared data must live in sm_empty memory: with the process backend (the default) the
 *     workers are forked processes, and what they write to ordinary memory stays in the worker;
 *     persistent workers (SM_BACKEND_PERSISTENT), forked once at sm_pool_new, do not even see
 *     what the caller writes there after that. So the two grids, the partials, and the ctx with
 *     the shared res/iter all come from sm_empty.
 *
 * main() then runs the same algorithm serially and checks that the grid and iteration count are
 * identical: every point's update is the same expression, so Jacobi gives the same bits whatever
 * the number of workers.
 *
 * Usage: heat [process|persistent|thread|serial]     (default: process)
 * Prints the iterations, residual and times; exit status 0 when parallel == serial.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sharedmem.h"
#include "backend_arg.h"

#define N 128          /* grid points per side, boundary included */
#define TOL 1e-3       /* stop when no point changed by more than this in a sweep */
#define MAX_ITER 20000 /* ... or after this many sweeps */
#define TOP 100.0      /* temperature of the top edge (the other edges are 0) */

/* What the workers share: the region's ctx, in sm_empty memory, as is everything it points to. */
struct heat_ctx {
  sm_pool *pool;
  double *a, *b;   /* the two N x N grids */
  double *partial; /* one residual per worker */
  double res;      /* the combined residual of the last sweep */
  int iter;        /* sweeps done */
  int team;        /* workers in the region */
};

/* The grid at the start: 0 everywhere but the top edge (row 0). */
static void init_grid(double *g) {
  memset(g, 0, sizeof(double) * N * N);
  for (size_t j = 0; j < N; j++) g[j] = TOP;
}

/* One row of a Jacobi sweep: writes unew's row i from u, returns the largest change in it.
 * Shared by the parallel and serial versions, so both compute exactly the same values. */
static double sweep_row(const double *u, double *unew, size_t i) {
  double res = 0.0;
  for (size_t j = 1; j < N - 1; j++) {
    unew[i * N + j] = 0.25 * (u[(i - 1) * N + j] + u[(i + 1) * N + j] + u[i * N + j - 1] +
                              u[i * N + j + 1]);
    double d = fabs(unew[i * N + j] - u[i * N + j]);
    if (d > res) res = d;
  }
  return res;
}

/* The parallel region: every worker runs this once. */
static int jacobi_region(void *arg) {
  struct heat_ctx *ctx = arg;
  double *u = ctx->a, *unew = ctx->b; /* private to each worker, like firstprivate */
  int me = sm_worker_id();
  for (;;) {
    /* #pragma omp for reduction(max:res) nowait: this worker's rows and its own maximum. */
    double mine = 0.0;
    size_t lo, hi;
    while (sm_for_next(ctx->pool, 1, N - 1, SM_SCHEDULE_STATIC, 0, SM_FOR_NOWAIT, &lo, &hi))
      for (size_t i = lo; i < hi; i++) mine = fmax(mine, sweep_row(u, unew, i));
    ctx->partial[me] = mine;

    /* The reduction: once every worker has stored its maximum, one of them combines them. */
    if (sm_barrier(ctx->pool) != SM_OK) return 0; /* (the region is being stopped) */
    if (sm_single(ctx->pool)) {
      double res = 0.0;
      for (int w = 0; w < sm_num_workers(); w++) res = fmax(res, ctx->partial[w]);
      ctx->res = res;
      ctx->iter++;
      ctx->team = sm_num_workers();
    }
    if (sm_barrier(ctx->pool) != SM_OK) return 0; /* everyone sees res and iter */

    double *t = u;
    u = unew;
    unew = t;
    if (ctx->res < TOL || ctx->iter >= MAX_ITER) return 0;
  }
}

/* The same algorithm, serially. Returns the number of sweeps; *out is the final grid. */
static int jacobi_serial(double *a, double *b, double **out, double *res_out) {
  double *u = a, *unew = b, res;
  int iter = 0;
  do {
    res = 0.0;
    for (size_t i = 1; i < N - 1; i++) res = fmax(res, sweep_row(u, unew, i));
    iter++;
    double *t = u;
    u = unew;
    unew = t;
  } while (!(res < TOL || iter >= MAX_ITER));
  *out = u;
  *res_out = res;
  return iter;
}

static double now(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  sm_backend backend;
  if (parse_backend(argc, argv, &backend) != 0) return 2;

  sm_pool *pool = sm_pool_new(0, backend); /* 0: OMP_NUM_THREADS, else one worker per CPU */
  if (!pool) {
    fprintf(stderr, "sm_pool_new failed: %s\n", sm_last_error());
    return 1;
  }
  struct heat_ctx *ctx = sm_empty(1, sizeof *ctx); /* res, iter and team start at 0 */
  if (!ctx) {
    fprintf(stderr, "sm_empty failed: %s\n", sm_last_error());
    return 1;
  }
  ctx->pool = pool;
  ctx->a = sm_empty(N * N, sizeof(double));
  ctx->b = sm_empty(N * N, sizeof(double));
  ctx->partial = sm_empty((size_t)sm_pool_nworkers(pool), sizeof(double));
  if (!ctx->a || !ctx->b || !ctx->partial) {
    fprintf(stderr, "sm_empty failed: %s\n", sm_last_error());
    return 1;
  }
  init_grid(ctx->a);
  init_grid(ctx->b); /* the boundary is in both grids: sweeps never write it */

  double t0 = now();
  sm_status st = sm_parallel(pool, jacobi_region, ctx);
  double t_par = now() - t0;
  if (st != SM_OK) {
    fprintf(stderr, "sm_parallel: %s: %s\n", sm_status_str(st), sm_last_error());
    return 1;
  }
  /* The workers swapped their grids iter times: an odd count leaves the result in b. */
  const double *result = ctx->iter % 2 ? ctx->b : ctx->a;

  /* The serial reference, in ordinary memory. */
  static double sa[N * N], sb[N * N];
  double *expected, res_serial;
  init_grid(sa);
  init_grid(sb);
  t0 = now();
  int iter_serial = jacobi_serial(sa, sb, &expected, &res_serial);
  double t_ser = now() - t0;

  printf("sm_parallel: %d iterations, residual %.6g, %.3f s (%s backend, team of %d)\n",
         ctx->iter, ctx->res, t_par, argc > 1 ? argv[1] : "process", ctx->team);
  printf("serial:      %d iterations, residual %.6g, %.3f s\n", iter_serial, res_serial, t_ser);
  printf("centre temperature %.6f\n", result[(N / 2) * N + N / 2]);

  int ok = ctx->iter == iter_serial && ctx->res == res_serial &&
           memcmp(result, expected, sizeof(double) * N * N) == 0;
  sm_free(ctx->a);
  sm_free(ctx->b);
  sm_free(ctx->partial);
  sm_free(ctx);
  sm_pool_free(pool);
  if (!ok) {
    fprintf(stderr, "FAIL: the parallel result differs from the serial one\n");
    return 1;
  }
  printf("OK\n");
  return 0;
}
