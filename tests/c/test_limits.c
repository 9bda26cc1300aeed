/* Resource limits and the privacy of shared memory (issue 6).  Usage: test_limits <case>
 * nproc1, nproc2: in a subprocess that cannot start processes or threads (RLIMIT_NPROC 1, resp. 2, which
 *    the kernel does not enforce for root: as root the subprocess first becomes `nobody` (uid/gid
 *    65534); a probe fork()/pthread_create() must fail, else the case is skipped with exit code 77):
 *    - process pool: sm_map returns SM_ERR_NOMEM with a message that says fork failed, no job ran in
 *      the caller (no serial fallback; nproc1: no job ran at all, reduce never ran), no child left;
 *      sm_parallel the same; the pool says the same at the next map (no hang, no half state);
 *    - sm_pool_new(2, SM_BACKEND_THREAD) returns NULL with a message about the worker thread, and no
 *      thread is left (nproc2: the one thread that could start is stopped again);
 *    - sm_argsort (2-worker pool and NULL pool; 300,000 random/skewed/equal doubles and int32) still
 *      returns SM_OK with exactly the stable reference order, its threads' work done by the caller
 *      (nproc2: by the one thread that starts and the caller);
 *    - sm_fromfile of a 10 MiB file (several reader threads) returns the exact contents;
 *    - the serial backend still works.
 * as: in a subprocess with RLIMIT_AS at the current address-space size + 48 MiB: sm_empty(1 GiB)
 *    returns NULL with a message, 1 MiB and 16 MiB blocks still work (20 times), sm_argsort whose work
 *    buffers do not fit returns SM_ERR_NOMEM with a message, sm_fromfile of a 200 MB (sparse) file
 *    returns NULL with a message, and a process map still runs; then with RLIMIT_AS at the current
 *    size (no headroom): sm_empty, sm_map, sm_pool_new and sm_argsort each work or fail with a message
 *    (SM_ERR_NOMEM), and nothing crashes.
 * shm: no named shared memory: in a subprocess with a private /dev/shm (a new mount namespace with its
 *    own tmpfs there, when that is allowed; else the real /dev/shm, which another program could change
 *    meanwhile), maps, map_ex, regions with barriers and loops, critical and ordered sections on every
 *    backend, sm_empty blocks, sm_argsort and sm_fromfile leave the listing of /dev/shm exactly as it
 *    was -- checked while all of them are alive (also from inside a job, a reduce and a region member)
 *    and after.  Also: no descriptor of the caller points into /dev/shm, no System V segment was created
 *    by it, and every shared mapping it has is anonymous (a named one would have to be unlinked and
 *    0600). */
#include "testutil.h"

#include <grp.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define SKIP 77

/* ------------------------------------------------------------------ helpers */

typedef struct {
  atomic_int jobs;       /* jobs that ran */
  atomic_int in_caller;  /* jobs / region members that ran in the calling process */
  atomic_int regions;    /* region members that ran */
  int caller;            /* pid of the caller */
  atomic_int shm_bad;    /* /dev/shm differed when looked at from a job / reduce / member */
  char shm_msg[512];
} rec_t;

static rec_t *g_rec;

static int work_rec(void *ctx, size_t job, void *result) {
  (void)ctx;
  atomic_fetch_add(&g_rec->jobs, 1);
  if (getpid() == g_rec->caller) atomic_fetch_add(&g_rec->in_caller, 1);
  *(size_t *)result = job;
  return 0;
}

static int reduce_count(void *ctx, size_t job, void *result) {
  (void)job;
  (void)result;
  (*(int *)ctx)++;
  return 0;
}

static int region_rec(void *ctx) {
  (void)ctx;
  atomic_fetch_add(&g_rec->regions, 1);
  if (getpid() == g_rec->caller) atomic_fetch_add(&g_rec->in_caller, 1);
  return 0;
}

static void write_pattern_file(const char *path, size_t bytes) {
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
  uint32_t buf[4096];
  for (size_t at = 0; at < bytes; at += sizeof buf) {
    for (size_t i = 0; i < 4096; i++) buf[i] = hash32((uint32_t)(at / 4 + i));
    size_t len = bytes - at < sizeof buf ? bytes - at : sizeof buf;
    CHECK(write(fd, buf, len) == (ssize_t)len, "write %s: %s", path, strerror(errno));
  }
  CHECK(fchmod(fd, 0644) == 0, "fchmod"); /* readable by the unprivileged subprocess */
  close(fd);
}

static void check_pattern(const uint32_t *p, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    CHECK(p[i] == hash32((uint32_t)i), "%s: item %zu is 0x%08x, the file has 0x%08x", what, i, p[i], hash32((uint32_t)i));
}

/* stable reference order: by key, then by index */
typedef struct {
  double k;
  int64_t i;
} kd_t;
static int cmp_kd(const void *a, const void *b) {
  const kd_t *x = (const kd_t *)a, *y = (const kd_t *)b;
  if (x->k != y->k) return x->k < y->k ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

static int64_t *reference_order(const double *k, size_t n) {
  kd_t *v = (kd_t *)malloc(n * sizeof *v);
  int64_t *r = (int64_t *)malloc(n * sizeof *r);
  CHECK(v && r, "malloc");
  for (size_t i = 0; i < n; i++) v[i] = (kd_t){k[i], (int64_t)i};
  qsort(v, n, sizeof *v, cmp_kd);
  for (size_t i = 0; i < n; i++) r[i] = v[i].i;
  free(v);
  return r;
}

#define NSORT 300000
/* kind 0: random; 1: skewed (most keys share their top bits: the parallel partition recurses);
 * 2: all equal */
static void make_keys(double *k, size_t n, int kind) {
  for (size_t i = 0; i < n; i++) {
    uint32_t h = hash32((uint32_t)i * 2654435761u + (uint32_t)kind);
    k[i] = kind == 0 ? (double)h / 7.0 - 3e8 : kind == 1 ? (h % 4 ? 1000.0 + (double)(h % 1000) : (double)h) : 5.0;
  }
}

static void check_argsort(sm_pool *pool, const char *what) {
  double *k = (double *)malloc(NSORT * sizeof *k);
  int32_t *k32 = (int32_t *)malloc(NSORT * sizeof *k32);
  int64_t *out = (int64_t *)malloc(NSORT * sizeof *out);
  CHECK(k && k32 && out, "malloc");
  for (int kind = 0; kind < 3; kind++) {
    make_keys(k, NSORT, kind);
    int64_t *ref = reference_order(k, NSORT);
    for (size_t i = 0; i < NSORT; i++) out[i] = -1;
    sm_status st = sm_argsort(pool, k, NSORT, SM_DTYPE_F64, out);
    CHECK(st == SM_OK, "%s: sm_argsort (f64, kind %d) when no thread can be started returned %s (%s); expected SM_OK, "
          "the work done by the calling thread", what, kind, sm_status_str(st), last_err());
    for (size_t i = 0; i < NSORT; i++)
      CHECK(out[i] == ref[i], "%s: sm_argsort (f64, kind %d): out[%zu] = %lld, the stable order has %lld", what, kind,
            i, (long long)out[i], (long long)ref[i]);
    /* the same order as int32 keys (kinds 1 and 2 are exact integers; kind 0 truncated, so redo it) */
    for (size_t i = 0; i < NSORT; i++) {
      k32[i] = (int32_t)(k[i] / 4.0);
      k[i] = (double)k32[i];
    }
    free(ref);
    ref = reference_order(k, NSORT);
    st = sm_argsort(pool, k32, NSORT, SM_DTYPE_I32, out);
    CHECK(st == SM_OK, "%s: sm_argsort (i32, kind %d): %s (%s)", what, kind, sm_status_str(st), last_err());
    for (size_t i = 0; i < NSORT; i++)
      CHECK(out[i] == ref[i], "%s: sm_argsort (i32, kind %d): out[%zu] = %lld, the stable order has %lld", what, kind,
            i, (long long)out[i], (long long)ref[i]);
    free(ref);
  }
  free(k);
  free(k32);
  free(out);
}

/* ------------------------------------------------------------------ RLIMIT_NPROC */

static void case_nproc(int limit) {
  char path[] = "/tmp/sm_test_limits_XXXXXX";
  make_temp_file(path);
  const size_t fbytes = 10u << 20;
  write_pattern_file(path, fbytes);
  pid_t pid = fork_subtest(60);
  if (pid == 0) {
    if (geteuid() == 0) {
      /* root is exempt from RLIMIT_NPROC: become an ordinary user */
      if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
        printf("SKIP: cannot switch to uid/gid 65534 to make RLIMIT_NPROC effective: %s\n", strerror(errno));
        _exit(SKIP);
      }
    }
    struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
    CHECK(setrlimit(RLIMIT_NPROC, &rl) == 0, "setrlimit(RLIMIT_NPROC, %d): %s", limit, strerror(errno));
    /* probes: the limit must really stop a (second) process and a (second) thread */
    int forks_ok = 0;
    pid_t probe[2] = {0, 0};
    for (int i = 0; i < limit; i++) {
      probe[i] = fork();
      if (probe[i] == 0) {
        msleep(300);
        _exit(0);
      }
      if (probe[i] > 0) forks_ok++;
    }
    int fork_errno = errno;
    for (int i = 0; i < limit; i++)
      if (probe[i] > 0) waitpid(probe[i], NULL, 0);
    if (forks_ok >= limit) {
      printf("SKIP: RLIMIT_NPROC %d is not enforced here (uid %d could fork %d processes)\n", limit, (int)getuid(),
             forks_ok);
      _exit(SKIP);
    }
    printf("RLIMIT_NPROC %d as uid %d: %d of %d probe forks succeeded, then: %s\n", limit, (int)getuid(), forks_ok,
           limit, strerror(fork_errno));
    int tasks0 = count_tasks();
    CHECK(tasks0 == 1, "the subprocess has %d threads", tasks0);

    /* process backend: no worker can (all) be started */
    memset(g_rec, 0, sizeof *g_rec);
    g_rec->caller = (int)getpid();
    sm_pool *pp = sm_pool_new(2, SM_BACKEND_PROCESS);
    CHECK(pp != NULL, "sm_pool_new(2, process) failed: %s (a process pool forks only at a map)", last_err());
    for (int r = 0; r < 3; r++) {
      int nreduced = 0;
      sm_status st = sm_map(pp, 20, work_rec, reduce_count, sizeof(size_t), &nreduced);
      char msg[512];
      snprintf(msg, sizeof msg, "%s", last_err());
      if (r == 0) printf("sm_map, process backend: %s \"%s\"; %d job(s) ran\n", sm_status_str(st), msg,
                         atomic_load(&g_rec->jobs));
      CHECK(st == SM_ERR_NOMEM, "RLIMIT_NPROC %d: sm_map (process backend, map %d) returned %s (%s), expected "
            "SM_ERR_NOMEM", limit, r, sm_status_str(st), msg);
      CHECK(icontains(msg, "fork"), "the SM_ERR_NOMEM message should say that fork failed: \"%s\"", msg);
      CHECK(atomic_load(&g_rec->in_caller) == 0, "%d job(s) ran in the caller: a silent serial fallback",
            atomic_load(&g_rec->in_caller));
      if (limit == 1) {
        CHECK(atomic_load(&g_rec->jobs) == 0, "no worker could start, yet %d job(s) ran", atomic_load(&g_rec->jobs));
        CHECK(nreduced == 0, "no job ran, yet reduce ran %d times", nreduced);
      }
      CHECK_NO_CHILDREN("after sm_map failed to fork");
    }
    sm_status st = sm_parallel(pp, region_rec, NULL);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", last_err());
    printf("sm_parallel, process backend: %s \"%s\"\n", sm_status_str(st), msg);
    CHECK(st == SM_ERR_NOMEM, "RLIMIT_NPROC %d: sm_parallel (process backend) returned %s (%s), expected SM_ERR_NOMEM",
          limit, sm_status_str(st), msg);
    CHECK(icontains(msg, "fork"), "the sm_parallel SM_ERR_NOMEM message should say that fork failed: \"%s\"", msg);
    CHECK(atomic_load(&g_rec->in_caller) == 0, "a region member ran in the caller: a silent serial fallback");
    if (limit == 1) CHECK(atomic_load(&g_rec->regions) == 0, "%d region member(s) ran", atomic_load(&g_rec->regions));
    CHECK_NO_CHILDREN("after sm_parallel failed to fork");

    /* thread backend: the pool cannot start its threads */
    sm_pool *tp = sm_pool_new(2, SM_BACKEND_THREAD);
    snprintf(msg, sizeof msg, "%s", last_err());
    printf("sm_pool_new(2, thread): %p \"%s\"\n", (void *)tp, msg);
    CHECK(tp == NULL, "RLIMIT_NPROC %d: sm_pool_new(2, SM_BACKEND_THREAD) succeeded", limit);
    CHECK(icontains(msg, "thread"), "the message should say a worker thread could not start: \"%s\"", msg);
    long long t0 = now_ms();
    while (count_tasks() != 1 && now_ms() - t0 < 5000) msleep(5);
    CHECK(count_tasks() == 1, "%d threads after the failed sm_pool_new (the ones started must be stopped)",
          count_tasks());

    /* sm_argsort and sm_fromfile: same results, the work done by the threads that do start */
    check_argsort(pp, "2-worker pool");
    check_argsort(NULL, "NULL pool");
    size_t count = SIZE_MAX;
    uint32_t *data = (uint32_t *)sm_fromfile(pp, path, 0, 4, &count);
    CHECK(data != NULL, "RLIMIT_NPROC %d: sm_fromfile of a 10 MiB file failed: %s", limit, last_err());
    CHECK(count == fbytes / 4, "sm_fromfile read %zu items, the file has %zu", count, fbytes / 4);
    check_pattern(data, count, "sm_fromfile under RLIMIT_NPROC");
    sm_free(data);
    count = 1000;
    data = (uint32_t *)sm_fromfile(NULL, path, 4 * 12345, 4, &count);
    CHECK(data != NULL && count == 1000, "sm_fromfile (NULL pool, 1000 items): %s", last_err());
    for (size_t i = 0; i < count; i++) CHECK(data[i] == hash32((uint32_t)(12345 + i)), "sm_fromfile item %zu", i);
    sm_free(data);
    CHECK(count_tasks() == 1, "%d threads left after sm_argsort / sm_fromfile", count_tasks());

    /* the serial backend does not need processes or threads */
    sm_pool *sp = new_pool(2, SM_BACKEND_SERIAL);
    memset(g_rec, 0, sizeof *g_rec);
    g_rec->caller = (int)getpid();
    int nreduced = 0;
    CHECK_STATUS(sm_map(sp, 20, work_rec, reduce_count, sizeof(size_t), &nreduced), SM_OK, "serial map");
    CHECK(nreduced == 20 && atomic_load(&g_rec->jobs) == 20, "serial map: %d reduced, %d ran", nreduced,
          atomic_load(&g_rec->jobs));
    sm_pool_free(sp);
    sm_pool_free(pp);
    fflush(stdout);
    _exit(0);
  }
  int code = wait_sub(pid, "RLIMIT_NPROC");
  unlink(path);
  if (code == SKIP) {
    printf("test_limits[nproc%d]: SKIPPED (see above)\n", limit);
    exit(SKIP);
  }
  CHECK(code == 0, "RLIMIT_NPROC %d subprocess failed (exit code %d, see above)", limit, code);
}

/* ------------------------------------------------------------------ RLIMIT_AS */

static long vm_size_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  CHECK(f, "fopen /proc/self/status");
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %ld kB", &kb) == 1) break;
  fclose(f);
  CHECK(kb > 0, "no VmSize in /proc/self/status");
  return kb;
}

/* Touches `kb` KiB of stack, so that the calls below do not need to grow it once RLIMIT_AS is set. */
static __attribute__((noinline)) void touch_stack(int kb) {
  volatile char buf[1024];
  memset((char *)buf, 1, sizeof buf);
  if (kb > 1) touch_stack(kb - 1);
}

/* What a call under the tiny limit gave: success, or a failure with a message. Written with write(2)
 * from a static buffer (stdio could need memory). */
static char g_line[1024];
static void say(const char *what, int ok, int expected_fail) {
  const char *e = ok ? "" : last_err();
  int n = snprintf(g_line, sizeof g_line, "  RLIMIT_AS tiny: %s: %s%s%s%s\n", what, ok ? "ok" : "failed: \"",
                   e, ok ? "" : "\"", !ok && !e[0] ? " (NO MESSAGE)" : "");
  ssize_t w = write(1, g_line, (size_t)n);
  (void)w;
  if (!ok && !e[0]) _exit(40);       /* a failure must come with a message */
  if (ok && expected_fail) _exit(41); /* e.g. 1 GiB cannot fit */
}

/* RLIMIT_AS at the current size (no headroom, up to the page): every call either works or fails with
 * a message; none crashes the process. */
static void case_as_tiny(void) {
  pid_t pid = fork_subtest(30);
  if (pid == 0) {
    sm_pool *pp = new_pool(2, SM_BACKEND_PROCESS);
    static double k[100000];
    static int64_t out[100000];
    for (int i = 0; i < 100000; i++) k[i] = (double)(i % 77);
    memset(g_rec, 0, sizeof *g_rec);
    g_rec->caller = (int)getpid();
    touch_stack(256);
    long kb = vm_size_kb();
    struct rlimit rl = {(rlim_t)kb * 1024, (rlim_t)kb * 1024};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS): %s", strerror(errno));
    say("sm_empty(1 GiB)", sm_empty(1u << 30, 1) != NULL, 1);
    void *m = sm_empty(1u << 20, 1);
    say("sm_empty(1 MiB)", m != NULL, 0);
    sm_free(m);
    int nreduced = 0;
    sm_status st = sm_map(pp, 20, work_rec, reduce_count, sizeof(size_t), &nreduced);
    say("sm_map (process backend)", st == SM_OK, 0);
    if (st != SM_OK && st != SM_ERR_NOMEM) _exit(42);
    if (st == SM_OK && (nreduced != 20 || atomic_load(&g_rec->jobs) != 20)) _exit(43);
    if (atomic_load(&g_rec->in_caller) != 0) _exit(44);
    sm_pool *tp = sm_pool_new(2, SM_BACKEND_THREAD);
    say("sm_pool_new(2, thread)", tp != NULL, 0);
    sm_pool_free(tp);
    st = sm_argsort(NULL, k, 100000, SM_DTYPE_F64, out);
    say("sm_argsort(100000)", st == SM_OK, 0);
    if (st != SM_OK && st != SM_ERR_NOMEM) _exit(45);
    sm_pool_free(pp);
    _exit(0);
  }
  int code = wait_sub(pid, "RLIMIT_AS (tiny)");
  CHECK(code == 0, "RLIMIT_AS at the current size: %s (exit code %d)",
        code == 40   ? "a call failed without a message"
        : code == 41 ? "sm_empty(1 GiB) succeeded"
        : code == 42 || code == 45 ? "a call failed with another status than SM_ERR_NOMEM"
        : code == 43 ? "a map returned SM_OK without running every job"
        : code == 44 ? "jobs ran in the caller"
                     : "see above",
        code);
}

static void case_as(void) {
  char path[] = "/tmp/sm_test_limits_as_XXXXXX";
  make_temp_file(path);
  CHECK(truncate(path, 200l << 20) == 0, "truncate: %s", strerror(errno)); /* sparse 200 MB */
  pid_t pid = fork_subtest(60);
  if (pid == 0) {
    const size_t n = 4u << 20; /* 4 Mi doubles: argsort needs ~96 MiB of work buffers */
    double *keys = (double *)malloc(n * sizeof *keys);
    int64_t *out = (int64_t *)malloc(n * sizeof *out);
    CHECK(keys && out, "malloc");
    for (size_t i = 0; i < n; i++) keys[i] = (double)hash32((uint32_t)i), out[i] = 0;
    sm_pool *pool = new_pool(2, SM_BACKEND_PROCESS);
    long kb = vm_size_kb();
    rlim_t lim = (rlim_t)kb * 1024 + (48u << 20);
    struct rlimit rl = {lim, lim};
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS): %s", strerror(errno));
    printf("RLIMIT_AS = %ld kB (address space now %ld kB)\n", (long)(lim / 1024), kb);

    void *big = sm_empty(1u << 30, 1);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", last_err());
    printf("sm_empty(1 GiB): %p \"%s\"\n", big, msg);
    CHECK(big == NULL, "sm_empty(1 GiB) succeeded under RLIMIT_AS of %ld kB", (long)(lim / 1024));
    CHECK(msg[0] && (has_number(msg, 1l << 30) || icontains(msg, "memory")),
          "sm_empty(1 GiB) failed without a message naming the size or memory: \"%s\"", msg);
    /* A persistent pool needs the shared heap, which this address space cannot hold: refused now,
     * with the reason, rather than a crash later. */
    sm_pool *pp = sm_pool_new(2, SM_BACKEND_PERSISTENT);
    snprintf(msg, sizeof msg, "%s", last_err());
    printf("sm_pool_new(persistent): %p \"%s\"\n", (void *)pp, msg);
    CHECK(pp == NULL && sm_last_status() == SM_ERR_NOMEM, "a persistent pool under RLIMIT_AS: %p, %s", (void *)pp,
          sm_status_str(sm_last_status()));
    CHECK(icontains(msg, "heap") && icontains(msg, "RLIMIT_AS"),
          "the refusal of a persistent pool should name the shared heap and RLIMIT_AS: \"%s\"", msg);
    for (int r = 0; r < 20; r++) {
      size_t sz = r % 2 ? 16u << 20 : 1u << 20;
      char *p = (char *)sm_empty(sz, 1);
      CHECK(p != NULL, "sm_empty(%zu) (round %d) failed under RLIMIT_AS after a failed large one: %s", sz, r,
            last_err());
      memset(p, 0x5a, sz);
      sm_free(p);
      CHECK(sm_empty(1u << 30, 1) == NULL, "sm_empty(1 GiB) succeeded in round %d", r);
    }
    sm_status st = sm_argsort(pool, keys, n, SM_DTYPE_F64, out);
    snprintf(msg, sizeof msg, "%s", last_err());
    printf("sm_argsort(4 Mi doubles): %s \"%s\"\n", sm_status_str(st), msg);
    CHECK(st == SM_ERR_NOMEM, "sm_argsort needing ~96 MiB under a 48 MiB headroom returned %s (%s), expected "
          "SM_ERR_NOMEM", sm_status_str(st), msg);
    CHECK(msg[0], "sm_argsort SM_ERR_NOMEM without a message");
    size_t count = SIZE_MAX;
    void *f = sm_fromfile(pool, path, 0, 8, &count);
    snprintf(msg, sizeof msg, "%s", last_err());
    printf("sm_fromfile(200 MB): %p \"%s\"\n", f, msg);
    CHECK(f == NULL, "sm_fromfile of 200 MB succeeded under a 48 MiB headroom");
    /* (the header promises a message naming the path for file problems; this one is about memory) */
    CHECK(msg[0] && (icontains(msg, "memory") || strstr(msg, path)),
          "sm_fromfile of 200 MB under RLIMIT_AS failed without a message about memory: \"%s\"", msg);
    /* A result or per-worker result within SM_MAX_RESULT_SIZE that cannot be allocated now is
     * SM_ERR_NOMEM (above the limit it would be SM_ERR_INVALID), on every backend, and nothing runs. */
    const sm_backend backends[3] = {SM_BACKEND_PROCESS, SM_BACKEND_THREAD, SM_BACKEND_SERIAL};
    for (int k = 0; k < 3; k++) {
      sm_pool *bp = k == 0 ? pool : new_pool(2, backends[k]);
      memset(g_rec, 0, sizeof *g_rec);
      int nred = 0;
      st = sm_map(bp, 10, work_rec, reduce_count, (size_t)SM_MAX_RESULT_SIZE, &nred);
      CHECK(st == SM_ERR_NOMEM && icontains(last_err(), "result_size"),
            "backend %d: sm_map with result_size SM_MAX_RESULT_SIZE under RLIMIT_AS: %s (%s), expected "
            "SM_ERR_NOMEM", (int)backends[k], sm_status_str(st), last_err());
      sm_map_opts o = default_opts();
      o.wresult_size = (size_t)1 << 30;
      st = sm_map_ex(bp, 10, work_rec, NULL, 0, &nred, &o);
      CHECK(st == SM_ERR_NOMEM && sm_last_status() == SM_ERR_NOMEM,
            "backend %d: sm_map_ex with wresult_size 1 GiB under RLIMIT_AS: %s (%s), expected SM_ERR_NOMEM",
            (int)backends[k], sm_status_str(st), last_err());
      CHECK(atomic_load(&g_rec->jobs) == 0 && nred == 0, "backend %d: a refused map ran %d jobs",
            (int)backends[k], atomic_load(&g_rec->jobs));
      if (k) sm_pool_free(bp);
    }
    memset(g_rec, 0, sizeof *g_rec);
    g_rec->caller = (int)getpid();
    int nreduced = 0;
    CHECK_STATUS(sm_map(pool, 50, work_rec, reduce_count, sizeof(size_t), &nreduced), SM_OK,
                 "a process map under RLIMIT_AS");
    CHECK(nreduced == 50 && atomic_load(&g_rec->jobs) == 50 && atomic_load(&g_rec->in_caller) == 0,
          "map under RLIMIT_AS: %d reduced, %d ran, %d in the caller", nreduced, atomic_load(&g_rec->jobs),
          atomic_load(&g_rec->in_caller));
    CHECK_NO_CHILDREN("after a map under RLIMIT_AS");
    sm_pool_free(pool);
    fflush(stdout);
    _exit(0);
  }
  int code = wait_sub(pid, "RLIMIT_AS");
  unlink(path);
  CHECK(code == 0, "RLIMIT_AS subprocess failed (exit code %d, see above)", code);
  case_as_tiny();
}

/* ------------------------------------------------------------------ /dev/shm */

#define MAXNAMES 4096
typedef struct {
  int n;
  char names[MAXNAMES][80]; /* "name mode uid" */
} listing_t;

static const char *g_shm_dir = "/dev/shm";

/* The sorted listing of /dev/shm (names with mode and owner); returns 0 if it cannot be read. */
static int list_shm(listing_t *l) {
  l->n = 0;
  DIR *d = opendir(g_shm_dir);
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && l->n < MAXNAMES) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", g_shm_dir, e->d_name);
    if (stat(p, &sb) != 0) memset(&sb, 0, sizeof sb);
    snprintf(l->names[l->n++], 80, "%.50s %o %d", e->d_name, (unsigned)(sb.st_mode & 07777), (int)sb.st_uid);
  }
  closedir(d);
  qsort(l->names, (size_t)l->n, 80, (int (*)(const void *, const void *))strcmp);
  return 1;
}

static listing_t *g_before;

/* "" when the listing equals g_before, else a description of the first difference. */
static void diff_shm(char *out, size_t cap) {
  static listing_t now; /* the caller's copy; workers have their own (copy-on-write) */
  out[0] = 0;
  if (!list_shm(&now)) {
    snprintf(out, cap, "cannot read %s", g_shm_dir);
    return;
  }
  for (int i = 0; i < now.n; i++) {
    int found = 0;
    for (int j = 0; j < g_before->n && !found; j++) found = strcmp(now.names[i], g_before->names[j]) == 0;
    if (!found) {
      snprintf(out, cap, "new entry in %s: \"%s\" (name mode uid)", g_shm_dir, now.names[i]);
      return;
    }
  }
  if (now.n != g_before->n) snprintf(out, cap, "%s had %d entries, now %d", g_shm_dir, g_before->n, now.n);
}

static void note_shm(const char *where) {
  char d[400];
  diff_shm(d, sizeof d);
  if (d[0] && atomic_fetch_add(&g_rec->shm_bad, 1) == 0)
    snprintf(g_rec->shm_msg, sizeof g_rec->shm_msg, "%s: %s", where, d);
}

static sm_pool *g_pool;

static int work_shm(void *ctx, size_t job, void *result) {
  (void)ctx;
  JCHECK(sm_critical_enter(g_pool) == SM_OK, "critical: %s", last_err());
  JCHECK(sm_critical_leave(g_pool) == SM_OK, "critical: %s", last_err());
  JCHECK(sm_ordered_enter(g_pool) == SM_OK, "ordered: %s", last_err());
  JCHECK(sm_ordered_leave(g_pool) == SM_OK, "ordered: %s", last_err());
  if (job == 37) note_shm("inside a job");
  *(size_t *)result = job;
  return 0;
}

static int reduce_shm(void *ctx, size_t job, void *result) {
  (void)result;
  if (job == 100) note_shm("inside reduce");
  (*(int *)ctx)++;
  return 0;
}

static int fini_shm(void *ctx, int worker, void *wresult) {
  (void)ctx;
  *(int *)wresult = worker + 1;
  return 0;
}

static int region_shm(void *ctx) {
  atomic_long *sum = (atomic_long *)ctx;
  size_t lo, hi;
  while (sm_for_next(g_pool, 0, 1000, SM_SCHEDULE_DYNAMIC, 7, 0, &lo, &hi))
    for (size_t i = lo; i < hi; i++) atomic_fetch_add(sum, (long)i);
  if (sm_barrier(g_pool) != SM_OK) return 5;
  if (sm_master()) note_shm("inside a region member");
  sm_critical_enter(g_pool);
  sm_critical_leave(g_pool);
  return sm_barrier(g_pool) == SM_OK ? 0 : 6;
}

/* Descriptors into /dev/shm, System V segments created by us, shared mappings that are named. */
static void check_private(const char *when) {
  DIR *d = opendir("/proc/self/fd");
  CHECK(d, "opendir /proc/self/fd");
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char p[300], target[512];
    snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
    ssize_t r = readlink(p, target, sizeof target - 1);
    if (r <= 0) continue;
    target[r] = 0;
    CHECK(strncmp(target, "/dev/shm/", 9) != 0, "%s: descriptor %s points to %s (named shared memory)", when, e->d_name,
          target);
  }
  closedir(d);
  FILE *f = fopen("/proc/sysvipc/shm", "r");
  if (f) {
    char line[512];
    int me = (int)getpid();
    while (fgets(line, sizeof line, f)) {
      long key, id, perms, size;
      int cpid;
      if (sscanf(line, "%ld %ld %lo %ld %d", &key, &id, &perms, &size, &cpid) == 5)
        CHECK(cpid != me, "%s: a System V shared memory segment (id %ld, perms %lo) was created by the caller", when,
              id, perms);
    }
    fclose(f);
  }
  f = fopen("/proc/self/maps", "r");
  CHECK(f, "fopen /proc/self/maps");
  char line[1024];
  int shared = 0;
  while (fgets(line, sizeof line, f)) {
    char range[64], perms[8], path[600] = "";
    unsigned long off;
    char dev[16];
    unsigned long inode;
    if (sscanf(line, "%63s %7s %lx %15s %lu %599[^\n]", range, perms, &off, dev, &inode, path) < 5) continue;
    if (perms[3] != 's') continue;
    shared++;
    char *name = path;
    while (*name == ' ') name++;
    CHECK(strncmp(name, "/SYSV", 5) != 0, "%s: System V shared memory is mapped: %s", when, line);
    if (strncmp(name, "/dev/shm/", 9) == 0) {
      /* named POSIX shared memory: allowed only when unlinked at once and private to the user */
      CHECK(strstr(name, "(deleted)"), "%s: a named shared memory segment is mapped and still linked: %s", when, line);
      char mf[128];
      struct stat sb;
      snprintf(mf, sizeof mf, "/proc/self/map_files/%s", range);
      CHECK(stat(mf, &sb) == 0 && (sb.st_mode & 077) == 0, "%s: named shared memory %s has mode %o (not 0600)", when,
            name, (unsigned)(sb.st_mode & 0777));
    }
  }
  fclose(f);
  printf("%s: %d shared mapping(s), all anonymous\n", when, shared);
}

static void case_shm(void) {
  char path[] = "/tmp/sm_test_limits_shm_XXXXXX";
  make_temp_file(path);
  write_pattern_file(path, 10u << 20);
  pid_t pid = fork_subtest(80);
  if (pid == 0) {
    int priv = unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
               mount("sm_test_shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") == 0;
    printf("/dev/shm: %s\n", priv ? "a private tmpfs in a new mount namespace (only this test's own entries appear)"
                                  : "the real one (no private mount namespace here: other programs could change it)");
    g_before = (listing_t *)malloc(sizeof *g_before);
    CHECK(g_before, "malloc");
    CHECK(list_shm(g_before), "cannot list %s: %s", g_shm_dir, strerror(errno));
    memset(g_rec, 0, sizeof *g_rec);
    g_rec->caller = (int)getpid();
    check_private("before");
    void *blocks[10];
    for (int i = 0; i < 10; i++) blocks[i] = must_empty(1 + (size_t)i * 100000, 8);
    size_t count = SIZE_MAX;
    void *file = sm_fromfile(NULL, path, 0, 4, &count);
    CHECK(file, "sm_fromfile: %s", last_err());
    double *k = (double *)must_empty(NSORT, sizeof(double));
    int64_t *out = (int64_t *)must_empty(NSORT, sizeof(int64_t));
    make_keys(k, NSORT, 0);
    CHECK_STATUS(sm_argsort(NULL, k, NSORT, SM_DTYPE_F64, out), SM_OK, "sm_argsort");
    sm_backend bs[3] = {SM_BACKEND_PROCESS, SM_BACKEND_THREAD, SM_BACKEND_SERIAL};
    sm_pool *pools[3];
    for (int i = 0; i < 3; i++) {
      g_pool = pools[i] = new_pool(2, bs[i]);
      int nred = 0;
      CHECK_STATUS(sm_map(g_pool, 200, work_shm, reduce_shm, sizeof(size_t), &nred), SM_OK, "map %d", i);
      CHECK(nred == 200, "reduced %d", nred);
      sm_map_opts o = default_opts();
      o.worker_fini = fini_shm;
      o.wresult_size = 64;
      CHECK_STATUS(sm_map_ex(g_pool, 200, work_shm, NULL, 16, NULL, &o), SM_OK, "map_ex %d", i);
      atomic_long *sum = (atomic_long *)must_empty(1, sizeof(atomic_long));
      CHECK_STATUS(sm_parallel(g_pool, region_shm, sum), SM_OK, "region %d", i);
      CHECK(atomic_load(sum) == 999 * 1000 / 2, "region sum %ld", (long)atomic_load(sum));
      sm_free(sum);
    }
    CHECK(atomic_load(&g_rec->shm_bad) == 0, "named shared memory seen during a map: %s", g_rec->shm_msg);
    note_shm("with pools, sm_empty blocks, fromfile memory alive");
    CHECK(atomic_load(&g_rec->shm_bad) == 0, "%s", g_rec->shm_msg);
    check_private("everything alive");
    for (int i = 0; i < 3; i++) sm_pool_free(pools[i]);
    for (int i = 0; i < 10; i++) sm_free(blocks[i]);
    sm_free(file);
    sm_free(k);
    sm_free(out);
    note_shm("after everything was freed");
    CHECK(atomic_load(&g_rec->shm_bad) == 0, "%s", g_rec->shm_msg);
    check_private("after");
    printf("%s: %d entries before, the same after\n", g_shm_dir, g_before->n);
    fflush(stdout);
    _exit(0);
  }
  int code = wait_sub(pid, "/dev/shm");
  unlink(path);
  CHECK(code == 0, "/dev/shm subprocess failed (exit code %d, see above)", code);
}

int main(int argc, char **argv) {
  const char *which = argc >= 2 ? argv[1] : "";
  g_backend_name = which;
  watchdog(100);
  jfail_init();
  g_rec = (rec_t *)must_empty(1, sizeof(rec_t));
  if (strcmp(which, "nproc1") == 0) case_nproc(1);
  else if (strcmp(which, "nproc2") == 0) case_nproc(2);
  else if (strcmp(which, "as") == 0) case_as();
  else if (strcmp(which, "shm") == 0) case_shm();
  else CHECK(0, "usage: test_limits nproc1|nproc2|as|shm (got \"%s\")", which);
  JCHECK_ALL_PASSED();
  printf("test_limits[%s]: OK\n", which);
  return 0;
}
