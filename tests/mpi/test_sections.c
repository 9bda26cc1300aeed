/* Sections in sm_mpi_map's jobs:
 *
 * - ordered follows global job order across the ranks: jobs of pseudo-random duration, a third
 *   of them skipping the section; each section notes CLOCK_MONOTONIC on entering and leaving
 *   (in sm_empty memory of its rank), root gathers the notes of every rank and checks that for any
 *   two jobs a < b that entered, a left before b entered. CLOCK_MONOTONIC is one clock for every
 *   process of a machine: the check relies on all ranks running on one host, as here.
 * - critical is mutual exclusion among the workers of a rank: a non-atomic counter in the rank's
 *   sm_empty memory, incremented under critical by every job, equals the jobs the rank ran.
 *
 * On process, thread, serial and persistent pools. Not on a NULL pool: sm_ordered_enter and
 * sm_critical_enter take the pool, and a rank with a NULL pool has none to pass (sm_mpi_map's
 * contract does not say what a job of such a rank passes).
 *
 * Usage: test_sections (under mpiexec, any number of ranks) */
#include "mpitest.h"

#define NJOBS 600

/* In sm_empty memory: persistent workers see no later write to the caller's other memory. */
typedef struct {
  sm_pool *pool;
  uint64_t *enter, *leave;   /* sm_empty, per job: when its ordered section began and ended */
  _Atomic long *ran;         /* sm_empty: jobs this rank ran */
  long *counter;             /* sm_empty: incremented under critical, not atomically */
} sections_ctx;

static int skips(size_t job) { return job % 3 == 1; }

static int work(void *ctx_, size_t job, void *result) {
  (void)result;
  sections_ctx *c = ctx_;
  long us = (long)(mix64(job) % 200);
  if (us) usleep_full(us);
  atomic_fetch_add(c->ran, 1);

  sm_status st = sm_critical_enter(c->pool);
  JCHECK(st == SM_OK, "sm_critical_enter: %s", last_err());
  long v = *(volatile long *)c->counter;
  if (job % 7 == 0) usleep_full(20); /* widen the window a lost update would need */
  *(volatile long *)c->counter = v + 1;
  st = sm_critical_leave(c->pool);
  JCHECK(st == SM_OK, "sm_critical_leave: %s", last_err());

  if (skips(job)) return 0;
  st = sm_ordered_enter(c->pool);
  JCHECK(st == SM_OK, "sm_ordered_enter (job %zu): %s", job, last_err());
  c->enter[job] = mt_now_ns();
  if (job % 5 == 0) usleep_full(30);
  c->leave[job] = mt_now_ns();
  st = sm_ordered_leave(c->pool);
  JCHECK(st == SM_OK, "sm_ordered_leave (job %zu): %s", job, last_err());
  return 0;
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, 100);
  for (size_t b = 0; b < MT_NBACKENDS; b++) {
    if (MT_BACKENDS[b].null_pool) continue;
    sm_pool *pool = mt_pool(&MT_BACKENDS[b]);
    sections_ctx *c = must_empty(1, sizeof *c);
    c->pool = pool;
    c->enter = must_empty(NJOBS, sizeof(uint64_t));
    c->leave = must_empty(NJOBS, sizeof(uint64_t));
    c->ran = must_empty(1, sizeof(long));
    c->counter = must_empty(1, sizeof(long));
    JRESET();
    sm_status st = sm_mpi_map(pool, MPI_COMM_WORLD, 0, NJOBS, work, NULL, 0, c);
    mt_check_status_all(MPI_COMM_WORLD, st, SM_OK, "ordered and critical sections");

    /* critical: no lost update among this rank's workers */
    CHECK(*c->counter == atomic_load(c->ran),
          "[%s] the counter incremented under critical is %ld, and this rank ran %ld jobs", g_backend_name,
          *c->counter, atomic_load(c->ran));
    long long all = mt_sum_all(MPI_COMM_WORLD, atomic_load(c->ran));
    CHECK(all == NJOBS, "[%s] %lld jobs ran in all, expected %d", g_backend_name, all, NJOBS);

    /* ordered: gather every rank's notes on root (a job's notes are on the rank that ran it) */
    uint64_t *enter = NULL, *leave = NULL;
    if (g_rank == 0) {
      enter = calloc(NJOBS, sizeof(uint64_t));
      leave = calloc(NJOBS, sizeof(uint64_t));
      CHECK(enter && leave, "calloc");
    }
    MPI_Reduce(c->enter, enter, NJOBS, MPI_UINT64_T, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(c->leave, leave, NJOBS, MPI_UINT64_T, MPI_MAX, 0, MPI_COMM_WORLD);
    if (g_rank == 0) {
      size_t prev = SIZE_MAX;
      for (size_t j = 0; j < NJOBS; j++) {
        if (skips(j)) {
          CHECK(enter[j] == 0, "[%s] job %zu skipped its ordered section but has a note", g_backend_name, j);
          continue;
        }
        CHECK(enter[j] != 0 && leave[j] >= enter[j], "[%s] job %zu has no ordered section noted",
              g_backend_name, j);
        if (prev != SIZE_MAX)
          CHECK(leave[prev] <= enter[j],
                "[%s] job %zu entered its ordered section %.1f us before job %zu left its own: "
                "not in global job order",
                g_backend_name, j, (double)(leave[prev] - enter[j]) / 1e3, prev);
        prev = j;
      }
      free(enter);
      free(leave);
    }
    sm_free(c->enter);
    sm_free(c->leave);
    sm_free((void *)c->ran);
    sm_free(c->counter);
    sm_free(c);
    sm_pool_free(pool);
    if (g_rank == 0) printf("backend %s: OK\n", MT_BACKENDS[b].name);
  }
  return mt_finish("test_sections");
}
