/* A multi-threaded caller.
 * - two threads run maps on two different pools at the same time: every map succeeds with the right
 *   results (the process backend must not reap or signal the other map's workers);
 * - two threads share one pool: each map either succeeds correctly or is refused with SM_ERR_STATE
 *   and a message -- never corrupted results, a crash or a hang;
 * - from inside reduce (the caller, during the map): sm_map on the same pool returns (refused or run
 *   correctly, no deadlock); sm_critical_enter is SM_ERR_STATE (not inside a job);
 * - a thread runs maps and regions while 3 other threads malloc/free (and realloc) in a loop: every map
 *   and region succeeds with exact results, no hang (process backend: forks while malloc's locks are busy
 *   in other threads). */
#include "testutil.h"

#define NJ 60

typedef struct {
  sm_pool *pool;
  int maps;
  int ok, refused;
  size_t reduced;
  char bad[256];
} thr_t;

static int work(void *v, size_t job, void *r) {
  (void)v;
  if (job % 13 == 0) usleep_full(100);
  *(size_t *)r = job * 5 + 3;
  return 0;
}

static int reduce_count(void *v, size_t job, void *r) {
  thr_t *t = (thr_t *)v;
  if (job != t->reduced || *(size_t *)r != job * 5 + 3)
    snprintf(t->bad, sizeof t->bad, "reduce #%zu: job %zu result %zu", t->reduced, job, *(size_t *)r);
  t->reduced++;
  return 0;
}

static void *thread_maps(void *arg) {
  thr_t *t = (thr_t *)arg;
  for (int i = 0; i < t->maps && !t->bad[0]; i++) {
    t->reduced = 0;
    sm_status st = sm_map(t->pool, NJ, work, reduce_count, sizeof(size_t), t);
    if (st == SM_OK) {
      t->ok++;
      if (t->reduced != NJ) snprintf(t->bad, sizeof t->bad, "map %d: SM_OK but reduce ran %zu times", i, t->reduced);
    } else if (st == SM_ERR_STATE && last_err()[0]) {
      t->refused++;
      if (t->reduced != 0) snprintf(t->bad, sizeof t->bad, "map %d refused but reduce ran %zu times", i, t->reduced);
    } else {
      snprintf(t->bad, sizeof t->bad, "map %d returned %s (%s)", i, sm_status_str(st), last_err());
    }
  }
  return NULL;
}

typedef struct {
  sm_pool *pool;
  sm_status inner, crit, region;
  size_t inner_reduced;
  char inner_msg[256], crit_msg[256], region_msg[256];
} reent_t;

static int region_noop(void *ctx) {
  (void)ctx;
  return 0;
}

static int reduce_inner_count(void *v, size_t job, void *r) {
  (void)job;
  (void)r;
  ((reent_t *)v)->inner_reduced++;
  return 0;
}

static int reduce_reenter(void *v, size_t job, void *r) {
  reent_t *t = (reent_t *)v;
  (void)r;
  if (job == 5) {
    t->inner = sm_map(t->pool, 10, work, reduce_inner_count, sizeof(size_t), t);
    snprintf(t->inner_msg, sizeof t->inner_msg, "%s", last_err());
    t->region = sm_parallel(t->pool, region_noop, NULL);
    snprintf(t->region_msg, sizeof t->region_msg, "%s", last_err());
    t->crit = sm_critical_enter(t->pool);
    snprintf(t->crit_msg, sizeof t->crit_msg, "%s", last_err());
    if (t->crit == SM_OK) sm_critical_leave(t->pool);
  }
  return 0;
}

/* ---- a mapping thread among threads that allocate */
static atomic_int g_stop_alloc;
static atomic_long g_allocs;

static void *allocator(void *arg) {
  uint32_t i = (uint32_t)(uintptr_t)arg * 7919u;
  void *keep[32] = {0};
  while (!atomic_load(&g_stop_alloc)) {
    uint32_t h = hash32(i++);
    void **slot = &keep[h % 32];
    if (h & 1) {
      free(*slot);
      *slot = malloc(1 + h % 100000);
    } else {
      void *n = realloc(*slot, 1 + (h >> 8) % 300000);
      if (n) *slot = n;
    }
    if (*slot) memset(*slot, (int)(h & 0xff), 1);
    atomic_fetch_add(&g_allocs, 1);
  }
  for (int k = 0; k < 32; k++) free(keep[k]);
  return NULL;
}

typedef struct {
  sm_pool *pool;
  atomic_long *sum;
} region_ctx_t;

static int region_sum(void *v) {
  region_ctx_t *c = (region_ctx_t *)v;
  size_t lo, hi;
  long local = 0;
  while (sm_for_next(c->pool, 0, 10000, SM_SCHEDULE_DYNAMIC, 64, 0, &lo, &hi))
    for (size_t i = lo; i < hi; i++) local += (long)i;
  atomic_fetch_add(c->sum, local);
  return 0;
}

static void *mapping_thread(void *arg) {
  thr_t *t = (thr_t *)arg;
  region_ctx_t *rc = (region_ctx_t *)sm_empty(1, sizeof(region_ctx_t)); /* seen by every backend's workers */
  if (!rc) {
    snprintf(t->bad, sizeof t->bad, "sm_empty: %s", last_err());
    return NULL;
  }
  rc->pool = t->pool;
  rc->sum = (atomic_long *)sm_empty(1, sizeof(atomic_long));
  if (!rc->sum) {
    snprintf(t->bad, sizeof t->bad, "sm_empty: %s", last_err());
    return NULL;
  }
  for (int i = 0; i < t->maps && !t->bad[0]; i++) {
    t->reduced = 0;
    sm_status st = sm_map(t->pool, NJ, work, reduce_count, sizeof(size_t), t);
    if (st != SM_OK || t->reduced != NJ) {
      snprintf(t->bad, sizeof t->bad, "map %d: %s (%s), %zu reduced", i, sm_status_str(st), last_err(), t->reduced);
      break;
    }
    t->ok++;
    if (i % 5 == 0) {
      atomic_store(rc->sum, 0);
      st = sm_parallel(t->pool, region_sum, rc);
      if (st != SM_OK || atomic_load(rc->sum) != 9999L * 10000 / 2)
        snprintf(t->bad, sizeof t->bad, "region %d: %s (%s), sum %ld", i, sm_status_str(st), last_err(),
                 (long)atomic_load(rc->sum));
    }
  }
  sm_free(rc->sum);
  sm_free(rc);
  return NULL;
}

static void maps_among_allocators(sm_backend b, int maps) {
  pthread_t al[3], mt;
  for (int i = 0; i < 3; i++)
    CHECK(pthread_create(&al[i], NULL, allocator, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create");
  thr_t *t = (thr_t *)must_empty(1, sizeof(thr_t)); /* ctx of its maps: every backend's workers see it */
  t->pool = new_pool(2, b);
  t->maps = maps;
  CHECK(pthread_create(&mt, NULL, mapping_thread, t) == 0, "pthread_create");
  pthread_join(mt, NULL);
  atomic_store(&g_stop_alloc, 1);
  for (int i = 0; i < 3; i++) pthread_join(al[i], NULL);
  printf("a thread ran %d maps (and %d regions) while 3 threads made %ld malloc/free/realloc calls\n", t->ok,
         (t->ok + 4) / 5, atomic_load(&g_allocs));
  CHECK(!t->bad[0], "mapping thread among allocating threads: %s", t->bad);
  CHECK(t->ok == maps, "%d of %d maps succeeded", t->ok, maps);
  CHECK(atomic_load(&g_allocs) > 0, "the allocating threads did not run");
  sm_pool_free(t->pool);
  CHECK_NO_CHILDREN("after maps among allocating threads");
  sm_free(t);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(90);
  jfail_init();
  int maps = workers_are_processes(b) ? 150 : 500;

  /* different pools, concurrently */
  thr_t *t = (thr_t *)must_empty(2, sizeof(thr_t)); /* ctx of their maps: every backend's workers see it */
  pthread_t th[2];
  for (int i = 0; i < 2; i++) {
    t[i].pool = new_pool(2, b);
    t[i].maps = maps;
    CHECK(pthread_create(&th[i], NULL, thread_maps, &t[i]) == 0, "pthread_create");
  }
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 2; i++) {
    CHECK(!t[i].bad[0], "thread %d (own pool): %s", i, t[i].bad);
    CHECK(t[i].ok == maps, "thread %d (own pool): %d of %d maps succeeded, %d refused", i, t[i].ok, maps, t[i].refused);
  }
  CHECK_NO_CHILDREN("after concurrent maps on different pools");

  /* one pool, two threads */
  sm_pool *shared = new_pool(2, b);
  thr_t *u = (thr_t *)must_empty(2, sizeof(thr_t));
  for (int i = 0; i < 2; i++) {
    u[i].pool = shared;
    u[i].maps = maps;
    CHECK(pthread_create(&th[i], NULL, thread_maps, &u[i]) == 0, "pthread_create");
  }
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 2; i++) CHECK(!u[i].bad[0], "thread %d (shared pool): %s", i, u[i].bad);
  printf("shared pool: thread 0 %d ok / %d refused, thread 1 %d ok / %d refused\n", u[0].ok, u[0].refused, u[1].ok,
         u[1].refused);
  CHECK(u[0].ok + u[1].ok >= 1, "shared pool: no map succeeded");
  CHECK_NO_CHILDREN("after concurrent maps on one pool");

  /* re-entry from reduce */
  reent_t *r = (reent_t *)must_empty(1, sizeof(reent_t));
  r->pool = shared;
  r->inner = (sm_status)-1;
  CHECK_STATUS(sm_map(shared, 20, work, reduce_reenter, sizeof(size_t), r), SM_OK, "map whose reduce calls sm_map");
  printf("sm_map from reduce: %s \"%s\"\nsm_critical_enter from reduce: %s \"%s\"\n", sm_status_str(r->inner),
         r->inner_msg, sm_status_str(r->crit), r->crit_msg);
  CHECK(r->inner == SM_ERR_STATE || (r->inner == SM_OK && r->inner_reduced == 10),
        "sm_map on the running pool from reduce returned %s with %zu inner reductions", sm_status_str(r->inner),
        r->inner_reduced);
  if (r->inner == SM_ERR_STATE)
    CHECK(strncmp(r->inner_msg, "sm_map: ", 8) == 0, "refused sm_map from reduce: \"%s\"", r->inner_msg);
  /* a region on the busy pool is refused in its own name */
  CHECK(r->region == SM_ERR_STATE && strncmp(r->region_msg, "sm_parallel: ", 13) == 0,
        "sm_parallel on the busy pool from reduce: %s \"%s\"", sm_status_str(r->region), r->region_msg);
  CHECK(r->crit == SM_ERR_STATE, "sm_critical_enter from reduce (not a job) returned %s, expected SM_ERR_STATE",
        sm_status_str(r->crit));
  CHECK(r->crit_msg[0], "sm_critical_enter from reduce: no message");

  for (int i = 0; i < 2; i++) sm_pool_free(t[i].pool);
  sm_pool_free(shared);

  maps_among_allocators(b, maps);
  printf("test_concurrent[%s]: OK\n", g_backend_name);
  return 0;
}
