/* Results are held in a bounded window: a map of 10^7 jobs with 64-byte results (640 MB of results
 * in total) must not grow the caller's peak RSS by anything like that: < 100 MB.
 * Usage: test_window <backend> [big]
 *   default: 10^7 jobs x 64 B;  big: 2*10^5 jobs x 4096 B (800 MB of results).
 * reduce checks every result and the order. */
#include "testutil.h"

typedef struct {
  size_t result_size;
  size_t next;
  uint64_t sum;
  size_t stop_at; /* job that returns SM_STOP (0: none) */
} ctx_t;

static inline uint64_t word(size_t job, size_t i) { return ((uint64_t)job << 12) ^ (i * 0x9E3779B97F4A7C15ULL) ^ 1; }

static int work(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  uint64_t *r = (uint64_t *)result;
  size_t n = c->result_size / 8;
  /* zeroed on entry (every word: slots of the window are reused), then every word written */
  for (size_t i = 0; i < n; i++)
    JCHECK(r[i] == 0, "result word %zu of job %zu is 0x%llx on entry, expected zero (slot reused without zeroing?)", i,
           job, (unsigned long long)r[i]);
  r[0] = job;
  for (size_t i = 1; i < n; i++) r[i] = word(job, i);
  return (c->stop_at && job == c->stop_at) ? SM_STOP : 0;
}

static int reduce(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  const uint64_t *r = (const uint64_t *)result;
  size_t n = c->result_size / 8;
  CHECK(job == c->next, "reduce got job %zu, expected %zu", job, c->next);
  CHECK(r[0] == job, "reduce: result of job %zu holds job %llu", job, (unsigned long long)r[0]);
  for (size_t i = 1; i < n; i++)
    CHECK(r[i] == word(job, i), "reduce: word %zu of job %zu's result is not what the job wrote", i, job);
  c->next++;
  c->sum += r[0];
  return 0;
}

static long maxrss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  int big = argc >= 3 && strcmp(argv[2], "big") == 0;
  watchdog(110);
  jfail_init();
  size_t njobs = big ? 200000 : 10000000;
  size_t rs = big ? 4096 : 64;
  sm_pool *pool = new_pool(2, b);
  ctx_t *c = (ctx_t *)shared_dup(&(ctx_t){rs, 0, 0, 0}, sizeof(ctx_t)); /* seen by every backend's workers */
  /* warm up (allocations of the pool and the library) */
  CHECK_STATUS(sm_map(pool, 1000, work, reduce, rs, c), SM_OK, "warm-up map");
  CHECK(c->next == 1000, "warm-up: reduce ran %zu times", c->next);
  long before = maxrss_kb();
  c->next = 0;
  c->sum = 0;
  long long t0 = now_ms();
  CHECK_STATUS(sm_map(pool, njobs, work, reduce, rs, c), SM_OK, "map of %zu jobs x %zu B", njobs, rs);
  long long t1 = now_ms();
  long after = maxrss_kb();
  CHECK(c->next == njobs, "reduce ran %zu times, expected %zu", c->next, njobs);
  uint64_t want = (uint64_t)njobs * (njobs - 1) / 2;
  CHECK(c->sum == want, "sum of reduced job indices %llu, expected %llu", (unsigned long long)c->sum,
        (unsigned long long)want);
  printf("%zu jobs x %zu B results (%.0f MB in total): peak RSS %ld kB -> %ld kB (+%ld kB), %lld ms\n", njobs, rs,
         (double)njobs * (double)rs / 1e6, before, after, after - before, t1 - t0);
  CHECK(after - before < 100 * 1024,
        "peak RSS of the caller grew by %ld kB (%.0f MB) during a map with %.0f MB of results: results must be "
        "held in a bounded window (limit 100 MB)", after - before, (after - before) / 1024.0,
        (double)njobs * (double)rs / 1e6);
  /* nothing proportional to njobs: 2^40 jobs, job 1000 stops the map */
  if (!big) {
    before = maxrss_kb();
    c->next = 0;
    c->sum = 0;
    c->stop_at = 1000;
    CHECK_STATUS(sm_map(pool, (size_t)1 << 40, work, reduce, rs, c), SM_STOPPED, "map of 2^40 jobs, SM_STOP in job 1000");
    CHECK(c->next == 1001, "2^40 jobs, SM_STOP in job 1000: reduce ran %zu times, expected 1001", c->next);
    after = maxrss_kb();
    CHECK(after - before < 100 * 1024, "a map of 2^40 jobs grew peak RSS by %ld kB", after - before);
  }
  sm_pool_free(pool);
  printf("test_window[%s%s]: OK\n", g_backend_name, big ? " big" : "");
  return 0;
}
