/* No claim can wrap: work-shared loops (sm_for_next, dynamic and guided) and map job claims
 * (sm_map_ex with a fixed chunk) with chunks near or far above the trip count, in teams of 4 and
 * 64 workers. Every iteration / job is handed out exactly once, whatever the chunk.
 *
 * A dynamic claim used to be one fetch_add of the chunk on the loop counter: in a 4-worker team,
 * sm_for_next(pool, 0, 1<<62, SM_SCHEDULE_DYNAMIC, 1<<62, ...) made 5 claims (one that got the
 * whole loop, then one empty claim per worker) and the fifth wrapped past 2^64 to 0 and handed the
 * whole loop out again: 2^63 iterations, status SM_OK. */
#include "testutil.h"

/* Per-iteration counts for loops small enough to mark; totals for the huge ones. */
#define SMALL_TRIP 1000

typedef struct {
  atomic_ullong handed;    /* sum of (hi - lo) over every chunk handed out */
  atomic_ullong chunks;    /* chunks handed out */
  atomic_int bad_range;    /* a chunk outside [start, end) or empty */
  atomic_int count[SMALL_TRIP];
} tally_t;

static tally_t *g_tally;
static sm_pool *g_pool;

typedef struct {
  size_t start, end, chunk;
  sm_schedule schedule;
  sm_pool *pool; /* not g_pool: persistent workers see globals as they were at sm_pool_new */
} loop_args;

static int loop_region(void *ctx) {
  const loop_args *a = ctx;
  size_t lo, hi;
  while (sm_for_next(a->pool, a->start, a->end, a->schedule, a->chunk, 0, &lo, &hi)) {
    if (lo < a->start || hi > a->end || lo >= hi) {
      atomic_fetch_add(&g_tally->bad_range, 1);
      continue;
    }
    atomic_fetch_add(&g_tally->handed, (unsigned long long)(hi - lo));
    atomic_fetch_add(&g_tally->chunks, 1);
    if (a->end - a->start <= SMALL_TRIP)
      for (size_t i = lo; i < hi; i++) atomic_fetch_add(&g_tally->count[i - a->start], 1);
  }
  return 0;
}

static void reset_tally(void) { memset(g_tally, 0, sizeof *g_tally); }

static void check_loop(int nworkers, size_t start, size_t end, sm_schedule schedule, size_t chunk) {
  loop_args *a = (loop_args *)shared_dup(&(loop_args){start, end, chunk, schedule, g_pool}, sizeof(loop_args));
  reset_tally();
  sm_status s = sm_parallel(g_pool, loop_region, a);
  sm_free(a);
  const char *what = schedule == SM_SCHEDULE_DYNAMIC ? "dynamic" : "guided";
  CHECK(s == SM_OK, "[%s, %d workers] %s loop [%zu, %zu) chunk %zu: %s (%s)", g_backend_name,
        nworkers, what, start, end, chunk, sm_status_str(s), last_err());
  CHECK(atomic_load(&g_tally->bad_range) == 0, "[%s, %d workers] %s loop [%zu, %zu) chunk %zu: "
        "%d chunk(s) outside the loop or empty", g_backend_name, nworkers, what, start, end, chunk,
        atomic_load(&g_tally->bad_range));
  unsigned long long handed = atomic_load(&g_tally->handed);
  CHECK(handed == (unsigned long long)(end - start),
        "[%s, %d workers] %s loop [%zu, %zu) chunk %zu: %llu iterations handed out in %llu "
        "chunks, expected %zu", g_backend_name, nworkers, what, start, end, chunk, handed,
        atomic_load(&g_tally->chunks), end - start);
  if (end - start <= SMALL_TRIP)
    for (size_t i = 0; i < end - start; i++)
      CHECK(atomic_load(&g_tally->count[i]) == 1, "[%s, %d workers] %s loop [%zu, %zu) chunk %zu: "
            "iteration %zu ran %d times", g_backend_name, nworkers, what, start, end, chunk,
            start + i, atomic_load(&g_tally->count[i]));
}

static int count_job(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  atomic_fetch_add(&g_tally->count[job], 1);
  return 0;
}

static void check_map(int nworkers, size_t njobs, size_t chunk) {
  reset_tally();
  sm_map_opts o = default_opts();
  o.chunk = chunk;
  sm_status s = sm_map_ex(g_pool, njobs, count_job, NULL, 0, NULL, &o);
  CHECK(s == SM_OK, "[%s, %d workers] map of %zu jobs, chunk %zu: %s (%s)", g_backend_name,
        nworkers, njobs, chunk, sm_status_str(s), last_err());
  for (size_t j = 0; j < njobs; j++)
    CHECK(atomic_load(&g_tally->count[j]) == 1, "[%s, %d workers] map of %zu jobs, chunk %zu: "
          "job %zu ran %d times", g_backend_name, nworkers, njobs, chunk, j,
          atomic_load(&g_tally->count[j]));
}

int main(int argc, char **argv) {
  sm_backend backend = parse_backend(argc, argv);
  watchdog(120);
  g_tally = must_empty(1, sizeof *g_tally);
  const size_t big = (size_t)1 << 62; /* the largest trip count sm_for_next accepts */
  const size_t huge[] = {big - 1, big, big + 1, (size_t)1 << 63, SIZE_MAX - 1, SIZE_MAX};
  const int teams[] = {4, 64};
  for (size_t t = 0; t < sizeof teams / sizeof *teams; t++) {
    int nworkers = teams[t];
    g_pool = new_pool(nworkers, backend);
    for (int guided = 0; guided < 2; guided++) {
      sm_schedule sched = guided ? SM_SCHEDULE_GUIDED : SM_SCHEDULE_DYNAMIC;
      /* The case, and chunks around and far above the trip count. */
      for (size_t c = 0; c < sizeof huge / sizeof *huge; c++) {
        check_loop(nworkers, 0, big, sched, huge[c]);
        check_loop(nworkers, 5, big, sched, huge[c]);
        check_loop(nworkers, 0, SMALL_TRIP, sched, huge[c]);
      }
      /* Chunks near a small trip count, and many claims on one counter. */
      const size_t near[] = {1, 3, SMALL_TRIP / 4 - 1, SMALL_TRIP - 1, SMALL_TRIP, SMALL_TRIP + 1};
      for (size_t c = 0; c < sizeof near / sizeof *near; c++) {
        check_loop(nworkers, 0, SMALL_TRIP, sched, near[c]);
        check_loop(nworkers, big - SMALL_TRIP, big, sched, near[c]);
      }
      /* Loops of a whole trip (2^62) in chunks of 2^61 and 2^60: every claim near the top. */
      check_loop(nworkers, 0, big, sched, big / 2);
      check_loop(nworkers, 0, big, sched, big / 4 + 1);
    }
    /* Map job claims with a fixed chunk near or far above njobs. */
    const size_t chunks[] = {SMALL_TRIP - 1, SMALL_TRIP, SMALL_TRIP + 1, big - 1, big, big + 1,
                             (size_t)1 << 63, SIZE_MAX};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++)
      for (int rep = 0; rep < 3; rep++) check_map(nworkers, SMALL_TRIP, chunks[c]);
    sm_pool_free(g_pool);
  }
  sm_free(g_tally);
  printf("claims OK (%s)\n", g_backend_name);
  return 0;
}
