/* sm_ordered_enter/leave: a job's ordered section starts only after every job with a smaller index
 * has left its ordered section or finished without entering one.
 * - all jobs ordered, random durations before/inside/after: the log is exactly 0..n-1;
 * - only every third job uses ordered: log 0,3,6,...; inside the section every smaller job has left its
 *   section (ordered jobs) or returned (the others);
 * - a slow job 0 holds everyone back but the order is still exact;
 * - SM_STOP / an error / (process) a crashing worker in an all-ordered map never deadlocks, and the
 *   log is still strictly increasing. */
#include "testutil.h"

#define NMAX 400

typedef struct {
  atomic_int logpos;
  int log[NMAX];
  atomic_int left[NMAX];
  atomic_int done[NMAX];
  atomic_int entered[NMAX];
} shared_t;

typedef struct {
  sm_pool *pool;
  shared_t *sh;
  size_t njobs;
  int every;        /* jobs with job % every == 0 use ordered */
  long max_us;      /* random sleep bound */
  long slow0_ms;    /* job 0 sleeps this long before ordered */
  long special_job; /* -1 none */
  int special;      /* 1 SM_STOP, 2 error 42, 3 SIGSEGV */
  int check_prev;   /* verify the precondition inside the section */
} ctx_t;

static int work(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  shared_t *sh = c->sh;
  (void)result;
  uint32_t h = hash32((uint32_t)job * 7919u + (uint32_t)c->njobs);
  if (c->max_us) usleep_full((long)(h % (uint32_t)c->max_us));
  if (job == 0 && c->slow0_ms) msleep(c->slow0_ms);
  if ((long)job == c->special_job) {
    if (c->special == 3) raise(SIGSEGV);
    atomic_store(&sh->done[job], 1);
    return c->special == 1 ? SM_STOP : 42;
  }
  if (job % (size_t)c->every == 0) {
    sm_status s = sm_ordered_enter(c->pool);
    if (c->special_job >= 0 && s != SM_OK) { /* released because the map stopped */
      atomic_store(&sh->done[job], 1);
      return 0;
    }
    JCHECK(s == SM_OK, "sm_ordered_enter returned %s in job %zu: %s", sm_status_str(s), job, last_err());
    atomic_store(&sh->entered[job], 1);
    if (c->check_prev)
      for (size_t i = 0; i < job; i++) {
        if (i % (size_t)c->every == 0)
          JCHECK(atomic_load(&sh->left[i]), "job %zu entered its ordered section before job %zu left its own", job, i);
        else
          JCHECK(atomic_load(&sh->done[i]), "job %zu entered its ordered section before job %zu (which does not use "
                 "ordered) finished", job, i);
      }
    int pos = atomic_fetch_add(&sh->logpos, 1);
    if (pos < NMAX) sh->log[pos] = (int)job;
    if (c->max_us) usleep_full((long)((h >> 8) % (uint32_t)(c->max_us / 4 + 1)));
    atomic_store(&sh->left[job], 1);
    s = sm_ordered_leave(c->pool);
    JCHECK(s == SM_OK, "sm_ordered_leave returned %s in job %zu: %s", sm_status_str(s), job, last_err());
  }
  if (c->max_us) usleep_full((long)((h >> 16) % (uint32_t)c->max_us));
  atomic_store(&sh->done[job], 1); /* last thing before returning */
  return 0;
}

static void fmt_log(shared_t *sh, char *buf, size_t cap) {
  size_t off = 0;
  int n = atomic_load(&sh->logpos);
  for (int i = 0; i < n && i < NMAX && off + 16 < cap; i++) off += (size_t)snprintf(buf + off, cap - off, "%d ", sh->log[i]);
}

static void run_exact(sm_pool *pool, shared_t *sh, size_t njobs, int every, long max_us, long slow0, const char *what) {
  ctx_t *c = (ctx_t *)shared_dup(&(ctx_t){pool, sh, njobs, every, max_us, slow0, -1, 0, 1}, sizeof(ctx_t));
  memset(sh, 0, sizeof *sh);
  CHECK_STATUS(sm_map(pool, njobs, work, NULL, 0, c), SM_OK, "%s", what);
  sm_free(c);
  int n = atomic_load(&sh->logpos);
  int want = (int)((njobs + (size_t)every - 1) / (size_t)every);
  char buf[4096];
  fmt_log(sh, buf, sizeof buf);
  CHECK(n == want, "%s: %d ordered sections ran, expected %d", what, n, want);
  for (int i = 0; i < n; i++)
    CHECK(sh->log[i] == i * every, "%s: ordered log position %d holds job %d, expected job %d; log: %s", what, i,
          sh->log[i], i * every, buf);
}

static void run_special(sm_pool *pool, shared_t *sh, long special_job, int special, sm_status expected, const char *what) {
  ctx_t *c = (ctx_t *)shared_dup(&(ctx_t){pool, sh, 200, 1, 1500, 0, special_job, special, 0}, sizeof(ctx_t));
  memset(sh, 0, sizeof *sh);
  sm_status st = sm_map(pool, 200, work, NULL, 0, c);
  sm_free(c);
  CHECK_STATUS(st, expected, "%s", what);
  int n = atomic_load(&sh->logpos);
  char buf[4096];
  fmt_log(sh, buf, sizeof buf);
  if (special != 3) /* stop/error: running jobs finish, so jobs 0..k-1 all ran their sections */
    CHECK(n >= special_job, "%s: only %d ordered sections ran, jobs 0..%ld must have run theirs; log: %s", what, n,
        special_job - 1, buf);
  for (int i = 0; i < n && i < NMAX; i++) {
    if (i < special_job) CHECK(sh->log[i] == i, "%s: log position %d holds job %d; log: %s", what, i, sh->log[i], buf);
    if (i > 0) CHECK(sh->log[i] > sh->log[i - 1], "%s: ordered log not increasing; log: %s", what, buf);
  }
  for (int i = 0; i < n; i++)
    CHECK(sh->log[i] != special_job, "%s: the special job logged", what);
  printf("%s: %s, %d sections ran\n", what, sm_status_str(st), n);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(90);
  jfail_init();
  sm_pool *pool = new_pool(b == SM_BACKEND_SERIAL ? 1 : 3, b);
  shared_t *sh = (shared_t *)must_empty(1, sizeof(shared_t));

  run_exact(pool, sh, 300, 1, 1000, 0, "all jobs ordered, random durations");
  run_exact(pool, sh, 300, 1, 0, 0, "all jobs ordered, instant");
  run_exact(pool, sh, 300, 3, 1000, 0, "every third job ordered, random durations");
  run_exact(pool, sh, 301, 5, 800, 0, "every fifth job ordered");
  run_exact(pool, sh, 60, 1, 300, 300, "all ordered, job 0 sleeps 300 ms first");
  run_exact(pool, sh, 60, 2, 300, 300, "every other job ordered, job 0 sleeps 300 ms first");
  run_exact(pool, sh, 1, 1, 0, 0, "single ordered job");

  run_special(pool, sh, 10, 1, SM_STOPPED, "all ordered, SM_STOP in job 10");
  run_exact(pool, sh, 100, 1, 200, 0, "ordered map after SM_STOP");
  run_special(pool, sh, 10, 2, SM_ERR_JOB, "all ordered, error in job 10");
  run_exact(pool, sh, 100, 1, 200, 0, "ordered map after a job error");
  if (b == SM_BACKEND_PROCESS) {
    run_special(pool, sh, 10, 3, SM_ERR_WORKER_DIED, "all ordered, SIGSEGV in job 10");
    run_exact(pool, sh, 100, 1, 200, 0, "ordered map after a dead worker");
  }
  CHECK_NO_CHILDREN("end");
  sm_free(sh);
  sm_pool_free(pool);
  printf("test_ordered[%s]: OK\n", g_backend_name);
  return 0;
}
