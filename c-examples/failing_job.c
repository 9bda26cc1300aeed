/*
 * failing_job.c -- what happens when a job fails, stops early, or crashes.
 *
 * Three small maps:
 *
 *   1. Job 13 returns 42.  Any nonzero return value other than SM_STOP is a
 *      job error: sm_map() returns SM_ERR_JOB, and sm_last_error() says which
 *      job failed and with what value.  The pool stays usable: a clean map
 *      on the same pool then returns SM_OK.
 *
 *   2. Job 5 returns SM_STOP.  That is not an error, it asks the map to stop
 *      early: sm_map() returns SM_STOPPED.
 *
 *   3. (process and persistent backends only) Job 7 dereferences a NULL
 *      pointer.  The worker process dies of SIGSEGV, but the caller is a
 *      different process and survives: sm_map() returns SM_ERR_WORKER_DIED.
 *      The pool stays usable: a persistent pool replaces the dead worker
 *      before its next map.  With the thread and serial backends the job runs
 *      in the caller's own process, which such a crash would kill, so this
 *      part is skipped there.
 *
 * Usage: failing_job [process|persistent|thread|serial]     (default: process)
 * Exit status 0 when every map returned the expected status.
 */
#include <stdio.h>
#include <string.h>

#include "sharedmem.h"
#include "backend_arg.h"

#define NJOBS 32
#define NWORKERS 4

static int failures = 0;

/* Report one map's outcome and compare it to the expected status. */
static void check(const char *what, sm_status got, sm_status want) {
  printf("%-34s -> %s", what, sm_status_str(got));
  if (got != SM_OK) printf(" (sm_last_error: \"%s\")", sm_last_error());
  if (got != want) {
    printf("   FAIL: expected %s", sm_status_str(want));
    failures++;
  }
  printf("\n");
}

/* 1. Job 13 fails with error code 42; the others succeed. */
static int fails_at_13(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  return job == 13 ? 42 : 0;
}

static int always_ok(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)job;
  (void)result;
  return 0;
}

/* 2. Job 5 asks the map to stop early. */
static int stops_at_5(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  return job == 5 ? SM_STOP : 0;
}

/* 3. Job 7 crashes.  Both the pointer and the int it points to are volatile:
 * the compiler can neither prove the pointer NULL nor drop the store as
 * unused, so this really is an invalid memory access (SIGSEGV) at run time. */
static int crashes_at_7(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  if (job == 7) {
    volatile int *volatile p = NULL;
    *p = 1; /* SIGSEGV: kills this worker process */
  }
  return 0;
}

int main(int argc, char **argv) {
  sm_backend backend;
  if (parse_backend(argc, argv, &backend) != 0) return 2;

  sm_pool *pool = sm_pool_new(NWORKERS, backend);
  if (!pool) {
    fprintf(stderr, "sm_pool_new failed: %s\n", sm_last_error());
    return 1;
  }

  /* 1. A job error, then the same pool again. */
  sm_status st = sm_map(pool, NJOBS, fails_at_13, NULL, 0, NULL);
  check("job 13 returns 42", st, SM_ERR_JOB);
  if (st == SM_ERR_JOB) {
    /* The message names the job and the value it returned. */
    const char *msg = sm_last_error();
    if (!strstr(msg, "13") || !strstr(msg, "42")) {
      printf("   FAIL: sm_last_error() should mention job 13 and value 42\n");
      failures++;
    }
  }
  check("same pool, all jobs succeed", sm_map(pool, NJOBS, always_ok, NULL, 0, NULL), SM_OK);

  /* 2. Stopping early is not an error. */
  check("job 5 returns SM_STOP", sm_map(pool, NJOBS, stops_at_5, NULL, 0, NULL), SM_STOPPED);
  sm_pool_free(pool);

  /* 3. A crashing job, in a second pool. */
  if (backend == SM_BACKEND_PROCESS || backend == SM_BACKEND_PERSISTENT) {
    sm_pool *pool2 = sm_pool_new(NWORKERS, backend);
    if (!pool2) {
      fprintf(stderr, "sm_pool_new failed: %s\n", sm_last_error());
      return 1;
    }
    st = sm_map(pool2, NJOBS, crashes_at_7, NULL, 0, NULL);
    check("job 7 dereferences NULL", st, SM_ERR_WORKER_DIED);
    check("same pool after the crash", sm_map(pool2, NJOBS, always_ok, NULL, 0, NULL), SM_OK);
    sm_pool_free(pool2);
    printf("the caller survived the crashed worker\n");
  } else {
    printf("(skipping the crash demo: only process workers isolate a crashing job)\n");
  }

  if (failures) {
    printf("FAIL: %d unexpected result(s)\n", failures);
    return 1;
  }
  printf("OK\n");
  return 0;
}
