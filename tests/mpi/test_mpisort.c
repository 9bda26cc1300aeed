/* sm_mpi_argsort and sm_mpi_permute across the ranks (tests/mpi, issue 15).
 *
 *   test_mpisort [DIR]     every dtype x distribution x layout, then larger sizes, the
 *                          permute round trip, bad arguments on one rank; with DIR, rank 0 also
 *                          writes every case there for the numpy oracle (argsort_mpi_numpy.py)
 *   test_mpisort noinit    before MPI_Init: SM_ERR_STATE at once, on this rank alone
 *   test_mpisort memory    the header's memory bound, by the peak resident size
 *
 * Each case: every rank makes its share of the keys from the case's seed; rank 0 gathers the
 * keys, every rank's `out` and the permuted keys, and compares them with sm_argsort of the
 * concatenation (the library's own numpy-exact sort: c.argsort_numpy checks it against numpy)
 * and with keys[out]. With DIR the same arrays go to numpy as well. */
#include "mpitest.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static const char *DTYPE_NAMES[] = {"f64", "f32", "i64", "i32", "i16",
                                    "i8",  "u64", "u32", "u16", "u8"};
static const size_t DTYPE_SIZES[] = {8, 4, 8, 4, 2, 1, 8, 4, 2, 1};
#define NDTYPES 10

enum dist { UNIFORM, SKEWED, EQUAL, SORTED, REVERSED, FEW, SPECIAL, NDISTS };
static const char *DIST_NAMES[] = {"uniform",  "skewed",       "all-equal", "sorted",
                                   "reversed", "few-distinct", "nan-inf"};

/* How the elements are spread over the ranks. */
enum layout { EVEN, UNEVEN, ONE_RANK, NLAYOUTS };
static const char *LAYOUT_NAMES[] = {"even", "uneven+empty", "all-on-last"};

static size_t count_of(enum layout l, size_t total, int rank, int nranks) {
  switch (l) {
    case EVEN:
      return total * (size_t)(rank + 1) / (size_t)nranks - total * (size_t)rank / (size_t)nranks;
    case UNEVEN: {
      /* rank 1 empty (when there are 2 or more ranks); the others 1 : 2 : 3 ... */
      if (nranks > 1 && rank == 1) return 0;
      size_t weight = 0, before = 0;
      for (int r = 0; r < nranks; r++) {
        if (nranks > 1 && r == 1) continue;
        if (r < rank) before += (size_t)r + 1;
        weight += (size_t)r + 1;
      }
      size_t lo = total * before / weight, hi = total * (before + (size_t)rank + 1) / weight;
      return hi - lo;
    }
    default:
      return rank == nranks - 1 ? total : 0;
  }
}

/* The value of global element g of a case, as a double in a range every dtype holds (integers
 * are cast; floats keep NaN/inf/-0.0). */
static double value_of(enum dist d, uint64_t seed, size_t g, size_t total, int dtype) {
  uint64_t r = mix64(seed ^ (g * 0x9E3779B97F4A7C15ULL));
  int is_float = dtype <= 1;
  int is_unsigned = dtype >= 6;
  double span = dtype == 5 || dtype == 9 ? 100 : dtype == 4 || dtype == 8 ? 30000 : 2e9;
  double lo = is_unsigned ? 0 : -span;
  switch (d) {
    case UNIFORM:
      return is_float ? ((double)(r >> 11) / 9007199254740992.0 - 0.5) * 1e6
                      : lo + (double)(r % (uint64_t)(is_unsigned ? span : 2 * span));
    case SKEWED: {
      double u = (double)(r >> 11) / 9007199254740992.0;
      return floor(exp(u * 20.0)) / (is_float ? 3.0 : 1.0) * (span / exp(20.0)) * 100;
    }
    case EQUAL:
      return 7;
    case SORTED:
      return lo + (double)g * (is_float ? 0.5 : 1) * (span / (double)(total + 1));
    case REVERSED:
      return lo + (double)(total - g) * (span / (double)(total + 1));
    case FEW:
      return (double)(r % 3) + (is_unsigned ? 1 : -1);
    default:
      if (!is_float) return lo + (double)(r % 5);
      switch (r % 7) {
        case 0: return NAN;
        case 1: return -0.0;
        case 2: return 0.0;
        case 3: return INFINITY;
        case 4: return -INFINITY;
        default: return (double)(r % 10) - 5.0;
      }
  }
}

static void store(void *keys, size_t i, int dtype, double v) {
  switch (dtype) {
    case 0: ((double *)keys)[i] = v; break;
    case 1: ((float *)keys)[i] = (float)v; break;
    case 2: ((int64_t *)keys)[i] = (int64_t)v; break;
    case 3: ((int32_t *)keys)[i] = (int32_t)v; break;
    case 4: ((int16_t *)keys)[i] = (int16_t)v; break;
    case 5: ((int8_t *)keys)[i] = (int8_t)v; break;
    case 6: ((uint64_t *)keys)[i] = (uint64_t)v; break;
    case 7: ((uint32_t *)keys)[i] = (uint32_t)v; break;
    case 8: ((uint16_t *)keys)[i] = (uint16_t)v; break;
    default: ((uint8_t *)keys)[i] = (uint8_t)v; break;
  }
}

/* Gathers `n` items of `size` bytes from every rank to rank 0 (returned there, NULL elsewhere). */
static void *gather(const void *mine, size_t n, size_t size, size_t total) {
  int *counts = calloc((size_t)g_nranks, sizeof(int)), *displs = calloc((size_t)g_nranks, sizeof(int));
  CHECK(counts && displs, "calloc");
  CHECK(n * size <= INT_MAX && total * size <= INT_MAX, "a case too big to gather");
  int mybytes = (int)(n * size);
  MPI_Gather(&mybytes, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
  for (int r = 1; r < g_nranks; r++) displs[r] = displs[r - 1] + counts[r - 1];
  void *all = g_rank == 0 ? malloc(total * size + 1) : NULL;
  CHECK(g_rank != 0 || all, "malloc");
  MPI_Gatherv(mine, mybytes, MPI_BYTE, all, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD);
  free(counts);
  free(displs);
  return all;
}

static const char *g_dir = NULL;
static int g_case = 0;
static FILE *g_manifest = NULL;

static void write_file(const char *name, const void *data, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "wb");
  CHECK(f, "cannot write %s", path);
  CHECK(len == 0 || fwrite(data, 1, len, f) == len, "short write to %s", path);
  fclose(f);
}

/* One case: sm_mpi_argsort, then sm_mpi_permute of the keys by its output, checked on rank 0. */
static void run_case(sm_pool *pool, int dtype, enum dist d, enum layout l, size_t total,
                     uint64_t seed, int oracle) {
  char what[160];
  snprintf(what, sizeof what, "%s %s %s n=%zu", DTYPE_NAMES[dtype], DIST_NAMES[d],
           LAYOUT_NAMES[l], total);
  size_t ks = DTYPE_SIZES[dtype];
  size_t n = count_of(l, total, g_rank, g_nranks), offset = 0;
  for (int r = 0; r < g_rank; r++) offset += count_of(l, total, r, g_nranks);
  unsigned char *keys = malloc(n * ks + 1), *sorted = malloc(n * ks + 1);
  int64_t *out = malloc(n * sizeof *out + 1);
  CHECK(keys && sorted && out, "malloc");
  for (size_t i = 0; i < n; i++) store(keys, i, dtype, value_of(d, seed, offset + i, total, dtype));
  for (size_t i = 0; i < n; i++) out[i] = -1;

  sm_status s = sm_mpi_argsort(pool, MPI_COMM_WORLD, keys, n, (sm_dtype)dtype, out);
  mt_check_status_all(MPI_COMM_WORLD, s, SM_OK, what);
  s = sm_mpi_permute(pool, MPI_COMM_WORLD, keys, n, ks, out, n, sorted);
  mt_check_status_all(MPI_COMM_WORLD, s, SM_OK, what);

  unsigned char *all_keys = gather(keys, n, ks, total);
  int64_t *all_out = gather(out, n, sizeof(int64_t), total);
  unsigned char *all_sorted = gather(sorted, n, ks, total);
  if (g_rank == 0) {
    int64_t *ref = malloc(total * sizeof *ref + 1);
    CHECK(ref, "malloc");
    CHECK(sm_argsort(NULL, all_keys, total, (sm_dtype)dtype, ref) == SM_OK, "%s", last_err());
    for (size_t i = 0; i < total; i++) {
      CHECK(all_out[i] == ref[i], "%s: position %zu holds %lld, sm_argsort of the concatenation "
            "says %lld", what, i, (long long)all_out[i], (long long)ref[i]);
      CHECK(memcmp(all_sorted + i * ks, all_keys + (size_t)ref[i] * ks, ks) == 0,
            "%s: permuted item %zu is not keys[%lld]", what, i, (long long)ref[i]);
    }
    if (oracle && g_dir) {
      char name[64];
      snprintf(name, sizeof name, "case%04d.keys", g_case);
      write_file(name, all_keys, total * ks);
      snprintf(name, sizeof name, "case%04d.out", g_case);
      write_file(name, all_out, total * sizeof(int64_t));
      snprintf(name, sizeof name, "case%04d.sorted", g_case);
      write_file(name, all_sorted, total * ks);
      fprintf(g_manifest, "case%04d %s %zu %s\n", g_case, DTYPE_NAMES[dtype], total, what);
      g_case++;
    }
    free(ref);
  }
  free(all_keys);
  free(all_out);
  free(all_sorted);
  free(keys);
  free(sorted);
  free(out);
}

/* A payload of 24-byte records follows the keys: every rank's records land where its keys do. */
static void payload_round_trip(sm_pool *pool, size_t total) {
  typedef struct {
    int64_t global;
    double key;
    int32_t rank, pad;
  } record;
  size_t n = count_of(UNEVEN, total, g_rank, g_nranks), offset = 0;
  for (int r = 0; r < g_rank; r++) offset += count_of(UNEVEN, total, r, g_nranks);
  double *keys = malloc(n * sizeof *keys + 1);
  record *recs = malloc(n * sizeof *recs + 1);
  int64_t *out = malloc(n * sizeof *out + 1);
  CHECK(keys && recs && out, "malloc");
  for (size_t i = 0; i < n; i++) {
    keys[i] = (double)(mix64(offset + i) % 1000);
    recs[i] = (record){(int64_t)(offset + i), keys[i], g_rank, 0};
  }
  CHECK(sm_mpi_argsort(pool, MPI_COMM_WORLD, keys, n, SM_DTYPE_F64, out) == SM_OK, "%s",
        last_err());
  /* In place: dst is src. */
  CHECK(sm_mpi_permute(pool, MPI_COMM_WORLD, recs, n, sizeof(record), out, n, recs) == SM_OK,
        "%s", last_err());
  for (size_t i = 0; i < n; i++) {
    CHECK(recs[i].global == out[i], "record %zu is global %lld, expected %lld", i,
          (long long)recs[i].global, (long long)out[i]);
    CHECK(i == 0 || recs[i - 1].key <= recs[i].key, "records out of key order at %zu", i);
  }
  /* Across the ranks: the first key here is not below the last key of the rank before. */
  double last = n ? recs[n - 1].key : -INFINITY, before = -INFINITY;
  double *lasts = malloc((size_t)g_nranks * sizeof *lasts);
  CHECK(lasts, "malloc");
  MPI_Allgather(&last, 1, MPI_DOUBLE, lasts, 1, MPI_DOUBLE, MPI_COMM_WORLD);
  for (int r = 0; r < g_rank; r++) before = lasts[r] > before ? lasts[r] : before;
  CHECK(n == 0 || recs[0].key >= before, "rank %d starts below the ranks before it", g_rank);
  free(lasts);
  free(keys);
  free(recs);
  free(out);
}

/* sm_mpi_permute with any index array: each rank asks for its own number of items (rank 0 for
 * none), repeats included, most of them held by other ranks. */
static void random_gather(sm_pool *pool, size_t total) {
  size_t n = count_of(UNEVEN, total, g_rank, g_nranks), offset = 0;
  for (int r = 0; r < g_rank; r++) offset += count_of(UNEVEN, total, r, g_nranks);
  size_t nout = g_rank == 0 ? 0 : 50000 + 1000 * (size_t)g_rank;
  int64_t *src = malloc(n * sizeof *src + 1), *index = malloc(nout * sizeof *index + 1);
  int64_t *dst = malloc(nout * sizeof *dst + 1);
  CHECK(src && index && dst, "malloc");
  for (size_t i = 0; i < n; i++) src[i] = 3 * (int64_t)(offset + i) + 1;
  for (size_t i = 0; i < nout; i++) index[i] = (int64_t)(mix64(i * 31 + (size_t)g_rank) % total);
  sm_status s = sm_mpi_permute(pool, MPI_COMM_WORLD, src, n, sizeof *src, index, nout, dst);
  mt_check_status_all(MPI_COMM_WORLD, s, SM_OK, "random gather");
  for (size_t i = 0; i < nout; i++) {
    CHECK(dst[i] == 3 * index[i] + 1, "dst[%zu] = %lld for index %lld", i, (long long)dst[i],
          (long long)index[i]);
  }
  free(src);
  free(index);
  free(dst);
}

/* Bad arguments on one rank: the same status on every rank, never a hang. */
static void bad_arguments(void) {
  double keys[4] = {3, 1, 2, 0};
  int64_t out[4];
  int last = g_nranks - 1;
  char msg[1024];

  sm_dtype dt = g_rank == last && g_nranks > 1 ? SM_DTYPE_I64 : SM_DTYPE_F64;
  sm_status s = sm_mpi_argsort(NULL, MPI_COMM_WORLD, keys, 4, dt, out);
  snprintf(msg, sizeof msg, "%s", last_err());
  if (g_nranks > 1) {
    mt_check_status_all(MPI_COMM_WORLD, s, SM_ERR_INVALID, "mismatched dtype");
    CHECK(strstr(msg, "dtype differs between ranks") && strstr(msg, "SM_DTYPE_I64"), "%s", msg);
  }

  s = sm_mpi_argsort(NULL, MPI_COMM_WORLD, g_rank == last ? NULL : keys, 4, SM_DTYPE_F64, out);
  snprintf(msg, sizeof msg, "%s", last_err());
  mt_check_status_all(MPI_COMM_WORLD, s, SM_ERR_INVALID, "NULL keys on one rank");
  char want[96];
  snprintf(want, sizeof want, "rank %d: keys is NULL with nlocal = 4", last);
  CHECK(strstr(msg, want), "%s", msg);

  s = sm_mpi_argsort(NULL, MPI_COMM_WORLD, keys, 4, (sm_dtype)(g_rank == 0 ? 42 : 0), out);
  mt_check_status_all(MPI_COMM_WORLD, s, SM_ERR_INVALID, "dtype out of range on rank 0");

  /* permute: an index past the end on the last rank */
  int64_t index[2] = {0, g_rank == last ? 4 * (int64_t)g_nranks : 1};
  double dst[2];
  s = sm_mpi_permute(NULL, MPI_COMM_WORLD, keys, 4, sizeof(double), index, 2, dst);
  snprintf(msg, sizeof msg, "%s", last_err());
  mt_check_status_all(MPI_COMM_WORLD, s, SM_ERR_INVALID, "index out of range");
  snprintf(want, sizeof want, "rank %d: index[1] = %d is outside [0, %d)", last, 4 * g_nranks,
           4 * g_nranks);
  CHECK(strstr(msg, want), "%s", msg);

  s = sm_mpi_permute(NULL, MPI_COMM_WORLD, keys, 4, g_rank == 0 ? 8 : 4, index, 1, dst);
  if (g_nranks > 1) mt_check_status_all(MPI_COMM_WORLD, s, SM_ERR_INVALID, "itemsize differs");

  /* dst overlapping index */
  s = sm_mpi_permute(NULL, MPI_COMM_WORLD, keys, 4, 8, index, 2, g_rank == 0 ? (void *)index : dst);
  mt_check_status_all(MPI_COMM_WORLD, s, SM_ERR_INVALID, "dst overlapping index");

  /* The library still works after every refusal. */
  s = sm_mpi_argsort(NULL, MPI_COMM_WORLD, keys, 4, SM_DTYPE_F64, out);
  mt_check_status_all(MPI_COMM_WORLD, s, SM_OK, "after the refusals");
  /* The smallest key, 0, is at local index 3 of every rank: rank 0 holds them, in rank order. */
  for (int i = 0; i < 4 && g_rank == 0; i++) {
    int64_t want_i = i < g_nranks ? 4 * (int64_t)i + 3 : 4 * (int64_t)(i - g_nranks) + 1;
    CHECK(out[i] == want_i || g_nranks == 1, "out[%d] = %lld, expected %lld", i,
          (long long)out[i], (long long)want_i);
  }
  CHECK(g_nranks > 1 || (out[0] == 3 && out[1] == 1 && out[2] == 2 && out[3] == 0),
        "one rank: out = %lld %lld %lld %lld", (long long)out[0], (long long)out[1],
        (long long)out[2], (long long)out[3]);
}

/* The peak resident size of this process (VmHWM, KiB), after `reset` restarted it from the
 * current size (Linux: "5" to /proc/self/clear_refs); -1 when the kernel does not tell. */
static long peak_kib(int reset) {
  if (reset) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    if (fclose(f) != 0 || !ok) return -1;
  }
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
  }
  fclose(f);
  return kib;
}

/* The header's memory bound, 2 nlocal (keysize + 8) extra bytes per rank, held by the peak
 * resident size, restarted before each call: uniform keys, all-equal keys, all keys on the last
 * rank, sorted keys. The slack covers MPI's own message buffers and huge-page rounding. */
static void memory_bound(void) {
  const size_t n = 1000000, slack = (size_t)24 << 20;
  double *keys = malloc(n * sizeof *keys);
  int64_t *out = malloc(n * sizeof *out);
  CHECK(keys && out, "malloc");
  for (size_t i = 0; i < n; i++) out[i] = -1; /* resident before the baseline */
  for (int round = 0; round < 4; round++) {
    size_t mine = round == 2 ? (g_rank == g_nranks - 1 ? n : 0) : n / (size_t)g_nranks;
    for (size_t i = 0; i < mine; i++) {
      keys[i] = round == 0   ? (double)(mix64(i + (size_t)g_rank * n) >> 11)
                : round == 3 ? (double)(i + (size_t)g_rank * n)
                             : 1.0;
    }
    long before = peak_kib(1);
    sm_status s = sm_mpi_argsort(NULL, MPI_COMM_WORLD, keys, mine, SM_DTYPE_F64, out);
    long after = peak_kib(0);
    mt_check_status_all(MPI_COMM_WORLD, s, SM_OK, "memory bound");
    if (before < 0 || after < 0) {
      if (g_rank == 0) printf("the kernel does not reset or report VmHWM: bound not checked\n");
      break;
    }
    size_t extra = (size_t)(after - before) * 1024;
    size_t bound = 2 * mine * (sizeof *keys + 8) + slack;
    if (g_rank == 0 || mine == n) {
      printf("rank %d, round %d: %zu keys, peak grew by %.1f MiB (bound %.1f MiB + %.0f MiB)\n",
             g_rank, round, mine, extra / 1048576.0, (bound - slack) / 1048576.0,
             slack / 1048576.0);
    }
    CHECK(extra <= bound, "round %d: the peak resident size grew by %zu bytes for %zu keys, over "
          "the bound of %zu", round, extra, mine, bound);
  }
  free(keys);
  free(out);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "noinit") == 0) {
    double k = 1;
    int64_t o;
    sm_status s = sm_mpi_argsort(NULL, MPI_COMM_WORLD, &k, 1, SM_DTYPE_F64, &o);
    if (s != SM_ERR_STATE || !strstr(sm_last_error(), "not initialized")) {
      fprintf(stderr, "before MPI_Init: %s: %s\n", sm_status_str(s), sm_last_error());
      return 1;
    }
    printf("noinit: OK\n");
    return 0;
  }
  mt_init(&argc, &argv, 300);
  if (argc > 1 && strcmp(argv[1], "memory") == 0) {
    memory_bound();
    return mt_finish("sm_mpi_argsort memory");
  }
  if (argc > 1) {
    g_dir = argv[1];
    if (g_rank == 0) {
      char path[4096];
      snprintf(path, sizeof path, "%s/cases.txt", g_dir);
      g_manifest = fopen(path, "w");
      CHECK(g_manifest, "cannot write %s", path);
    }
  }

  double t0 = MPI_Wtime();
  /* Every dtype x distribution, each in one of the layouts in turn (every layout meets every
   * dtype and every distribution), on a NULL pool (the default thread count). The full cross
   * product runs over the in-process transport (src/ranks/sort_tests.rs): here every case costs
   * a few dozen collectives, slow when ranks outnumber the CPUs. */
  uint64_t seed = 1;
  for (int dtype = 0; dtype < NDTYPES; dtype++) {
    for (int d = 0; d < NDISTS; d++) {
      enum layout l = (enum layout)((dtype + d) % NLAYOUTS);
      run_case(NULL, dtype, (enum dist)d, l, 3001 + (size_t)(mix64(seed) % 5000), seed, 1);
      seed++;
    }
  }
  if (g_rank == 0) printf("%d small cases: %.2f s\n", (int)(seed - 1), MPI_Wtime() - t0);
  t0 = MPI_Wtime();
  /* Every local backend's thread count, and the threaded phases (large enough for threads). */
  for (size_t b = 0; b < MT_NBACKENDS; b++) {
    sm_pool *pool = mt_pool(&MT_BACKENDS[b]);
    run_case(pool, 0, UNIFORM, UNEVEN, 300000, 1000 + b, 0);
    payload_round_trip(pool, 200000);
    random_gather(pool, 100000);
    if (pool) sm_pool_free(pool);
  }
  if (g_rank == 0) printf("every backend: %.2f s\n", MPI_Wtime() - t0);
  t0 = MPI_Wtime();
  /* 10^6 and 10^7 elements: the sizes of the issue. */
  sm_pool *pool = new_pool(2, SM_BACKEND_THREAD);
  run_case(pool, 0, SKEWED, EVEN, 1000000, 77, 1);
  run_case(pool, 2, FEW, UNEVEN, 1000000, 78, 1);
  run_case(pool, 0, UNIFORM, EVEN, 10000000, 79, 1);
  sm_pool_free(pool);

  if (g_rank == 0) printf("10^6 and 10^7 elements: %.2f s\n", MPI_Wtime() - t0);
  bad_arguments();
  if (g_manifest) fclose(g_manifest);
  return mt_finish("sm_mpi_argsort");
}
