/* sharedmem benchmark: sharedmem (process, thread and persistent backends) vs OpenMP (libgomp) and
 * fork()+waitpid(). The persistent backend has its own table (issue 14's rows: a map of 2 jobs against
 * the thread backend, the 10^7-double reduction against libgomp, the heat equation's time loop on
 * every backend, and maps with 2 GiB of private heap resident in the caller).
 *
 * Not a test: it never decides pass/fail of the test suite.  It prints a markdown report on stdout
 * (progress goes to stderr).  Run it through scripts/bench.sh, which forces 2 workers/threads,
 * sets OMP_NUM_THREADS=2, unsets OMP_PROC_BIND and friends, and writes bench/RESULTS.md.
 *
 * Every measure groups the systems compared (sharedmem process, sharedmem thread, the peer): each system
 * is warmed up/calibrated once (run sizes grow 10x until a run takes >= 50 ms; the size is then scaled
 * so one run takes about SM_BENCH_TARGET_MS, default 250 ms, capped at 10^7 jobs or barriers, or 10^6
 * maps or regions), then REPS rounds run every system of the group once (round-robin, rotating start),
 * and the median is reported, so slow phases of a noisy machine hit all systems of a measure alike.
 * The parallel-for reduction (row 5c) always has 10^7 jobs; what is calibrated there is how many such
 * reductions one run repeats.
 * Timing: clock_gettime(CLOCK_MONOTONIC).
 *
 * Exit status: 0 = all measures ran and all results were correct; 2 = completed, but some sharedmem
 * call failed or produced a wrong result (see "Problems" in the output); 124 = a measure hung (watchdog).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <omp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sharedmem.h"

#define NW 2     /* workers / threads for every system */
#define REPS 5   /* measured repetitions per cell (median reported) */
#define PER_JOB_N0 1000u
#define PER_JOB_NMAX 10000000u
#define PER_MAP_N0 10u
#define PER_MAP_NMAX 1000000u
#define PSUM_N 10000000u /* jobs (array elements) of one parallel-for reduction (row 5c) */
#define PSUM_RMAX 1000u  /* at most this many reductions per run */
#define WATCHDOG_SEC 90u

static double target_sec = 0.25;

/* ------------------------------------------------------------------ utilities */

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char cur_measure[128] = "startup";

static void watchdog(int sig) {
  (void)sig;
  static const char a[] = "\nbench: WATCHDOG: measure '";
  static const char b[] = "' did not finish within the time limit (hang?); aborting\n";
  ssize_t r;
  r = write(2, a, sizeof a - 1);
  r = write(2, cur_measure, strlen(cur_measure));
  r = write(2, b, sizeof b - 1);
  (void)r;
  _exit(124);
}

static char problems[8192];

static void problem(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "bench: PROBLEM: %s\n", line);
  size_t used = strlen(problems);
  snprintf(problems + used, sizeof problems - used, "- %s\n", line);
}

static char run_err[512]; /* set by a run function that fails */

static void set_run_err(const char *what, sm_status st) {
  snprintf(run_err, sizeof run_err, "%s returned %d (%s); sm_last_error: \"%s\"", what, (int)st,
           sm_status_str(st) ? sm_status_str(st) : "?", sm_last_error() ? sm_last_error() : "(null)");
}

/* ------------------------------------------------------------------ job bodies */

enum kind { K_TRIVIAL, K_REDUCE, K_CRITICAL, K_ORDERED, K_MAP0, K_MAP2, K_WREDUCE, K_BARRIER, K_REGION, K_PREDUCE, K_HEAT };
#define NKINDS 10 /* the kinds of the main table (K_HEAT has its own) */

typedef struct {
  sm_pool *pool;
  uint64_t *counter; /* from sm_empty: shared with process-backend workers */
  uint64_t sum;      /* reduce accumulator (reduce runs in the caller) */
} job_ctx;

static int work_trivial(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  volatile size_t x = 0;
  x += job;
  return 0;
}

static int work_result(void *ctx, size_t job, void *result) {
  (void)ctx;
  uint64_t v = (uint64_t)job;
  memcpy(result, &v, sizeof v);
  return 0;
}

static int reduce_sum(void *ctx, size_t job, void *result) {
  (void)job;
  uint64_t v;
  memcpy(&v, result, sizeof v);
  ((job_ctx *)ctx)->sum += v;
  return 0;
}

static int work_critical(void *ctx, size_t job, void *result) {
  (void)job;
  (void)result;
  job_ctx *c = ctx;
  if (sm_critical_enter(c->pool) != SM_OK) return 11;
  *(volatile uint64_t *)c->counter += 1;
  if (sm_critical_leave(c->pool) != SM_OK) return 12;
  return 0;
}

static int work_ordered(void *ctx, size_t job, void *result) {
  (void)result;
  job_ctx *c = ctx;
  int bad = 0;
  if (sm_ordered_enter(c->pool) != SM_OK) return 21;
  volatile uint64_t *p = c->counter;
  if (*p != (uint64_t)job) bad = 1; /* ordered sections must run in job order */
  *p += 1;
  if (sm_ordered_leave(c->pool) != SM_OK) return 22;
  return bad ? 23 : 0;
}

/* Per-worker reduction (sm_map_ex): each worker adds its jobs (one double each) into its own
 * partial sum, hands it over in worker_fini, and worker_reduce adds the partials on the caller.
 * Partials are 64 bytes apart so that threads do not share a cache line. */
static double partials[64 * 8];

static int work_wadd(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  partials[sm_worker_id() * 8] += (double)job;
  return 0;
}

static int wadd_init(void *ctx, int worker) {
  (void)ctx;
  partials[worker * 8] = 0;
  return 0;
}

static int wadd_fini(void *ctx, int worker, void *wresult) {
  (void)ctx;
  memcpy(wresult, &partials[worker * 8], sizeof(double));
  return 0;
}

static int wadd_reduce(void *ctx, int worker, void *wresult) {
  (void)worker;
  double v;
  memcpy(&v, wresult, sizeof v);
  *(double *)ctx += v;
  return 0;
}

/* ------------------------------------------------------------------ region bodies (sm_parallel) */

typedef struct {
  sm_pool *pool;
  size_t n; /* barriers per worker */
} barrier_ctx;

static int region_barriers(void *ctx) { /* 5a: every worker passes n barriers */
  barrier_ctx *c = ctx;
  for (size_t k = 0; k < c->n; k++)
    if (sm_barrier(c->pool) != SM_OK) return 31;
  return 0;
}

static int region_empty(void *ctx) { /* 5b */
  (void)ctx;
  return 0;
}

/* 5c: x[0..PSUM_N) (ordinary memory, filled before the pools' workers read it; process workers see
 * it as it was at the fork, persistent workers as it was at sm_pool_new) and the per-worker partial
 * sums (sm_empty memory, 64 bytes apart, so that forked workers can hand them back and threads do
 * not share a cache line). */
static const double *psum_x;
static double *psum_partials;

/* What a region reads, in sm_empty memory: persistent workers see such memory live, whereas
 * ordinary memory (a ctx on the stack, a global set after the pool) they see as at sm_pool_new. */
typedef struct {
  sm_pool *pool;
  const double *x;
  double *partials;
} psum_ctx;

static int region_psum(void *ctx) {
  const psum_ctx *c = ctx;
  int w = sm_worker_id();
  if (w < 0 || w >= NW || sm_num_workers() != NW) return 41;
  const double *x = c->x;
  double s = 0;
  size_t lo, hi;
  while (sm_for_next(c->pool, 0, PSUM_N, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi))
    for (size_t i = lo; i < hi; i++) s += x[i];
  c->partials[w * 8] = s;
  return 0;
}

/* Row 7: heat.c's Jacobi sweep (c-examples/heat.c) with the time loop on the caller, one parallel
 * region (or omp parallel for) per sweep, as an OpenMP code with `#pragma omp parallel for` inside
 * its time-step loop is ported naively. The grids are in sm_empty memory. */
#define HEAT_N 128
typedef struct {
  sm_pool *pool;
  double *u, *unew;
  double partial[NW * 8]; /* each worker's largest change, 64 bytes apart */
} heat_ctx;

static void heat_init(double *u) {
  memset(u, 0, sizeof(double) * HEAT_N * HEAT_N);
  for (size_t j = 0; j < HEAT_N; j++) u[j] = 100.0; /* the top edge */
}

static double heat_rows(const double *u, double *unew, size_t lo, size_t hi) {
  double res = 0;
  for (size_t i = lo; i < hi; i++)
    for (size_t j = 1; j < HEAT_N - 1; j++) {
      double v = 0.25 * (u[(i - 1) * HEAT_N + j] + u[(i + 1) * HEAT_N + j] + u[i * HEAT_N + j - 1] +
                         u[i * HEAT_N + j + 1]);
      double d = v > u[i * HEAT_N + j] ? v - u[i * HEAT_N + j] : u[i * HEAT_N + j] - v;
      unew[i * HEAT_N + j] = v;
      if (d > res) res = d;
    }
  return res;
}

static int region_heat(void *ctx) {
  heat_ctx *c = ctx;
  int w = sm_worker_id();
  if (w < 0 || w >= NW) return 51;
  double res = 0;
  size_t lo, hi;
  while (sm_for_next(c->pool, 1, HEAT_N - 1, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi)) {
    double r = heat_rows(c->u, c->unew, lo, hi);
    if (r > res) res = r;
  }
  c->partial[w * 8] = res;
  return 0;
}

static double psum_expected(void) { /* x[i] = i % 8: every partial and the total are exact in double */
  return (double)(PSUM_N / 8) * 28.0 + (double)((PSUM_N % 8) * (PSUM_N % 8 - 1) / 2);
}

static int work_count(void *ctx, size_t job, void *result) { /* sanity check: count calls per job */
  (void)result;
  __atomic_fetch_add(&((uint64_t *)ctx)[job], 1, __ATOMIC_RELAXED);
  return 0;
}

/* ------------------------------------------------------------------ systems */

typedef int (*run_fn)(void *arg, size_t n, double *sec); /* 0 = ok; else run_err set */

typedef struct {
  sm_pool *pool;
  enum kind kind;
  uint64_t *counter;
} sm_arg;

/* The ctx of every sharedmem call, in sm_empty memory (see psum_ctx). */
typedef struct {
  job_ctx job;
  double total;
  barrier_ctx barrier;
  psum_ctx psum;
  heat_ctx heat;
} shared_ctx;
static shared_ctx *shared;

/* The serial answer of row 7 after n sweeps (a checksum of the grid and the last residual), cached. */
static double heat_reference(size_t n, double *last_res) {
  static struct {
    size_t n;
    double sum, res;
  } cache[16];
  static int ncache;
  for (int i = 0; i < ncache; i++)
    if (cache[i].n == n) {
      *last_res = cache[i].res;
      return cache[i].sum;
    }
  double *u = malloc(sizeof(double) * HEAT_N * HEAT_N), *v = malloc(sizeof(double) * HEAT_N * HEAT_N);
  if (!u || !v) abort();
  heat_init(u);
  heat_init(v);
  double res = 0, sum = 0;
  for (size_t k = 0; k < n; k++) {
    res = heat_rows(u, v, 1, HEAT_N - 1);
    double *t = u;
    u = v;
    v = t;
  }
  for (size_t i = 0; i < HEAT_N * HEAT_N; i++) sum += u[i];
  free(u);
  free(v);
  if (ncache < 16) {
    cache[ncache].n = n;
    cache[ncache].sum = sum;
    cache[ncache++].res = res;
  }
  *last_res = res;
  return sum;
}

static int heat_check(const char *who, const double *u, double res, size_t n) {
  double want_res, sum = 0;
  double want = heat_reference(n, &want_res);
  for (size_t i = 0; i < HEAT_N * HEAT_N; i++) sum += u[i];
  if (sum != want || res != want_res) {
    snprintf(run_err, sizeof run_err, "%s: heat after %zu sweeps: checksum %.17g, residual %.17g (serial: %.17g, %.17g)",
             who, n, sum, res, want, want_res);
    return 1;
  }
  return 0;
}

static int run_sm(void *varg, size_t n, double *sec) {
  sm_arg *a = varg;
  job_ctx *jc = &shared->job;
  *jc = (job_ctx){a->pool, a->counter, 0};
  job_ctx c = *jc; /* the caller's view of the result, read after the call */
  sm_status st = SM_OK;
  const char *what = "sm_map";
  double t0, t1;
  if (a->counter) *a->counter = 0;
  switch (a->kind) {
  case K_TRIVIAL:
    t0 = now_sec();
    st = sm_map(a->pool, n, work_trivial, NULL, 0, NULL);
    t1 = now_sec();
    break;
  case K_REDUCE:
    t0 = now_sec();
    st = sm_map(a->pool, n, work_result, reduce_sum, sizeof(uint64_t), jc);
    t1 = now_sec();
    c = *jc;
    if (st == SM_OK && c.sum != (uint64_t)n * (uint64_t)(n - 1) / 2) {
      snprintf(run_err, sizeof run_err, "reduce: wrong sum %llu for %zu jobs (expected %llu)",
               (unsigned long long)c.sum, n, (unsigned long long)((uint64_t)n * (n - 1) / 2));
      return 1;
    }
    break;
  case K_CRITICAL:
  case K_ORDERED:
    t0 = now_sec();
    st = sm_map(a->pool, n, a->kind == K_CRITICAL ? work_critical : work_ordered, NULL, 0, jc);
    t1 = now_sec();
    if (st == SM_OK && *a->counter != (uint64_t)n) {
      snprintf(run_err, sizeof run_err, "%s: counter %llu after %zu jobs (lost updates)",
               a->kind == K_CRITICAL ? "critical" : "ordered", (unsigned long long)*a->counter, n);
      return 1;
    }
    break;
  case K_WREDUCE: {
    sm_map_opts opts = {.size = sizeof opts, .worker_init = wadd_init, .worker_fini = wadd_fini,
                        .worker_reduce = wadd_reduce, .wresult_size = sizeof(double)};
    shared->total = 0;
    t0 = now_sec();
    st = sm_map_ex(a->pool, n, work_wadd, NULL, 0, &shared->total, &opts);
    t1 = now_sec();
    double total = shared->total;
    if (st == SM_OK && total != (double)n * (double)(n - 1) / 2) {
      snprintf(run_err, sizeof run_err, "per-worker reduce: wrong sum %.0f for %zu jobs", total, n);
      return 1;
    }
    break;
  }
  case K_MAP0:
  case K_MAP2: {
    size_t nj = a->kind == K_MAP0 ? 0 : 2;
    t0 = now_sec();
    for (size_t i = 0; i < n && st == SM_OK; i++) st = sm_map(a->pool, nj, work_trivial, NULL, 0, NULL);
    t1 = now_sec();
    break;
  }
  case K_BARRIER: { /* one region in which every worker passes n barriers */
    shared->barrier = (barrier_ctx){a->pool, n};
    what = "sm_parallel (barriers)";
    t0 = now_sec();
    st = sm_parallel(a->pool, region_barriers, &shared->barrier);
    t1 = now_sec();
    break;
  }
  case K_REGION:
    what = "sm_parallel (empty region)";
    t0 = now_sec();
    for (size_t i = 0; i < n && st == SM_OK; i++) st = sm_parallel(a->pool, region_empty, NULL);
    t1 = now_sec();
    break;
  case K_PREDUCE: { /* n reductions of PSUM_N jobs each */
    const double want = psum_expected();
    what = "sm_parallel (sm_for_next reduction)";
    shared->psum = (psum_ctx){a->pool, psum_x, psum_partials};
    t0 = now_sec();
    for (size_t r = 0; r < n; r++) {
      for (int w = 0; w < NW; w++) psum_partials[w * 8] = 0;
      st = sm_parallel(a->pool, region_psum, &shared->psum);
      if (st != SM_OK) break;
      double total = 0;
      for (int w = 0; w < NW; w++) total += psum_partials[w * 8];
      if (total != want) {
        snprintf(run_err, sizeof run_err, "sm_for_next reduction: wrong sum %.17g for %u jobs (expected %.17g)", total,
                 PSUM_N, want);
        return 1;
      }
    }
    t1 = now_sec();
    break;
  }
  case K_HEAT: { /* n sweeps, one sm_parallel each */
    heat_ctx *h = &shared->heat;
    what = "sm_parallel (heat sweep)";
    h->pool = a->pool;
    heat_init(h->u);
    heat_init(h->unew);
    double res = 0;
    t0 = now_sec();
    for (size_t k = 0; k < n && st == SM_OK; k++) {
      st = sm_parallel(a->pool, region_heat, h);
      res = 0;
      for (int w = 0; w < NW; w++)
        if (h->partial[w * 8] > res) res = h->partial[w * 8];
      double *t = h->u;
      h->u = h->unew;
      h->unew = t;
    }
    t1 = now_sec();
    if (st == SM_OK && heat_check("sharedmem", h->u, res, n)) return 1;
    break;
  }
  default:
    return 1;
  }
  if (st != SM_OK) {
    set_run_err(what, st);
    return 1;
  }
  *sec = t1 - t0;
  return 0;
}

static int run_omp(void *varg, size_t n, double *sec) {
  enum kind kind = *(enum kind *)varg;
  double t0 = now_sec(), t1;
  long long nn = (long long)n;
  switch (kind) {
  case K_TRIVIAL:
#pragma omp parallel for schedule(dynamic) num_threads(NW)
    for (long long i = 0; i < nn; i++) {
      volatile long long x = 0;
      x += i;
    }
    t1 = now_sec();
    break;
  case K_REDUCE: {
    uint64_t s = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : s) num_threads(NW)
    for (long long i = 0; i < nn; i++) s += (uint64_t)i;
    t1 = now_sec();
    if (s != (uint64_t)n * (uint64_t)(n - 1) / 2) {
      snprintf(run_err, sizeof run_err, "omp reduction: wrong sum");
      return 1;
    }
    break;
  }
  case K_WREDUCE: {
    double s = 0;
#pragma omp parallel for reduction(+ : s) num_threads(NW)
    for (long long i = 0; i < nn; i++) s += (double)i;
    t1 = now_sec();
    if (s != (double)n * (double)(n - 1) / 2) {
      snprintf(run_err, sizeof run_err, "omp reduction (double): wrong sum");
      return 1;
    }
    break;
  }
  case K_CRITICAL: {
    uint64_t counter = 0;
#pragma omp parallel for schedule(dynamic) num_threads(NW)
    for (long long i = 0; i < nn; i++) {
#pragma omp critical
      counter++;
    }
    t1 = now_sec();
    if (counter != (uint64_t)n) {
      snprintf(run_err, sizeof run_err, "omp critical: lost updates");
      return 1;
    }
    break;
  }
  case K_ORDERED: {
    uint64_t counter = 0;
    int bad = 0;
#pragma omp parallel for ordered schedule(dynamic) num_threads(NW)
    for (long long i = 0; i < nn; i++) {
#pragma omp ordered
      {
        if (counter != (uint64_t)i) bad = 1;
        counter++;
      }
    }
    t1 = now_sec();
    if (bad || counter != (uint64_t)n) {
      snprintf(run_err, sizeof run_err, "omp ordered: out of order");
      return 1;
    }
    break;
  }
  case K_MAP0: /* empty parallel region */
    for (size_t k = 0; k < n; k++) {
#pragma omp parallel num_threads(NW)
      {
        __asm__ __volatile__("" ::: "memory");
      }
    }
    t1 = now_sec();
    break;
  case K_BARRIER: /* one region in which every thread passes n barriers */
#pragma omp parallel num_threads(NW)
    {
      for (size_t k = 0; k < n; k++) {
#pragma omp barrier
      }
    }
    t1 = now_sec();
    break;
  case K_PREDUCE: { /* n reductions of PSUM_N jobs each, over the same array as sharedmem's */
    const double want = psum_expected();
    const double *x = psum_x;
    const long long nx = (long long)PSUM_N;
    for (size_t r = 0; r < n; r++) {
      double s = 0;
#pragma omp parallel for schedule(static) reduction(+ : s) num_threads(NW)
      for (long long i = 0; i < nx; i++) s += x[i];
      if (s != want) {
        snprintf(run_err, sizeof run_err, "omp parallel for reduction: wrong sum %.17g (expected %.17g)", s, want);
        return 1;
      }
    }
    t1 = now_sec();
    break;
  }
  case K_HEAT: { /* n sweeps, one omp parallel for each; the grids are the same sm_empty ones */
    double *u = shared->heat.u, *v = shared->heat.unew, res = 0;
    heat_init(u);
    heat_init(v);
    for (size_t k = 0; k < n; k++) {
      res = 0;
#pragma omp parallel for schedule(static) reduction(max : res) num_threads(NW)
      for (long long i = 1; i < HEAT_N - 1; i++) {
        double r = heat_rows(u, v, (size_t)i, (size_t)i + 1);
        if (r > res) res = r;
      }
      double *t = u;
      u = v;
      v = t;
    }
    t1 = now_sec();
    shared->heat.u = u;
    shared->heat.unew = v;
    if (heat_check("openmp", u, res, n)) return 1;
    break;
  }
  default:
    return 1;
  }
  *sec = t1 - t0;
  return 0;
}

/* Forks NW children that each run child(w) (if any) and _exit(0), and waits for all of them. */
static int fork_and_join(void (*child)(int w)) {
  pid_t pid[NW];
  int started = 0, rc = 0;
  for (; started < NW; started++) {
    pid[started] = fork();
    if (pid[started] == 0) {
      if (child) child(started);
      _exit(0);
    }
    if (pid[started] < 0) {
      snprintf(run_err, sizeof run_err, "fork: %s", strerror(errno));
      rc = 1;
      break;
    }
  }
  for (int w = 0; w < started; w++) {
    int status;
    while (waitpid(pid[w], &status, 0) < 0 && errno == EINTR) {
    }
  }
  return rc;
}

static int run_forkjoin(void *varg, size_t n, double *sec) {
  (void)varg;
  double t0 = now_sec();
  for (size_t k = 0; k < n; k++)
    if (fork_and_join(NULL)) return 1;
  *sec = now_sec() - t0;
  return 0;
}

/* The peer of the process backend in row 5c: the same reduction written by hand with fork(): each of
 * NW children sums its static block of psum_x into its slot of psum_partials and exits; the parent
 * waits for them and checks the sum, as run_sm does after every sm_parallel. */
static void forksum_child(int w) {
  double s = 0;
  for (size_t i = (size_t)w * PSUM_N / NW; i < (size_t)(w + 1) * PSUM_N / NW; i++) s += psum_x[i];
  psum_partials[w * 8] = s;
}

static int run_forksum(void *varg, size_t n, double *sec) {
  (void)varg;
  const double want = psum_expected();
  double t0 = now_sec();
  for (size_t k = 0; k < n; k++) {
    for (int w = 0; w < NW; w++) psum_partials[w * 8] = 0;
    if (fork_and_join(forksum_child)) return 1;
    double total = 0;
    for (int w = 0; w < NW; w++) total += psum_partials[w * 8];
    if (total != want) {
      snprintf(run_err, sizeof run_err, "hand-written fork reduction: wrong sum %.17g (expected %.17g)", total, want);
      return 1;
    }
  }
  *sec = now_sec() - t0;
  return 0;
}

/* ------------------------------------------------------------------ measuring */

typedef struct {
  int ok;
  double med, min, max; /* ns per unit */
  size_t n;             /* units per run */
} result_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One system (a run function and its argument) taking part in a measure. */
typedef struct {
  const char *name;
  run_fn f;
  void *arg;
  int enabled;
  result_t *out;
  size_t n;       /* calibrated units per run */
  double ts[REPS]; /* ns per unit of each measured run */
} sys_t;

static void settle(void) { usleep(20000); /* let spinning workers of the last system go idle */ }

/* Calibrates (and thereby warms up) one system: run sizes grow 10x from n0 until a run takes
 * >= 50 ms (or nmax is reached); the size is then scaled so that one run takes about target_sec. */
static int calibrate(sys_t *s, size_t n0, size_t nmax) {
  double t = 0;
  size_t n = n0;
  snprintf(cur_measure, sizeof cur_measure, "%s (warm-up/calibration)", s->name);
  for (;;) {
    alarm(WATCHDOG_SEC);
    int rc = s->f(s->arg, n, &t);
    alarm(0);
    if (rc) return 1;
    if (t >= 0.05 || n >= nmax) break;
    n = n * 10 > nmax ? nmax : n * 10;
  }
  if (t > 0) {
    double want = (double)n * target_sec / t;
    n = want < (double)n0 ? n0 : want > (double)nmax ? nmax : (size_t)want;
  }
  s->n = n;
  return 0;
}

/* Measures a group of systems: each is calibrated/warmed up once, then REPS rounds run every
 * system once per round (the starting system rotates each round), so that slow phases of the
 * machine hit all systems of the group alike. Reports the median per system. */
static void measure_group(sys_t *sys, int nsys, size_t n0, size_t nmax) {
  int failed[16] = {0};
  for (int i = 0; i < nsys; i++) {
    if (!sys[i].enabled) continue;
    if (calibrate(&sys[i], n0, nmax)) {
      failed[i] = 1;
      problem("%s: %s", sys[i].name, run_err);
    }
    settle();
  }
  for (int rep = 0; rep < REPS; rep++) {
    for (int k = 0; k < nsys; k++) {
      int i = (k + rep) % nsys;
      sys_t *s = &sys[i];
      if (!s->enabled || failed[i]) continue;
      double t = 0;
      snprintf(cur_measure, sizeof cur_measure, "%s (run %d)", s->name, rep + 1);
      alarm(WATCHDOG_SEC);
      int rc = s->f(s->arg, s->n, &t);
      alarm(0);
      if (rc) {
        failed[i] = 1;
        problem("%s: %s", s->name, run_err);
      } else {
        s->ts[rep] = t * 1e9 / (double)s->n;
      }
      settle();
    }
  }
  for (int i = 0; i < nsys; i++) {
    sys_t *s = &sys[i];
    result_t r = {0, 0, 0, 0, 0};
    if (s->enabled && !failed[i]) {
      qsort(s->ts, REPS, sizeof s->ts[0], cmp_double);
      r.ok = 1;
      r.med = s->ts[REPS / 2];
      r.min = s->ts[0];
      r.max = s->ts[REPS - 1];
      r.n = s->n;
      fprintf(stderr, "bench: %-48s %12.1f ns (n=%zu, min %.1f, max %.1f)\n", s->name, r.med, r.n, r.min, r.max);
    } else {
      fprintf(stderr, "bench: %-48s %s\n", s->name, s->enabled ? "FAILED" : "not run");
    }
    *s->out = r;
  }
}

/* Row 5c over the array x: sm_parallel + sm_for_next on the process and thread pools, OpenMP's
 * reduction and the hand-written fork reduction (all over x), plus, when fj is given, a bare
 * fork+join with x resident. Results are per job (per element of x), fj's per fork+join. */
static void measure_psum(const double *x, const char *label, sm_pool *pp, int pp_ok, sm_pool *tp, int tp_ok,
                         sm_pool *sp, int sp_ok, uint64_t *counter, result_t *p, result_t *t, result_t *o,
                         result_t *fs, result_t *sps, result_t *fj) {
  static enum kind preduce = K_PREDUCE;
  char names[6][96];
  const char *what[6] = {"sharedmem process", "sharedmem thread", "openmp reduction(+:s)", "hand-written fork",
                         "sharedmem persistent", "fork+waitpid of 2 children, array resident"};
  for (int i = 0; i < 6; i++) snprintf(names[i], sizeof names[i], "parallel-for reduction%s / %s", label, what[i]);
  psum_x = x;
  sm_arg pa = {pp, K_PREDUCE, counter}, ta = {tp, K_PREDUCE, counter}, sa = {sp, K_PREDUCE, counter};
  sys_t g[6] = {{names[0], run_sm, &pa, pp_ok, p, 0, {0}},
                {names[1], run_sm, &ta, tp_ok, t, 0, {0}},
                {names[2], run_omp, &preduce, 1, o, 0, {0}},
                {names[3], run_forksum, NULL, 1, fs, 0, {0}},
                {names[4], run_sm, &sa, sp_ok, sps, 0, {0}},
                {names[5], run_forkjoin, NULL, fj != NULL, fj, 0, {0}}};
  measure_group(g, fj ? 6 : 5, 1, PSUM_RMAX);
  result_t *rs[5] = {p, t, o, fs, sps};
  for (int s = 0; s < 5; s++) {
    rs[s]->med /= PSUM_N;
    rs[s]->min /= PSUM_N;
    rs[s]->max /= PSUM_N;
  }
  psum_x = NULL;
}

/* ------------------------------------------------------------------ sanity check */

static int sanity(sm_pool *pool, const char *bname) {
  const size_t n = 1000;
  uint64_t *cnt = sm_empty(n, sizeof(uint64_t));
  int ok = 1;
  if (!cnt) {
    problem("sm_empty(%zu, 8) failed: %s", n, sm_last_error());
    return 0;
  }
  snprintf(cur_measure, sizeof cur_measure, "sanity check (%s)", bname);
  alarm(WATCHDOG_SEC);
  size_t sizes[] = {0, 1, 2, 3, n};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0] && ok; s++) {
    memset(cnt, 0, n * sizeof *cnt);
    sm_status st = sm_map(pool, sizes[s], work_count, NULL, 0, cnt);
    if (st != SM_OK) {
      set_run_err("sm_map", st);
      problem("sanity (%s, njobs=%zu): %s", bname, sizes[s], run_err);
      ok = 0;
      break;
    }
    for (size_t j = 0; j < n; j++) {
      uint64_t want = j < sizes[s] ? 1 : 0;
      if (cnt[j] != want) {
        problem("sanity (%s, njobs=%zu): job %zu ran %llu times (expected %llu)", bname, sizes[s], j,
                (unsigned long long)cnt[j], (unsigned long long)want);
        ok = 0;
        break;
      }
    }
  }
  alarm(0);
  sm_free(cnt);
  return ok;
}

/* ------------------------------------------------------------------ machine load during the run */

typedef struct {
  double busy, steal, total; /* seconds summed over all CPUs, from /proc/stat */
  double own;                /* CPU seconds of this process and its reaped children */
  double wall;
} load_snap;

static load_snap load_now(void) {
  load_snap l = {0, 0, 0, 0, now_sec()};
  unsigned long long v[8] = {0};
  FILE *f = fopen("/proc/stat", "r");
  if (f) {
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7]) != 8)
      memset(v, 0, sizeof v);
    fclose(f);
  }
  double hz = (double)sysconf(_SC_CLK_TCK);
  l.busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
  l.steal = (double)v[7] / hz;
  l.total = (double)(v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]) / hz;
  struct rusage self, kids;
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  l.own = (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) +
          (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) * 1e-6;
  return l;
}

/* Reports how much CPU other processes (and the hypervisor, as steal) took while the benchmark ran. */
static void report_load(load_snap a, load_snap b) {
  double total = b.total - a.total;
  if (!(total > 0)) {
    printf("- other load during the run: unknown (/proc/stat unreadable)\n");
    return;
  }
  double other = (b.busy - a.busy) - (b.own - a.own);
  if (other < 0) other = 0;
  double pct = 100.0 * other / total, steal = 100.0 * (b.steal - a.steal) / total;
  printf("- other load during the run: other processes used %.1f%% of all CPU time, hypervisor steal %.1f%%%s\n", pct,
         steal, pct > 10 || steal > 10 ? " -- **the machine was not quiet: numbers are disturbed; re-run**" : " (quiet machine)");
}

/* ------------------------------------------------------------------ report */

static void fmt_val(char *buf, size_t len, const result_t *r, double v) {
  if (!r->ok)
    snprintf(buf, len, "FAIL");
  else if (v >= 100000)
    snprintf(buf, len, "%.0f", v);
  else if (v < 1 && v > -1)
    snprintf(buf, len, "%.2f", v);
  else
    snprintf(buf, len, "%.1f", v);
}

static void fmt_ratio(char *buf, size_t len, int ok, double num, double den) {
  if (!ok || !(den > 0) || !(num > 0))
    snprintf(buf, len, "n/a");
  else if (num / den < 0.1)
    snprintf(buf, len, "%.2g", num / den);
  else
    snprintf(buf, len, "%.2f", num / den);
}

static const char *verdict(int ok, double num, double den, double limit) {
  if (!ok || !(den > 0)) return "n/a";
  return num / den <= limit ? "met" : "**NOT met**";
}

/* one table row; values already in ns; ok flags per column */
static void row(const char *measure, const result_t *rp, double p, const result_t *rt, double t,
                const char *peer_name, const result_t *rq, double q, const char *target) {
  char sp[32], st[32], sq[32], r1[32], r2[32];
  fmt_val(sp, sizeof sp, rp, p);
  fmt_val(st, sizeof st, rt, t);
  fmt_val(sq, sizeof sq, rq, q);
  fmt_ratio(r1, sizeof r1, rp->ok && rq->ok, p, q);
  fmt_ratio(r2, sizeof r2, rt->ok && rq->ok, t, q);
  printf("| %s | %s | %s | %s: %s | %s | %s | %s |\n", measure, sp, st, peer_name, sq, r1, r2, target);
}

/* A row of the persistent backend's table: persistent, thread and process side by side, and the
 * ratio of persistent to the peer. */
static void prow(const char *measure, const result_t *rs, double s, const result_t *rt, double t, const result_t *rp,
                 double p, const char *peer_name, const result_t *rq, double q, const char *target) {
  char ss[64], st[64], sp[64], sq[64], r[64];
  fmt_val(ss, sizeof ss, rs, s);
  fmt_val(st, sizeof st, rt, t);
  fmt_val(sp, sizeof sp, rp, p);
  fmt_val(sq, sizeof sq, rq, q);
  fmt_ratio(r, sizeof r, rs->ok && rq->ok, s, q);
  printf("| %s | %s | %s | %s | %s: %s | %s | %s |\n", measure, ss, st, sp, peer_name, sq, r, target);
}

static void machine_info(void) {
  char model[256] = "unknown";
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    char line[512];
    while (fgets(line, sizeof line, f)) {
      if (strncmp(line, "model name", 10) == 0) {
        char *c = strchr(line, ':');
        if (c) {
          c++;
          while (*c == ' ' || *c == '\t') c++;
          c[strcspn(c, "\n")] = 0;
          snprintf(model, sizeof model, "%s", c);
        }
        break;
      }
    }
    fclose(f);
  }
  struct utsname u;
  char kernel[512] = "unknown";
  if (uname(&u) == 0) snprintf(kernel, sizeof kernel, "%s %s %s (%s)", u.sysname, u.release, u.machine, u.version);
  cpu_set_t set;
  int affinity = -1;
  if (sched_getaffinity(0, sizeof set, &set) == 0) affinity = CPU_COUNT(&set);
  char date[64];
  time_t now = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
  printf("- date: %s\n", date);
  printf("- nproc: %ld online CPUs, %d usable by this process\n", sysconf(_SC_NPROCESSORS_ONLN), affinity);
  printf("- CPU: %s\n", model);
  printf("- kernel: %s\n", kernel);
#ifdef __clang__
  printf("- compiler: clang %s, -O2 -fopenmp (OpenMP %d)\n", __clang_version__, _OPENMP);
#else
  printf("- compiler: gcc %s, -O2 -fopenmp (OpenMP %d, libgomp)\n", __VERSION__, _OPENMP);
#endif
  const char *envs[] = {"OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"};
  printf("- environment:");
  for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
    const char *v = getenv(envs[i]);
    printf(" %s=%s", envs[i], v ? v : "(unset)");
  }
  printf("\n- workers: sharedmem pools created with sm_pool_new(%d, ...); OpenMP num_threads(%d); fork+join forks %d children\n",
         NW, NW, NW);
}

int main(void) {
  const char *tgt = getenv("SM_BENCH_TARGET_MS");
  if (tgt && atof(tgt) > 0) target_sec = atof(tgt) / 1000.0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = watchdog;
  sigaction(SIGALRM, &sa, NULL);
  omp_set_dynamic(0);
  omp_set_num_threads(NW);
  double t_start = now_sec();
  load_snap load_start = load_now();

  machine_info();
  fflush(stdout);

  shared = sm_empty(1, sizeof *shared);
  double *heat_grids = sm_empty(2 * HEAT_N * HEAT_N, sizeof(double));
  if (!shared || !heat_grids) {
    problem("sm_empty failed: %s", sm_last_error());
    return 2;
  }
  shared->heat.u = heat_grids;
  shared->heat.unew = heat_grids + HEAT_N * HEAT_N;

  sm_pool *pp = sm_pool_new(NW, SM_BACKEND_PROCESS);
  if (!pp) problem("sm_pool_new(%d, SM_BACKEND_PROCESS) failed: %s", NW, sm_last_error());
  sm_pool *tp = sm_pool_new(NW, SM_BACKEND_THREAD);
  if (!tp) problem("sm_pool_new(%d, SM_BACKEND_THREAD) failed: %s", NW, sm_last_error());
  if (pp && sm_pool_nworkers(pp) != NW) problem("process pool: sm_pool_nworkers = %d, expected %d", sm_pool_nworkers(pp), NW);
  if (tp && sm_pool_nworkers(tp) != NW) problem("thread pool: sm_pool_nworkers = %d, expected %d", sm_pool_nworkers(tp), NW);
  double t_sp = now_sec();
  sm_pool *sp = sm_pool_new(NW, SM_BACKEND_PERSISTENT);
  t_sp = now_sec() - t_sp;
  if (!sp) problem("sm_pool_new(%d, SM_BACKEND_PERSISTENT) failed: %s", NW, sm_last_error());
  int pp_ok = pp && sanity(pp, "process");
  int sp_ok = sp && sanity(sp, "persistent");
  int tp_ok = tp && sanity(tp, "thread");

  uint64_t *counter = sm_empty(1, sizeof(uint64_t));
  if (!counter) {
    problem("sm_empty(1, 8) failed: %s", sm_last_error());
    return 2;
  }

  enum kind kinds[NKINDS] = {K_TRIVIAL, K_REDUCE, K_CRITICAL, K_ORDERED, K_MAP0,
                             K_MAP2,    K_WREDUCE, K_BARRIER, K_REGION,  K_PREDUCE};
  const char *kname[NKINDS] = {"trivial job",       "trivial job + reduce", "critical",          "ordered",
                               "empty map njobs=0", "map njobs=2",          "per-worker reduce", "barrier",
                               "empty sm_parallel region", "parallel-for reduction of 10^7 jobs"};
  result_t P[NKINDS], T[NKINDS], O[NKINDS], FJ, FJX, FJS; /* FJX: fork+join with 5c's array resident;
                                                            FJS: 5c's reduction by hand with fork() */
  result_t PS, TS, OS, FSS; /* row 5c again over an sm_empty array */
  result_t S[NKINDS], SS;   /* the persistent backend (SS: row 5d) */
  result_t H[5];            /* row 7, heat: process, persistent, thread, serial, openmp */
  result_t B[4];            /* row 8, 2 GiB of private heap resident: maps of 2 jobs on process, persistent,
                               thread, and a persistent pool made with the heap resident */
  double t_sp_heap = 0;     /* sm_pool_new of that last pool */
  memset(S, 0, sizeof S);
  memset(&SS, 0, sizeof SS);
  memset(H, 0, sizeof H);
  memset(B, 0, sizeof B);
  memset(P, 0, sizeof P);
  memset(T, 0, sizeof T);
  memset(O, 0, sizeof O);
  memset(&FJ, 0, sizeof FJ);
  memset(&FJX, 0, sizeof FJX);
  memset(&FJS, 0, sizeof FJS);
  memset(&PS, 0, sizeof PS);
  memset(&TS, 0, sizeof TS);
  memset(&OS, 0, sizeof OS);
  memset(&FSS, 0, sizeof FSS);
  /* per-job measures: one group per kind, 3 systems each */
  for (int k = 0; k < 4; k++) {
    char n1[128], n2[128], n3[128], n4[128];
    sm_arg pa = {pp, kinds[k], counter}, ta = {tp, kinds[k], counter}, sa = {sp, kinds[k], counter};
    snprintf(n1, sizeof n1, "%s / sharedmem process", kname[k]);
    snprintf(n2, sizeof n2, "%s / sharedmem thread", kname[k]);
    snprintf(n3, sizeof n3, "%s / openmp", kname[k]);
    snprintf(n4, sizeof n4, "%s / sharedmem persistent", kname[k]);
    sys_t g[4] = {{n1, run_sm, &pa, pp_ok, &P[k], 0, {0}},
                  {n2, run_sm, &ta, tp_ok, &T[k], 0, {0}},
                  {n3, run_omp, &kinds[k], 1, &O[k], 0, {0}},
                  {n4, run_sm, &sa, sp_ok, &S[k], 0, {0}}};
    measure_group(g, 4, PER_JOB_N0, PER_JOB_NMAX);
  }
  /* per-worker reduction (sm_map_ex) vs omp parallel for reduction(+:s) */
  {
    sm_arg pa = {pp, K_WREDUCE, counter}, ta = {tp, K_WREDUCE, counter}, sa = {sp, K_WREDUCE, counter};
    sys_t g[4] = {{"per-worker reduce / sharedmem process", run_sm, &pa, pp_ok, &P[6], 0, {0}},
                  {"per-worker reduce / sharedmem thread", run_sm, &ta, tp_ok, &T[6], 0, {0}},
                  {"reduction(+:s) / openmp", run_omp, &kinds[6], 1, &O[6], 0, {0}},
                  {"per-worker reduce / sharedmem persistent", run_sm, &sa, sp_ok, &S[6], 0, {0}}};
    measure_group(g, 4, PER_JOB_N0, PER_JOB_NMAX);
  }
  /* barrier cost: K barriers in one region (sm_parallel + sm_barrier vs omp parallel + omp barrier) */
  {
    sm_arg pa = {pp, K_BARRIER, counter}, ta = {tp, K_BARRIER, counter}, sa = {sp, K_BARRIER, counter};
    sys_t g[4] = {{"barrier / sharedmem process", run_sm, &pa, pp_ok, &P[7], 0, {0}},
                  {"barrier / sharedmem thread", run_sm, &ta, tp_ok, &T[7], 0, {0}},
                  {"barrier / openmp", run_omp, &kinds[7], 1, &O[7], 0, {0}},
                  {"barrier / sharedmem persistent", run_sm, &sa, sp_ok, &S[7], 0, {0}}};
    measure_group(g, 4, PER_JOB_N0, PER_JOB_NMAX);
  }
  /* per-map measures (maps and empty regions, with their peers): one group of 8 systems */
  {
    sm_arg p0 = {pp, K_MAP0, counter}, t0 = {tp, K_MAP0, counter};
    sm_arg p2 = {pp, K_MAP2, counter}, t2 = {tp, K_MAP2, counter};
    sm_arg pr = {pp, K_REGION, counter}, tr = {tp, K_REGION, counter};
    sm_arg s0 = {sp, K_MAP0, counter}, s2 = {sp, K_MAP2, counter}, sr = {sp, K_REGION, counter};
    sys_t g[11] = {{"empty map njobs=0 / sharedmem process", run_sm, &p0, pp_ok, &P[4], 0, {0}},
                  {"empty map njobs=0 / sharedmem thread", run_sm, &t0, tp_ok, &T[4], 0, {0}},
                  {"empty parallel region / openmp", run_omp, &kinds[4], 1, &O[4], 0, {0}},
                  {"map njobs=2 / sharedmem process", run_sm, &p2, pp_ok, &P[5], 0, {0}},
                  {"map njobs=2 / sharedmem thread", run_sm, &t2, tp_ok, &T[5], 0, {0}},
                  {"fork+waitpid of 2 children", run_forkjoin, NULL, 1, &FJ, 0, {0}},
                  {"empty sm_parallel region / sharedmem process", run_sm, &pr, pp_ok, &P[8], 0, {0}},
                  {"empty sm_parallel region / sharedmem thread", run_sm, &tr, tp_ok, &T[8], 0, {0}},
                  {"empty map njobs=0 / sharedmem persistent", run_sm, &s0, sp_ok, &S[4], 0, {0}},
                  {"map njobs=2 / sharedmem persistent", run_sm, &s2, sp_ok, &S[5], 0, {0}},
                  {"empty sm_parallel region / sharedmem persistent", run_sm, &sr, sp_ok, &S[8], 0, {0}}};
    measure_group(g, 11, PER_MAP_N0, PER_MAP_NMAX);
  }
  /* tiny-job reduction through per-worker partials: sm_parallel + sm_for_next (static) vs
   * omp parallel for reduction(+:s), over the same 10^7 doubles; a run repeats whole reductions.
   * The array exists only during this measure, so that it does not slow the forks of the others.
   * A bare fork+join runs in the same group: with 80 MB resident in the caller, the kernel's fork
   * (copying page tables) and exit cost far more than in rows 2a/2b, and the process backend pays
   * that at every reduction. */
  {
    double *x = malloc((size_t)PSUM_N * sizeof *x);
    double *xs = sm_empty(PSUM_N, sizeof(double));
    psum_partials = sm_empty(8 * NW, sizeof(double));
    if (!x || !xs || !psum_partials) {
      problem("parallel-for reduction: allocation failed (%s)", x ? sm_last_error() : "malloc");
    } else {
      for (size_t i = 0; i < PSUM_N; i++) x[i] = xs[i] = (double)(i % 8);
      /* The sm_empty copy is resident too during the first group, but shared mappings cost fork
       * nothing (their page-table entries are not copied); the malloc'd array is freed before the
       * second group. */
      /* Persistent workers see ordinary memory as it was at sm_pool_new: a pool made now, after the
       * array was filled (the one made at the start would see no array). */
      sm_pool *sp5 = sm_pool_new(NW, SM_BACKEND_PERSISTENT);
      if (!sp5) problem("sm_pool_new(%d, SM_BACKEND_PERSISTENT) after the array: %s", NW, sm_last_error());
      measure_psum(x, "", pp, pp_ok, tp, tp_ok, sp5, sp5 != NULL, counter, &P[9], &T[9], &O[9], &FJS, &S[9], &FJX);
      sm_pool_free(sp5);
      free(x);
      x = NULL;
      measure_psum(xs, " (sm_empty array)", pp, pp_ok, tp, tp_ok, sp, sp_ok, counter, &PS, &TS, &OS, &FSS, &SS,
                   NULL);
    }
    free(x);
    sm_free(xs);
    sm_free(psum_partials);
    psum_partials = NULL;
  }
  /* row 7: the heat equation's time loop, one parallel region per sweep, on every backend */
  {
    static enum kind heat = K_HEAT;
    sm_pool *serial = sm_pool_new(1, SM_BACKEND_SERIAL);
    if (!serial) problem("sm_pool_new(1, SM_BACKEND_SERIAL) failed: %s", sm_last_error());
    sm_arg hp = {pp, K_HEAT, counter}, hs = {sp, K_HEAT, counter}, ht = {tp, K_HEAT, counter},
           hz = {serial, K_HEAT, counter};
    sys_t g[5] = {{"heat sweep / sharedmem process", run_sm, &hp, pp_ok, &H[0], 0, {0}},
                  {"heat sweep / sharedmem persistent", run_sm, &hs, sp_ok, &H[1], 0, {0}},
                  {"heat sweep / sharedmem thread", run_sm, &ht, tp_ok, &H[2], 0, {0}},
                  {"heat sweep / sharedmem serial", run_sm, &hz, serial != NULL, &H[3], 0, {0}},
                  {"heat sweep / openmp", run_omp, &heat, 1, &H[4], 0, {0}}};
    measure_group(g, 5, PER_MAP_N0, PER_MAP_NMAX);
    sm_pool_free(serial);
  }
  /* row 8: maps of 2 jobs with 2 GiB of private (malloc'd, written) heap resident in the caller */
  {
    const size_t big = (size_t)2 << 30;
    char *heap = malloc(big);
    if (!heap) {
      problem("malloc of 2 GiB failed");
    } else {
      memset(heap, 1, big);
      t_sp_heap = now_sec();
      sm_pool *sp2 = sm_pool_new(NW, SM_BACKEND_PERSISTENT);
      t_sp_heap = now_sec() - t_sp_heap;
      if (!sp2) problem("sm_pool_new(%d, SM_BACKEND_PERSISTENT) with 2 GiB resident: %s", NW, sm_last_error());
      sm_arg bp = {pp, K_MAP2, counter}, bs = {sp, K_MAP2, counter}, bt = {tp, K_MAP2, counter},
             bs2 = {sp2, K_MAP2, counter};
      sys_t g[4] = {{"map njobs=2, 2 GiB resident / sharedmem process", run_sm, &bp, pp_ok, &B[0], 0, {0}},
                    {"map njobs=2, 2 GiB resident / sharedmem persistent", run_sm, &bs, sp_ok, &B[1], 0, {0}},
                    {"map njobs=2, 2 GiB resident / sharedmem thread", run_sm, &bt, tp_ok, &B[2], 0, {0}},
                    {"map njobs=2, 2 GiB resident / persistent pool made with it", run_sm, &bs2, sp2 != NULL, &B[3], 0,
                     {0}}};
      measure_group(g, 4, PER_MAP_N0, PER_MAP_NMAX);
      sm_pool_free(sp2);
      /* the heap was written: reading one byte keeps the compiler from dropping the memset */
      if (heap[big / 2] != 1) problem("2 GiB heap: lost a write");
      free(heap);
    }
  }
  /* Persistent workers are the zygote's children: their CPU time counts as this process's own
   * (RUSAGE_CHILDREN) only once the zygote has reaped them and been reaped, at sm_pool_free. */
  sm_pool_free(sp);
  double elapsed = now_sec() - t_start;
  report_load(load_start, load_now());

  /* ---------------------------------------------------------------- table */
  printf("\n| measure | sharedmem process | sharedmem thread | peer | ratio (process/peer) | ratio (thread/peer) | target |\n");
  printf("|---|---|---|---|---|---|---|\n");
  char tg[512];
  for (int k = 0; k < 2; k++) {
    snprintf(tg, sizeof tg, "thread <= 1.5x: %s; process <= 3x: %s", verdict(T[k].ok && O[k].ok, T[k].med, O[k].med, 1.5),
             verdict(P[k].ok && O[k].ok, P[k].med, O[k].med, 3.0));
    row(k == 0 ? "1a. trivial job, reduce=NULL, result_size 0 (ns/job)"
               : "1b. trivial job + reduce (sum), result_size 8 (ns/job)",
        &P[k], P[k].med, &T[k], T[k].med,
        k == 0 ? "omp parallel for schedule(dynamic)" : "omp parallel for schedule(dynamic) reduction(+:s)", &O[k],
        O[k].med, tg);
  }
  /* Issue 5's per-worker reduction target (1.5x) is for its work-shared loop (row 5c), whose body
   * the compiler inlines as OpenMP's is; a map calls a function per job, so this row can only show
   * what per-worker state saves over per-job reduce (row 1b). */
  snprintf(tg, sizeof tg, "informational: one call per job vs an inlined loop (the 1.5x target applies to row 5c; "
                          "here it would be: thread %s, process %s)",
           verdict(T[6].ok && O[6].ok, T[6].med, O[6].med, 1.5), verdict(P[6].ok && O[6].ok, P[6].med, O[6].med, 1.5));
  row("1c. per-worker reduce (sm_map_ex), one double per job (ns/job)", &P[6], P[6].med, &T[6], T[6].med,
      "omp parallel for reduction(+:s)", &O[6], O[6].med, tg);
  for (int k = 4; k < 6; k++) {
    const char *m = k == 4 ? "2a. empty map, njobs=0 (ns/map)" : "2b. map of 2 trivial jobs (ns/map)";
    snprintf(tg, sizeof tg, "thread vs omp parallel: informational (no number set)");
    row(m, &P[k], P[k].med, &T[k], T[k].med, "empty omp parallel region", &O[4], O[4].med, tg);
    snprintf(tg, sizeof tg, "process <= 1.5x fork+join: %s", verdict(P[k].ok && FJ.ok, P[k].med, FJ.med, 1.5));
    row(m, &P[k], P[k].med, &T[k], T[k].med, "fork()+waitpid() x2, children _exit(0)", &FJ, FJ.med, tg);
  }
  for (int k = 2; k < 4; k++) {
    const char *peer = k == 2 ? "omp critical in omp for schedule(dynamic)"
                              : "omp ordered in omp for ordered schedule(dynamic)";
    row(k == 2 ? "3a. critical enter/leave + increment, raw (ns/job)"
               : "4a. ordered enter/leave + increment, raw (ns/job)",
        &P[k], P[k].med, &T[k], T[k].med, peer, &O[k], O[k].med, "informational");
    result_t pn = P[k], tn = T[k], on = O[k];
    pn.ok = P[k].ok && P[0].ok;
    tn.ok = T[k].ok && T[0].ok;
    on.ok = O[k].ok && O[0].ok;
    row(k == 2 ? "3b. critical, net = raw minus 1a of the same system (ns/job)"
               : "4b. ordered, net = raw minus 1a of the same system (ns/job)",
        &pn, P[k].med - P[0].med, &tn, T[k].med - T[0].med, peer, &on, O[k].med - O[0].med, "informational");
  }

  snprintf(tg, sizeof tg, "thread <= 1.5x: %s; process: informational",
           verdict(T[7].ok && O[7].ok, T[7].med, O[7].med, 1.5));
  row("5a. barrier, K per region, sm_barrier vs omp barrier (ns/barrier)", &P[7], P[7].med, &T[7], T[7].med,
      "omp parallel { K x omp barrier }", &O[7], O[7].med, tg);
  snprintf(tg, sizeof tg, "thread <= 1.5x: %s; process vs omp: informational (see next row)",
           verdict(T[8].ok && O[4].ok, T[8].med, O[4].med, 1.5));
  row("5b. empty parallel region, sm_parallel (ns/region)", &P[8], P[8].med, &T[8], T[8].med,
      "empty omp parallel region", &O[4], O[4].med, tg);
  snprintf(tg, sizeof tg, "process <= 1.5x fork+join: %s; thread: see previous row",
           verdict(P[8].ok && FJ.ok, P[8].med, FJ.med, 1.5));
  row("5b. empty parallel region, sm_parallel (ns/region)", &P[8], P[8].med, &T[8], T[8].med,
      "fork()+waitpid() x2, children _exit(0)", &FJ, FJ.med, tg);
  snprintf(tg, sizeof tg, "thread <= 1.5x: %s; process <= 1.5x (fork included): %s",
           verdict(T[9].ok && O[9].ok, T[9].med, O[9].med, 1.5), verdict(P[9].ok && O[9].ok, P[9].med, O[9].med, 1.5));
  row("5c. 10^7 tiny jobs (one double each), sm_parallel + sm_for_next static + per-worker partials (ns/job)", &P[9],
      P[9].med, &T[9], T[9].med, "omp parallel for schedule(static) reduction(+:s)", &O[9], O[9].med, tg);
  {
    result_t pn = P[9];
    pn.ok = P[9].ok && FJX.ok;
    if (FJX.ok)
      snprintf(tg, sizeof tg, "informational: process minus a bare fork()+waitpid() x2 of this process with the array "
                              "resident (%.2f ms per reduction); thread unchanged (no fork)",
               FJX.med * 1e-6);
    else
      snprintf(tg, sizeof tg, "informational (fork+join with the array resident not measured)");
    row("5c. net: as above, process minus the kernel's fork+join (ns/job)", &pn, P[9].med - FJX.med / PSUM_N, &T[9],
        T[9].med, "omp parallel for schedule(static) reduction(+:s)", &O[9], O[9].med, tg);
  }
  row("5c. process vs the same reduction by hand: fork() 2 children, each sums its half, waitpid() (ns/job)", &P[9],
      P[9].med, &T[9], T[9].med, "hand-written fork reduction", &FJS, FJS.med,
      "informational: what the process backend adds to the kernel's fork, first touch and exit");
  snprintf(tg, sizeof tg, "thread <= 1.5x: %s; process <= 1.5x (fork included): %s",
           verdict(TS.ok && OS.ok, TS.med, OS.med, 1.5), verdict(PS.ok && OS.ok, PS.med, OS.med, 1.5));
  row("5d. as 5c, the array in sm_empty memory (ns/job)", &PS, PS.med, &TS, TS.med,
      "omp parallel for schedule(static) reduction(+:s), same array", &OS, OS.med, tg);
  row("5d. process vs the same reduction by hand, the array in sm_empty memory (ns/job)", &PS, PS.med, &TS, TS.med,
      "hand-written fork reduction", &FSS, FSS.med, "informational");

  printf("\nAll values are medians of %d runs after one warm-up/calibration phase per system; the systems of a "
         "measure run interleaved (round-robin, rotating start) so machine noise hits them alike; lower is "
         "better; ratio = sharedmem / peer.\n",
         REPS);
  printf("Rows 3a/4a are raw ns per job; rows 3b/4b subtract the trivial-job time (row 1a) of the same system.\n");
  printf("Row 5a: one region per run in which every worker calls sm_barrier K times (K calibrated like the job "
         "counts), divided by K; the region's own start and end are included but spread over the K barriers "
         "(for the process backend that is one fork+join per run). Peer: one omp parallel region whose threads pass "
         "K omp barriers.\n");
  printf("Row 5b: repeated sm_parallel with a region that returns 0 at once; the thread backend runs worker 0 "
         "in the caller, the process backend forks its workers at every call. Peers: an empty omp parallel "
         "region and a bare fork()+waitpid() of 2 children (the same peer measures as rows 2a/2b, measured in "
         "the same interleaved group).\n");
  printf("Row 5c: x[i] = i %% 8 for 10^7 doubles (ordinary memory, filled by the caller); every worker sums the "
         "block sm_for_next(SM_SCHEDULE_STATIC, chunk 0) gives it into a local accumulator and stores it in its "
         "slot of sm_empty memory, and the caller adds the %d partials after sm_parallel returns; the sum is "
         "checked (exact in double) after every reduction, as is OpenMP's. Each run repeats whole 10^7-job "
         "reductions (count calibrated); ns/job = time per reduction / 10^7. The process backend's time "
         "includes its fork and join at every reduction; with the 80 MB array resident in the caller the kernel's "
         "fork (page-table copy) and exit cost much more than in rows 2a/2b, so the \"net\" row subtracts a bare "
         "fork()+waitpid() of 2 children measured in the same group with the array resident. The last 5c row "
         "compares the process backend with the same reduction written by hand with fork() (each child sums its "
         "static half and exits; the parent waits and checks the sum): forked children pay, besides the fork, "
         "for their first touch of every page of the array (the kernel copies the caller's page-table entries "
         "marked not-accessed), which no fork-based design avoids.\n",
         NW);
  printf("Row 5d: row 5c over a copy of the array in sm_empty memory, where sharedmem programs keep the arrays "
         "they share with process workers (and the malloc'd one freed): fork copies no page-table entries of a "
         "shared mapping, and each child maps the pages it reads through page faults instead.\n");

  /* ---------------------------------------------------------------- persistent workers (issue 14) */
  printf("\n## Persistent workers (SM_BACKEND_PERSISTENT)\n\n");
  printf("Measured in the same run, interleaved with the systems above (same groups). sm_pool_new of the persistent "
         "pool: %.2f ms (forks the zygote and its %d workers).\n\n",
         t_sp * 1e3, NW);
  printf("| measure | sharedmem persistent | sharedmem thread | sharedmem process | peer | ratio (persistent/peer) | "
         "target |\n");
  printf("|---|---|---|---|---|---|---|\n");
  prow("1a. trivial job, reduce=NULL (ns/job)", &S[0], S[0].med, &T[0], T[0].med, &P[0], P[0].med,
       "omp parallel for schedule(dynamic)", &O[0], O[0].med, "informational");
  prow("1b. trivial job + reduce (sum) (ns/job)", &S[1], S[1].med, &T[1], T[1].med, &P[1], P[1].med,
       "omp parallel for schedule(dynamic) reduction(+:s)", &O[1], O[1].med, "informational");
  prow("1c. per-worker reduce (sm_map_ex) (ns/job)", &S[6], S[6].med, &T[6], T[6].med, &P[6], P[6].med,
       "omp parallel for reduction(+:s)", &O[6], O[6].med, "informational");
  prow("2a. empty map, njobs=0 (ns/map)", &S[4], S[4].med, &T[4], T[4].med, &P[4], P[4].med,
       "sharedmem thread", &T[4], T[4].med, "informational");
  snprintf(tg, sizeof tg, "persistent <= 2x thread: %s", verdict(S[5].ok && T[5].ok, S[5].med, T[5].med, 2.0));
  prow("2b. map of 2 trivial jobs (ns/map)", &S[5], S[5].med, &T[5], T[5].med, &P[5], P[5].med, "sharedmem thread",
       &T[5], T[5].med, tg);
  prow("3a. critical enter/leave + increment (ns/job)", &S[2], S[2].med, &T[2], T[2].med, &P[2], P[2].med,
       "omp critical", &O[2], O[2].med, "informational");
  prow("4a. ordered enter/leave + increment (ns/job)", &S[3], S[3].med, &T[3], T[3].med, &P[3], P[3].med,
       "omp ordered", &O[3], O[3].med, "informational");
  prow("5a. barrier (ns/barrier)", &S[7], S[7].med, &T[7], T[7].med, &P[7], P[7].med, "omp barrier", &O[7], O[7].med,
       "informational");
  prow("5b. empty parallel region (ns/region)", &S[8], S[8].med, &T[8], T[8].med, &P[8], P[8].med,
       "empty omp parallel region", &O[4], O[4].med, "informational");
  snprintf(tg, sizeof tg, "persistent <= 1.5x: %s", verdict(S[9].ok && O[9].ok, S[9].med, O[9].med, 1.5));
  prow("5c. 10^7 tiny jobs in a region, malloc'd array (ns/job)", &S[9], S[9].med, &T[9], T[9].med, &P[9], P[9].med,
       "omp parallel for schedule(static) reduction(+:s)", &O[9], O[9].med, tg);
  snprintf(tg, sizeof tg, "persistent <= 1.5x: %s", verdict(SS.ok && OS.ok, SS.med, OS.med, 1.5));
  prow("5d. as 5c, the array in sm_empty memory (ns/job)", &SS, SS.med, &TS, TS.med, &PS, PS.med,
       "omp parallel for schedule(static) reduction(+:s), same array", &OS, OS.med, tg);
  {
    char hz[64], hr[64];
    fmt_val(hz, sizeof hz, &H[3], H[3].med);
    fmt_ratio(hr, sizeof hr, H[3].ok && H[4].ok, H[3].med, H[4].med);
    snprintf(tg, sizeof tg, "informational; serial backend: %s ns (%s x omp); thread/omp %.2f, process/omp %.0f", hz,
             hr, H[2].ok && H[4].ok ? H[2].med / H[4].med : 0.0, H[0].ok && H[4].ok ? H[0].med / H[4].med : 0.0);
  }
  prow("7. heat, 128x128 Jacobi, one sm_parallel per sweep in a time loop (ns/sweep)", &H[1], H[1].med, &H[2],
       H[2].med, &H[0], H[0].med, "omp parallel for reduction(max) per sweep", &H[4], H[4].med, tg);
  snprintf(tg, sizeof tg, "persistent <= 1.1x its time with an empty heap: %s; process: %.1fx its own",
           verdict(B[1].ok && S[5].ok, B[1].med, S[5].med, 1.1), B[0].ok && P[5].ok ? B[0].med / P[5].med : 0.0);
  prow("8. map of 2 trivial jobs, 2 GiB of private heap resident (ns/map)", &B[1], B[1].med, &B[2], B[2].med, &B[0],
       B[0].med, "persistent, empty heap (row 2b)", &S[5], S[5].med, tg);
  snprintf(tg, sizeof tg, "informational: that pool's sm_pool_new took %.1f ms (%.2f ms with an empty heap)",
           t_sp_heap * 1e3, t_sp * 1e3);
  prow("8'. as 8, on a persistent pool made with the 2 GiB resident (ns/map)", &B[3], B[3].med, &B[2], B[2].med,
       &B[0], B[0].med, "persistent, empty heap (row 2b)", &S[5], S[5].med, tg);
  printf("\nThe persistent pool's workers were forked once, at sm_pool_new, before the measures; every map and "
         "region above ran on them. Its 5c pool was made after the malloc'd array was filled (workers see ordinary "
         "memory as it was at sm_pool_new); 5d's array, in sm_empty memory, was allocated after the pool. Row 7: "
         "c-examples/heat.c's sweep (%dx%d grid, grids in sm_empty memory) with the time loop on the caller: every "
         "run starts from the initial grid and is checked against a serial computation of as many sweeps (checksum "
         "and residual, to the bit). Row 8: 2 GiB malloc'd and written by the caller after the pools were made; "
         "the process backend forks (copying its page tables) at every map, persistent pools do not.\n",
         HEAT_N, HEAT_N);

  printf("\nRun sizes and spread (ns per unit: median [min .. max], n = units per run):\n\n");
  for (int k = 0; k < NKINDS; k++) {
    const result_t *rs[3] = {&P[k], &T[k], &O[k]};
    const char *sn[3] = {"process", "thread", kinds[k] == K_MAP0 ? "omp parallel region" : "openmp"};
    for (int s = 0; s < 3; s++) {
      if ((kinds[k] == K_MAP2 || kinds[k] == K_REGION) && s == 2) continue; /* peer listed under K_MAP0 */
      if (rs[s]->ok && kinds[k] == K_PREDUCE)
        printf("- %s / %s: %.2f [%.2f .. %.2f] ns/job, n = %zu reductions of 10^7 jobs\n", kname[k], sn[s], rs[s]->med,
               rs[s]->min, rs[s]->max, rs[s]->n);
      else if (rs[s]->ok)
        printf("- %s / %s: %.1f [%.1f .. %.1f], n = %zu\n", kname[k], sn[s], rs[s]->med, rs[s]->min, rs[s]->max, rs[s]->n);
      else
        printf("- %s / %s: FAILED or not run\n", kname[k], sn[s]);
    }
  }
  if (FJ.ok) printf("- fork+waitpid x2: %.1f [%.1f .. %.1f], n = %zu\n", FJ.med, FJ.min, FJ.max, FJ.n);
  if (FJX.ok)
    printf("- fork+waitpid x2, 10^7-double array resident: %.1f [%.1f .. %.1f], n = %zu\n", FJX.med, FJX.min, FJX.max,
           FJX.n);
  const result_t *extra[7] = {&FJS, &PS, &TS, &OS, &FSS, &S[9], &SS};
  const char *extra_name[7] = {"hand-written fork", "process, sm_empty array", "thread, sm_empty array",
                               "openmp, sm_empty array", "hand-written fork, sm_empty array", "persistent",
                               "persistent, sm_empty array"};
  for (int e = 0; e < 7; e++)
    if (extra[e]->ok)
      printf("- parallel-for reduction of 10^7 jobs / %s: %.2f [%.2f .. %.2f] ns/job, n = %zu reductions of 10^7 jobs\n",
             extra_name[e], extra[e]->med, extra[e]->min, extra[e]->max, extra[e]->n);
  const char *kn[8] = {"trivial job", "trivial job + reduce", "critical", "ordered", "empty map njobs=0", "map njobs=2",
                       "per-worker reduce", "barrier"};
  for (int k = 0; k < 8; k++)
    if (S[k].ok) printf("- %s / persistent: %.1f [%.1f .. %.1f], n = %zu\n", kn[k], S[k].med, S[k].min, S[k].max, S[k].n);
  if (S[8].ok)
    printf("- empty sm_parallel region / persistent: %.1f [%.1f .. %.1f], n = %zu\n", S[8].med, S[8].min, S[8].max, S[8].n);
  const char *hn[5] = {"process", "persistent", "thread", "serial", "openmp"};
  for (int k = 0; k < 5; k++)
    if (H[k].ok) printf("- heat sweep / %s: %.1f [%.1f .. %.1f], n = %zu sweeps\n", hn[k], H[k].med, H[k].min, H[k].max, H[k].n);
  const char *bn[4] = {"process", "persistent", "thread", "persistent pool made with the heap"};
  for (int k = 0; k < 4; k++)
    if (B[k].ok)
      printf("- map njobs=2, 2 GiB resident / %s: %.1f [%.1f .. %.1f], n = %zu\n", bn[k], B[k].med, B[k].min, B[k].max,
             B[k].n);
  printf("\nTotal benchmark time: %.1f s.\n", elapsed);
  if (problems[0]) printf("\n### Problems\n\n%s", problems);
  else printf("\nNo problems: every sm_map and sm_parallel returned SM_OK and every result (sums, counters, order, per-job call counts) was correct.\n");

  sm_free(counter);
  sm_pool_free(pp);
  sm_pool_free(tp);
  sm_free(heat_grids);
  sm_free(shared);
  return problems[0] ? 2 : 0;
}
