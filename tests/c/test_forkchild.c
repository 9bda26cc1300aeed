/* A caller that forks (not through sharedmem) after creating a pool, e.g. a multiprocessing program.
 * In the child, sm_map on the inherited pool must not hang: it either runs the map correctly or
 * refuses it with an error and a message.  A pool created in the child works.  The parent's pool
 * keeps working.  (Not spelled out by the issue; pinned because a hang here is silent.) */
#include "testutil.h"

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

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(60);
  jfail_init();
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
    fprintf(stderr, "child, inherited %s pool: %s \"%s\" (%d of 100 jobs ran once)\n", g_backend_name,
            sm_status_str(st), st == SM_OK ? "" : last_err(), ok);
    if (st == SM_OK && ok != 100) _exit(10);
    if (st != SM_OK && last_err()[0] == 0) _exit(11);
    sm_pool *mine = sm_pool_new(2, b);
    if (!mine) _exit(12);
    ok = run_and_count(mine, calls, 100, &st);
    if (st != SM_OK || ok != 100) _exit(13);
    sm_pool_free(mine);
    _exit(0);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  CHECK(!(WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM),
        "%s backend: sm_map on a pool inherited through fork() hung in the child (killed after 15 s); it must run "
        "the map or refuse it with an error", g_backend_name);
  CHECK(WIFEXITED(status), "child died by signal %d", WTERMSIG(status));
  int code = WEXITSTATUS(status);
  CHECK(code == 0, "child failed: %s",
        code == 10   ? "the inherited pool returned SM_OK but jobs did not run exactly once"
        : code == 11 ? "the inherited pool refused the map without a message"
        : code == 12 ? "sm_pool_new in the child failed"
        : code == 13 ? "a pool created in the child did not run a map correctly"
                     : "unexpected exit code");
  CHECK(run_and_count(pool, calls, 100, &st) == 100 && st == SM_OK, "map in the parent after the child: %s (%s)",
        sm_status_str(st), last_err());
  CHECK_NO_CHILDREN("end");
  sm_pool_free(pool);
  printf("test_forkchild[%s]: OK\n", g_backend_name);
  return 0;
}
