/* The fault matrix (issue 6): a process worker dies of every cause at every interesting moment.
 * Usage: test_fault_matrix <process|thread|serial> [table] [moment...]   (moments: the keys below)
 *
 * Causes, called in the worker's own code: raise(SIGKILL); a real SIGSEGV (a store through a NULL
 * volatile pointer); abort(); exit(0); exit(7); _exit(7).
 *
 * Moments (pools of NW = 3 process workers; J = 8 unless said otherwise):
 *  - init1 / init_all: in worker_init of sm_map_ex (before the first job), in worker 1 / in every worker
 *    (with reduce, and without: init_all_nr);
 *  - fini1: in worker_fini of worker 1 (after its last job);
 *  - mid: job 20 of 40 (adaptive chunks), the other workers busy with 2 ms jobs;
 *  - crit_hold: job J dies holding the critical lock while job J-1 and job J+1 sleep in
 *    sm_critical_enter (J-1 is before the lost job: it must get the lock and finish); jobs 0..J-2 use
 *    critical too, and are through it before the lock is taken for good (so that they hold no worker);
 *  - crit_wait: job J dies while it sleeps in sm_critical_enter (job J-1 holds the lock);
 *  - ord_wait: job J dies while it sleeps in sm_ordered_enter (job J-1, earlier, has not had its turn);
 *  - bar_other: region: worker 1 dies while workers 0 and 2 sleep in sm_barrier;
 *  - bar_self: region: worker 1 dies while it sleeps in sm_barrier itself;
 *  - reduce: the caller is inside reduce(3) (which waits for the death) when job 6 kills its worker.
 * A job blocked in a wait cannot call anything, so for crit_wait, ord_wait and bar_self the victim
 * installs a SIGUSR2 handler that performs the cause, publishes its pid, and blocks; a sibling (job J-1,
 * or region worker 0) waits until the victim's /proc state is 'S' (asleep in the wait), then sends
 * SIGUSR2 and waits for the victim to be a zombie before it goes on. The death thus happens in the
 * victim's own code, on the stack of the blocked call.
 *
 * Every map has a reduce (except init_all_nr). For every (cause, moment), in a subprocess of its own (so
 * that a hang is bounded and reported, not fatal to the matrix; a case still running after STEP_ON_MS
 * goes on in the background while the next ones run, so hangs do not add up): the faulting call returns SM_ERR_WORKER_DIED within CASE_LIMIT_MS; the message
 * names the job (or worker, for hooks and regions), the dead worker's pid and the cause (signal name or
 * exit status); reduce ran exactly for the jobs before the first lost job, each job before it ran
 * exactly once (after a death in worker_fini, worker_reduce does not run); no child of the caller is left (the /proc scan, waitpid(-1, WNOHANG) == ECHILD, every
 * worker pid gone); and the next sm_map on the same pool (critical + ordered + reduce in every job) and
 * the next region (critical + barrier) succeed with exact results: a worker that died holding (or
 * waiting for) the critical lock or an ordered turn wedges nothing.
 *
 * `table` prints the markdown table of docs/FAULTS.md. thread / serial: a crashing job takes the whole
 * process down by design (test_crash pins that in subprocesses): nothing to do here. */
#include "testutil.h"

#define NW 3             /* workers per pool */
#define CASE_LIMIT_MS 5000 /* every faulting call must return within this */
#define CHILD_LIMIT_MS 15000 /* a whole case (faulting call + checks + next maps) */
#define STEP_ON_MS 1000  /* start the next case when one takes longer (a hang is then bounded in parallel) */
#define WAIT_MS 3000     /* bound of the test's own waits inside jobs */
#define NJ_MAX 64
#define NEXT_JOBS 60

enum { C_KILL, C_SEGV, C_ABORT, C_EXIT0, C_EXIT7, C_UEXIT7, NCAUSES };
enum { M_INIT1, M_INIT_ALL, M_INIT_ALL_NR, M_FINI1, M_MID, M_CRIT_HOLD, M_CRIT_WAIT, M_ORD_WAIT,
       M_BAR_OTHER, M_BAR_SELF, M_REDUCE, NMOMENTS };

static const char *const cause_names[NCAUSES] = {"raise(SIGKILL)", "SIGSEGV (NULL store)", "abort()",
                                                 "exit(0)", "exit(7)", "_exit(7)"};
static const char *const moment_keys[NMOMENTS] = {"init1", "init_all", "init_all_nr", "fini1", "mid",
                                                  "crit_hold", "crit_wait", "ord_wait", "bar_other",
                                                  "bar_self", "reduce"};
static const char *const moment_names[NMOMENTS] = {
    "worker_init of worker 1 (before its first job)",
    "worker_init of every worker",
    "worker_init of every worker, map without reduce",
    "worker_fini of worker 1 (after its last job)",
    "mid-job: job 20 of 40, others busy",
    "holding critical: job 8, jobs 7 and 9 waiting for the lock",
    "waiting for critical: job 8 (job 7 holds it)",
    "waiting in ordered: job 8 (job 7 not through yet)",
    "region: worker 1, while workers 0 and 2 wait in sm_barrier",
    "region: worker 1, while it waits in sm_barrier",
    "caller inside reduce(3) when job 6 dies",
};

#define DIE_J 8       /* the dying job of crit_hold / crit_wait / ord_wait */
#define MID_NJ 40
#define MID_J 20
#define HOOK_NJ 30
#define SECT_NJ 14
#define RED_NJ 20
#define RED_R 3
#define RED_K 6

/* ---------------------------------------------------------------- shared with the workers */

static sm_backend g_b; /* the backend under test: process or persistent */

typedef struct {
  atomic_int calls[NJ_MAX];
  pids_t pids;           /* every worker pid seen */
  atomic_int dead_pid;   /* the worker that dies (set by itself right before, or as the victim) */
  atomic_int early_done; /* crit_hold / crit_wait: jobs before DIE_J - 1 that are through critical */
  atomic_int holder_in;  /* crit_hold / crit_wait: the lock holder is inside */
  atomic_int ntrying;    /* crit_hold: jobs about to call sm_critical_enter */
  atomic_int trying_pids[4];
  atomic_int nat_barrier; /* bar_other: workers about to call sm_barrier */
  atomic_int barrier_pids[MAXW];
  atomic_int in_reduce;  /* reduce: the caller is inside reduce(RED_R) */
  atomic_int dying;      /* reduce: job RED_K is about to die */
  atomic_int zombie_seen_in_reduce;
  atomic_int wreduce_calls;
  /* the next map and region */
  long counter;
  atomic_int logpos;
  int log[NEXT_JOBS];
  long rcounter;
} sh_t;

typedef struct {
  sm_pool *pool;
  sh_t *sh;
  int cause, moment;
  reduce_log_t rlog;
  int result_bad;
} ctx_t;

/* What a case reports to the matrix (MAP_SHARED memory made by the parent before forking). */
typedef struct {
  atomic_int started;      /* the faulting call started at t_start */
  long long t_start;
  atomic_int have_status;  /* the faulting call returned */
  int status;
  long long ms;
  char msg[600];
  atomic_int finished_ok;  /* every check passed */
  char fail[1200];         /* the first failed check */
  /* filled in by the parent */
  int exit_status;
  int hung;
} case_res_t;

static case_res_t *g_res; /* this case's report (in the case subprocess) */

/* A failed check inside a case subprocess: recorded for the matrix, then the case ends. The report
 * is cut to fit `fail` on purpose; gcc's -Wformat-truncation counts __FILE__, an absolute path, so
 * a checkout in a deep directory turned that into a build error. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#define FCHECK(cond, ...)                                                                  \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      int n_ = snprintf(g_res->fail, sizeof g_res->fail, "%s:%d: CHECK(%s) failed: ",      \
                        __FILE__, __LINE__, #cond);                                        \
      if (n_ > 0 && (size_t)n_ < sizeof g_res->fail)                                       \
        snprintf(g_res->fail + n_, sizeof g_res->fail - (size_t)n_, __VA_ARGS__);          \
      fflush(stdout);                                                                      \
      _exit(1);                                                                            \
    }                                                                                      \
  } while (0)

/* ---------------------------------------------------------------- the causes */

static void die(int cause) {
  switch (cause) {
    case C_KILL: raise(SIGKILL); break;
    case C_SEGV: {
      volatile int *volatile p = NULL;
      *p = 1;
      break;
    }
    case C_ABORT: abort();
    case C_EXIT0: exit(0);
    case C_EXIT7: exit(7);
    case C_UEXIT7: _exit(7);
  }
  _exit(99); /* not reached: the cause did not end the process */
}

/* In the victim of a sibling-triggered death: SIGUSR2 makes it perform the cause, on the stack of
 * whatever wait it is blocked in. */
static int g_victim_cause;
static void on_usr2(int sig) {
  (void)sig;
  die(g_victim_cause);
}

static int arm_victim(sh_t *sh, int cause) {
  g_victim_cause = cause;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR2, &sa, NULL) != 0) return -1;
  atomic_store(&sh->dead_pid, (int)getpid());
  return 0;
}

/* Waits (bounded) until process `pid` sleeps ('S'): blocked in the wait it was about to enter. */
static char g_last_state;
static int wait_asleep(pid_t pid) {
  long long t0 = now_ms();
  while ((g_last_state = proc_state(pid, NULL)) != 'S') {
    if (now_ms() - t0 > WAIT_MS) return 0;
    usleep_full(200);
  }
  usleep_full(2000);
  return 1;
}

/* Waits (bounded) until process `pid` is dead: a zombie, or already reaped. */
static int wait_dead(pid_t pid) {
  long long t0 = now_ms();
  for (;;) {
    char st = proc_state(pid, NULL);
    if (st == 0 || st == 'Z' || st == 'X') return 1;
    if (now_ms() - t0 > WAIT_MS) return 0;
    usleep_full(200);
  }
}

static int wait_pid_published(atomic_int *slot, pid_t *out) {
  long long t0 = now_ms();
  while ((*out = atomic_load(slot)) == 0) {
    if (now_ms() - t0 > WAIT_MS) return 0;
    usleep_full(200);
  }
  return 1;
}

/* ---------------------------------------------------------------- the faulting maps */

static uint32_t result_of(size_t job) { return (uint32_t)job * 3 + 1; }

static int crit_increment(ctx_t *c) {
  JCHECK(sm_critical_enter(c->pool) == SM_OK, "sm_critical_enter: %s", last_err());
  long v = c->sh->counter;
  sched_yield();
  c->sh->counter = v + 1;
  JCHECK(sm_critical_leave(c->pool) == SM_OK, "sm_critical_leave: %s", last_err());
  return 0;
}

/* crit_hold / crit_wait: a job before DIE_J - 1 uses critical, then counts itself through. */
static int crit_early(ctx_t *c) {
  int rc = crit_increment(c);
  atomic_fetch_add(&c->sh->early_done, 1);
  return rc;
}

static int wait_early_done(sh_t *sh) {
  long long t0 = now_ms();
  while (atomic_load(&sh->early_done) < DIE_J - 1) {
    if (now_ms() - t0 > WAIT_MS) return 0;
    usleep_full(200);
  }
  return 1;
}

static int wait_holder(sh_t *sh) {
  long long t0 = now_ms();
  while (!atomic_load(&sh->holder_in)) {
    if (now_ms() - t0 > WAIT_MS) return 0;
    usleep_full(200);
  }
  return 1;
}

static int ordered_log(ctx_t *c, size_t job) {
  JCHECK(sm_ordered_enter(c->pool) == SM_OK, "sm_ordered_enter (job %zu): %s", job, last_err());
  int p = atomic_fetch_add(&c->sh->logpos, 1);
  if (p < NEXT_JOBS) c->sh->log[p] = (int)job;
  JCHECK(sm_ordered_leave(c->pool) == SM_OK, "sm_ordered_leave (job %zu): %s", job, last_err());
  return 0;
}

static int work_fault(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  sh_t *sh = c->sh;
  atomic_fetch_add(&sh->calls[job], 1);
  pids_note(&sh->pids);
  *(uint32_t *)result = result_of(job);
  switch (c->moment) {
    case M_INIT1:
    case M_INIT_ALL:
    case M_INIT_ALL_NR:
    case M_FINI1:
      msleep(1);
      return 0;

    case M_MID:
      if (job == MID_J) {
        atomic_store(&sh->dead_pid, (int)getpid());
        die(c->cause);
      }
      msleep(2);
      return 0;

    case M_CRIT_HOLD:
      if (job < DIE_J - 1) return crit_early(c);
      if (job == DIE_J) {
        /* Earlier jobs blocked on the lock would hold the workers that jobs DIE_J +- 1 need. */
        JCHECK(wait_early_done(sh), "jobs 0..%d did not get through critical", DIE_J - 2);
        JCHECK(sm_critical_enter(c->pool) == SM_OK, "sm_critical_enter: %s", last_err());
        atomic_store(&sh->holder_in, 1);
        long long t0 = now_ms();
        while (atomic_load(&sh->ntrying) < 2) {
          JCHECK(now_ms() - t0 < WAIT_MS, "jobs %d and %d did not come to the lock", DIE_J - 1, DIE_J + 1);
          usleep_full(200);
        }
        for (int i = 0; i < 2; i++) {
          pid_t p = 0;
          JCHECK(wait_pid_published(&sh->trying_pids[i], &p), "waiter pid %d not published", i);
          JCHECK(wait_asleep(p), "waiter pid %d (#%d) never slept in sm_critical_enter (state %c)", (int)p, i,
                 g_last_state ? g_last_state : '0');
        }
        atomic_store(&sh->dead_pid, (int)getpid());
        die(c->cause);
      }
      /* jobs DIE_J - 1 and DIE_J + 1 (whose worker then blocks) come once job DIE_J holds the lock */
      JCHECK(wait_holder(sh), "job %d never held the lock", DIE_J);
      {
        int i = atomic_fetch_add(&sh->ntrying, 1);
        if (i < 4) atomic_store(&sh->trying_pids[i], (int)getpid());
      }
      return crit_increment(c);

    case M_CRIT_WAIT:
      if (job < DIE_J - 1) return crit_early(c);
      if (job == DIE_J - 1) { /* the holder: makes job DIE_J die in its wait */
        JCHECK(wait_early_done(sh), "jobs 0..%d did not get through critical", DIE_J - 2);
        JCHECK(sm_critical_enter(c->pool) == SM_OK, "sm_critical_enter: %s", last_err());
        atomic_store(&sh->holder_in, 1);
        pid_t victim = 0;
        JCHECK(wait_pid_published(&sh->dead_pid, &victim), "job %d never came", DIE_J);
        JCHECK(wait_asleep(victim), "job %d (pid %d) never slept in sm_critical_enter", DIE_J, (int)victim);
        JCHECK(kill(victim, SIGUSR2) == 0, "kill(%d, SIGUSR2): %s", (int)victim, strerror(errno));
        JCHECK(wait_dead(victim), "job %d (pid %d) did not die of SIGUSR2", DIE_J, (int)victim);
        sh->counter++;
        JCHECK(sm_critical_leave(c->pool) == SM_OK, "sm_critical_leave: %s", last_err());
        return 0;
      }
      /* job DIE_J and the ones after it (whose worker then blocks) come once job DIE_J - 1 holds it */
      JCHECK(wait_holder(sh), "job %d never held the lock", DIE_J - 1);
      if (job == DIE_J) {
        JCHECK(arm_victim(sh, c->cause) == 0, "sigaction: %s", strerror(errno));
        sm_critical_enter(c->pool); /* dies in here */
        JCHECK(0, "job %d got the lock instead of dying while waiting for it", DIE_J);
      }
      return crit_increment(c);

    case M_ORD_WAIT:
      if (job == DIE_J - 1) { /* slow before its turn: job DIE_J waits for it */
        pid_t victim = 0;
        JCHECK(wait_pid_published(&sh->dead_pid, &victim), "job %d never came", DIE_J);
        JCHECK(wait_asleep(victim), "job %d (pid %d) never slept in sm_ordered_enter", DIE_J, (int)victim);
        JCHECK(kill(victim, SIGUSR2) == 0, "kill(%d, SIGUSR2): %s", (int)victim, strerror(errno));
        JCHECK(wait_dead(victim), "job %d (pid %d) did not die of SIGUSR2", DIE_J, (int)victim);
      }
      if (job == DIE_J) {
        JCHECK(arm_victim(sh, c->cause) == 0, "sigaction: %s", strerror(errno));
        sm_ordered_enter(c->pool); /* dies in here */
        JCHECK(0, "job %d got its ordered turn instead of dying while waiting for it", DIE_J);
      }
      return ordered_log(c, job);

    case M_REDUCE:
      if (job == RED_K) {
        long long t0 = now_ms();
        while (!atomic_load(&sh->in_reduce)) {
          JCHECK(now_ms() - t0 < WAIT_MS, "the caller never entered reduce(%d)", RED_R);
          usleep_full(200);
        }
        atomic_store(&sh->dead_pid, (int)getpid());
        atomic_store(&sh->dying, 1);
        die(c->cause);
      }
      msleep(1);
      return 0;
  }
  return 0;
}

static int reduce_fault(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  sh_t *sh = c->sh;
  if (*(uint32_t *)result != result_of(job)) c->result_bad++;
  if (c->moment == M_REDUCE && job == RED_R) {
    /* Stay in reduce until job RED_K's worker is dead: the caller cannot reap it meanwhile, so it
     * must be a zombie (process backend); a persistent worker is reaped by its zygote at once, so
     * there it must be gone. */
    atomic_store(&sh->in_reduce, 1);
    long long t0 = now_ms();
    while (!atomic_load(&sh->dying) && now_ms() - t0 < WAIT_MS) usleep_full(200);
    pid_t p = atomic_load(&sh->dead_pid);
    char dead = g_b == SM_BACKEND_PERSISTENT ? 0 : 'Z';
    t0 = now_ms();
    while (p && proc_state(p, NULL) != dead && now_ms() - t0 < WAIT_MS) usleep_full(200);
    if (p && proc_state(p, NULL) == dead) atomic_store(&sh->zombie_seen_in_reduce, 1);
    msleep(5);
  }
  return rlog_add(&c->rlog, job);
}

static int init_fault(void *vctx, int worker) {
  ctx_t *c = (ctx_t *)vctx;
  pids_note(&c->sh->pids);
  if (c->moment == M_INIT_ALL || c->moment == M_INIT_ALL_NR || (c->moment == M_INIT1 && worker == 1)) {
    atomic_store(&c->sh->dead_pid, (int)getpid());
    die(c->cause);
  }
  return 0;
}

static int fini_fault(void *vctx, int worker, void *wresult) {
  ctx_t *c = (ctx_t *)vctx;
  *(int64_t *)wresult = worker + 100;
  if (c->moment == M_FINI1 && worker == 1) {
    atomic_store(&c->sh->dead_pid, (int)getpid());
    die(c->cause);
  }
  return 0;
}

static int wreduce(void *vctx, int worker, void *wresult) {
  ctx_t *c = (ctx_t *)vctx;
  (void)worker;
  (void)wresult;
  atomic_fetch_add(&c->sh->wreduce_calls, 1);
  return 0;
}

static int region_fault(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  sh_t *sh = c->sh;
  int me = sm_worker_id();
  pids_note(&sh->pids);
  if (c->moment == M_BAR_OTHER) {
    if (me == 1) {
      long long t0 = now_ms();
      while (atomic_load(&sh->nat_barrier) < NW - 1) {
        JCHECK(now_ms() - t0 < WAIT_MS, "the other workers never came to the barrier");
        usleep_full(200);
      }
      for (int w = 0; w < NW; w++) {
        if (w == 1) continue;
        pid_t p = 0;
        JCHECK(wait_pid_published(&sh->barrier_pids[w], &p), "worker %d's pid not published", w);
        JCHECK(wait_asleep(p), "worker %d (pid %d) never slept in sm_barrier", w, (int)p);
      }
      atomic_store(&sh->dead_pid, (int)getpid());
      die(c->cause);
    }
    atomic_store(&sh->barrier_pids[me], (int)getpid());
    atomic_fetch_add(&sh->nat_barrier, 1);
    sm_barrier(c->pool);
    return 0;
  }
  /* M_BAR_SELF */
  if (me == 1) {
    JCHECK(arm_victim(sh, c->cause) == 0, "sigaction: %s", strerror(errno));
    sm_barrier(c->pool); /* dies in here: worker 0 comes only once it is dead */
    JCHECK(0, "worker 1 passed the barrier instead of dying in it");
  }
  if (me == 0) {
    pid_t victim = 0;
    JCHECK(wait_pid_published(&sh->dead_pid, &victim), "worker 1 never came");
    JCHECK(wait_asleep(victim), "worker 1 (pid %d) never slept in sm_barrier", (int)victim);
    JCHECK(kill(victim, SIGUSR2) == 0, "kill(%d, SIGUSR2): %s", (int)victim, strerror(errno));
    JCHECK(wait_dead(victim), "worker 1 (pid %d) did not die of SIGUSR2", (int)victim);
  }
  sm_barrier(c->pool);
  return 0;
}

/* ---------------------------------------------------------------- the next map and region */

static int work_next(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  *(uint32_t *)result = (uint32_t)job * 5 + 2;
  int rc = crit_increment(c);
  if (rc) return rc;
  return ordered_log(c, job);
}

static int reduce_next(void *vctx, size_t job, void *result) {
  ctx_t *c = (ctx_t *)vctx;
  if (*(uint32_t *)result != (uint32_t)job * 5 + 2) c->result_bad++;
  return rlog_add(&c->rlog, job);
}

#define REGION_INCS 20
static int region_next(void *vctx) {
  ctx_t *c = (ctx_t *)vctx;
  for (int i = 0; i < REGION_INCS; i++) {
    JCHECK(sm_critical_enter(c->pool) == SM_OK, "sm_critical_enter: %s", last_err());
    long v = c->sh->rcounter;
    if (i % 4 == 0) sched_yield();
    c->sh->rcounter = v + 1;
    JCHECK(sm_critical_leave(c->pool) == SM_OK, "sm_critical_leave: %s", last_err());
  }
  JCHECK(sm_barrier(c->pool) == SM_OK, "sm_barrier: %s", last_err());
  JCHECK(c->sh->rcounter == (long)REGION_INCS * NW, "after the barrier: counter %ld, expected %d",
         c->sh->rcounter, REGION_INCS * NW);
  return 0;
}

/* ---------------------------------------------------------------- message checks */

/* msg contains `word` followed by a space and the number n (e.g. "job 20", "pid 1234"). */
static int names(const char *msg, const char *word, long long n) {
  size_t L = strlen(word);
  for (const char *p = msg; (p = strstr(p, word)) != NULL; p += L) {
    const char *q = p + L;
    if (*q != ' ') continue;
    q++;
    if (!isdigit((unsigned char)*q)) continue;
    char *end = NULL;
    long long v = strtoll(q, &end, 10);
    if (v == n && !isdigit((unsigned char)*end)) return 1;
  }
  return 0;
}

static int names_cause(const char *msg, int cause) {
  switch (cause) {
    case C_KILL: return strstr(msg, "SIGKILL") != NULL;
    case C_SEGV: return strstr(msg, "SIGSEGV") != NULL;
    case C_ABORT: return strstr(msg, "SIGABRT") != NULL;
    case C_EXIT0: return icontains(msg, "exit") && (names(msg, "status", 0) || names(msg, "code", 0));
    default: return icontains(msg, "exit") && (names(msg, "status", 7) || names(msg, "code", 7));
  }
}

static const char *cause_expected(int cause) {
  switch (cause) {
    case C_KILL: return "SIGKILL";
    case C_SEGV: return "SIGSEGV";
    case C_ABORT: return "SIGABRT";
    case C_EXIT0: return "exit status 0";
    default: return "exit status 7";
  }
}

/* ---------------------------------------------------------------- one case */

static void check_no_children(const char *when) {
  int z = 0, n = count_children(&z);
  FCHECK(n == 0 && z == 0, "%s: %d child process(es) (%d zombie(s)) of the caller remain; expected none", when, n,
         z);
  errno = 0;
  pid_t w = waitpid(-1, NULL, WNOHANG);
  /* a persistent pool keeps its zygote as the caller's child, alive (0) until sm_pool_free */
  if (g_b == SM_BACKEND_PERSISTENT)
    FCHECK(w == 0, "%s: waitpid(-1, WNOHANG) = %d (errno %d), expected 0 (only the live zygote)", when, (int)w, errno);
  else
    FCHECK(w == -1 && errno == ECHILD, "%s: waitpid(-1, WNOHANG) = %d (errno %d), expected -1/ECHILD", when, (int)w,
           errno);
}

static void run_case(int cause, int moment) {
  rlim_t zero = 0;
  struct rlimit rl = {zero, zero};
  setrlimit(RLIMIT_CORE, &rl);
  jfail_init();
  ctx_t *c = (ctx_t *)sm_empty(1, sizeof(ctx_t)); /* the workers of every backend see it */
  FCHECK(c != NULL, "sm_empty: %s", last_err());
  c->cause = cause;
  c->moment = moment;
  c->sh = (sh_t *)sm_empty(1, sizeof(sh_t));
  FCHECK(c->sh != NULL, "sm_empty: %s", last_err());
  rlog_init(&c->rlog, NJ_MAX + NEXT_JOBS);
  c->pool = sm_pool_new(NW, g_b);
  FCHECK(c->pool != NULL, "sm_pool_new: %s", last_err());

  sm_map_opts o = default_opts();
  size_t njobs = 0;
  long k = -1;         /* reduce must have run for exactly jobs 0..k-1 (-1: a region) */
  long job_named = -1; /* the message must name this job */
  int worker_named = -1;
  switch (moment) {
    case M_INIT1: njobs = HOOK_NJ; k = HOOK_NJ; worker_named = 1; o.worker_init = init_fault; break;
    case M_INIT_ALL:
    case M_INIT_ALL_NR: njobs = HOOK_NJ; k = 0; o.worker_init = init_fault; break;
    case M_FINI1:
      njobs = HOOK_NJ;
      k = HOOK_NJ;
      worker_named = 1;
      o.worker_fini = fini_fault;
      o.worker_reduce = wreduce;
      o.wresult_size = sizeof(int64_t);
      break;
    case M_MID: njobs = MID_NJ; k = job_named = MID_J; break;
    case M_CRIT_HOLD:
    case M_CRIT_WAIT:
    case M_ORD_WAIT: njobs = SECT_NJ; k = job_named = DIE_J; o.chunk = 1; break;
    case M_REDUCE: njobs = RED_NJ; k = job_named = RED_K; o.chunk = 1; break;
    default: worker_named = 1; break; /* regions */
  }

  g_res->t_start = now_ms();
  atomic_store(&g_res->started, 1);
  long long t0 = now_ms();
  sm_reduce_fn reduce = moment == M_INIT_ALL_NR ? NULL : reduce_fault;
  sm_status st = k >= 0 ? sm_map_ex(c->pool, njobs, work_fault, reduce, sizeof(uint32_t), c, &o)
                        : sm_parallel(c->pool, region_fault, c);
  long long t1 = now_ms();
  g_res->status = (int)st;
  g_res->ms = t1 - t0;
  snprintf(g_res->msg, sizeof g_res->msg, "%s", last_err());
  atomic_store(&g_res->have_status, 1);
  const char *msg = g_res->msg;

  FCHECK(atomic_load(&g_jf->nfail) == 0, "a check in a job or region failed (the fault did not happen as planned): %s",
         g_jf->msg);
  FCHECK(st == SM_ERR_WORKER_DIED, "expected SM_ERR_WORKER_DIED, got %s; sm_last_error() = \"%s\"", sm_status_str(st),
         msg);
  FCHECK(g_res->ms < CASE_LIMIT_MS, "the call took %lld ms (limit %d ms)", g_res->ms, CASE_LIMIT_MS);
  pid_t dp = atomic_load(&c->sh->dead_pid);
  FCHECK(dp > 0, "the dying worker did not record its pid");
  if (moment == M_INIT_ALL || moment == M_INIT_ALL_NR) { /* every worker died: the message names one of them */
    for (size_t j = 0; j < njobs; j++)
      FCHECK(atomic_load(&c->sh->calls[j]) == 0, "every worker died in worker_init, yet job %zu ran", j);
    int named = 0;
    for (int i = 0; i < pids_count(&c->sh->pids); i++) named |= names(msg, "pid", atomic_load(&c->sh->pids.pid[i]));
    FCHECK(named, "the message must name the pid of a dead worker: \"%s\"", msg);
  } else {
    FCHECK(names(msg, "pid", dp), "the message must name the dead worker's pid %d: \"%s\"", (int)dp, msg);
  }
  FCHECK(names_cause(msg, cause), "the message must name the cause (%s): \"%s\"", cause_expected(cause), msg);
  if (job_named >= 0)
    FCHECK(names(msg, "job", job_named), "the message must name job %ld: \"%s\"", job_named, msg);
  if (worker_named >= 0)
    FCHECK(names(msg, "worker", worker_named), "the message must name worker %d: \"%s\"", worker_named, msg);
  if (k >= 0) {
    FCHECK(c->rlog.bad == 0, "reduce ran %d time(s) outside the calling thread", c->rlog.bad);
    FCHECK(c->result_bad == 0, "reduce saw %d wrong result(s)", c->result_bad);
    FCHECK(c->rlog.n == (size_t)k, "reduce ran %zu times, expected exactly %ld (jobs 0..%ld); message \"%s\"",
           c->rlog.n, k, k - 1, msg);
    for (size_t i = 0; i < c->rlog.n && i < c->rlog.cap; i++)
      FCHECK(c->rlog.jobs[i] == i, "reduce call #%zu was for job %zu", i, c->rlog.jobs[i]);
    for (long j = 0; j < k; j++)
      FCHECK(atomic_load(&c->sh->calls[j]) == 1, "job %ld ran %d times", j, atomic_load(&c->sh->calls[j]));
  }
  if (moment == M_FINI1)
    FCHECK(atomic_load(&c->sh->wreduce_calls) == 0, "worker_reduce ran %d times after a worker died in worker_fini",
           atomic_load(&c->sh->wreduce_calls));
  if (moment == M_REDUCE)
    FCHECK(atomic_load(&c->sh->zombie_seen_in_reduce) == 1,
           "job %d's worker was not seen dead while the caller was inside reduce(%d)", RED_K, RED_R);
  check_no_children("after the faulting call");
  for (int i = 0; i < pids_count(&c->sh->pids); i++) {
    pid_t p = atomic_load(&c->sh->pids.pid[i]);
    FCHECK(kill(p, 0) != 0, "worker pid %d still exists (state %c)", (int)p, proc_state(p, NULL));
  }

  /* The next map on the same pool: critical and ordered in every job, reduce. */
  memset(c->sh, 0, sizeof *c->sh);
  rlog_reset(&c->rlog);
  c->result_bad = 0;
  st = sm_map(c->pool, NEXT_JOBS, work_next, reduce_next, sizeof(uint32_t), c);
  FCHECK(atomic_load(&g_jf->nfail) == 0, "next map: a check in a job failed: %s", g_jf->msg);
  FCHECK(st == SM_OK, "next map on the same pool: %s, \"%s\"", sm_status_str(st), last_err());
  FCHECK(c->sh->counter == NEXT_JOBS, "next map: counter under critical is %ld, expected %d", c->sh->counter,
         NEXT_JOBS);
  for (int i = 0; i < NEXT_JOBS; i++)
    FCHECK(c->sh->log[i] == i, "next map: ordered log[%d] = %d, expected %d", i, c->sh->log[i], i);
  FCHECK(c->rlog.n == NEXT_JOBS && c->result_bad == 0 && c->rlog.bad == 0, "next map: reduce ran %zu times (%d bad)",
         c->rlog.n, c->result_bad);
  for (size_t i = 0; i < c->rlog.n && i < c->rlog.cap; i++)
    FCHECK(c->rlog.jobs[i] == i, "next map: reduce call #%zu was for job %zu", i, c->rlog.jobs[i]);
  /* And the next region. */
  st = sm_parallel(c->pool, region_next, c);
  FCHECK(atomic_load(&g_jf->nfail) == 0, "next region: a check failed: %s", g_jf->msg);
  FCHECK(st == SM_OK, "next region on the same pool: %s, \"%s\"", sm_status_str(st), last_err());
  FCHECK(c->sh->rcounter == (long)REGION_INCS * NW, "next region: counter %ld", c->sh->rcounter);
  check_no_children("after the next map and region");
  sm_pool_free(c->pool);
  sm_free(c->sh);
  atomic_store(&g_res->finished_ok, 1);
}

/* ---------------------------------------------------------------- the matrix */

/* The message for the table: pids replaced by <pid>, '|' escaped, cut to about `limit` characters. */
static void table_message(const char *msg, char *out, size_t cap, size_t limit) {
  size_t o = 0;
  for (const char *p = msg; *p && o + 8 < cap;) {
    if (strncmp(p, "pid ", 4) == 0 && isdigit((unsigned char)p[4])) {
      o += (size_t)snprintf(out + o, cap - o, "pid <pid>");
      p += 4;
      while (isdigit((unsigned char)*p)) p++;
      continue;
    }
    if (o >= limit) {
      o += (size_t)snprintf(out + o, cap - o, "...");
      break;
    }
    if (*p == '|') out[o++] = '\\';
    out[o++] = *p++;
  }
  out[o < cap ? o : cap - 1] = 0;
}

/* "SM_ERR_WORKER_DIED" out of "SM_ERR_WORKER_DIED: a worker process died". */
static const char *status_name(int st) {
  static char buf[64];
  snprintf(buf, sizeof buf, "%s", sm_status_str((sm_status)st));
  char *colon = strchr(buf, ':');
  if (colon) *colon = 0;
  return buf;
}

typedef struct {
  pid_t pid;
  long long t_fork;
  int cause, moment;
} running_t;

/* Reaps case `r` if it ended, or kills it once it is past its time; returns 1 when it is done. */
static int poll_case(running_t *r, case_res_t *res, int block) {
  for (;;) {
    int status = 0;
    pid_t w = waitpid(r->pid, &status, WNOHANG);
    CHECK(w >= 0, "waitpid(%d): %s", (int)r->pid, strerror(errno));
    if (w == r->pid) {
      res->exit_status = status;
      return 1;
    }
    long long now = now_ms();
    int call_late = atomic_load(&res->started) && !atomic_load(&res->have_status) &&
                    now - res->t_start > CASE_LIMIT_MS;
    if (call_late || now - r->t_fork > CHILD_LIMIT_MS) {
      res->hung = call_late ? 1 : 2;
      kill(r->pid, SIGKILL); /* its workers die with it (PR_SET_PDEATHSIG) */
      CHECK(waitpid(r->pid, &status, 0) == r->pid, "waitpid: %s", strerror(errno));
      res->exit_status = status;
      return 1;
    }
    if (!block) return 0;
    usleep_full(1000);
  }
}

static void sm_fm_watchdog(int sig) {
  (void)sig;
  static const char m[] = "WATCHDOG: test_fault_matrix did not finish in 120 s -> FAIL\n";
  ssize_t r = write(2, m, sizeof m - 1);
  (void)r;
  _exit(124);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  int table = 0, selected[NMOMENTS], any_selected = 0;
  memset(selected, 0, sizeof selected);
  for (int a = 2; a < argc; a++) {
    if (strcmp(argv[a], "table") == 0) {
      table = 1;
      continue;
    }
    int found = 0;
    for (int m = 0; m < NMOMENTS; m++)
      if (strcmp(argv[a], moment_keys[m]) == 0) selected[m] = found = any_selected = 1;
    CHECK(found, "unknown argument \"%s\" (table, or a moment: init1, init_all, ...)", argv[a]);
  }
  if (!any_selected)
    for (int m = 0; m < NMOMENTS; m++) selected[m] = 1;
  g_b = b;
  if (!workers_are_processes(b)) {
    printf("test_fault_matrix[%s]: nothing to do: on the %s backend a crashing job takes the whole process down "
           "by design (pinned by test_crash)\n",
           g_backend_name, g_backend_name);
    return 0;
  }
  signal(SIGALRM, sm_fm_watchdog);
  alarm(120);
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);

  enum { NCASES = NCAUSES * NMOMENTS };
  case_res_t *res = (case_res_t *)mmap(NULL, sizeof(case_res_t) * NCASES, PROT_READ | PROT_WRITE,
                                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(res != MAP_FAILED, "mmap: %s", strerror(errno));
  memset(res, 0, sizeof(case_res_t) * NCASES);

  /* Cases run one at a time; one that takes longer than STEP_ON_MS (a hang: the library is then
   * asleep in a wait) goes on in the background until its limit, so hangs do not add up. */
  running_t run[NCASES];
  int nrun = 0;
  long long t_all = now_ms();
  for (int m = 0; m < NMOMENTS; m++) {
    if (!selected[m]) continue;
    for (int cz = 0; cz < NCAUSES; cz++) {
      int i = m * NCAUSES + cz;
      fflush(stdout);
      fflush(stderr);
      pid_t pid = fork();
      CHECK(pid >= 0, "fork: %s", strerror(errno));
      if (pid == 0) {
        g_res = &res[i];
        run_case(cz, m);
        fflush(stdout);
        _exit(0);
      }
      running_t r = {pid, now_ms(), cz, m};
      int done = 0;
      while (!(done = poll_case(&r, &res[i], 0)) && now_ms() - r.t_fork < STEP_ON_MS) usleep_full(500);
      if (!done) { /* still running (a hang?): let it run on to its limit in the background */
        run[nrun++] = r;
        continue;
      }
      /* done: also look at earlier stragglers */
      for (int j = 0; j < nrun;) {
        int ji = run[j].moment * NCAUSES + run[j].cause;
        if (poll_case(&run[j], &res[ji], 0)) run[j] = run[--nrun];
        else j++;
      }
    }
  }
  for (int j = 0; j < nrun; j++) poll_case(&run[j], &res[run[j].moment * NCAUSES + run[j].cause], 1);
  long long t_total = now_ms() - t_all;

  int nfail = 0;
  long long max_ms = 0;
  int ncases = 0;
  for (int i = 0; i < NCASES; i++) {
    case_res_t *r = &res[i];
    if (!selected[i / NCAUSES]) continue;
    ncases++;
    int ok = !r->hung && WIFEXITED(r->exit_status) && WEXITSTATUS(r->exit_status) == 0 && atomic_load(&r->finished_ok);
    if (atomic_load(&r->have_status) && r->ms > max_ms) max_ms = r->ms;
    if (!ok) {
      nfail++;
      fprintf(stderr, "FAIL: %s in %s: ", cause_names[i % NCAUSES], moment_names[i / NCAUSES]);
      if (r->hung == 1)
        fprintf(stderr, "the call did not return within %d ms (hang)\n", CASE_LIMIT_MS);
      else if (r->hung == 2)
        fprintf(stderr, "the case did not finish within %d ms\n", CHILD_LIMIT_MS);
      else if (r->fail[0])
        fprintf(stderr, "%s\n", r->fail);
      else if (WIFSIGNALED(r->exit_status))
        fprintf(stderr, "the case's caller process died of signal %d\n", WTERMSIG(r->exit_status));
      else
        fprintf(stderr, "the case's caller process exited with status %d\n", WEXITSTATUS(r->exit_status));
    }
  }
  if (table) {
    printf("| cause | moment | status | time (ms) | message (`sm_last_error()`) |\n");
    printf("|---|---|---|---:|---|\n");
    for (int i = 0; i < NCASES; i++) {
      case_res_t *r = &res[i];
      if (!selected[i / NCAUSES]) continue;
      char m[400];
      char sbuf[64];
      char tms[32];
      if (atomic_load(&r->have_status)) {
        table_message(r->msg, m, sizeof m, 120);
        snprintf(sbuf, sizeof sbuf, "%s", status_name(r->status));
        snprintf(tms, sizeof tms, "%lld", r->ms);
      } else {
        snprintf(m, sizeof m, "(none: the call did not return)");
        snprintf(sbuf, sizeof sbuf, "%s", r->hung ? "**HANG**" : "**caller died**");
        snprintf(tms, sizeof tms, "> %d", CASE_LIMIT_MS);
      }
      int ok = !r->hung && WIFEXITED(r->exit_status) && WEXITSTATUS(r->exit_status) == 0 &&
               atomic_load(&r->finished_ok);
      printf("| %s | %s | %s%s | %s | %s |\n", cause_names[i % NCAUSES], moment_names[i / NCAUSES], sbuf,
             ok ? "" : " (FAIL)", tms, m);
    }
    printf("\nWhole messages (the first cause of each moment; the others differ in the cause only):\n\n");
    for (int mo = 0; mo < NMOMENTS; mo++) {
      case_res_t *r = &res[mo * NCAUSES];
      if (!selected[mo]) continue;
      char m[800];
      if (atomic_load(&r->have_status))
        table_message(r->msg, m, sizeof m, sizeof m);
      else
        snprintf(m, sizeof m, "(none: the call did not return)");
      printf("- %s, %s: %s: `%s`\n", moment_names[mo], cause_names[0],
             atomic_load(&r->have_status) ? status_name(r->status) : "HANG", m);
    }
    printf("\n%d cases, %d failed; slowest faulting call %lld ms (limit %d ms); whole matrix %lld ms\n", ncases,
           nfail, max_ms, CASE_LIMIT_MS, t_total);
  }
  CHECK_NO_CHILDREN("end of the matrix");
  munmap(res, sizeof(case_res_t) * NCASES);
  if (nfail) {
    fprintf(stderr, "test_fault_matrix: %d of %d cases failed\n", nfail, ncases);
    return 1;
  }
  printf("test_fault_matrix[%s]: OK: %d cases (causes x moments), every call returned SM_ERR_WORKER_DIED naming "
         "the job/worker, pid and cause, within %lld ms at most (limit %d ms); next map and region fine; %lld ms "
         "in all\n",
         g_backend_name, ncases, max_ms, CASE_LIMIT_MS, t_total);
  return 0;
}
