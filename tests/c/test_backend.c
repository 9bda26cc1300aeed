/* Where jobs run, per backend.
 * process: each map forks nworkers children (pid differs from the caller, nworkers distinct pids,
 *          exactly nworkers children of the caller while the map runs, fresh pids for every map);
 *          sm_empty writes are shared, writes to ordinary globals stay in the child; no child is
 *          left once sm_map returned.
 * thread:  no fork (same pid), a persistent pool of threads (the same worker thread ids in every
 *          map), nworkers distinct worker ids, global writes are visible.
 * serial:  in the calling thread, in job order, worker id 0.
 * persistent: processes forked once per pool by its zygote (the caller's child): nworkers distinct
 *          pids, not the caller's, children of the zygote, the same in every map; writes to
 *          ordinary globals stay in the workers. */
#include "testutil.h"

#define NW 3
#define NJOBS 48

typedef struct {
  atomic_int seen[MAXW];
  atomic_int nseen;
  atomic_int ncounted;
  pid_t pid_of[MAXW];
  pid_t tid_of[MAXW];
  int children_seen[MAXW];
  atomic_int order_pos;
  int order[NJOBS];
  atomic_int shared_writes[NJOBS];
} shared_t;

typedef struct {
  shared_t *sh;
  sm_backend b;
  int nw;
  pid_t caller_pid;
  pid_t caller_tid;
} ctx_t;

static int g_plain_global;      /* process backend: written in children only */
static atomic_int g_atomic_global; /* thread backend: written from worker threads */

static int work(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  shared_t *sh = c->sh;
  (void)result;
  int wid = sm_worker_id();
  JCHECK(wid >= 0 && wid < c->nw, "worker id %d out of range 0..%d", wid, c->nw - 1);
  int pos = atomic_fetch_add(&sh->order_pos, 1);
  if (pos < NJOBS) sh->order[pos] = (int)job;
  atomic_store(&sh->shared_writes[job], (int)job + 1000);
  if (workers_are_processes(c->b)) {
    JCHECK(getpid() != c->caller_pid, "process backend: job %zu runs in the caller's pid %d", job,
           (int)c->caller_pid);
    g_plain_global = 1000 + (int)job;
  } else {
    JCHECK(getpid() == c->caller_pid, "%s backend: job %zu runs in pid %d, caller is %d (no fork expected)",
           c->b == SM_BACKEND_THREAD ? "thread" : "serial", job, (int)getpid(), (int)c->caller_pid);
    atomic_store(&g_atomic_global, 1000 + (int)job);
  }
  if (c->b == SM_BACKEND_SERIAL) {
    JCHECK(my_tid() == c->caller_tid, "serial backend: job %zu runs in thread %d, caller thread is %d", job,
           (int)my_tid(), (int)c->caller_tid);
    JCHECK(wid == 0, "serial backend: worker id %d, expected 0", wid);
    return 0;
  }
  if (atomic_exchange(&sh->seen[wid], 1) == 0) {
    /* first job of this worker in this map: rendezvous of all workers */
    sh->pid_of[wid] = getpid();
    sh->tid_of[wid] = my_tid();
    atomic_fetch_add(&sh->nseen, 1);
    JCHECK(wait_atomic_ge(&sh->nseen, c->nw, 20000),
           "only %d of %d workers ever started a job while all jobs of the first worker block; "
           "the pool does not use nworkers workers", atomic_load(&sh->nseen), c->nw);
    if (c->b == SM_BACKEND_PROCESS) {
      int z = 0;
      sh->children_seen[wid] = count_children_of(c->caller_pid, &z);
    } else if (c->b == SM_BACKEND_PERSISTENT) {
      /* the workers are the children of the pool's zygote */
      JCHECK(getppid() != c->caller_pid, "persistent backend: job %zu runs in a child of the caller", job);
      sh->children_seen[wid] = count_children_of(getppid(), NULL);
    } else {
      sh->children_seen[wid] = count_children_of(c->caller_pid, NULL);
    }
    atomic_fetch_add(&sh->ncounted, 1);
    JCHECK(wait_atomic_ge(&sh->ncounted, c->nw, 20000), "second rendezvous timed out");
  } else {
    JCHECK(sh->pid_of[wid] == getpid(), "worker id %d seen in pid %d and pid %d in the same map", wid,
           (int)sh->pid_of[wid], (int)getpid());
    JCHECK(sh->tid_of[wid] == my_tid(), "worker id %d seen in thread %d and thread %d in the same map", wid,
           (int)sh->tid_of[wid], (int)my_tid());
  }
  return 0;
}

static void reset(shared_t *sh) { memset(sh, 0, sizeof *sh); }

static int cmp_pid(const void *a, const void *b) {
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(60);
  jfail_init();
  sm_pool *pool = new_pool(NW, b);
  ctx_t *c = (ctx_t *)shared_dup(&(ctx_t){(shared_t *)must_empty(1, sizeof(shared_t)), b,
                                          (b == SM_BACKEND_SERIAL) ? 1 : NW, getpid(), my_tid()},
                                 sizeof(ctx_t));
  pid_t ids[2][MAXW];

  for (int m = 0; m < 2; m++) {
    reset(c->sh);
    g_plain_global = 0;
    atomic_store(&g_atomic_global, 0);
    CHECK_STATUS(sm_map(pool, NJOBS, work, NULL, 0, c), SM_OK, "map %d", m);
    for (int j = 0; j < NJOBS; j++)
      CHECK(atomic_load(&c->sh->shared_writes[j]) == j + 1000,
            "sm_empty write of job %d not visible to the caller after sm_map (got %d)", j,
            atomic_load(&c->sh->shared_writes[j]));
    CHECK_NO_CHILDREN("after sm_map");
    if (workers_are_processes(b)) {
      CHECK(g_plain_global == 0, "process backend: a job's write to an ordinary global (%d) reached the caller",
            g_plain_global);
    } else {
      CHECK(atomic_load(&g_atomic_global) >= 1000, "%s backend: a job's write to a global is not visible",
            g_backend_name);
    }
    if (b == SM_BACKEND_SERIAL) {
      for (int j = 0; j < NJOBS; j++)
        CHECK(c->sh->order[j] == j, "serial backend: execution #%d was job %d, expected job %d", j,
              c->sh->order[j], j);
      continue;
    }
    CHECK(atomic_load(&c->sh->nseen) == NW, "%d distinct workers ran jobs, expected %d",
          atomic_load(&c->sh->nseen), NW);
    for (int w = 0; w < NW; w++) {
      ids[m][w] = workers_are_processes(b) ? c->sh->pid_of[w] : c->sh->tid_of[w];
      if (workers_are_processes(b)) {
        CHECK(c->sh->pid_of[w] != getpid(), "worker %d ran in the caller's pid", w);
        CHECK(c->sh->children_seen[w] == NW,
              "while all %d workers were inside jobs, %s had %d child processes (expected exactly %d)", NW,
              b == SM_BACKEND_PROCESS ? "the caller" : "the pool's zygote", c->sh->children_seen[w], NW);
      } else {
        CHECK(c->sh->pid_of[w] == getpid(), "thread worker %d ran in pid %d", w, (int)c->sh->pid_of[w]);
        CHECK(c->sh->children_seen[w] == 0, "thread backend: the caller had %d child processes during the map",
              c->sh->children_seen[w]);
      }
    }
    qsort(ids[m], NW, sizeof(pid_t), cmp_pid);
    for (int w = 1; w < NW; w++)
      CHECK(ids[m][w] != ids[m][w - 1], "two worker ids ran in the same %s %d",
            workers_are_processes(b) ? "process" : "thread", (int)ids[m][w]);
  }
  if (b == SM_BACKEND_PROCESS) {
    for (int i = 0; i < NW; i++)
      for (int k = 0; k < NW; k++)
        CHECK(ids[0][i] != ids[1][k], "process backend: pid %d ran jobs in two different maps; each map "
              "must fork its own workers", (int)ids[0][i]);
  } else if (b == SM_BACKEND_THREAD || b == SM_BACKEND_PERSISTENT) {
    for (int i = 0; i < NW; i++)
      CHECK(ids[0][i] == ids[1][i], "%s backend: workers differ between maps (%d vs %d); expected the same "
            "workers in every map", g_backend_name, (int)ids[0][i], (int)ids[1][i]);
  }
  sm_pool_free(pool);
  sm_free(c->sh);
  sm_free(c);
  CHECK_NO_CHILDREN("after sm_pool_free");
  printf("test_backend[%s]: OK\n", g_backend_name);
  return 0;
}
