/*
 * sm_mpi_map's rows of the MPI benchmark (issue 13), measured in the same way as its peers
 * (bench/mpi_peer.c, bench/mpi4py_peer.py): scripts/bench-mpi.sh runs all three and writes
 * bench/RESULTS-mpi.md.
 *
 *   dispatch    NJOBS trivial jobs on every rank, each rank's pool 1 thread worker:
 *                 dispatch_reduce    the peer's exact work: each job writes (double)(job % 8) into
 *                                    its 8-byte result, root's reduce sums them in job order, root
 *                                    checks the sum;
 *                 dispatch_noreduce  reduce NULL, result_size 0: hand-out alone;
 *                 dispatch_wlocal    sm_mpi_map_ex, wresult_size 8: jobs add job % 8 into
 *                                    sm_worker_local(), worker_reduce on root adds the per-worker
 *                                    sums (checked).
 *               ns per job.
 *   balance     jobs that sleep (the 2 CPUs do not limit), each rank's pool 2 thread workers:
 *                 balance_skewed     every job D = 2 ms, but a job that runs on rank 1 sleeps 10 D;
 *                                    ideal = sum(D) / (workers per rank x (ranks - 1 + 0.1));
 *                 balance_pareto     durations from a Pareto law (alpha 1.5, min 0.5 ms, capped at
 *                                    50 ms), deterministic from the job index;
 *                                    ideal = max(sum(d) / all workers, max d).
 *               efficiency = ideal / measured (1 is perfect).
 *   throughput  NTP jobs with 1 MiB results streamed to root, on ranks 0 and 1 only (a communicator
 *               split from MPI_COMM_WORLD; ranks 2.. wait in MPI_Barrier meanwhile, as the peer's
 *               idle ranks wait in MPI_Bcast), 1 thread worker each: each job writes its index
 *               into the first 8 bytes (the rest stays as sharedmem zeroed it), root's reduce
 *               checks it. MB/s = NTP x 1 MiB / time (throughput), and the part of it run on rank 1,
 *               whose results crossed from rank 1 to root (throughput_remote, over the same time).
 *
 *   mpirun -np 4 mpi_bench [NJOBS [all|dispatch|balance|throughput [NJOBS_THROUGHPUT]]]
 *   (NJOBS: dispatch's job count, 10^6 by default; NJOBS_THROUGHPUT 200 by default)
 *
 * Time: on root, from an MPI_Barrier just before the one sm_mpi_map call to its return, broadcast
 * to every rank; pools are created once, before any timing. Prints one line per measure,
 * "sm <name> <value> <unit> [min .. max]", the median of 5 runs after a warm-up, and "info" lines
 * with the details. Any wrong result aborts. A benchmark, not a test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "sharedmem_mpi.h"

#define RUNS 5

/* ---- helpers ---------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#define BENCH_NAME "mpi_bench"
#include "mpi_common.h"

/* Sorts v[RUNS] and prints "sm NAME median UNIT [min .. max]" on world rank 0. */
static void report(const char *name, double *v, const char *unit) {
  qsort(v, RUNS, sizeof v[0], cmp_double);
  if (world_rank == 0) {
    printf("sm %s %.4g %s [%.4g .. %.4g]\n", name, v[RUNS / 2], unit, v[0], v[RUNS - 1]);
    fflush(stdout);
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sleeps `seconds` and returns how long it really slept. The thread's timer slack is set to
 * 1 ns once (it is 50 us by default: a 2 ms sleep would overshoot by that much, which is the
 * stand-in job's fault, not the scheduling's). */
static double sleep_for(double seconds) {
  static __thread int slack_set;
  if (!slack_set) {
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    slack_set = 1;
  }
  double t0 = now();
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return now() - t0;
}

/* The context of every map: each rank's own. */
typedef struct {
  int rank;          /* the rank this ctx belongs to (in the map's communicator) */
  double sum;        /* dispatch: root's reduce / worker_reduce */
  size_t next;       /* reduce: the job expected next */
  size_t ran;        /* jobs run on this rank (atomic) */
  double slept;      /* balance: seconds slept by this rank's jobs (atomic add through a CAS) */
  double nominal;    /* balance: the nominal seconds of those jobs */
} bench_ctx;

static void add_double(double *p, double x) {
  uint64_t *bits = (uint64_t *)(void *)p;
  uint64_t o = __atomic_load_n(bits, __ATOMIC_RELAXED), w;
  do {
    double old, want;
    memcpy(&old, &o, 8);
    want = old + x;
    memcpy(&w, &want, 8);
  } while (!__atomic_compare_exchange_n(bits, &o, w, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

/* ---- 1. dispatch ------------------------------------------------------------------------ */

static double job_result(size_t job) { return (double)(job % 8); }

static int work_result(void *ctx, size_t job, void *result) {
  (void)ctx;
  *(double *)result = job_result(job);
  return 0;
}

static int reduce_sum(void *ctx_, size_t job, void *result) {
  bench_ctx *c = ctx_;
  (void)job;
  c->sum += *(double *)result;
  return 0;
}

static int work_nothing(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)job;
  (void)result;
  return 0;
}

static int work_local(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  *(double *)sm_worker_local() += job_result(job);
  return 0;
}

static int wreduce_sum(void *ctx_, int worker, void *wresult) {
  bench_ctx *c = ctx_;
  (void)worker;
  c->sum += *(double *)wresult;
  return 0;
}

enum { D_REDUCE, D_NOREDUCE, D_WLOCAL };

/* One dispatch run: seconds root measured, on every rank. */
static double dispatch(sm_pool *pool, size_t njobs, int variant, double want) {
  bench_ctx c;
  memset(&c, 0, sizeof c);
  c.rank = world_rank;
  sm_map_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.size = sizeof opts;
  opts.wresult_size = sizeof(double);
  opts.worker_reduce = wreduce_sum;

  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  sm_status s;
  if (variant == D_REDUCE)
    s = sm_mpi_map(pool, MPI_COMM_WORLD, 0, njobs, work_result, reduce_sum, sizeof(double), &c);
  else if (variant == D_NOREDUCE)
    s = sm_mpi_map(pool, MPI_COMM_WORLD, 0, njobs, work_nothing, NULL, 0, &c);
  else
    s = sm_mpi_map_ex(pool, MPI_COMM_WORLD, 0, njobs, work_local, NULL, 0, &c, &opts);
  double seconds = MPI_Wtime() - t0;
  check_status(s, "dispatch");
  if (world_rank == 0 && variant != D_NOREDUCE && c.sum != want)
    DIE("dispatch: sum %.17g, expected %.17g", c.sum, want);
  MPI_Bcast(&seconds, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return seconds;
}

static void run_dispatch(sm_pool *pool1, size_t njobs) {
  static const char *names[] = {"dispatch_reduce", "dispatch_noreduce", "dispatch_wlocal"};
  double want = 0;
  for (size_t j = 0; j < njobs; j++) want += job_result(j);
  for (int variant = D_REDUCE; variant <= D_WLOCAL; variant++) {
    double v[RUNS];
    dispatch(pool1, njobs, variant, want); /* warm-up */
    for (int r = 0; r < RUNS; r++) v[r] = dispatch(pool1, njobs, variant, want) / (double)njobs * 1e9;
    report(names[variant], v, "ns/job");
  }
}

/* ---- 2. load balance -------------------------------------------------------------------- */

#define SKEW_D 0.002     /* seconds, every job's base duration */
#define SKEW_SLOW_RANK 1 /* its jobs sleep SKEW_FACTOR x longer */
#define SKEW_FACTOR 10.0
#define SKEW_NJOBS 4000  /* ideal about 1.3 s with 4 ranks x 2 workers */

#define PARETO_ALPHA 1.5
#define PARETO_MIN 0.0005
#define PARETO_CAP 0.050
#define PARETO_NJOBS 8000 /* ideal about 1.35 s with 8 workers */

static uint64_t mix64(uint64_t x) { /* splitmix64's finalizer */
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static double pareto_duration(size_t job) {
  double u = ((double)(mix64(job) >> 11) + 1.0) / 9007199254740992.0; /* (0, 1] */
  double d = PARETO_MIN * pow(u, -1.0 / PARETO_ALPHA);
  return d < PARETO_CAP ? d : PARETO_CAP;
}

static void account(bench_ctx *c, double nominal, double slept) {
  __atomic_fetch_add(&c->ran, 1, __ATOMIC_RELAXED);
  add_double(&c->nominal, nominal);
  add_double(&c->slept, slept);
}

static int work_skewed(void *ctx, size_t job, void *result) {
  bench_ctx *c = ctx;
  (void)job;
  (void)result;
  double d = c->rank == SKEW_SLOW_RANK ? SKEW_D * SKEW_FACTOR : SKEW_D;
  account(c, d, sleep_for(d));
  return 0;
}

static int work_pareto(void *ctx, size_t job, void *result) {
  bench_ctx *c = ctx;
  (void)result;
  double d = pareto_duration(job);
  account(c, d, sleep_for(d));
  return 0;
}

/* One balance run: the seconds root measured (on every rank); *overshoot gets the mean time a
 * job slept beyond its nominal duration, over all ranks' jobs (seconds). */
static double balance(sm_pool *pool, size_t njobs, sm_work_fn work, double *overshoot) {
  bench_ctx c;
  memset(&c, 0, sizeof c);
  c.rank = world_rank;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  sm_status s = sm_mpi_map(pool, MPI_COMM_WORLD, 0, njobs, work, NULL, 0, &c);
  double seconds = MPI_Wtime() - t0;
  check_status(s, "balance");
  MPI_Bcast(&seconds, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  double mine[3] = {(double)c.ran, c.slept, c.nominal}, all[3];
  MPI_Allreduce(mine, all, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  if (all[0] != (double)njobs) DIE("balance: %.0f jobs ran, %zu expected", all[0], njobs);
  *overshoot = (all[1] - all[2]) / all[0];
  return seconds;
}

static void run_balance(sm_pool *pool2) {
  int workers = sm_pool_nworkers(pool2);
  double v[RUNS], secs[RUNS], over[RUNS], o;

  /* skewed: ranks other than SKEW_SLOW_RANK run at speed 1, that one at 1 / SKEW_FACTOR */
  double capacity = world_size > SKEW_SLOW_RANK ? workers * ((world_size - 1) + 1.0 / SKEW_FACTOR)
                                                : (double)workers * world_size;
  double ideal = SKEW_NJOBS * SKEW_D / capacity;
  balance(pool2, SKEW_NJOBS, work_skewed, &o); /* warm-up */
  for (int r = 0; r < RUNS; r++) {
    secs[r] = balance(pool2, SKEW_NJOBS, work_skewed, &over[r]);
    v[r] = ideal / secs[r];
  }
  qsort(secs, RUNS, sizeof secs[0], cmp_double);
  qsort(over, RUNS, sizeof over[0], cmp_double);
  if (world_rank == 0)
    printf("info balance_skewed njobs %d D %.3g ms rank %d x%.0f, %d ranks x %d workers: ideal %.4g s, "
           "measured %.4g s (median), sleep overshoot %.3g us per job (median)\n",
           SKEW_NJOBS, SKEW_D * 1e3, SKEW_SLOW_RANK, SKEW_FACTOR, world_size, workers, ideal,
           secs[RUNS / 2], over[RUNS / 2] * 1e6);
  report("balance_skewed", v, "efficiency");

  /* Pareto */
  double sum = 0, max = 0;
  for (size_t j = 0; j < PARETO_NJOBS; j++) {
    double d = pareto_duration(j);
    sum += d;
    if (d > max) max = d;
  }
  double total_workers = (double)workers * world_size;
  ideal = sum / total_workers > max ? sum / total_workers : max;
  balance(pool2, PARETO_NJOBS, work_pareto, &o); /* warm-up */
  for (int r = 0; r < RUNS; r++) {
    secs[r] = balance(pool2, PARETO_NJOBS, work_pareto, &over[r]);
    v[r] = ideal / secs[r];
  }
  qsort(secs, RUNS, sizeof secs[0], cmp_double);
  qsort(over, RUNS, sizeof over[0], cmp_double);
  if (world_rank == 0)
    printf("info balance_pareto njobs %d alpha %.2g min %.3g ms cap %.3g ms, sum %.4g s, max %.4g ms, "
           "%d ranks x %d workers: ideal %.4g s, measured %.4g s (median), sleep overshoot %.3g us "
           "per job (median)\n",
           PARETO_NJOBS, PARETO_ALPHA, PARETO_MIN * 1e3, PARETO_CAP * 1e3, sum, max * 1e3, world_size,
           workers, ideal, secs[RUNS / 2], over[RUNS / 2] * 1e6);
  report("balance_pareto", v, "efficiency");
}

/* ---- 3. throughput ---------------------------------------------------------------------- */

#define TP_RESULT ((size_t)1 << 20)
#define TP_NJOBS 200 /* the default; a third argument changes it */
static size_t tp_njobs = TP_NJOBS;

static int work_big(void *ctx, size_t job, void *result) {
  bench_ctx *c = ctx;
  uint64_t j = job;
  memcpy(result, &j, sizeof j);
  __atomic_fetch_add(&c->ran, 1, __ATOMIC_RELAXED);
  return 0;
}

static int reduce_big(void *ctx_, size_t job, void *result) {
  bench_ctx *c = ctx_;
  uint64_t j;
  memcpy(&j, result, sizeof j);
  if (j != job || job != c->next) {
    fprintf(stderr, "mpi_bench: throughput: result of job %zu holds %llu (expected job %zu)\n", job,
            (unsigned long long)j, c->next);
    return 1; /* stops the map: checked by the caller */
  }
  c->next++;
  return 0;
}

/* One throughput run on `comm` (ranks 0 and 1): seconds root measured, and *remote the jobs that
 * ran on rank 1 (on every rank of comm). */
static double throughput(sm_pool *pool, MPI_Comm comm, size_t njobs, size_t *remote) {
  bench_ctx c;
  memset(&c, 0, sizeof c);
  MPI_Comm_rank(comm, &c.rank);
  MPI_Barrier(comm);
  double t0 = MPI_Wtime();
  sm_status s = sm_mpi_map(pool, comm, 0, njobs, work_big, reduce_big, TP_RESULT, &c);
  double seconds = MPI_Wtime() - t0;
  check_status(s, "throughput");
  if (c.rank == 0 && c.next != njobs) DIE("throughput: %zu results reduced, %zu expected", c.next, njobs);
  double out[2] = {seconds, (double)(njobs - c.ran)}; /* root: the jobs it did not run */
  MPI_Bcast(out, 2, MPI_DOUBLE, 0, comm);
  *remote = (size_t)out[1];
  return out[0];
}

static void run_throughput(sm_pool *pool1) {
  if (world_size < 2) return;
  MPI_Comm comm;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank < 2 ? 0 : MPI_UNDEFINED, world_rank, &comm);
  double v[RUNS], vr[RUNS], share[RUNS];
  if (comm != MPI_COMM_NULL) {
    size_t remote;
    throughput(pool1, comm, tp_njobs / 10 + 1, &remote); /* warm-up */
    for (int r = 0; r < RUNS; r++) {
      double seconds = throughput(pool1, comm, tp_njobs, &remote);
      v[r] = (double)TP_RESULT * (double)tp_njobs / seconds / 1e6;
      vr[r] = (double)TP_RESULT * (double)remote / seconds / 1e6;
      share[r] = (double)remote / (double)tp_njobs;
    }
    MPI_Comm_free(&comm);
  }
  MPI_Barrier(MPI_COMM_WORLD); /* ranks 2.. wait here meanwhile */
  if (world_rank < 2) {
    qsort(share, RUNS, sizeof share[0], cmp_double);
    if (world_rank == 0)
      printf("info throughput ranks 2 (0 and 1 of %d; the others wait in MPI_Barrier), njobs %zu, "
             "result %zu bytes, share of results run on rank 1 %.2f (median) [%.2f .. %.2f]\n",
             world_size, tp_njobs, TP_RESULT, share[RUNS / 2], share[0], share[RUNS - 1]);
    report("throughput", v, "MB/s");
    report("throughput_remote", vr, "MB/s");
  }
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  long long n = argc > 1 ? atoll(argv[1]) : 1000000;
  const char *only = argc > 2 ? argv[2] : "all";
  long long ntp = argc > 3 ? atoll(argv[3]) : TP_NJOBS;
  if (n < 1 || ntp < 1) {
    if (world_rank == 0)
      fprintf(stderr, "usage: mpi_bench [NJOBS [all|dispatch|balance|throughput [NJOBS_THROUGHPUT]]]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  tp_njobs = (size_t)ntp;
  if (provided < MPI_THREAD_FUNNELED) DIE("MPI provides thread level %d, below MPI_THREAD_FUNNELED", provided);

  /* pools once, outside every timed region */
  sm_pool *pool1 = sm_pool_new(1, SM_BACKEND_THREAD);
  sm_pool *pool2 = sm_pool_new(2, SM_BACKEND_THREAD);
  if (!pool1 || !pool2) DIE("sm_pool_new: %s", sm_last_error());

  if (world_rank == 0) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;
    MPI_Get_library_version(version, &len);
    char *nl = strchr(version, '\n');
    if (nl) *nl = 0;
    printf("mpi %s\nsharedmem %s\nranks %d\nnjobs %lld\n", version, SM_VERSION_STRING, world_size, n);
    fflush(stdout);
  }
  int all = strcmp(only, "all") == 0;
  if (all || strcmp(only, "dispatch") == 0) run_dispatch(pool1, (size_t)n);
  if (all || strcmp(only, "balance") == 0) run_balance(pool2);
  if (all || strcmp(only, "throughput") == 0) run_throughput(pool1);

  sm_pool_free(pool1);
  sm_pool_free(pool2);
  MPI_Finalize();
  return 0;
}
