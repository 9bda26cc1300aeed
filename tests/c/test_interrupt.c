/* SM_ERR_INTERRUPTED.  Usage: test_interrupt <backend> <case>
 * 1. thread_sigint / thread_sigterm: the caller installed a handler (sigaction without SA_RESTART); a
 *    helper thread sends the signal to the calling thread (pthread_kill) ~200 ms into a long map:
 *    sm_map returns SM_ERR_INTERRUPTED, the handler ran, not every job ran, every worker is gone, no
 *    child is left, the caller's handler is still installed, and the pool runs the next map.
 *    (thread_sigint also for the thread and serial backends: the header promises it for sm_map.)
 *    resethand: the same with a one-shot (SA_RESETHAND) handler, sent once: afterwards the
 *    disposition must be SIG_DFL, as the kernel would have left it.
 * 2. Same with SIGINT sent to the whole process group (setpgid(0,0), kill(0, SIGINT)), in a subprocess:
 *    the workers (default SIGINT in the children) die and the caller is interrupted.
 * 3. A job raising SIGTERM while the caller has a SIGTERM handler: handlers are reset in the workers,
 *    the worker dies by SIGTERM -> SM_ERR_INTERRUPTED.  Same for SIGINT.
 * 4. A job raising SIGTERM while the caller ignores SIGTERM: ignored stays ignored, the map succeeds.
 * Every case runs on the process and persistent backends; thread_sigint on all of them. */
#include "testutil.h"

typedef struct {
  pids_t pids;
  atomic_int started;
} rec_t;

static volatile sig_atomic_t g_handled;
static void on_signal(int sig) {
  (void)sig;
  g_handled++;
}

static void install(int sig, void (*h)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = h;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART */
  CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction");
}

static rec_t *g_rec;
static long g_job_ms = 3000; /* duration of each long job */
static int g_njobs = 12;

static int work_long(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)job;
  (void)result;
  pids_note(&g_rec->pids);
  atomic_fetch_add(&g_rec->started, 1);
  for (long i = 0; i < g_job_ms; i++) msleep(1); /* ~g_job_ms */
  return 0;
}

static int g_raise_sig;
static int work_raise(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  if (job == 2) raise(g_raise_sig);
  return 0;
}

static int work_quick(void *ctx, size_t job, void *result) {
  (void)ctx;
  *(size_t *)result = job;
  return 0;
}

typedef struct {
  pthread_t target;
  int to_group;
  int sig;
  int once;
  atomic_int done;
} sender_t;

/* Sends the signal after ~200 ms, then (unless `once`) again every 200 ms until the map returned
 * (the first signal could in principle land while the caller is not blocked). */
static void *sender(void *arg) {
  sender_t *s = (sender_t *)arg;
  msleep(200);
  for (int i = 0; i < 50 && !atomic_load(&s->done); i++) {
    if (s->to_group) kill(0, s->sig);
    else pthread_kill(s->target, s->sig);
    if (s->once) break;
    msleep(200);
  }
  return NULL;
}

static int all_gone(rec_t *r, char *buf, size_t cap) {
  int alive = 0;
  size_t off = 0;
  buf[0] = 0;
  for (int i = 0; i < pids_count(&r->pids); i++) {
    pid_t p = atomic_load(&r->pids.pid[i]);
    if (kill(p, 0) == 0) {
      alive++;
      char st = proc_state(p, NULL);
      off += (size_t)snprintf(buf + off, cap - off, " %d(%c)", (int)p, st ? st : '?');
    }
  }
  return alive == 0;
}

static sm_status interrupted_map(sm_pool *pool, int to_group, int sig, int once) {
  memset(g_rec, 0, sizeof *g_rec);
  g_handled = 0;
  sender_t s;
  s.target = pthread_self();
  s.to_group = to_group;
  s.sig = sig;
  s.once = once;
  atomic_store(&s.done, 0);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, sender, &s) == 0, "pthread_create");
  sm_status st = sm_map(pool, (size_t)g_njobs, work_long, NULL, 0, NULL);
  atomic_store(&s.done, 1);
  pthread_join(th, NULL);
  return st;
}

/* A handled signal sent to the calling thread during a long map. */
static void case_thread_signal(sm_backend b, int sig, int resethand) {
  const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "SIGQUIT";
  sm_pool *pool = new_pool(2, b);
  if (!workers_are_processes(b)) { /* threads cannot be killed: running jobs finish, so keep them short */
    g_job_ms = 300;
    g_njobs = 40;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = resethand ? SA_RESETHAND : 0; /* no SA_RESTART */
  CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction");
  sm_status st = interrupted_map(pool, 0, sig, resethand);
  char msg[512], alive[512];
  snprintf(msg, sizeof msg, "%s", last_err());
  printf("%s%s to the calling thread: %s \"%s\" (handler ran %d times, %d of %d jobs started)\n", name,
         resethand ? " (SA_RESETHAND handler)" : "", sm_status_str(st), msg, (int)g_handled,
         atomic_load(&g_rec->started), g_njobs);
  CHECK(g_handled >= 1, "the caller's %s handler never ran", name);
  CHECK(st == SM_ERR_INTERRUPTED, "%s (handler, no SA_RESTART) during a long map: sm_map returned %s, expected "
        "SM_ERR_INTERRUPTED (%s)", name, sm_status_str(st), msg);
  CHECK(msg[0] != 0, "SM_ERR_INTERRUPTED without a message");
  CHECK(strstr(msg, name) || (icontains(msg, "signal") && has_number(msg, sig)),
        "the SM_ERR_INTERRUPTED message should name the signal (%s / signal %d): \"%s\"", name, sig, msg);
  if (workers_are_processes(b))
    CHECK(all_gone(g_rec, alive, sizeof alive), "workers still alive after SM_ERR_INTERRUPTED:%s", alive);
  CHECK_NO_CHILDREN("after SM_ERR_INTERRUPTED");
  CHECK(atomic_load(&g_rec->started) < g_njobs, "all %d long jobs ran: the interruption did not stop the map", g_njobs);
  if (resethand) {
    /* the kernel resets a one-shot handler to SIG_DFL when it delivers the signal; after the map the
     * caller's disposition must be what it would have been without sharedmem */
    struct sigaction now;
    CHECK(sigaction(sig, NULL, &now) == 0, "sigaction query");
    CHECK(now.sa_handler == SIG_DFL, "%s with an SA_RESETHAND handler was delivered during sm_map, but afterwards the "
          "disposition is %s instead of SIG_DFL (a one-shot handler became permanent: a second Ctrl-C would not "
          "terminate the program)", name, now.sa_handler == on_signal ? "the caller's handler again" : "something else");
  } else {
    struct sigaction now;
    CHECK(sigaction(sig, NULL, &now) == 0, "sigaction query");
    CHECK(now.sa_handler == on_signal, "after sm_map the caller's %s handler is not in place any more", name);
  }
  CHECK_STATUS(sm_map(pool, 50, work_quick, NULL, sizeof(size_t), NULL), SM_OK, "map after an interrupted map");
  signal(sig, SIG_DFL);
  sm_pool_free(pool);
}

static void case_group_signal(sm_backend b) {
  pid_t pid = fork_subtest(40);
  if (pid == 0) {
    if (setpgid(0, 0) != 0) _exit(80);
    install(SIGINT, on_signal);
    sm_pool *pool = sm_pool_new(2, b);
    if (!pool) _exit(81);
    sm_status st = interrupted_map(pool, 1, SIGINT, 0);
    char alive[512];
    fprintf(stderr, "SIGINT to the process group: %s \"%s\" (handler ran %d times)\n", sm_status_str(st), last_err(),
            (int)g_handled);
    if (st != SM_ERR_INTERRUPTED) _exit(10 + (int)st);
    if (!all_gone(g_rec, alive, sizeof alive)) {
      fprintf(stderr, "workers still alive:%s\n", alive);
      _exit(30);
    }
    if (count_children(NULL) != 0) _exit(31);
    _exit(0);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  CHECK(WIFEXITED(status), "group-SIGINT subprocess died by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
  int code = WEXITSTATUS(status);
  CHECK(code == 0, "SIGINT to the process group during a map: %s",
        code >= 10 && code < 20 ? "sm_map did not return SM_ERR_INTERRUPTED (exit code 10+status)"
        : code == 30           ? "workers survived"
        : code == 31           ? "children left"
                               : "setup failed");
  char alive[512];
  CHECK(all_gone(g_rec, alive, sizeof alive), "workers of the group-SIGINT subprocess still alive:%s", alive);
}

static void case_raise(sm_backend b, int sig, int ignore, sm_status want) {
  /* before the pool: persistent workers see the memory and signal dispositions of sm_pool_new */
  g_raise_sig = sig;
  if (ignore) signal(sig, SIG_IGN);
  else install(sig, on_signal);
  sm_pool *pool = new_pool(2, b);
  g_handled = 0;
  sm_status st = sm_map(pool, 20, work_raise, NULL, 0, NULL);
  char msg[512];
  snprintf(msg, sizeof msg, "%s", last_err());
  printf("job raises %s, caller %s it: %s \"%s\"\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
         ignore ? "ignores" : "handles", sm_status_str(st), st == SM_OK ? "" : msg);
  CHECK(g_handled == 0, "the caller's handler ran (%d): the signal raised in a worker reached the caller", (int)g_handled);
  CHECK(st == want, "job raises %s while the caller %s it: sm_map returned %s, expected %s (%s)",
        sig == SIGINT ? "SIGINT" : "SIGTERM", ignore ? "ignores" : "has a handler for", sm_status_str(st),
        sm_status_str(want), msg);
  if (want == SM_ERR_INTERRUPTED)
    CHECK(strstr(msg, sig == SIGINT ? "SIGINT" : "SIGTERM") || (icontains(msg, "signal") && has_number(msg, sig)),
          "the message should name the signal that killed the worker: \"%s\"", msg);
  CHECK_NO_CHILDREN("after a raised signal");
  signal(sig, SIG_DFL);
  sm_pool_free(pool);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  const char *which = argc >= 3 ? argv[2] : "all";
  watchdog(80);
  jfail_init();
  g_rec = (rec_t *)must_empty(1, sizeof(rec_t));
  int all = strcmp(which, "all") == 0, ran = 0;
  if (!workers_are_processes(b)) {
    /* thread/serial: the header promises SM_ERR_INTERRUPTED on SIGINT/SIGTERM for sm_map in general;
     * jobs cannot be killed, but no new job may start */
    CHECK(all || strcmp(which, "thread_sigint") == 0, "only thread_sigint applies to the %s backend", g_backend_name);
    case_thread_signal(b, SIGINT, 0);
    printf("test_interrupt[%s %s]: OK\n", g_backend_name, which);
    return 0;
  }
  if (all || strcmp(which, "thread_sigint") == 0) case_thread_signal(b, SIGINT, 0), ran++;
  if (all || strcmp(which, "thread_sigterm") == 0) case_thread_signal(b, SIGTERM, 0), ran++;
  if (all || strcmp(which, "resethand") == 0) case_thread_signal(b, SIGINT, 1), ran++;
  if (all || strcmp(which, "group_sigint") == 0) case_group_signal(b), ran++;
  if (all || strcmp(which, "raise_sigterm") == 0) case_raise(b, SIGTERM, 0, SM_ERR_INTERRUPTED), ran++;
  if (all || strcmp(which, "raise_sigint") == 0) case_raise(b, SIGINT, 0, SM_ERR_INTERRUPTED), ran++;
  if (all || strcmp(which, "ignored_sigterm") == 0) case_raise(b, SIGTERM, 1, SM_OK), ran++;
  CHECK(ran > 0, "unknown case \"%s\" (thread_sigint thread_sigterm resethand group_sigint raise_sigterm raise_sigint ignored_sigterm all)",
        which);
  printf("test_interrupt[%s %s]: OK\n", g_backend_name, which);
  return 0;
}
