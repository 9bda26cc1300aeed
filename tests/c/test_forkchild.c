/* A caller that forks (not through sharedmem) after creating a pool, e.g. a multiprocessing program.
 * Usage: test_forkchild <backend> [inherit|threads]
 * inherit (default): in the child, sm_map and sm_parallel on the inherited pool must not hang: the
 *   process and serial backends run them correctly (a process pool forks its workers at each call); the
 *   thread backend, whose threads do not exist in the child, refuses them with SM_ERR_STATE and a
 *   message saying so (no job runs).  A pool created in the child runs maps and regions correctly.  The
 *   parent's pool keeps working.
 * threads: the caller is multi-threaded: while two other threads keep using the library (sm_empty /
 *   sm_free, and maps on a pool of their own), the main thread forks 400 times; each child creates a
 *   pool of the backend, runs a map, and allocates/frees sm_empty memory, within 2 s.  No child may hang
 *   (a library lock held by another thread at the moment of fork() would stay locked forever in the
 *   child; src/sys/forklock.rs is why none is). */
#include "testutil.h"

/* Pools whose workers the forked child does not have: the thread backend's threads, the
 * persistent backend's processes (they serve the process that made the pool). */
static int refused_in_child(sm_backend b) { return b == SM_BACKEND_THREAD || b == SM_BACKEND_PERSISTENT; }

static int work(void *ctx, size_t job, void *result) {
  (void)result;
  atomic_fetch_add(&((atomic_int *)ctx)[job], 1);
  return 0;
}

static int run_and_count(sm_pool *pool, atomic_int *calls, int n, sm_status *st) {
  for (int i = 0; i < n; i++) atomic_store(&calls[i], 0);
  *st = sm_map(pool, (size_t)n, work, NULL, 8, calls);
  int ok = 0;
  for (int i = 0; i < n; i++) ok += atomic_load(&calls[i]) == 1;
  return ok;
}

/* A region: a dynamic loop over [0, 100) counting each index in calls[]. The pool travels in ctx
 * (sm_empty memory): persistent workers see globals as they were at sm_pool_new. */
typedef struct {
  sm_pool *pool;
  atomic_int *calls;
} region_ctx_t;

static int region_count(void *ctx) {
  region_ctx_t *r = (region_ctx_t *)ctx;
  size_t lo, hi;
  while (sm_for_next(r->pool, 0, 100, SM_SCHEDULE_DYNAMIC, 3, 0, &lo, &hi))
    for (size_t i = lo; i < hi; i++) atomic_fetch_add(&r->calls[i], 1);
  return 0;
}

static int region_and_count(sm_pool *pool, atomic_int *calls, sm_status *st) {
  for (int i = 0; i < 100; i++) atomic_store(&calls[i], 0);
  region_ctx_t *r = (region_ctx_t *)shared_dup(&(region_ctx_t){pool, calls}, sizeof(region_ctx_t));
  *st = sm_parallel(pool, region_count, r);
  sm_free(r);
  int ok = 0;
  for (int i = 0; i < 100; i++) ok += atomic_load(&calls[i]) == 1;
  return ok;
}

static int mode_inherit(sm_backend b) {
  atomic_int *calls = (atomic_int *)must_empty(100, sizeof(atomic_int));
  sm_pool *pool = new_pool(2, b);
  sm_status st;
  CHECK(run_and_count(pool, calls, 100, &st) == 100 && st == SM_OK, "map in the parent: %s", sm_status_str(st));

  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork");
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL);
    alarm(15); /* a hang ends as death by SIGALRM, reported by the parent */
    int ok = run_and_count(pool, calls, 100, &st);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", st == SM_OK ? "" : last_err());
    fprintf(stderr, "child, inherited %s pool: sm_map %s \"%s\" (%d of 100 jobs ran once)\n", g_backend_name,
            sm_status_str(st), msg, ok);
    if (refused_in_child(b)) {
      if (st != SM_ERR_STATE) _exit(20);
      if (!icontains(msg, "fork") || !icontains(msg, "new pool")) _exit(21);
      for (int i = 0; i < 100; i++)
        if (atomic_load(&calls[i]) != 0) _exit(22);
    } else {
      if (st != SM_OK) _exit(23);
      if (ok != 100) _exit(10);
    }
    ok = region_and_count(pool, calls, &st);
    snprintf(msg, sizeof msg, "%s", st == SM_OK ? "" : last_err());
    fprintf(stderr, "child, inherited %s pool: sm_parallel %s \"%s\" (%d of 100 iterations ran once)\n",
            g_backend_name, sm_status_str(st), msg, ok);
    if (refused_in_child(b)) {
      if (st != SM_ERR_STATE || !icontains(msg, "fork")) _exit(24);
    } else if (st != SM_OK || ok != 100) {
      _exit(25);
    }
    sm_pool *mine = sm_pool_new(2, b);
    if (!mine) _exit(12);
    ok = run_and_count(mine, calls, 100, &st);
    if (st != SM_OK || ok != 100) _exit(13);
    ok = region_and_count(mine, calls, &st);
    if (st != SM_OK || ok != 100) _exit(14);
    sm_pool_free(mine);
    if (count_children(NULL) != 0) _exit(15);
    _exit(0);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  CHECK(!(WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM),
        "%s backend: sm_map or sm_parallel on a pool inherited through fork() hung in the child (killed after 15 s); "
        "it must run or refuse with an error",
        g_backend_name);
  CHECK(WIFEXITED(status), "child died by signal %d", WTERMSIG(status));
  int code = WEXITSTATUS(status);
  CHECK(code == 0, "child failed: %s",
        code == 10   ? "the inherited pool returned SM_OK but jobs did not run exactly once"
        : code == 12 ? "sm_pool_new in the child failed"
        : code == 13 ? "a pool created in the child did not run a map correctly"
        : code == 14 ? "a pool created in the child did not run a region correctly"
        : code == 15 ? "children left in the child"
        : code == 20 ? "thread/persistent backend: sm_map on the inherited pool did not return SM_ERR_STATE"
        : code == 21 ? "thread backend: the SM_ERR_STATE message does not say the pool's threads are not in this "
                       "forked child and a new pool is needed"
        : code == 22 ? "thread backend: the refused map ran jobs"
        : code == 23 ? "process/serial backend: sm_map on the inherited pool failed (it can run there)"
        : code == 24 ? "thread backend: sm_parallel on the inherited pool did not return SM_ERR_STATE naming the fork"
        : code == 25 ? "process/serial backend: sm_parallel on the inherited pool did not run the loop exactly once"
                     : "unexpected exit code");
  CHECK(run_and_count(pool, calls, 100, &st) == 100 && st == SM_OK, "map in the parent after the child: %s (%s)",
        sm_status_str(st), last_err());
  CHECK(region_and_count(pool, calls, &st) == 100 && st == SM_OK, "region in the parent after the child: %s (%s)",
        sm_status_str(st), last_err());
  CHECK_NO_CHILDREN("end");
  sm_pool_free(pool);
  sm_free(calls);
  return 0;
}

/* ---------------------------------------------------------------- forks of a multi-threaded caller */

static atomic_int g_stop;
static atomic_long g_busy[2];
static sm_backend g_b;

static void *use_memory(void *arg) {
  (void)arg;
  uint32_t i = 0;
  while (!atomic_load(&g_stop)) {
    char *p = (char *)sm_empty(1 + hash32(i++) % 5000, 1);
    if (p) sm_free(p);
    atomic_fetch_add(&g_busy[0], 1);
  }
  return NULL;
}

static int work_quick(void *ctx, size_t job, void *result) {
  (void)ctx;
  *(size_t *)result = job;
  return 0;
}

static void *use_maps(void *arg) {
  (void)arg;
  /* the serial backend here: maps from this thread must not fork (the main thread's children are
   * counted) but still go through the library's map set-up and tear-down */
  sm_pool *p = sm_pool_new(1, g_b == SM_BACKEND_PROCESS ? SM_BACKEND_SERIAL : g_b);
  if (!p) return NULL;
  while (!atomic_load(&g_stop)) {
    sm_map(p, 4, work_quick, NULL, sizeof(size_t), NULL);
    atomic_fetch_add(&g_busy[1], 1);
  }
  sm_pool_free(p);
  return NULL;
}

static void mode_threads(sm_backend b, int nfork) {
  g_b = b;
  pthread_t th[2];
  CHECK(pthread_create(&th[0], NULL, use_memory, NULL) == 0, "pthread_create");
  CHECK(pthread_create(&th[1], NULL, use_maps, NULL) == 0, "pthread_create");
  const int NFORK = nfork;
  int hung = 0, failed = 0, first_fail = 0;
  long long t0 = now_ms();
  int forks = 0;
  for (int i = 0; i < NFORK && hung < 3; i++) { /* 3 hung children are proof enough (2 s each) */
    forks++;
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
      signal(SIGALRM, SIG_DFL);
      alarm(2);
      void *m = sm_empty(100, 8);
      if (!m) _exit(3);
      sm_free(m);
      sm_pool *p = sm_pool_new(1, b);
      if (!p) _exit(4);
      if (sm_map(p, 3, work_quick, NULL, sizeof(size_t), NULL) != SM_OK) _exit(5);
      sm_pool_free(p);
      _exit(0);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) hung++;
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      if (!failed) first_fail = st;
      failed++;
    }
  }
  long long t1 = now_ms();
  atomic_store(&g_stop, 1);
  pthread_join(th[0], NULL);
  pthread_join(th[1], NULL);
  printf("%d forks in %lld ms while other threads made %ld sm_empty/sm_free and %ld maps: %d child(ren) hung, %d "
         "failed\n",
         forks, t1 - t0, atomic_load(&g_busy[0]), atomic_load(&g_busy[1]), hung, failed);
  CHECK(hung == 0,
        "%d of %d children forked by a multi-threaded caller hung (2 s) in sm_empty/sm_free/sm_pool_new/sm_map: a "
        "library lock held by another thread at fork() stays locked in the child",
        hung, forks);
  CHECK(failed == 0, "%d children failed; first wait status 0x%x", failed, first_fail);
  CHECK_NO_CHILDREN("end");
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  const char *mode = argc >= 3 ? argv[2] : "inherit";
  watchdog(60);
  jfail_init();
  if (strcmp(mode, "inherit") == 0) mode_inherit(b);
  else if (strcmp(mode, "threads") == 0) mode_threads(b, argc >= 4 ? atoi(argv[3]) : 400);
  else CHECK(0, "unknown mode \"%s\" (inherit, threads)", mode);
  printf("test_forkchild[%s %s]: OK\n", g_backend_name, mode);
  return 0;
}
