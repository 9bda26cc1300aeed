/* sm_worker_local() and sm_parallel_ex: per-worker results reached from jobs, regions and hooks.
 * Usage: test_worker_local <process|thread|serial> [debug]   ("debug": sm_set_debug(1) first)
 *  1. outside any job, in a job of sm_map, and with wresult_size 0: NULL with a message.
 *  2. sm_map_ex: worker_init sets up its result through sm_worker_local(); every job of a worker
 *     sees the same result (already set up) and adds to it; worker_fini gets that pointer;
 *     worker_reduce gets every worker's result on the caller, in worker order (where
 *     sm_worker_local() is NULL again); the combined sum equals the serial sum; chunk 0 and 5.
 *  3. sm_parallel_ex: the same through a region's work-shared loops (static, dynamic, guided).
 *  4. nesting: a map or region inside a job has its own per-worker result (or NULL without one),
 *     and the job's own comes back after it.
 *  5. SM_STOP (from a job, from the region) and worker_reduce returning nonzero: SM_STOPPED,
 *     worker_reduce ran (for every worker, also process workers busy when the stop came); failing worker_init / worker_fini in a region: SM_ERR_JOB naming the
 *     worker (also when the other workers then fail because of it), worker_reduce not run, the
 *     pool still works.
 *  6. process backend: a worker that dies in a map or region with per-worker results gives
 *     SM_ERR_WORKER_DIED, and worker_reduce does not run.
 *  7. sm_parallel_ex argument checks: NULL pool / region, opts->size too small or with unknown
 *     nonzero fields, chunk != 0, a progress callback: SM_ERR_INVALID with a message; a per-worker
 *     result above SM_MAX_RESULT_SIZE: SM_ERR_INVALID before anything runs; NULL opts is sm_parallel
 *     (sm_worker_local() NULL inside). */
#include "testutil.h"

#define NJOBS 20011
#define NWORKERS 3
#define LOOP_N 30011
#define INIT_MARK 1000

typedef struct {
  int64_t sum;
  int64_t count;
  int marker; /* INIT_MARK + worker, written by worker_init */
  int worker;
  void *self; /* the pointer worker_init saw */
} acc_t;

typedef struct {
  sm_pool *pool;
  int team;           /* workers expected to run */
  int fail_init_in;   /* worker whose worker_init returns 17 (-1: none) */
  int fail_fini_in;   /* worker whose worker_fini returns 18 */
  int stop_job;       /* job (or, in a region, worker) returning SM_STOP (-1: none) */
  int die_in;         /* process backend: worker (region) or job (map) that kills itself (-1) */
  int wreduce_stop;   /* worker_reduce returns 5 for this worker (-1: none) */
  int nest;           /* jobs 0..nest-1 run nested maps/regions */
  int barrier_failed; /* what the region returns when its barrier fails (the region is stopped) */
  sm_schedule sched;
  /* caller side */
  int64_t total, count;
  int order[MAXW], nreduced;
} ctx_t;

static int init(void *vctx, int worker) {
  ctx_t *c = vctx;
  acc_t *a = sm_worker_local();
  JCHECK(a != NULL, "worker_init %d: sm_worker_local() is NULL: %s", worker, last_err());
  JCHECK(a->sum == 0 && a->count == 0 && a->marker == 0, "worker_init %d: per-worker result not zeroed", worker);
  a->marker = INIT_MARK + worker;
  a->worker = worker;
  a->self = a;
  return worker == c->fail_init_in ? 17 : 0;
}

static int fini(void *vctx, int worker, void *wresult) {
  ctx_t *c = vctx;
  acc_t *a = wresult;
  JCHECK(sm_worker_local() == wresult, "worker_fini %d: sm_worker_local() %p, wresult %p", worker,
         sm_worker_local(), wresult);
  JCHECK(a->marker == INIT_MARK + worker && a->self == a, "worker_fini %d: marker %d, self %p", worker, a->marker,
         a->self);
  return worker == c->fail_fini_in ? 18 : 0;
}

static int wreduce(void *vctx, int worker, void *wresult) {
  ctx_t *c = vctx;
  acc_t *a = wresult;
  CHECK(sm_worker_local() == NULL, "worker_reduce (on the caller): sm_worker_local() is not NULL");
  CHECK(a->marker == INIT_MARK + worker, "worker_reduce %d: marker %d", worker, a->marker);
  c->total += a->sum;
  c->count += a->count;
  c->order[c->nreduced++] = worker;
  return worker == c->wreduce_stop ? 5 : 0;
}

/* ---------------------------------------------------------------- nesting */

typedef struct {
  int64_t inner;
} inner_acc_t;

static int inner_job(void *vctx, size_t j, void *result) {
  (void)vctx;
  (void)result;
  inner_acc_t *a = sm_worker_local();
  JCHECK(a != NULL, "nested job %zu: sm_worker_local() is NULL: %s", j, last_err());
  a->inner += (int64_t)j + 1;
  return 0;
}

static int inner_job_without(void *vctx, size_t j, void *result) {
  (void)vctx;
  (void)result;
  JCHECK(sm_worker_local() == NULL, "nested map without wresult, job %zu: sm_worker_local() not NULL", j);
  JCHECK(icontains(sm_last_error(), "wresult_size"), "nested: message \"%s\"", last_err());
  return 0;
}

static int inner_fini(void *vctx, int worker, void *wresult) {
  (void)worker;
  *(int64_t *)vctx = ((inner_acc_t *)wresult)->inner; /* the caller of the nested map: same worker */
  return 0;
}

static int inner_region(void *vctx) {
  (void)vctx;
  inner_acc_t *a = sm_worker_local();
  JCHECK(a != NULL, "nested region: sm_worker_local() is NULL: %s", last_err());
  a->inner += 100;
  return 0;
}

/* Runs a nested map and region in a job (or region) whose own per-worker result is `outer`. */
static int nested(sm_pool *pool, acc_t *outer) {
  int64_t got = -1;
  sm_map_opts o = default_opts();
  o.worker_fini = inner_fini;
  o.wresult_size = sizeof(inner_acc_t);
  sm_status s = sm_map_ex(pool, 10, inner_job, NULL, 0, &got, &o);
  JCHECK(s == SM_OK && got == 55, "nested sm_map_ex: %s, inner sum %lld: %s", sm_status_str(s), (long long)got,
         last_err());
  JCHECK(sm_worker_local() == outer, "after a nested map: sm_worker_local() %p, expected %p", sm_worker_local(),
         (void *)outer);
  s = sm_map(pool, 3, inner_job_without, NULL, 0, NULL);
  JCHECK(s == SM_OK, "nested sm_map: %s", sm_status_str(s));
  got = -1;
  s = sm_parallel_ex(pool, inner_region, &got, &o);
  JCHECK(s == SM_OK && got == 100, "nested sm_parallel_ex: %s, inner sum %lld: %s", sm_status_str(s),
         (long long)got, last_err());
  JCHECK(sm_worker_local() == outer, "after a nested region: sm_worker_local() %p, expected %p", sm_worker_local(),
         (void *)outer);
  return 0;
}

/* ---------------------------------------------------------------- jobs and regions */

static int job(void *vctx, size_t j, void *result) {
  ctx_t *c = vctx;
  (void)result;
  acc_t *a = sm_worker_local();
  JCHECK(a != NULL, "job %zu: sm_worker_local() is NULL: %s", j, last_err());
  JCHECK(a->marker == INIT_MARK + sm_worker_id() && a->self == a,
         "job %zu in worker %d: per-worker result of worker %d (marker %d, self %p vs %p)", j, sm_worker_id(),
         a->worker, a->marker, a->self, (void *)a);
  if ((int)j < c->nest && nested(c->pool, a) != 0) return JOB_CHECK_FAILED;
  if (c->die_in == (int)j) raise(SIGKILL);
  a->sum += (int64_t)j;
  a->count++;
  return (int)j == c->stop_job ? SM_STOP : 0;
}

static int region(void *vctx) {
  ctx_t *c = vctx;
  acc_t *a = sm_worker_local();
  int w = sm_worker_id();
  JCHECK(a != NULL && a->marker == INIT_MARK + w, "region, worker %d: sm_worker_local() %p: %s", w, (void *)a,
         last_err());
  if (w == 0 && c->nest && nested(c->pool, a) != 0) return JOB_CHECK_FAILED;
  size_t lo, hi;
  while (sm_for_next(c->pool, 0, LOOP_N, c->sched, 3, 0, &lo, &hi))
    for (size_t i = lo; i < hi; i++) {
      a->sum += (int64_t)i;
      a->count++;
    }
  if (w == c->die_in) raise(SIGKILL);
  if (sm_barrier(c->pool) != SM_OK) return c->barrier_failed;
  return w == c->stop_job ? SM_STOP : 0;
}

/* Worker stop_job stops the region at once; the others are busy (no construct to notice the
 * stop at) and must still finish with their per-worker results combined. */
static int region_stop_early(void *vctx) {
  ctx_t *c = vctx;
  acc_t *a = sm_worker_local();
  JCHECK(a != NULL, "region_stop_early: sm_worker_local() is NULL: %s", last_err());
  if (sm_worker_id() == c->stop_job) return SM_STOP;
  msleep(150);
  a->count++;
  return 0;
}

static int region_without(void *vctx) {
  (void)vctx;
  JCHECK(sm_worker_local() == NULL, "sm_parallel: sm_worker_local() is not NULL");
  JCHECK(icontains(sm_last_error(), "wresult_size"), "sm_parallel: message \"%s\"", last_err());
  return 0;
}

static int job_without(void *vctx, size_t j, void *result) {
  (void)vctx;
  (void)result;
  JCHECK(sm_worker_local() == NULL, "job %zu of sm_map: sm_worker_local() is not NULL", j);
  JCHECK(icontains(sm_last_error(), "wresult_size"), "job %zu: message \"%s\"", j, last_err());
  return 0;
}

static void progress(void *ctx, size_t done, size_t total) {
  (void)ctx;
  (void)done;
  (void)total;
}

static ctx_t new_ctx(sm_pool *pool, int team) {
  ctx_t c;
  memset(&c, 0, sizeof c);
  c.pool = pool;
  c.team = team;
  c.fail_init_in = c.fail_fini_in = c.stop_job = c.die_in = c.wreduce_stop = -1;
  c.sched = SM_SCHEDULE_STATIC;
  return c;
}

static sm_map_opts opts_for(size_t chunk) {
  sm_map_opts o = default_opts();
  o.chunk = chunk;
  o.worker_init = init;
  o.worker_fini = fini;
  o.worker_reduce = wreduce;
  o.wresult_size = sizeof(acc_t);
  /* the workers read a copy of ctx (on every backend: persistent workers could not see one on the
   * stack); worker_reduce fills the caller's */
  o.ctx_size = sizeof(ctx_t);
  return o;
}

static void check_reduced_all(const ctx_t *c, int64_t n, const char *what) {
  CHECK(c->nreduced == c->team, "%s: worker_reduce ran %d times for a team of %d", what, c->nreduced, c->team);
  for (int w = 0; w < c->nreduced; w++)
    CHECK(c->order[w] == w, "%s: worker_reduce call %d was for worker %d", what, w, c->order[w]);
  CHECK(c->count == n && c->total == n * (n - 1) / 2, "%s: combined count %lld sum %lld, serial %lld / %lld", what,
        (long long)c->count, (long long)c->total, (long long)n, (long long)(n * (n - 1) / 2));
}

int main(int argc, char **argv) {
  watchdog(90);
  sm_backend b = parse_backend(argc, argv);
  int debug = argc > 2 && strcmp(argv[2], "debug") == 0;
  if (debug) sm_set_debug(1);
  const char *env = getenv("SM_DEBUG");
  debug |= env && strcmp(env, "1") == 0;
  int team = (b == SM_BACKEND_SERIAL || debug) ? 1 : NWORKERS;
  jfail_init();
  sm_pool *pool = new_pool(NWORKERS, b);

  /* 1. NULL with a message */
  CHECK(sm_worker_local() == NULL && icontains(sm_last_error(), "outside"), "outside: \"%s\"", last_err());
  CHECK_STATUS(sm_map(pool, 50, job_without, NULL, 0, NULL), SM_OK, "sm_map");
  sm_map_opts zero = opts_for(0);
  zero.worker_init = NULL;
  zero.worker_fini = NULL;
  zero.worker_reduce = NULL;
  zero.wresult_size = 0;
  zero.ctx_size = 0; /* these pass ctx NULL */
  CHECK_STATUS(sm_map_ex(pool, 50, job_without, NULL, 0, NULL, &zero), SM_OK, "sm_map_ex, wresult_size 0");
  CHECK_STATUS(sm_parallel(pool, region_without, NULL), SM_OK, "sm_parallel");
  CHECK_STATUS(sm_parallel_ex(pool, region_without, NULL, NULL), SM_OK, "sm_parallel_ex, NULL opts");
  CHECK_STATUS(sm_parallel_ex(pool, region_without, NULL, &zero), SM_OK, "sm_parallel_ex, wresult_size 0");

  /* 2. maps */
  for (size_t chunk = 0; chunk <= 5; chunk += 5) {
    ctx_t c = new_ctx(pool, team);
    c.nest = chunk ? 0 : 3;
    sm_map_opts o = opts_for(chunk);
    CHECK_STATUS(sm_map_ex(pool, NJOBS, job, NULL, 0, &c, &o), SM_OK, "sm_map_ex chunk %zu", chunk);
    check_reduced_all(&c, NJOBS, "sm_map_ex");
  }

  /* 3. regions */
  sm_schedule scheds[] = {SM_SCHEDULE_STATIC, SM_SCHEDULE_DYNAMIC, SM_SCHEDULE_GUIDED};
  for (int s = 0; s < 3; s++) {
    ctx_t c = new_ctx(pool, team);
    c.sched = scheds[s];
    c.nest = s == 0;
    sm_map_opts o = opts_for(0);
    CHECK_STATUS(sm_parallel_ex(pool, region, &c, &o), SM_OK, "sm_parallel_ex schedule %d", s);
    check_reduced_all(&c, LOOP_N, "sm_parallel_ex");
  }

  /* 5. stopping and failing */
  {
    ctx_t c = new_ctx(pool, team);
    c.stop_job = 100;
    sm_map_opts o = opts_for(0);
    CHECK_STATUS(sm_map_ex(pool, NJOBS, job, NULL, 0, &c, &o), SM_STOPPED, "map, SM_STOP");
    CHECK(c.nreduced == team && c.count >= 101, "map, SM_STOP: worker_reduce ran %d times, %lld jobs counted",
          c.nreduced, (long long)c.count);
  }
  {
    ctx_t c = new_ctx(pool, team);
    c.stop_job = team - 1;
    sm_map_opts o = opts_for(0);
    CHECK_STATUS(sm_parallel_ex(pool, region, &c, &o), SM_STOPPED, "region, SM_STOP");
    CHECK(icontains(sm_last_error(), "SM_STOP"), "region, SM_STOP: \"%s\"", last_err());
    check_reduced_all(&c, LOOP_N, "region, SM_STOP");
  }
  {
    /* Process workers are not killed by a stop request when the region has per-worker results. */
    ctx_t c = new_ctx(pool, team);
    c.stop_job = 0;
    sm_map_opts o = opts_for(0);
    CHECK_STATUS(sm_parallel_ex(pool, region_stop_early, &c, &o), SM_STOPPED, "region stopped at once");
    CHECK(c.nreduced == team && c.count == team - 1,
          "region stopped at once: worker_reduce ran %d times for a team of %d, %lld busy workers counted",
          c.nreduced, team, (long long)c.count);
  }
  {
    ctx_t c = new_ctx(pool, team);
    c.wreduce_stop = 0;
    sm_map_opts o = opts_for(0);
    CHECK_STATUS(sm_parallel_ex(pool, region, &c, &o), SM_STOPPED, "region, worker_reduce returns 5");
    CHECK(icontains(sm_last_error(), "worker_reduce returned 5 for worker 0") && c.nreduced == 1,
          "worker_reduce stop: %d calls, \"%s\"", c.nreduced, last_err());
  }
  for (int which = 0; which < 2; which++) {
    ctx_t c = new_ctx(pool, team);
    if (which == 0) {
      c.fail_init_in = team - 1;
      c.barrier_failed = 55; /* a consequence of the failed init: not what the region reports */
    } else
      c.fail_fini_in = team - 1;
    sm_map_opts o = opts_for(0);
    sm_status s = sm_parallel_ex(pool, region, &c, &o);
    CHECK_STATUS(s, SM_ERR_JOB, "region, failing worker_%s", which ? "fini" : "init");
    char want[64];
    snprintf(want, sizeof want, "worker_%s returned %d in worker %d", which ? "fini" : "init", which ? 18 : 17,
             team - 1);
    CHECK(icontains(sm_last_error(), want), "failing hook: \"%s\", expected \"%s\"", last_err(), want);
    CHECK(c.nreduced == 0, "worker_reduce ran %d times after a failing worker_%s", c.nreduced, which ? "fini" : "init");
    ctx_t ok = new_ctx(pool, team);
    CHECK_STATUS(sm_parallel_ex(pool, region, &ok, &o), SM_OK, "region after a failing hook");
    check_reduced_all(&ok, LOOP_N, "region after a failing hook");
  }

  /* 6. dead workers */
  if (b == SM_BACKEND_PROCESS && !debug) {
    ctx_t c = new_ctx(pool, team);
    c.die_in = 777;
    sm_map_opts o = opts_for(0);
    CHECK_STATUS(sm_map_ex(pool, NJOBS, job, NULL, 0, &c, &o), SM_ERR_WORKER_DIED, "map, dead worker");
    CHECK(c.nreduced == 0, "map, dead worker: worker_reduce ran %d times", c.nreduced);
    CHECK_NO_CHILDREN("map, dead worker");
    ctx_t r = new_ctx(pool, team);
    r.die_in = 1;
    CHECK_STATUS(sm_parallel_ex(pool, region, &r, &o), SM_ERR_WORKER_DIED, "region, dead worker");
    CHECK(has_number(sm_last_error(), 1), "region, dead worker: \"%s\"", last_err());
    CHECK(r.nreduced == 0, "region, dead worker: worker_reduce ran %d times", r.nreduced);
    CHECK_NO_CHILDREN("region, dead worker");
  }

  /* 7. argument checks */
  {
    ctx_t c = new_ctx(pool, team);
    sm_map_opts o = opts_for(0);
    CHECK(sm_parallel_ex(NULL, region, &c, &o) == SM_ERR_INVALID, "NULL pool");
    CHECK(sm_parallel_ex(pool, NULL, &c, &o) == SM_ERR_INVALID && icontains(sm_last_error(), "region is NULL"),
          "NULL region: \"%s\"", last_err());
    o.chunk = 4;
    CHECK(sm_parallel_ex(pool, region, &c, &o) == SM_ERR_INVALID && icontains(sm_last_error(), "chunk"),
          "chunk 4: \"%s\"", last_err());
    o.chunk = 0;
    o.progress = progress;
    CHECK(sm_parallel_ex(pool, region, &c, &o) == SM_ERR_INVALID && icontains(sm_last_error(), "progress"),
          "progress: \"%s\"", last_err());
    o.progress = NULL;
    o.size = 4;
    CHECK(sm_parallel_ex(pool, region, &c, &o) == SM_ERR_INVALID && icontains(sm_last_error(), "opts->size"),
          "size 4: \"%s\"", last_err());
    struct {
      sm_map_opts o;
      size_t newer;
    } bigger;
    memset(&bigger, 0, sizeof bigger);
    bigger.o = opts_for(0);
    bigger.o.size = sizeof bigger;
    bigger.newer = 1;
    CHECK(sm_parallel_ex(pool, region, &c, &bigger.o) == SM_ERR_INVALID && icontains(sm_last_error(), "newer"),
          "a newer caller's struct: \"%s\"", last_err());
    sm_map_opts huge = opts_for(0);
    huge.wresult_size = SIZE_MAX / 2;
    /* Above SM_MAX_RESULT_SIZE: refused as invalid, for regions as for maps. */
    CHECK(sm_parallel_ex(pool, region, &c, &huge) == SM_ERR_INVALID && icontains(sm_last_error(), "wresult_size"),
          "sm_parallel_ex, wresult_size SIZE_MAX / 2: \"%s\"", last_err());
    CHECK(sm_map_ex(pool, 10, job, NULL, 0, &c, &huge) == SM_ERR_INVALID && icontains(sm_last_error(), "wresult_size"),
          "sm_map_ex, wresult_size SIZE_MAX / 2: \"%s\"", last_err());
    huge.wresult_size = (size_t)SM_MAX_RESULT_SIZE + 1;
    CHECK(sm_parallel_ex(pool, region, &c, &huge) == SM_ERR_INVALID && icontains(sm_last_error(), "SM_MAX_RESULT_SIZE"),
          "sm_parallel_ex, wresult_size SM_MAX_RESULT_SIZE + 1: \"%s\"", last_err());
    CHECK(c.nreduced == 0 && atomic_load(&g_jf->nfail) == 0, "a refused call ran something");
    bigger.newer = 0; /* unknown fields left zero are fine */
    CHECK_STATUS(sm_parallel_ex(pool, region, &c, &bigger.o), SM_OK, "a newer caller's struct, extra fields 0");
    check_reduced_all(&c, LOOP_N, "a newer caller's struct");
  }

  JCHECK_ALL_PASSED();
  sm_pool_free(pool);
  printf("worker_local OK (%s%s)\n", argv[1], debug ? ", debug" : "");
  return 0;
}
