/* Bad input never crashes, and every error path leaves a message in sm_last_error() that mentions
 * the relevant thing and its status in sm_last_status().  Also: both are per thread and ""/SM_OK
 * before any failure; sm_status_str for every status and out-of-range values; sm_empty memory is
 * zeroed, page-aligned, reusable; the header's limits (SM_MAX_WORKERS, SM_MAX_JOBS,
 * SM_MAX_RESULT_SIZE) are what the library enforces, with the same status on every backend. */
#include "testutil.h"

static int work_count(void *ctx, size_t job, void *result) {
  (void)job;
  (void)result;
  atomic_fetch_add((atomic_int *)ctx, 1);
  return 0;
}

/* the message must be non-empty and contain at least one of the keywords (case-insensitive) */
static void expect_msg(const char *what, const char *k1, const char *k2, const char *k3) {
  const char *m = last_err();
  printf("%-58s -> \"%s\"\n", what, m);
  CHECK(m[0] != 0, "%s: sm_last_error() is empty", what);
  CHECK((k1 && icontains(m, k1)) || (k2 && icontains(m, k2)) || (k3 && icontains(m, k3)),
        "%s: message \"%s\" should mention %s%s%s%s%s", what, m, k1 ? k1 : "", k2 ? " / " : "", k2 ? k2 : "",
        k3 ? " / " : "", k3 ? k3 : "");
}

static sm_backend g_b; /* the backend under test */

/* sm_last_status() must be `expected` after the failure just made. */
static void expect_status(const char *what, sm_status expected) {
  sm_status got = sm_last_status();
  CHECK(got == expected, "%s: sm_last_status() = %s, expected %s (sm_last_error: \"%s\")", what,
        sm_status_str(got), sm_status_str(expected), last_err());
}

static char g_thread_msg[512];
static int g_thread_first_empty;
static sm_status g_thread_first_status = (sm_status)-1, g_thread_status = (sm_status)-1;
static void *thread_main(void *arg) {
  (void)arg;
  const char *m = sm_last_error();
  g_thread_first_empty = (m != NULL && m[0] == 0);
  g_thread_first_status = sm_last_status();
  sm_pool *p = sm_pool_new(2, (sm_backend)7);
  if (p) sm_pool_free(p);
  snprintf(g_thread_msg, sizeof g_thread_msg, "%s", last_err());
  g_thread_status = sm_last_status();
  return NULL;
}

static int work_fail(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  return job == 3 ? 42 : 0;
}

static int work_stop_at_0(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  return job == 0 ? SM_STOP : 0;
}

static int work_empty_inside(void *ctx, size_t job, void *result) {
  (void)job;
  (void)ctx;
  JCHECK(sm_empty(1, 8) == NULL, "sm_empty inside a job returned memory");
  *(int *)result = (int)sm_last_status();
  return 0;
}

static int reduce_keep(void *ctx, size_t job, void *result) {
  (void)job;
  *(int *)ctx = *(int *)result;
  return 0;
}

/* Which status each failure leaves in sm_last_status(); successes leave it alone (as errno). */
static void test_last_status(sm_pool *pool) {
  CHECK(sm_pool_new(2, (sm_backend)7) == NULL, "bad backend accepted");
  expect_status("sm_pool_new(2, (sm_backend)7)", SM_ERR_INVALID);
  CHECK(sm_pool_new(SM_MAX_WORKERS + 1, g_b) == NULL, "sm_pool_new(SM_MAX_WORKERS + 1) returned a pool");
  expect_status("sm_pool_new(SM_MAX_WORKERS + 1)", SM_ERR_INVALID);
  expect_msg("sm_pool_new(SM_MAX_WORKERS + 1)", "SM_MAX_WORKERS", NULL, NULL);
  CHECK(sm_pool_nworkers(pool) >= 1, "sm_pool_nworkers failed");
  expect_status("a success after sm_pool_new(SM_MAX_WORKERS + 1)", SM_ERR_INVALID);
  CHECK(sm_empty(SIZE_MAX / 2 + 1, 2) == NULL, "overflowing sm_empty returned memory");
  expect_status("sm_empty(SIZE_MAX/2+1, 2) (overflow)", SM_ERR_INVALID);
  CHECK(sm_empty((size_t)1 << 31, (size_t)1 << 31) == NULL, "sm_empty(2^31, 2^31) returned memory");
  expect_status("sm_empty(2^31, 2^31) (4 EiB: cannot be had)", SM_ERR_NOMEM);
  size_t count = SIZE_MAX;
  CHECK(sm_fromfile(pool, "/nonexistent/sharedmem-test", 0, 8, &count) == NULL, "sm_fromfile of nothing");
  expect_status("sm_fromfile(missing file)", SM_ERR_IO);
  CHECK(sm_fromfile(pool, NULL, 0, 8, &count) == NULL, "sm_fromfile(NULL path)");
  expect_status("sm_fromfile(NULL path)", SM_ERR_INVALID);
  CHECK(sm_pool_nworkers(NULL) == -1, "sm_pool_nworkers(NULL)");
  expect_status("sm_pool_nworkers(NULL)", SM_ERR_INVALID);
  CHECK(sm_single(pool) == -1, "sm_single outside a region");
  expect_status("sm_single outside a region", SM_ERR_STATE);
  size_t lo, hi;
  CHECK(sm_for_next(pool, 0, 10, SM_SCHEDULE_STATIC, 0, 0, &lo, &hi) == 0, "sm_for_next outside a region");
  expect_status("sm_for_next outside a region", SM_ERR_STATE);
  /* Maps: the status they return. */
  CHECK(sm_map(pool, 10, work_fail, NULL, 0, NULL) == SM_ERR_JOB, "failing map");
  expect_status("a map whose job failed", SM_ERR_JOB);
  CHECK(sm_map(pool, 10, work_stop_at_0, NULL, 0, NULL) == SM_STOPPED, "stopping map");
  expect_status("a map stopped by SM_STOP", SM_STOPPED);
  expect_msg("a map stopped by SM_STOP, no reduce", "completed", NULL, NULL);
  CHECK(!icontains(last_err(), "reduced"), "a map without reduce says its jobs were reduced: \"%s\"", last_err());
  CHECK(sm_map(pool, 10, work_fail, NULL, 0, NULL) == SM_ERR_JOB, "failing map");
  CHECK(!icontains(last_err(), "reduced"), "a map without reduce says its jobs were reduced: \"%s\"", last_err());
  int *got = (int *)must_empty(1, sizeof(int)); /* ctx the workers of every backend see */
  *got = -1;
  CHECK(sm_map(pool, 10, work_fail, reduce_keep, sizeof(int), got) == SM_ERR_JOB, "failing map");
  CHECK(icontains(last_err(), "reduced"), "a map with reduce does not say its jobs were reduced: \"%s\"", last_err());
  /* sm_empty inside a job: SM_ERR_STATE, seen by the job itself. */
  JRESET();
  CHECK_STATUS(sm_map(pool, 1, work_empty_inside, reduce_keep, sizeof(int), got), SM_OK, "sm_empty in a job");
  CHECK(*got == SM_ERR_STATE, "sm_empty inside a job: sm_last_status() there was %d, expected SM_ERR_STATE", *got);
  sm_free(got);
  /* A map that succeeds after one that failed leaves the failure's status (and message). */
  CHECK(sm_map(pool, 10, work_fail, NULL, 0, NULL) == SM_ERR_JOB, "failing map");
  CHECK_STATUS(sm_map(pool, 10, work_nothing, NULL, 0, NULL), SM_OK, "a map that succeeds");
  expect_status("a successful map after a failing one", SM_ERR_JOB);
}

/* The header's limits: above them SM_ERR_INVALID on every backend; at them, accepted. */
static void test_limits(sm_pool *pool) {
  CHECK(SM_MAX_WORKERS == 4096, "SM_MAX_WORKERS = %d", (int)SM_MAX_WORKERS);
  CHECK((unsigned long long)SM_MAX_JOBS == 1ULL << 62, "SM_MAX_JOBS = %llu", (unsigned long long)SM_MAX_JOBS);
  CHECK((unsigned long long)SM_MAX_RESULT_SIZE == 1ULL << 32, "SM_MAX_RESULT_SIZE = %llu",
        (unsigned long long)SM_MAX_RESULT_SIZE);
  CHECK(sm_map(pool, (size_t)SM_MAX_JOBS + 1, work_nothing, NULL, 0, NULL) == SM_ERR_INVALID,
        "sm_map(SM_MAX_JOBS + 1 jobs) was not refused");
  expect_msg("sm_map(SM_MAX_JOBS + 1 jobs)", "SM_MAX_JOBS", NULL, NULL);
  /* SM_MAX_JOBS itself is accepted (job 0 stops the map at once). */
  CHECK_STATUS(sm_map(pool, (size_t)SM_MAX_JOBS, work_stop_at_0, NULL, 0, NULL), SM_STOPPED,
               "sm_map(SM_MAX_JOBS jobs) stopping at job 0");
  /* Result sizes above the limit, or whose buffers would overflow: SM_ERR_INVALID, whatever the
   * backend and whether there is a reduce (which decides how many buffers there are). */
  const size_t over[] = {(size_t)SM_MAX_RESULT_SIZE + 1, (size_t)1 << 50, SIZE_MAX / 4, SIZE_MAX / 2, SIZE_MAX};
  for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
    for (int with_reduce = 0; with_reduce < 2; with_reduce++) {
      char what[160];
      int sink = 0;
      snprintf(what, sizeof what, "sm_map with result_size %zu%s", over[i], with_reduce ? " and reduce" : "");
      CHECK(sm_map(pool, 10, work_nothing, with_reduce ? reduce_keep : NULL, over[i], &sink) == SM_ERR_INVALID,
            "%s: not SM_ERR_INVALID (%s)", what, last_err());
      expect_msg(what, "SM_MAX_RESULT_SIZE", NULL, NULL);
      sm_map_opts o = default_opts();
      o.wresult_size = over[i];
      snprintf(what, sizeof what, "sm_map_ex with wresult_size %zu%s", over[i], with_reduce ? " and reduce" : "");
      CHECK(sm_map_ex(pool, 10, work_nothing, with_reduce ? reduce_keep : NULL, sizeof(int), &sink, &o) ==
                SM_ERR_INVALID, "%s: not SM_ERR_INVALID (%s)", what, last_err());
      expect_msg(what, "SM_MAX_RESULT_SIZE", NULL, NULL);
    }
  }
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  g_b = b;
  watchdog(60);

  /* "" before any failure on a thread, never NULL */
  const char *first = sm_last_error();
  CHECK(first != NULL, "sm_last_error() returned NULL before any failure");
  CHECK(first[0] == 0, "sm_last_error() is \"%s\" before any failure, expected \"\"", first);
  CHECK(sm_last_status() == SM_OK, "sm_last_status() is %s before any failure", sm_status_str(sm_last_status()));

  jfail_init();
  atomic_int *cnt = (atomic_int *)must_empty(1, sizeof(atomic_int));

  /* backend out of range */
  CHECK(sm_pool_new(2, (sm_backend)7) == NULL, "sm_pool_new(2, (sm_backend)7) returned a pool");
  expect_msg("sm_pool_new(2, (sm_backend)7)", "backend", "7", NULL);
  CHECK(sm_pool_new(2, (sm_backend)-1) == NULL, "sm_pool_new(2, (sm_backend)-1) returned a pool");
  expect_msg("sm_pool_new(2, (sm_backend)-1)", "backend", "-1", NULL);

  /* per-thread message: a failure in another thread does not change ours */
  char mine[512];
  snprintf(mine, sizeof mine, "%s", last_err());
  pthread_t th;
  CHECK(pthread_create(&th, NULL, thread_main, NULL) == 0, "pthread_create");
  pthread_join(th, NULL);
  CHECK(g_thread_first_empty, "sm_last_error() in a new thread was not \"\" before its first failure");
  CHECK(g_thread_first_status == SM_OK, "sm_last_status() in a new thread was %d before its first failure",
        (int)g_thread_first_status);
  CHECK(g_thread_status == SM_ERR_INVALID, "sm_last_status() after a bad backend in another thread: %d",
        (int)g_thread_status);
  CHECK(g_thread_msg[0] != 0, "the other thread's failure left no message there");
  CHECK(strcmp(mine, last_err()) == 0, "a failure in another thread changed this thread's sm_last_error(): "
        "\"%s\" -> \"%s\"", mine, last_err());

  sm_pool *pool = new_pool(2, b);

  /* sm_map argument errors */
  CHECK(sm_map(NULL, 10, work_count, NULL, 0, cnt) == SM_ERR_INVALID, "sm_map(NULL pool) != SM_ERR_INVALID");
  expect_msg("sm_map(NULL pool, ...)", "pool", "null", NULL);
  CHECK(sm_map(pool, 10, NULL, NULL, 0, cnt) == SM_ERR_INVALID, "sm_map(work NULL) != SM_ERR_INVALID");
  expect_msg("sm_map(pool, 10, NULL work, ...)", "work", "null", "callback");
  const size_t huge_rs[] = {SIZE_MAX / 4, SIZE_MAX / 2, SIZE_MAX, (size_t)1 << 50};
  for (size_t i = 0; i < sizeof huge_rs / sizeof huge_rs[0]; i++) {
    atomic_store(cnt, 0);
    sm_status s = sm_map(pool, 10, work_count, NULL, huge_rs[i], cnt);
    char what[128];
    snprintf(what, sizeof what, "sm_map with result_size %zu", huge_rs[i]);
    CHECK(s == SM_ERR_NOMEM || s == SM_ERR_INVALID, "%s returned %s, expected SM_ERR_NOMEM or SM_ERR_INVALID (%s)", what,
          sm_status_str(s), last_err());
    expect_msg(what, "result", "size", "memory");
    CHECK(atomic_load(cnt) == 0, "%s: work ran %d times although no result could be allocated", what, atomic_load(cnt));
    CHECK_NO_CHILDREN(what);
  }
  /* njobs beyond what the library accepts (if it has a limit) must fail cleanly, not run 2^64 jobs */
  {
    atomic_store(cnt, 0);
    sm_status s = sm_map(pool, SIZE_MAX, work_count, NULL, 0, cnt);
    printf("sm_map(njobs = SIZE_MAX) -> %s \"%s\"\n", sm_status_str(s), last_err());
    CHECK(s == SM_ERR_INVALID, "sm_map(njobs = SIZE_MAX) returned %s, expected SM_ERR_INVALID (too many jobs)",
          sm_status_str(s));
    expect_msg("sm_map(njobs = SIZE_MAX)", "job", "njobs", NULL);
    CHECK(atomic_load(cnt) == 0, "sm_map(njobs = SIZE_MAX) ran %d jobs", atomic_load(cnt));
  }
  /* the pool still works */
  atomic_store(cnt, 0);
  CHECK_STATUS(sm_map(pool, 100, work_count, NULL, 8, cnt), SM_OK, "map after argument errors");
  CHECK(atomic_load(cnt) == 100, "work ran %d times, expected 100", atomic_load(cnt));

  /* sm_empty errors */
  CHECK(sm_empty(SIZE_MAX / 2 + 1, 2) == NULL, "sm_empty(SIZE_MAX/2+1, 2) (overflow) returned memory");
  expect_msg("sm_empty(SIZE_MAX/2+1, 2)", "overflow", "too large", "size");
  CHECK(sm_empty(SIZE_MAX, SIZE_MAX) == NULL, "sm_empty(SIZE_MAX, SIZE_MAX) returned memory");
  expect_msg("sm_empty(SIZE_MAX, SIZE_MAX)", "overflow", "too large", "size");
  CHECK(sm_empty((size_t)1 << 31, (size_t)1 << 31) == NULL, "sm_empty(2^31, 2^31) = 4 EiB returned memory");
  expect_msg("sm_empty(2^31, 2^31)", "memory", "alloc", "size");
  /* zero sizes: a valid pointer (header), freeable */
  void *z1 = sm_empty(0, 8), *z2 = sm_empty(8, 0);
  CHECK(z1 != NULL && z2 != NULL, "sm_empty with a zero size returned NULL (%s)", last_err());
  sm_free(z1);
  sm_free(z2);
  /* zero-filled, page-aligned, writes kept, reuse after free is zeroed again */
  const size_t sizes[] = {1, 3, 4095, 4096, 4097, 1 << 20};
  for (int rep = 0; rep < 2; rep++)
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      unsigned char *p = (unsigned char *)must_empty(sizes[i], 1);
      CHECK(((uintptr_t)p & 4095) == 0, "sm_empty(%zu, 1) = %p is not page-aligned", sizes[i], (void *)p);
      for (size_t k = 0; k < sizes[i]; k++) CHECK(p[k] == 0, "sm_empty(%zu, 1): byte %zu is %d", sizes[i], k, p[k]);
      memset(p, 0xAB, sizes[i]);
      sm_free(p);
    }

  /* sm_free of what sm_empty did not return: refused with a message, nothing freed */
  {
    int on_stack = 0;
    char *m = (char *)malloc(64);
    char *region = (char *)must_empty(3, 4096);
    region[0] = 1;
    sm_pool_new(1, (sm_backend)9); /* some other message first */
    char before[512];
    snprintf(before, sizeof before, "%s", last_err());
    sm_free(&on_stack);
    CHECK(strcmp(before, last_err()) != 0 && last_err()[0], "sm_free(stack pointer) set no message");
    expect_msg("sm_free(stack pointer)", "sm_empty", "pointer", "free");
    sm_pool_new(1, (sm_backend)9);
    sm_free(m);
    CHECK(strcmp(before, last_err()) != 0, "sm_free(malloc pointer) set no message");
    expect_msg("sm_free(malloc pointer)", "sm_empty", "pointer", "free");
    sm_pool_new(1, (sm_backend)9);
    sm_free(region + 4096);
    CHECK(strcmp(before, last_err()) != 0, "sm_free(interior pointer) set no message");
    expect_msg("sm_free(pointer into an sm_empty region)", "sm_empty", "pointer", "free");
    region[4096 * 2 + 5] = 7; /* still mapped */
    CHECK(region[0] == 1, "region changed");
    sm_free(region);
    sm_pool_new(1, (sm_backend)9);
    sm_free(region); /* double free: refused */
    CHECK(strcmp(before, last_err()) != 0, "double sm_free set no message");
    expect_msg("sm_free twice", "sm_empty", "pointer", "free");
    free(m);
  }
  sm_free(NULL);
  sm_pool_free(NULL);

  /* critical/ordered with NULL */
  CHECK(sm_critical_enter(NULL) == SM_ERR_INVALID, "sm_critical_enter(NULL) != SM_ERR_INVALID");
  expect_msg("sm_critical_enter(NULL)", "pool", "null", NULL);
  CHECK(sm_critical_leave(NULL) == SM_ERR_INVALID, "sm_critical_leave(NULL) != SM_ERR_INVALID");
  expect_msg("sm_critical_leave(NULL)", "pool", "null", NULL);
  CHECK(sm_ordered_enter(NULL) == SM_ERR_INVALID, "sm_ordered_enter(NULL) != SM_ERR_INVALID");
  expect_msg("sm_ordered_enter(NULL)", "pool", "null", NULL);
  CHECK(sm_ordered_leave(NULL) == SM_ERR_INVALID, "sm_ordered_leave(NULL) != SM_ERR_INVALID");
  expect_msg("sm_ordered_leave(NULL)", "pool", "null", NULL);

  /* nworkers */
  CHECK(sm_pool_nworkers(NULL) == -1, "sm_pool_nworkers(NULL) = %d, expected -1", sm_pool_nworkers(NULL));
  expect_msg("sm_pool_nworkers(NULL)", "pool", "null", NULL);
  CHECK(sm_pool_nworkers(pool) == (b == SM_BACKEND_SERIAL ? 1 : 2), "sm_pool_nworkers = %d (a serial pool has 1)",
        sm_pool_nworkers(pool));
  test_last_status(pool);
  test_limits(pool);

  /* status strings */
  const char *strs[10];
  for (int s = 0; s <= 9; s++) {
    strs[s] = sm_status_str((sm_status)s);
    CHECK(strs[s] != NULL && strs[s][0] != 0, "sm_status_str(%d) is NULL or empty", s);
    for (int t = 0; t < s; t++) CHECK(strcmp(strs[s], strs[t]) != 0, "sm_status_str(%d) == sm_status_str(%d)", s, t);
  }
  CHECK(strstr(strs[SM_ERR_JOB], "SM_ERR_JOB") != NULL, "sm_status_str(SM_ERR_JOB) = \"%s\" does not name it",
        strs[SM_ERR_JOB]);
  const int bogus[] = {10, 99, -1, INT_MAX, INT_MIN};
  for (size_t i = 0; i < sizeof bogus / sizeof bogus[0]; i++) {
    const char *s = sm_status_str((sm_status)bogus[i]);
    CHECK(s != NULL, "sm_status_str(%d) returned NULL", bogus[i]);
    printf("sm_status_str(%d) = \"%s\"\n", bogus[i], s);
  }

  /* debug switch with odd values does not crash */
  sm_set_debug(0);

  /* pool with absurd worker counts: a clean failure or a clamp, never a crash or fork bomb */
  {
    sm_pool *p = sm_pool_new(INT_MAX, b);
    if (p) {
      printf("sm_pool_new(INT_MAX) gave %d workers\n", sm_pool_nworkers(p));
      CHECK(sm_pool_nworkers(p) <= 4096, "sm_pool_new(INT_MAX) accepted %d workers", sm_pool_nworkers(p));
      sm_pool_free(p);
    } else {
      expect_msg("sm_pool_new(INT_MAX)", "worker", "nworkers", "many");
    }
  }

  sm_pool_free(pool);
  sm_free(cnt);
  CHECK_NO_CHILDREN("end");
  printf("test_invalid[%s]: OK\n", g_backend_name);
  return 0;
}
