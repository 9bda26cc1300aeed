/* Helpers shared by the sharedmem C tests: backend argument, watchdog, /proc scans,
 * job-side checks recorded in shared memory, message matching. Header-only. */
#ifndef SM_TEST_UTIL_H
#define SM_TEST_UTIL_H
#include "check.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sharedmem.h>

/* The contract defines SM_STOP in sharedmem.h; test_header fails if it is missing. So that the
 * behavioural tests can still be built and run against such a header, fall back to its value. */
#ifndef SM_STOP
#define SM_STOP 1398034256
#endif

#define MAXW 64 /* upper bound on workers any test uses */

/* ---------------------------------------------------------------- backend argument */

static const char *g_backend_name = "?";

static inline sm_backend parse_backend(int argc, char **argv) {
  if (argc >= 2) {
    g_backend_name = argv[1];
    if (strcmp(argv[1], "process") == 0) return SM_BACKEND_PROCESS;
    if (strcmp(argv[1], "thread") == 0) return SM_BACKEND_THREAD;
    if (strcmp(argv[1], "serial") == 0) return SM_BACKEND_SERIAL;
    if (strcmp(argv[1], "persistent") == 0) return SM_BACKEND_PERSISTENT;
  }
  fprintf(stderr, "usage: %s process|thread|serial [mode]\n", argc ? argv[0] : "test");
  exit(2);
}

/* True for the backends whose workers are processes: forked at each call (process) or once per
 * pool (persistent). */
static inline int workers_are_processes(sm_backend b) {
  return b == SM_BACKEND_PROCESS || b == SM_BACKEND_PERSISTENT;
}

/* A job that does nothing and succeeds. */
static inline int work_nothing(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)job;
  (void)result;
  return 0;
}

/* ---------------------------------------------------------------- watchdog */

static void sm_test_watchdog_fired(int sig) {
  (void)sig;
  static const char m[] = "WATCHDOG: test did not finish in time (hang or deadlock) -> FAIL\n";
  ssize_t r = write(2, m, sizeof m - 1);
  (void)r;
  _exit(124);
}

/* alarm()-based watchdog; also disables core dumps (crash tests would be slow otherwise). */
static inline void watchdog(unsigned secs) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = sm_test_watchdog_fired;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  alarm(secs);
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);
  setvbuf(stdout, NULL, _IOLBF, 0);
}

/* ---------------------------------------------------------------- time, sleep */

static inline long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void msleep(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static inline void usleep_full(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static inline pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

static inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

/* Wait (bounded) until *a >= v. Returns 1 when reached, 0 on timeout. */
static inline int wait_atomic_ge(atomic_int *a, int v, long timeout_ms) {
  long long t0 = now_ms();
  while (atomic_load(a) < v) {
    if (now_ms() - t0 > timeout_ms) return 0;
    usleep_full(200);
  }
  return 1;
}

/* ---------------------------------------------------------------- /proc scans */

static inline int count_dir_entries(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* Open descriptors of this process (not counting the one opendir uses). */
static inline int count_fds(void) { return count_dir_entries("/proc/self/fd") - 1; }

/* Threads of this process. */
static inline int count_tasks(void) { return count_dir_entries("/proc/self/task"); }

/* Lines of /proc/self/maps (number of mappings). */
static inline int count_map_lines(void) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[8192];
  int n = 0;
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < r; i++)
      if (buf[i] == '\n') n++;
  close(fd);
  return n;
}

/* State letter and parent of a process from /proc/<pid>/stat; state 0 if it does not exist. */
static inline char proc_state(pid_t pid, pid_t *ppid_out) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (r <= 0) return 0;
  buf[r] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return 0;
  char st = 0;
  int ppid = 0;
  if (sscanf(p + 1, " %c %d", &st, &ppid) != 2) return 0;
  if (ppid_out) *ppid_out = ppid;
  return st;
}

/* The pids of the processes that ran jobs, kept in shared memory so a test can check afterwards
 * that none outlived the call. pids_note claims the first free slot and stores the pid with one
 * compare-and-swap: a worker the library kills at any instant leaves nothing or its pid, never a
 * claimed slot still holding 0 (kill(0, 0) would test our own process group and find a survivor).
 * Each process is noted once; slots fill from the front, so pids_count is the first free slot. */
typedef struct {
  atomic_int pid[MAXW];
} pids_t;

static inline void pids_note(pids_t *t) {
  int me = (int)getpid();
  for (int i = 0; i < MAXW; i++) {
    int seen = 0;
    if (atomic_compare_exchange_strong(&t->pid[i], &seen, me) || seen == me) return;
  }
}

static inline int pids_count(pids_t *t) {
  int n = 0;
  while (n < MAXW && atomic_load(&t->pid[n]) != 0) n++;
  return n;
}

/* True when `pid` is the zygote of a live persistent pool (it names itself sm-zygote): a child of
 * the caller from sm_pool_new to sm_pool_free, which the checks for leftover children leave out
 * (its workers are its children, not the caller's). */
static inline int is_pool_zygote(pid_t pid) {
  char path[64], comm[32] = "";
  snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t r = read(fd, comm, sizeof comm - 1);
  close(fd);
  return r > 0 && strncmp(comm, "sm-zygote\n", 10) == 0;
}

/* Number of processes whose parent is `parent`, live pool zygotes left out; *zombies gets how
 * many of them are zombies. */
static inline int count_children_of(pid_t parent, int *zombies) {
  DIR *d = opendir("/proc");
  int n = 0, z = 0;
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    pid_t pid = (pid_t)atoi(e->d_name), pp = 0;
    char st = proc_state(pid, &pp);
    if (st && pp == parent && !(st != 'Z' && is_pool_zygote(pid))) {
      n++;
      if (st == 'Z') z++;
    }
  }
  closedir(d);
  if (zombies) *zombies = z;
  return n;
}

static inline int count_children(int *zombies) { return count_children_of(getpid(), zombies); }

/* Processes (zombies included) whose parent is a live pool zygote of ours: the persistent pools'
 * workers, which must not pile up. */
static inline int count_pool_workers(void) {
  DIR *d = opendir("/proc");
  if (!d) return -1;
  pid_t me = getpid();
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    pid_t pid = (pid_t)atoi(e->d_name), parent = 0, grandparent = 0;
    if (!proc_state(pid, &parent) || !is_pool_zygote(parent)) continue;
    if (proc_state(parent, &grandparent) && grandparent == me) n++;
  }
  closedir(d);
  return n;
}

#define CHECK_NO_CHILDREN(where)                                                           \
  do {                                                                                     \
    int z_ = 0, n_ = count_children(&z_);                                                  \
    CHECK(n_ == 0 && z_ == 0, "%s: %d child process(es) (%d zombie(s)) of the caller remain " \
          "after sm_map returned; expected none",                                          \
          (where), n_, z_);                                                                \
  } while (0)

/* ---------------------------------------------------------------- messages */

static inline int icontains(const char *s, const char *sub) { return s && strcasestr(s, sub) != NULL; }

/* s contains the integer n as a whole number token (not part of a longer digit string). */
static inline int has_number(const char *s, long long n) {
  if (!s) return 0;
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", n);
  size_t L = strlen(buf);
  for (const char *p = s; (p = strstr(p, buf)) != NULL; p++) {
    int before_ok = (p == s) || !isdigit((unsigned char)p[-1]);
    if (n >= 0 && p != s && p[-1] == '-') before_ok = 0;
    int after_ok = !isdigit((unsigned char)p[L]);
    if (before_ok && after_ok) return 1;
  }
  return 0;
}

/* Copy of sm_last_error() (never NULL). */
static inline const char *last_err(void) {
  const char *e = sm_last_error();
  return e ? e : "(NULL!)";
}

/* ---------------------------------------------------------------- job-side checks */

/* Checks inside jobs cannot exit (in the process backend that would be a dead worker), so they
 * record the first failure in sm_empty memory and make the job return JOB_CHECK_FAILED. */
#define JOB_CHECK_FAILED 987654

typedef struct {
  atomic_int nfail;
  char msg[1024];
} jfail_t;

static jfail_t *g_jf;

static inline void jfail_init(void) {
  g_jf = (jfail_t *)sm_empty(1, sizeof(jfail_t));
  CHECK(g_jf != NULL, "sm_empty(1, %zu) failed: %s", sizeof(jfail_t), last_err());
}

__attribute__((format(printf, 4, 5))) static inline void jfail_record(const char *file, int line,
                                                                       const char *cond,
                                                                       const char *fmt, ...) {
  if (!g_jf) {
    fprintf(stderr, "%s:%d: JCHECK(%s) failed (jfail_init not called)\n", file, line, cond);
    return;
  }
  if (atomic_fetch_add(&g_jf->nfail, 1) == 0) {
    int n = snprintf(g_jf->msg, sizeof g_jf->msg, "%s:%d: JCHECK(%s) failed in a job (pid %d, tid %d, worker %d): ",
                     file, line, cond, (int)getpid(), (int)my_tid(), sm_worker_id());
    if (n < 0 || (size_t)n >= sizeof g_jf->msg) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_jf->msg + n, sizeof g_jf->msg - (size_t)n, fmt, ap);
    va_end(ap);
  }
}

#define JCHECK(cond, ...)                                         \
  do {                                                            \
    if (!(cond)) {                                                \
      jfail_record(__FILE__, __LINE__, #cond, __VA_ARGS__);       \
      return JOB_CHECK_FAILED;                                    \
    }                                                             \
  } while (0)

#define JCHECK_ALL_PASSED()                                                                      \
  CHECK(atomic_load(&g_jf->nfail) == 0, "%d job-side check(s) failed; first: %s",               \
        atomic_load(&g_jf->nfail), g_jf->msg)

#define JRESET() (atomic_store(&g_jf->nfail, 0), g_jf->msg[0] = 0)

/* Check the status of an sm_map (after the job-side checks). */
#define CHECK_STATUS(st, expected, ...)                                                          \
  do {                                                                                           \
    sm_status st_ = (st), ex_ = (expected);                                                      \
    char em_[1024];                                                                              \
    snprintf(em_, sizeof em_, "%s", last_err());                                                 \
    JCHECK_ALL_PASSED();                                                                         \
    if (st_ != ex_) {                                                                            \
      fprintf(stderr, "[backend %s] ", g_backend_name);                                          \
      fprintf(stderr, __VA_ARGS__);                                                              \
      fprintf(stderr, "\n");                                                                     \
    }                                                                                            \
    CHECK(st_ == ex_, "expected %s (%d), got %s (%d); sm_last_error()=\"%s\"", sm_status_str(ex_), \
          (int)ex_, sm_status_str(st_), (int)st_, em_);                                         \
  } while (0)

/* Create a pool and fail clearly if that does not work. */
/* Forks a child for a sub-test that must run in a process of its own. Stdio is flushed first, so
 * the child cannot write the parent's pending output again; the child's watchdog fires after
 * `secs`. Returns 0 in the child and the child's pid in the parent. */
static inline pid_t fork_subtest(unsigned secs) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  CHECK(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) alarm(secs);
  return pid;
}

/* Waits for a fork_subtest child; returns its exit code, fails on a signal (SIGALRM: it hung). */
static inline int wait_sub(pid_t pid, const char *what) {
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
  CHECK(WIFEXITED(st), "%s subprocess died of signal %d%s", what, WTERMSIG(st),
        WTERMSIG(st) == SIGALRM ? " (it hung)" : "");
  return WEXITSTATUS(st);
}

/* Creates an empty temporary file from the mkstemp template `path` (filled in place). */
static inline void make_temp_file(char *path) {
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
  close(fd);
}

static inline sm_pool *new_pool(int nworkers, sm_backend b) {
  sm_pool *p = sm_pool_new(nworkers, b);
  CHECK(p != NULL, "sm_pool_new(%d, %d) failed: %s", nworkers, (int)b, last_err());
  return p;
}

static inline void *must_empty(size_t count, size_t itemsize) {
  void *p = sm_empty(count, itemsize);
  CHECK(p != NULL, "sm_empty(%zu, %zu) failed: %s", count, itemsize, last_err());
  return p;
}

/* Map options with every field zero (defaults, NULL hooks) and `size` set, to fill in. */
/* A copy of the `n` bytes at `v` in sm_empty memory (release with sm_free): a ctx that the workers
 * of every backend see as the caller wrote it (persistent workers see the caller's other memory
 * as it was at sm_pool_new). */
static inline void *shared_dup(const void *v, size_t n) {
  void *p = must_empty(1, n);
  memcpy(p, v, n);
  return p;
}

static inline sm_map_opts default_opts(void) {
  sm_map_opts o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  return o;
}

/* Number of CPUs this process may run on. */
static inline int affinity_cpus(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CHECK(sched_getaffinity(0, sizeof set, &set) == 0, "sched_getaffinity: %s", strerror(errno));
  return CPU_COUNT(&set);
}

/* Recorder for the reduce callback: which jobs were reduced, in which order. Lives in the
 * caller's memory (reduce runs in the caller). */
typedef struct {
  size_t cap;
  size_t n;
  size_t *jobs;
  pid_t pid;
  pthread_t thread;
  int stop_at_job;   /* reduce returns stop_value for this job (-1: never) */
  int stop_value;
  int bad;           /* reduce called from the wrong process/thread */
} reduce_log_t;

static inline void rlog_init(reduce_log_t *r, size_t cap) {
  memset(r, 0, sizeof *r);
  r->cap = cap;
  r->jobs = (size_t *)calloc(cap ? cap : 1, sizeof(size_t));
  CHECK(r->jobs, "calloc");
  r->pid = getpid();
  r->thread = pthread_self();
  r->stop_at_job = -1;
}

static inline void rlog_reset(reduce_log_t *r) {
  r->n = 0;
  r->bad = 0;
  r->stop_at_job = -1;
}

static inline int rlog_add(reduce_log_t *r, size_t job) {
  if (getpid() != r->pid || !pthread_equal(pthread_self(), r->thread)) r->bad++;
  if (r->n < r->cap) r->jobs[r->n] = job;
  r->n++;
  if (r->stop_at_job >= 0 && job == (size_t)r->stop_at_job) return r->stop_value;
  return 0;
}

/* The reduce log must be exactly 0..count-1 in order. */
#define CHECK_RLOG_PREFIX(r, count, what)                                                          \
  do {                                                                                             \
    CHECK((r)->bad == 0, "%s: reduce ran %d time(s) outside the calling process/thread", (what),  \
          (r)->bad);                                                                               \
    CHECK((r)->n == (size_t)(count), "%s: reduce ran %zu times, expected exactly %zu (jobs 0..%lld)", \
          (what), (r)->n, (size_t)(count), (long long)(count) - 1);                               \
    for (size_t i_ = 0; i_ < (r)->n && i_ < (r)->cap; i_++)                                       \
      CHECK((r)->jobs[i_] == i_, "%s: reduce call #%zu was for job %zu, expected job %zu "         \
            "(increasing order, no gaps, no duplicates)",                                          \
            (what), i_, (r)->jobs[i_], i_);                                                        \
  } while (0)

#endif
