/* Compile-only check (ctest runs the compiler on it, as strict C99 and as C++11, -Werror):
 * the header is self-contained, every macro it defines is usable without warnings, and it does not
 * define unprefixed names that clash with user code. */
#include <sharedmem.h>

#if defined(MAX_WORKERS) || defined(NO_JOB) || defined(MAX_JOBS) || defined(STOP_CODE)
#error "sharedmem.h defines unprefixed macros (MAX_WORKERS / NO_JOB / MAX_JOBS / STOP_CODE): they clash with user code; use an SM_ prefix"
#endif

#ifndef SM_STOP
#error "sharedmem.h does not define SM_STOP"
#endif

static const long long stop_value = SM_STOP;
#ifdef SM_MAX_JOBS
static const unsigned long long max_jobs = SM_MAX_JOBS;
#endif
#ifdef SM_MAX_WORKERS
static const long long max_workers = SM_MAX_WORKERS;
#endif

static int w(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)job;
  (void)result;
  return 0;
}

int header_hygiene_use(void);
int header_hygiene_use(void) {
  sm_pool *p = sm_pool_new(0, SM_BACKEND_SERIAL);
  sm_status s = sm_map(p, 1, w, (sm_reduce_fn)0, 0, (void *)0);
  int n = (int)s + (int)stop_value + sm_pool_nworkers(p) + sm_worker_id();
#ifdef SM_MAX_JOBS
  n += (int)(max_jobs & 1u);
#endif
#ifdef SM_MAX_WORKERS
  n += (int)max_workers;
#endif
  sm_pool_free(p);
  return n;
}
