/* sm_map_opts.ctx_size: the workers get a copy of ctx taken when the call starts, on every backend.
 *  - jobs, worker_init, worker_fini and regions see the bytes as they were at the call, 64-byte
 *    aligned, even though reduce changes the caller's ctx meanwhile; what they write into the copy
 *    does not reach the caller's ctx;
 *  - reduce, worker_reduce and progress get the caller's own ctx;
 *  - a caller built against the struct before ctx_size (opts->size without it) gets ctx itself;
 *  - ctx_size with a NULL ctx, or above SM_MAX_RESULT_SIZE, is SM_ERR_INVALID naming ctx_size. */
#include "testutil.h"

#include <stddef.h>

typedef struct {
  int base;          /* 5 at the call; reduce sets 6 */
  int scribble;      /* jobs write here: the copy's, never the caller's */
  void *caller;      /* the caller's address of this struct */
  atomic_int *flags; /* sm_empty: [0] reduce saw the caller's ctx, [1] worker_reduce, [2] progress */
} ctx_t;

static int check_copy(ctx_t *c, const char *who) {
  JCHECK((uintptr_t)c % 64 == 0, "%s: the copy of ctx is not 64-byte aligned (%p)", who, (void *)c);
  JCHECK((void *)c != c->caller, "%s got the caller's ctx, not the copy", who);
  JCHECK(c->base == 5, "%s saw base %d: not the bytes as they were at the call", who, c->base);
  return 0;
}

static int work(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  if (check_copy(c, "a job")) return JOB_CHECK_FAILED;
  c->scribble = (int)job + 1;
  if (job < 4) msleep(5); /* give reduce time to change the caller's ctx before later jobs start */
  *(int *)result = (int)job;
  return 0;
}

static int reduce(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  (void)result;
  if (vctx == c->caller) atomic_fetch_add(&c->flags[0], 1);
  if (job == 0) c->base = 6;
  return 0;
}

static int init(void *vctx, int worker) {
  (void)worker;
  return check_copy((ctx_t *)vctx, "worker_init");
}

static int fini(void *vctx, int worker, void *wresult) {
  (void)worker;
  (void)wresult;
  return check_copy((ctx_t *)vctx, "worker_fini");
}

static int wreduce(void *vctx, int worker, void *wresult) {
  (void)worker;
  (void)wresult;
  ctx_t *c = (ctx_t *)vctx;
  if (vctx == c->caller) atomic_fetch_add(&c->flags[1], 1);
  return 0;
}

static void progress(void *vctx, size_t done, size_t total) {
  (void)done;
  (void)total;
  ctx_t *c = (ctx_t *)vctx;
  if (vctx == c->caller) atomic_fetch_add(&c->flags[2], 1);
}

static int region(void *vctx) { return check_copy((ctx_t *)vctx, "a region"); }

static int work_sees_caller(void *vctx, size_t job, void *result) {
  (void)job;
  (void)result;
  ctx_t *c = (ctx_t *)vctx;
  JCHECK(vctx == c->caller, "without ctx_size in opts->size, a job got %p instead of ctx %p", vctx, c->caller);
  return 0;
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(60);
  jfail_init();
  sm_pool *pool = new_pool(2, b);
  atomic_int *flags = (atomic_int *)must_empty(3, sizeof(atomic_int));

  /* A map with every hook: the copy in the workers, the caller's ctx on the caller. */
  ctx_t c = {5, 0, NULL, flags};
  c.caller = &c;
  sm_map_opts o = default_opts();
  o.ctx_size = sizeof c;
  o.worker_init = init;
  o.worker_fini = fini;
  o.worker_reduce = wreduce;
  o.progress = progress;
  o.wresult_size = 8;
  const size_t njobs = 40;
  sm_status st = sm_map_ex(pool, njobs, work, reduce, sizeof(int), &c, &o);
  CHECK_STATUS(st, SM_OK, "sm_map_ex with ctx_size");
  CHECK(c.base == 6, "reduce did not change the caller's ctx (base %d)", c.base);
  CHECK(c.scribble == 0, "a job's write into its copy reached the caller's ctx (scribble %d)", c.scribble);
  CHECK(atomic_load(&flags[0]) == (int)njobs, "reduce got the caller's ctx %d times of %zu", atomic_load(&flags[0]),
        njobs);
  CHECK(atomic_load(&flags[1]) == sm_pool_nworkers(pool), "worker_reduce got the caller's ctx %d times of %d",
        atomic_load(&flags[1]), sm_pool_nworkers(pool));
  CHECK(atomic_load(&flags[2]) >= 1, "progress never got the caller's ctx");

  /* A region. */
  c.base = 5;
  sm_map_opts ro = default_opts();
  ro.ctx_size = sizeof c;
  st = sm_parallel_ex(pool, region, &c, &ro);
  CHECK_STATUS(st, SM_OK, "sm_parallel_ex with ctx_size");

  /* A caller that knows no ctx_size: the field is beyond its opts->size, so it counts as 0. */
  sm_map_opts old = default_opts();
  old.size = offsetof(sm_map_opts, ctx_size);
  old.ctx_size = 12345; /* beyond size: not read */
  st = sm_map_ex(pool, 8, work_sees_caller, NULL, 0, &c, &old);
  if (b == SM_BACKEND_PERSISTENT) {
    /* without a copy, a ctx on the stack would be read as it was at sm_pool_new: refused */
    CHECK(st == SM_ERR_INVALID && strstr(last_err(), "sm_empty") && strstr(last_err(), "ctx_size"),
          "persistent, stack ctx without ctx_size: %s, \"%s\"", sm_status_str(st), last_err());
    printf("persistent, stack ctx without ctx_size: \"%s\"\n", last_err());
    ctx_t *shared = (ctx_t *)shared_dup(&c, sizeof c);
    shared->caller = shared;
    st = sm_map_ex(pool, 8, work_sees_caller, NULL, 0, shared, &old);
    sm_free(shared);
  }
  CHECK_STATUS(st, SM_OK, "sm_map_ex with the older opts->size");

  /* Refusals. */
  st = sm_map_ex(pool, 8, work, NULL, sizeof(int), NULL, &o);
  CHECK(st == SM_ERR_INVALID && strstr(last_err(), "ctx_size"), "ctx_size with ctx NULL: %s, \"%s\"",
        sm_status_str(st), last_err());
  o.ctx_size = (size_t)1 << 40;
  st = sm_map_ex(pool, 8, work, NULL, sizeof(int), &c, &o);
  CHECK(st == SM_ERR_INVALID && strstr(last_err(), "ctx_size"), "ctx_size of 1 TiB: %s, \"%s\"",
        sm_status_str(st), last_err());
  printf("ctx_size of 1 TiB: \"%s\"\n", last_err());

  sm_pool_free(pool);
  sm_free(flags);
  printf("test_ctx[%s]: OK\n", g_backend_name);
  return 0;
}
