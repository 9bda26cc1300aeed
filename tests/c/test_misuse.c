/* Misuse of critical/ordered and of allocation calls; none of it may crash or deadlock.
 * - outside any map: critical/ordered enter/leave -> SM_ERR_STATE with a message;
 * - NULL pool -> SM_ERR_INVALID (outside and inside a job);
 * - inside a job: leave without enter, enter twice, a second ordered section, ordered while inside
 *   critical -> SM_ERR_STATE with a message, and the job goes on (the map still returns SM_OK);
 * - sm_empty inside a job -> NULL with a message; sm_free inside a job is refused (the memory stays
 *   usable) with a message; sm_pool_free inside a job is refused;
 * - a job returning while holding critical or ordered: no deadlock for the other jobs, the map
 *   returns SM_ERR_STATE naming the job, and the next map (using the same section) works. */
#include "testutil.h"

#define NJ 24
#define NCASE 24

typedef struct {
  int st[NJ][NCASE];        /* statuses seen by each job */
  char msg[NCASE][256];     /* messages seen by job 0 */
  void *empty_ret[NJ];
  atomic_int counter_atomic;
  long counter;             /* protected by critical */
  atomic_int logpos;
  int log[1000];
  int *victim;              /* caller-allocated sm_empty memory that jobs try to sm_free */
} shared_t;

typedef struct {
  sm_pool *pool;
  shared_t *sh;
  long hold_job;  /* job that returns while holding the section */
  int hold_kind;  /* 1 critical, 2 ordered */
} ctx_t;

enum {
  C_CLEAVE_NO_ENTER, C_CENTER1, C_CENTER2, C_CLEAVE1, C_CLEAVE2,
  C_OLEAVE_NO_ENTER, C_OENTER1, C_OENTER2, C_OLEAVE1, C_OLEAVE2, C_OENTER_AGAIN,
  C_CNULL, C_CLNULL, C_ONULL, C_OLNULL,
  C_EMPTY, C_FREE, C_POOLFREE, C_C_FOR_O, C_O_IN_C, C_C_LEAVE_AFTER,
  NCASES_USED
};
static const char *case_names[] = {
  "critical_leave without enter", "critical_enter", "critical_enter again (already inside)", "critical_leave",
  "critical_leave again (not inside)", "ordered_leave without enter", "ordered_enter",
  "ordered_enter again (already inside)", "ordered_leave", "ordered_leave again (not inside)",
  "ordered_enter for a second section", "critical_enter(NULL)", "critical_leave(NULL)", "ordered_enter(NULL)",
  "ordered_leave(NULL)", "sm_empty inside a job", "sm_free inside a job", "sm_pool_free inside a job",
  "critical_enter (before ordered)", "ordered_enter while inside critical", "critical_leave (after ordered)",
};

static void rec(ctx_t *c, size_t job, int k, sm_status s) {
  c->sh->st[job][k] = (int)s;
  if (job == 0) snprintf(c->sh->msg[k], sizeof c->sh->msg[k], "%s", last_err());
}

static int work_misuse(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  sm_pool *p = c->pool;
  (void)result;
  rec(c, job, C_CLEAVE_NO_ENTER, sm_critical_leave(p));
  rec(c, job, C_CENTER1, sm_critical_enter(p));
  rec(c, job, C_CENTER2, sm_critical_enter(p)); /* must not deadlock */
  c->sh->counter++;
  rec(c, job, C_CLEAVE1, sm_critical_leave(p));
  rec(c, job, C_CLEAVE2, sm_critical_leave(p));

  rec(c, job, C_OLEAVE_NO_ENTER, sm_ordered_leave(p));
  rec(c, job, C_OENTER1, sm_ordered_enter(p));
  rec(c, job, C_OENTER2, sm_ordered_enter(p));
  int pos = atomic_fetch_add(&c->sh->logpos, 1);
  if (pos < 1000) c->sh->log[pos] = (int)job;
  rec(c, job, C_OLEAVE1, sm_ordered_leave(p));
  rec(c, job, C_OLEAVE2, sm_ordered_leave(p));
  sm_status again = sm_ordered_enter(p);
  rec(c, job, C_OENTER_AGAIN, again);
  if (again == SM_OK) sm_ordered_leave(p); /* keep the job balanced; the status is checked by the caller */

  rec(c, job, C_CNULL, sm_critical_enter(NULL));
  rec(c, job, C_CLNULL, sm_critical_leave(NULL));
  rec(c, job, C_ONULL, sm_ordered_enter(NULL));
  rec(c, job, C_OLNULL, sm_ordered_leave(NULL));

  void *e = sm_empty(16, 8);
  c->sh->empty_ret[job] = e;
  rec(c, job, C_EMPTY, e ? SM_OK : SM_ERR_STATE);
  if (e) sm_free(e);
  /* sm_free: make a different message current, then free; the message must change */
  sm_critical_enter(NULL);
  char before[256];
  snprintf(before, sizeof before, "%s", last_err());
  sm_free(c->sh->victim);
  rec(c, job, C_FREE, (strcmp(before, last_err()) != 0 && last_err()[0]) ? SM_ERR_STATE : SM_OK);
  c->sh->victim[job] = (int)job + 1; /* still mapped */
  /* sm_pool_free inside a job: refused (the pool runs this map) */
  sm_critical_enter(NULL);
  snprintf(before, sizeof before, "%s", last_err());
  sm_pool_free(p);
  rec(c, job, C_POOLFREE, (strcmp(before, last_err()) != 0 && last_err()[0]) ? SM_ERR_STATE : SM_OK);
  return 0;
}

static int work_ordered_in_critical(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  (void)result;
  rec(c, job, C_C_FOR_O, sm_critical_enter(c->pool));
  sm_status s = sm_ordered_enter(c->pool);
  rec(c, job, C_O_IN_C, s);
  if (s == SM_OK) sm_ordered_leave(c->pool);
  rec(c, job, C_C_LEAVE_AFTER, sm_critical_leave(c->pool));
  return 0;
}

/* One job returns while holding a section; all jobs use that section. */
static int work_hold(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  (void)result;
  if (c->hold_kind == 1) {
    sm_status s = sm_critical_enter(c->pool);
    JCHECK(s == SM_OK, "critical_enter in job %zu: %s (%s)", job, sm_status_str(s), last_err());
    c->sh->counter++;
    if ((long)job == c->hold_job) return 0; /* still inside critical */
    s = sm_critical_leave(c->pool);
    JCHECK(s == SM_OK, "critical_leave in job %zu: %s", job, sm_status_str(s));
  } else {
    sm_status s = sm_ordered_enter(c->pool);
    JCHECK(s == SM_OK, "ordered_enter in job %zu: %s (%s)", job, sm_status_str(s), last_err());
    int pos = atomic_fetch_add(&c->sh->logpos, 1);
    if (pos < 1000) c->sh->log[pos] = (int)job;
    if ((long)job == c->hold_job) return 0; /* still inside ordered */
    s = sm_ordered_leave(c->pool);
    JCHECK(s == SM_OK, "ordered_leave in job %zu: %s", job, sm_status_str(s));
  }
  atomic_fetch_add(&c->sh->counter_atomic, 1);
  return 0;
}

static void expect_state(sm_status s, sm_status want, const char *what, const char *msg, const char *kw1,
                         const char *kw2) {
  CHECK(s == want, "%s: returned %s, expected %s (message \"%s\")", what, sm_status_str(s), sm_status_str(want), msg);
  if (want != SM_OK) {
    CHECK(msg[0] != 0, "%s: returned %s but sm_last_error() is empty", what, sm_status_str(s));
    if (kw1) CHECK(icontains(msg, kw1) || (kw2 && icontains(msg, kw2)),
                   "%s: message \"%s\" should mention \"%s\"%s%s%s", what, msg, kw1, kw2 ? " or \"" : "",
                   kw2 ? kw2 : "", kw2 ? "\"" : "");
  }
}

static void hold_case(sm_pool *pool, shared_t *sh, int kind, long hold_job, size_t njobs) {
  const char *what = kind == 1 ? "job returns inside critical" : "job returns inside ordered";
  ctx_t *c = (ctx_t *)shared_dup(&(ctx_t){pool, sh, hold_job, kind}, sizeof(ctx_t));
  sh->counter = 0;
  atomic_store(&sh->counter_atomic, 0);
  atomic_store(&sh->logpos, 0);
  sm_status st = sm_map(pool, njobs, work_hold, NULL, 0, c);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", last_err());
  printf("%s (job %ld): %s, \"%s\"\n", what, hold_job, sm_status_str(st), msg);
  CHECK_STATUS(st, SM_ERR_STATE, "%s (job %ld)", what, hold_job);
  CHECK(icontains(msg, "job") && has_number(msg, hold_job), "%s: message must name job %ld: \"%s\"", what, hold_job,
        msg);
  CHECK(icontains(msg, kind == 1 ? "critical" : "ordered"), "%s: message should say which section: \"%s\"", what, msg);
  CHECK_NO_CHILDREN(what);
  /* the next map using the same section works */
  c->hold_job = -1;
  sh->counter = 0;
  atomic_store(&sh->counter_atomic, 0);
  atomic_store(&sh->logpos, 0);
  CHECK_STATUS(sm_map(pool, 200, work_hold, NULL, 0, c), SM_OK, "map after: %s", what);
  CHECK(atomic_load(&sh->counter_atomic) == 200, "map after %s: %d of 200 jobs completed", what,
        atomic_load(&sh->counter_atomic));
  if (kind == 1) CHECK(sh->counter == 200, "map after %s: protected counter %ld, expected 200", what, sh->counter);
  else
    for (int i = 0; i < 200; i++) CHECK(sh->log[i] == i, "map after %s: ordered log[%d] = %d", what, i, sh->log[i]);
  sm_free(c);
}

/* sm_pool_free from another thread while the pool runs a map: refused, the map completes. */
typedef struct {
  sm_pool *pool;
  atomic_int *started;
  atomic_int *finished;
  char msg[512];
  int refused;
} freer_t;

static int work_slow(void *vctx, size_t job, void *result) {
  freer_t *f = (freer_t *)vctx;
  (void)result;
  atomic_fetch_add(f->started, 1);
  msleep(job < 2 ? 400 : 5);
  atomic_fetch_add(f->finished, 1);
  return 0;
}

static void *freer_thread(void *arg) {
  freer_t *f = (freer_t *)arg;
  if (!wait_atomic_ge(f->started, 1, 20000)) return NULL;
  sm_pool_free(f->pool); /* must be refused: the pool is running a map in the main thread */
  snprintf(f->msg, sizeof f->msg, "%s", last_err());
  f->refused = f->msg[0] != 0;
  return NULL;
}

static void free_during_map(sm_backend b) {
  freer_t *f = (freer_t *)must_empty(1, sizeof *f); /* the workers of every backend see it now */
  f->pool = new_pool(2, b);
  f->started = (atomic_int *)must_empty(2, sizeof(atomic_int));
  f->finished = f->started + 1;
  pthread_t th;
  CHECK(pthread_create(&th, NULL, freer_thread, f) == 0, "pthread_create");
  sm_status st = sm_map(f->pool, 20, work_slow, NULL, 0, f);
  pthread_join(th, NULL);
  printf("sm_pool_free while the pool runs a map -> \"%s\"\n", f->msg);
  CHECK(st == SM_OK, "map during which another thread called sm_pool_free returned %s (%s)", sm_status_str(st),
        last_err());
  CHECK(atomic_load(f->finished) == 20, "%d of 20 jobs finished", atomic_load(f->finished));
  CHECK(f->refused, "sm_pool_free while the pool runs a map set no message (it must be refused)");
  CHECK(icontains(f->msg, "map") || icontains(f->msg, "running") || icontains(f->msg, "busy"),
        "sm_pool_free refusal message should say the pool is running a map: \"%s\"", f->msg);
  /* the pool still works, then can be freed */
  atomic_store(f->started, 0);
  atomic_store(f->finished, 0);
  CHECK_STATUS(sm_map(f->pool, 4, work_slow, NULL, 0, f), SM_OK, "map after the refused sm_pool_free");
  sm_pool_free(f->pool);
  sm_free(f->started);
  sm_free(f);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(60);
  jfail_init();
  sm_pool *pool = new_pool(b == SM_BACKEND_SERIAL ? 1 : 3, b);

  /* outside any map */
  struct { sm_status (*fn)(sm_pool *); const char *name; const char *kw; } outside[] = {
    {sm_critical_enter, "sm_critical_enter outside a map", "critical"},
    {sm_critical_leave, "sm_critical_leave outside a map", "critical"},
    {sm_ordered_enter, "sm_ordered_enter outside a map", "ordered"},
    {sm_ordered_leave, "sm_ordered_leave outside a map", "ordered"},
  };
  for (int i = 0; i < 4; i++) {
    sm_status s = outside[i].fn(pool);
    expect_state(s, SM_ERR_STATE, outside[i].name, last_err(), outside[i].kw, NULL);
    s = outside[i].fn(NULL);
    char nm[128];
    snprintf(nm, sizeof nm, "%s with a NULL pool", outside[i].name);
    expect_state(s, SM_ERR_INVALID, nm, last_err(), "pool", "null");
  }

  shared_t *sh = (shared_t *)must_empty(1, sizeof(shared_t));
  sh->victim = (int *)must_empty(NJ, sizeof(int));
  ctx_t *c = (ctx_t *)shared_dup(&(ctx_t){pool, sh, -1, 0}, sizeof(ctx_t));
  CHECK_STATUS(sm_map(pool, NJ, work_misuse, NULL, 0, c), SM_OK,
               "misuse map: every misuse returns SM_ERR_STATE and the job goes on");
  struct { int k; sm_status want; const char *kw1, *kw2; } exp[] = {
    {C_CLEAVE_NO_ENTER, SM_ERR_STATE, "critical", NULL}, {C_CENTER1, SM_OK, NULL, NULL},
    {C_CENTER2, SM_ERR_STATE, "critical", NULL},         {C_CLEAVE1, SM_OK, NULL, NULL},
    {C_CLEAVE2, SM_ERR_STATE, "critical", NULL},         {C_OLEAVE_NO_ENTER, SM_ERR_STATE, "ordered", NULL},
    {C_OENTER1, SM_OK, NULL, NULL},                      {C_OENTER2, SM_ERR_STATE, "ordered", NULL},
    {C_OLEAVE1, SM_OK, NULL, NULL},                      {C_OLEAVE2, SM_ERR_STATE, "ordered", NULL},
    {C_OENTER_AGAIN, SM_ERR_STATE, "ordered", NULL},     {C_CNULL, SM_ERR_INVALID, "pool", "null"},
    {C_CLNULL, SM_ERR_INVALID, "pool", "null"},          {C_ONULL, SM_ERR_INVALID, "pool", "null"},
    {C_OLNULL, SM_ERR_INVALID, "pool", "null"},          {C_EMPTY, SM_ERR_STATE, NULL, NULL},
    {C_FREE, SM_ERR_STATE, NULL, NULL},                  {C_POOLFREE, SM_ERR_STATE, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof exp / sizeof exp[0]; i++) {
    int k = exp[i].k;
    for (int j = 0; j < NJ; j++) {
      char what[160];
      snprintf(what, sizeof what, "job %d: %s", j, case_names[k]);
      if (k == C_EMPTY)
        CHECK(sh->empty_ret[j] == NULL, "%s returned %p, expected NULL (memory allocated in a job is not shared)", what,
              sh->empty_ret[j]);
      else if (k == C_FREE || k == C_POOLFREE)
        CHECK(sh->st[j][k] == SM_ERR_STATE, "%s: sm_last_error() did not change: the refusal must set a message", what);
      else
        expect_state((sm_status)sh->st[j][k], exp[i].want, what, j == 0 ? sh->msg[k] : "(see job 0)",
                     j == 0 ? exp[i].kw1 : NULL, exp[i].kw2);
    }
    if (exp[i].want != SM_OK) printf("%-40s -> \"%s\"\n", case_names[k], sh->msg[k]);
  }
  CHECK(sh->msg[C_EMPTY][0] != 0, "sm_empty inside a job returned NULL without a message");
  const int in_job_cases[] = {C_EMPTY, C_FREE, C_POOLFREE};
  for (int i = 0; i < 3; i++)
    CHECK(icontains(sh->msg[in_job_cases[i]], "job") || icontains(sh->msg[in_job_cases[i]], "worker"),
          "%s: the refusal message should say it is because of the job/worker context: \"%s\"",
          case_names[in_job_cases[i]], sh->msg[in_job_cases[i]]);
  CHECK(sh->counter == NJ, "critical-protected counter = %ld, expected %d", sh->counter, NJ);
  for (int j = 0; j < NJ; j++) {
    CHECK(sh->log[j] == j, "ordered log[%d] = %d (misuse calls must not break the order)", j, sh->log[j]);
    CHECK(sh->victim[j] == j + 1, "sm_free inside a job freed the caller's memory (victim[%d] = %d)", j, sh->victim[j]);
  }
  /* the pool survived sm_pool_free inside a job */
  sh->counter = 0;
  c->hold_job = -1;
  c->hold_kind = 1;
  CHECK_STATUS(sm_map(pool, 50, work_hold, NULL, 0, c), SM_OK, "map after sm_pool_free was refused inside a job");

  /* ordered while inside critical */
  memset(sh->st, 0, sizeof sh->st);
  CHECK_STATUS(sm_map(pool, NJ, work_ordered_in_critical, NULL, 0, c), SM_OK, "ordered-inside-critical map");
  for (int j = 0; j < NJ; j++) {
    CHECK(sh->st[j][C_C_FOR_O] == SM_OK, "job %d: critical_enter returned %s", j, sm_status_str(sh->st[j][C_C_FOR_O]));
    CHECK(sh->st[j][C_O_IN_C] == SM_ERR_STATE,
          "job %d: ordered_enter while inside critical returned %s, expected SM_ERR_STATE (header: \"not while inside "
          "critical\")", j, sm_status_str(sh->st[j][C_O_IN_C]));
    CHECK(sh->st[j][C_C_LEAVE_AFTER] == SM_OK, "job %d: critical_leave returned %s", j,
          sm_status_str(sh->st[j][C_C_LEAVE_AFTER]));
  }
  printf("%-40s -> \"%s\"\n", case_names[C_O_IN_C], sh->msg[C_O_IN_C]);

  /* returning while holding a section */
  hold_case(pool, sh, 1, 5, 40);
  hold_case(pool, sh, 2, 5, 40);
  hold_case(pool, sh, 1, 0, 40);
  hold_case(pool, sh, 2, 39, 40);

  free_during_map(b);

  sm_free(sh->victim);
  sm_free(sh);
  sm_pool_free(pool);
  printf("test_misuse[%s]: OK\n", g_backend_name);
  return 0;
}
