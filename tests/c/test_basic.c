/* Basic sm_map contract, every backend:
 * - work(ctx, job, result) exactly once per job in [0, njobs), with the caller's ctx;
 * - result points to result_size zeroed bytes (sizes 0, 1, 3, 8, 100, 4096, 65536);
 * - each worker sees increasing job indices; sm_worker_id() is 0..n-1 inside, -1 outside;
 * - reduce runs in the calling process and thread, once per job, in increasing order, and sees
 *   exactly the bytes the job wrote; reduce may be NULL; njobs == 0 calls nothing;
 * - jobs see the caller's memory as it was when sm_map was called (fork per map);
 * - several pools can coexist and be reused. */
#include "testutil.h"

#define NJ 600

typedef struct {
  atomic_int calls[NJ];
  long last_job[MAXW]; /* per worker id: last job index it ran in this map */
  atomic_int max_wid;
} shared_t;

typedef struct {
  void *self;
  shared_t *sh;
  size_t njobs;
  size_t result_size;
  int nwid; /* worker ids must be in [0, nwid) */
  reduce_log_t rlog;
} ctx_t;

static int g_snapshot; /* set by the caller before each map; jobs report what they see */

static inline uint8_t pat(size_t job, size_t i) {
  return (uint8_t)((hash32((uint32_t)job) + i * 13u) | 1u); /* never zero */
}

static int work_fill(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  JCHECK(c != NULL && c->self == c, "work got ctx %p, not the pointer passed to sm_map", vctx);
  JCHECK(job < c->njobs, "job index %zu out of range [0, %zu)", job, c->njobs);
  int prev = atomic_fetch_add(&c->sh->calls[job], 1);
  JCHECK(prev == 0, "work called %d times for job %zu", prev + 1, job);
  int wid = sm_worker_id();
  JCHECK(wid >= 0 && wid < c->nwid, "sm_worker_id() = %d in job %zu, expected 0..%d", wid, job,
         c->nwid - 1);
  JCHECK(c->sh->last_job[wid] < (long)job,
         "worker %d ran job %zu after job %ld: jobs must be handed out in increasing order", wid,
         job, c->sh->last_job[wid]);
  c->sh->last_job[wid] = (long)job;
  if (c->result_size) {
    JCHECK(result != NULL, "result is NULL for result_size %zu (job %zu)", c->result_size, job);
    uint8_t *r = (uint8_t *)result;
    /* a result usable for the C type it holds: aligned like malloc would for its size */
    size_t align = c->result_size % 16 == 0 ? 16 : c->result_size % 8 == 0 ? 8 : c->result_size % 4 == 0 ? 4 : 1;
    JCHECK((uintptr_t)result % align == 0, "result %p of job %zu (result_size %zu) is not %zu-byte aligned", result, job,
           c->result_size, align);
    for (size_t i = 0; i < c->result_size; i++)
      JCHECK(r[i] == 0, "result byte %zu of job %zu is 0x%02x on entry, expected zero (result_size %zu)",
             i, job, r[i], c->result_size);
    for (size_t i = 0; i < c->result_size; i++) r[i] = pat(job, i);
  }
  if (job % 53 == 0) usleep_full(300); /* let other workers interleave */
  return 0;
}

static int reduce_check(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  CHECK(c->self == c, "reduce got ctx %p, not the pointer passed to sm_map", vctx);
  CHECK(getpid() == c->rlog.pid, "reduce ran in pid %d, caller is %d", (int)getpid(), (int)c->rlog.pid);
  CHECK(pthread_equal(pthread_self(), c->rlog.thread), "reduce ran in another thread than the caller");
  CHECK(job == c->rlog.n, "reduce call #%zu is for job %zu: expected increasing order, once per job",
        c->rlog.n, job);
  CHECK(atomic_load(&c->sh->calls[job]) == 1, "reduce for job %zu before/without its work call", job);
  if (c->result_size) {
    CHECK(result != NULL, "reduce got NULL result for job %zu (result_size %zu)", job, c->result_size);
    const uint8_t *r = (const uint8_t *)result;
    for (size_t i = 0; i < c->result_size; i++)
      CHECK(r[i] == pat(job, i), "reduce: result byte %zu of job %zu is 0x%02x, the job wrote 0x%02x",
            i, job, r[i], pat(job, i));
  }
  rlog_add(&c->rlog, job);
  return 0;
}

static void reset_shared(shared_t *sh) {
  for (int i = 0; i < NJ; i++) atomic_store(&sh->calls[i], 0);
  for (int i = 0; i < MAXW; i++) sh->last_job[i] = -1;
}

static void run_map(sm_pool *pool, ctx_t *c, size_t njobs, size_t result_size, int with_reduce) {
  reset_shared(c->sh);
  rlog_reset(&c->rlog);
  c->njobs = njobs;
  c->result_size = result_size;
  CHECK(sm_worker_id() == -1, "sm_worker_id() = %d before sm_map, expected -1", sm_worker_id());
  sm_status st = sm_map(pool, njobs, work_fill, with_reduce ? reduce_check : NULL, result_size, c);
  CHECK_STATUS(st, SM_OK, "sm_map(njobs=%zu, result_size=%zu, reduce=%s)", njobs, result_size,
               with_reduce ? "yes" : "NULL");
  CHECK(sm_worker_id() == -1, "sm_worker_id() = %d after sm_map, expected -1", sm_worker_id());
  for (size_t j = 0; j < njobs; j++)
    CHECK(atomic_load(&c->sh->calls[j]) == 1, "job %zu: work called %d times, expected exactly once "
          "(njobs=%zu, result_size=%zu)", j, atomic_load(&c->sh->calls[j]), njobs, result_size);
  for (size_t j = njobs; j < NJ; j++)
    CHECK(atomic_load(&c->sh->calls[j]) == 0, "job %zu >= njobs was run", j);
  if (with_reduce) CHECK_RLOG_PREFIX(&c->rlog, njobs, "reduce");
  else CHECK(c->rlog.n == 0, "reduce NULL but reduce_check ran");
}

/* ---- snapshot: jobs see the caller's memory as of the sm_map call */
static int work_snapshot(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)job;
  *(int *)result = g_snapshot;
  return 0;
}
static int reduce_snapshot(void *ctx, size_t job, void *result) {
  int want = *(int *)ctx;
  CHECK(*(int *)result == want, "job %zu saw g_snapshot = %d, but the caller had set %d before sm_map",
        job, *(int *)result, want);
  return 0;
}

static int work_never(void *ctx, size_t job, void *result) {
  (void)result;
  atomic_fetch_add((atomic_int *)ctx, 1);
  (void)job;
  return 0;
}
static int reduce_never(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  CHECK(0, "reduce called for job %zu of an empty map", job);
  return 0;
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(60);
  CHECK(sm_worker_id() == -1, "sm_worker_id() = %d before any pool exists, expected -1", sm_worker_id());
  jfail_init();
  const int NW = 3;
  sm_pool *pool = new_pool(NW, b);
  /* A serial pool has one worker, whatever was asked. */
  const int expected_nw = b == SM_BACKEND_SERIAL ? 1 : NW;
  CHECK(sm_pool_nworkers(pool) == expected_nw, "[%s] sm_pool_nworkers = %d, expected %d", g_backend_name,
        sm_pool_nworkers(pool), expected_nw);
  CHECK(sm_worker_id() == -1, "sm_worker_id() = %d after sm_pool_new, expected -1", sm_worker_id());

  /* ctx in sm_empty memory (zeroed): persistent workers see only that memory as it is now */
  ctx_t *c = (ctx_t *)must_empty(1, sizeof *c);
  c->self = c;
  c->sh = (shared_t *)must_empty(1, sizeof(shared_t));
  c->nwid = (b == SM_BACKEND_SERIAL) ? 1 : NW;
  rlog_init(&c->rlog, NJ);

  /* empty map */
  atomic_int *cnt = (atomic_int *)must_empty(1, sizeof(atomic_int));
  CHECK_STATUS(sm_map(pool, 0, work_never, reduce_never, 8, cnt), SM_OK, "sm_map with njobs=0");
  CHECK(atomic_load(cnt) == 0, "njobs=0 but work ran %d times", atomic_load(cnt));
  CHECK_STATUS(sm_map(pool, 0, work_never, NULL, 0, cnt), SM_OK, "sm_map with njobs=0, no reduce");

  /* every result size, with and without reduce */
  const size_t sizes[] = {0, 1, 3, 8, 100, 4096, 65536};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t nj = sizes[s] >= 65536 ? 64 : NJ;
    run_map(pool, c, nj, sizes[s], 1);
    run_map(pool, c, nj, sizes[s], 0);
  }
  /* small njobs (fewer jobs than workers), one job */
  run_map(pool, c, 1, 16, 1);
  run_map(pool, c, 2, 16, 1);
  run_map(pool, c, (size_t)NW + 1, 3, 1);

  /* snapshot semantics: the caller's globals as of each sm_map call; persistent workers see them
   * as of sm_pool_new (0 here) */
  int *want = (int *)must_empty(1, sizeof(int));
  for (int v = 1; v <= 3; v++) {
    g_snapshot = v * 1111;
    *want = b == SM_BACKEND_PERSISTENT ? 0 : g_snapshot;
    CHECK_STATUS(sm_map(pool, 50, work_snapshot, reduce_snapshot, sizeof(int), want), SM_OK, "snapshot map");
  }
  sm_free(want);

  /* shared memory allocated after the pool was created and after maps ran is shared too */
  atomic_int *late = (atomic_int *)must_empty(NJ, sizeof(atomic_int));
  CHECK_STATUS(sm_map(pool, NJ, work_never, NULL, 0, late), SM_OK, "map on late sm_empty memory");
  CHECK(atomic_load(late) == NJ, "late sm_empty counter = %d, expected %d", atomic_load(late), NJ);
  sm_free(late);

  /* a second pool, interleaved with the first */
  sm_pool *pool2 = new_pool(2, b);
  ctx_t *c2 = (ctx_t *)shared_dup(c, sizeof *c);
  c2->self = c2;
  c2->nwid = (b == SM_BACKEND_SERIAL) ? 1 : 2;
  rlog_init(&c2->rlog, NJ);
  for (int r = 0; r < 3; r++) {
    run_map(pool2, c2, 200, 24, 1);
    run_map(pool, c, 200, 24, 1);
  }
  sm_pool_free(pool2);
  run_map(pool, c, 100, 5, 1);

  CHECK(sm_worker_id() == -1, "sm_worker_id() = %d after all maps, expected -1", sm_worker_id());
  CHECK_NO_CHILDREN("after all maps");
  sm_pool_free(pool);
  sm_free(cnt);
  sm_free(c->sh);
  printf("test_basic[%s]: OK\n", g_backend_name);
  return 0;
}
