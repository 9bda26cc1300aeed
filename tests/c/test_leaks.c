/* 100,000 small maps in one process on the thread and serial backends, 10,000 on the process backend
 * (each forks its workers: ~1.5 ms a map on the 2-CPU test machine, so 10,000 already take ~15 s),
 * including stopped / failed ones, and for the process backend some with a dead worker, leave no
 * trace: open descriptors, mappings (/proc/self/maps lines), threads and child processes are exactly
 * the same before and after.  Also 10,000 sm_empty/sm_free cycles and 300 pool create/free cycles
 * (there a few mappings of allocator noise are tolerated). */
#include "testutil.h"

#include <malloc.h>

typedef struct {
  int mode; /* 0 ok, 1 SM_STOP in job 1, 2 error in job 1, 3 SIGSEGV in job 1 */
  atomic_int *counter;
} ctx_t;

static int work(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  atomic_fetch_add(c->counter, 1);
  *(uint32_t *)result = (uint32_t)job;
  if (job == 1) {
    if (c->mode == 1) return SM_STOP;
    if (c->mode == 2) return 9;
    if (c->mode == 3) raise(SIGSEGV);
  }
  return 0;
}

typedef struct {
  int fds, maps, tasks, children, pool_workers;
} snap_t;

static snap_t snap(void) {
  snap_t s = {count_fds(), count_map_lines(), count_tasks(), count_children(NULL), count_pool_workers()};
  return s;
}

#define MAPS_SLACK 4 /* allocator noise; a leak per map would show as thousands */

static void compare_exact(snap_t a, snap_t b2, const char *what) {
  printf("%s: fds %d -> %d, maps %d -> %d, threads %d -> %d, children %d -> %d, pool workers %d -> %d\n", what,
         a.fds, b2.fds, a.maps, b2.maps, a.tasks, b2.tasks, a.children, b2.children, a.pool_workers, b2.pool_workers);
  CHECK(b2.fds == a.fds, "%s: open descriptors changed from %d to %d", what, a.fds, b2.fds);
  CHECK(b2.maps == a.maps, "%s: mappings changed from %d to %d", what, a.maps, b2.maps);
  CHECK(b2.tasks == a.tasks, "%s: threads changed from %d to %d", what, a.tasks, b2.tasks);
  CHECK(b2.children == 0 && a.children == 0, "%s: %d child processes remain", what, b2.children);
  CHECK(b2.pool_workers == a.pool_workers, "%s: persistent workers changed from %d to %d", what, a.pool_workers,
        b2.pool_workers);
}

static void compare(snap_t a, snap_t b2, const char *what) {
  printf("%s: fds %d -> %d, maps %d -> %d, threads %d -> %d, children %d -> %d, pool workers %d -> %d\n", what,
         a.fds, b2.fds, a.maps, b2.maps, a.tasks, b2.tasks, a.children, b2.children, a.pool_workers, b2.pool_workers);
  CHECK(b2.fds == a.fds, "%s: open descriptors grew from %d to %d", what, a.fds, b2.fds);
  CHECK(b2.maps <= a.maps + MAPS_SLACK, "%s: mappings grew from %d to %d", what, a.maps, b2.maps);
  CHECK(b2.children == 0 && a.children == 0, "%s: %d child processes remain", what, b2.children);
  CHECK(b2.pool_workers == a.pool_workers, "%s: persistent workers changed from %d to %d", what, a.pool_workers,
        b2.pool_workers);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  /* One malloc arena: glibc otherwise creates a new arena (two more lines in /proc/self/maps) whenever
   * a thread finds its arena busy, at random moments -- allocator noise, not a leak, which would make
   * the exact comparison of mappings flaky on the thread backend. */
  CHECK(mallopt(M_ARENA_MAX, 1) == 1, "mallopt(M_ARENA_MAX, 1)");
  watchdog(110);
  jfail_init();
  atomic_int *counter = (atomic_int *)must_empty(1, sizeof(atomic_int));
  ctx_t *c = (ctx_t *)shared_dup(&(ctx_t){0, counter}, sizeof(ctx_t)); /* seen by every backend's workers */
  const int NMAPS = b == SM_BACKEND_PROCESS ? 10000 : 100000;
  const size_t njobs = b == SM_BACKEND_PROCESS ? 3 : 10;

  sm_pool *pool = new_pool(2, b);
  /* warm-up: every path once */
  for (int m = 0; m < 4; m++) {
    if (m == 3 && b != SM_BACKEND_PROCESS) break; /* a crashing job kills thread/serial callers */
    c->mode = m;
    sm_map(pool, njobs, work, NULL, sizeof(uint32_t), c);
  }
  c->mode = 0;
  for (int i = 0; i < 20; i++) sm_map(pool, njobs, work, NULL, sizeof(uint32_t), c);
  snap_t s0 = snap();
  long long t0 = now_ms();
  for (int i = 0; i < NMAPS; i++) {
    c->mode = (i % 10 == 3) ? 1 : (i % 10 == 7) ? 2 : 0;
    if (workers_are_processes(b) && i % 50 == 25) c->mode = 3;
    sm_status want = c->mode == 0 ? SM_OK : c->mode == 1 ? SM_STOPPED : c->mode == 2 ? SM_ERR_JOB : SM_ERR_WORKER_DIED;
    sm_status st = sm_map(pool, njobs, work, NULL, sizeof(uint32_t), c);
    if (st != want) {
      CHECK_STATUS(st, want, "map #%d (mode %d)", i, c->mode);
    }
  }
  long long t1 = now_ms();
  JCHECK_ALL_PASSED();
  snap_t s1 = snap();
  printf("%d maps in %lld ms\n", NMAPS, t1 - t0);
  char what[64];
  snprintf(what, sizeof what, "%d maps", NMAPS);
  compare_exact(s0, s1, what);

  /* sm_empty / sm_free cycles */
  s0 = snap();
  for (int i = 0; i < 10000; i++) {
    size_t n = 1 + (size_t)(hash32((uint32_t)i) % 70000);
    char *p = (char *)must_empty(n, 1);
    p[0] = 1;
    p[n - 1] = 2;
    sm_free(p);
  }
  s1 = snap();
  compare(s0, s1, "10000 sm_empty/sm_free");

  /* pool create/free cycles (thread pools start and must stop their threads) */
  sm_pool_free(pool);
  for (int i = 0; i < 6; i++) { /* warm-up: thread stacks and malloc arenas are cached, not leaked */
    sm_pool *p = new_pool(3, b);
    CHECK_STATUS(sm_map(p, 5, work, NULL, 4, c), SM_OK, "warm-up map on a new pool");
    sm_pool_free(p);
  }
  msleep(50);
  int tasks_base = count_tasks();
  s0 = snap();
  for (int i = 0; i < 300; i++) {
    sm_pool *p = new_pool(1 + i % 3, b);
    if (i % 10 == 0) {
      c->mode = 0;
      CHECK_STATUS(sm_map(p, 5, work, NULL, 4, c), SM_OK, "map on pool #%d", i);
    }
    sm_pool_free(p);
  }
  long long tw = now_ms();
  while (count_tasks() != tasks_base && now_ms() - tw < 5000) msleep(10);
  s1 = snap();
  compare(s0, s1, "300 pools created and freed");
  CHECK(s1.tasks == tasks_base, "threads: %d before, %d after creating and freeing 300 pools", tasks_base, s1.tasks);
  sm_free(counter);
  sm_free(c);
  printf("test_leaks[%s]: OK\n", g_backend_name);
  return 0;
}
