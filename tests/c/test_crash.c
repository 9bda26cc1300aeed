/* A job that kills its worker.
 * process backend: a worker that dies (SIGSEGV, SIGKILL, exit(3), _exit(0)) is an error, not a crash:
 *   sm_map returns SM_ERR_WORKER_DIED, the message names the job, the pid and the signal / exit code,
 *   reduce ran for exactly the jobs before it, the other workers are killed and reaped (no waiting for
 *   their long jobs), no zombie or descriptor is left, and the same pool runs the next map.  A worker
 *   killed inside critical / ordered does not deadlock the others, and the sections work in the next map.
 * thread / serial backends: a crashing job takes the whole process down (documented contract);
 *   pinned in a forked subprocess: death by SIGSEGV, or exit status 3 for exit(3). */
#include "testutil.h"

enum { DIE_SEGV, DIE_KILL, DIE_EXIT3, DIE_EXIT0, DIE_ABORT };

typedef struct {
  atomic_int calls[1000];
  atomic_int dead_pid;          /* pid of the worker that dies */
  pids_t pids;                  /* pids seen by jobs (to check they are all gone) */
} shared_t;

typedef struct {
  shared_t *sh;
  long die_job;     /* -1: every job dies */
  int how;
  long long_ms;     /* jobs > die_job sleep this long (0: instant) */
  reduce_log_t rlog;
} ctx_t;

static void die(int how) {
  switch (how) {
    case DIE_SEGV: {
      volatile int *volatile p = NULL;
      *p = 1;
      raise(SIGSEGV);
      break;
    }
    case DIE_KILL: raise(SIGKILL); break;
    case DIE_EXIT3: exit(3);
    case DIE_EXIT0: _exit(0);
    case DIE_ABORT: abort();
  }
}

static int work(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  atomic_fetch_add(&c->sh->calls[job], 1);
  pids_note(&c->sh->pids);
  *(uint32_t *)result = (uint32_t)job + 7;
  if (c->die_job < 0 || (long)job == c->die_job) {
    atomic_store(&c->sh->dead_pid, (int)getpid());
    die(c->how);
  }
  if (c->long_ms && (long)job > c->die_job) msleep(c->long_ms);
  return 0;
}

static int reduce(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  CHECK(*(uint32_t *)result == (uint32_t)job + 7, "reduce: wrong result for job %zu", job);
  return rlog_add(&c->rlog, job);
}

static int work_ok(void *vctx, size_t job, void *result) {
  (void)vctx;
  *(uint32_t *)result = (uint32_t)job + 7;
  return 0;
}

static void check_gone(shared_t *sh, const char *what) {
  for (int i = 0; i < pids_count(&sh->pids); i++) {
    pid_t p = atomic_load(&sh->pids.pid[i]);
    int alive = kill(p, 0) == 0;
    char st = proc_state(p, NULL);
    CHECK(!alive, "%s: worker pid %d still exists after sm_map returned (state %c)", what, (int)p, st ? st : '?');
  }
}

static const char *how_name(int how) {
  switch (how) {
    case DIE_SEGV: return "SIGSEGV";
    case DIE_KILL: return "SIGKILL";
    case DIE_EXIT3: return "exit(3)";
    case DIE_EXIT0: return "_exit(0)";
    default: return "abort()";
  }
}

static void process_case(sm_pool *pool, ctx_t *c, size_t njobs, long die_job, int how, long long_ms, int fds0) {
  char what[160];
  snprintf(what, sizeof what, "%s in job %ld of %zu (%d workers%s)", how_name(how), die_job, njobs,
           sm_pool_nworkers(pool), long_ms ? ", later jobs sleep 100 s" : "");
  memset(c->sh, 0, sizeof *c->sh);
  rlog_reset(&c->rlog);
  c->die_job = die_job;
  c->how = how;
  c->long_ms = long_ms;
  sm_status st = sm_map(pool, njobs, work, reduce, sizeof(uint32_t), c);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", last_err());
  printf("%s: status %s, sm_last_error() = \"%s\"\n", what, sm_status_str(st), msg);
  CHECK_STATUS(st, SM_ERR_WORKER_DIED, "%s", what);
  long k = die_job < 0 ? 0 : die_job;
  CHECK_RLOG_PREFIX(&c->rlog, k, what);
  for (long j = 0; j < k; j++)
    CHECK(atomic_load(&c->sh->calls[j]) == 1, "%s: job %ld ran %d times", what, j, atomic_load(&c->sh->calls[j]));
  pid_t dp = atomic_load(&c->sh->dead_pid);
  if (die_job >= 0)
    CHECK(icontains(msg, "job") && has_number(msg, die_job), "%s: message must name job %ld: \"%s\"", what, die_job,
          msg);
  if (die_job >= 0) {
    CHECK(has_number(msg, dp), "%s: message must name the pid %d of the dead worker: \"%s\"", what, (int)dp, msg);
  } else { /* every job dies: the message names one of the workers */
    int named = 0;
    for (int i = 0; i < pids_count(&c->sh->pids); i++) named |= has_number(msg, atomic_load(&c->sh->pids.pid[i]));
    CHECK(named, "%s: message must name the pid of a dead worker: \"%s\"", what, msg);
  }
  switch (how) {
    case DIE_SEGV:
      CHECK(strstr(msg, "SIGSEGV") || (icontains(msg, "signal") && has_number(msg, SIGSEGV)),
            "%s: message must name the signal (SIGSEGV / signal 11): \"%s\"", what, msg);
      break;
    case DIE_KILL:
      CHECK(strstr(msg, "SIGKILL") || (icontains(msg, "signal") && has_number(msg, SIGKILL)),
            "%s: message must name the signal (SIGKILL / signal 9): \"%s\"", what, msg);
      break;
    case DIE_ABORT:
      CHECK(strstr(msg, "SIGABRT") || (icontains(msg, "signal") && has_number(msg, SIGABRT)),
            "%s: message must name the signal (SIGABRT / signal 6): \"%s\"", what, msg);
      break;
    case DIE_EXIT3:
      CHECK((icontains(msg, "exit") || icontains(msg, "status") || icontains(msg, "code")) && has_number(msg, 3),
            "%s: message must name the exit code 3: \"%s\"", what, msg);
      break;
    case DIE_EXIT0:
      CHECK((icontains(msg, "exit") || icontains(msg, "status") || icontains(msg, "code")) && has_number(msg, 0),
            "%s: message must name the exit code 0: \"%s\"", what, msg);
      break;
  }
  CHECK_NO_CHILDREN(what);
  check_gone(c->sh, what);
  CHECK(count_fds() == fds0, "%s: %d open descriptors after the map, %d before the first map", what, count_fds(),
        fds0);
  /* the same pool runs the next map */
  rlog_reset(&c->rlog);
  c->die_job = -2;
  CHECK_STATUS(sm_map(pool, 200, work_ok, reduce, sizeof(uint32_t), c), SM_OK, "map after %s", what);
  CHECK_RLOG_PREFIX(&c->rlog, 200, "map after a dead worker");
  CHECK_NO_CHILDREN("map after a dead worker");
}

/* A worker dies inside critical / ordered while the others use the same section: no deadlock, and
 * the next map's critical/ordered work (the dead holder's lock was released). */
typedef struct {
  sm_pool *pool;
  long counter;
  int log[200];
  atomic_int logpos;
  int kind; /* 1 critical, 2 ordered, 0 both, no death */
} sect_t;

static int work_sect(void *vctx, size_t job, void *result) {
  sect_t *s = (sect_t *)vctx;
  (void)result;
  if (s->kind == 1 || s->kind == 0) {
    JCHECK(sm_critical_enter(s->pool) == SM_OK, "critical_enter: %s", last_err());
    if (s->kind == 1 && job == 7) raise(SIGKILL);
    long v = s->counter;
    sched_yield();
    s->counter = v + 1;
    JCHECK(sm_critical_leave(s->pool) == SM_OK, "critical_leave: %s", last_err());
  }
  if (s->kind == 2 || s->kind == 0) {
    JCHECK(sm_ordered_enter(s->pool) == SM_OK, "ordered_enter: %s", last_err());
    if (s->kind == 2 && job == 7) raise(SIGKILL);
    int p = atomic_fetch_add(&s->logpos, 1);
    if (p < 200) s->log[p] = (int)job;
    JCHECK(sm_ordered_leave(s->pool) == SM_OK, "ordered_leave: %s", last_err());
  }
  return 0;
}

static void died_in_section(sm_pool *pool, int kind) {
  const char *what = kind == 1 ? "worker killed inside critical" : "worker killed inside ordered";
  sect_t *s = (sect_t *)must_empty(1, sizeof(sect_t));
  s->pool = pool;
  s->kind = kind;
  sm_status st = sm_map(pool, 100, work_sect, NULL, 0, s);
  printf("%s: %s \"%s\"\n", what, sm_status_str(st), last_err());
  CHECK_STATUS(st, SM_ERR_WORKER_DIED, "%s (job 7, SIGKILL)", what);
  CHECK_NO_CHILDREN(what);
  memset(s, 0, sizeof *s);
  s->pool = pool;
  s->kind = 0;
  CHECK_STATUS(sm_map(pool, 200, work_sect, NULL, 0, s), SM_OK, "critical+ordered map after: %s", what);
  CHECK(s->counter == 200, "after %s: protected counter %ld, expected 200", what, s->counter);
  for (int i = 0; i < 200; i++) CHECK(s->log[i] == i, "after %s: ordered log[%d] = %d", what, i, s->log[i]);
  sm_free(s);
}

static int work_die_kill(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)job;
  (void)result;
  raise(SIGKILL);
  return 0;
}

/* Persistent pools: a map with fewer jobs than the pool has workers, whose worker dies. The
 * survivors are killed, those the map did not use included: all of them must be reaped before the
 * call returns (no zombie of the pool's zygote), and the next map, on every worker, must see
 * fresh workers, not a death left over from the last call. */
static void died_in_narrow_map(sm_backend b) {
  sm_pool *pool = new_pool(6, b);
  for (int i = 0; i < 40; i++) {
    sm_status st = sm_map(pool, 1, work_die_kill, NULL, 0, NULL);
    CHECK_STATUS(st, SM_ERR_WORKER_DIED, "round %d: a 1-job map on a pool of 6 whose worker is killed", i);
    int left = count_pool_workers();
    CHECK(left == 0, "round %d: %d worker(s) of the pool (zombies included) remain after the map whose worker died; "
          "the others were killed and must be reaped before sm_map returns", i, left);
    CHECK_STATUS(sm_map(pool, 6, work_nothing, NULL, 0, NULL), SM_OK, "round %d: the map after", i);
  }
  sm_pool_free(pool);
}

/* thread/serial: run the crashing map in a subprocess and return its wait status. */
static int subprocess_status(sm_backend b, int how) {
  pid_t pid = fork_subtest(30);
  if (pid == 0) {
    sm_pool *pool = sm_pool_new(2, b);
    if (!pool) _exit(90);
    ctx_t c;
    memset(&c, 0, sizeof c);
    c.sh = (shared_t *)sm_empty(1, sizeof(shared_t));
    if (!c.sh) _exit(91);
    rlog_init(&c.rlog, 1000);
    c.die_job = 7;
    c.how = how;
    sm_status st = sm_map(pool, 100, work, reduce, sizeof(uint32_t), &c);
    fprintf(stderr, "crashing map returned %s (%s)\n", sm_status_str(st), last_err());
    _exit(100 + (int)st);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
  return status;
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(90);
  jfail_init();
  if (!workers_are_processes(b)) {
    int st = subprocess_status(b, DIE_SEGV);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
          "%s backend, SIGSEGV in a job: expected the whole process to die by SIGSEGV, got %s %d", g_backend_name,
          WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    st = subprocess_status(b, DIE_EXIT3);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3,
          "%s backend, exit(3) in a job: expected the process to exit with status 3, got %s %d", g_backend_name,
          WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    CHECK_NO_CHILDREN("end");
    printf("test_crash[%s]: OK (crashing jobs kill the process, as documented)\n", g_backend_name);
    return 0;
  }

  ctx_t *c = (ctx_t *)must_empty(1, sizeof *c); /* the workers of every backend see it now */
  c->sh = (shared_t *)must_empty(1, sizeof(shared_t));
  rlog_init(&c->rlog, 1000);
  sm_pool *pool = new_pool(2, b);
  int fds0 = count_fds();
  process_case(pool, c, 100, 7, DIE_SEGV, 0, fds0);
  process_case(pool, c, 100, 5, DIE_EXIT3, 0, fds0);
  process_case(pool, c, 100, 9, DIE_EXIT0, 0, fds0);
  process_case(pool, c, 100, 4, DIE_KILL, 0, fds0);
  process_case(pool, c, 100, 11, DIE_ABORT, 0, fds0);
  process_case(pool, c, 100, 0, DIE_SEGV, 0, fds0);
  process_case(pool, c, 100, 99, DIE_SEGV, 0, fds0);
  process_case(pool, c, 100, -1, DIE_SEGV, 0, fds0); /* every job crashes */
  /* the other workers are killed, not waited for: their jobs would sleep 100 s (watchdog 90 s) */
  process_case(pool, c, 100, 7, DIE_SEGV, 100000, fds0);
  sm_pool *pool4 = new_pool(4, b);
  process_case(pool4, c, 100, 7, DIE_SEGV, 0, fds0);
  process_case(pool4, c, 1000, 500, DIE_SEGV, 0, fds0);
  process_case(pool4, c, 100, 20, DIE_EXIT3, 100000, fds0);
  died_in_section(pool4, 1);
  died_in_section(pool4, 2);
  sm_pool_free(pool4);
  sm_pool_free(pool);
  if (b == SM_BACKEND_PERSISTENT) died_in_narrow_map(b); /* counts pool workers: no other pool alive */
  CHECK_NO_CHILDREN("end");
  printf("test_crash[%s]: OK\n", g_backend_name);
  return 0;
}
