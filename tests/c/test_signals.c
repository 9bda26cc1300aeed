/* Signals and the caller's other children (issue 6).  Usage: test_signals <backend> <case>
 * default_sigint, default_sigterm (process): SIGINT / SIGTERM with the DEFAULT disposition sent (by
 *    kill, from outside) to a caller that runs a map of long jobs on 2 forked workers: the caller dies of
 *    that signal and none of its workers survives it (every recorded worker pid is gone from the process
 *    table within 10 s; this test is their subreaper, so they are reaped, not left as zombies of init).
 * region_sigint, region_sigterm (process): the same while the caller runs sm_parallel (members in an
 *    endless region).
 * group_sigint (process): Ctrl-C as a terminal sends it: SIGINT, default disposition, to the caller's
 *    whole process group: the caller dies of SIGINT, no worker survives.
 * handler_thread (process, thread): the caller handles SIGTERM and SIGINT (sigaction, no SA_RESTART) and
 *    is multi-threaded: sm_map (then sm_parallel) runs in a second thread, with the signal blocked there,
 *    and the signal is sent to the process from outside, so the main thread runs the handler:
 *    SM_ERR_INTERRUPTED naming the signal, not every job ran, no child left, every worker pid gone,
 *    the handler still installed, and the pool runs the next map.
 * sibling (all backends): the caller has children of its own (forked by the test, not by sharedmem):
 *    sibling A exits with status 42 in the middle of a map (a job asks it to and waits until it is a
 *    zombie), sibling B lives through the maps. With the default SIGCHLD disposition, the map succeeds, B
 *    is still alive and not stopped, and waitpid(A) then gives the test A's own status 42 and
 *    waitpid(B) 43 (the pool reaped / waited for neither); with a SIGCHLD handler of the caller's that
 *    reaps with waitpid(-1), the handler gets A's status 42 and B's 43, each exactly once; with SIGCHLD
 *    ignored (SIG_IGN), the maps succeed and B survives them (reaped with status 43 once SIGCHLD is back
 *    to default).  Process backend: also during sm_parallel. */
#include "testutil.h"

#include <sys/prctl.h>

typedef struct {
  pids_t pids;
  atomic_int started;
  atomic_int sibling_go;   /* a job tells sibling A to exit */
  atomic_int sibling_seen; /* a job saw A as a zombie during the map */
  atomic_int sibling_a;    /* A's pid, for the jobs (persistent workers see globals as at sm_pool_new) */
  atomic_int b_go;         /* the test tells sibling B to exit */
} rec_t;

static sm_backend g_b; /* the backend of the pools the forked callers make */
static rec_t *g_rec;

static const char *signame(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGCHLD ? "SIGCHLD" : "signal";
}

static void record_pid(void) {
  pids_note(&g_rec->pids);
  atomic_fetch_add(&g_rec->started, 1);
}

static long g_job_ms = 60000;

static int work_long(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)job;
  (void)result;
  record_pid();
  for (long i = 0; i < g_job_ms / 10; i++) msleep(10);
  return 0;
}

static int region_long(void *ctx) {
  (void)ctx;
  record_pid();
  for (long i = 0; i < g_job_ms / 10; i++) msleep(10);
  return 0;
}

static int work_quick(void *ctx, size_t job, void *result) {
  (void)ctx;
  *(size_t *)result = job;
  return 0;
}

/* The first `n` recorded worker pids that still exist (zombies included), as " pid(state)". */
static int alive_workers(int n, char *buf, size_t cap) {
  int alive = 0;
  size_t off = 0;
  buf[0] = 0;
  for (int i = 0; i < n && i < MAXW; i++) {
    pid_t p = atomic_load(&g_rec->pids.pid[i]);
    if (p > 0 && kill(p, 0) == 0) {
      alive++;
      char st = proc_state(p, NULL);
      if (off < cap) off += (size_t)snprintf(buf + off, cap - off, " %d(%c)", (int)p, st ? st : '?');
    }
  }
  return alive;
}

/* ------------------------------------------------------------ default disposition: caller dies */

static void case_default(int sig, int region, int group) {
  const char *what = region ? "sm_parallel" : "sm_map";
  CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
  memset(g_rec, 0, sizeof *g_rec);
  pid_t caller = fork_subtest(60);
  if (caller == 0) {
    if (group && setpgid(0, 0) != 0) _exit(80);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    sm_pool *pool = sm_pool_new(2, g_b);
    if (!pool) _exit(81);
    sm_status st = region ? sm_parallel(pool, region_long, NULL) : sm_map(pool, 8, work_long, NULL, 0, NULL);
    fprintf(stderr, "caller: %s returned %s (%s) instead of dying of %s\n", what, sm_status_str(st), last_err(),
            signame(sig));
    _exit(82);
  }
  if (group) setpgid(caller, caller); /* also here, so that the group exists before kill(-caller) */
  int ok = wait_atomic_ge(&g_rec->started, 2, 20000);
  if (!ok) kill(caller, SIGKILL);
  CHECK(ok, "only %d worker(s) of the caller started within 20 s", atomic_load(&g_rec->started));
  CHECK(kill(group ? -caller : caller, sig) == 0, "kill: %s", strerror(errno));
  int status = 0;
  CHECK(waitpid(caller, &status, 0) == caller, "waitpid(caller): %s", strerror(errno));
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == sig,
        "%s with the default disposition sent to the caller%s during %s: the caller should die of it, but it %s %d",
        signame(sig), group ? "'s process group" : "", what, WIFSIGNALED(status) ? "died of signal" : "exited with",
        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  /* The orphaned workers are reparented to this process (subreaper): reap them as they die. */
  int n = pids_count(&g_rec->pids);
  char alive[1024];
  int left = 0, reaped = 0;
  long long t0 = now_ms();
  do {
    pid_t r;
    int ws;
    while ((r = waitpid(-1, &ws, WNOHANG)) > 0) reaped++;
    left = alive_workers(n, alive, sizeof alive);
    if (left) msleep(20);
  } while (left && now_ms() - t0 < 10000);
  if (left) {
    for (int i = 0; i < n && i < MAXW; i++) kill(atomic_load(&g_rec->pids.pid[i]), SIGKILL);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
  CHECK(left == 0,
        "%d of %d worker(s) still in the process table 10 s after the caller died of %s (default disposition) "
        "during %s:%s -- workers must not survive their caller",
        left, n, signame(sig), what, alive);
  CHECK(count_children_of(caller, NULL) == 0, "processes whose parent is the dead caller %d remain", (int)caller);
  printf("%s (default disposition) to the caller%s during %s: caller died of it; its %d worker(s) gone (%d reaped "
         "here)\n",
         signame(sig), group ? "'s process group" : "", what, n, reaped);
  CHECK(prctl(PR_SET_CHILD_SUBREAPER, 0) == 0, "prctl");
}

/* ------------------------------------------------------------ handled, multi-threaded caller */

static volatile sig_atomic_t g_handled;
static volatile sig_atomic_t g_handler_tid;
static void on_signal(int sig) {
  (void)sig;
  g_handled++;
  g_handler_tid = (sig_atomic_t)my_tid();
}

typedef struct {
  sm_pool *pool;
  int region;
  int sig;
  int njobs;
  sm_status st;
  char msg[512];
  pid_t tid;
} mapper_t;

static void *mapper(void *arg) {
  mapper_t *m = (mapper_t *)arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, m->sig);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* the signal goes to the main thread */
  m->tid = my_tid();
  m->st = m->region ? sm_parallel(m->pool, region_long, NULL)
                    : sm_map(m->pool, (size_t)m->njobs, work_long, NULL, 0, NULL);
  snprintf(m->msg, sizeof m->msg, "%s", last_err());
  return NULL;
}

static void handled_one(sm_backend b, sm_pool *pool, int sig, int region) {
  const char *what = region ? "sm_parallel" : "sm_map";
  memset(g_rec, 0, sizeof *g_rec);
  g_handled = 0;
  g_handler_tid = 0;
  int nw = sm_pool_nworkers(pool);
  mapper_t m;
  memset(&m, 0, sizeof m);
  m.pool = pool;
  m.region = region;
  m.sig = sig;
  m.njobs = 40;
  pthread_t th;
  CHECK(pthread_create(&th, NULL, mapper, &m) == 0, "pthread_create");
  /* thread backend: the caller is worker 0 of a region and runs worker 0 of a map without reduce */
  int want_started = (b == SM_BACKEND_THREAD) ? 1 : nw;
  CHECK(wait_atomic_ge(&g_rec->started, want_started, 20000), "%s: only %d worker(s) started within 20 s", what,
        atomic_load(&g_rec->started));
  /* Sent to the process (not a thread), from outside: the kernel delivers it to a thread that does not
   * block it, i.e. this (main) thread, which runs the handler while the map runs in the other thread.
   * Sent again until the map returns, in case the first one landed before the map watched for it. */
  pid_t killer = fork_subtest(30);
  if (killer == 0) {
    for (int i = 0; i < 100; i++) {
      kill(getppid(), sig);
      msleep(200);
    }
    _exit(0);
  }
  pthread_join(th, NULL);
  kill(killer, SIGKILL);
  pid_t w;
  while ((w = waitpid(killer, NULL, 0)) == -1 && errno == EINTR) {
  }
  CHECK(w == killer, "waitpid(killer): %s", strerror(errno));
  printf("[%s] %s (handled in thread %d) to the process while thread %d runs %s: %s \"%s\" (handler ran %d times, %d "
         "started)\n",
         g_backend_name, signame(sig), (int)g_handler_tid, (int)m.tid, what, sm_status_str(m.st), m.msg, (int)g_handled,
         atomic_load(&g_rec->started));
  CHECK(g_handled >= 1, "the caller's %s handler never ran", signame(sig));
  CHECK(g_handler_tid != m.tid, "the handler ran in the mapping thread, which blocks %s", signame(sig));
  CHECK(m.st == SM_ERR_INTERRUPTED,
        "%s handled by another thread of the caller during %s: returned %s, expected SM_ERR_INTERRUPTED (%s)",
        signame(sig), what, sm_status_str(m.st), m.msg);
  CHECK(strstr(m.msg, signame(sig)) || (icontains(m.msg, "signal") && has_number(m.msg, sig)),
        "the SM_ERR_INTERRUPTED message should name %s: \"%s\"", signame(sig), m.msg);
  if (!region)
    CHECK(atomic_load(&g_rec->started) < m.njobs, "all %d jobs ran: the interruption did not stop the map", m.njobs);
  char alive[1024];
  if (workers_are_processes(b))
    CHECK(alive_workers(pids_count(&g_rec->pids), alive, sizeof alive) == 0,
          "workers still alive after SM_ERR_INTERRUPTED:%s", alive);
  CHECK_NO_CHILDREN("after SM_ERR_INTERRUPTED in another thread");
  struct sigaction now;
  CHECK(sigaction(sig, NULL, &now) == 0, "sigaction query");
  CHECK(now.sa_handler == on_signal, "after %s the caller's %s handler is not in place any more", what, signame(sig));
  CHECK_STATUS(sm_map(pool, 50, work_quick, NULL, sizeof(size_t), NULL), SM_OK, "map after an interrupted %s", what);
}

static void case_handled_thread(sm_backend b) {
  /* threads cannot be killed: their running job ends first, so keep jobs short there */
  g_job_ms = workers_are_processes(b) ? 60000 : 1000;
  /* Both handlers are installed before the first map: sharedmem may skip looking for a handler that
   * appears less than 50 ms after a map found none (src/sys/interrupt.rs, RESCAN; documented there). */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART */
  CHECK(sigaction(SIGTERM, &sa, NULL) == 0 && sigaction(SIGINT, &sa, NULL) == 0, "sigaction");
  sm_pool *pool = new_pool(2, b);
  handled_one(b, pool, SIGTERM, 0);
  handled_one(b, pool, SIGINT, 0);
  if (workers_are_processes(b)) {
    /* a thread-backend region member in an endless sleep cannot be stopped: process workers only */
    handled_one(b, pool, SIGTERM, 1);
    handled_one(b, pool, SIGINT, 1);
  }
  sm_pool_free(pool);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  g_job_ms = 60000;
}

/* ------------------------------------------------------------ siblings: children of the caller */

typedef struct {
  int nreaped;
  pid_t pid[256];
  int status[256];
} reaplog_t;
static reaplog_t g_reaplog;

static void reap_handler(int sig) {
  (void)sig;
  int e = errno, ws;
  pid_t r;
  while ((r = waitpid(-1, &ws, WNOHANG)) > 0) {
    int i = g_reaplog.nreaped;
    if (i < 256) {
      g_reaplog.pid[i] = r;
      g_reaplog.status[i] = ws;
      g_reaplog.nreaped = i + 1;
    }
  }
  errno = e;
}

static pid_t g_sibling_a;

/* Job 3 asks sibling A to exit; job 10 waits (bounded) until A has exited (zombie, or already reaped
 * by the caller's SIGCHLD handler / the kernel with SIGCHLD ignored), so A dies while the map runs. */
static int work_sibling(void *ctx, size_t job, void *result) {
  (void)ctx;
  if (job == 3) atomic_store(&g_rec->sibling_go, 1);
  if (job == 10) {
    long long t0 = now_ms();
    char st;
    while ((st = proc_state(atomic_load(&g_rec->sibling_a), NULL)) != 'Z' && st != 0 && now_ms() - t0 < 10000) msleep(2);
    if (st == 'Z' || st == 0) atomic_store(&g_rec->sibling_seen, 1);
  }
  usleep_full(300);
  *(size_t *)result = job + 1;
  return 0;
}

static int region_sibling(void *ctx) {
  (void)ctx;
  if (sm_master()) {
    atomic_store(&g_rec->sibling_go, 1);
    long long t0 = now_ms();
    char st;
    while ((st = proc_state(atomic_load(&g_rec->sibling_a), NULL)) != 'Z' && st != 0 && now_ms() - t0 < 10000) msleep(2);
    if (st == 'Z' || st == 0) atomic_store(&g_rec->sibling_seen, 1);
  }
  return 0;
}

static int reduce_check(void *ctx, size_t job, void *result) {
  if (*(size_t *)result != job + 1) (*(int *)ctx)++;
  return 0;
}

static pid_t spawn_sibling(atomic_int *go, int code) {
  fflush(stdout);
  fflush(stderr);
  pid_t p = fork();
  CHECK(p >= 0, "fork: %s", strerror(errno));
  if (p == 0) {
    alarm(40);
    long long t0 = now_ms();
    while (!atomic_load(go) && now_ms() - t0 < 30000) msleep(2);
    _exit(atomic_load(go) ? code : 99);
  }
  return p;
}

static int find_reaped(pid_t p, int *count) {
  int st = -1;
  *count = 0;
  for (int i = 0; i < g_reaplog.nreaped; i++)
    if (g_reaplog.pid[i] == p) {
      (*count)++;
      st = g_reaplog.status[i];
    }
  return st;
}

/* how: 0 default SIGCHLD, 1 a handler that reaps with waitpid(-1), 2 SIG_IGN */
static void sibling_case(sm_pool *pool, int how, int region) {
  const char *hows[] = {"default SIGCHLD", "a SIGCHLD handler reaping with waitpid(-1)", "SIGCHLD ignored"};
  char what[160];
  snprintf(what, sizeof what, "[%s] %s, %s", g_backend_name, hows[how], region ? "sm_parallel" : "sm_map");
  memset(g_rec, 0, sizeof *g_rec);
  memset(&g_reaplog, 0, sizeof g_reaplog);
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = how == 0 ? SIG_DFL : how == 1 ? reap_handler : SIG_IGN;
  sa.sa_flags = how == 1 ? SA_RESTART | SA_NOCLDSTOP : 0;
  CHECK(sigaction(SIGCHLD, &sa, &old) == 0, "sigaction");
  g_sibling_a = spawn_sibling(&g_rec->sibling_go, 42);
  atomic_store(&g_rec->sibling_a, g_sibling_a);
  pid_t sib_b = spawn_sibling(&g_rec->b_go, 43);
  int *bad = (int *)must_empty(1, sizeof(int)); /* ctx: the workers of every backend see it */
  sm_status st = region ? sm_parallel(pool, region_sibling, NULL)
                        : sm_map(pool, 60, work_sibling, reduce_check, sizeof(size_t), bad);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", last_err());
  /* further maps while B is alive */
  for (int r = 0; r < 5 && st == SM_OK; r++) st = sm_map(pool, 20, work_quick, NULL, sizeof(size_t), NULL);
  CHECK(st == SM_OK, "%s: a map with children of the caller's own around returned %s (%s)", what, sm_status_str(st),
        msg);
  CHECK(*bad == 0, "%s: %d wrong results", what, *bad);
  sm_free(bad);
  CHECK(atomic_load(&g_rec->sibling_seen) == 1, "%s: sibling A did not exit during the map", what);
  char bst = proc_state(sib_b, NULL);
  CHECK(bst != 0 && bst != 'Z' && bst != 'T' && bst != 't',
        "%s: sibling B (pid %d, not a worker) is %s after the maps: the pool must leave the caller's other children "
        "alone",
        what, (int)sib_b, bst == 0 ? "gone" : bst == 'Z' ? "dead" : "stopped");
  int ws = 0, cnt = 0;
  if (how == 0) {
    pid_t r = waitpid(g_sibling_a, &ws, 0);
    CHECK(r == g_sibling_a, "%s: waitpid(sibling A %d) returned %d (%s): the pool reaped a child that is not its own",
          what, (int)g_sibling_a, (int)r, strerror(errno));
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 42, "%s: sibling A's status is not its own exit(42): 0x%x", what, ws);
  } else if (how == 1) {
    ws = find_reaped(g_sibling_a, &cnt);
    CHECK(cnt == 1, "%s: the caller's handler reaped sibling A %d times (expected once)", what, cnt);
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 42, "%s: the caller's handler got status 0x%x for sibling A, not its "
          "exit(42)", what, ws);
  }
  /* B exits now; with SIGCHLD ignored, put the default back first so that it leaves a status */
  if (how == 2) CHECK(sigaction(SIGCHLD, &old, NULL) == 0, "sigaction restore");
  atomic_store(&g_rec->b_go, 1);
  if (how == 1) {
    long long t0 = now_ms();
    while (find_reaped(sib_b, &cnt) == -1 && now_ms() - t0 < 10000) msleep(5);
    ws = find_reaped(sib_b, &cnt);
    CHECK(cnt == 1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 43, "%s: sibling B reaped %d times by the handler, status "
          "0x%x (expected once, exit(43))", what, cnt, ws);
    for (int i = 0; i < g_reaplog.nreaped; i++)
      for (int j = i + 1; j < g_reaplog.nreaped; j++)
        CHECK(g_reaplog.pid[i] != g_reaplog.pid[j], "%s: pid %d reaped twice", what, (int)g_reaplog.pid[i]);
  } else {
    pid_t r = waitpid(sib_b, &ws, 0);
    CHECK(r == sib_b, "%s: waitpid(sibling B %d) returned %d (%s)", what, (int)sib_b, (int)r, strerror(errno));
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 43, "%s: sibling B's status is not its own exit(43): 0x%x", what, ws);
  }
  if (how != 2) CHECK(sigaction(SIGCHLD, &old, NULL) == 0, "sigaction restore");
  CHECK_NO_CHILDREN(what);
  printf("%s: OK (handler reaped %d processes)\n", what, g_reaplog.nreaped);
}

static void case_sibling(sm_backend b) {
  sm_pool *pool = new_pool(2, b);
  for (int how = 0; how < 3; how++) {
    sibling_case(pool, how, 0);
    if (workers_are_processes(b)) sibling_case(pool, how, 1);
  }
  sm_pool_free(pool);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  const char *which = argc >= 3 ? argv[2] : "";
  watchdog(100);
  jfail_init();
  g_rec = (rec_t *)must_empty(1, sizeof(rec_t));
  int proc = workers_are_processes(b), ran = 0;
  g_b = b;
  if (proc && strcmp(which, "default_sigint") == 0) case_default(SIGINT, 0, 0), ran++;
  if (proc && strcmp(which, "default_sigterm") == 0) case_default(SIGTERM, 0, 0), ran++;
  if (proc && strcmp(which, "region_sigint") == 0) case_default(SIGINT, 1, 0), ran++;
  if (proc && strcmp(which, "region_sigterm") == 0) case_default(SIGTERM, 1, 0), ran++;
  if (proc && strcmp(which, "group_sigint") == 0) case_default(SIGINT, 0, 1), ran++;
  if (b != SM_BACKEND_SERIAL && strcmp(which, "handler_thread") == 0) case_handled_thread(b), ran++;
  if (strcmp(which, "sibling") == 0) case_sibling(b), ran++;
  CHECK(ran > 0, "unknown case \"%s\" for the %s backend (default_sigint default_sigterm region_sigint region_sigterm "
        "group_sigint: process; handler_thread: process, thread; sibling: all)", which, g_backend_name);
  JCHECK_ALL_PASSED();
  printf("test_signals[%s %s]: OK\n", g_backend_name, which);
  return 0;
}
