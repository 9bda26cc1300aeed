/* What sm_mpi_map checks before any job runs.
 *
 *   test_checks mismatch    the ranks disagree (one rank passes another njobs, root, result_size,
 *                           no options where the others pass some, another wresult_size): every
 *                           rank returns SM_ERR_INVALID, with a message naming the rank that
 *                           differs, no job runs, nothing hangs; a root outside the communicator
 *                           is SM_ERR_INVALID everywhere; then a correct map works (every backend:
 *                           process, thread, serial, persistent pools and a NULL pool).
 *   test_checks noinit      before MPI_Init_thread and after MPI_Finalize: SM_ERR_STATE, saying so
 *   test_checks single      MPI_Init (MPI_THREAD_SINGLE): SM_ERR_STATE on every rank, naming
 *                           MPI_THREAD_FUNNELED (skipped, passing, if MPI_Init gives more)
 *   test_checks thread      MPI_THREAD_FUNNELED, called from another thread than the main one:
 *                           SM_ERR_STATE on every rank, naming MPI_THREAD_SERIALIZED
 *   test_checks serialized  MPI_THREAD_SERIALIZED, called from another thread: it works
 *                           (thread and serialized: on every backend)
 *
 * Usage: test_checks <mode> (under mpiexec, any number of ranks) */
#include "mpitest.h"

/* In sm_empty memory: persistent workers see no later write to the caller's other memory. */
typedef struct {
  _Atomic long ran; /* jobs that ran on this rank */
  size_t reduced;
  int bad;
} check_ctx;

static int work(void *ctx_, size_t job, void *result) {
  check_ctx *c = ctx_;
  atomic_fetch_add(&c->ran, 1);
  if (result) *(uint64_t *)result = job * 3;
  return 0;
}

static int reduce(void *ctx_, size_t job, void *result) {
  check_ctx *c = ctx_;
  if (job != c->reduced || *(uint64_t *)result != job * 3) c->bad++;
  c->reduced++;
  return 0;
}

static int wfini(void *ctx, int worker, void *wresult) {
  (void)ctx, (void)worker, (void)wresult;
  return 0;
}

/* One map where rank `odd` passes its own arguments: SM_ERR_INVALID on every rank, naming it. */
static void expect_mismatch(sm_pool *pool, const char *what, int odd, int root, size_t njobs,
                            size_t result_size, const sm_map_opts *opts) {
  check_ctx *c = must_empty(1, sizeof *c);
  JRESET();
  sm_status st = opts ? sm_mpi_map_ex(pool, MPI_COMM_WORLD, root, njobs, work, reduce,
                                      result_size, c, opts)
                      : sm_mpi_map(pool, MPI_COMM_WORLD, root, njobs, work, reduce, result_size, c);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", last_err());
  mt_check_status_all(MPI_COMM_WORLD, st, SM_ERR_INVALID, what);
  if (odd >= 0)
    CHECK(icontains(msg, "rank") && has_number(msg, odd),
          "%s [%s]: the message does not name rank %d, the one that differs: \"%s\"", what,
          g_backend_name, odd, msg);
  CHECK(atomic_load(&c->ran) == 0 && c->reduced == 0, "%s [%s]: %ld job(s) ran, %zu reduced", what,
        g_backend_name, atomic_load(&c->ran), c->reduced);
  sm_free(c);
}

/* A correct map: every job once, reduce in order on root. */
static void expect_ok(sm_pool *pool, size_t njobs, const char *what) {
  check_ctx *c = must_empty(1, sizeof *c);
  JRESET();
  sm_status st = sm_mpi_map(pool, MPI_COMM_WORLD, 0, njobs, work, reduce, 8, c);
  mt_check_status_all(MPI_COMM_WORLD, st, SM_OK, what);
  long long all = mt_sum_all(MPI_COMM_WORLD, atomic_load(&c->ran));
  CHECK(all == (long long)njobs, "%s: %lld jobs ran, expected %zu", what, all, njobs);
  if (g_rank == 0)
    CHECK(c->reduced == njobs && c->bad == 0, "%s: root reduced %zu of %zu jobs (%d wrong)", what,
          c->reduced, njobs, c->bad);
  sm_free(c);
}

static void mismatch(void) {
  int odd = g_nranks - 1, me_odd = g_rank == odd && g_nranks > 1;
  for (size_t b = 0; b < MT_NBACKENDS; b++) {
    sm_pool *pool = mt_pool(&MT_BACKENDS[b]);
    if (g_nranks > 1) {
      expect_mismatch(pool, "one rank passes another njobs", odd, 0, me_odd ? 1001 : 1000, 8, NULL);
      expect_mismatch(pool, "one rank passes another root", odd, me_odd ? 1 : 0, 1000, 8, NULL);
      expect_mismatch(pool, "one rank passes another result_size", odd, 0, 1000, me_odd ? 16 : 8,
                      NULL);
      sm_map_opts o = default_opts();
      o.worker_fini = wfini;
      o.wresult_size = me_odd ? 32 : 16;
      expect_mismatch(pool, "one rank passes another wresult_size", odd, 0, 1000, 8, &o);
      o.wresult_size = 16;
      /* one rank without options: sm_mpi_map_ex(..., NULL) there */
      check_ctx *c = must_empty(1, sizeof *c);
      JRESET();
      sm_status st = sm_mpi_map_ex(pool, MPI_COMM_WORLD, 0, 1000, work, reduce, 8, c,
                                   me_odd ? NULL : &o);
      char msg[1024];
      snprintf(msg, sizeof msg, "%s", last_err());
      mt_check_status_all(MPI_COMM_WORLD, st, SM_ERR_INVALID, "one rank passes no options");
      CHECK(icontains(msg, "rank") && has_number(msg, odd),
            "one rank passes no options [%s]: the message does not name rank %d: \"%s\"",
            g_backend_name, odd, msg);
      CHECK(atomic_load(&c->ran) == 0, "jobs ran although the options differ");
      sm_free(c);
    }
    expect_mismatch(pool, "root = the number of ranks", -1, g_nranks, 1000, 8, NULL);
    expect_mismatch(pool, "root = -1", -1, -1, 1000, 8, NULL);
    expect_ok(pool, 3000, "a correct map after the refused ones");
    if (pool) sm_pool_free(pool);
    if (g_rank == 0) printf("backend %s: OK\n", MT_BACKENDS[b].name);
  }
}

/* Before MPI_Init_thread and after MPI_Finalize: SM_ERR_STATE at once, on this rank alone. */
static void expect_not_up(const char *needle, const char *what) {
  sm_pool *pool = sm_pool_new(2, SM_BACKEND_THREAD);
  CHECK(pool, "sm_pool_new: %s", last_err());
  size_t n = 0;
  sm_status st = sm_mpi_map(pool, MPI_COMM_WORLD, 0, 100, work, NULL, 0, &n);
  CHECK(st == SM_ERR_STATE, "%s: sm_mpi_map returned %s, expected SM_ERR_STATE (%s)", what,
        sm_status_str(st), last_err());
  CHECK(icontains(last_err(), needle) && icontains(last_err(), "sm_mpi_map"),
        "%s: the message does not say '%s': \"%s\"", what, needle, last_err());
  st = sm_mpi_map_ex(NULL, MPI_COMM_WORLD, 0, 100, work, NULL, 0, &n, NULL);
  CHECK(st == SM_ERR_STATE && icontains(last_err(), "sm_mpi_map_ex"),
        "%s: sm_mpi_map_ex returned %s (%s)", what, sm_status_str(st), last_err());
  sm_pool_free(pool);
}

typedef struct {
  sm_pool *pool;
  sm_status status;
  char msg[1024];
  check_ctx *c;
} thread_call;

static void *call_from_thread(void *arg) {
  thread_call *t = arg;
  t->status = sm_mpi_map(t->pool, MPI_COMM_WORLD, 0, 2000, work, reduce, 8, t->c);
  snprintf(t->msg, sizeof t->msg, "%s", last_err());
  return NULL;
}

/* sm_mpi_map from another thread than the main one, on every rank. */
static void from_thread(sm_status expected, const char *needle) {
  for (size_t b = 0; b < MT_NBACKENDS; b++) {
    thread_call t;
    memset(&t, 0, sizeof t);
    t.pool = mt_pool(&MT_BACKENDS[b]);
    t.c = must_empty(1, sizeof *t.c);
    JRESET();
    pthread_t th;
    CHECK(pthread_create(&th, NULL, call_from_thread, &t) == 0, "pthread_create");
    pthread_join(th, NULL);
    int mine = (int)t.status, agree = 0;
    MPI_Allreduce(&mine, &agree, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    CHECK(t.status == expected && agree == mine,
          "[%s] from another thread: %s (the ranks' largest status: %d), expected %s; \"%s\"",
          g_backend_name, sm_status_str(t.status), agree, sm_status_str(expected), t.msg);
    if (needle)
      CHECK(icontains(t.msg, needle), "[%s] from another thread: the message does not name %s: \"%s\"",
            g_backend_name, needle, t.msg);
    long long all = mt_sum_all(MPI_COMM_WORLD, atomic_load(&t.c->ran));
    if (expected == SM_OK) {
      CHECK(all == 2000, "[%s] from another thread: %lld jobs ran of 2000", g_backend_name, all);
      if (g_rank == 0)
        CHECK(t.c->reduced == 2000 && t.c->bad == 0, "[%s] root reduced %zu jobs of 2000",
              g_backend_name, t.c->reduced);
    } else {
      CHECK(all == 0, "[%s] jobs ran although the thread level is too low", g_backend_name);
    }
    JCHECK_ALL_PASSED();
    sm_free(t.c);
    if (t.pool) sm_pool_free(t.pool);
  }
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "mismatch";
  if (strcmp(mode, "mismatch") == 0) {
    mt_init(&argc, &argv, 100);
    mismatch();
  } else if (strcmp(mode, "noinit") == 0) {
    watchdog(100);
    expect_not_up("not initialized", "before MPI_Init_thread");
    mt_init(&argc, &argv, 100);
    expect_ok(NULL, 500, "between MPI_Init_thread and MPI_Finalize");
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    expect_not_up("finalized", "after MPI_Finalize");
    if (g_rank == 0) printf("test_checks noinit: OK\n");
    return 0;
  } else if (strcmp(mode, "single") == 0) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_nranks);
    watchdog(100);
    jfail_init();
    int provided = 0;
    MPI_Query_thread(&provided);
    if (provided >= MPI_THREAD_FUNNELED) {
      if (g_rank == 0) printf("SKIP: MPI_Init gives MPI_THREAD_FUNNELED or more here\n");
    } else {
      sm_pool *pool = new_pool(2, SM_BACKEND_THREAD);
      check_ctx *c = must_empty(1, sizeof *c);
      sm_status st = sm_mpi_map(pool, MPI_COMM_WORLD, 0, 1000, work, reduce, 8, c);
      char msg[1024];
      snprintf(msg, sizeof msg, "%s", last_err());
      mt_check_status_all(MPI_COMM_WORLD, st, SM_ERR_STATE, "MPI_THREAD_SINGLE");
      CHECK(icontains(msg, "MPI_THREAD_FUNNELED") && icontains(msg, "MPI_Init_thread"),
            "MPI_THREAD_SINGLE: the message does not say what level is needed: \"%s\"", msg);
      CHECK(mt_sum_all(MPI_COMM_WORLD, atomic_load(&c->ran)) == 0, "jobs ran at MPI_THREAD_SINGLE");
      sm_free(c);
      sm_pool_free(pool);
    }
  } else if (strcmp(mode, "thread") == 0 || strcmp(mode, "serialized") == 0) {
    int serialized = strcmp(mode, "serialized") == 0;
    int provided = 0;
    MPI_Init_thread(&argc, &argv, serialized ? MPI_THREAD_SERIALIZED : MPI_THREAD_FUNNELED,
                    &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_nranks);
    watchdog(100);
    jfail_init();
    if (serialized) {
      CHECK(provided >= MPI_THREAD_SERIALIZED, "MPI does not provide MPI_THREAD_SERIALIZED");
      from_thread(SM_OK, NULL);
    } else if (provided >= MPI_THREAD_SERIALIZED) {
      if (g_rank == 0) printf("SKIP: MPI_THREAD_FUNNELED was asked for, and more given\n");
    } else {
      from_thread(SM_ERR_STATE, "MPI_THREAD_SERIALIZED");
    }
  } else {
    fprintf(stderr, "usage: %s mismatch|noinit|single|thread|serialized\n", argv[0]);
    return 2;
  }
  char what[64];
  snprintf(what, sizeof what, "test_checks %s", mode);
  return mt_finish(what);
}
