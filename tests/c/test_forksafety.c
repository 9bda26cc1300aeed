/* The library's locks are never held across fork: other threads of the caller hammer sm_empty/sm_free,
 * malloc/free, sm_last_error/sm_status_str and pool creation while the main thread runs many
 * process-backend maps whose jobs call into the library and malloc.  Must not hang (watchdog) and
 * every map must succeed.  On the persistent backend the forks happen at sm_pool_new: the main
 * thread makes a new pool every few maps, and the pool-making thread makes persistent pools too. */
#include "testutil.h"

static atomic_int g_stop;
static atomic_long g_iters[4];

static void *hammer_empty(void *arg) {
  (void)arg;
  uint32_t i = 0;
  while (!atomic_load(&g_stop)) {
    size_t n = 1 + hash32(i++) % 20000;
    char *p = (char *)sm_empty(n, 1);
    if (p) {
      p[n - 1] = 1;
      sm_free(p);
    }
    atomic_fetch_add(&g_iters[0], 1);
  }
  return NULL;
}

static void *hammer_malloc(void *arg) {
  (void)arg;
  uint32_t i = 0;
  void *keep[16] = {0};
  while (!atomic_load(&g_stop)) {
    uint32_t h = hash32(i++);
    free(keep[h % 16]);
    keep[h % 16] = malloc(1 + h % 100000);
    (void)sm_status_str((sm_status)(h % 12));
    (void)sm_last_error();
    sm_free((void *)&h); /* refused: exercises the error path and its message */
    atomic_fetch_add(&g_iters[1], 1);
  }
  for (int k = 0; k < 16; k++) free(keep[k]);
  return NULL;
}

static sm_backend g_backend;

static void *hammer_pools(void *arg) {
  (void)arg;
  uint32_t i = 0;
  while (!atomic_load(&g_stop)) {
    sm_backend kind = (i % 3 == 0) ? SM_BACKEND_THREAD : SM_BACKEND_SERIAL;
    if (g_backend == SM_BACKEND_PERSISTENT && i % 4 == 1) kind = SM_BACKEND_PERSISTENT;
    sm_pool *p = sm_pool_new(1 + (int)(i % 2), kind);
    if (p) sm_pool_free(p);
    i++;
    atomic_fetch_add(&g_iters[2], 1);
  }
  return NULL;
}

typedef struct {
  sm_pool *pool;
  atomic_int *count;
} ctx_t;

static int work(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  void *m = malloc(100 + job * 37);
  JCHECK(m != NULL, "malloc in a job");
  memset(m, 1, 100);
  free(m);
  void *e = sm_empty(8, 8); /* refused inside a job; must not block on a lock taken before fork */
  JCHECK(e == NULL, "sm_empty inside a job returned memory");
  sm_free((void *)c);
  (void)sm_last_error();
  JCHECK(sm_critical_enter(c->pool) == SM_OK, "critical_enter: %s", last_err());
  atomic_fetch_add(c->count, 1);
  JCHECK(sm_critical_leave(c->pool) == SM_OK, "critical_leave: %s", last_err());
  JCHECK(sm_ordered_enter(c->pool) == SM_OK, "ordered_enter: %s", last_err());
  JCHECK(sm_ordered_leave(c->pool) == SM_OK, "ordered_leave: %s", last_err());
  *(size_t *)result = job;
  return 0;
}

static int reduce(void *vctx, size_t job, void *result) {
  (void)vctx;
  CHECK(*(size_t *)result == job, "reduce: wrong result");
  return 0;
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  g_backend = b;
  watchdog(60);
  jfail_init();
  sm_pool *pool = new_pool(2, b);
  ctx_t *c = (ctx_t *)must_empty(1, sizeof(ctx_t)); /* persistent workers read it */
  c->pool = pool;
  c->count = (atomic_int *)must_empty(1, sizeof(atomic_int));
  int pools = 1;
  pthread_t th[3];
  CHECK(pthread_create(&th[0], NULL, hammer_empty, NULL) == 0, "pthread_create");
  CHECK(pthread_create(&th[1], NULL, hammer_malloc, NULL) == 0, "pthread_create");
  CHECK(pthread_create(&th[2], NULL, hammer_pools, NULL) == 0, "pthread_create");
  long long t0 = now_ms();
  int maps = 0;
  while (maps < 1500 && now_ms() - t0 < 15000) {
    if (b == SM_BACKEND_PERSISTENT && maps % 8 == 7) { /* fork a new zygote while the others hammer */
      sm_pool_free(pool);
      pool = new_pool(2, b);
      c->pool = pool;
      pools++;
    }
    atomic_store(c->count, 0);
    size_t nj = 4 + (size_t)(maps % 13);
    sm_status st = sm_map(pool, nj, work, reduce, sizeof(size_t), c);
    CHECK_STATUS(st, SM_OK, "map #%d while other threads hammer the library", maps);
    CHECK(atomic_load(c->count) == (int)nj, "map #%d: %d of %zu jobs ran", maps, atomic_load(c->count), nj);
    maps++;
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  printf("%d maps on %d pools; hammer iterations: sm_empty %ld, malloc %ld, pools %ld\n", maps, pools, atomic_load(&g_iters[0]),
         atomic_load(&g_iters[1]), atomic_load(&g_iters[2]));
  CHECK_NO_CHILDREN("end");
  sm_free(c->count);
  sm_free(c);
  sm_pool_free(pool);
  printf("test_forksafety[%s]: OK\n", g_backend_name);
  return 0;
}
