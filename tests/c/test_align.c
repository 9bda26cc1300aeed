/* SM_RESULT_ALIGN: every result and per-worker result is aligned to it, whatever result_size and
 * wresult_size are, on every backend. Usage: test_align <process|thread|serial>
 *  - sm_map_ex with and without reduce (the reduce window packs results in shared memory; without
 *    reduce each worker has a scratch buffer), for result_size and wresult_size in
 *    {1, 3, 8, 17, 24, 100}: `result` in every job and reduce call, `wresult` in worker_fini and
 *    worker_reduce, and sm_worker_local() in worker_init and every job are multiples of
 *    SM_RESULT_ALIGN apart from 0. Results of 16 bytes or more carry a struct with a long double
 *    and an _Alignas(16) member from the job to reduce; per-worker results count the jobs (through
 *    such a struct when it fits) and worker_reduce checks the total.
 *  - sm_parallel_ex with the same wresult sizes: sm_worker_local() in worker_init and the region,
 *    wresult in worker_fini / worker_reduce, a per-worker count of loop iterations.
 * Before SM_RESULT_ALIGN, reduce-window slots had the result's natural alignment (capped at 16):
 * result_size 1, 3 and 8 gave slots 1, 4 and 8 bytes apart on the process and thread backends. */
#include "testutil.h"

#include <stdalign.h>
#include <stddef.h>

#define NJOBS 300
#define NWORKERS 3
#define LOOP_N 1000

static const size_t SIZES[] = {1, 3, 8, 17, 24, 100};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

/* What a job hands to reduce when it fits: needs 16-byte alignment for both members. */
typedef struct {
  long double value;
  _Alignas(16) uint64_t job;
} payload_t;

typedef struct {
  long double count;
} wcount_t;

typedef struct {
  size_t result_size, wresult_size;
  sm_pool *pool;
  /* the caller's side (reduce and worker_reduce run there) */
  size_t reduced;
  uint64_t counted; /* jobs or iterations counted by the workers, combined */
} ctx_t;

static int aligned(const void *p) { return (uintptr_t)p % SM_RESULT_ALIGN == 0; }

/* Counts one job or iteration into the per-worker result: as a long double when it fits, else in
 * its first byte (the total is then checked modulo 256). */
static void count_one(void *w, size_t wsize) {
  if (wsize >= sizeof(wcount_t))
    ((wcount_t *)w)->count += 1;
  else
    ((unsigned char *)w)[0]++;
}

static uint64_t counted(const void *w, size_t wsize) {
  if (wsize >= sizeof(wcount_t)) return (uint64_t)((const wcount_t *)w)->count;
  return ((const unsigned char *)w)[0];
}

static int job(void *vctx, size_t j, void *result) {
  ctx_t *c = vctx;
  JCHECK(aligned(result), "job %zu: result %p (result_size %zu) is not %d-aligned", j, result,
         c->result_size, SM_RESULT_ALIGN);
  unsigned char *bytes = result;
  for (size_t i = 0; i < c->result_size; i++) JCHECK(bytes[i] == 0, "job %zu: result byte %zu not zeroed", j, i);
  if (c->result_size >= sizeof(payload_t)) {
    payload_t *p = result;
    p->value = (long double)j + 0.25L;
    p->job = j;
    for (size_t i = sizeof(payload_t); i < c->result_size; i++) bytes[i] = (unsigned char)(j + i);
  } else {
    for (size_t i = 0; i < c->result_size; i++) bytes[i] = (unsigned char)(j + i);
  }
  void *w = sm_worker_local();
  JCHECK(w != NULL, "job %zu: sm_worker_local() is NULL: %s", j, sm_last_error());
  JCHECK(aligned(w), "job %zu: sm_worker_local() %p (wresult_size %zu) is not aligned", j, w, c->wresult_size);
  count_one(w, c->wresult_size);
  return 0;
}

static int reduce(void *vctx, size_t j, void *result) {
  ctx_t *c = vctx;
  CHECK(aligned(result), "reduce %zu: result %p (result_size %zu) is not %d-aligned", j, result, c->result_size,
        SM_RESULT_ALIGN);
  const unsigned char *bytes = result;
  size_t from = 0;
  if (c->result_size >= sizeof(payload_t)) {
    const payload_t *p = result;
    CHECK(p->value == (long double)j + 0.25L && p->job == j, "reduce %zu: payload (%Lg, %llu)", j, p->value,
          (unsigned long long)p->job);
    from = sizeof(payload_t);
  }
  for (size_t i = from; i < c->result_size; i++)
    CHECK(bytes[i] == (unsigned char)(j + i), "reduce %zu: result byte %zu is %d", j, i, bytes[i]);
  c->reduced++;
  return 0;
}

static int init(void *vctx, int worker) {
  ctx_t *c = vctx;
  void *w = sm_worker_local();
  JCHECK(w != NULL && aligned(w), "worker_init %d: sm_worker_local() %p (wresult_size %zu): %s", worker, w,
         c->wresult_size, sm_last_error());
  return 0;
}

static int fini(void *vctx, int worker, void *wresult) {
  ctx_t *c = vctx;
  JCHECK(aligned(wresult), "worker_fini %d: wresult %p (wresult_size %zu) is not aligned", worker, wresult,
         c->wresult_size);
  JCHECK(sm_worker_local() == wresult, "worker_fini %d: sm_worker_local() %p is not wresult %p", worker,
         sm_worker_local(), wresult);
  return 0;
}

static int wreduce(void *vctx, int worker, void *wresult) {
  ctx_t *c = vctx;
  CHECK(aligned(wresult), "worker_reduce %d: wresult %p (wresult_size %zu) is not aligned", worker, wresult,
        c->wresult_size);
  c->counted += counted(wresult, c->wresult_size);
  return 0;
}

static int region(void *vctx) {
  ctx_t *c = vctx;
  void *w = sm_worker_local();
  JCHECK(w != NULL && aligned(w), "region, worker %d: sm_worker_local() %p (wresult_size %zu): %s", sm_worker_id(),
         w, c->wresult_size, sm_last_error());
  size_t lo, hi;
  while (sm_for_next(c->pool, 0, LOOP_N, SM_SCHEDULE_DYNAMIC, 7, 0, &lo, &hi))
    for (size_t i = lo; i < hi; i++) count_one(w, c->wresult_size);
  return 0;
}

static sm_map_opts options(size_t wresult_size) {
  sm_map_opts o = default_opts();
  o.worker_init = init;
  o.worker_fini = fini;
  o.worker_reduce = wreduce;
  o.wresult_size = wresult_size;
  return o;
}

static void check_count(const ctx_t *c, uint64_t expected, const char *what) {
  uint64_t want = c->wresult_size >= sizeof(wcount_t) ? expected : expected % 256;
  uint64_t got = c->wresult_size >= sizeof(wcount_t) ? c->counted : c->counted % 256;
  CHECK(got == want, "%s (result_size %zu, wresult_size %zu): workers counted %llu, expected %llu", what,
        c->result_size, c->wresult_size, (unsigned long long)got, (unsigned long long)want);
}

int main(int argc, char **argv) {
  watchdog(60);
  sm_backend b = parse_backend(argc, argv);
  jfail_init();
  CHECK(SM_RESULT_ALIGN >= alignof(max_align_t), "SM_RESULT_ALIGN %d < alignof(max_align_t) %zu", SM_RESULT_ALIGN,
        alignof(max_align_t));
  sm_pool *pool = new_pool(NWORKERS, b);
  for (size_t r = 0; r < NSIZES; r++) {
    for (int with_reduce = 0; with_reduce <= 1; with_reduce++) {
      ctx_t c = {SIZES[r], SIZES[(r + 1) % NSIZES], pool, 0, 0};
      sm_map_opts o = options(c.wresult_size);
      o.ctx_size = sizeof c; /* the workers read the copy; reduce and worker_reduce count in c */
      sm_status s = sm_map_ex(pool, NJOBS, job, with_reduce ? reduce : NULL, c.result_size, &c, &o);
      CHECK_STATUS(s, SM_OK, "sm_map_ex result_size %zu wresult_size %zu reduce %d", c.result_size,
                   c.wresult_size, with_reduce);
      CHECK(c.reduced == (with_reduce ? NJOBS : 0), "reduce ran %zu times", c.reduced);
      check_count(&c, NJOBS, "sm_map_ex");
    }
    ctx_t c = {0, SIZES[r], pool, 0, 0};
    sm_map_opts o = options(c.wresult_size);
    o.ctx_size = sizeof c;
    sm_status s = sm_parallel_ex(pool, region, &c, &o);
    CHECK_STATUS(s, SM_OK, "sm_parallel_ex wresult_size %zu", c.wresult_size);
    check_count(&c, LOOP_N, "sm_parallel_ex");
  }
  sm_pool_free(pool);
  printf("align OK (%s)\n", argv[1]);
  return 0;
}
