/* Early stop and job errors, every backend.
 * - work returning SM_STOP: no new jobs start, running jobs finish, reduce runs for exactly the jobs
 *   0..k (k = the stopping job), in order; sm_map returns SM_STOPPED.
 * - work returning any other nonzero value v in job k: reduce runs for exactly 0..k-1, sm_map returns
 *   SM_ERR_JOB and sm_last_error() names job k and v.
 * - reduce returning nonzero for job k: reduce ran exactly for 0..k, sm_map returns SM_STOPPED.
 * - the pool works normally afterwards; no child is left behind. */
#include "testutil.h"

#define NMAX 1000000

typedef struct {
  atomic_int *calls;
  size_t njobs;
  long stop_job;    /* job that returns ret_value (-1: none) */
  int ret_value;
  long slow_job;    /* job that sleeps slow_ms before returning (-1: none) */
  long slow_ms;
  long long_after;  /* jobs > stop_job sleep this long (ms), to keep them running (0: instant) */
  long stop_job2;   /* a second job returning ret_value2 (-1: none) */
  int ret_value2;
  reduce_log_t rlog;
} ctx_t;

static int work(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  JCHECK(job < c->njobs, "job %zu out of range", job);
  int prev = atomic_fetch_add(&c->calls[job], 1);
  JCHECK(prev == 0, "job %zu ran %d times", job, prev + 1);
  if (result) *(uint64_t *)result = job * 3 + 1;
  if ((long)job == c->slow_job) msleep(c->slow_ms);
  if (c->stop_job >= 0 && (long)job > c->stop_job && c->long_after) msleep(c->long_after);
  if ((long)job == c->stop_job) return c->ret_value;
  if ((long)job == c->stop_job2) return c->ret_value2;
  return 0;
}

static int reduce(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  CHECK(*(uint64_t *)result == job * 3 + 1, "reduce: job %zu result %llu, expected %zu", job,
        (unsigned long long)*(uint64_t *)result, job * 3 + 1);
  return rlog_add(&c->rlog, job);
}

static sm_backend g_b;
static sm_pool *g_pool;

static sm_status run(ctx_t *c, size_t njobs) {
  c->njobs = njobs;
  memset(c->calls, 0, njobs * sizeof(atomic_int));
  rlog_reset(&c->rlog);
  return sm_map(g_pool, njobs, work, reduce, sizeof(uint64_t), c);
}

static void check_calls_upto(ctx_t *c, long k, const char *what) {
  for (long j = 0; j <= k; j++)
    CHECK(atomic_load(&c->calls[j]) == 1, "%s: job %ld ran %d times, expected exactly once", what, j,
          atomic_load(&c->calls[j]));
  long extra = 0;
  for (size_t j = (size_t)(k + 1); j < c->njobs; j++) extra += atomic_load(&c->calls[j]);
  if (g_b == SM_BACKEND_SERIAL)
    CHECK(extra == 0, "%s: serial backend ran %ld jobs after the stopping job %ld", what, extra, k);
}

static void normal_map_after(ctx_t *c, const char *what) {
  c->stop_job2 = -1;
  c->stop_job = -1;
  c->slow_job = -1;
  c->long_after = 0;
  CHECK_STATUS(run(c, 300), SM_OK, "normal map after %s", what);
  CHECK_RLOG_PREFIX(&c->rlog, 300, "normal map after stop/error");
  CHECK_NO_CHILDREN(what);
}

static void case_stop(ctx_t *c, size_t n, long k, long slow_job, long slow_ms, const char *what) {
  c->stop_job = k;
  c->ret_value = SM_STOP;
  c->slow_job = slow_job;
  c->slow_ms = slow_ms;
  c->long_after = 0;
  CHECK_STATUS(run(c, n), SM_STOPPED, "%s", what);
  CHECK_RLOG_PREFIX(&c->rlog, k + 1, what);
  check_calls_upto(c, k, what);
  normal_map_after(c, what);
}

static void case_error(ctx_t *c, size_t n, long k, int value, long slow_job, long slow_ms, const char *what) {
  c->stop_job = k;
  c->ret_value = value;
  c->slow_job = slow_job;
  c->slow_ms = slow_ms;
  c->long_after = 0;
  sm_status st = run(c, n);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", last_err());
  CHECK_STATUS(st, SM_ERR_JOB, "%s", what);
  printf("%s: sm_last_error() = \"%s\"\n", what, msg);
  CHECK(icontains(msg, "job") && has_number(msg, k),
        "%s: SM_ERR_JOB message must name the job (\"job %ld\"): \"%s\"", what, k, msg);
  CHECK(has_number(msg, value), "%s: SM_ERR_JOB message must contain the returned value %d: \"%s\"", what, value,
        msg);
  CHECK_RLOG_PREFIX(&c->rlog, k, what);
  check_calls_upto(c, k, what);
  normal_map_after(c, what);
}

static void case_reduce_stop(ctx_t *c, size_t n, long k, int value, const char *what) {
  c->stop_job = -1;
  c->slow_job = -1;
  c->long_after = 0;
  c->njobs = n;
  memset(c->calls, 0, n * sizeof(atomic_int));
  rlog_reset(&c->rlog);
  c->rlog.stop_at_job = (int)k;
  c->rlog.stop_value = value;
  sm_status st = sm_map(g_pool, n, work, reduce, sizeof(uint64_t), c);
  CHECK_STATUS(st, SM_STOPPED, "%s", what);
  CHECK_RLOG_PREFIX(&c->rlog, k + 1, what);
  check_calls_upto(c, k, what);
  normal_map_after(c, what);
}

int main(int argc, char **argv) {
  g_b = parse_backend(argc, argv);
  watchdog(90);
  jfail_init();
  g_pool = new_pool(2, g_b);
  /* ctx in sm_empty memory (zeroed): persistent workers see only that memory as it is now */
  ctx_t *c = (ctx_t *)must_empty(1, sizeof *c);
  c->calls = (atomic_int *)must_empty(NMAX, sizeof(atomic_int));
  rlog_init(&c->rlog, NMAX);
  c->stop_job2 = -1;

  case_stop(c, 200, 50, -1, 0, "SM_STOP in job 50 of 200");
  case_stop(c, 200, 50, 49, 200, "SM_STOP in job 50 while job 49 still runs (200 ms)");
  case_stop(c, 200, 50, 50, 200, "SM_STOP in job 50 after 200 ms while later jobs complete first");
  case_stop(c, 200, 0, -1, 0, "SM_STOP in job 0");
  case_stop(c, 200, 199, -1, 0, "SM_STOP in the last job");
  case_stop(c, 1, 0, -1, 0, "SM_STOP in the only job");

  /* no new jobs start after a stop: 10^6 instant jobs, stop in job 5 */
  {
    const char *what = "SM_STOP in job 5 of 10^6";
    c->stop_job = 5;
    c->ret_value = SM_STOP;
    c->slow_job = -1;
    c->long_after = 0;
    CHECK_STATUS(run(c, NMAX), SM_STOPPED, "%s", what);
    CHECK_RLOG_PREFIX(&c->rlog, 6, what);
    long total = 0;
    for (size_t j = 0; j < NMAX; j++) total += atomic_load(&c->calls[j]);
    printf("%s: %ld jobs ran in total\n", what, total);
    CHECK(total < NMAX / 2, "%s: %ld of %d jobs ran: new jobs kept starting after the stop", what, total, NMAX);
    if (g_b == SM_BACKEND_SERIAL) CHECK(total == 6, "%s: serial backend ran %ld jobs, expected 6", what, total);
    normal_map_after(c, what);
  }
  /* running jobs finish: jobs after the stopping one sleep 300 ms and still complete once started */
  {
    const char *what = "SM_STOP in job 3 while later jobs sleep";
    c->stop_job = 3;
    c->ret_value = SM_STOP;
    c->slow_job = 3;
    c->slow_ms = 100;
    c->long_after = 300;
    CHECK_STATUS(run(c, 40), SM_STOPPED, "%s", what);
    CHECK_RLOG_PREFIX(&c->rlog, 4, what);
    check_calls_upto(c, 3, what);
    normal_map_after(c, what);
  }

  case_error(c, 100, 13, 42, -1, 0, "work returns 42 in job 13");
  case_error(c, 100, 13, 42, 12, 200, "work returns 42 in job 13 while job 12 still runs");
  case_error(c, 100, 0, 1, -1, 0, "work returns 1 in job 0");
  case_error(c, 100, 77, -5, -1, 0, "work returns -5 in job 77");
  case_error(c, 100, 99, 123456, 98, 100, "work returns 123456 in the last job");

  /* two outcomes: the one with the smaller job index decides, even when it arrives later
   * (job 10 sleeps 300 ms; job 13 returns at once) */
  {
    const char *what = "job 13 returns 42 first, job 10 returns 7 later";
    c->stop_job = 10; c->ret_value = 7; c->slow_job = 10; c->slow_ms = 300; c->long_after = 0;
    c->stop_job2 = 13; c->ret_value2 = 42;
    sm_status st = run(c, 100);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", last_err());
    printf("%s: %s \"%s\"\n", what, sm_status_str(st), msg);
    CHECK_STATUS(st, SM_ERR_JOB, "%s", what);
    CHECK(has_number(msg, 10) && has_number(msg, 7), "%s: the error of job 10 (value 7) must be reported, since reduce "
          "cannot run for job 10: \"%s\"", what, msg);
    CHECK_RLOG_PREFIX(&c->rlog, 10, what);
    normal_map_after(c, what);
  }
  {
    const char *what = "job 13 returns SM_STOP first, job 10 returns 7 later";
    c->stop_job = 10; c->ret_value = 7; c->slow_job = 10; c->slow_ms = 300; c->long_after = 0;
    c->stop_job2 = 13; c->ret_value2 = SM_STOP;
    sm_status st = run(c, 100);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", last_err());
    printf("%s: %s \"%s\"\n", what, sm_status_str(st), msg);
    CHECK_STATUS(st, SM_ERR_JOB, "%s", what);
    CHECK(has_number(msg, 10) && has_number(msg, 7), "%s: the error of job 10 (value 7) must be reported: \"%s\"",
          what, msg);
    CHECK_RLOG_PREFIX(&c->rlog, 10, what);
    normal_map_after(c, what);
  }
  {
    const char *what = "job 13 returns 42 first, job 10 returns SM_STOP later";
    c->stop_job = 10; c->ret_value = SM_STOP; c->slow_job = 10; c->slow_ms = 300; c->long_after = 0;
    c->stop_job2 = 13; c->ret_value2 = 42;
    CHECK_STATUS(run(c, 100), SM_STOPPED, "%s", what);
    CHECK_RLOG_PREFIX(&c->rlog, 11, what);
    normal_map_after(c, what);
  }

  case_reduce_stop(c, 100, 30, 9, "reduce returns 9 for job 30");
  case_reduce_stop(c, 100, 0, -1, "reduce returns -1 for job 0");
  case_reduce_stop(c, 100, 99, 1, "reduce returns 1 for the last job");

  sm_pool_free(g_pool);
  CHECK_NO_CHILDREN("end");
  printf("test_stop[%s]: OK\n", g_backend_name);
  return 0;
}
