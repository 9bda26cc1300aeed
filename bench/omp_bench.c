/* sharedmem benchmark, row 6 (issue 11): jobs that each run an OpenMP loop.
 *
 * 2 workers x NJOBS jobs, each job LOOPS short `omp parallel for reduction` loops of M elements,
 * on a machine with C CPUs. Systems, interleaved (round-robin, rotating start), median of RUNS runs each:
 *   - sharedmem (process and thread backends) with the default inner_threads (at most C / 2
 *     OpenMP threads per worker),
 *   - the same with inner_threads = -1 (the runtimes left alone: each worker's loop asks for
 *     OMP_NUM_THREADS threads, so 2 workers oversubscribe the CPUs),
 *   - the peer: one `omp parallel for` over the jobs, each job on one thread (what the CPUs can do).
 * Every run checks every job's sum. Prints a markdown section for bench/RESULTS.md (scripts/bench.sh
 * appends it). Exit 0 = complete and correct, 1 = could not run or a result was wrong. */
#define _GNU_SOURCE 1
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sharedmem.h>

#define NJOBS 16
#define LOOPS 400 /* OpenMP loops per job: iterative numerical code runs many short ones */
#define M 5000L   /* elements per loop */
#define RUNS 5
#define NSYS 5

static double *sums; /* sm_empty: one per job */

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double job_sum(long job) {
  double total = 0;
  for (int l = 0; l < LOOPS; l++) {
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (long i = 0; i < M; i++) s += sqrt((double)(i + job + l));
    total += s;
  }
  return total;
}

/* the same job on one thread (the peer's and the reference's) */
static double job_sum_serial(long job) {
  double total = 0;
  for (int l = 0; l < LOOPS; l++) {
    double s = 0;
    for (long i = 0; i < M; i++) s += sqrt((double)(i + job + l));
    total += s;
  }
  return total;
}

static int work(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  sums[job] = job_sum((long)job);
  return 0;
}

/* the reference sums, computed once serially in the same order as a one-thread team would */
static double expected[NJOBS];

static int check(const double *got, const char *who) {
  for (int j = 0; j < NJOBS; j++)
    if (fabs(got[j] - expected[j]) > 1e-9 * fabs(expected[j])) {
      fprintf(stderr, "%s: job %d sum %.17g, expected %.17g\n", who, j, got[j], expected[j]);
      return 0;
    }
  return 1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(void) {
  cpu_set_t set;
  int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  sums = sm_empty(NJOBS, sizeof(double));
  if (!sums) {
    fprintf(stderr, "sm_empty: %s\n", sm_last_error());
    return 1;
  }
  for (int j = 0; j < NJOBS; j++) expected[j] = job_sum_serial(j);
  sm_pool *pools[2] = {sm_pool_new(2, SM_BACKEND_PROCESS), sm_pool_new(2, SM_BACKEND_THREAD)};
  if (!pools[0] || !pools[1]) {
    fprintf(stderr, "sm_pool_new: %s\n", sm_last_error());
    return 1;
  }
  const char *names[NSYS] = {
      "sharedmem process, default inner_threads", "sharedmem process, inner_threads = -1",
      "sharedmem thread, default inner_threads", "sharedmem thread, inner_threads = -1",
      "one omp parallel for over the jobs (peer)"};
  double t[NSYS][RUNS];
  int ok = 1;
  for (int r = -1; r < RUNS; r++) { /* run -1: warm-up */
    for (int k = 0; k < NSYS; k++) {
      int s = (k + (r < 0 ? 0 : r)) % NSYS;
      memset(sums, 0, NJOBS * sizeof(double));
      double t0 = now_sec();
      if (s < 4) {
        sm_map_opts o;
        memset(&o, 0, sizeof o);
        o.size = sizeof o;
        o.inner_threads = s % 2 ? -1 : 0;
        if (sm_map_ex(pools[s / 2], NJOBS, work, NULL, 0, NULL, &o) != SM_OK) {
          fprintf(stderr, "%s: %s\n", names[s], sm_last_error());
          return 1;
        }
      } else {
        /* the peer: one OpenMP loop over the jobs, each job on one thread */
#pragma omp parallel for schedule(static)
        for (long j = 0; j < NJOBS; j++) sums[j] = job_sum_serial(j);
      }
      double dt = now_sec() - t0;
      ok &= check(sums, names[s]);
      if (r >= 0) t[s][r] = dt;
    }
  }
  double med[NSYS];
  for (int s = 0; s < NSYS; s++) {
    qsort(t[s], RUNS, sizeof(double), cmp_double);
    med[s] = t[s][RUNS / 2];
  }
  printf("\n## 6. Jobs that run an OpenMP loop (issue 11)\n\n");
  printf("2 workers x %d jobs; each job runs %d loops `omp parallel for reduction(+:s)` of %ld square roots "
         "(iterative code: many short loops). Peer: one `omp parallel for` over the jobs, each job's loops on "
         "one thread. %d CPUs; OMP_NUM_THREADS=%s; libgomp. Median of %d runs (interleaved, rotating start) "
         "after a warm-up; every job's sum checked in every run.\n\n",
         NJOBS, LOOPS, M, cpus, getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "(unset)", RUNS);
  printf("| system | time per map (ms) | vs the peer | vs inner_threads = -1 |\n|---|---|---|---|\n");
  for (int s = 0; s < NSYS; s++) {
    printf("| %s | %.1f | %.2f |", names[s], med[s] * 1e3, med[s] / med[4]);
    if (s < 4 && s % 2 == 0)
      printf(" %.2f (%.2fx faster) |\n", med[s] / med[s + 1], med[s + 1] / med[s]);
    else
      printf(" |\n");
  }
  printf("\nDefault inner_threads gives each worker max(1, %d / 2) OpenMP threads; -1 leaves libgomp at "
         "OMP_NUM_THREADS threads per worker, %d threads on %d CPUs. Lower is better.\n",
         cpus, 2 * omp_get_max_threads(), cpus);
  sm_pool_free(pools[0]);
  sm_pool_free(pools[1]);
  sm_free(sums);
  return ok ? 0 : 1;
}
