/* sharedmem sort/fromfile benchmark: the C/C++ side (one measurement per process).
 *
 * Not a test: it never decides pass/fail of the test suite.  It is driven by bench/sort_bench.py
 * (run scripts/bench-sort.sh), which generates the keys, starts one fresh process of this program
 * per measurement (so the memory peaks of different sorters never mix) and prints the report.
 *
 *   sort_bench argsort SYSTEM DTYPE N KEYFILE REFMODE REFFILE
 *       SYSTEM  sm            sm_argsort on a pool of NW workers (SM_BACKEND_PROCESS: argsort runs
 *                             NW threads whatever the backend; a process pool keeps no idle threads)
 *               gnu_parallel  __gnu_parallel::stable_sort of (key, index) pairs, NW OpenMP threads
 *                             (time includes building the pairs and extracting the indices)
 *               gnu_parallel_1t  the same with 1 thread (check that the NW-thread run is parallel)
 *               std_stable    single-threaded std::stable_sort of indices, comparing keys[i]
 *       DTYPE   f64 | i64; N = number of keys; KEYFILE = N raw native keys
 *       REFMODE write: write the permutation to REFFILE; check: compare it with REFFILE; none
 *     Loads the keys, allocates and touches out (n int64), resets the peak RSS
 *     (echo 5 > /proc/self/clear_refs), runs the sort, reads VmHWM: extra = VmHWM - VmRSS before.
 *     Then checks the result exactly: a permutation of 0..n-1, keys non-decreasing along it, equal
 *     keys in increasing index order (the stable argsort is unique, so this is equality with
 *     numpy's / std::stable_sort's answer), and, with REFMODE check, byte equality with REFFILE.
 *
 *   sort_bench fromfile SYSTEM PATH
 *       SYSTEM  sm    sm_fromfile(pool of NW workers, PATH, 0, 8, SIZE_MAX), then sm_free
 *               read  one thread: malloc(file size) + a sequential read() loop (16 MiB per call)
 *               read_prefaulted  the same, but the buffer is malloc'd and memset before timing
 *     PATH holds 64-bit words w[i] = i * 0x9E3779B97F4A7C15; every word is checked after timing.
 *
 * Output: one line "RESULT key=value ..." on stdout; errors as "ERROR message" (exit 1).
 * Exit status 0 = measured and correct; 2 = measured but the result was wrong or a call failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <numeric>
#include <type_traits>
#include <parallel/algorithm>
#include <parallel/settings.h>
#include <vector>

#include "sharedmem.h"

#define NW 2 /* workers / threads */

static double now_sec() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("ERROR ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  exit(1);
}

/* VmRSS / VmHWM of this process in bytes (from /proc/self/status). */
static long long status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long long v = -1;
  size_t len = strlen(field);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, field, len) == 0 && line[len] == ':') {
      v = atoll(line + len + 1);
      break;
    }
  }
  fclose(f);
  return v;
}

static int reset_peak() {
  int fd = open("/proc/self/clear_refs", O_WRONLY);
  if (fd < 0) return -1;
  ssize_t w = write(fd, "5", 1);
  close(fd);
  return w == 1 ? 0 : -1;
}

static void read_all(const char *path, void *buf, size_t bytes, size_t chunk) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("open %s: %s", path, strerror(errno));
  size_t off = 0;
  while (off < bytes) {
    size_t want = bytes - off < chunk ? bytes - off : chunk;
    ssize_t r = read(fd, (char *)buf + off, want);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) die("read %s: %s", path, r < 0 ? strerror(errno) : "unexpected end of file");
    off += (size_t)r;
  }
  close(fd);
}

static void write_all(const char *path, const void *buf, size_t bytes) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die("open %s: %s", path, strerror(errno));
  size_t off = 0;
  while (off < bytes) {
    ssize_t w = write(fd, (const char *)buf + off, bytes - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write %s: %s", path, strerror(errno));
    off += (size_t)w;
  }
  if (close(fd) != 0) die("close %s: %s", path, strerror(errno));
}

/* ------------------------------------------------------------------ argsort */

template <typename K> struct pair_t {
  K key;
  int64_t idx;
};

/* Plain '<' on the keys: the generated keys contain no NaN, so this is numpy's order there. */
template <typename K> static double run_gnu(const K *keys, size_t n, int64_t *out, int threads) {
  omp_set_num_threads(threads);
  double t0 = now_sec();
  pair_t<K> *p = (pair_t<K> *)malloc(n * sizeof(pair_t<K>));
  if (!p) die("malloc of %zu pairs failed", n);
  long long nn = (long long)n;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long long i = 0; i < nn; i++) {
    p[i].key = keys[i];
    p[i].idx = i;
  }
  __gnu_parallel::stable_sort(p, p + n, [](const pair_t<K> &a, const pair_t<K> &b) { return a.key < b.key; });
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long long i = 0; i < nn; i++) out[i] = p[i].idx;
  free(p);
  return now_sec() - t0;
}

template <typename K> static double run_std(const K *keys, size_t n, int64_t *out) {
  double t0 = now_sec();
  std::iota(out, out + n, (int64_t)0);
  std::stable_sort(out, out + n, [keys](int64_t a, int64_t b) { return keys[a] < keys[b]; });
  return now_sec() - t0;
}

/* Exact check of a stable argsort; returns NULL when correct, else a static message. */
template <typename K>
static const char *check_argsort(const K *keys, size_t n, const int64_t *out, size_t *distinct, char *msg, size_t len) {
  std::vector<uint8_t> seen(n, 0);
  *distinct = n > 0;
  for (size_t i = 0; i < n; i++) {
    int64_t j = out[i];
    if (j < 0 || (uint64_t)j >= n) {
      snprintf(msg, len, "out[%zu] = %lld is not an index in [0, %zu)", i, (long long)j, n);
      return msg;
    }
    if (seen[(size_t)j]) {
      snprintf(msg, len, "out[%zu] = %lld appears twice (not a permutation)", i, (long long)j);
      return msg;
    }
    seen[(size_t)j] = 1;
    if (i > 0) {
      int64_t a = out[i - 1];
      if (keys[j] < keys[a]) {
        snprintf(msg, len, "not sorted at position %zu (keys[%lld] > keys[%lld])", i, (long long)a, (long long)j);
        return msg;
      }
      if (keys[a] < keys[j]) ++*distinct;
      else if (a > j) {
        snprintf(msg, len, "not stable at position %zu (equal keys, index %lld before %lld)", i, (long long)a,
                 (long long)j);
        return msg;
      }
    }
  }
  return NULL;
}

static const char *compare_ref(const char *path, const int64_t *out, size_t n, char *msg, size_t len) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    snprintf(msg, len, "cannot open reference %s: %s", path, strerror(errno));
    return msg;
  }
  const size_t chunk = 1u << 20;
  std::vector<int64_t> buf(chunk);
  size_t done = 0;
  const char *res = NULL;
  while (done < n && !res) {
    size_t want = n - done < chunk ? n - done : chunk, got = 0;
    while (got < want * 8) {
      ssize_t r = read(fd, (char *)buf.data() + got, want * 8 - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        snprintf(msg, len, "reference %s too short", path);
        close(fd);
        return msg;
      }
      got += (size_t)r;
    }
    for (size_t i = 0; i < want; i++) {
      if (buf[i] != out[done + i]) {
        snprintf(msg, len, "differs from std::stable_sort at position %zu: %lld vs reference %lld", done + i,
                 (long long)out[done + i], (long long)buf[i]);
        res = msg;
        break;
      }
    }
    done += want;
  }
  close(fd);
  return res;
}

template <typename K>
static int argsort_main(const char *sys, size_t n, const char *keyfile, const char *refmode, const char *reffile) {
  K *keys = (K *)malloc(n * sizeof(K) + 1);
  int64_t *out = (int64_t *)malloc(n * sizeof(int64_t) + 1);
  if (!keys || !out) die("malloc of keys/out (n = %zu) failed", n);
  read_all(keyfile, keys, n * sizeof(K), 64u << 20);
  memset(out, 0xff, n * sizeof(int64_t)); /* touch every page of out before the baseline */

  sm_pool *pool = NULL;
  bool is_sm = strcmp(sys, "sm") == 0, is_gnu = strcmp(sys, "gnu_parallel") == 0,
       is_gnu1 = strcmp(sys, "gnu_parallel_1t") == 0, is_std = strcmp(sys, "std_stable") == 0;
  if (!is_sm && !is_gnu && !is_gnu1 && !is_std) die("unknown system %s", sys);
  if (is_sm) {
    pool = sm_pool_new(NW, SM_BACKEND_PROCESS);
    if (!pool) die("sm_pool_new failed: %s", sm_last_error());
  }
  if (is_gnu || is_gnu1) {
    /* libstdc++ parallel mode: parallel above sort_minimal_n (default 1000) with > 1 thread;
       pin the algorithm to the (default) multiway mergesort, which is the stable one. */
    __gnu_parallel::_Settings s = __gnu_parallel::_Settings::get();
    s.algorithm_strategy = __gnu_parallel::heuristic;
    s.sort_algorithm = __gnu_parallel::MWMS;
    s.sort_minimal_n = 1000;
    __gnu_parallel::_Settings::set(s);
    omp_set_dynamic(0);
    /* start the OpenMP thread team before the baseline, as sm_pool_new is before it */
#pragma omp parallel num_threads(is_gnu ? NW : 1)
    {
      __asm__ __volatile__("" ::: "memory");
    }
  }

  long long rss0 = status_kb("VmRSS");
  if (reset_peak() != 0) die("cannot reset the peak RSS (/proc/self/clear_refs): %s", strerror(errno));
  long long hwm0 = status_kb("VmHWM");

  double t = 0;
  char err[600] = "";
  sm_dtype dt = std::is_floating_point<K>::value ? SM_DTYPE_F64 : SM_DTYPE_I64;
  if (is_sm) {
    double t0 = now_sec();
    sm_status st = sm_argsort(pool, keys, n, dt, out);
    t = now_sec() - t0;
    if (st != SM_OK)
      snprintf(err, sizeof err, "sm_argsort returned %d (%s): %s", (int)st, sm_status_str(st), sm_last_error());
  } else if (is_gnu || is_gnu1) {
    t = run_gnu<K>(keys, n, out, is_gnu ? NW : 1);
  } else {
    t = run_std<K>(keys, n, out);
  }
  long long hwm1 = status_kb("VmHWM");
  long long rss1 = status_kb("VmRSS");

  char msg[512];
  size_t distinct = 0;
  const char *bad = err[0] ? err : check_argsort<K>(keys, n, out, &distinct, msg, sizeof msg);
  if (!bad && strcmp(refmode, "check") == 0) bad = compare_ref(reffile, out, n, msg, sizeof msg);
  if (!bad && strcmp(refmode, "write") == 0) write_all(reffile, out, n * sizeof(int64_t));

  printf("RESULT time=%.6f rss0_kb=%lld hwm0_kb=%lld hwm1_kb=%lld rss1_kb=%lld extra_bytes=%lld threads=%d distinct=%zu ok=%d\n",
         t, rss0, hwm0, hwm1, rss1, (hwm1 - rss0) * 1024, is_gnu1 ? 1 : NW, distinct, bad ? 0 : 1);
  if (bad) printf("PROBLEM %s\n", bad);
  fflush(stdout);
  if (pool) sm_pool_free(pool);
  free(keys);
  free(out);
  return bad ? 2 : 0;
}

/* ------------------------------------------------------------------ fromfile */

static const uint64_t WORD_MUL = 0x9E3779B97F4A7C15ull;

static int fromfile_main(const char *sys, const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) die("stat %s: %s", path, strerror(errno));
  size_t bytes = (size_t)sb.st_size, count = SIZE_MAX;
  sm_pool *pool = NULL;
  bool is_sm = strcmp(sys, "sm") == 0, is_pre = strcmp(sys, "read_prefaulted") == 0;
  if (!is_sm && !is_pre && strcmp(sys, "read") != 0) die("unknown system %s", sys);
  if (is_sm) {
    pool = sm_pool_new(NW, SM_BACKEND_PROCESS);
    if (!pool) die("sm_pool_new failed: %s", sm_last_error());
  }
  char bad[600] = "";
  uint64_t *w = NULL;
  if (!is_sm) {
    w = (uint64_t *)malloc(bytes);
    if (!w) die("malloc(%zu) failed", bytes);
    if (is_pre) memset(w, 0, bytes);
  }
  double t0 = now_sec(), t;
  if (is_sm) {
    w = (uint64_t *)sm_fromfile(pool, path, 0, 8, &count);
    t = now_sec() - t0;
    if (!w) snprintf(bad, sizeof bad, "sm_fromfile returned NULL: %s", sm_last_error());
    else if (count * 8 != bytes) snprintf(bad, sizeof bad, "sm_fromfile: *count = %zu, expected %zu", count, bytes / 8);
  } else {
    read_all(path, w, bytes, 16u << 20);
    t = now_sec() - t0;
    count = bytes / 8;
  }
  if (!bad[0]) {
    for (size_t i = 0; i < bytes / 8; i++) {
      if (w[i] != (uint64_t)i * WORD_MUL) {
        snprintf(bad, sizeof bad, "%s: word %zu is %llu, file has %llu", sys, i, (unsigned long long)w[i],
                 (unsigned long long)((uint64_t)i * WORD_MUL));
        break;
      }
    }
  }
  printf("RESULT time=%.6f bytes=%zu ok=%d\n", t, bytes, bad[0] ? 0 : 1);
  if (bad[0]) printf("PROBLEM %s\n", bad);
  fflush(stdout);
  if (is_sm) {
    sm_free(w);
    sm_pool_free(pool);
  } else {
    free(w);
  }
  return bad[0] ? 2 : 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 8 && strcmp(argv[1], "argsort") == 0) {
    size_t n = (size_t)strtoull(argv[4], NULL, 10);
    if (strcmp(argv[3], "f64") == 0) return argsort_main<double>(argv[2], n, argv[5], argv[6], argv[7]);
    if (strcmp(argv[3], "i64") == 0) return argsort_main<int64_t>(argv[2], n, argv[5], argv[6], argv[7]);
    die("unknown dtype %s", argv[3]);
  }
  if (argc == 4 && strcmp(argv[1], "fromfile") == 0) return fromfile_main(argv[2], argv[3]);
  if (argc == 2 && strcmp(argv[1], "info") == 0) {
    printf("RESULT gcc=%s openmp=%d sort_minimal_n=%u\n", __VERSION__, _OPENMP,
           (unsigned)__gnu_parallel::_Settings::get().sort_minimal_n);
    return 0;
  }
  fprintf(stderr,
          "usage: sort_bench argsort SYSTEM DTYPE N KEYFILE REFMODE REFFILE | fromfile SYSTEM PATH | info\n"
          "(run through scripts/bench-sort.sh)\n");
  return 1;
}
