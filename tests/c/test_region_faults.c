/* Failures in parallel regions (sm_parallel). Usage: test_region_faults <process|thread|serial> [faults|interrupt]
 * faults (default), pools of 1, 2 and 3 workers (cases that need a second worker skip teams of one):
 *  - the region returns 7 in worker 1 (worker 0 in a team of one): SM_ERR_JOB naming the worker and 7;
 *    SM_STOP: SM_STOPPED naming the worker; the same while the others run an endless dynamic loop
 *    (thread: their sm_for_next returns 0, with a message), wait at a barrier (thread: it returns
 *    SM_STOPPED), or run an ordered loop;
 *  - misuse by worker 0 -> the call fails (SM_ERR_STATE / 0 with a message) and sm_parallel returns
 *    SM_ERR_STATE naming worker 0: sm_barrier inside critical or ordered, sm_ordered_enter outside a loop
 *    or in a loop without SM_FOR_ORDERED, two ordered sections in one iteration, sm_for_next with other
 *    arguments mid-loop, inside critical or ordered, with a bad schedule / flags / NULL lo, returning
 *    with critical or ordered held; two workers reaching a loop with different arguments;
 *  - a worker that returns early while the others wait at a barrier, a loop's end, dynamic loop slots
 *    (6 nowait loops) or in an ordered loop after taking a chunk: SM_ERR_STATE naming that worker, no
 *    hang; worker 0's sm_barrier returns SM_ERR_STATE;
 *  - process: worker 1 killed by SIGKILL / SIGSEGV at once, while worker 0 waits at a barrier, for an
 *    ordered turn, for critical, or spins on barriers: SM_ERR_WORKER_DIED naming worker 1 and the
 *    signal; worker 1 returning 3 / SM_STOP while worker 0 spins on sm_barrier forever or computes
 *    forever: SM_ERR_JOB / SM_STOPPED (worker 0 is killed);
 *  - after every case: no child process is left, the workers' pids are gone, and the pool runs a
 *    region with critical and an ordered loop;
 *  - sm_for_next / sm_barrier / sm_single in a job of a plain sm_map: 0 / SM_ERR_STATE / -1 with a message.
 * interrupt: with a caller's SIGINT handler that counts, a worker raises SIGINT while the others are in
 *    endless barriers or an endless dynamic loop (thread), in a finite region (serial), or dies of it
 *    (process: workers have the default disposition): SM_ERR_INTERRUPTED naming SIGINT, the
 *    handler is still installed afterwards, and the pool runs the next region. */
#include "testutil.h"

#define HUGE_TRIP ((size_t)1 << 40)

enum {
  K_GOOD,
  K_RET,
  K_RET_WHILE_LOOPING,
  K_RET_WHILE_BARRIER,
  K_RET_WHILE_ORDERED,
  K_RET_WHILE_ENDLESS_BARRIER, /* process only */
  K_RET_WHILE_ENDLESS_COMPUTE, /* process only */
  K_MISUSE_BARRIER_IN_CRITICAL,
  K_MISUSE_BARRIER_IN_ORDERED,
  K_MISUSE_ORDERED_OUTSIDE,
  K_MISUSE_ORDERED_UNORDERED_LOOP,
  K_MISUSE_ORDERED_TWICE,
  K_MISUSE_ARGS_MIDLOOP,
  K_MISUSE_LOOP_IN_CRITICAL,
  K_MISUSE_LOOP_IN_ORDERED,
  K_MISUSE_BAD_SCHEDULE,
  K_MISUSE_BAD_FLAGS,
  K_MISUSE_NULL_LO,
  K_MISUSE_RETURN_IN_CRITICAL,
  K_MISUSE_RETURN_IN_ORDERED,
  K_MISUSE_LOOP_DIFFERS, /* >= 2 workers */
  K_EARLY_BARRIER,
  K_EARLY_LOOP_END,
  K_EARLY_DYNAMIC_SLOTS,
  K_EARLY_ORDERED_CHUNK,
  K_DIE_NOW, /* process only, from here on */
  K_DIE_AT_BARRIER,
  K_DIE_IN_ORDERED_TURN,
  K_DIE_IN_CRITICAL,
  K_DIE_ENDLESS_BARRIER,
  K_INT_BARRIER, /* interrupt mode */
  K_INT_LOOP,
  K_INT_FINITE,
  K_INT_EXTERNAL,
};

typedef struct {
  atomic_int pids[MAXW];
  atomic_int runs[MAXW];
  atomic_int flag;
  atomic_int result[MAXW];    /* what a construct returned to a worker (-1000: nothing recorded) */
  char msg[MAXW][512];        /* sm_last_error() a worker saw */
  atomic_int iters;
  long counter;
  atomic_int ordpos;
  int ordlog[200];
} shared_t;

typedef struct {
  sm_pool *pool;
  int team;
  int kase;
  int fw;   /* the worker that fails / dies / returns early */
  int code; /* what it returns */
  int sig;  /* how it dies */
} ctx_t;

static shared_t *g_sh;
static sm_backend g_b;

static void die(int sig) {
  if (sig == SIGSEGV) {
    volatile int *volatile p = NULL;
    *p = 1;
  }
  raise(sig);
}

/* Bounded wait for g_sh->flag >= v (a hand-shake; the outcome does not depend on it). */
static int wait_flag(int v) { return wait_atomic_ge(&g_sh->flag, v, 20000); }

/* The message first: a process worker may be killed at any moment once the region failed, and
 * the caller takes a recorded result as the sign that the message is complete. */
static void record(int me, int result) {
  snprintf(g_sh->msg[me], sizeof g_sh->msg[me], "%s", last_err());
  atomic_store(&g_sh->result[me], result);
}

/* An ordered loop that must come out in order (K_GOOD and the checks after each case). */
static int good_region(ctx_t *c) {
  size_t lo, hi;
  JCHECK(sm_critical_enter(c->pool) == SM_OK, "critical_enter: %s", last_err());
  long v = g_sh->counter;
  sched_yield();
  g_sh->counter = v + 1;
  JCHECK(sm_critical_leave(c->pool) == SM_OK, "critical_leave: %s", last_err());
  while (sm_for_next(c->pool, 0, 200, SM_SCHEDULE_DYNAMIC, 1, SM_FOR_ORDERED, &lo, &hi))
    for (size_t i = lo; i < hi; i++) {
      JCHECK(sm_ordered_enter(c->pool) == SM_OK, "ordered_enter: %s", last_err());
      int p = atomic_fetch_add(&g_sh->ordpos, 1);
      if (p < 200) g_sh->ordlog[p] = (int)i;
      JCHECK(sm_ordered_leave(c->pool) == SM_OK, "ordered_leave: %s", last_err());
    }
  sm_status st = sm_barrier(c->pool);
  JCHECK(st == SM_OK, "sm_barrier: %s: %s", sm_status_str(st), last_err());
  return 0;
}

static int region(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  int me = sm_worker_id();
  int is_fw = me == c->fw;
  size_t lo, hi;
  sm_status st;
  atomic_store(&g_sh->pids[me], (int)getpid());
  atomic_fetch_add(&g_sh->runs[me], 1);
  switch (c->kase) {
    case K_GOOD:
      return good_region(c);

    case K_RET:
      return is_fw ? c->code : 0;

    case K_RET_WHILE_LOOPING:
      if (is_fw) {
        JCHECK(wait_flag(c->team - 1), "the other workers did not start their loops");
        return c->code;
      }
      /* a known message first, so that a stale sm_last_error() is told from a new one */
      JCHECK(sm_pool_nworkers(NULL) == -1, "sm_pool_nworkers(NULL) did not fail");
      snprintf(g_sh->msg[me], sizeof g_sh->msg[me], "%s", last_err());
      atomic_fetch_add(&g_sh->flag, 1);
      while (sm_for_next(c->pool, 0, HUGE_TRIP, SM_SCHEDULE_DYNAMIC, 1, 0, &lo, &hi)) {
        JCHECK(atomic_fetch_add(&g_sh->iters, 1) < 2000000000, "an endless loop did not stop");
        if (lo % 64 == 0) sched_yield();
      }
      record(me, 0);
      return 0;

    case K_RET_WHILE_BARRIER:
      if (is_fw) {
        JCHECK(wait_flag(c->team - 1), "the other workers did not reach the barrier");
        msleep(10); /* most likely they are asleep in it now */
        return c->code;
      }
      atomic_fetch_add(&g_sh->flag, 1);
      record(me, sm_barrier(c->pool));
      return 0;

    case K_RET_WHILE_ORDERED:
      while (sm_for_next(c->pool, 0, 1000, SM_SCHEDULE_STATIC, 1, SM_FOR_ORDERED, &lo, &hi)) {
        if (is_fw) return c->code; /* with its first chunk, before its ordered section */
        st = sm_ordered_enter(c->pool);
        if (st != SM_OK) {
          record(me, st);
          continue;
        }
        JCHECK(sm_ordered_leave(c->pool) == SM_OK, "ordered_leave: %s", last_err());
      }
      return 0;

    case K_RET_WHILE_ENDLESS_BARRIER: /* process: the others are killed */
      if (is_fw) {
        JCHECK(wait_flag(c->team - 1), "the other workers did not start");
        msleep(10);
        return c->code;
      }
      atomic_fetch_add(&g_sh->flag, 1);
      for (;;) sm_barrier(c->pool);

    case K_RET_WHILE_ENDLESS_COMPUTE:
      if (is_fw) {
        JCHECK(wait_flag(c->team - 1), "the other workers did not start");
        return c->code;
      }
      atomic_fetch_add(&g_sh->flag, 1);
      for (;;) msleep(1);

    case K_MISUSE_BARRIER_IN_CRITICAL:
      if (me != 0) return 0;
      JCHECK(sm_critical_enter(c->pool) == SM_OK, "critical_enter: %s", last_err());
      record(me, sm_barrier(c->pool));
      JCHECK(sm_critical_leave(c->pool) == SM_OK, "critical_leave: %s", last_err());
      return 0;

    case K_MISUSE_BARRIER_IN_ORDERED:
    case K_MISUSE_LOOP_IN_ORDERED:
    case K_MISUSE_ORDERED_TWICE:
    case K_MISUSE_RETURN_IN_ORDERED:
      if (me != 0) return 0;
      while (sm_for_next(c->pool, 0, 10, SM_SCHEDULE_STATIC, 1, SM_FOR_ORDERED, &lo, &hi)) {
        st = sm_ordered_enter(c->pool);
        JCHECK(st == SM_OK, "ordered_enter: %s: %s", sm_status_str(st), last_err());
        if (c->kase == K_MISUSE_RETURN_IN_ORDERED) return 0;
        if (c->kase == K_MISUSE_BARRIER_IN_ORDERED) record(me, sm_barrier(c->pool));
        if (c->kase == K_MISUSE_LOOP_IN_ORDERED) {
          size_t l2 = 77, h2 = 77;
          record(me, sm_for_next(c->pool, 0, 5, SM_SCHEDULE_STATIC, 0, 0, &l2, &h2) ? 1000 + (int)l2 : 0);
        }
        JCHECK(sm_ordered_leave(c->pool) == SM_OK, "ordered_leave: %s", last_err());
        if (c->kase == K_MISUSE_ORDERED_TWICE) {
          st = sm_ordered_enter(c->pool);
          record(me, st);
          if (st == SM_OK) sm_ordered_leave(c->pool);
        }
        return 0; /* one iteration is enough: the region has failed */
      }
      return 0;

    case K_MISUSE_ORDERED_OUTSIDE:
      if (me != 0) return 0;
      st = sm_ordered_enter(c->pool);
      record(me, st);
      if (st == SM_OK) sm_ordered_leave(c->pool);
      return 0;

    case K_MISUSE_ORDERED_UNORDERED_LOOP:
      if (me != 0) return 0;
      while (sm_for_next(c->pool, 0, 10, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi)) {
        st = sm_ordered_enter(c->pool);
        record(me, st);
        if (st == SM_OK) sm_ordered_leave(c->pool);
      }
      return 0;

    case K_MISUSE_ARGS_MIDLOOP: /* static chunk 1: worker 0 surely gets a chunk (index 0) */
      while (sm_for_next(c->pool, 0, 100, SM_SCHEDULE_STATIC, 1, 0, &lo, &hi)) {
        if (me == 0) {
          size_t l2 = 77, h2 = 77;
          record(me, sm_for_next(c->pool, 0, 50, SM_SCHEDULE_STATIC, 1, 0, &l2, &h2) ? 1000 + (int)l2 : 0);
          return 0;
        }
      }
      return 0;

    case K_MISUSE_LOOP_IN_CRITICAL:
      if (me != 0) return 0;
      JCHECK(sm_critical_enter(c->pool) == SM_OK, "critical_enter: %s", last_err());
      lo = hi = 77;
      record(me, sm_for_next(c->pool, 0, 5, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi) ? 1000 + (int)lo : 0);
      JCHECK(sm_critical_leave(c->pool) == SM_OK, "critical_leave: %s", last_err());
      return 0;

    case K_MISUSE_BAD_SCHEDULE:
    case K_MISUSE_BAD_FLAGS:
    case K_MISUSE_NULL_LO:
      if (me != 0) return 0;
      lo = hi = 77;
      if (c->kase == K_MISUSE_BAD_SCHEDULE)
        record(me, sm_for_next(c->pool, 0, 5, (sm_schedule)7, 0, 0, &lo, &hi) ? 1000 + (int)lo : 0);
      else if (c->kase == K_MISUSE_BAD_FLAGS)
        record(me, sm_for_next(c->pool, 0, 5, SM_SCHEDULE_STATIC, 0, 4, &lo, &hi) ? 1000 + (int)lo : 0);
      else
        record(me, sm_for_next(c->pool, 0, 5, SM_SCHEDULE_STATIC, 0, 0, NULL, &hi) ? 1000 : 0);
      return 0;

    case K_MISUSE_RETURN_IN_CRITICAL:
      if (me != 0) return 0;
      JCHECK(sm_critical_enter(c->pool) == SM_OK, "critical_enter: %s", last_err());
      return 0;

    case K_MISUSE_LOOP_DIFFERS: /* worker 0 loops over [0, 100), the others over [0, 99) */
      while (sm_for_next(c->pool, 0, me == 0 ? 100 : 99, SM_SCHEDULE_DYNAMIC, 1, 0, &lo, &hi)) {
      }
      record(me, 0);
      return 0;

    case K_EARLY_BARRIER:
      if (is_fw) return 0;
      record(me, sm_barrier(c->pool));
      return 0;

    case K_EARLY_LOOP_END:
      if (is_fw) return 0;
      while (sm_for_next(c->pool, 0, 100, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi)) {
      }
      record(me, 0);
      return 0;

    case K_EARLY_DYNAMIC_SLOTS: /* 6 nowait loops: the 5th needs the slot of the 1st back */
      if (is_fw) return 0;
      for (int L = 0; L < 6; L++)
        while (sm_for_next(c->pool, 0, 10, L % 2 ? SM_SCHEDULE_GUIDED : SM_SCHEDULE_DYNAMIC, 1, SM_FOR_NOWAIT, &lo, &hi)) {
        }
      record(me, 0);
      return 0;

    case K_EARLY_ORDERED_CHUNK: /* fw takes its first chunk of an ordered loop and returns */
      while (sm_for_next(c->pool, 0, 100, SM_SCHEDULE_STATIC, 1, SM_FOR_ORDERED, &lo, &hi)) {
        if (is_fw) return 0;
        st = sm_ordered_enter(c->pool);
        if (st == SM_OK) sm_ordered_leave(c->pool);
        else record(me, st);
      }
      return 0;

    case K_DIE_NOW:
      if (is_fw) die(c->sig);
      return 0;

    case K_DIE_AT_BARRIER:
      if (is_fw) {
        JCHECK(wait_flag(c->team - 1), "the other workers did not reach the barrier");
        msleep(10);
        die(c->sig);
      }
      atomic_fetch_add(&g_sh->flag, 1);
      sm_barrier(c->pool);
      return 0;

    case K_DIE_IN_ORDERED_TURN: /* static chunk 1: fw owns index 1, worker 0 waits at index 2 */
      while (sm_for_next(c->pool, 0, 100, SM_SCHEDULE_STATIC, 1, SM_FOR_ORDERED, &lo, &hi)) {
        if (is_fw) {
          msleep(10);
          die(c->sig);
        }
        if (sm_ordered_enter(c->pool) == SM_OK) sm_ordered_leave(c->pool);
      }
      return 0;

    case K_DIE_IN_CRITICAL:
      if (is_fw) {
        JCHECK(sm_critical_enter(c->pool) == SM_OK, "critical_enter: %s", last_err());
        atomic_fetch_add(&g_sh->flag, 1);
        msleep(10);
        die(c->sig);
      }
      JCHECK(wait_flag(1), "the dying worker did not enter critical");
      if (sm_critical_enter(c->pool) == SM_OK) sm_critical_leave(c->pool);
      return 0;

    case K_DIE_ENDLESS_BARRIER:
      if (is_fw) {
        JCHECK(wait_flag(c->team - 1), "the other workers did not start");
        msleep(10);
        die(c->sig);
      }
      atomic_fetch_add(&g_sh->flag, 1);
      for (;;) sm_barrier(c->pool);

    case K_INT_BARRIER:
      for (int k = 0;; k++) {
        if (is_fw && k == 50) raise(SIGINT);
        st = sm_barrier(c->pool);
        if (st != SM_OK) {
          record(me, st);
          return 0;
        }
        JCHECK(k < 50000000, "endless barriers were not stopped by SIGINT");
      }

    case K_INT_LOOP: {
      int mine = 0;
      while (sm_for_next(c->pool, 0, HUGE_TRIP, SM_SCHEDULE_DYNAMIC, 1, 0, &lo, &hi)) {
        if (is_fw && ++mine == 1000) raise(SIGINT);
        JCHECK(atomic_fetch_add(&g_sh->iters, 1) < 2000000000, "an endless loop was not stopped by SIGINT");
      }
      record(me, 0);
      return 0;
    }

    case K_INT_EXTERNAL:
      atomic_fetch_add(&g_sh->flag, 1);
      for (int k = 0;; k++) {
        st = sm_barrier(c->pool);
        if (st != SM_OK) {
          record(me, st);
          return 0;
        }
        if (k % 64 == 0) usleep_full(100);
        JCHECK(k < 50000000, "endless barriers were not stopped by SIGINT");
      }

    case K_INT_FINITE:
      if (is_fw) raise(SIGINT);
      while (sm_for_next(c->pool, 0, 100, SM_SCHEDULE_DYNAMIC, 3, 0, &lo, &hi)) {
      }
      return 0;
  }
  JCHECK(0, "unknown case %d", c->kase);
  return 0;
}

static const char *kase_name(int k) {
  static const char *names[] = {
      "good region", "region returns in worker fw", "fw returns while the others loop endlessly",
      "fw returns while the others wait at a barrier", "fw returns while the others run an ordered loop",
      "fw returns while the others call sm_barrier forever", "fw returns while the others compute forever",
      "worker 0: sm_barrier inside critical", "worker 0: sm_barrier inside ordered", "worker 0: sm_ordered_enter outside a loop",
      "worker 0: sm_ordered_enter in a loop without SM_FOR_ORDERED", "worker 0: two ordered sections in one iteration",
      "worker 0: sm_for_next with other arguments mid-loop", "worker 0: sm_for_next inside critical", "worker 0: sm_for_next inside ordered",
      "worker 0: sm_for_next with schedule 7", "worker 0: sm_for_next with flags 4", "worker 0: sm_for_next with NULL lo",
      "worker 0: returning inside critical", "worker 0: returning inside ordered", "workers reach a loop with different arguments",
      "fw returns early, the others wait at a barrier", "fw returns early, the others wait at a loop's end",
      "fw returns early, the others run 6 dynamic nowait loops",
      "fw returns with a chunk of an ordered loop", "fw dies at once", "fw dies while the others wait at a barrier",
      "fw dies while worker 0 waits for its ordered turn", "fw dies inside critical while the others wait for it",
      "fw dies while the others call sm_barrier forever", "SIGINT raised in fw, the others in endless barriers",
      "SIGINT raised in fw, everyone in an endless dynamic loop", "SIGINT raised in fw, finite region",
      "SIGINT sent to the calling thread, everyone in endless barriers"};
  return k >= 0 && k < (int)(sizeof names / sizeof names[0]) ? names[k] : "?";
}

/* "worker <w>" as a whole number */
static int names_worker(const char *msg, int w) {
  char pat[32];
  snprintf(pat, sizeof pat, "worker %d", w);
  size_t n = strlen(pat);
  for (const char *p = msg; (p = strstr(p, pat)) != NULL; p++)
    if (!isdigit((unsigned char)p[n])) return 1;
  return 0;
}

static void reset_shared(void) {
  memset(g_sh, 0, sizeof *g_sh);
  for (int w = 0; w < MAXW; w++) atomic_store(&g_sh->result[w], -1000);
}

static void check_workers_gone(ctx_t *c, const char *what) {
  if (g_b != SM_BACKEND_PROCESS) return; /* persistent workers stay, unless they had to be killed */
  CHECK_NO_CHILDREN(what);
  for (int w = 0; w < c->team; w++) {
    pid_t p = atomic_load(&g_sh->pids[w]);
    if (p == 0) continue;
    char st = proc_state(p, NULL);
    CHECK(kill(p, 0) != 0, "%s: worker %d (pid %d) still exists after sm_parallel returned (state %c)", what, w, (int)p,
          st ? st : '?');
  }
}

/* The pool still works: a region with critical and an ordered loop. */
static void check_pool_works(ctx_t *c, const char *after) {
  ctx_t *g = (ctx_t *)shared_dup(c, sizeof *c);
  g->kase = K_GOOD;
  reset_shared();
  JRESET();
  sm_status st = sm_parallel(c->pool, region, g);
  sm_free(g);
  CHECK_STATUS(st, SM_OK, "good region after \"%s\" (team of %d)", after, c->team);
  CHECK(g_sh->counter == c->team, "after \"%s\": critical counter %ld, team of %d", after, g_sh->counter, c->team);
  for (int w = 0; w < MAXW; w++)
    CHECK(atomic_load(&g_sh->runs[w]) == (w < c->team), "after \"%s\": worker %d ran the region %d times", after, w,
          atomic_load(&g_sh->runs[w]));
  CHECK(atomic_load(&g_sh->ordpos) == 200, "after \"%s\": %d ordered sections", after, atomic_load(&g_sh->ordpos));
  for (int i = 0; i < 200; i++)
    CHECK(g_sh->ordlog[i] == i, "after \"%s\": ordered section %d was index %d", after, i, g_sh->ordlog[i]);
  check_workers_gone(c, "good region");
}

/* Runs case `kase` and checks the status and that the message names `name_worker` (-1: no check)
 * and contains `substr` (NULL: no check). Returns the message. */
static const char *run_case(ctx_t *c, int kase, int code, int sig, sm_status want, int name_worker,
                            const char *substr) {
  static char msg[1024];
  char what[256];
  c->kase = kase;
  c->code = code;
  c->sig = sig;
  snprintf(what, sizeof what, "%s (fw = worker %d, code %d, signal %d, team of %d)", kase_name(kase), c->fw, code,
           sig, c->team);
  reset_shared();
  JRESET();
  long long t0 = now_ms();
  sm_status st = sm_parallel(c->pool, region, c);
  snprintf(msg, sizeof msg, "%s", last_err());
  printf("  %s: %s \"%s\" (%lld ms)\n", what, sm_status_str(st), msg, now_ms() - t0);
  CHECK_STATUS(st, want, "%s", what);
  if (name_worker >= 0)
    CHECK(names_worker(msg, name_worker), "%s: the message does not name worker %d: \"%s\"", what, name_worker, msg);
  if (substr) CHECK(strstr(msg, substr), "%s: the message does not contain \"%s\": \"%s\"", what, substr, msg);
  check_workers_gone(c, what);
  check_pool_works(c, what);
  return msg;
}

/* Like run_case, but returns with g_sh as the failing region left it (no pool check after). */
static sm_status run_raw(ctx_t *c, int kase, int code, int sig, char *msg, size_t cap) {
  c->kase = kase;
  c->code = code;
  c->sig = sig;
  reset_shared();
  JRESET();
  long long t0 = now_ms();
  sm_status st = sm_parallel(c->pool, region, c);
  snprintf(msg, cap, "%s", last_err());
  printf("  %s (fw = worker %d, code %d, team of %d): %s \"%s\" (%lld ms)\n", kase_name(kase), c->fw, code, c->team,
         sm_status_str(st), msg, now_ms() - t0);
  return st;
}

static void misuse_case(ctx_t *c, int kase, int want_result, const char *call) {
  char msg[1024], what[256];
  snprintf(what, sizeof what, "%s (team of %d)", kase_name(kase), c->team);
  sm_status st = run_raw(c, kase, 0, 0, msg, sizeof msg);
  int res = atomic_load(&g_sh->result[0]);
  char wmsg[512];
  snprintf(wmsg, sizeof wmsg, "%s", g_sh->msg[0]);
  CHECK_STATUS(st, SM_ERR_STATE, "%s", what);
  CHECK(names_worker(msg, 0), "%s: the message does not name worker 0: \"%s\"", what, msg);
  /* a process worker may be stopped (killed) right after its misuse failed the region, before it
   * noted what the call returned */
  if (want_result != -1000 && !(workers_are_processes(g_b) && res == -1000)) {
    CHECK(res == want_result, "%s: %s returned %d in worker 0, expected %d (message \"%s\")", what, call, res,
          want_result, wmsg);
    CHECK(wmsg[0] != 0 && strstr(wmsg, call), "%s: after %s failed, worker 0's sm_last_error() does not name it: "
          "\"%s\"", what, call, wmsg);
  }
  check_workers_gone(c, what);
  check_pool_works(c, what);
}

static void faults(ctx_t *c) {
  int multi = c->team >= 2;
  int proc = workers_are_processes(g_b);
  char msg[1024];
  sm_status st;
  c->fw = multi ? 1 : 0;
  printf("team of %d (%s backend, pool of %d):\n", c->team, g_backend_name, sm_pool_nworkers(c->pool));

  /* ---- a region returning an error or SM_STOP */
  const char *m = run_case(c, K_RET, 7, 0, SM_ERR_JOB, c->fw, NULL);
  CHECK(has_number(m, 7), "region returning 7: the message does not give the value 7: \"%s\"", m);
  run_case(c, K_RET, SM_STOP, 0, SM_STOPPED, c->fw, NULL);
  if (multi) {
    st = run_raw(c, K_RET_WHILE_LOOPING, 7, 0, msg, sizeof msg);
    CHECK_STATUS(st, SM_ERR_JOB, "worker 1 returns 7 while the others loop endlessly");
    CHECK(names_worker(msg, 1), "the message does not name worker 1: \"%s\"", msg);
    if (g_b == SM_BACKEND_THREAD)
      for (int w = 0; w < c->team; w++) {
        if (w == c->fw) continue;
        CHECK(atomic_load(&g_sh->result[w]) == 0, "thread backend: worker %d's endless loop did not end", w);
        CHECK(g_sh->msg[w][0] != 0 && !strstr(g_sh->msg[w], "sm_pool_nworkers"),
              "thread backend: sm_for_next returned 0 in worker %d because the region was stopped, but "
              "sm_last_error() has no new message (the header promises one): \"%s\"", w, g_sh->msg[w]);
      }
    check_workers_gone(c, "return while looping");
    check_pool_works(c, "return while looping");

    st = run_raw(c, K_RET_WHILE_BARRIER, 5, 0, msg, sizeof msg);
    CHECK_STATUS(st, SM_ERR_JOB, "worker 1 returns 5 while the others wait at a barrier");
    CHECK(names_worker(msg, 1) && has_number(msg, 5), "the message does not name worker 1 and 5: \"%s\"", msg);
    if (g_b == SM_BACKEND_THREAD)
      for (int w = 0; w < c->team; w++)
        if (w != c->fw)
          CHECK(atomic_load(&g_sh->result[w]) == SM_STOPPED,
                "thread backend: worker %d waiting at a barrier while worker 1 failed: sm_barrier returned %d (%s), "
                "expected SM_STOPPED; its message: \"%s\"", w, atomic_load(&g_sh->result[w]),
                sm_status_str((sm_status)atomic_load(&g_sh->result[w])), g_sh->msg[w]);
    check_workers_gone(c, "return while at a barrier");
    check_pool_works(c, "return while at a barrier");

    run_case(c, K_RET_WHILE_ORDERED, 6, 0, SM_ERR_JOB, 1, NULL);
    run_case(c, K_RET_WHILE_ORDERED, SM_STOP, 0, SM_STOPPED, 1, NULL);
    if (proc) {
      run_case(c, K_RET_WHILE_ENDLESS_BARRIER, 3, 0, SM_ERR_JOB, 1, NULL);
      run_case(c, K_RET_WHILE_ENDLESS_BARRIER, SM_STOP, 0, SM_STOPPED, 1, NULL);
      run_case(c, K_RET_WHILE_ENDLESS_COMPUTE, 3, 0, SM_ERR_JOB, 1, NULL);
    }
  }

  /* ---- misuse by worker 0 */
  misuse_case(c, K_MISUSE_BARRIER_IN_CRITICAL, SM_ERR_STATE, "sm_barrier");
  misuse_case(c, K_MISUSE_BARRIER_IN_ORDERED, SM_ERR_STATE, "sm_barrier");
  misuse_case(c, K_MISUSE_ORDERED_OUTSIDE, SM_ERR_STATE, "sm_ordered_enter");
  misuse_case(c, K_MISUSE_ORDERED_UNORDERED_LOOP, SM_ERR_STATE, "sm_ordered_enter");
  misuse_case(c, K_MISUSE_ORDERED_TWICE, SM_ERR_STATE, "sm_ordered_enter");
  misuse_case(c, K_MISUSE_ARGS_MIDLOOP, 0, "sm_for_next");
  misuse_case(c, K_MISUSE_LOOP_IN_CRITICAL, 0, "sm_for_next");
  misuse_case(c, K_MISUSE_LOOP_IN_ORDERED, 0, "sm_for_next");
  misuse_case(c, K_MISUSE_BAD_SCHEDULE, 0, "sm_for_next");
  misuse_case(c, K_MISUSE_BAD_FLAGS, 0, "sm_for_next");
  misuse_case(c, K_MISUSE_NULL_LO, 0, "sm_for_next");
  misuse_case(c, K_MISUSE_RETURN_IN_CRITICAL, -1000, NULL);
  misuse_case(c, K_MISUSE_RETURN_IN_ORDERED, -1000, NULL);
  if (multi) {
    st = run_raw(c, K_MISUSE_LOOP_DIFFERS, 0, 0, msg, sizeof msg);
    CHECK_STATUS(st, SM_ERR_STATE, "workers reach a dynamic loop with different arguments");
    CHECK(strstr(msg, "different"), "loop with different arguments: message \"%s\"", msg);
    check_workers_gone(c, "loop differs");
    check_pool_works(c, "loop differs");
  }

  /* ---- a worker returning early while the others wait for it */
  if (multi) {
    st = run_raw(c, K_EARLY_BARRIER, 0, 0, msg, sizeof msg);
    CHECK_STATUS(st, SM_ERR_STATE, "worker 1 returns while the others wait at a barrier");
    CHECK(names_worker(msg, 1), "early return: the message does not name worker 1 (who left): \"%s\"", msg);
    /* process workers may be stopped (killed) before they note what sm_barrier returned */
    for (int w = 0; w < c->team && !proc; w++) {
      if (w == 1) continue;
      int r = atomic_load(&g_sh->result[w]);
      CHECK(r == SM_ERR_STATE || (c->team > 2 && r == SM_STOPPED),
            "early return: sm_barrier returned %d (%s) in worker %d, expected SM_ERR_STATE; message \"%s\"", r,
            sm_status_str((sm_status)r), w, g_sh->msg[w]);
      if (r == SM_ERR_STATE)
        CHECK(names_worker(g_sh->msg[w], 1), "early return: worker %d's sm_barrier message does not name worker 1: "
              "\"%s\"", w, g_sh->msg[w]);
    }
    CHECK(atomic_load(&g_sh->result[0]) == SM_ERR_STATE || c->team > 2 || proc,
          "with 2 workers, worker 0's sm_barrier must return SM_ERR_STATE");
    check_workers_gone(c, "early return");
    check_pool_works(c, "early return");
    run_case(c, K_EARLY_LOOP_END, 0, 0, SM_ERR_STATE, 1, NULL);
    run_case(c, K_EARLY_DYNAMIC_SLOTS, 0, 0, SM_ERR_STATE, 1, NULL);
    run_case(c, K_EARLY_ORDERED_CHUNK, 0, 0, SM_ERR_STATE, 1, NULL);
  }

  /* ---- process workers that die */
  if (proc && multi) {
    const int sigs[] = {SIGKILL, SIGSEGV};
    for (int s = 0; s < 2; s++) {
      const char *sname = sigs[s] == SIGKILL ? "SIGKILL" : "SIGSEGV";
      for (int k = K_DIE_NOW; k <= K_DIE_ENDLESS_BARRIER; k++) {
        const char *dm = run_case(c, k, 0, sigs[s], SM_ERR_WORKER_DIED, 1, NULL);
        CHECK(strstr(dm, sname) || (icontains(dm, "signal") && has_number(dm, sigs[s])),
              "%s: the message does not name %s: \"%s\"", kase_name(k), sname, dm);
      }
    }
  }
}

/* sm_for_next / sm_barrier / sm_single in a job of a plain map */
static int job_region_calls(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  (void)result;
  size_t lo = 77, hi = 77;
  int r = sm_for_next(c->pool, 0, 10, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi);
  JCHECK(r == 0, "job %zu: sm_for_next in a map job returned %d ([%zu, %zu))", job, r, lo, hi);
  JCHECK(strstr(last_err(), "sm_for_next"), "job %zu: sm_for_next in a map job: message \"%s\"", job, last_err());
  sm_status st = sm_barrier(c->pool);
  JCHECK(st == SM_ERR_STATE, "job %zu: sm_barrier in a map job returned %s", job, sm_status_str(st));
  JCHECK(strstr(last_err(), "sm_barrier"), "job %zu: sm_barrier in a map job: message \"%s\"", job, last_err());
  r = sm_single(c->pool);
  JCHECK(r == -1, "job %zu: sm_single in a map job returned %d", job, r);
  JCHECK(strstr(last_err(), "sm_single"), "job %zu: sm_single in a map job: message \"%s\"", job, last_err());
  return 0;
}

/* ------------------------------------------------------------------ interrupt */

static volatile sig_atomic_t g_handled;
static void on_signal(int sig) {
  (void)sig;
  g_handled++;
}

typedef struct {
  pthread_t target;
  int team;
  atomic_int done;
} sender_t;

/* Once every worker is in the region, sends SIGINT to the calling thread, again every 100 ms until
 * sm_parallel returned (the first one could land before the caller is waiting). */
static void *sender(void *arg) {
  sender_t *s = (sender_t *)arg;
  wait_atomic_ge(&g_sh->flag, s->team, 20000);
  for (int i = 0; i < 200 && !atomic_load(&s->done); i++) {
    pthread_kill(s->target, SIGINT);
    msleep(100);
  }
  return NULL;
}

static void interrupt_case(ctx_t *c, int kase) {
  char msg[1024], what[256];
  snprintf(what, sizeof what, "%s (%s backend, team of %d)", kase_name(kase), g_backend_name, c->team);
  g_handled = 0;
  sender_t snd;
  pthread_t th;
  snd.target = pthread_self();
  snd.team = c->team;
  atomic_store(&snd.done, 0);
  if (kase == K_INT_EXTERNAL) CHECK(pthread_create(&th, NULL, sender, &snd) == 0, "pthread_create");
  sm_status st = run_raw(c, kase, 0, 0, msg, sizeof msg);
  if (kase == K_INT_EXTERNAL) {
    atomic_store(&snd.done, 1);
    pthread_join(th, NULL);
  }
  CHECK_STATUS(st, SM_ERR_INTERRUPTED, "%s", what);
  CHECK(strstr(msg, "SIGINT") || (icontains(msg, "signal") && has_number(msg, SIGINT)),
        "%s: the message does not name SIGINT: \"%s\"", what, msg);
  if (kase == K_INT_EXTERNAL)
    CHECK(g_handled >= 1, "%s: the caller's handler never ran", what);
  else if (workers_are_processes(g_b))
    CHECK(g_handled == 0, "%s: the caller's handler ran %d times for a signal raised in a worker process", what,
          (int)g_handled);
  else
    CHECK(g_handled == 1, "%s: the caller's handler ran %d times, expected once", what, (int)g_handled);
  if (g_b == SM_BACKEND_THREAD && (kase == K_INT_BARRIER || kase == K_INT_EXTERNAL))
    for (int w = 0; w < c->team; w++)
      CHECK(atomic_load(&g_sh->result[w]) == SM_STOPPED, "%s: worker %d's sm_barrier returned %d, expected SM_STOPPED",
            what, w, atomic_load(&g_sh->result[w]));
  if (g_b == SM_BACKEND_THREAD && kase == K_INT_LOOP)
    for (int w = 0; w < c->team; w++)
      CHECK(atomic_load(&g_sh->result[w]) == 0, "%s: worker %d's endless loop did not end", what, w);
  struct sigaction now;
  CHECK(sigaction(SIGINT, NULL, &now) == 0, "sigaction query");
  CHECK(now.sa_handler == on_signal, "%s: afterwards the caller's SIGINT handler is not installed", what);
  check_workers_gone(c, what);
  check_pool_works(c, what);
}

static void interrupts(ctx_t *c) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGINT, &sa, NULL) == 0, "sigaction");
  c->fw = c->team >= 2 ? 1 : 0;
  printf("team of %d (%s backend):\n", c->team, g_backend_name);
  if (g_b == SM_BACKEND_SERIAL) {
    interrupt_case(c, K_INT_FINITE);
  } else {
    interrupt_case(c, K_INT_BARRIER);
    interrupt_case(c, K_INT_LOOP);
    interrupt_case(c, K_INT_FINITE);
    interrupt_case(c, K_INT_EXTERNAL);
  }
  signal(SIGINT, SIG_DFL);
}

int main(int argc, char **argv) {
  g_b = parse_backend(argc, argv);
  const char *mode = argc >= 3 ? argv[2] : "faults";
  watchdog(120);
  jfail_init();
  g_sh = (shared_t *)must_empty(1, sizeof(shared_t));
  int do_faults = strcmp(mode, "faults") == 0, do_int = strcmp(mode, "interrupt") == 0;
  CHECK(do_faults || do_int, "unknown mode \"%s\" (faults, interrupt)", mode);
  for (int n = 1; n <= 3; n++) {
    ctx_t *c = (ctx_t *)must_empty(1, sizeof *c); /* the workers of every backend see it now */
    c->pool = new_pool(n, g_b);
    c->team = g_b == SM_BACKEND_SERIAL ? 1 : n;
    if (do_faults) {
      faults(c);
      reset_shared();
      JRESET();
      CHECK_STATUS(sm_map(c->pool, 20, job_region_calls, NULL, 0, c), SM_OK,
                   "a map whose jobs call sm_for_next / sm_barrier / sm_single");
      check_pool_works(c, "region calls in map jobs");
    } else if (c->team >= 2 || n == 1) {
      interrupts(c);
    }
    sm_pool_free(c->pool);
    sm_free(c);
  }
  CHECK_NO_CHILDREN("end");
  sm_free(g_sh);
  printf("test_region_faults[%s %s]: OK\n", g_backend_name, mode);
  return 0;
}
