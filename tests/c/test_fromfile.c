/* sm_fromfile, for a pool of the given backend (and pools of 1, 2, 3, 8 workers, and the NULL pool):
 * - exact contents of a 42 MB file (several 8 MiB read pieces, more than one thread's part) read
 *   from offsets that are and are not multiples of 8, of the page size, of 8 MiB, with explicit
 *   counts and with SIZE_MAX (to the end), item sizes 1, 3, 4, 8, 12, 4096, and lengths around the
 *   4 MiB one-thread threshold; *count holds the number read; the memory is page-aligned;
 * - small files: empty, 1 byte, 100 bytes; offset == file size (0 items, a valid pointer);
 * - every error returns NULL with a message that names the path (where there is one) and the
 *   problem: missing file, directory, offset past the end, length not a whole number of items,
 *   file too short for *count, count * itemsize overflow, itemsize 0, NULL path, NULL count, freed
 *   pool, a short read (a sysfs file whose size overstates its contents), a call inside a job;
 * - the memory is sm_empty memory: a map reads it in the workers (processes, for the process
 *   backend) and writes into another sm_empty array, workers' writes into it reach the caller, and
 *   sm_free accepts it (exactly once);
 * - sm_fromfile never forks (it reads with threads, whatever the backend).
 * Files live in a mkdtemp() directory that is removed at exit.
 *
 *   test_fromfile <process|thread|serial> */
#include "testutil.h"

#include <sys/stat.h>

/* ---------------------------------------------------------------- temporary files */

static char g_dir[512];
static pid_t g_owner;
#define MAXFILES 32
static char g_files[MAXFILES][600];
static int g_nfiles;
static char g_subdir[600];

static void cleanup(void) {
  if (getpid() != g_owner) return; /* never from a worker */
  for (int i = 0; i < g_nfiles; i++) unlink(g_files[i]);
  if (g_subdir[0]) rmdir(g_subdir);
  if (g_dir[0]) rmdir(g_dir);
}

static void make_dir(void) {
  const char *t = getenv("TMPDIR");
  if (!t || !t[0]) t = "/tmp";
  snprintf(g_dir, sizeof g_dir, "%s/sm_fromfile_XXXXXX", t);
  CHECK(mkdtemp(g_dir) != NULL, "mkdtemp(%s): %s", g_dir, strerror(errno));
  g_owner = getpid();
  atexit(cleanup);
}

static const char *file_path(const char *name) {
  CHECK(g_nfiles < MAXFILES, "too many files");
  char *p = g_files[g_nfiles++];
  snprintf(p, sizeof g_files[0], "%s/%s", g_dir, name);
  return p;
}

static const char *write_file(const char *name, const unsigned char *data, size_t len) {
  const char *p = file_path(name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CHECK(fd >= 0, "open(%s): %s", p, strerror(errno));
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(fd, data + done, len - done);
    CHECK(w > 0, "write(%s): %s", p, strerror(errno));
    done += (size_t)w;
  }
  CHECK(close(fd) == 0, "close(%s): %s", p, strerror(errno));
  return p;
}

/* byte i of the test pattern: a hash of its position, so a misplaced piece never matches */
static inline unsigned char pat(size_t i) {
  return (unsigned char)(hash32((uint32_t)(i >> 2) ^ (uint32_t)(i >> 34) ^ 0xA5A5A5A5u) >> (8 * (i & 3)));
}

/* ---------------------------------------------------------------- checks */

static atomic_int g_forks;
static void count_fork(void) { atomic_fetch_add(&g_forks, 1); }

static int any_of(const char *m, const char *const *words) {
  for (; *words; words++)
    if (icontains(m, *words)) return 1;
  return 0;
}

static void words_str(char *buf, size_t cap, const char *const *words) {
  buf[0] = 0;
  for (; *words; words++) {
    size_t L = strlen(buf);
    snprintf(buf + L, cap - L, "%s\"%s\"", L ? " / " : "", *words);
  }
}

/* NULL with a message mentioning the path (if given), and one of words (and of words2, if given) */
static void expect_fail(const char *what, void *p, const char *path, const char *const *words,
                        const char *const *words2) {
  const char *m = last_err();
  printf("%-64s -> %s \"%s\"\n", what, p ? "memory" : "NULL", m);
  CHECK(p == NULL, "%s: returned %p, expected NULL", what, p);
  CHECK(m[0] != 0, "%s: sm_last_error() is empty", what);
  if (path) CHECK(strstr(m, path) != NULL, "%s: message \"%s\" does not name the path %s", what, m, path);
  char wl[256];
  words_str(wl, sizeof wl, words);
  CHECK(any_of(m, words), "%s: message \"%s\" should say what is wrong (%s)", what, m, wl);
  if (words2) {
    words_str(wl, sizeof wl, words2);
    CHECK(any_of(m, words2), "%s: message \"%s\" should mention %s", what, m, wl);
  }
}

/* A successful read: the count, page alignment and every byte against expected[0..count*itemsize). */
static unsigned char *expect_read(const char *what, sm_pool *pool, const char *path, size_t offset,
                                  size_t itemsize, size_t count_in, size_t count_expected,
                                  const unsigned char *expected) {
  size_t count = count_in;
  unsigned char *p = (unsigned char *)sm_fromfile(pool, path, offset, itemsize, &count);
  CHECK(p != NULL, "%s: sm_fromfile(%s, offset %zu, itemsize %zu, count %zu) returned NULL: %s", what, path,
        offset, itemsize, count_in, last_err());
  CHECK(count == count_expected, "%s: *count = %zu after the call, expected %zu (offset %zu, itemsize %zu)", what,
        count, count_expected, offset, itemsize);
  CHECK(((uintptr_t)p & 4095) == 0, "%s: memory %p is not page-aligned (sm_empty memory is)", what, (void *)p);
  size_t bytes = count_expected * itemsize;
  if (bytes && memcmp(p, expected, bytes) != 0) {
    size_t i = 0;
    while (p[i] == expected[i]) i++;
    size_t j = i;
    while (j < bytes && p[j] != expected[j]) j++;
    CHECK(0, "%s: byte %zu of the result (file byte %zu) is 0x%02x, expected 0x%02x; the next matching byte is "
          "%zu (offset %zu, itemsize %zu, count %zu)",
          what, i, offset + i, p[i], expected[i], j, offset, itemsize, count_expected);
  }
  return p;
}

/* sm_free accepts the pointer exactly once: no message the first time, a message the second. */
static void free_once(const char *what, void *p) {
  CHECK(sm_pool_new(1, (sm_backend)9) == NULL, "sm_pool_new with a bad backend succeeded"); /* known message */
  char before[512];
  snprintf(before, sizeof before, "%s", last_err());
  sm_free(p);
  CHECK(strcmp(before, last_err()) == 0, "%s: sm_free of sm_fromfile memory was refused: \"%s\"", what, last_err());
  sm_free(p);
  CHECK(strcmp(before, last_err()) != 0, "%s: a second sm_free of sm_fromfile memory was not refused: the first "
        "did not free it",
        what);
}

/* ---------------------------------------------------------------- jobs */

typedef struct {
  uint64_t *data; /* sm_fromfile memory */
  uint64_t *out;  /* another sm_empty array */
  size_t count;
  size_t chunk;
  const char *path; /* a small valid file, for sm_fromfile inside a job */
  sm_pool *pool;
} jctx_t;

static int job_copy(void *vctx, size_t job, void *result) {
  (void)result;
  jctx_t *c = (jctx_t *)vctx;
  size_t lo = job * c->chunk, hi = lo + c->chunk < c->count ? lo + c->chunk : c->count;
  for (size_t i = lo; i < hi; i++) c->out[i] = c->data[i] ^ (0x9E3779B97F4A7C15ULL * (i + 1));
  if (lo < hi) c->data[lo] = ~c->data[lo]; /* a write into the sm_fromfile memory itself */
  return 0;
}

static int job_fromfile_inside(void *vctx, size_t job, void *result) {
  (void)result;
  jctx_t *c = (jctx_t *)vctx;
  size_t count = SIZE_MAX;
  void *p = sm_fromfile(job % 2 ? c->pool : NULL, c->path, 0, 1, &count);
  const char *m = last_err();
  JCHECK(p == NULL, "sm_fromfile inside job %zu returned memory %p", job, p);
  JCHECK(icontains(m, "job") || icontains(m, "inside") || icontains(m, "worker"),
         "sm_fromfile inside job %zu: message \"%s\" should say it was called inside a job", job, m);
  return 0;
}

/* ---------------------------------------------------------------- main */

#define MIB ((size_t)1 << 20)

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  watchdog(120);
  make_dir();
  CHECK(pthread_atfork(count_fork, NULL, NULL) == 0, "pthread_atfork");
  jfail_init();
  long long t0 = now_ms();

  /* ------------------------------------------------ the files */
  const size_t F = 5 * 8 * MIB + 3 * 4096 + 1237; /* 41.96 MB: 6 pieces of 8 MiB, the last partial */
  unsigned char *big = (unsigned char *)malloc(F);
  CHECK(big, "malloc");
  for (size_t i = 0; i < F; i++) big[i] = pat(i);
  const char *bigpath = write_file("big.bin", big, F);
  unsigned char small[100];
  for (size_t i = 0; i < sizeof small; i++) small[i] = (unsigned char)(i * 37 + 11);
  const char *p100 = write_file("hundred.bin", small, sizeof small);
  const char *p1 = write_file("one.bin", small, 1);
  const char *p0 = write_file("empty.bin", small, 0);
  const char *missing = file_path("does_not_exist.bin");
  snprintf(g_subdir, sizeof g_subdir, "%s/adir", g_dir);
  CHECK(mkdir(g_subdir, 0755) == 0, "mkdir(%s): %s", g_subdir, strerror(errno));

  sm_pool *pool = new_pool(3, b);

  /* ------------------------------------------------ large reads, every worker count */
  sm_pool *pools[5];
  const int ws[4] = {1, 2, 3, 8};
  for (int i = 0; i < 4; i++) pools[i] = new_pool(ws[i], b);
  pools[4] = NULL;
  for (int pi = 0; pi < 5; pi++) {
    sm_pool *pl = pools[pi];
    char what[200];
    struct {
      const char *name;
      size_t offset, itemsize, count_in, count; /* count_in SIZE_MAX: to the end */
    } rd[] = {
        {"whole file, itemsize 1, SIZE_MAX", 0, 1, SIZE_MAX, F},
        {"itemsize 8, odd offset, SIZE_MAX", F % 8 + 8 * 777, 8, SIZE_MAX, (F - (F % 8 + 8 * 777)) / 8},
        {"itemsize 4, offset 8 MiB - 3, explicit count", 8 * MIB - 3, 4, (F - 8 * MIB + 3) / 4 - 1000,
         (F - 8 * MIB + 3) / 4 - 1000},
        {"itemsize 12, offset 8 MiB + 4097, explicit count to the end", 8 * MIB + 4097, 12, (F - 8 * MIB - 4097) / 12,
         (F - 8 * MIB - 4097) / 12},
        {"itemsize 8, offset 8 MiB, explicit count", 8 * MIB, 8, (F - 8 * MIB) / 8, (F - 8 * MIB) / 8},
        {"itemsize 4096, offset 5 pages, explicit count", 5 * 4096, 4096, (F - 5 * 4096) / 4096,
         (F - 5 * 4096) / 4096},
        {"itemsize 3, offset 1000001 + F%3, SIZE_MAX", (F - 1000001) % 3 + 1000001, 3, SIZE_MAX,
         (F - ((F - 1000001) % 3 + 1000001)) / 3},
        {"4 MiB - 1 bytes from offset 12345", 12345, 1, 4 * MIB - 1, 4 * MIB - 1},
        {"4 MiB bytes from offset 12345", 12345, 1, 4 * MIB, 4 * MIB},
        {"4 MiB + 1 bytes from offset 4096", 4096, 1, 4 * MIB + 1, 4 * MIB + 1},
        {"8 MiB + 8 bytes from offset 3 (itemsize 8)", 3, 8, MIB + 1, MIB + 1},
        {"3 x 8 MiB - 1 bytes from offset 16 MiB + 1", 16 * MIB + 1, 1, 24 * MIB - 1, 24 * MIB - 1},
        {"the last 5 bytes, SIZE_MAX", F - 5, 1, SIZE_MAX, 5},
        {"offset == file size, SIZE_MAX (0 items)", F, 8, SIZE_MAX, 0},
        {"offset == file size, count 0", F, 1, 0, 0},
    };
    for (size_t r = 0; r < sizeof rd / sizeof rd[0]; r++) {
      snprintf(what, sizeof what, "%s pool %d: %s", pl ? g_backend_name : "NULL", pl ? ws[pi] : -1, rd[r].name);
      unsigned char *p = expect_read(what, pl, bigpath, rd[r].offset, rd[r].itemsize, rd[r].count_in, rd[r].count,
                                     big + rd[r].offset);
      sm_free(p);
    }
    printf("%s pool (%d workers): %zu large reads exact\n", pl ? g_backend_name : "NULL",
           pl ? sm_pool_nworkers(pl) : -1, sizeof rd / sizeof rd[0]);
  }

  /* ------------------------------------------------ small files */
  {
    unsigned char *p;
    p = expect_read("empty file, SIZE_MAX", pool, p0, 0, 8, SIZE_MAX, 0, small);
    free_once("empty file", p);
    p = expect_read("empty file, count 0", NULL, p0, 0, 1, 0, 0, small);
    sm_free(p);
    p = expect_read("1-byte file, SIZE_MAX", pool, p1, 0, 1, SIZE_MAX, 1, small);
    free_once("1-byte file", p);
    p = expect_read("100 bytes, itemsize 4, SIZE_MAX", pool, p100, 0, 4, SIZE_MAX, 25, small);
    sm_free(p);
    p = expect_read("100 bytes, offset 4, itemsize 8, SIZE_MAX", pool, p100, 4, 8, SIZE_MAX, 12, small + 4);
    sm_free(p);
    p = expect_read("100 bytes, offset 7, itemsize 3, SIZE_MAX", NULL, p100, 7, 3, SIZE_MAX, 31, small + 7);
    sm_free(p);
    p = expect_read("100 bytes, offset 60, itemsize 4, count 10 (exactly to the end)", pool, p100, 60, 4, 10, 10,
                    small + 60);
    sm_free(p);
    p = expect_read("100 bytes, offset 1, itemsize 1, count 3", pool, p100, 1, 1, 3, 3, small + 1);
    sm_free(p);
    p = expect_read("100 bytes, itemsize 100, SIZE_MAX", pool, p100, 0, 100, SIZE_MAX, 1, small);
    sm_free(p);
    p = expect_read("offset == size (100), SIZE_MAX", pool, p100, 100, 4, SIZE_MAX, 0, small);
    free_once("offset == size", p);
    p = expect_read("offset == size (100), count 0", pool, p100, 100, 4, 0, 0, small);
    sm_free(p);
  }

  /* ------------------------------------------------ errors */
  {
    static const char *const W_MISSING[] = {"no such", "not found", "exist", "missing", NULL};
    static const char *const W_PAST[] = {"past", "beyond", "exceed", "end of", "after the end", NULL};
    static const char *const W_WHOLE[] = {"whole", "multiple", "divisible", "partial", NULL};
    static const char *const W_SHORT[] = {"short", "too small", "need", "only", NULL};
    static const char *const W_ITEMSIZE[] = {"itemsize", "item size", NULL};
    static const char *const W_ZERO[] = {"0", "zero", NULL};
    static const char *const W_NULL[] = {"null", NULL};
    static const char *const W_PATH[] = {"path", NULL};
    static const char *const W_DIR[] = {"directory", "regular", "not a file", NULL};
    static const char *const W_OVERFLOW[] = {"overflow", "too large", "too big", NULL};
    static const char *const W_POOL[] = {"pool", NULL};
    static const char *const W_PERM[] = {"permission", "denied", "cannot open", "access", NULL};
    size_t c;
    sm_pool *pl[2] = {pool, NULL};
    for (int i = 0; i < 2; i++) {
      char what[200];
      const char *pn = pl[i] ? "pool" : "NULL pool";
#define FAIL_CASE(desc, path_arg, off, isz, cnt, shown, w1, w2)                                  \
  do {                                                                                           \
    c = (cnt);                                                                                   \
    snprintf(what, sizeof what, "%s: %s", pn, desc);                                             \
    expect_fail(what, sm_fromfile(pl[i], path_arg, off, isz, &c), shown, w1, w2);                \
  } while (0)
      FAIL_CASE("missing file, SIZE_MAX", missing, 0, 8, SIZE_MAX, missing, W_MISSING, NULL);
      FAIL_CASE("missing file, count 1", missing, 0, 1, 1, missing, W_MISSING, NULL);
      FAIL_CASE("a directory", g_subdir, 0, 1, SIZE_MAX, g_subdir, W_DIR, NULL);
      FAIL_CASE("offset 101 > size 100, SIZE_MAX", p100, 101, 1, SIZE_MAX, p100, W_PAST, NULL);
      FAIL_CASE("offset 101 > size 100, count 0", p100, 101, 1, 0, p100, W_PAST, NULL);
      FAIL_CASE("offset SIZE_MAX", p100, SIZE_MAX, 1, SIZE_MAX, p100, W_PAST, NULL);
      FAIL_CASE("offset 1 into an empty file", p0, 1, 1, SIZE_MAX, p0, W_PAST, NULL);
      FAIL_CASE("offset past the end of the big file", bigpath, F + 1, 8, SIZE_MAX, bigpath, W_PAST, NULL);
      FAIL_CASE("100 bytes, itemsize 8, SIZE_MAX (not whole)", p100, 0, 8, SIZE_MAX, p100, W_WHOLE, NULL);
      FAIL_CASE("100 bytes, offset 3, itemsize 2, SIZE_MAX (not whole)", p100, 3, 2, SIZE_MAX, p100, W_WHOLE, NULL);
      FAIL_CASE("big file, itemsize 8, offset 0, SIZE_MAX (not whole)", bigpath, 0, 8, SIZE_MAX, bigpath, W_WHOLE,
                NULL);
      FAIL_CASE("100 bytes, itemsize 4, count 26 (too short)", p100, 0, 4, 26, p100, W_SHORT, NULL);
      FAIL_CASE("100 bytes, offset 60, itemsize 4, count 11 (too short)", p100, 60, 4, 11, p100, W_SHORT, NULL);
      FAIL_CASE("offset == size, count 1 (too short)", p100, 100, 1, 1, p100, W_SHORT, NULL);
      FAIL_CASE("empty file, count 1 (too short)", p0, 0, 1, 1, p0, W_SHORT, NULL);
      FAIL_CASE("big file, count one item too many", bigpath, 8 * MIB - 3, 4, (F - 8 * MIB + 3) / 4 + 1, bigpath,
                W_SHORT, NULL);
      FAIL_CASE("count * itemsize overflows", p100, 0, 16, SIZE_MAX / 8, p100, W_OVERFLOW, NULL);
      FAIL_CASE("itemsize 0, SIZE_MAX", p100, 0, 0, SIZE_MAX, p100, W_ITEMSIZE, W_ZERO);
      FAIL_CASE("itemsize 0, count 5", p100, 0, 0, 5, p100, W_ITEMSIZE, W_ZERO);
      FAIL_CASE("itemsize 0, missing file", missing, 0, 0, 5, missing, W_ITEMSIZE, W_ZERO);
      FAIL_CASE("NULL path", NULL, 0, 1, SIZE_MAX, NULL, W_PATH, W_NULL);
      FAIL_CASE("NULL path, itemsize 0", NULL, 0, 0, SIZE_MAX, NULL, W_PATH, W_NULL);
#undef FAIL_CASE
    }
    /* a freed pool: refused */
    sm_pool *dead = new_pool(2, b);
    sm_pool_free(dead);
    c = SIZE_MAX;
    expect_fail("freed pool", sm_fromfile(dead, p100, 0, 1, &c), NULL, W_POOL, NULL);
    /* an unreadable file (root reads anything: then there is nothing to test) */
    if (geteuid() != 0) {
      const char *locked = write_file("locked.bin", small, 16);
      CHECK(chmod(locked, 0) == 0, "chmod: %s", strerror(errno));
      c = SIZE_MAX;
      expect_fail("unreadable file (mode 000)", sm_fromfile(pool, locked, 0, 1, &c), locked, W_PERM, NULL);
    } else {
      printf("(running as root: the unreadable-file check does not apply)\n");
    }
    /* a short read: sysfs files are regular files whose size (4096) overstates their contents */
    const char *sysf[] = {"/sys/devices/system/cpu/online", "/sys/kernel/mm/transparent_hugepage/enabled", NULL};
    int done = 0;
    for (int i = 0; sysf[i] && !done; i++) {
      struct stat st;
      if (stat(sysf[i], &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 64) continue;
      int fd = open(sysf[i], O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      char buf[8192];
      ssize_t got = read(fd, buf, sizeof buf);
      close(fd);
      if (got < 0 || got >= st.st_size) continue;
      static const char *const W_SHORTREAD[] = {"short", "ended", "shrank", "end of file", "eof", NULL};
      c = SIZE_MAX;
      char what[200];
      snprintf(what, sizeof what, "short read (%s: size %lld, %zd bytes readable)", sysf[i], (long long)st.st_size,
               got);
      expect_fail(what, sm_fromfile(pool, sysf[i], 0, 1, &c), sysf[i], W_SHORTREAD, NULL);
      done = 1;
    }
    if (!done) printf("(no sysfs file to provoke a short read with: that check does not apply here)\n");
  }

  CHECK(atomic_load(&g_forks) == 0, "sm_fromfile forked %d time(s); it must read with threads", atomic_load(&g_forks));
  CHECK_NO_CHILDREN("after sm_fromfile");

  /* ------------------------------------------------ shared with the workers of a map */
  {
    size_t off = F % 8 + 8 * 4099, count = SIZE_MAX;
    uint64_t *data = (uint64_t *)sm_fromfile(pool, bigpath, off, 8, &count);
    CHECK(data != NULL, "sm_fromfile for the map: %s", last_err());
    CHECK(count == (F - off) / 8, "count %zu, expected %zu", count, (F - off) / 8);
    uint64_t *out = (uint64_t *)must_empty(count, 8);
    jctx_t ctx = {data, out, count, (count + 63) / 64, p100, pool};
    CHECK_STATUS(sm_map(pool, 64, job_copy, NULL, 0, &ctx), SM_OK, "map over sm_fromfile memory");
    for (size_t i = 0; i < count; i++) {
      uint64_t v;
      memcpy(&v, big + off + 8 * i, 8);
      CHECK(out[i] == (v ^ (0x9E3779B97F4A7C15ULL * (i + 1))),
            "[backend %s] item %zu written by a worker from sm_fromfile memory is 0x%016llx, expected 0x%016llx",
            g_backend_name, i, (unsigned long long)out[i], (unsigned long long)(v ^ (0x9E3779B97F4A7C15ULL * (i + 1))));
      uint64_t want = i % ctx.chunk == 0 ? ~v : v;
      CHECK(data[i] == want, "[backend %s] item %zu of the sm_fromfile memory is 0x%016llx after the map, expected "
            "0x%016llx (%s)",
            g_backend_name, i, (unsigned long long)data[i], (unsigned long long)want,
            i % ctx.chunk == 0 ? "a worker wrote it: the memory is not shared" : "nobody wrote it");
    }
    printf("[%s] a map read %zu items of sm_fromfile memory in its workers; their writes reached the caller\n",
           g_backend_name, count);
    free_once("sm_fromfile memory used by a map", data);
    sm_free(out);

    /* sm_fromfile inside a job: NULL, with a message */
    JRESET();
    CHECK_STATUS(sm_map(pool, 6, job_fromfile_inside, NULL, 0, &ctx), SM_OK, "sm_fromfile inside jobs");
    printf("[%s] sm_fromfile inside a job: NULL with a message\n", g_backend_name);
  }

  /* after everything: reading still works, and the memory can be freed */
  {
    unsigned char *p = expect_read("final read", pool, p100, 0, 1, SIZE_MAX, 100, small);
    free_once("final read", p);
  }
  /* NULL count: refused, and (like every other error with a path) the message names the path.
   * Checked last so that a failure here does not hide the checks above. */
  {
    static const char *const W_COUNT[] = {"count", NULL};
    static const char *const W_NULL[] = {"null", NULL};
    expect_fail("NULL count, NULL path", sm_fromfile(pool, NULL, 0, 1, NULL), NULL, W_NULL, NULL);
    expect_fail("NULL count (pool)", sm_fromfile(pool, p100, 0, 1, NULL), p100, W_COUNT, W_NULL);
    expect_fail("NULL count (NULL pool)", sm_fromfile(NULL, p100, 0, 1, NULL), p100, W_COUNT, W_NULL);
  }
  for (int i = 0; i < 4; i++) sm_pool_free(pools[i]);
  sm_pool_free(pool);
  free(big);
  printf("all sm_fromfile checks passed (%lld ms)\n", now_ms() - t0);
  return 0;
}
