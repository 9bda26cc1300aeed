/* Worker processes and the caller's process state (meaningful for the process backend, but
 * the same guarantees hold trivially for thread/serial, so it runs for all three):
 *  - all children are reaped before sm_map returns (no child, no zombie), on every path;
 *  - the caller's atexit handlers run exactly once, in the caller (never in a worker);
 *  - the caller's stdio buffer is not flushed twice (marker printed without newline before a map,
 *    stdout redirected to a file: the file holds the marker exactly once);
 *  - process backend: workers never outlive the caller (the caller is SIGKILLed during a map with
 *    long jobs; every worker pid must disappear within a few seconds). */
#include "testutil.h"

#include <sys/prctl.h>

static int *g_mode; /* sm_empty memory (persistent workers see globals as at sm_pool_new); 0 ok, 1 SM_STOP in job 3, 2 error in job 3, 3 SIGSEGV in job 3, 4 exit(3) in job 3 */
static pids_t *g_rec;

static int work(void *ctx, size_t job, void *result) {
  (void)ctx;
  *(int *)result = (int)job;
  if (job == 3) {
    switch (*g_mode) {
      case 1: return SM_STOP;
      case 2: return 42;
      case 3: raise(SIGSEGV); break;
      case 4: exit(3);
    }
  }
  return 0;
}

static int reduce(void *ctx, size_t job, void *result) {
  (void)ctx;
  CHECK(*(int *)result == (int)job, "reduce: bad result");
  return 0;
}

static void run_mode(sm_pool *pool, int mode, sm_status expected) {
  *g_mode = mode;
  sm_status st = sm_map(pool, 64, work, reduce, sizeof(int), NULL);
  CHECK(st == expected, "mode %d: sm_map returned %s, expected %s (%s)", mode, sm_status_str(st),
        sm_status_str(expected), last_err());
  char where[64];
  snprintf(where, sizeof where, "after a map (mode %d)", mode);
  CHECK_NO_CHILDREN(where);
}

/* The maps that the atexit/stdio subprocesses run. */
static void run_all_modes(sm_backend b, int with_exit) {
  sm_pool *pool = new_pool(2, b);
  for (int r = 0; r < 3; r++) run_mode(pool, 0, SM_OK);
  run_mode(pool, 1, SM_STOPPED);
  run_mode(pool, 2, SM_ERR_JOB);
  if (workers_are_processes(b)) {
    run_mode(pool, 3, SM_ERR_WORKER_DIED);
    if (with_exit) run_mode(pool, 4, SM_ERR_WORKER_DIED);
  }
  run_mode(pool, 0, SM_OK);
  sm_pool_free(pool);
}

static int g_atexit_fd = -1;
static void atexit_handler(void) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "atexit %d\n", (int)getpid());
  ssize_t w = write(g_atexit_fd, buf, (size_t)n);
  (void)w;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  CHECK(f, "fopen %s: %s", path, strerror(errno));
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

static int count_occurrences(const char *s, const char *sub) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, sub)) != NULL; p += strlen(sub)) n++;
  return n;
}

static void wait_ok(pid_t pid, const char *what) {
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s subprocess failed: %s %d", what,
        WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static void test_atexit(sm_backend b) {
  char path[] = "/tmp/sm_test_atexit_XXXXXX";
  make_temp_file(path);
  pid_t pid = fork_subtest(40);
  if (pid == 0) {
    g_atexit_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (g_atexit_fd < 0) _exit(90);
    atexit(atexit_handler);
    run_all_modes(b, 0);
    exit(0); /* runs atexit_handler once, here */
  }
  wait_ok(pid, "atexit");
  size_t len;
  char *content = read_file(path, &len);
  unlink(path);
  char want[64];
  snprintf(want, sizeof want, "atexit %d\n", (int)pid);
  CHECK(strcmp(content, want) == 0,
        "atexit handler output should be exactly \"atexit %d\\n\" (once, in the caller); file holds %d line(s):\n%s",
        (int)pid, count_occurrences(content, "atexit"), content);
}

static void test_stdio(sm_backend b) {
  char path[] = "/tmp/sm_test_stdio_XXXXXX";
  make_temp_file(path);
  pid_t pid = fork_subtest(40);
  if (pid == 0) {
    if (!freopen(path, "w", stdout)) _exit(90);
    setvbuf(stdout, NULL, _IOFBF, 8192); /* file-backed, fully buffered */
    printf("MARKER-%d", 4242);          /* no newline: stays in the buffer */
    run_all_modes(b, 1);
    exit(0);
  }
  wait_ok(pid, "stdio");
  size_t len;
  char *content = read_file(path, &len);
  unlink(path);
  CHECK(strcmp(content, "MARKER-4242") == 0,
        "stdout file should hold \"MARKER-4242\" exactly once; it holds the marker %d time(s): \"%s\"",
        count_occurrences(content, "MARKER-4242"), content);
}

/* ---- output that jobs print to a redirected (fully buffered) stdout is written exactly once */
static int work_print(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  printf("<job %zu>", job);
  return 0;
}

static void test_job_output(sm_backend b) {
  char path[] = "/tmp/sm_test_jobout_XXXXXX";
  make_temp_file(path);
  pid_t pid = fork_subtest(40);
  if (pid == 0) {
    if (!freopen(path, "w", stdout)) _exit(90);
    setvbuf(stdout, NULL, _IOFBF, 8192);
    printf("BEFORE;");
    sm_pool *pool = sm_pool_new(2, b);
    if (!pool) _exit(91);
    for (int m = 0; m < 3; m++)
      if (sm_map(pool, 50, work_print, NULL, 0, NULL) != SM_OK) _exit(92);
    printf("AFTER;");
    sm_pool_free(pool);
    exit(0);
  }
  wait_ok(pid, "job output");
  char *content = read_file(path, NULL);
  unlink(path);
  CHECK(count_occurrences(content, "BEFORE;") == 1 && count_occurrences(content, "AFTER;") == 1,
        "the caller's own output is not there exactly once: \"%.300s\"", content);
  for (int j = 0; j < 50; j++) {
    char tag[32];
    snprintf(tag, sizeof tag, "<job %d>", j);
    int n = count_occurrences(content, tag);
    CHECK(n == 3, "%s backend: \"%s\" printed by 3 maps appears %d time(s) in the redirected stdout (job output "
          "lost%s); file starts: \"%.200s\"", g_backend_name, tag, n,
          workers_are_processes(b) ? ": workers leave with _exit without flushing their stdio" : "", content);
  }
}

/* ---- workers never outlive the caller */
static int work_long(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)job;
  (void)result;
  pids_note(g_rec);
  for (int i = 0; i < 100000; i++) msleep(1); /* ~100 s */
  return 0;
}

static void test_orphans(void) {
  CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
  g_rec = (pids_t *)mmap(NULL, sizeof(pids_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(g_rec != MAP_FAILED, "mmap");
  memset(g_rec, 0, sizeof *g_rec);
  fflush(stdout);
  fflush(stderr);
  pid_t caller = fork();
  CHECK(caller >= 0, "fork");
  if (caller == 0) {
    alarm(50);
    sm_pool *pool = sm_pool_new(2, SM_BACKEND_PROCESS);
    if (!pool) _exit(90);
    sm_map(pool, 8, work_long, NULL, 0, NULL);
    _exit(91);
  }
  /* wait until both workers are inside their long jobs */
  long long t0 = now_ms();
  while (pids_count(g_rec) < 2 && now_ms() - t0 < 20000) msleep(5);
  int n = pids_count(g_rec);
  if (n < 2) kill(caller, SIGKILL);
  CHECK(n >= 2, "only %d worker(s) started a job within 20 s", n);
  CHECK(kill(caller, SIGKILL) == 0, "kill caller");
  int st;
  CHECK(waitpid(caller, &st, 0) == caller, "waitpid caller");
  /* the orphaned workers are reparented to us (subreaper): reap them as they die */
  int alive = 0;
  t0 = now_ms();
  do {
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    alive = 0;
    for (int i = 0; i < n && i < MAXW; i++)
      if (kill(atomic_load(&g_rec->pid[i]), 0) == 0) alive++;
    if (alive) msleep(20);
  } while (alive && now_ms() - t0 < 10000);
  if (alive) {
    char list[512] = "";
    size_t off = 0;
    for (int i = 0; i < n && i < MAXW; i++) {
      pid_t p = atomic_load(&g_rec->pid[i]);
      if (kill(p, 0) == 0) {
        char s = proc_state(p, NULL);
        off += (size_t)snprintf(list + off, sizeof list - off, " %d(%c)", (int)p, s ? s : '?');
        kill(p, SIGKILL);
      }
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    CHECK(0, "%d worker(s) still alive 10 s after the caller was SIGKILLed:%s (workers must not outlive the caller)",
          alive, list);
  }
  munmap(g_rec, sizeof *g_rec);
}

/* ---- callers that ignore SIGCHLD or reap children themselves */
static volatile sig_atomic_t g_chld;
static void reap_all(int sig) {
  (void)sig;
  int e = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) g_chld++;
  errno = e;
}

static int work_sum(void *ctx, size_t job, void *result) {
  (void)ctx;
  if (job % 7 == 0) usleep_full(500);
  *(size_t *)result = job * 2;
  return 0;
}
static int reduce_sum(void *ctx, size_t job, void *result) {
  CHECK(*(size_t *)result == job * 2, "reduce: result of job %zu wrong", job);
  *(size_t *)ctx += 1;
  return 0;
}

static void test_sigchld(sm_backend b, int how) {
  const char *what = how == 0 ? "caller ignores SIGCHLD (SIG_IGN)" : "caller reaps every child in a SIGCHLD handler";
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  if (how == 0) sa.sa_handler = SIG_IGN;
  else {
    sa.sa_handler = reap_all;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  }
  CHECK(sigaction(SIGCHLD, &sa, &old) == 0, "sigaction");
  sm_pool *pool = new_pool(2, b);
  size_t *n = (size_t *)must_empty(1, sizeof(size_t)); /* ctx the workers of every backend see */
  for (int r = 0; r < 20; r++) {
    *n = 0;
    sm_status st = sm_map(pool, 100, work_sum, reduce_sum, sizeof(size_t), n);
    CHECK(st == SM_OK, "%s: map %d returned %s (%s); workers that finished normally and were reaped by someone else "
          "are not dead workers", what, r, sm_status_str(st), last_err());
    CHECK(*n == 100, "%s: reduce ran %zu times", what, *n);
  }
  sm_free(n);
  /* a real death is still reported */
  *g_mode = 3;
  if (workers_are_processes(b)) {
    sm_status st = sm_map(pool, 64, work, reduce, sizeof(int), NULL);
    printf("%s, SIGSEGV in job 3: %s \"%s\"\n", what, sm_status_str(st), last_err());
    CHECK(st == SM_ERR_WORKER_DIED, "%s: a job crashed but sm_map returned %s (%s)", what, sm_status_str(st),
          last_err());
  }
  *g_mode = 0;
  sm_pool_free(pool);
  CHECK(sigaction(SIGCHLD, &old, NULL) == 0, "sigaction restore");
  CHECK_NO_CHILDREN(what);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(90);
  jfail_init();
  g_mode = (int *)must_empty(1, sizeof(int));
  if (argc >= 3 && strcmp(argv[2], "jobout") == 0) {
    test_job_output(b);
    printf("test_children[%s jobout]: OK\n", g_backend_name);
    return 0;
  }
  /* reaping inside the test process */
  {
    sm_pool *pool = new_pool(3, b);
    run_mode(pool, 0, SM_OK);
    run_mode(pool, 1, SM_STOPPED);
    run_mode(pool, 2, SM_ERR_JOB);
    if (workers_are_processes(b)) {
      run_mode(pool, 3, SM_ERR_WORKER_DIED);
      run_mode(pool, 4, SM_ERR_WORKER_DIED);
    }
    for (int r = 0; r < 20; r++) run_mode(pool, 0, SM_OK);
    sm_pool_free(pool);
    CHECK_NO_CHILDREN("after sm_pool_free");
  }
  test_sigchld(b, 0);
  test_sigchld(b, 1);
  test_atexit(b);
  test_stdio(b);
  if (workers_are_processes(b)) test_orphans();
  printf("test_children[%s]: OK\n", g_backend_name);
  return 0;
}
