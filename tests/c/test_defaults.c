/* nworkers <= 0 means the default: OMP_NUM_THREADS when it is a positive integer, else the number
 * of CPUs in this process's affinity mask.  Usage: test_defaults <process|thread> [env3]
 * "env3": ctest runs it with OMP_NUM_THREADS=3 in the environment (no setenv before the first pool). */
#include "testutil.h"

typedef struct {
  atomic_int seen[MAXW];
  atomic_int nseen;
  int nw;
} rdv_t;

static int work_rdv(void *vctx, size_t job, void *result) {
  rdv_t *r = (rdv_t *)vctx;
  (void)job;
  (void)result;
  int wid = sm_worker_id();
  JCHECK(wid >= 0 && wid < r->nw && wid < MAXW, "worker id %d out of range 0..%d", wid, r->nw - 1);
  if (atomic_exchange(&r->seen[wid], 1) == 0) {
    atomic_fetch_add(&r->nseen, 1);
    JCHECK(wait_atomic_ge(&r->nseen, r->nw, 20000), "only %d of %d default workers ever ran a job",
           atomic_load(&r->nseen), r->nw);
  }
  return 0;
}

static void expect_default(sm_backend b, int nworkers_arg, int expected, const char *why) {
  sm_pool *p = sm_pool_new(nworkers_arg, b);
  CHECK(p != NULL, "sm_pool_new(%d) failed (%s): %s", nworkers_arg, why, last_err());
  int got = sm_pool_nworkers(p);
  const char *omp = getenv("OMP_NUM_THREADS");
  CHECK(got == expected, "sm_pool_new(%d) with OMP_NUM_THREADS=%s%s%s: sm_pool_nworkers = %d, expected %d (%s)",
        nworkers_arg, omp ? "\"" : "", omp ? omp : "(unset)", omp ? "\"" : "", got, expected, why);
  sm_pool_free(p);
}

/* All default workers really take part in a map. */
static void expect_participation(sm_backend b, int expected) {
  if (expected > MAXW) return;
  sm_pool *p = new_pool(0, b);
  rdv_t *r = (rdv_t *)must_empty(1, sizeof(rdv_t));
  r->nw = expected;
  CHECK_STATUS(sm_map(p, (size_t)expected * 16, work_rdv, NULL, 0, r), SM_OK, "rendezvous map");
  CHECK(atomic_load(&r->nseen) == expected, "%d distinct workers ran jobs, expected %d", atomic_load(&r->nseen),
        expected);
  sm_free(r);
  sm_pool_free(p);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(60);
  jfail_init();
  int aff = affinity_cpus();
  printf("affinity CPUs: %d\n", aff);

  if (argc >= 3 && strcmp(argv[2], "env3") == 0) {
    const char *e = getenv("OMP_NUM_THREADS");
    CHECK(e && strcmp(e, "3") == 0, "this mode expects ctest to set OMP_NUM_THREADS=3 (got %s)", e ? e : "unset");
    expect_default(b, 0, 3, "OMP_NUM_THREADS=3 from the environment");
    expect_default(b, -1, 3, "OMP_NUM_THREADS=3 from the environment");
    expect_default(b, 2, 2, "explicit nworkers wins over OMP_NUM_THREADS");
    expect_participation(b, 3);
    printf("test_defaults[%s env3]: OK\n", g_backend_name);
    return 0;
  }

  unsetenv("OMP_NUM_THREADS");
  expect_default(b, 0, aff, "no OMP_NUM_THREADS: affinity CPU count");
  expect_default(b, -1, aff, "no OMP_NUM_THREADS: affinity CPU count");
  expect_default(b, INT_MIN, aff, "no OMP_NUM_THREADS: affinity CPU count");
  expect_default(b, 1, 1, "explicit");
  expect_default(b, 5, 5, "explicit");

  setenv("OMP_NUM_THREADS", "3", 1);
  expect_default(b, 0, 3, "OMP_NUM_THREADS=3");
  expect_default(b, -7, 3, "OMP_NUM_THREADS=3");
  expect_default(b, 4, 4, "explicit nworkers wins");
  expect_participation(b, 3);
  setenv("OMP_NUM_THREADS", "1", 1);
  expect_default(b, 0, 1, "OMP_NUM_THREADS=1");
  setenv("OMP_NUM_THREADS", "6", 1);
  expect_default(b, 0, 6, "OMP_NUM_THREADS=6");

  const char *bad[] = {"0", "-4", "abc", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("OMP_NUM_THREADS", bad[i], 1);
    expect_default(b, 0, aff, "OMP_NUM_THREADS not a positive integer: affinity CPU count");
  }
  unsetenv("OMP_NUM_THREADS");
  expect_participation(b, aff);

  /* restrict the affinity mask to one CPU: the default follows it */
  if (aff >= 2) {
    cpu_set_t orig, one;
    CHECK(sched_getaffinity(0, sizeof orig, &orig) == 0, "sched_getaffinity");
    CPU_ZERO(&one);
    for (int i = 0; i < CPU_SETSIZE; i++)
      if (CPU_ISSET(i, &orig)) {
        CPU_SET(i, &one);
        break;
      }
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0, "sched_setaffinity: %s", strerror(errno));
    expect_default(b, 0, 1, "affinity mask restricted to 1 CPU (sched_getaffinity, not nproc/sysconf)");
    setenv("OMP_NUM_THREADS", "2", 1);
    expect_default(b, 0, 2, "OMP_NUM_THREADS=2 wins over the affinity mask");
    unsetenv("OMP_NUM_THREADS");
    CHECK(sched_setaffinity(0, sizeof orig, &orig) == 0, "sched_setaffinity restore");
    expect_default(b, 0, aff, "affinity mask restored");
  } else {
    printf("only 1 CPU in the affinity mask: restricted-mask case skipped\n");
  }
  printf("test_defaults[%s]: OK\n", g_backend_name);
  return 0;
}
