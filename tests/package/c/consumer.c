/* A consumer of an installed sharedmem: a map with a reduce on the process backend, a shared
 * array filled under the critical section, and an argsort. Prints "C OK" when every result is
 * exact. */
#include <sharedmem.h>
#include <stdio.h>
#include <stdlib.h>

#define NJOBS 1000

static long *counter; /* sm_empty memory */
static sm_pool *pool;

static int work(void *ctx, size_t job, void *result) {
  (void)ctx;
  *(long *)result = (long)(job * job);
  if (sm_critical_enter(pool) != SM_OK) return 1;
  long seen = *counter;
  *counter = seen + 1;
  return sm_critical_leave(pool) == SM_OK ? 0 : 1;
}

static int reduce(void *ctx, size_t job, void *result) {
  (void)job;
  *(long *)ctx += *(long *)result;
  return 0;
}

int main(void) {
  pool = sm_pool_new(2, SM_BACKEND_PROCESS);
  counter = sm_empty(1, sizeof *counter);
  if (!pool || !counter) {
    fprintf(stderr, "setup: %s\n", sm_last_error());
    return 1;
  }
  long sum = 0;
  sm_status s = sm_map(pool, NJOBS, work, reduce, sizeof(long), &sum);
  long expect = 0;
  for (long j = 0; j < NJOBS; j++) expect += j * j;
  if (s != SM_OK || sum != expect || *counter != NJOBS) {
    fprintf(stderr, "map: %s (%s), sum %ld/%ld, counter %ld\n", sm_status_str(s),
            sm_last_error(), sum, expect, *counter);
    return 1;
  }
  double keys[5] = {3.0, -1.0, 3.0, 0.5, -1.0};
  int64_t order[5];
  const int64_t want[5] = {1, 4, 3, 0, 2};
  if (sm_argsort(pool, keys, 5, SM_DTYPE_F64, order) != SM_OK) return 1;
  for (int i = 0; i < 5; i++)
    if (order[i] != want[i]) return 1;
  sm_free(counter);
  sm_pool_free(pool);
  printf("C OK\n");
  return 0;
}
