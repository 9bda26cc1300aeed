/* Jobs and regions that run OpenMP loops (issue 11), built with gcc -fopenmp (libgomp) and with
 * clang -fopenmp (LLVM libomp): no hang after the fork, whatever the caller ran before or is
 * running; exact results; inner team sizes as inner_threads says; the caller's and the thread
 * workers' own settings unchanged after a map.
 *
 *   test_omp process|persistent|thread|serial loops|count|settings|inside|region|env|env_bad|invalid
 *
 * The expected inner team is computed here from the rule the header documents: exactly n for
 * inner_threads = n, else at most max(1, cpus / workers) and at most the caller's own
 * omp_get_max_threads(). */
#include "testutil.h"

#include <omp.h>

#define NJOBS 8
#define NWORKERS 2
#define LOOP 20000

struct shared {
  atomic_int bad;
  long long sum[NJOBS];
  long long sum2[NJOBS];
  int team[NJOBS];  /* team size of a region without num_threads */
  int team2[NJOBS]; /* team size of a region with num_threads(2) */
  int tasks[NJOBS]; /* threads of the (forked) worker while its region ran */
  int max_threads[NJOBS];
  int clause; /* 1: jobs also run a num_threads(2) region */
};

static struct shared *g;

static long long expected_sum(long job) {
  long long s = 0;
  for (long i = 0; i < LOOP; i++) s += (i ^ job) % 7;
  return s;
}

static void omp_work(long job) {
  g->max_threads[job] = omp_get_max_threads();
  long long s = 0;
  int team = 0, tasks = 0;
#pragma omp parallel reduction(+ : s)
  {
#pragma omp single
    team = omp_get_num_threads();
#pragma omp for
    for (long i = 0; i < LOOP; i++) s += (i ^ job) % 7;
    /* every member is in the region here (the loop ends with a barrier): count the threads */
#pragma omp master
    tasks = count_tasks();
#pragma omp barrier
  }
  g->sum[job] = s;
  g->team[job] = team;
  g->tasks[job] = tasks;
  if (g->clause) {
    long long s2 = 0;
    int team2 = 0;
#pragma omp parallel num_threads(2) reduction(+ : s2)
    {
#pragma omp single
      team2 = omp_get_num_threads();
#pragma omp for
      for (long i = 0; i < LOOP; i++) s2 += (i ^ job) % 7;
    }
    g->sum2[job] = s2;
    g->team2[job] = team2;
  }
}

static int job_fn(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  omp_work((long)job);
  return 0;
}

static int region_fn(void *ctx) {
  (void)ctx;
  omp_work(sm_worker_id());
  return 0;
}

/* The inner team the header promises for inner_threads = setting (0: default), with the
 * caller's current omp_get_max_threads(). */
static int expected_team(int setting, int workers) {
  if (setting > 0) return setting;
  int share = affinity_cpus() / workers;
  if (share < 1) share = 1;
  int mine = omp_get_max_threads();
  return share < mine ? share : mine;
}

static sm_map_opts opts_with(int inner) {
  sm_map_opts o = default_opts();
  o.inner_threads = inner;
  return o;
}

/* One map of NJOBS jobs; checks sums and team sizes (team < 0: do not check). */
static void map_and_check(sm_pool *pool, int inner, int team, int team2, const char *what) {
  memset(g->sum, 0, sizeof g->sum);
  memset(g->sum2, 0, sizeof g->sum2);
  sm_map_opts o = opts_with(inner);
  sm_status st = sm_map_ex(pool, NJOBS, job_fn, NULL, 0, NULL, &o);
  CHECK(st == SM_OK, "%s: sm_map_ex: %s", what, sm_last_error());
  for (long j = 0; j < NJOBS; j++) {
    CHECK(g->sum[j] == expected_sum(j), "%s: job %ld sum %lld", what, j, g->sum[j]);
    if (g->clause) CHECK(g->sum2[j] == expected_sum(j), "%s: job %ld sum2 %lld", what, j, g->sum2[j]);
    if (team >= 0) CHECK(g->team[j] == team, "%s: job %ld: team %d, expected %d", what, j, g->team[j], team);
    if (team2 >= 0 && g->clause)
      CHECK(g->team2[j] == team2, "%s: job %ld: num_threads(2) team %d, expected %d", what, j, g->team2[j], team2);
  }
}

/* A second caller thread that keeps running OpenMP regions while the maps run. */
static atomic_int g_stop_busy;
static atomic_long g_busy_regions;
static void *busy_thread(void *arg) {
  (void)arg;
  while (!atomic_load(&g_stop_busy)) {
    long long s = 0;
#pragma omp parallel for reduction(+ : s)
    for (long i = 0; i < 1000; i++) s += i;
    CHECK(s == 499500, "busy thread sum %lld", s);
    atomic_fetch_add(&g_busy_regions, 1);
  }
  return NULL;
}

static void caller_region(void) {
  long long s = 0;
#pragma omp parallel for reduction(+ : s)
  for (long i = 0; i < 100000; i++) s += i % 3;
  CHECK(s == 99999, "caller region sum %lld", s);
}

int main(int argc, char **argv) {
  sm_backend backend = parse_backend(argc, argv);
  const char *mode = argc >= 3 ? argv[2] : "loops";
  watchdog(120);
  g = sm_empty(1, sizeof *g);
  CHECK(g, "sm_empty: %s", sm_last_error());
  /* the caller has run OpenMP before mapping, and before making the pool (persistent workers are
   * forked then): the case libgomp does not survive a fork in */
  caller_region();
  sm_pool *pool = sm_pool_new(NWORKERS, backend);
  CHECK(pool, "sm_pool_new: %s", sm_last_error());
  int workers = sm_pool_nworkers(pool);

  if (strcmp(mode, "loops") == 0) {
    /* 200 maps, with and without num_threads(2), while another caller thread runs regions */
    g->clause = 1;
    pthread_t busy;
    CHECK(pthread_create(&busy, NULL, busy_thread, NULL) == 0, "pthread_create");
    for (int m = 0; m < 200; m++) {
      int inner = m % 3 == 0 ? 0 : m % 3 == 1 ? 1 : 2;
      char what[64];
      snprintf(what, sizeof what, "map %d (inner_threads %d)", m, inner);
      map_and_check(pool, inner, expected_team(inner, workers), 2, what);
      if (m % 20 == 0) caller_region();
    }
    atomic_store(&g_stop_busy, 1);
    pthread_join(busy, NULL);
    CHECK(atomic_load(&g_busy_regions) > 0, "the busy thread ran no region");
  } else if (strcmp(mode, "count") == 0) {
    /* the threads of a forked worker while its region runs: itself and inner - 1 OpenMP threads */
    for (int inner = 1; inner <= 3; inner++) {
      for (int m = 0; m < 10; m++) {
        map_and_check(pool, inner, inner, -1, "count");
        if (backend == SM_BACKEND_PROCESS)
          for (int j = 0; j < NJOBS; j++)
            CHECK(g->tasks[j] == inner, "inner_threads %d: %d threads in the worker (job %d)", inner,
                  g->tasks[j], j);
      }
    }
  } else if (strcmp(mode, "settings") == 0) {
    /* the caller's setting and the thread workers' own settings are the same after a map */
    omp_set_num_threads(3);
    for (int m = 0; m < 20; m++) {
      map_and_check(pool, 1, 1, -1, "settings inner 1");
      for (int j = 0; j < NJOBS; j++) CHECK(g->max_threads[j] == 1, "job %d max_threads %d", j, g->max_threads[j]);
      CHECK(omp_get_max_threads() == 3, "caller's omp_get_max_threads() is %d after a map, was 3",
            omp_get_max_threads());
      map_and_check(pool, -1, -1, -1, "settings inner -1");
      /* each worker's own count, as it was before any map: the same every time */
      for (int j = 0; j < NJOBS; j++) {
        CHECK(g->max_threads[j] != 1, "job %d: a worker kept the inner count of the previous map", j);
        /* a forked worker inherits the caller's count, except from LLVM's libomp, which restarts
         * itself in a forked child with its defaults */
        int inherits = backend == SM_BACKEND_SERIAL;
#if !defined(__clang__)
        inherits |= backend == SM_BACKEND_PROCESS;
#endif
        if (inherits)
          CHECK(g->max_threads[j] == 3, "job %d: %d, the caller's 3 expected", j, g->max_threads[j]);
      }
      CHECK(omp_get_max_threads() == 3, "caller changed: %d", omp_get_max_threads());
    }
  } else if (strcmp(mode, "inside") == 0) {
    /* the caller maps from inside an active OpenMP region: no hang; libgomp's forked workers
     * then run regions on one thread and SM_VERBOSE says so */
    g->clause = 1;
    setenv("SM_VERBOSE", "1", 1); /* read at the first decision that needs it: this one */
    char log[] = "/tmp/sm_test_omp_XXXXXX";
    int fd = mkstemp(log);
    CHECK(fd >= 0, "mkstemp");
    int saved = dup(2);
    CHECK(dup2(fd, 2) >= 0, "dup2");
    int maps = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp master
      {
        for (int m = 0; m < 20; m++) {
          map_and_check(pool, 0, -1, -1, "inside a region");
          maps++;
#if !defined(__clang__)
          if (backend == SM_BACKEND_PROCESS)
            for (int j = 0; j < NJOBS; j++)
              CHECK(g->team[j] == 1 && g->team2[j] == 1, "libgomp, forked from inside a region: teams %d %d",
                    g->team[j], g->team2[j]);
#endif
        }
        if (backend == SM_BACKEND_PERSISTENT) { /* a pool whose workers are forked inside the region */
          sm_pool *here = sm_pool_new(NWORKERS, backend);
          CHECK(here, "sm_pool_new inside a region: %s", sm_last_error());
          map_and_check(here, 0, -1, -1, "on a persistent pool made inside a region");
#if !defined(__clang__)
          for (int j = 0; j < NJOBS; j++)
            CHECK(g->team[j] == 1 && g->team2[j] == 1, "libgomp, pool made inside a region: teams %d %d",
                  g->team[j], g->team2[j]);
#endif
          sm_pool_free(here);
        }
      }
    }
    fflush(stderr);
    dup2(saved, 2);
    CHECK(maps == 20, "maps %d", maps);
    char text[4096] = {0};
    ssize_t got = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    unlink(log);
    CHECK(got >= 0, "pread");
#if !defined(__clang__)
    if (workers_are_processes(backend))
      CHECK(strstr(text, "inside an OpenMP parallel region") != NULL, "SM_VERBOSE said: '%s'", text);
#endif
    /* and after the region, the usual teams again */
    map_and_check(pool, 0, expected_team(0, workers), 2, "after the region");
  } else if (strcmp(mode, "region") == 0) {
    /* OpenMP loops in the body of sm_parallel regions */
    for (int m = 0; m < 50; m++) {
      memset(g->sum, 0, sizeof g->sum);
      int inner = m % 2 ? 2 : 0;
      sm_map_opts o = opts_with(inner);
      CHECK(sm_parallel_ex(pool, region_fn, NULL, &o) == SM_OK, "sm_parallel_ex: %s", sm_last_error());
      for (int w = 0; w < workers; w++) {
        CHECK(g->sum[w] == expected_sum(w), "region worker %d sum %lld", w, g->sum[w]);
        CHECK(g->team[w] == expected_team(inner, workers), "region worker %d team %d", w, g->team[w]);
      }
      caller_region();
    }
  } else if (strcmp(mode, "env") == 0) {
    /* SM_INNER_THREADS=2 in the environment: the default; an option still wins */
    map_and_check(pool, 0, 2, -1, "SM_INNER_THREADS=2");
    map_and_check(pool, 1, 1, -1, "SM_INNER_THREADS=2, inner_threads 1");
  } else if (strcmp(mode, "env_bad") == 0) {
    sm_status st = sm_map(pool, NJOBS, job_fn, NULL, 0, NULL);
    CHECK(st == SM_ERR_INVALID, "SM_INNER_THREADS=lots: %d", (int)st);
    CHECK(strstr(sm_last_error(), "SM_INNER_THREADS") != NULL, "message: %s", sm_last_error());
  } else if (strcmp(mode, "invalid") == 0) {
    sm_map_opts o = opts_with(-2);
    sm_status st = sm_map_ex(pool, NJOBS, job_fn, NULL, 0, NULL, &o);
    CHECK(st == SM_ERR_INVALID, "inner_threads -2: %d", (int)st);
    CHECK(strstr(sm_last_error(), "inner_threads") != NULL, "message: %s", sm_last_error());
    st = sm_parallel_ex(pool, region_fn, NULL, &o);
    CHECK(st == SM_ERR_INVALID, "region, inner_threads -2: %d", (int)st);
  } else {
    CHECK(0, "unknown mode %s", mode);
  }
  sm_pool_free(pool);
  sm_free(g);
  CHECK_NO_CHILDREN("end");
  printf("test_omp %s %s: ok\n", g_backend_name, mode);
  return 0;
}
