/* Parallel regions (sm_parallel) on every backend, for pools of 1, 2, 3 and 4 workers (the serial
 * backend: a team of one whatever the pool's size). Usage: test_region <process|thread|serial>
 *  1. team: every worker runs the region exactly once; sm_num_workers() is the team size, sm_worker_id()
 *     0..team-1, sm_master() only in worker 0; where members run (process: distinct forked children
 *     whose ordinary memory is their own; thread: the caller's thread is worker 0; serial: the caller).
 *     Outside the region: sm_num_workers() 1, sm_worker_id() -1, sm_master() 1.
 *  2. barrier: 100 rounds (some with late arrivals): nobody passes before every worker arrived, SM_OK.
 *  3. sm_for_next: static (chunk 0/1/3/7), dynamic (0/1/3), guided (0/1/3) cover every index exactly
 *     once for trip counts 0, 1, fewer than the workers, not a multiple of the chunk, 1000, from start
 *     0 and 5, and start > end (empty); with and without SM_FOR_NOWAIT, 140 loops in one region; the
 *     shape of the chunks (static: round-robin chunks / one block; dynamic: exactly `chunk`; guided: at
 *     least `chunk`); without nowait every iteration is done when sm_for_next returns 0. Then 24
 *     dynamic/guided/static nowait loops in a row (loop slots are reused) with a late worker.
 *  4. ordered loops: the ordered sections run in index order for every schedule and chunk, with and
 *     without nowait.
 *  5. sm_single: each of 30 singles runs exactly once, with nowait loops in between; a single's
 *     result is seen by all after a barrier.
 *  6. per-worker sum reduction of an int64 array over static/dynamic/guided loops (critical, and
 *     partial[worker] + a single after a barrier) equals the serial sum exactly.
 *  7. critical: non-atomic read-modify-write counts exactly (per worker, and per loop iteration).
 *  8. a region inside a map job and inside a region runs as a team of one and returns SM_OK (its
 *     SM_STOP / errors come back as SM_STOPPED / SM_ERR_JOB); the outer region goes on intact.
 *  9. sm_parallel with a NULL pool or region: SM_ERR_INVALID; sm_barrier / sm_single / sm_for_next
 *     outside a region: an error with a message; the pool still works. */
#include "testutil.h"

#define ROUNDS 100
#define NSPECS_MAX 200
#define HITS_N 1100
#define ORD_MAX 120
#define ORD_N 110
#define NSINGLES 30
#define RED_N 100003

typedef struct {
  size_t start, end;
  sm_schedule sched;
  size_t chunk;
  int flags;
} spec_t;

typedef struct {
  /* 1. team */
  atomic_int runs[MAXW];
  atomic_int pid[MAXW], tid[MAXW];
  /* 2. barrier */
  atomic_int round_count[ROUNDS];
  /* 3. loops */
  atomic_int hits[NSPECS_MAX][HITS_N];
  atomic_int done[NSPECS_MAX];
  /* 4. ordered */
  atomic_int ord_pos[ORD_MAX];
  int ord_log[ORD_MAX][ORD_N];
  /* 5. single */
  atomic_int single_runs[NSINGLES];
  atomic_int single_wins[MAXW];
  int single_value;
  /* 6. reduction */
  int64_t data[RED_N];
  int64_t total_critical;
  int64_t partial[MAXW][8];
  int64_t total_single;
  /* 7. critical */
  volatile long counter;
  /* 8. nested */
  atomic_int nested_ok;
  atomic_int inner_hits[64];
} shared_t;

typedef struct {
  sm_pool *pool;
  int team;
  int nspecs;
  spec_t specs[NSPECS_MAX];
  int64_t expected_sum;
  pid_t caller_pid;
  pid_t caller_tid;
} ctx_t;

static shared_t *g_sh;
static sm_backend g_b;
static int g_private; /* ordinary memory: a process worker's writes stay in the worker */

static size_t trip_of(const spec_t *s) { return s->end > s->start ? s->end - s->start : 0; }

static const char *sched_name(sm_schedule s) {
  return s == SM_SCHEDULE_STATIC ? "static" : s == SM_SCHEDULE_DYNAMIC ? "dynamic" : "guided";
}

static void run_ok(ctx_t *c, sm_region_fn fn, const char *what) {
  sm_status st = sm_parallel(c->pool, fn, c);
  CHECK_STATUS(st, SM_OK, "%s (pool of %d, team %d)", what, sm_pool_nworkers(c->pool), c->team);
  if (workers_are_processes(g_b)) CHECK_NO_CHILDREN(what);
  CHECK(sm_worker_id() == -1 && sm_num_workers() == 1 && sm_master() == 1,
        "%s: after sm_parallel the caller sees sm_worker_id %d, sm_num_workers %d, sm_master %d (expected -1, 1, 1)",
        what, sm_worker_id(), sm_num_workers(), sm_master());
}

/* ------------------------------------------------------------------ 1. team */

static int region_team(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  int id = sm_worker_id(), nw = sm_num_workers();
  JCHECK(nw == c->team, "sm_num_workers() = %d in the region, team of %d expected", nw, c->team);
  JCHECK(id >= 0 && id < nw, "sm_worker_id() = %d outside 0..%d", id, nw - 1);
  JCHECK(sm_master() == (id == 0), "sm_master() = %d in worker %d", sm_master(), id);
  atomic_fetch_add(&g_sh->runs[id], 1);
  atomic_store(&g_sh->pid[id], (int)getpid());
  atomic_store(&g_sh->tid[id], (int)my_tid());
  g_private = 1;
  return 0;
}

static void test_team(ctx_t *c) {
  memset(g_sh->runs, 0, sizeof g_sh->runs);
  g_private = 0;
  run_ok(c, region_team, "team");
  for (int w = 0; w < MAXW; w++)
    CHECK(atomic_load(&g_sh->runs[w]) == (w < c->team), "worker %d ran the region %d times (team of %d)", w,
          atomic_load(&g_sh->runs[w]), c->team);
  if (workers_are_processes(g_b)) {
    CHECK(g_private == 0, "process backend: a worker's write to ordinary memory reached the caller");
    for (int w = 0; w < c->team; w++) {
      CHECK(atomic_load(&g_sh->pid[w]) != c->caller_pid, "process backend: worker %d ran in the caller's process", w);
      for (int v = 0; v < w; v++)
        CHECK(atomic_load(&g_sh->pid[w]) != atomic_load(&g_sh->pid[v]), "workers %d and %d ran in one process", v, w);
    }
  } else {
    for (int w = 0; w < c->team; w++) {
      CHECK(atomic_load(&g_sh->pid[w]) == c->caller_pid, "%s backend: worker %d ran in another process",
            g_backend_name, w);
      for (int v = 0; v < w; v++)
        CHECK(atomic_load(&g_sh->tid[w]) != atomic_load(&g_sh->tid[v]), "workers %d and %d ran in one thread", v, w);
    }
    CHECK(atomic_load(&g_sh->tid[0]) == c->caller_tid, "%s backend: worker 0 did not run in the calling thread",
          g_backend_name);
  }
}

/* ------------------------------------------------------------------ 2. barrier */

static int region_barrier(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  int me = sm_worker_id();
  for (int r = 0; r < ROUNDS; r++) {
    if (r > 0)
      JCHECK(atomic_load(&g_sh->round_count[r - 1]) == c->team, "round %d: round %d has %d arrivals of %d", r, r - 1,
             atomic_load(&g_sh->round_count[r - 1]), c->team);
    if (r % 10 == 3 && me == r % c->team) msleep(5); /* a late arrival */
    atomic_fetch_add(&g_sh->round_count[r], 1);
    sm_status st = sm_barrier(c->pool);
    JCHECK(st == SM_OK, "sm_barrier returned %s in round %d: %s", sm_status_str(st), r, last_err());
    int n = atomic_load(&g_sh->round_count[r]);
    JCHECK(n == c->team, "worker %d passed the barrier of round %d when %d of %d workers had arrived", me, r, n,
           c->team);
  }
  return 0;
}

static void test_barrier(ctx_t *c) {
  memset(g_sh->round_count, 0, sizeof g_sh->round_count);
  run_ok(c, region_barrier, "barrier rounds");
}

/* ------------------------------------------------------------------ 3. loops */

/* Runs loop L of c->specs: marks hits, checks the chunks' shape; without nowait, checks that the
 * whole loop is done when sm_for_next returns 0. Returns 0 or JOB_CHECK_FAILED. */
static int run_loop(ctx_t *c, int L, int me) {
  const spec_t *s = &c->specs[L];
  size_t trip = trip_of(s), lo = 777777, hi = 777777;
  int nchunks = 0;
  size_t csz = s->chunk ? s->chunk : 1;
  while (sm_for_next(c->pool, s->start, s->end, s->sched, s->chunk, s->flags, &lo, &hi)) {
    nchunks++;
    JCHECK(s->start <= lo && lo < hi && hi <= s->end,
           "loop %d ([%zu, %zu) %s chunk %zu flags %d): chunk [%zu, %zu) is empty or outside the loop", L, s->start,
           s->end, sched_name(s->sched), s->chunk, s->flags, lo, hi);
    size_t rel = lo - s->start, left = s->end - lo;
    switch (s->sched) {
      case SM_SCHEDULE_STATIC:
        if (s->chunk == 0)
          JCHECK(nchunks == 1, "loop %d (static, chunk 0): worker %d got a second block [%zu, %zu)", L, me, lo, hi);
        else
          JCHECK(rel % s->chunk == 0 && (int)((rel / s->chunk) % (size_t)c->team) == me &&
                     hi - lo == (left < s->chunk ? left : s->chunk),
                 "loop %d ([%zu, %zu) static chunk %zu, team %d): worker %d got [%zu, %zu), not one of its "
                 "round-robin chunks", L, s->start, s->end, s->chunk, c->team, me, lo, hi);
        break;
      case SM_SCHEDULE_DYNAMIC:
        JCHECK(rel % csz == 0 && hi - lo == (left < csz ? left : csz),
               "loop %d ([%zu, %zu) dynamic chunk %zu): chunk [%zu, %zu) is not a chunk of %zu", L, s->start, s->end,
               s->chunk, lo, hi, csz);
        break;
      case SM_SCHEDULE_GUIDED:
        JCHECK(hi - lo >= (left < csz ? left : csz),
               "loop %d ([%zu, %zu) guided chunk %zu): chunk [%zu, %zu) is smaller than the minimum %zu", L, s->start,
               s->end, s->chunk, lo, hi, csz);
        break;
    }
    for (size_t i = lo; i < hi; i++) atomic_fetch_add(&g_sh->hits[L][i], 1);
    atomic_fetch_add(&g_sh->done[L], (int)(hi - lo));
  }
  if (!(s->flags & SM_FOR_NOWAIT))
    JCHECK((size_t)atomic_load(&g_sh->done[L]) == trip,
           "loop %d ([%zu, %zu) %s chunk %zu, no nowait): worker %d left the loop when %d of %zu iterations were "
           "done (the loop's implicit barrier did not wait)",
           L, s->start, s->end, sched_name(s->sched), s->chunk, me, atomic_load(&g_sh->done[L]), trip);
  return 0;
}

static int region_loops(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  int me = sm_worker_id();
  for (int L = 0; L < c->nspecs; L++) {
    int r = run_loop(c, L, me);
    if (r) return r;
  }
  return 0;
}

/* Nowait loops in a row, then one barrier: the last worker starts late, so the others run ahead
 * through more dynamic loops than the library keeps in progress at once (4 loop slots) and must
 * wait for a slot to be given back. */
static int region_nowait_run(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  int me = sm_worker_id();
  if (me == c->team - 1 && c->team > 1) msleep(20);
  for (int L = 0; L < c->nspecs; L++) {
    int r = run_loop(c, L, me);
    if (r) return r;
  }
  sm_status st = sm_barrier(c->pool);
  JCHECK(st == SM_OK, "sm_barrier after the nowait loops: %s: %s", sm_status_str(st), last_err());
  for (int L = 0; L < c->nspecs; L++)
    JCHECK((size_t)atomic_load(&g_sh->done[L]) == trip_of(&c->specs[L]),
           "after the barrier, nowait loop %d has %d of %zu iterations done", L, atomic_load(&g_sh->done[L]),
           trip_of(&c->specs[L]));
  return 0;
}

static void check_hits(ctx_t *c, const char *what) {
  for (int L = 0; L < c->nspecs; L++) {
    const spec_t *s = &c->specs[L];
    for (size_t i = 0; i < HITS_N; i++) {
      int want = i >= s->start && i < s->end;
      CHECK(atomic_load(&g_sh->hits[L][i]) == want,
            "%s, team of %d: loop %d ([%zu, %zu) %s chunk %zu flags %d): index %zu ran %d times, expected %d", what,
            c->team, L, s->start, s->end, sched_name(s->sched), s->chunk, s->flags, i,
            atomic_load(&g_sh->hits[L][i]), want);
    }
  }
}

static const struct {
  sm_schedule sched;
  size_t chunk;
} k_scheds[] = {{SM_SCHEDULE_STATIC, 0},  {SM_SCHEDULE_STATIC, 1},  {SM_SCHEDULE_STATIC, 3},
                {SM_SCHEDULE_STATIC, 7},  {SM_SCHEDULE_DYNAMIC, 0}, {SM_SCHEDULE_DYNAMIC, 1},
                {SM_SCHEDULE_DYNAMIC, 3}, {SM_SCHEDULE_GUIDED, 0},  {SM_SCHEDULE_GUIDED, 1},
                {SM_SCHEDULE_GUIDED, 3}};
#define NSCHEDS (int)(sizeof k_scheds / sizeof k_scheds[0])

static void add_spec(ctx_t *c, size_t start, size_t end, sm_schedule sched, size_t chunk, int flags) {
  CHECK(c->nspecs < NSPECS_MAX, "too many loops");
  spec_t *s = &c->specs[c->nspecs++];
  s->start = start;
  s->end = end;
  s->sched = sched;
  s->chunk = chunk;
  s->flags = flags;
}

static void test_loops(ctx_t *c) {
  size_t n = (size_t)c->team;
  const size_t ranges[][2] = {{5, 5}, {5, 6}, {5, 5 + (n > 1 ? n - 1 : 0)}, {5, 27}, {5, 1005}, {0, 1000}, {10, 3}};
  c->nspecs = 0;
  for (int k = 0; k < NSCHEDS; k++)
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
      for (int nowait = 0; nowait < 2; nowait++)
        add_spec(c, ranges[r][0], ranges[r][1], k_scheds[k].sched, k_scheds[k].chunk, nowait ? SM_FOR_NOWAIT : 0);
  memset(g_sh->hits, 0, sizeof g_sh->hits);
  memset(g_sh->done, 0, sizeof g_sh->done);
  run_ok(c, region_loops, "140 loops in one region");
  check_hits(c, "140 loops in one region");

  /* 24 nowait loops in a row: 16 dynamic/guided (4 times the 4 loop slots), some empty, static ones between */
  c->nspecs = 0;
  for (int L = 0; L < 24; L++) {
    size_t len = L % 5 == 4 ? 0 : (size_t)(37 * L % 200 + 1);
    if (L % 3 == 2)
      add_spec(c, 3, 3 + len, SM_SCHEDULE_STATIC, (size_t)(L % 4), SM_FOR_NOWAIT);
    else
      add_spec(c, 3, 3 + len, L % 2 ? SM_SCHEDULE_GUIDED : SM_SCHEDULE_DYNAMIC, (size_t)(L % 3), SM_FOR_NOWAIT);
  }
  memset(g_sh->hits, 0, sizeof g_sh->hits);
  memset(g_sh->done, 0, sizeof g_sh->done);
  run_ok(c, region_nowait_run, "24 nowait loops in a row");
  check_hits(c, "24 nowait loops in a row");
}

/* ------------------------------------------------------------------ 4. ordered */

static int region_ordered(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  for (int L = 0; L < c->nspecs; L++) {
    const spec_t *s = &c->specs[L];
    size_t lo, hi;
    while (sm_for_next(c->pool, s->start, s->end, s->sched, s->chunk, s->flags, &lo, &hi)) {
      for (size_t i = lo; i < hi; i++) {
        uint32_t h = hash32((uint32_t)(L * 1000 + (int)i));
        if (h % 8 == 0) usleep_full((long)(h >> 8) % 200); /* some work before the section */
        sm_status st = sm_ordered_enter(c->pool);
        JCHECK(st == SM_OK, "loop %d: sm_ordered_enter for index %zu returned %s: %s", L, i, sm_status_str(st),
               last_err());
        int p = atomic_fetch_add(&g_sh->ord_pos[L], 1);
        JCHECK((size_t)p == i - s->start,
               "loop %d ([%zu, %zu) %s chunk %zu flags %d): index %zu entered its ordered section as number %d (out "
               "of order)", L, s->start, s->end, sched_name(s->sched), s->chunk, s->flags, i, p);
        if (p < ORD_N) g_sh->ord_log[L][p] = (int)i;
        st = sm_ordered_leave(c->pool);
        JCHECK(st == SM_OK, "loop %d: sm_ordered_leave for index %zu returned %s: %s", L, i, sm_status_str(st),
               last_err());
      }
    }
  }
  return 0;
}

static void test_ordered(ctx_t *c) {
  size_t n = (size_t)c->team;
  const size_t ranges[][2] = {{5, 5}, {5, 6}, {5, 5 + (n > 1 ? n - 1 : 0)}, {5, 28}, {5, 5 + 105}};
  c->nspecs = 0;
  for (int k = 0; k < NSCHEDS; k++)
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
      for (int nowait = 0; nowait < 2; nowait++)
        add_spec(c, ranges[r][0], ranges[r][1], k_scheds[k].sched, k_scheds[k].chunk,
                 SM_FOR_ORDERED | (nowait ? SM_FOR_NOWAIT : 0));
  CHECK(c->nspecs <= ORD_MAX, "too many ordered loops");
  memset(g_sh->ord_pos, 0, sizeof g_sh->ord_pos);
  memset(g_sh->ord_log, 0xff, sizeof g_sh->ord_log);
  run_ok(c, region_ordered, "ordered loops");
  for (int L = 0; L < c->nspecs; L++) {
    const spec_t *s = &c->specs[L];
    size_t trip = trip_of(s);
    CHECK((size_t)atomic_load(&g_sh->ord_pos[L]) == trip, "ordered loop %d: %d sections ran, expected %zu", L,
          atomic_load(&g_sh->ord_pos[L]), trip);
    for (size_t k = 0; k < trip; k++)
      CHECK(g_sh->ord_log[L][k] == (int)(s->start + k),
            "ordered loop %d ([%zu, %zu) %s chunk %zu flags %d): section %zu was index %d, expected %zu", L, s->start,
            s->end, sched_name(s->sched), s->chunk, s->flags, k, g_sh->ord_log[L][k], s->start + k);
  }
}

/* ------------------------------------------------------------------ 5. single */

static int region_single(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  int me = sm_worker_id();
  for (int k = 0; k < NSINGLES; k++) {
    int r = sm_single(c->pool);
    JCHECK(r == 0 || r == 1, "sm_single returned %d: %s", r, last_err());
    if (c->team == 1) JCHECK(r == 1, "sm_single returned 0 in a team of one");
    if (r) {
      atomic_fetch_add(&g_sh->single_runs[k], 1);
      atomic_fetch_add(&g_sh->single_wins[me], 1);
    }
    if (k % 3 == 1) { /* a nowait loop between singles: workers drift apart */
      size_t lo, hi;
      while (sm_for_next(c->pool, 0, 50, SM_SCHEDULE_DYNAMIC, 1, SM_FOR_NOWAIT, &lo, &hi))
        if (hash32((uint32_t)lo) % 4 == 0) usleep_full(100);
    }
  }
  /* the usual pattern: one worker computes, a barrier, everyone uses it */
  if (sm_single(c->pool) == 1) g_sh->single_value = 4242;
  sm_status st = sm_barrier(c->pool);
  JCHECK(st == SM_OK, "sm_barrier after a single: %s: %s", sm_status_str(st), last_err());
  JCHECK(g_sh->single_value == 4242, "after single + barrier, worker %d sees %d", me, g_sh->single_value);
  return 0;
}

static void test_single(ctx_t *c) {
  memset(g_sh->single_runs, 0, sizeof g_sh->single_runs);
  memset(g_sh->single_wins, 0, sizeof g_sh->single_wins);
  g_sh->single_value = 0;
  run_ok(c, region_single, "singles");
  int wins = 0;
  for (int k = 0; k < NSINGLES; k++)
    CHECK(atomic_load(&g_sh->single_runs[k]) == 1, "team of %d: single %d ran %d times", c->team, k,
          atomic_load(&g_sh->single_runs[k]));
  for (int w = 0; w < MAXW; w++) wins += atomic_load(&g_sh->single_wins[w]);
  CHECK(wins == NSINGLES, "sm_single returned 1 %d times for %d singles", wins, NSINGLES);
}

/* ------------------------------------------------------------------ 6. reduction */

static int region_reduce(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  int me = sm_worker_id();
  size_t lo, hi;
  sm_status st;
  /* static blocks, partials combined under critical */
  int64_t local = 0;
  while (sm_for_next(c->pool, 0, RED_N, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi))
    for (size_t i = lo; i < hi; i++) local += g_sh->data[i];
  JCHECK(sm_critical_enter(c->pool) == SM_OK, "sm_critical_enter: %s", last_err());
  g_sh->total_critical += local;
  JCHECK(sm_critical_leave(c->pool) == SM_OK, "sm_critical_leave: %s", last_err());
  /* dynamic chunks (nowait), partial per worker, one worker sums them after a barrier */
  local = 0;
  while (sm_for_next(c->pool, 0, RED_N, SM_SCHEDULE_DYNAMIC, 64, SM_FOR_NOWAIT, &lo, &hi))
    for (size_t i = lo; i < hi; i++) local += g_sh->data[i];
  g_sh->partial[me][0] = local;
  st = sm_barrier(c->pool);
  JCHECK(st == SM_OK, "sm_barrier: %s: %s", sm_status_str(st), last_err());
  if (sm_single(c->pool) == 1) {
    int64_t t = 0;
    for (int w = 0; w < c->team; w++) t += g_sh->partial[w][0];
    g_sh->total_single = t;
  }
  st = sm_barrier(c->pool);
  JCHECK(st == SM_OK, "sm_barrier: %s: %s", sm_status_str(st), last_err());
  JCHECK(g_sh->total_single == c->expected_sum, "dynamic partials + single: %lld, serial sum %lld",
         (long long)g_sh->total_single, (long long)c->expected_sum);
  JCHECK(g_sh->total_critical == c->expected_sum, "static partials + critical (after the barrier): %lld, serial "
         "sum %lld", (long long)g_sh->total_critical, (long long)c->expected_sum);
  /* guided, critical again */
  local = 0;
  while (sm_for_next(c->pool, 0, RED_N, SM_SCHEDULE_GUIDED, 5, 0, &lo, &hi))
    for (size_t i = lo; i < hi; i++) local += g_sh->data[i];
  JCHECK(sm_critical_enter(c->pool) == SM_OK, "sm_critical_enter: %s", last_err());
  g_sh->total_critical += local;
  JCHECK(sm_critical_leave(c->pool) == SM_OK, "sm_critical_leave: %s", last_err());
  return 0;
}

static void test_reduce(ctx_t *c) {
  int64_t sum = 0;
  for (size_t i = 0; i < RED_N; i++) {
    g_sh->data[i] = (int64_t)hash32((uint32_t)i) - (int64_t)(1u << 31);
    sum += g_sh->data[i];
  }
  c->expected_sum = sum;
  g_sh->total_critical = 0;
  g_sh->total_single = 0;
  memset(g_sh->partial, 0, sizeof g_sh->partial);
  run_ok(c, region_reduce, "sum reduction");
  CHECK(g_sh->total_critical == 2 * sum, "static + guided partials under critical: %lld, expected %lld",
        (long long)g_sh->total_critical, (long long)(2 * sum));
  CHECK(g_sh->total_single == sum, "dynamic partials summed by a single: %lld, expected %lld",
        (long long)g_sh->total_single, (long long)sum);
}

/* ------------------------------------------------------------------ 7. critical */

#define CRIT_PER_WORKER 3000
#define CRIT_LOOP 6000

static int region_critical(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  for (int k = 0; k < CRIT_PER_WORKER; k++) {
    JCHECK(sm_critical_enter(c->pool) == SM_OK, "sm_critical_enter: %s", last_err());
    long v = g_sh->counter;
    if (k % 256 == 0) sched_yield();
    g_sh->counter = v + 1;
    JCHECK(sm_critical_leave(c->pool) == SM_OK, "sm_critical_leave: %s", last_err());
  }
  size_t lo, hi;
  while (sm_for_next(c->pool, 0, CRIT_LOOP, SM_SCHEDULE_DYNAMIC, 2, 0, &lo, &hi))
    for (size_t i = lo; i < hi; i++) {
      JCHECK(sm_critical_enter(c->pool) == SM_OK, "sm_critical_enter: %s", last_err());
      long v = g_sh->counter;
      g_sh->counter = v + 1;
      JCHECK(sm_critical_leave(c->pool) == SM_OK, "sm_critical_leave: %s", last_err());
    }
  long want = (long)c->team * CRIT_PER_WORKER + CRIT_LOOP;
  JCHECK(g_sh->counter == want, "after the loop's barrier the counter is %ld, expected %ld", g_sh->counter, want);
  return 0;
}

static void test_critical(ctx_t *c) {
  g_sh->counter = 0;
  run_ok(c, region_critical, "critical");
  long want = (long)c->team * CRIT_PER_WORKER + CRIT_LOOP;
  CHECK(g_sh->counter == want, "critical: counter %ld, expected %ld", g_sh->counter, want);
}

/* ------------------------------------------------------------------ 8. nested */

static _Thread_local int g_inner_ret; /* per thread: jobs of the thread backend run concurrently */

static int region_inner(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  JCHECK(sm_num_workers() == 1, "inner region: sm_num_workers() = %d, expected a team of one", sm_num_workers());
  JCHECK(sm_master() == 1, "inner region: sm_master() = %d in a team of one", sm_master());
  size_t lo, hi;
  int n = 0;
  while (sm_for_next(c->pool, 3, 50, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi)) {
    n++;
    JCHECK(lo == 3 && hi == 50, "inner region: static block [%zu, %zu), expected [3, 50)", lo, hi);
  }
  JCHECK(n == 1, "inner region: static chunk 0 gave %d blocks", n);
  int local[64] = {0};
  while (sm_for_next(c->pool, 0, 64, SM_SCHEDULE_DYNAMIC, 5, SM_FOR_NOWAIT, &lo, &hi))
    for (size_t i = lo; i < hi; i++) local[i]++;
  while (sm_for_next(c->pool, 0, 64, SM_SCHEDULE_GUIDED, 2, SM_FOR_ORDERED, &lo, &hi))
    for (size_t i = lo; i < hi; i++) {
      JCHECK(sm_ordered_enter(c->pool) == SM_OK, "inner region: sm_ordered_enter: %s", last_err());
      local[i]++;
      JCHECK(sm_ordered_leave(c->pool) == SM_OK, "inner region: sm_ordered_leave: %s", last_err());
    }
  for (int i = 0; i < 64; i++) JCHECK(local[i] == 2, "inner region: index %d ran %d times in two loops", i, local[i]);
  sm_status st = sm_barrier(c->pool);
  JCHECK(st == SM_OK, "inner region: sm_barrier: %s: %s", sm_status_str(st), last_err());
  JCHECK(sm_single(c->pool) == 1, "inner region: sm_single did not return 1 in a team of one");
  JCHECK(sm_single(c->pool) == 1, "inner region: second sm_single did not return 1 in a team of one");
  JCHECK(sm_critical_enter(c->pool) == SM_OK, "inner region: sm_critical_enter: %s", last_err());
  JCHECK(sm_critical_leave(c->pool) == SM_OK, "inner region: sm_critical_leave: %s", last_err());
  atomic_fetch_add(&g_sh->nested_ok, 1);
  return g_inner_ret;
}

static int job_with_region(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  (void)result;
  int w = sm_worker_id();
  g_inner_ret = 0;
  sm_status st = sm_parallel(c->pool, region_inner, c);
  JCHECK(st == SM_OK, "job %zu: a region inside the job returned %s: %s", job, sm_status_str(st), last_err());
  JCHECK(sm_worker_id() == w, "job %zu: worker id %d after the inner region, %d before", job, sm_worker_id(), w);
  g_inner_ret = SM_STOP;
  st = sm_parallel(c->pool, region_inner, c);
  JCHECK(st == SM_STOPPED, "job %zu: inner region returning SM_STOP gave %s: %s", job, sm_status_str(st), last_err());
  g_inner_ret = 9;
  st = sm_parallel(c->pool, region_inner, c);
  JCHECK(st == SM_ERR_JOB, "job %zu: inner region returning 9 gave %s: %s", job, sm_status_str(st), last_err());
  g_inner_ret = 0;
  return 0;
}

static int region_outer(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  int me = sm_worker_id();
  sm_status st = sm_parallel(c->pool, region_inner, c);
  JCHECK(st == SM_OK, "worker %d: a region inside the region returned %s: %s", me, sm_status_str(st), last_err());
  /* the outer region is intact */
  JCHECK(sm_worker_id() == me && sm_num_workers() == c->team && sm_master() == (me == 0),
         "after the inner region: worker id %d (was %d), sm_num_workers %d (team %d), sm_master %d", sm_worker_id(), me,
         sm_num_workers(), c->team, sm_master());
  size_t lo, hi;
  while (sm_for_next(c->pool, 0, 64, SM_SCHEDULE_DYNAMIC, 3, 0, &lo, &hi))
    for (size_t i = lo; i < hi; i++) atomic_fetch_add(&g_sh->inner_hits[i], 1);
  st = sm_barrier(c->pool);
  JCHECK(st == SM_OK, "outer region: sm_barrier after the inner region: %s: %s", sm_status_str(st), last_err());
  return 0;
}

static void test_nested(ctx_t *c) {
  atomic_store(&g_sh->nested_ok, 0);
  g_inner_ret = 0;
  sm_status st = sm_map(c->pool, 6, job_with_region, NULL, 0, c);
  CHECK_STATUS(st, SM_OK, "sm_map whose jobs run regions");
  CHECK(atomic_load(&g_sh->nested_ok) == 18, "regions inside 6 jobs: %d of 18 ran through",
        atomic_load(&g_sh->nested_ok));
  atomic_store(&g_sh->nested_ok, 0);
  memset(g_sh->inner_hits, 0, sizeof g_sh->inner_hits);
  g_inner_ret = 0;
  run_ok(c, region_outer, "region inside a region");
  CHECK(atomic_load(&g_sh->nested_ok) == c->team, "inner regions: %d of %d ran through",
        atomic_load(&g_sh->nested_ok), c->team);
  for (int i = 0; i < 64; i++)
    CHECK(atomic_load(&g_sh->inner_hits[i]) == 1, "outer loop after inner regions: index %d ran %d times", i,
          atomic_load(&g_sh->inner_hits[i]));
}

/* ------------------------------------------------------------------ 9. invalid / outside */

static int region_noop(void *vctx) {
  (void)vctx;
  return 0;
}

static void test_outside(ctx_t *c) {
  sm_status st = sm_parallel(NULL, region_noop, c);
  CHECK(st == SM_ERR_INVALID, "sm_parallel(NULL pool): %s, expected SM_ERR_INVALID", sm_status_str(st));
  CHECK(last_err()[0] != 0, "sm_parallel(NULL pool): no message");
  st = sm_parallel(c->pool, NULL, c);
  CHECK(st == SM_ERR_INVALID, "sm_parallel(NULL region): %s, expected SM_ERR_INVALID", sm_status_str(st));
  CHECK(last_err()[0] != 0, "sm_parallel(NULL region): no message");

  st = sm_barrier(c->pool);
  CHECK(st == SM_ERR_STATE, "sm_barrier outside a region: %s, expected SM_ERR_STATE", sm_status_str(st));
  CHECK(strstr(last_err(), "sm_barrier"), "sm_barrier outside a region: the message does not name it: \"%s\"",
        last_err());
  int r = sm_single(c->pool);
  CHECK(r == -1, "sm_single outside a region returned %d, expected -1", r);
  CHECK(strstr(last_err(), "sm_single"), "sm_single outside a region: the message does not name it: \"%s\"",
        last_err());
  size_t lo = 99, hi = 99;
  r = sm_for_next(c->pool, 0, 10, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi);
  CHECK(r == 0, "sm_for_next outside a region returned %d (chunk [%zu, %zu)), expected 0", r, lo, hi);
  CHECK(strstr(last_err(), "sm_for_next"), "sm_for_next outside a region: the message does not name it: \"%s\"",
        last_err());
  CHECK(sm_num_workers() == 1 && sm_worker_id() == -1 && sm_master() == 1,
        "outside a region: sm_num_workers %d, sm_worker_id %d, sm_master %d", sm_num_workers(), sm_worker_id(),
        sm_master());
  /* the pool is unaffected */
  test_team(c);
}

int main(int argc, char **argv) {
  g_b = parse_backend(argc, argv);
  watchdog(120);
  jfail_init();
  g_sh = (shared_t *)must_empty(1, sizeof(shared_t));
  /* in sm_empty memory, which the workers of every backend see as it is now */
  ctx_t *c = (ctx_t *)must_empty(1, sizeof *c);
  for (int n = 1; n <= 4; n++) {
    memset(c, 0, sizeof *c);
    c->pool = new_pool(n, g_b);
    c->team = g_b == SM_BACKEND_SERIAL ? 1 : n;
    c->caller_pid = getpid();
    c->caller_tid = my_tid();
    long long t0 = now_ms();
    test_team(c);
    for (int rep = 0; rep < 3; rep++) { /* timing-dependent paths: more chances to hit them */
      test_barrier(c);
      test_loops(c);
      test_ordered(c);
      test_single(c);
    }
    test_reduce(c);
    test_critical(c);
    test_nested(c);
    test_outside(c);
    sm_pool_free(c->pool);
    printf("test_region[%s]: pool of %d (team of %d) OK (%lld ms)\n", g_backend_name, n, c->team, now_ms() - t0);
  }
  CHECK_NO_CHILDREN("end");
  sm_free(c);
  sm_free(g_sh);
  printf("test_region[%s]: OK\n", g_backend_name);
  return 0;
}
