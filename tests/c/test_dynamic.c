/* Dynamic scheduling (process and thread backends): with 2 workers, job 0 sleeps ~1 s and jobs
 * 1..19 are instant.  The worker that ran job 0 must not have run any other job (it was busy the
 * whole time; handing it a block [0, k] would leave the other worker idle at the end).
 * Also: every job exactly once, each worker sees increasing job indices. */
#include "testutil.h"

#define NJ 20

typedef struct {
  atomic_int calls[NJ];
  int wid_of[NJ];
  long last_job[MAXW];
} shared_t;

static int work(void *vctx, size_t job, void *result) {
  shared_t *sh = (shared_t *)vctx;
  (void)result;
  int wid = sm_worker_id();
  JCHECK(wid >= 0 && wid < 2, "worker id %d, expected 0..1", wid);
  JCHECK(atomic_fetch_add(&sh->calls[job], 1) == 0, "job %zu ran twice", job);
  JCHECK(sh->last_job[wid] < (long)job, "worker %d ran job %zu after job %ld (must be increasing)", wid, job,
         sh->last_job[wid]);
  sh->last_job[wid] = (long)job;
  sh->wid_of[job] = wid;
  if (job == 0) msleep(1000);
  return 0;
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  CHECK(b != SM_BACKEND_SERIAL, "this test needs 2 parallel workers (process or thread)");
  watchdog(60);
  jfail_init();
  sm_pool *pool = new_pool(2, b);
  shared_t *sh = (shared_t *)must_empty(1, sizeof(shared_t));
  for (int rep = 0; rep < 2; rep++) {
    memset(sh, 0, sizeof *sh);
    for (int i = 0; i < MAXW; i++) sh->last_job[i] = -1;
    CHECK_STATUS(sm_map(pool, NJ, work, NULL, 0, sh), SM_OK, "map with one long job");
    for (int j = 0; j < NJ; j++) CHECK(atomic_load(&sh->calls[j]) == 1, "job %d ran %d times", j, atomic_load(&sh->calls[j]));
    int w0 = sh->wid_of[0];
    char line[256];
    int n = 0;
    for (int j = 0; j < NJ; j++) n += snprintf(line + n, sizeof line - (size_t)n, "%d", sh->wid_of[j]);
    printf("rep %d: worker of each job: %s\n", rep, line);
    for (int j = 1; j < NJ; j++)
      CHECK(sh->wid_of[j] != w0, "worker %d ran the 1 s job 0 and also job %d (workers per job: %s): jobs "
            "must be handed out dynamically so a long job does not hold back the others",
            w0, j, line);
  }
  sm_pool_free(pool);
  sm_free(sh);
  printf("test_dynamic[%s]: OK\n", g_backend_name);
  return 0;
}
