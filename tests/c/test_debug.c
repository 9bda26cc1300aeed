/* Debug mode runs every map serially in the calling process and thread (worker id 0, job order).
 * Usage: test_debug <backend> env   (ctest sets SM_DEBUG=1)
 *        test_debug <backend> api   (sm_set_debug(1) / sm_set_debug(0))
 * In debug mode the rest of the contract still holds: results, reduce, SM_STOP, job errors,
 * critical/ordered, and sm_empty refusing inside a job (so debug mode reproduces process mode). */
#include "testutil.h"

#define NJ 80

typedef struct {
  sm_pool *pool;
  pid_t pid;
  pid_t tid;
  size_t next;
  int stop_job, err_job;
} ctx_t;

static int work(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  JCHECK(getpid() == c->pid, "debug mode: job %zu ran in pid %d, caller is %d", job, (int)getpid(), (int)c->pid);
  JCHECK(my_tid() == c->tid, "debug mode: job %zu ran in thread %d, caller thread is %d", job, (int)my_tid(),
         (int)c->tid);
  JCHECK(sm_worker_id() == 0, "debug mode: sm_worker_id() = %d in job %zu, expected 0", sm_worker_id(), job);
  JCHECK(job == c->next, "debug mode: job %zu ran when job %zu was expected (job order)", job, c->next);
  c->next++;
  void *e = sm_empty(4, 4);
  JCHECK(e == NULL, "debug mode: sm_empty inside a job returned memory (must refuse as in process mode)");
  JCHECK(last_err()[0] != 0, "debug mode: sm_empty refused without a message");
  JCHECK(sm_critical_enter(c->pool) == SM_OK, "critical_enter in job %zu: %s", job, last_err());
  JCHECK(sm_critical_leave(c->pool) == SM_OK, "critical_leave in job %zu: %s", job, last_err());
  JCHECK(sm_ordered_enter(c->pool) == SM_OK, "ordered_enter in job %zu: %s", job, last_err());
  JCHECK(sm_ordered_leave(c->pool) == SM_OK, "ordered_leave in job %zu: %s", job, last_err());
  *(size_t *)result = job + 5;
  if ((int)job == c->stop_job) return SM_STOP;
  if ((int)job == c->err_job) return 42;
  return 0;
}

static reduce_log_t g_rlog;
static int reduce(void *vctx, size_t job, void *result) {
  (void)vctx;
  CHECK(*(size_t *)result == job + 5, "reduce: job %zu result %zu", job, *(size_t *)result);
  return rlog_add(&g_rlog, job);
}

/* pid of the job (for the non-debug check), via sm_empty */
static int work_pid(void *vctx, size_t job, void *result) {
  (void)job;
  (void)result;
  atomic_int *p = (atomic_int *)vctx;
  atomic_store(p, (int)getpid());
  return 0;
}

static void debug_maps(sm_pool *pool, const char *how) {
  /* sm_empty memory: debug mode refuses what the workers of the pool's backend could not see */
  ctx_t *c = (ctx_t *)shared_dup(&(ctx_t){pool, getpid(), my_tid(), 0, -1, -1}, sizeof(ctx_t));
  rlog_reset(&g_rlog);
  CHECK_STATUS(sm_map(pool, NJ, work, reduce, sizeof(size_t), c), SM_OK, "debug map (%s)", how);
  CHECK(c->next == NJ, "debug map (%s): %zu jobs ran in the caller, expected %d", how, c->next, NJ);
  CHECK_RLOG_PREFIX(&g_rlog, NJ, "debug map");

  c->next = 0;
  c->stop_job = 10;
  rlog_reset(&g_rlog);
  CHECK_STATUS(sm_map(pool, NJ, work, reduce, sizeof(size_t), c), SM_STOPPED, "debug map with SM_STOP (%s)", how);
  CHECK(c->next == 11, "debug map with SM_STOP in job 10: %zu jobs ran, expected 11", c->next);
  CHECK_RLOG_PREFIX(&g_rlog, 11, "debug map with SM_STOP");

  c->next = 0;
  c->stop_job = -1;
  c->err_job = 13;
  rlog_reset(&g_rlog);
  sm_status st = sm_map(pool, NJ, work, reduce, sizeof(size_t), c);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", last_err());
  CHECK_STATUS(st, SM_ERR_JOB, "debug map with an error in job 13 (%s)", how);
  CHECK(has_number(msg, 13) && has_number(msg, 42), "debug map: SM_ERR_JOB message should name job 13 and 42: \"%s\"",
        msg);
  CHECK(c->next == 14, "debug map with error in job 13: %zu jobs ran, expected 14", c->next);
  CHECK_RLOG_PREFIX(&g_rlog, 13, "debug map with an error");
  CHECK_NO_CHILDREN("debug maps");
  sm_free(c);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  CHECK(argc >= 3 && (strcmp(argv[2], "env") == 0 || strcmp(argv[2], "api") == 0), "usage: test_debug <backend> env|api");
  int env = strcmp(argv[2], "env") == 0;
  watchdog(60);
  jfail_init();
  rlog_init(&g_rlog, NJ);
  atomic_int *pidbox = (atomic_int *)must_empty(1, sizeof(atomic_int));
  if (env) {
    const char *e = getenv("SM_DEBUG");
    CHECK(e && strcmp(e, "1") == 0, "this mode expects ctest to set SM_DEBUG=1 (got %s)", e ? e : "unset");
    sm_pool *pool = new_pool(3, b);
    debug_maps(pool, "SM_DEBUG=1");
    sm_pool_free(pool);
  } else {
    CHECK(getenv("SM_DEBUG") == NULL, "api mode must run without SM_DEBUG in the environment");
    sm_pool *pool = new_pool(3, b);
    if (b == SM_BACKEND_PROCESS) { /* sanity: without debug, jobs run in another process */
      CHECK_STATUS(sm_map(pool, 4, work_pid, NULL, 0, pidbox), SM_OK, "map before debug");
      CHECK(atomic_load(pidbox) != getpid(), "process backend ran a job in the caller without debug mode");
    }
    sm_set_debug(1); /* after the pool exists */
    debug_maps(pool, "sm_set_debug(1) after sm_pool_new");
    sm_pool *pool2 = new_pool(2, b); /* created while debug is on */
    debug_maps(pool2, "sm_set_debug(1) before sm_pool_new");
    sm_set_debug(0);
    if (b == SM_BACKEND_PROCESS) {
      atomic_store(pidbox, 0);
      CHECK_STATUS(sm_map(pool, 4, work_pid, NULL, 0, pidbox), SM_OK, "map after sm_set_debug(0)");
      CHECK(atomic_load(pidbox) != 0 && atomic_load(pidbox) != getpid(),
            "after sm_set_debug(0) the process backend still runs jobs in the caller");
      atomic_store(pidbox, 0);
      CHECK_STATUS(sm_map(pool2, 4, work_pid, NULL, 0, pidbox), SM_OK, "map after sm_set_debug(0)");
      CHECK(atomic_load(pidbox) != 0 && atomic_load(pidbox) != getpid(),
            "after sm_set_debug(0) the process backend still runs jobs in the caller (pool created in debug mode)");
    }
    sm_pool_free(pool2);
    sm_pool_free(pool);
  }
  sm_free(pidbox);
  printf("test_debug[%s %s]: OK\n", g_backend_name, argv[2]);
  return 0;
}
