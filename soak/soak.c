/*
 * Soak test of sharedmem (issue 6): random maps for N minutes, every result checked exactly.
 *
 *   soak MINUTES [SEED [INDEX]]      (scripts/soak.sh MINUTES builds and runs it)
 *
 * Each round picks, from (SEED, round index), a random map: backend (process / persistent /
 * thread / serial), 1-6 workers, 0-5000 jobs, results of 0-4096 bytes, with or without reduce, and
 * up to two events at random jobs: SM_STOP, a job error, reduce stopping, and on the backends whose
 * workers are processes (process, persistent) a worker killed inside a job (SIGKILL, SIGSEGV,
 * abort() or _exit). Jobs use critical and ordered sections at random. Some rounds are sm_map_ex
 * with a chunk size and per-worker state combined by worker_reduce, some of them with a ctx copied
 * for the workers (ctx_size), and some are sm_parallel regions with work-shared loops, barriers,
 * singles and failing or dying members.
 *
 * Persistent workers see the caller's ordinary memory as it was at sm_pool_new, so everything
 * jobs and regions read is in sm_empty memory (the round, R, and the pool it runs on) or in the
 * copied ctx; the pools array itself changes when pools are made anew and must not be read there.
 *
 * Checked, for every round: the status; the message naming the job (or worker), the code or the
 * signal; which jobs were reduced (exactly 0..k-1 for a failure at job k, 0..k for a stop at k),
 * in order, each with the exact bytes its job wrote; that every job before the first event ran
 * exactly once and no job ran twice; mutual exclusion of critical sections and the job order of
 * ordered sections; per-worker results; in regions, every loop iteration exactly once and every
 * single in exactly one worker; no child process left after the call (the live zygotes of the
 * persistent pools left out). On a persistent pool also: jobs ran in that pool's workers (children
 * of its zygote), none of which is a zombie or beyond the pool's count after the call, and a call
 * that lost no worker ran on the same worker processes as the pool's previous one (they persist).
 * At the end, with the same pools alive as at the start: open file descriptors, memory mappings and
 * threads did not grow; after sm_pool_free of every pool, no child process is left. Prints the
 * rounds by outcome; exits 1 on the first mismatch (printing the seed and round to rerun it alone:
 * `soak 0 SEED INDEX`).
 *
 * Written in C against include/sharedmem.h, like the library's users; the C test suite's
 * tests/c covers each feature alone, this program their random combinations, at length.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The C tests' helpers (tests/c/testutil.h: /proc scans, pools, sm_empty, map options); its
 * directory is on the include path (scripts/soak.sh). It includes sharedmem.h. */
#include "testutil.h"

#define MAX_JOBS 5000
#define MAX_RESULT 4096
#define MAX_WORKERS 6
#define LOOP_MAX 3000
#define NLOOPS 3

/* ------------------------------------------------------------------ random */

static uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct {
  uint64_t s;
} rng_t;

static uint64_t rnext(rng_t *r) { return mix64(r->s++ * 0x2545F4914F6CDD1Dull); }
static uint64_t below(rng_t *r, uint64_t n) { return n ? rnext(r) % n : 0; }
static int chance(rng_t *r, unsigned percent) { return below(r, 100) < percent; }

/* ------------------------------------------------------------------ the round being run */

enum { EV_NONE, EV_STOP, EV_ERROR, EV_KILL, EV_REDUCE_STOP };
enum { KILL_SIGKILL, KILL_SIGSEGV, KILL_ABORT, KILL_EXIT };
static const char *ev_names[] = {"none", "SM_STOP", "job error", "worker kill", "reduce stop"};
static const char *kill_names[] = {"SIGKILL", "SIGSEGV", "abort()", "_exit(3)"};
/* Indexed by sm_backend. */
#define NBACKENDS 4
static const char *backend_names[NBACKENDS] = {"process", "thread", "serial", "persistent"};

typedef struct {
  /* plan */
  uint64_t key; /* per-round value salt */
  int backend, nworkers, serial_like;
  size_t njobs, result_size;
  int with_reduce, ex, chunk, region;
  size_t ev_job[2];
  int ev_kind[2], ev_code[2], ev_kill[2];
  unsigned crit_pct, ord_pct, spin_pct;
  /* region plan */
  size_t loop_n[NLOOPS];
  int loop_sched[NLOOPS], loop_chunk[NLOOPS], loop_flags[NLOOPS];
  int singles;
  int rfail_worker, rfail_at, rfail_kind, rfail_code;
  int local; /* the region counts its iterations in per-worker results (sm_parallel_ex) */
  sm_pool *pool;     /* the pool the round runs on, for critical/ordered/loops in its workers */
  pid_t zygote;      /* on a persistent pool, its zygote: the parent of every worker */
  int copy_ctx;      /* sm_map_ex / sm_parallel_ex with a ctx_t on the caller's stack, copied */
  const void *caller_ctx;
  /* observations (shared with process workers: this lives in sm_empty memory) */
  unsigned runs[MAX_JOBS];
  size_t next_reduce;
  int reduce_bad, reduce_bad_job;
  volatile long crit_counter;
  long crit_runs;
  long ord_last;
  int ord_bad;
  uint64_t wsum[MAX_WORKERS];
  uint64_t wcount[MAX_WORKERS];
  int winit[MAX_WORKERS];
  int wreduce_calls, wreduce_bad, wreduce_last;
  uint64_t wtotal_sum, wtotal_count;
  int id_bad;
  unsigned hits[NLOOPS][LOOP_MAX];
  int ordered_next[NLOOPS];
  int region_bad;
  unsigned single_count[8];
  int ctx_bad;
} round_t;

/* The ctx of the rounds that pass one by copy (sm_map_opts.ctx_size): it lives on the caller's
 * stack, which persistent workers could not read, and carries the pool the workers must use. */
typedef struct {
  sm_pool *pool;
  uint64_t key;
} ctx_t;

static round_t *R;  /* sm_empty memory */
static sm_pool *pools[NBACKENDS][MAX_WORKERS + 1];
static uint64_t seed;
static uint64_t round_index;
static char desc[1024];

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "\nsoak: MISMATCH in round %" PRIu64 " (rerun alone: soak 0 %" PRIu64 " %" PRIu64
                  ")\n  round: %s\n  ",
          round_index, seed, round_index, desc);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n  sm_last_error(): %s\n", sm_last_error());
  va_end(ap);
  exit(1);
}

static uint64_t value(size_t job) { return mix64(R->key ^ (job * 0x9E3779B97F4A7C15ull)); }

static unsigned char result_byte(size_t job, size_t i) {
  return (unsigned char)((value(job) >> (8 * (i % 8))) ^ (i * 131u));
}

static int job_flag(size_t job, int salt, unsigned pct) {
  return pct && mix64(R->key + (uint64_t)salt * 1000003u + job) % 100 < pct;
}

static void spin(size_t job) {
  if (job_flag(job, 3, R->spin_pct)) {
    volatile uint64_t x = 0;
    for (unsigned i = 0; i < 200 + mix64(job) % 2000; i++) x += i;
  }
}

/* In a worker (job, region, worker_init, worker_fini): the pool of the round, from the copied ctx
 * when there is one, which must be a 64-byte aligned copy of the caller's, not the caller's own. */
static sm_pool *worker_pool(void *ctx) {
  if (!R->copy_ctx) {
    if (ctx) R->ctx_bad = 1;
    return R->pool;
  }
  const ctx_t *c = ctx;
  if (!c || c == R->caller_ctx || (uintptr_t)c % 64 || c->key != R->key || c->pool != R->pool) {
    R->ctx_bad = 2;
    return R->pool;
  }
  return c->pool;
}

/* On the caller (reduce, worker_reduce): the caller's own ctx. */
static void caller_ctx_check(void *ctx) {
  if (ctx != (R->copy_ctx ? R->caller_ctx : NULL)) R->ctx_bad = 3;
}

/* ------------------------------------------------------------------ jobs */

static void die(int how) {
  switch (how) {
    case KILL_SIGKILL: raise(SIGKILL); break;
    case KILL_SIGSEGV: raise(SIGSEGV); break;
    case KILL_ABORT: abort();
    default: _exit(3);
  }
}

static int work(void *ctx, size_t job, void *result) {
  sm_pool *pool = worker_pool(ctx);
  if (R->zygote && getppid() != R->zygote) R->id_bad = 300;
  if (__atomic_fetch_add(&R->runs[job], 1, __ATOMIC_SEQ_CST) != 0) R->id_bad = 1000000 + (int)job;
  int w = sm_worker_id();
  int limit = R->serial_like ? 1 : R->nworkers;
  if (w < 0 || w >= limit) R->id_bad = 1 + w;
  spin(job);
  if (job_flag(job, 1, R->crit_pct)) {
    if (sm_critical_enter(pool) != SM_OK) R->id_bad = -2;
    long c = R->crit_counter;
    spin(job);
    R->crit_counter = c + 1;
    R->crit_runs++;
    sm_critical_leave(pool);
  }
  if (job_flag(job, 2, R->ord_pct)) {
    if (sm_ordered_enter(pool) != SM_OK) {
      R->ord_bad = 1;
    } else {
      if (R->ord_last >= (long)job) R->ord_bad = 2;
      R->ord_last = (long)job;
      sm_ordered_leave(pool);
    }
  }
  unsigned char *r = result;
  for (size_t i = 0; i < R->result_size; i++) r[i] = result_byte(job, i);
  if (R->ex && w >= 0 && w < MAX_WORKERS) {
    R->wsum[w] += value(job);
    R->wcount[w]++;
  }
  for (int e = 0; e < 2; e++) {
    if (R->ev_job[e] != job) continue;
    switch (R->ev_kind[e]) {
      case EV_STOP: return SM_STOP;
      case EV_ERROR: return R->ev_code[e];
      case EV_KILL: die(R->ev_kill[e]); break;
      default: break;
    }
  }
  return 0;
}

static int reduce(void *ctx, size_t job, void *result) {
  caller_ctx_check(ctx);
  if (job != R->next_reduce && !R->reduce_bad) {
    R->reduce_bad = 1;
    R->reduce_bad_job = (int)job;
  }
  R->next_reduce = job + 1;
  const unsigned char *r = result;
  if (R->result_size == 0 && result != NULL && !R->reduce_bad) R->reduce_bad = 2;
  for (size_t i = 0; i < R->result_size; i++)
    if (r[i] != result_byte(job, i)) {
      if (!R->reduce_bad) {
        R->reduce_bad = 3;
        R->reduce_bad_job = (int)job;
      }
      break;
    }
  for (int e = 0; e < 2; e++)
    if (R->ev_kind[e] == EV_REDUCE_STOP && R->ev_job[e] == job) return R->ev_code[e];
  return 0;
}

typedef struct {
  uint64_t count, sum;
} wres_t;

static int worker_init(void *ctx, int w) {
  worker_pool(ctx);
  if (w < 0 || w >= MAX_WORKERS || w != sm_worker_id()) {
    R->id_bad = 100 + w;
    return 0;
  }
  R->wsum[w] = 0;
  R->wcount[w] = 0;
  __atomic_fetch_add(&R->winit[w], 1, __ATOMIC_SEQ_CST);
  return 0;
}

static int worker_fini(void *ctx, int w, void *wresult) {
  worker_pool(ctx);
  wres_t *x = wresult;
  if (x->count || x->sum) R->id_bad = 200 + w;
  x->count = R->wcount[w];
  x->sum = R->wsum[w];
  return 0;
}

static int worker_reduce(void *ctx, int w, void *wresult) {
  caller_ctx_check(ctx);
  const wres_t *x = wresult;
  if (w <= R->wreduce_last) R->wreduce_bad = 1;
  R->wreduce_last = w;
  R->wreduce_calls++;
  R->wtotal_count += x->count;
  R->wtotal_sum += x->sum;
  return 0;
}

/* ------------------------------------------------------------------ regions */

static int region(void *ctx) {
  sm_pool *p = worker_pool(ctx);
  if (R->zygote && getppid() != R->zygote) R->region_bad = 7;
  int me = sm_worker_id(), team = sm_num_workers();
  int expect = R->serial_like ? 1 : R->nworkers;
  if (team != expect || me < 0 || me >= team) R->region_bad = 1;
  wres_t *mine = sm_worker_local();
  if ((mine != NULL) != R->local || (mine && (mine->count || mine->sum))) R->region_bad = 6;
  int step = 0;
#define MAYBE_FAIL()                                                   \
  do {                                                                 \
    if (me == R->rfail_worker && step == R->rfail_at) {                \
      if (R->rfail_kind == EV_KILL) die(KILL_SIGKILL);                 \
      return R->rfail_kind == EV_STOP ? SM_STOP : R->rfail_code;       \
    }                                                                  \
    step++;                                                            \
  } while (0)
  for (int l = 0; l < NLOOPS; l++) {
    MAYBE_FAIL();
    size_t lo, hi;
    while (sm_for_next(p, 0, R->loop_n[l], (sm_schedule)R->loop_sched[l], (size_t)R->loop_chunk[l],
                       R->loop_flags[l], &lo, &hi)) {
      if (lo >= hi || hi > R->loop_n[l]) R->region_bad = 2;
      for (size_t i = lo; i < hi && i < LOOP_MAX; i++) {
        if (__atomic_fetch_add(&R->hits[l][i], 1, __ATOMIC_SEQ_CST) != 0) R->region_bad = 3;
        if (mine) {
          mine->count++;
          mine->sum += value(i);
        }
        if (R->loop_flags[l] & SM_FOR_ORDERED) {
          if (sm_ordered_enter(p) == SM_OK) {
            if (R->ordered_next[l] > (int)i) R->region_bad = 4;
            R->ordered_next[l] = (int)i + 1;
            sm_ordered_leave(p);
          }
        }
      }
    }
    MAYBE_FAIL();
    if (sm_barrier(p) != SM_OK) return 0; /* the region is being stopped */
    /* After the barrier, every iteration of the loop is done (nowait or not). */
    unsigned total = 0;
    for (size_t i = 0; i < R->loop_n[l]; i++) total += __atomic_load_n(&R->hits[l][i], __ATOMIC_SEQ_CST);
    if (total != R->loop_n[l]) R->region_bad = 5;
  }
  for (int s = 0; s < R->singles; s++) {
    MAYBE_FAIL();
    if (sm_single(p) == 1) __atomic_fetch_add(&R->single_count[s], 1, __ATOMIC_SEQ_CST);
  }
  if (sm_critical_enter(p) == SM_OK) {
    long c = R->crit_counter;
    R->crit_counter = c + 1;
    R->crit_runs++;
    sm_critical_leave(p);
  }
  if (sm_master() != (me == 0)) R->region_bad = 6;
  MAYBE_FAIL();
  return 0;
#undef MAYBE_FAIL
}

/* ------------------------------------------------------------------ checks */

static int names_number(const char *msg, const char *word, long n) {
  char pat[64];
  snprintf(pat, sizeof pat, "%s %ld", word, n);
  for (const char *p = msg; (p = strstr(p, pat)) != NULL; p++) {
    char next = p[strlen(pat)];
    if (next < '0' || next > '9') return 1;
  }
  return 0;
}

/* A /proc scan, not waitpid(-1): the persistent pools' zygotes are children that must stay, and
 * must not be reaped from under the library. */
static void check_no_children(const char *what) {
  int zombies = 0, n = count_children(&zombies);
  if (n != 0 || zombies != 0)
    fail("%s: %d child process(es) (%d zombies) remain after the call (live pool zygotes left out)", what, n,
         zombies);
}

/* The persistent pools' zygotes (by worker count), and the worker pids each pool had after its
 * last call that ran, or -1 workers when unknown (a worker may have died since). */
static pid_t zygotes[MAX_WORKERS + 1];
static pid_t residents[MAX_WORKERS + 1][MAX_WORKERS];
static int nresidents[MAX_WORKERS + 1];

static int cmp_pid(const void *a, const void *b) {
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return (x > y) - (x < y);
}

/* The live children of `parent`, sorted, into pids[0..max); returns how many there are (may be
 * more than max); *zombies gets the zombies, which are not in pids. Live zygotes are left out. */
static int children_of(pid_t parent, pid_t *pids, int max, int *zombies) {
  DIR *d = opendir("/proc");
  if (!d) fail("opendir /proc: %s", strerror(errno));
  int n = 0;
  *zombies = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    pid_t pid = (pid_t)atoi(e->d_name), pp = 0;
    if (pid <= 0) continue;
    char st = proc_state(pid, &pp);
    if (!st || pp != parent) continue;
    if (st == 'Z') {
      (*zombies)++;
    } else if (!is_pool_zygote(pid)) {
      if (n < max) pids[n] = pid;
      n++;
    }
  }
  closedir(d);
  qsort(pids, (size_t)(n < max ? n : max), sizeof *pids, cmp_pid);
  return n;
}

/* Makes a pool; for a persistent one, finds its zygote: the one live zygote child not yet known. */
static sm_pool *make_pool(int nworkers, int backend) {
  sm_pool *p = new_pool(nworkers, (sm_backend)backend);
  if (backend != SM_BACKEND_PERSISTENT) return p;
  zygotes[nworkers] = 0;
  nresidents[nworkers] = -1;
  DIR *d = opendir("/proc");
  if (!d) fail("opendir /proc: %s", strerror(errno));
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    pid_t pid = (pid_t)atoi(e->d_name), pp = 0;
    if (pid <= 0 || !proc_state(pid, &pp) || pp != getpid() || !is_pool_zygote(pid)) continue;
    int known = 0;
    for (int n = 1; n <= MAX_WORKERS; n++) known |= zygotes[n] == pid;
    if (!known) {
      if (zygotes[nworkers]) fail("sm_pool_new(%d, persistent) made two zygotes: %d and %d", nworkers, zygotes[nworkers], pid);
      zygotes[nworkers] = pid;
    }
  }
  closedir(d);
  if (!zygotes[nworkers]) fail("sm_pool_new(%d, persistent): no new live sm-zygote child", nworkers);
  return p;
}

/* After a call on a persistent pool: its zygote lives, it has no zombie and no more workers than
 * the pool; and unless a worker may have died, every worker is there (a call that runs replaces
 * the dead) and, after a call that ran, they are the same processes as after the previous one. */
static void check_residents(const char *what, int ran, int may_have_died) {
  int n = R->nworkers, zombies = 0;
  pid_t pp = 0, now[MAX_WORKERS];
  char st = proc_state(R->zygote, &pp);
  if (!st || st == 'Z' || pp != getpid())
    fail("%s: the pool's zygote %d is gone (state %c, parent %d)", what, (int)R->zygote, st ? st : '-', (int)pp);
  int live = children_of(R->zygote, now, MAX_WORKERS, &zombies);
  if (zombies) fail("%s: %d worker(s) of the pool are zombies after the call", what, zombies);
  if (live > n) fail("%s: the pool of %d has %d workers after the call", what, n, live);
  if (may_have_died) {
    nresidents[n] = -1;
    return;
  }
  if (ran && live != n) fail("%s: the pool of %d has %d workers after a call that lost none", what, n, live);
  if (nresidents[n] >= 0 &&
      (live != nresidents[n] || memcmp(now, residents[n], (size_t)live * sizeof *now) != 0))
    fail("%s: the pool's workers are not the processes it had after its previous call (%d then, %d now)", what,
         nresidents[n], live);
  if (ran) {
    memcpy(residents[n], now, (size_t)live * sizeof *now);
    nresidents[n] = live;
  }
}

static long status_field(const char *name) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  size_t len = strlen(name);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, name, len) == 0 && line[len] == ':') v = atol(line + len + 1);
  fclose(f);
  return v;
}

typedef struct {
  long fds, maps, threads, vm_kb;
} usage_t;

static usage_t usage(void) {
  usage_t u = {count_dir_entries("/proc/self/fd"), count_map_lines(), status_field("Threads"),
               status_field("VmSize")};
  return u;
}

/* ------------------------------------------------------------------ one round */

enum { OUT_OK, OUT_STOPPED, OUT_JOB, OUT_DIED, OUT_NKINDS };
static const char *out_names[] = {"SM_OK", "SM_STOPPED", "SM_ERR_JOB", "SM_ERR_WORKER_DIED"};
static uint64_t counts[2][NBACKENDS][OUT_NKINDS]; /* [map=0/region=1][backend][outcome] */
static uint64_t ex_rounds, reduce_rounds, kill_rounds, jobs_total, dropped_worker_results;

static int out_index(sm_status s) {
  switch (s) {
    case SM_OK: return OUT_OK;
    case SM_STOPPED: return OUT_STOPPED;
    case SM_ERR_JOB: return OUT_JOB;
    case SM_ERR_WORKER_DIED: return OUT_DIED;
    default: return -1;
  }
}

static size_t pick_njobs(rng_t *r) {
  switch (below(r, 10)) {
    case 0: return below(r, 3);
    case 1: case 2: case 3: return 1 + below(r, 20);
    case 4: case 5: case 6: return 1 + below(r, 300);
    default: return below(r, MAX_JOBS + 1);
  }
}

static size_t pick_result_size(rng_t *r) {
  switch (below(r, 6)) {
    case 0: return 0;
    case 1: return 1 + below(r, 8);
    case 2: return 8;
    case 3: return below(r, 256);
    default: return below(r, MAX_RESULT + 1);
  }
}

static void plan_and_reset(rng_t *r) {
  memset(R, 0, sizeof *R);
  R->key = rnext(r);
  R->ord_last = -1;
  R->wreduce_last = -1;
  unsigned b = (unsigned)below(r, 100);
  R->backend = b < 35 ? SM_BACKEND_PROCESS : b < 55 ? SM_BACKEND_PERSISTENT : b < 85 ? SM_BACKEND_THREAD : SM_BACKEND_SERIAL;
  R->nworkers = 1 + (int)below(r, MAX_WORKERS);
  R->serial_like = R->backend == SM_BACKEND_SERIAL;
  R->ev_job[0] = R->ev_job[1] = SIZE_MAX;
  R->rfail_worker = -1;
}

static void run_map(rng_t *r) {
  int processes = workers_are_processes((sm_backend)R->backend);
  R->njobs = pick_njobs(r);
  if (processes && R->njobs > 2000 && chance(r, 50)) R->njobs /= 4;
  R->result_size = pick_result_size(r);
  R->with_reduce = chance(r, 70);
  R->ex = chance(r, 25);
  R->chunk = R->ex && chance(r, 50) ? 1 + (int)below(r, 64) : 0;
  R->copy_ctx = R->ex && chance(r, 50);
  static const unsigned pcts[] = {0, 0, 0, 5, 30, 100};
  R->crit_pct = pcts[below(r, 6)];
  R->ord_pct = pcts[below(r, 6)];
  R->spin_pct = pcts[below(r, 6)];
  if (R->ord_pct == 100 && R->njobs > 1000 && processes) R->njobs = 1000;
  int nev = R->njobs == 0 ? 0 : chance(r, 35) ? 0 : chance(r, 70) || R->njobs < 2 ? 1 : 2;
  for (int e = 0; e < nev; e++) {
    int kinds[4], nk = 0;
    kinds[nk++] = EV_STOP;
    kinds[nk++] = EV_ERROR;
    if (processes) kinds[nk++] = EV_KILL;
    if (R->with_reduce) kinds[nk++] = EV_REDUCE_STOP;
    R->ev_kind[e] = kinds[below(r, (uint64_t)nk)];
    do {
      R->ev_job[e] = below(r, 4) == 0 ? below(r, R->njobs < 8 ? R->njobs : 8) : below(r, R->njobs);
    } while (e == 1 && R->ev_job[1] == R->ev_job[0]);
    int code = (int)(rnext(r) % 2000) - 1000;
    if (code == 0 || code == SM_STOP) code = 7;
    R->ev_code[e] = code;
    R->ev_kill[e] = (int)below(r, 4);
  }

  snprintf(desc, sizeof desc,
           "round %" PRIu64 ": %s map%s, %s pool of %d, %zu jobs, result_size %zu, reduce %s, chunk %d, critical %u%%, "
           "ordered %u%%, spin %u%%, events: %s@%zd (code %d, %s), %s@%zd (code %d, %s)",
           round_index, R->ex ? "sm_map_ex" : "sm_map", R->copy_ctx ? " (ctx copied)" : "", backend_names[R->backend], R->nworkers, R->njobs,
           R->result_size, R->with_reduce ? "yes" : "no", R->chunk, R->crit_pct, R->ord_pct,
           R->spin_pct, ev_names[R->ev_kind[0]], (ssize_t)R->ev_job[0], R->ev_code[0],
           kill_names[R->ev_kill[0]], ev_names[R->ev_kind[1]], (ssize_t)R->ev_job[1], R->ev_code[1],
           kill_names[R->ev_kill[1]]);

  /* The expected outcome: the event at the smallest job. */
  int first = -1;
  for (int e = 0; e < 2; e++)
    if (R->ev_kind[e] != EV_NONE && (first < 0 || R->ev_job[e] < R->ev_job[first])) first = e;
  sm_status want = SM_OK;
  size_t want_reduced = R->njobs, k = 0;
  if (first >= 0) {
    k = R->ev_job[first];
    switch (R->ev_kind[first]) {
      case EV_STOP: want = SM_STOPPED; want_reduced = k + 1; break;
      case EV_ERROR: want = SM_ERR_JOB; want_reduced = k; break;
      case EV_KILL: want = SM_ERR_WORKER_DIED; want_reduced = k; break;
      case EV_REDUCE_STOP: want = SM_STOPPED; want_reduced = k + 1; break;
    }
  }

  sm_status s;
  ctx_t c = {R->pool, R->key};
  R->caller_ctx = R->copy_ctx ? &c : NULL;
  if (R->ex) {
    sm_map_opts o = default_opts();
    o.ctx_size = R->copy_ctx ? sizeof c : 0;
    o.chunk = (size_t)R->chunk;
    o.worker_init = worker_init;
    o.worker_fini = worker_fini;
    o.worker_reduce = worker_reduce;
    o.wresult_size = sizeof(wres_t);
    s = sm_map_ex(R->pool, R->njobs, work, R->with_reduce ? reduce : NULL, R->result_size, R->caller_ctx ? &c : NULL, &o);
    ex_rounds++;
  } else {
    s = sm_map(R->pool, R->njobs, work, R->with_reduce ? reduce : NULL, R->result_size, NULL);
  }
  check_no_children("sm_map");
  const char *msg = sm_last_error();
  if (s != want) fail("status %d (%s), expected %d (%s)", s, sm_status_str(s), want, sm_status_str(want));
  /* A map kills its workers only when one died (after a stop, the status need not say so). */
  if (R->zygote)
    check_residents("sm_map", R->njobs > 0, R->ev_kind[0] == EV_KILL || R->ev_kind[1] == EV_KILL);
  if (R->with_reduce) reduce_rounds++;
  if (first >= 0 && R->ev_kind[first] == EV_KILL) kill_rounds++;
  jobs_total += R->njobs;

  /* The message. */
  if (first >= 0) {
    int ek = R->ev_kind[first];
    if (ek == EV_REDUCE_STOP) {
      if (!strstr(msg, "reduce returned") || !names_number(msg, "job", (long)k) ||
          !names_number(msg, "returned", R->ev_code[first]))
        fail("the message does not name reduce's code %d and job %zu: %s", R->ev_code[first], k, msg);
    } else if (!names_number(msg, "job", (long)k)) {
      fail("the message does not name job %zu: %s", k, msg);
    }
    if (ek == EV_ERROR && !names_number(msg, "returned", R->ev_code[first]))
      fail("the message does not name the code %d: %s", R->ev_code[first], msg);
    if (ek == EV_STOP && !strstr(msg, "SM_STOP")) fail("the message does not say SM_STOP: %s", msg);
    if (ek == EV_KILL) {
      static const char *cause[] = {"SIGKILL", "SIGSEGV", "SIGABRT", "exited with status 3"};
      if (!strstr(msg, cause[R->ev_kill[first]]))
        fail("the message does not name the cause (%s): %s", cause[R->ev_kill[first]], msg);
    }
  }

  /* Jobs: none twice, every one before the first event exactly once. */
  if (R->id_bad) fail("a job ran twice or saw a wrong worker id / hook / parent (code %d)", R->id_bad);
  if (R->ctx_bad) fail("a callback got a wrong ctx (code %d: 1 not NULL, 2 not a copy, 3 not the caller's)", R->ctx_bad);
  size_t done = first >= 0 ? (R->ev_kind[first] == EV_STOP || R->ev_kind[first] == EV_REDUCE_STOP ? k + 1 : k)
                           : R->njobs;
  for (size_t j = 0; j < R->njobs; j++) {
    if (R->runs[j] > 1) fail("job %zu ran %u times", j, R->runs[j]);
    if (j < done && R->runs[j] != 1) fail("job %zu (before the first event at %zu) ran %u times", j, k, R->runs[j]);
  }
  if (R->with_reduce) {
    if (R->reduce_bad) fail("reduce: %s at job %d", R->reduce_bad == 1 ? "out of order" : R->reduce_bad == 2 ? "result not NULL for size 0" : "wrong result bytes", R->reduce_bad_job);
    if (R->next_reduce != want_reduced)
      fail("reduce ran for jobs 0..%zu, expected 0..%zu", R->next_reduce, want_reduced);
  }
  if (R->crit_counter != R->crit_runs)
    fail("critical sections overlapped: counter %ld after %ld sections", R->crit_counter, R->crit_runs);
  if (R->ord_bad) fail("ordered sections out of job order (%d)", R->ord_bad);

  /* Per-worker state (sm_map_ex). */
  if (R->ex && R->njobs > 0) {
    /* Workers that are processes are started (or rung) no more than there are jobs. */
    int participants = R->serial_like ? 1 : processes && (size_t)R->nworkers > R->njobs ? (int)R->njobs : R->nworkers;
    int combined = s == SM_OK || s == SM_STOPPED;
    /* A worker killed in a job after the one that stopped the map never runs worker_fini: the
       map still reports the stop, and that worker's result (with jobs before the stop) is not
       combined. Counted and reported, not failed: the header does not say either way. */
    int kill_after = 0;
    for (int e = 0; e < 2; e++)
      if (R->ev_kind[e] == EV_KILL && e != first) kill_after = 1;
    if (R->wreduce_bad) fail("worker_reduce out of worker order");
    if (!combined && R->wreduce_calls) fail("worker_reduce ran %d times after a failure", R->wreduce_calls);
    if (combined && R->wreduce_calls != participants && !(kill_after && R->wreduce_calls < participants))
      fail("worker_reduce ran %d times, expected %d (one per worker)", R->wreduce_calls, participants);
    if (combined && R->wreduce_calls < participants) dropped_worker_results++;
    for (int w = 0; w < participants && s == SM_OK; w++)
      if (R->winit[w] != 1) fail("worker_init ran %d times in worker %d", R->winit[w], w);
    if (s == SM_OK) {
      uint64_t sum = 0;
      for (size_t j = 0; j < R->njobs; j++) sum += value(j);
      if (R->wtotal_count != R->njobs || R->wtotal_sum != sum)
        fail("per-worker results combine to %" PRIu64 " jobs (sum %" PRIx64 "), expected %zu (sum %" PRIx64 ")",
             R->wtotal_count, R->wtotal_sum, R->njobs, sum);
    } else if (combined) {
      uint64_t ran = 0;
      for (size_t j = 0; j < R->njobs; j++) ran += R->runs[j];
      if ((R->wtotal_count < done && R->wreduce_calls == participants) || R->wtotal_count > ran)
        fail("per-worker results count %" PRIu64 " jobs; %zu completed before the stop, %" PRIu64 " ran", R->wtotal_count, done, ran);
    }
  }
  counts[0][R->backend][out_index(s)]++;
}

static void run_region(rng_t *r) {
  R->region = 1;
  for (int l = 0; l < NLOOPS; l++) {
    R->loop_n[l] = below(r, 4) == 0 ? below(r, 5) : below(r, LOOP_MAX + 1);
    R->loop_sched[l] = (int)below(r, 3);
    R->loop_chunk[l] = below(r, 3) == 0 ? 0 : 1 + (int)below(r, 50);
    R->loop_flags[l] = chance(r, 25) ? SM_FOR_ORDERED : 0;
    if (chance(r, 30)) R->loop_flags[l] |= SM_FOR_NOWAIT;
  }
  R->singles = (int)below(r, 8);
  int team = R->serial_like ? 1 : R->nworkers;
  int nsteps = 2 * NLOOPS + R->singles + 1;
  if (chance(r, 35)) {
    R->rfail_worker = (int)below(r, (uint64_t)team);
    R->rfail_at = (int)below(r, (uint64_t)nsteps);
    int kinds[3] = {EV_STOP, EV_ERROR, EV_KILL};
    R->rfail_kind = kinds[below(r, workers_are_processes((sm_backend)R->backend) ? 3 : 2)];
    R->rfail_code = (int)(rnext(r) % 1000) + 1;
    if (R->rfail_code == SM_STOP) R->rfail_code = 5;
  }
  R->local = chance(r, 50);
  R->copy_ctx = R->local && chance(r, 50);
  snprintf(desc, sizeof desc,
           "round %" PRIu64 ": sm_parallel, %s pool of %d, loops [0,%zu) sched %d chunk %d flags %d / [0,%zu) %d %d %d / [0,%zu) %d %d %d, "
           "%d singles, failure: worker %d at step %d: %s (code %d)%s%s",
           round_index, backend_names[R->backend], R->nworkers, R->loop_n[0], R->loop_sched[0], R->loop_chunk[0],
           R->loop_flags[0], R->loop_n[1], R->loop_sched[1], R->loop_chunk[1], R->loop_flags[1],
           R->loop_n[2], R->loop_sched[2], R->loop_chunk[2], R->loop_flags[2], R->singles, R->rfail_worker,
           R->rfail_at, ev_names[R->rfail_kind], R->rfail_code,
           R->local ? ", sm_parallel_ex with per-worker results" : "", R->copy_ctx ? " (ctx copied)" : "");
  ctx_t c = {R->pool, R->key};
  R->caller_ctx = R->copy_ctx ? &c : NULL;
  sm_map_opts o = default_opts();
  o.worker_reduce = worker_reduce;
  o.wresult_size = sizeof(wres_t);
  o.ctx_size = R->copy_ctx ? sizeof c : 0;
  sm_status s = R->local ? sm_parallel_ex(R->pool, region, R->caller_ctx ? &c : NULL, &o) : sm_parallel(R->pool, region, NULL);
  check_no_children("sm_parallel");
  const char *msg = sm_last_error();
  sm_status want = SM_OK;
  if (R->rfail_worker >= 0)
    want = R->rfail_kind == EV_STOP ? SM_STOPPED : R->rfail_kind == EV_ERROR ? SM_ERR_JOB : SM_ERR_WORKER_DIED;
  if (s != want) fail("status %d (%s), expected %d (%s)", s, sm_status_str(s), want, sm_status_str(want));
  /* A failed region has its process workers killed at once, except on SM_STOP with per-worker
     results, where each finishes with its worker_fini. */
  if (R->zygote) check_residents("sm_parallel", 1, s != SM_OK && !(s == SM_STOPPED && R->local));
  if (R->region_bad)
    fail("region check %d failed (team, chunk bounds, iteration twice, ordered order, barrier, master, "
         "sm_worker_local)", R->region_bad);
  if (R->wreduce_bad) fail("worker_reduce out of worker order in the region");
  if (R->ctx_bad) fail("a callback got a wrong ctx (code %d: 1 not NULL, 2 not a copy, 3 not the caller's)", R->ctx_bad);
  int combined = R->local && (s == SM_OK || s == SM_STOPPED);
  if (R->wreduce_calls != (combined ? team : 0))
    fail("worker_reduce ran %d times after the region (%s), expected %d", R->wreduce_calls, sm_status_str(s),
         combined ? team : 0);
  if (R->local && s == SM_OK) {
    uint64_t count = 0, sum = 0;
    for (int l = 0; l < NLOOPS; l++)
      for (size_t i = 0; i < R->loop_n[l]; i++) count++, sum += value(i);
    if (R->wtotal_count != count || R->wtotal_sum != sum)
      fail("per-worker results combine to %" PRIu64 " iterations (sum %" PRIx64 "), expected %" PRIu64
           " (sum %" PRIx64 ")", R->wtotal_count, R->wtotal_sum, count, sum);
  }
  if (R->crit_counter != R->crit_runs) fail("critical sections overlapped in the region");
  if (want != SM_OK) {
    if (!names_number(msg, "worker", R->rfail_worker)) fail("the message does not name worker %d: %s", R->rfail_worker, msg);
    if (want == SM_ERR_JOB && !names_number(msg, "returned", R->rfail_code)) fail("the message does not name the code %d: %s", R->rfail_code, msg);
  } else {
    for (int l = 0; l < NLOOPS; l++)
      for (size_t i = 0; i < R->loop_n[l]; i++)
        if (R->hits[l][i] != 1) fail("loop %d iteration %zu ran %u times", l, i, R->hits[l][i]);
    for (int i = 0; i < R->singles; i++)
      if (R->single_count[i] != 1) fail("single %d ran in %u workers", i, R->single_count[i]);
    if (R->crit_runs != team) fail("%ld of %d workers passed the critical section", R->crit_runs, team);
  }
  counts[1][R->backend][out_index(s)]++;
}

static void one_round(uint64_t index) {
  rng_t r = {mix64(seed) ^ mix64(index + 0x51ED)};
  round_index = index;
  snprintf(desc, sizeof desc, "round %" PRIu64 " (being planned)", index);
  plan_and_reset(&r);
  /* Now and then, a pool is freed and made anew. */
  if (chance(&r, 2)) {
    sm_pool_free(pools[R->backend][R->nworkers]);
    pools[R->backend][R->nworkers] = make_pool(R->nworkers, R->backend);
  }
  R->pool = pools[R->backend][R->nworkers];
  R->zygote = R->backend == SM_BACKEND_PERSISTENT ? zygotes[R->nworkers] : 0;
  if (chance(&r, 12))
    run_region(&r);
  else
    run_map(&r);
}

static void warm_up(void) {
  /* One small map and region per pool, so that every pool holds its spare control block. */
  for (int b = 0; b < NBACKENDS; b++)
    for (int n = 1; n <= MAX_WORKERS; n++) {
      memset(R, 0, sizeof *R);
      R->backend = b;
      R->nworkers = n;
      R->pool = pools[b][n];
      R->zygote = b == SM_BACKEND_PERSISTENT ? zygotes[n] : 0;
      R->njobs = 4;
      R->ev_job[0] = R->ev_job[1] = SIZE_MAX;
      if (sm_map(R->pool, 4, work, NULL, 0, NULL) != SM_OK) {
        fprintf(stderr, "soak: warm-up map failed: %s\n", sm_last_error());
        exit(1);
      }
    }
}

static unsigned round_timeout = 120;
static void on_alarm(int sig) {
  (void)sig;
  static const char m[] = "\nsoak: MISMATCH: a round has run past its time limit (SOAK_ROUND_TIMEOUT, default 120 s): hung. The ";
  if (write(2, m, sizeof m - 1) < 0) _exit(2);
  if (write(2, desc, strlen(desc)) < 0) _exit(2);
  if (write(2, "\n", 1) < 0) _exit(2);
  _exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MINUTES [SEED [ROUND]]\n", argv[0]);
    return 2;
  }
  double minutes = atof(argv[1]);
  seed = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  long only = argc > 3 ? atol(argv[3]) : -1;
  /* Dying workers must not leave core files behind. */
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  signal(SIGALRM, on_alarm);
  if (getenv("SOAK_ROUND_TIMEOUT")) round_timeout = (unsigned)atoi(getenv("SOAK_ROUND_TIMEOUT"));
  setvbuf(stdout, NULL, _IOLBF, 0);

  R = must_empty(1, sizeof *R);
  for (int b = 0; b < NBACKENDS; b++)
    for (int n = 1; n <= MAX_WORKERS; n++) pools[b][n] = make_pool(n, b);
  warm_up();
  usage_t before = usage();
  printf("soak: seed %" PRIu64 ", %.2f minutes; at start: %ld fds, %ld mappings, %ld threads, %ld kB\n", seed,
         minutes, before.fds, before.maps, before.threads, before.vm_kb);

  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  double limit = minutes * 60.0, elapsed = 0, next_report = 30;
  uint64_t rounds = 0;
  if (only >= 0) {
    alarm(round_timeout);
    one_round((uint64_t)only);
    rounds = 1;
  } else {
    do {
      alarm(round_timeout);
      one_round(rounds++);
      clock_gettime(CLOCK_MONOTONIC, &t);
      elapsed = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
      if (elapsed >= next_report) {
        printf("soak: %.0f s, %" PRIu64 " rounds\n", elapsed, rounds);
        next_report += 30;
      }
    } while (elapsed < limit);
  }
  alarm(0);

  warm_up();
  usage_t after = usage();
  printf("soak: at end: %ld fds, %ld mappings, %ld threads, %ld kB\n", after.fds, after.maps, after.threads,
         after.vm_kb);
  /* A leak per round would show as hundreds; allow the allocator's own few arenas. */
  if (after.fds > before.fds || after.threads > before.threads || after.maps > before.maps + 16 ||
      after.vm_kb > before.vm_kb + 262144) {
    fprintf(stderr, "soak: resources grew: fds %ld -> %ld, mappings %ld -> %ld, threads %ld -> %ld, kB %ld -> %ld\n",
            before.fds, after.fds, before.maps, after.maps, before.threads, after.threads, before.vm_kb,
            after.vm_kb);
    return 1;
  }
  for (int b = 0; b < NBACKENDS; b++)
    for (int n = 1; n <= MAX_WORKERS; n++) sm_pool_free(pools[b][n]);
  /* No pool left, so no zygote may be either: waitpid(-1) takes nothing from the library now. */
  int st;
  pid_t left = waitpid(-1, &st, WNOHANG);
  if (left != -1 || errno != ECHILD) {
    fprintf(stderr, "soak: a child process (waitpid(-1) gave %d) remains after sm_pool_free of every pool\n", (int)left);
    return 1;
  }
  sm_free(R);

  uint64_t total = 0;
  printf("soak: %" PRIu64 " rounds in %.1f s (seed %" PRIu64 "), every result checked:\n", rounds, elapsed, seed);
  for (int kind = 0; kind < 2; kind++)
    for (int b = 0; b < NBACKENDS; b++) {
      printf("  %-8s %-10s", kind ? "regions" : "maps", backend_names[b]);
      for (int o = 0; o < OUT_NKINDS; o++) {
        printf("  %s %" PRIu64, out_names[o], counts[kind][b][o]);
        total += counts[kind][b][o];
      }
      printf("\n");
    }
  printf("  (%" PRIu64 " jobs; %" PRIu64 " maps with reduce, %" PRIu64 " sm_map_ex with per-worker results, %" PRIu64
         " maps failed by a worker kill; %" PRIu64 " stopped sm_map_ex whose worker died after the stop, its"
         " per-worker result not combined)\n",
         jobs_total, reduce_rounds, ex_rounds, kill_rounds, dropped_worker_results);
  printf("soak: %" PRIu64 " passed, 0 failed\n", total);
  return 0;
}
