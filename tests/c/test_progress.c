/* sm_map_opts.progress, the progress callback of sm_map_ex. Usage: test_progress <process|thread|serial>
 * - 1000 jobs of ~1 ms on 2 workers (>= 0.5 s; serial: >= 1 s), with and without reduce: every call
 *   is made on the calling thread (same process and thread), total == njobs in every call, done never
 *   decreases and never exceeds total, at least one call on the way (done < njobs: the first is due
 *   after 0.1 s, when at most ~200 jobs can be done) before the final call, which has done == njobs,
 *   and there are no more calls than one per 0.1 s of the map plus the final one;
 * - a map of 0 jobs: exactly one call, (0, 0);
 * - a failing job (SM_ERR_JOB) and SM_STOP: a final call with done < njobs, total == njobs;
 * - opts.size not covering the progress field: the callback (beyond size) is not called;
 * - SM_PROGRESS=1 on a terminal: a bar with the time left, ending at 100%;
 * - SM_PROGRESS=1 with stderr a regular file (in a subprocess): a map of > 1 s writes nothing to stderr;
 *   with stderr a pseudo-terminal: it draws something there. */
#include "testutil.h"

#include <poll.h>
#include <stddef.h>
#include <sys/stat.h>

#define NJOBS 400       /* failing / stopping maps */
#define NJOBS_LONG 1000 /* the map whose calls on the way are checked */
#define MAXCALLS 10000

typedef struct {
  size_t ncalls;
  size_t done[MAXCALLS], total[MAXCALLS];
  int wrong_thread;
  pid_t pid;
  pthread_t thread;
  long fail_job; /* -1: none */
  int fail_code;
  size_t nreduced;
} plog_t;

static plog_t *g_log; /* sm_empty memory, which the workers of every backend see as it is now */

static void progress(void *ctx, size_t done, size_t total) {
  plog_t *p = (plog_t *)ctx;
  if (getpid() != p->pid || !pthread_equal(pthread_self(), p->thread)) p->wrong_thread++;
  if (p->ncalls < MAXCALLS) {
    p->done[p->ncalls] = done;
    p->total[p->ncalls] = total;
  }
  p->ncalls++;
}

static int work(void *ctx, size_t job, void *result) {
  plog_t *p = (plog_t *)ctx; /* the worker's view: only fail_job / fail_code are read */
  (void)result;
  usleep_full(1000);
  if ((long)job == p->fail_job) return p->fail_code;
  return 0;
}

static int reduce(void *ctx, size_t job, void *result) {
  plog_t *p = (plog_t *)ctx;
  (void)job;
  (void)result;
  p->nreduced++;
  return 0;
}

static sm_status run(sm_pool *pool, size_t njobs, long fail_job, int fail_code, int with_reduce, size_t opts_size,
                     long long *ms) {
  memset(g_log, 0, sizeof *g_log);
  g_log->pid = getpid();
  g_log->thread = pthread_self();
  g_log->fail_job = fail_job;
  g_log->fail_code = fail_code;
  sm_map_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.size = opts_size;
  opts.progress = progress;
  long long t0 = now_ms();
  sm_status st = sm_map_ex(pool, njobs, work, with_reduce ? reduce : NULL, with_reduce ? 8 : 0, g_log, &opts);
  if (ms) *ms = now_ms() - t0;
  return st;
}

static void fmt_calls(char *buf, size_t cap) {
  size_t off = 0;
  buf[0] = 0;
  for (size_t i = 0; i < g_log->ncalls && i < MAXCALLS && off + 48 < cap; i++)
    off += (size_t)snprintf(buf + off, cap - off, " (%zu,%zu)", g_log->done[i], g_log->total[i]);
}

/* The properties every sequence of calls has; returns the final done. */
static size_t check_calls(size_t njobs, const char *what) {
  char buf[4096];
  fmt_calls(buf, sizeof buf);
  CHECK(g_log->wrong_thread == 0, "%s: %d progress call(s) not on the calling thread (process %d)", what,
        g_log->wrong_thread, (int)getpid());
  CHECK(g_log->ncalls >= 1, "%s: the progress callback was never called (it must be called once at the end)", what);
  CHECK(g_log->ncalls <= MAXCALLS, "%s: %zu progress calls", what, g_log->ncalls);
  for (size_t i = 0; i < g_log->ncalls; i++) {
    CHECK(g_log->total[i] == njobs, "%s: call %zu has total %zu, njobs is %zu; calls:%s", what, i, g_log->total[i], njobs,
          buf);
    CHECK(g_log->done[i] <= njobs, "%s: call %zu has done %zu > njobs %zu; calls:%s", what, i, g_log->done[i], njobs, buf);
    if (i > 0)
      CHECK(g_log->done[i] >= g_log->done[i - 1], "%s: done decreased from %zu to %zu at call %zu; calls:%s", what,
            g_log->done[i - 1], g_log->done[i], i, buf);
  }
  return g_log->done[g_log->ncalls - 1];
}

static void test_callback(sm_pool *pool) {
  for (int with_reduce = 0; with_reduce < 2; with_reduce++) {
    char what[128], buf[4096];
    snprintf(what, sizeof what, "%s backend, %d jobs of 1 ms on a pool of 2%s", g_backend_name, NJOBS_LONG,
             with_reduce ? ", with reduce" : ", no reduce");
    long long ms = 0;
    sm_status st = run(pool, NJOBS_LONG, -1, 0, with_reduce, sizeof(sm_map_opts), &ms);
    fmt_calls(buf, sizeof buf);
    printf("%s: %s in %lld ms, %zu progress calls:%s\n", what, sm_status_str(st), ms, g_log->ncalls, buf);
    CHECK_STATUS(st, SM_OK, "%s", what);
    size_t last = check_calls(NJOBS_LONG, what);
    CHECK(last == NJOBS_LONG, "%s: the final progress call has done %zu, expected njobs = %d; calls:%s", what, last,
          NJOBS_LONG, buf);
    CHECK(g_log->ncalls >= 2 && g_log->done[0] < NJOBS_LONG,
          "%s: a map of %lld ms made no progress call while it ran (done < njobs), only %zu call(s) once the jobs "
          "were done; expected calls about every 0.1 s on the way and the final one; calls:%s",
          what, ms, g_log->ncalls, buf);
    /* one-sided: the library cannot report more often than every 0.1 s of its own clock (which
     * runs inside our measurement), plus the final call */
    CHECK(g_log->ncalls <= (size_t)(ms / 100) + 2, "%s: %zu progress calls in %lld ms: more often than every 0.1 s; "
          "calls:%s", what, g_log->ncalls, ms, buf);
    if (with_reduce) CHECK(g_log->nreduced == NJOBS_LONG, "%s: reduce ran %zu times", what, g_log->nreduced);
  }
}

static void test_empty(sm_pool *pool) {
  sm_status st = run(pool, 0, -1, 0, 0, sizeof(sm_map_opts), NULL);
  char buf[4096];
  fmt_calls(buf, sizeof buf);
  CHECK_STATUS(st, SM_OK, "0 jobs with a progress callback");
  CHECK(g_log->ncalls == 1 && g_log->done[0] == 0 && g_log->total[0] == 0,
        "0 jobs: expected exactly one progress call (0, 0), got %zu:%s", g_log->ncalls, buf);
  CHECK(g_log->wrong_thread == 0, "0 jobs: the progress call was not on the calling thread");
}

static void test_failing(sm_pool *pool) {
  char buf[4096];
  sm_status st = run(pool, NJOBS, 150, 5, 0, sizeof(sm_map_opts), NULL);
  fmt_calls(buf, sizeof buf);
  printf("job 150 fails: %s, %zu progress calls:%s\n", sm_status_str(st), g_log->ncalls, buf);
  CHECK_STATUS(st, SM_ERR_JOB, "job 150 of %d returns 5", NJOBS);
  size_t last = check_calls(NJOBS, "failing job 150");
  CHECK(last < NJOBS, "failing job 150: the final progress call says %zu of %d jobs done", last, NJOBS);

  st = run(pool, NJOBS, 100, SM_STOP, 1, sizeof(sm_map_opts), NULL);
  fmt_calls(buf, sizeof buf);
  printf("job 100 returns SM_STOP: %s, %zu progress calls:%s\n", sm_status_str(st), g_log->ncalls, buf);
  CHECK_STATUS(st, SM_STOPPED, "job 100 of %d returns SM_STOP", NJOBS);
  last = check_calls(NJOBS, "SM_STOP in job 100");
  CHECK(last < NJOBS, "SM_STOP in job 100: the final progress call says %zu of %d jobs done", last, NJOBS);
}

static void test_size(sm_pool *pool) {
  /* a caller built against a header without the progress field: the field is beyond opts.size */
  sm_status st = run(pool, 50, -1, 0, 0, offsetof(sm_map_opts, progress), NULL);
  CHECK_STATUS(st, SM_OK, "opts.size = offsetof(sm_map_opts, progress)");
  CHECK(g_log->ncalls == 0, "opts.size excludes the progress field, but the callback was called %zu times",
        g_log->ncalls);
}

/* SM_PROGRESS=1: run a map of > 1 s in a subprocess whose stderr is `fd`. */
static pid_t spawn_bar_map(sm_backend b, int fd) {
  pid_t pid = fork_subtest(40);
  if (pid == 0) {
    if (dup2(fd, 2) < 0) _exit(90);
    close(fd);
    setenv("SM_PROGRESS", "1", 1);
    sm_pool *pool = sm_pool_new(2, b);
    if (!pool) _exit(91);
    size_t njobs = b == SM_BACKEND_SERIAL ? 1500 : 3000; /* over 1.5 s: 1 ms jobs on 2 workers */
    plog_t *p = (plog_t *)sm_empty(1, sizeof(plog_t));
    if (!p) _exit(92);
    p->fail_job = -1;
    sm_status st = sm_map(pool, njobs, work, NULL, 0, p);
    sm_pool_free(pool);
    _exit(st == SM_OK ? 0 : 10 + (int)st);
  }
  return pid;
}

static void check_exit(pid_t pid, const char *what) {
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: the subprocess %s %d", what,
        WIFEXITED(status) ? "exited with status" : "died by signal",
        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void test_env_bar(sm_backend b) {
  /* stderr a regular file: nothing */
  char path[] = "/tmp/sm_progress_XXXXXX";
  make_temp_file(path);
  int fd = open(path, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
  pid_t pid = spawn_bar_map(b, fd);
  close(fd);
  check_exit(pid, "SM_PROGRESS=1, stderr a file");
  struct stat sb;
  CHECK(stat(path, &sb) == 0, "stat %s", path);
  char head[256] = {0};
  if (sb.st_size > 0) {
    FILE *f = fopen(path, "r");
    if (f) {
      size_t r = fread(head, 1, sizeof head - 1, f);
      head[r] = 0;
      fclose(f);
    }
  }
  unlink(path);
  CHECK(sb.st_size == 0, "SM_PROGRESS=1 with stderr not a terminal: %lld bytes were written to stderr: \"%s\"",
        (long long)sb.st_size, head);

  /* stderr a pseudo-terminal: a bar */
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 || !ptsname(master)) {
    printf("SKIP the terminal part: no pseudo-terminal (%s)\n", strerror(errno));
    if (master >= 0) close(master);
    return;
  }
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  CHECK(slave >= 0, "open %s: %s", ptsname(master), strerror(errno));
  pid = spawn_bar_map(b, slave);
  close(slave);
  static char out[1 << 16];
  size_t n = 0;
  for (;;) { /* read until the slave side is closed (EIO) */
    struct pollfd pfd = {master, POLLIN, 0};
    int pr = poll(&pfd, 1, 30000);
    CHECK(pr > 0, "SM_PROGRESS=1 on a terminal: no output and no hang-up within 30 s");
    ssize_t r = read(master, out + n, sizeof out - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    if (n >= sizeof out - 1) break;
  }
  out[n] = 0;
  close(master);
  check_exit(pid, "SM_PROGRESS=1, stderr a terminal");
  printf("SM_PROGRESS=1 on a terminal: %zu bytes\n", n);
  CHECK(n > 0, "SM_PROGRESS=1 with stderr a terminal: a map of over a second drew nothing");
  /* While it runs, the bar estimates the time left; at the end it shows every job done. */
  CHECK(strstr(out, " left") != NULL, "SM_PROGRESS=1: the bar never showed the time left: \"%s\"", out);
  CHECK(strstr(out, "100%") != NULL, "SM_PROGRESS=1: the bar never reached 100%%: \"%s\"", out);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  g_log = (plog_t *)must_empty(1, sizeof *g_log);
  watchdog(90);
  jfail_init();
  sm_pool *pool = new_pool(2, b);
  test_callback(pool);
  test_empty(pool);
  test_failing(pool);
  test_size(pool);
  test_env_bar(b);
  sm_pool_free(pool);
  CHECK_NO_CHILDREN("end");
  printf("test_progress[%s]: OK\n", g_backend_name);
  return 0;
}
