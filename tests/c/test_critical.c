/* sm_critical_enter/leave: mutual exclusion among all workers of the running map (processes or
 * threads).  A non-atomic counter in sm_empty memory is incremented 10^5 times in total (read, small
 * busy delay / sched_yield, write) and must end at exactly 10^5; an occupancy counter detects any
 * overlap directly. */
#include "testutil.h"

#define NJOBS 1000
#define PER_JOB 100

typedef struct {
  volatile long counter;
  atomic_int inside;
  atomic_int overlaps;
  atomic_int bad_status;
  long per_worker[MAXW];
} shared_t;

typedef struct {
  sm_pool *pool;
  shared_t *sh;
} ctx_t;

static int work(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  shared_t *sh = c->sh;
  (void)result;
  for (int i = 0; i < PER_JOB; i++) {
    sm_status s = sm_critical_enter(c->pool);
    JCHECK(s == SM_OK, "sm_critical_enter returned %s in job %zu: %s", sm_status_str(s), job, last_err());
    if (atomic_fetch_add(&sh->inside, 1) != 0) atomic_fetch_add(&sh->overlaps, 1);
    long v = sh->counter;
    for (volatile int k = 0; k < 40; k++) {
    }
    if ((i & 15) == 0) sched_yield();
    sh->counter = v + 1;
    atomic_fetch_sub(&sh->inside, 1);
    s = sm_critical_leave(c->pool);
    JCHECK(s == SM_OK, "sm_critical_leave returned %s in job %zu: %s", sm_status_str(s), job, last_err());
  }
  int wid = sm_worker_id();
  if (wid >= 0 && wid < MAXW) sh->per_worker[wid] += PER_JOB;
  return 0;
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(90);
  jfail_init();
  const int nws[] = {2, 4};
  for (size_t w = 0; w < 2; w++) {
    sm_pool *pool = new_pool(nws[w], b);
    /* ctx in sm_empty memory: persistent workers see only that memory as it is now */
    ctx_t *cp = (ctx_t *)must_empty(1, sizeof(ctx_t));
    *cp = (ctx_t){pool, (shared_t *)must_empty(1, sizeof(shared_t))};
    ctx_t c = *cp;
    for (int rep = 0; rep < 2; rep++) {
      memset((void *)c.sh, 0, sizeof *c.sh);
      CHECK_STATUS(sm_map(pool, NJOBS, work, NULL, 0, cp), SM_OK, "critical map");
      int busy = 0;
      for (int i = 0; i < MAXW; i++) busy += c.sh->per_worker[i] > 0;
      printf("%d workers: counter %ld, overlaps %d, workers that ran jobs %d\n", nws[w], c.sh->counter,
             atomic_load(&c.sh->overlaps), busy);
      CHECK(atomic_load(&c.sh->overlaps) == 0, "%d times two workers were inside the critical section at once",
            atomic_load(&c.sh->overlaps));
      CHECK(c.sh->counter == (long)NJOBS * PER_JOB, "counter = %ld after %d protected increments (lost updates)",
            c.sh->counter, NJOBS * PER_JOB);
    }
    sm_free(c.sh);
    sm_free(cp);
    sm_pool_free(pool);
  }
  printf("test_critical[%s]: OK\n", g_backend_name);
  return 0;
}
