/* sm_argsort against an obviously correct reference: a stable bottom-up merge sort of indices with
 * numpy's order (NaN greatest and equal to every NaN, -0.0 == +0.0), for every dtype, on random,
 * sorted, reversed, all-equal, few-distinct, skewed, extreme-value and NaN/inf/-0.0 data, at
 * n = 0..3 and around every internal threshold (insertion sort at 32, parallel from 32768, bucket
 * re-partition, chunk seams, n not a multiple of the thread count). Every output is compared
 * element by element with the reference (exact permutation: stability included), keys must be left
 * unchanged and nothing may be written around out[0..n). Keys live in malloc'd memory, in sm_empty
 * memory and at odd byte offsets. A few literal cases pin the order independently of the reference.
 *
 *   test_argsort <process|thread|serial> [sort [i/k]]  pools of 1, 2, 3 and 8 workers of that backend
 *   test_argsort null [sort [i/k]]                     the NULL pool (default worker count)
 *   (i/k: run only the i-th k-th of the cases above 4096 elements, see sort_matrix)
 *   test_argsort <process|thread|serial> invalid bad input: NULL arrays, dtype out of range,
 *                                                overlapping arrays, freed pool, n too large
 */
#include "testutil.h"

#include <float.h>
#include <math.h>

#define NDT 10
static const size_t DSIZE[NDT] = {8, 4, 8, 4, 2, 1, 8, 4, 2, 1};
static const char *DNAME[NDT] = {"f64", "f32", "i64", "i32", "i16", "i8", "u64", "u32", "u16", "u8"};
static const sm_dtype DTYPES[NDT] = {SM_DTYPE_F64, SM_DTYPE_F32, SM_DTYPE_I64, SM_DTYPE_I32, SM_DTYPE_I16,
                                     SM_DTYPE_I8,  SM_DTYPE_U64, SM_DTYPE_U32, SM_DTYPE_U16, SM_DTYPE_U8};
static int is_float(int dt) { return dt <= 1; }
static int is_signed(int dt) { return dt >= 2 && dt <= 5; }

/* ---------------------------------------------------------------- random numbers */

typedef struct {
  uint64_t s;
} rng_t;

static uint64_t rnd(rng_t *r) { /* splitmix64 */
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
static uint64_t rnd_below(rng_t *r, uint64_t m) { return m ? rnd(r) % m : 0; }
static double rnd_unit(rng_t *r) { return (double)(rnd(r) >> 11) * 0x1p-53; }

/* ---------------------------------------------------------------- the reference */

/* numpy's order: NaN is greater than everything else and equal to every NaN; -0.0 == +0.0. */
#define FLESS(x, y) (isnan(y) ? !isnan(x) : (x) < (y))
#define ILESS(x, y) ((x) < (y))

/* Stable bottom-up merge sort of the indices 0..n-1 by k[]: an element of the right run goes first
 * only when it is strictly less, so equal keys keep their input order. Also the O(n) check that a
 * permutation is THE stable sorting permutation (sorted, ties in increasing index, a permutation):
 * run on the reference, so the reference is itself verified on every case. */
#define DEF_REF(T, NAME, LESS)                                                                 \
  static void ref_##NAME(const T *k, int64_t *idx, int64_t *tmp, size_t n) {                   \
    for (size_t i = 0; i < n; i++) idx[i] = (int64_t)i;                                        \
    int64_t *src = idx, *dst = tmp;                                                            \
    for (size_t w = 1; w < n; w *= 2) {                                                        \
      for (size_t lo = 0; lo < n; lo += 2 * w) {                                               \
        size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;            \
        size_t i = lo, j = mid, o = lo;                                                        \
        while (i < mid && j < hi) {                                                            \
          if (LESS(k[src[j]], k[src[i]])) dst[o++] = src[j++];                                 \
          else dst[o++] = src[i++];                                                            \
        }                                                                                      \
        while (i < mid) dst[o++] = src[i++];                                                   \
        while (j < hi) dst[o++] = src[j++];                                                    \
      }                                                                                        \
      int64_t *t = src;                                                                        \
      src = dst;                                                                               \
      dst = t;                                                                                 \
    }                                                                                          \
    if (src != idx) memcpy(idx, src, n * sizeof *idx);                                         \
  }                                                                                            \
  /* 0 if p is the stable sorting permutation of k; else the first bad position + 1 */         \
  static size_t check_##NAME(const T *k, const int64_t *p, size_t n, unsigned char *seen,      \
                             const char **why) {                                               \
    memset(seen, 0, n);                                                                        \
    for (size_t i = 0; i < n; i++) {                                                           \
      if (p[i] < 0 || (uint64_t)p[i] >= n) { *why = "index out of range"; return i + 1; }       \
      if (seen[p[i]]++) { *why = "index repeated (not a permutation)"; return i + 1; }          \
    }                                                                                          \
    for (size_t i = 0; i + 1 < n; i++) {                                                       \
      T a = k[p[i]], b = k[p[i + 1]];                                                          \
      if (LESS(b, a)) { *why = "keys out of order"; return i + 2; }                             \
      if (!LESS(a, b) && p[i] > p[i + 1]) { *why = "equal keys not in input order (unstable)"; return i + 2; } \
    }                                                                                          \
    return 0;                                                                                  \
  }

DEF_REF(double, f64, FLESS)
DEF_REF(float, f32, FLESS)
DEF_REF(int64_t, i64, ILESS)
DEF_REF(int32_t, i32, ILESS)
DEF_REF(int16_t, i16, ILESS)
DEF_REF(int8_t, i8, ILESS)
DEF_REF(uint64_t, u64, ILESS)
DEF_REF(uint32_t, u32, ILESS)
DEF_REF(uint16_t, u16, ILESS)
DEF_REF(uint8_t, u8, ILESS)

/* k must be aligned for its type (the generator's buffer is) */
static void reference(const void *k, int dt, int64_t *idx, int64_t *tmp, size_t n) {
  switch (dt) {
    case 0: ref_f64((const double *)k, idx, tmp, n); break;
    case 1: ref_f32((const float *)k, idx, tmp, n); break;
    case 2: ref_i64((const int64_t *)k, idx, tmp, n); break;
    case 3: ref_i32((const int32_t *)k, idx, tmp, n); break;
    case 4: ref_i16((const int16_t *)k, idx, tmp, n); break;
    case 5: ref_i8((const int8_t *)k, idx, tmp, n); break;
    case 6: ref_u64((const uint64_t *)k, idx, tmp, n); break;
    case 7: ref_u32((const uint32_t *)k, idx, tmp, n); break;
    case 8: ref_u16((const uint16_t *)k, idx, tmp, n); break;
    default: ref_u8((const uint8_t *)k, idx, tmp, n); break;
  }
}

static size_t check_perm(const void *k, int dt, const int64_t *p, size_t n, unsigned char *seen, const char **why) {
  switch (dt) {
    case 0: return check_f64((const double *)k, p, n, seen, why);
    case 1: return check_f32((const float *)k, p, n, seen, why);
    case 2: return check_i64((const int64_t *)k, p, n, seen, why);
    case 3: return check_i32((const int32_t *)k, p, n, seen, why);
    case 4: return check_i16((const int16_t *)k, p, n, seen, why);
    case 5: return check_i8((const int8_t *)k, p, n, seen, why);
    case 6: return check_u64((const uint64_t *)k, p, n, seen, why);
    case 7: return check_u32((const uint32_t *)k, p, n, seen, why);
    case 8: return check_u16((const uint16_t *)k, p, n, seen, why);
    default: return check_u8((const uint8_t *)k, p, n, seen, why);
  }
}

/* ---------------------------------------------------------------- keys */

static void put_bits(void *k, int dt, size_t i, uint64_t bits) { /* low DSIZE bytes (little endian) */
  memcpy((char *)k + i * DSIZE[dt], &bits, DSIZE[dt]);
}
static uint64_t get_bits(const void *k, int dt, size_t i) {
  uint64_t b = 0;
  memcpy(&b, (const char *)k + i * DSIZE[dt], DSIZE[dt]);
  return b;
}
static void put_real(void *k, int dt, size_t i, double v) {
  if (dt == 0) memcpy((char *)k + i * 8, &v, 8);
  else {
    float f = (float)v;
    memcpy((char *)k + i * 4, &f, 4);
  }
}

static void fmt_key(char *buf, size_t cap, const void *k, int dt, size_t i) {
  uint64_t b = get_bits(k, dt, i);
  if (dt == 0) {
    double d;
    memcpy(&d, &b, 8);
    snprintf(buf, cap, "%.17g (0x%016llx)", d, (unsigned long long)b);
  } else if (dt == 1) {
    float f;
    uint32_t u = (uint32_t)b;
    memcpy(&f, &u, 4);
    snprintf(buf, cap, "%.9g (0x%08x)", (double)f, (unsigned)u);
  } else if (is_signed(dt)) {
    int sh = 64 - 8 * (int)DSIZE[dt];
    long long v = (long long)(int64_t)(b << sh) >> sh;
    snprintf(buf, cap, "%lld", v);
  } else {
    snprintf(buf, cap, "%llu", (unsigned long long)b);
  }
}

/* IEEE special values: -inf, -MAX, -1, -MIN_NORMAL, -denorm_min, -0, +0, denorm_min, largest denormal,
 * MIN_NORMAL, 1, MAX, +inf, then NaNs: quiet, negative quiet, signalling, max payload, all ones */
#define NSPECIAL 18
#define NFIRST_NAN 13
static const uint64_t SPECIAL64[NSPECIAL] = {
    0xFFF0000000000000ULL, 0xFFEFFFFFFFFFFFFFULL, 0xBFF0000000000000ULL, 0x8010000000000000ULL,
    0x8000000000000001ULL, 0x8000000000000000ULL, 0x0000000000000000ULL, 0x0000000000000001ULL,
    0x000FFFFFFFFFFFFFULL, 0x0010000000000000ULL, 0x3FF0000000000000ULL, 0x7FEFFFFFFFFFFFFFULL,
    0x7FF0000000000000ULL, 0x7FF8000000000000ULL, 0xFFF8000000000000ULL, 0x7FF0000000000001ULL,
    0x7FFFFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFFFULL};
static const uint64_t SPECIAL32[NSPECIAL] = {
    0xFF800000, 0xFF7FFFFF, 0xBF800000, 0x80800000, 0x80000001, 0x80000000, 0x00000000, 0x00000001, 0x007FFFFF,
    0x00800000, 0x3F800000, 0x7F7FFFFF, 0x7F800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF, 0xFFFFFFFF};
static uint64_t special(int dt, int j) { return dt == 0 ? SPECIAL64[j] : SPECIAL32[j]; }
static uint64_t random_nan(rng_t *r, int dt) {
  if (rnd_below(r, 2)) return special(dt, NFIRST_NAN + (int)rnd_below(r, NSPECIAL - NFIRST_NAN));
  if (dt == 0) return 0x7FF0000000000000ULL | (rnd(r) & 0x800FFFFFFFFFFFFFULL) | 1; /* random payload, sign */
  return 0x7F800000ULL | (rnd(r) & 0x807FFFFFULL) | 1;
}

/* the extreme values of an integer dtype */
static uint64_t extreme_int(rng_t *r, int dt) {
  int bits = 8 * (int)DSIZE[dt];
  uint64_t umax = bits == 64 ? UINT64_MAX : (((uint64_t)1 << bits) - 1);
  if (is_signed(dt)) {
    uint64_t smin = (uint64_t)1 << (bits - 1), smax = smin - 1; /* as bit patterns */
    const uint64_t v[] = {smin, smin + 1, umax /* -1 */, 0, 1, smax - 1, smax};
    return v[rnd_below(r, 7)];
  }
  const uint64_t v[] = {0, 1, 2, umax / 2, umax / 2 + 1, umax - 1, umax};
  return v[rnd_below(r, 7)];
}

/* a float from a mixture: small integers (many duplicates, ±0), fractions, specials */
static uint64_t mixed_float(rng_t *r, int dt) {
  uint64_t c = rnd_below(r, 10);
  if (c < 3) return special(dt, (int)rnd_below(r, NSPECIAL));
  double v = c < 6 ? (double)((int)rnd_below(r, 9) - 4) : (rnd_unit(r) - 0.5) * 1e6;
  if (v == 0 && rnd_below(r, 2)) v = -0.0;
  if (dt == 0) {
    uint64_t b;
    memcpy(&b, &v, 8);
    return b;
  }
  float f = (float)v;
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

enum {
  D_RANDOM,     /* random bits (floats: every exponent, NaNs with payloads, denormals) */
  D_SORTED,     /* ascending (with duplicates) */
  D_REVERSED,   /* descending */
  D_EQUAL,      /* all keys equal */
  D_FEW,        /* 2..5 distinct values */
  D_EXTREME,    /* INT_MIN/MAX, 0, -1, ... / float specials */
  D_SKEW,       /* 99% in a narrow range, 1% anywhere: one top-level bucket holds almost everything */
  D_DOMINANT,   /* 95% one value, 5% random: nested skew down to an all-equal bucket */
  D_SMALLRANGE, /* values in [0, n/8): many duplicates */
  D_ORGAN,      /* organ pipe 0,1,2,...,2,1,0 (wrapping in narrow types) */
  D_UNIFORM01,  /* floats: uniform [0, 1) (keys clustered under a few exponents) */
  D_SPECIALS,   /* floats: NaN/inf/-0.0/denormals mixed with small integers */
  D_NANHEAVY,   /* floats: 60% NaN of every kind */
  D_ZEROS,      /* floats: only -0.0 and +0.0 (all equal: identity) */
  D_ALLNAN,     /* floats: only NaNs (all equal: identity) */
  NDIST
};
static const char *DISTNAME[NDIST] = {"random", "sorted", "reversed", "equal", "few", "extreme", "skew", "dominant",
                                      "smallrange", "organ", "uniform01", "specials", "nanheavy", "zeros", "allnan"};

static int dist_applies(int d, int dt) { return d < D_UNIFORM01 || is_float(dt); }

/* a "random" value of the dtype for the generic distributions */
static uint64_t any_value(rng_t *r, int dt) {
  if (is_float(dt)) return rnd_below(r, 2) ? mixed_float(r, dt) : rnd(r);
  return rnd_below(r, 4) ? rnd(r) : extreme_int(r, dt);
}

/* Fills k (aligned, n keys of dt) with distribution d; scratch: 2n int64 + n keys of room. */
static void generate(void *k, int dt, int d, size_t n, rng_t *r, int64_t *i1, int64_t *i2, void *kt) {
  size_t sz = DSIZE[dt];
  switch (d) {
    case D_RANDOM:
      for (size_t i = 0; i < n; i++) put_bits(k, dt, i, rnd(r));
      break;
    case D_SORTED:
    case D_REVERSED:
      for (size_t i = 0; i < n; i++) put_bits(kt, dt, i, any_value(r, dt));
      reference(kt, dt, i1, i2, n);
      for (size_t i = 0; i < n; i++) {
        size_t from = (size_t)i1[d == D_SORTED ? i : n - 1 - i];
        memcpy((char *)k + i * sz, (char *)kt + from * sz, sz);
      }
      break;
    case D_EQUAL: {
      uint64_t v = any_value(r, dt);
      for (size_t i = 0; i < n; i++) put_bits(k, dt, i, v);
      break;
    }
    case D_FEW: {
      uint64_t v[5];
      size_t m = 2 + rnd_below(r, 4);
      for (size_t j = 0; j < m; j++) v[j] = any_value(r, dt);
      for (size_t i = 0; i < n; i++) put_bits(k, dt, i, v[rnd_below(r, m)]);
      break;
    }
    case D_EXTREME:
      for (size_t i = 0; i < n; i++)
        put_bits(k, dt, i, is_float(dt) ? special(dt, (int)rnd_below(r, NSPECIAL)) : extreme_int(r, dt));
      break;
    case D_SKEW: {
      uint64_t base = rnd(r);
      double fbase = 1000.0 + (double)rnd_below(r, 1000);
      for (size_t i = 0; i < n; i++) {
        if (rnd_below(r, 100) == 0) put_bits(k, dt, i, any_value(r, dt));
        else if (is_float(dt)) put_real(k, dt, i, fbase + 0.25 * (double)rnd_below(r, 1000));
        else put_bits(k, dt, i, base + rnd_below(r, sz == 1 ? 4 : 1000));
      }
      break;
    }
    case D_DOMINANT: {
      uint64_t v = any_value(r, dt);
      for (size_t i = 0; i < n; i++) put_bits(k, dt, i, rnd_below(r, 20) ? v : any_value(r, dt));
      break;
    }
    case D_SMALLRANGE: {
      uint64_t range = n / 8 + 1;
      for (size_t i = 0; i < n; i++) {
        int64_t v = (int64_t)rnd_below(r, range) - (is_signed(dt) || is_float(dt) ? (int64_t)(range / 2) : 0);
        if (is_float(dt)) put_real(k, dt, i, v == 0 && rnd_below(r, 2) ? -0.0 : (double)v);
        else put_bits(k, dt, i, (uint64_t)v);
      }
      break;
    }
    case D_ORGAN:
      for (size_t i = 0; i < n; i++) {
        size_t v = i < n - 1 - i ? i : n - 1 - i;
        if (is_float(dt)) put_real(k, dt, i, (double)v);
        else put_bits(k, dt, i, (uint64_t)v);
      }
      break;
    case D_UNIFORM01:
      for (size_t i = 0; i < n; i++) put_real(k, dt, i, rnd_unit(r));
      break;
    case D_SPECIALS:
      for (size_t i = 0; i < n; i++) put_bits(k, dt, i, mixed_float(r, dt));
      break;
    case D_NANHEAVY:
      for (size_t i = 0; i < n; i++) put_bits(k, dt, i, rnd_below(r, 10) < 6 ? random_nan(r, dt) : mixed_float(r, dt));
      break;
    case D_ZEROS:
      for (size_t i = 0; i < n; i++) put_real(k, dt, i, rnd_below(r, 2) ? -0.0 : 0.0);
      break;
    case D_ALLNAN:
      for (size_t i = 0; i < n; i++) put_bits(k, dt, i, random_nan(r, dt));
      break;
  }
}

/* ---------------------------------------------------------------- running one case */

#define SENTINEL ((int64_t)0x5A5A5A5A5A5A5A5AULL)

enum { M_MALLOC, M_EMPTY, M_MALLOC_ODD, M_EMPTY_ODD, NMEM };
static const char *MEMNAME[NMEM] = {"malloc keys+out", "sm_empty keys+out", "malloc keys at odd offset",
                                    "sm_empty keys at odd offset"};

typedef struct {
  sm_pool *pool;
  int nworkers; /* as reported, for messages (-1: NULL pool) */
  const char *name;
} pool_t;

typedef struct {
  int dt, d;
  size_t n;
  const void *k;        /* aligned keys */
  const int64_t *ref;   /* reference permutation */
  unsigned char *seen;  /* n bytes */
  long ncalls;
} case_t;

static void report_mismatch(const case_t *c, const pool_t *p, int mem, size_t off, const int64_t *got) {
  char ka[80], kb[80];
  size_t i = 0;
  while (i < c->n && got[i] == c->ref[i]) i++;
  const char *why = "ok";
  size_t bad = check_perm(c->k, c->dt, got, c->n, c->seen, &why);
  fprintf(stderr, "sm_argsort(%s pool, n = %zu, %s, distribution %s, %s, byte offset %zu) differs from the stable "
          "reference at out[%zu]:\n",
          p->name, c->n, DNAME[c->dt], DISTNAME[c->d], MEMNAME[mem], off, i);
  if (i < c->n) {
    fmt_key(ka, sizeof ka, c->k, c->dt, (size_t)c->ref[i]);
    if (got[i] >= 0 && (uint64_t)got[i] < c->n) fmt_key(kb, sizeof kb, c->k, c->dt, (size_t)got[i]);
    else snprintf(kb, sizeof kb, "(out of range)");
    fprintf(stderr, "  expected index %lld (key %s), got %lld (key %s)\n", (long long)c->ref[i], ka,
            (long long)got[i], kb);
  }
  if (bad) fprintf(stderr, "  the output is wrong by itself: %s at out[%zu]\n", why, bad - 1);
  if (c->n <= 40) {
    fprintf(stderr, "  keys:");
    for (size_t j = 0; j < c->n; j++) {
      fmt_key(ka, sizeof ka, c->k, c->dt, j);
      fprintf(stderr, " [%zu]=%s", j, ka);
    }
    fprintf(stderr, "\n  expected:");
    for (size_t j = 0; j < c->n; j++) fprintf(stderr, " %lld", (long long)c->ref[j]);
    fprintf(stderr, "\n  got:     ");
    for (size_t j = 0; j < c->n; j++) fprintf(stderr, " %lld", (long long)got[j]);
    fprintf(stderr, "\n");
  }
}

/* Buffers reused by every call (fresh ones per call would cost more page faults than the sorts):
 * keys in malloc'd and in sm_empty memory, out in malloc'd and in sm_empty memory. out is refilled
 * with a sentinel before each call, so a stale result from an earlier call cannot pass. */
static char *g_kmal, *g_kemp;
static int64_t *g_omal, *g_oemp;
static size_t g_cap;

static void buffers_init(size_t nmax) {
  g_cap = nmax;
  g_kmal = (char *)malloc(nmax * 8 + 16);
  g_omal = (int64_t *)malloc((nmax + 2) * sizeof(int64_t));
  CHECK(g_kmal && g_omal, "malloc");
  g_kemp = (char *)must_empty(nmax * 8 + 16, 1);
  g_oemp = (int64_t *)must_empty(nmax + 2, sizeof(int64_t));
}

static void buffers_free(void) {
  free(g_kmal);
  free(g_omal);
  sm_free(g_kemp);
  sm_free(g_oemp);
}

static void run_case(case_t *c, const pool_t *p, int mem, size_t odd) {
  size_t n = c->n, ks = n * DSIZE[c->dt];
  CHECK(n <= g_cap, "case larger than the buffers");
  size_t off = (mem == M_MALLOC_ODD || mem == M_EMPTY_ODD) ? odd : 0;
  int empty_keys = mem == M_EMPTY || mem == M_EMPTY_ODD, empty_out = mem == M_EMPTY;
  char *keys = (empty_keys ? g_kemp : g_kmal) + off;
  int64_t *obuf = empty_out ? g_oemp : g_omal;
  memcpy(keys, c->k, ks);
  for (size_t i = 0; i < n + 2; i++) obuf[i] = SENTINEL;
  int64_t *out = obuf + 1;

  sm_status st = sm_argsort(p->pool, keys, n, DTYPES[c->dt], out);
  c->ncalls++;
  CHECK(st == SM_OK, "sm_argsort(%s pool, n = %zu, %s, distribution %s, %s) returned %s: %s", p->name, n,
        DNAME[c->dt], DISTNAME[c->d], MEMNAME[mem], sm_status_str(st), last_err());
  if (memcmp(out, c->ref, n * sizeof(int64_t)) != 0) {
    report_mismatch(c, p, mem, off, out);
    CHECK(0, "sm_argsort result differs from the reference (details above)");
  }
  CHECK(obuf[0] == SENTINEL && obuf[n + 1] == SENTINEL,
        "sm_argsort(%s pool, n = %zu, %s, %s) wrote outside out[0..n): out[-1] = %lld, out[n] = %lld", p->name, n,
        DNAME[c->dt], DISTNAME[c->d], (long long)obuf[0], (long long)obuf[n + 1]);
  CHECK(memcmp(keys, c->k, ks) == 0, "sm_argsort(%s pool, n = %zu, %s, %s) modified the keys", p->name, n,
        DNAME[c->dt], DISTNAME[c->d]);
}

/* ---------------------------------------------------------------- literal cases */

static void expect_literal(const pool_t *p, const char *what, const void *keys, size_t n, sm_dtype dt,
                           const int64_t *expected) {
  int64_t out[64];
  CHECK(n <= 64, "literal too long");
  for (size_t i = 0; i < n; i++) out[i] = -7;
  sm_status st = sm_argsort(p->pool, keys, n, dt, out);
  CHECK(st == SM_OK, "%s (%s pool): %s: %s", what, p->name, sm_status_str(st), last_err());
  for (size_t i = 0; i < n; i++)
    if (out[i] != expected[i]) {
      fprintf(stderr, "%s (%s pool): expected", what, p->name);
      for (size_t j = 0; j < n; j++) fprintf(stderr, " %lld", (long long)expected[j]);
      fprintf(stderr, "\n  got:");
      for (size_t j = 0; j < n; j++) fprintf(stderr, " %lld", (long long)out[j]);
      fprintf(stderr, "\n");
      CHECK(0, "%s: out[%zu] = %lld, expected %lld", what, i, (long long)out[i], (long long)expected[i]);
    }
}

static void literal_cases(const pool_t *p) {
  /* numpy.argsort(kind='stable') of these, worked out by hand */
  const double f[] = {NAN, 1.0, -0.0, -INFINITY, 0.0, INFINITY, -NAN, -1.0, 0.0, -0.0, 1.0, NAN};
  const int64_t fe[] = {3, 7, 2, 4, 8, 9, 1, 10, 5, 0, 6, 11};
  expect_literal(p, "f64 NaN/inf/-0.0 literal", f, 12, SM_DTYPE_F64, fe);
  const float g[] = {NAN, 1.0f, -0.0f, -INFINITY, 0.0f, INFINITY, -NAN, -1.0f, 0.0f, -0.0f, 1.0f, NAN};
  expect_literal(p, "f32 NaN/inf/-0.0 literal", g, 12, SM_DTYPE_F32, fe);
  const double dn[] = {5e-324, -5e-324, 0.0, DBL_MIN, -DBL_MAX, DBL_MAX};
  const int64_t dne[] = {4, 1, 2, 0, 3, 5};
  expect_literal(p, "f64 denormals literal", dn, 6, SM_DTYPE_F64, dne);
  const int64_t a[] = {0, INT64_MAX, INT64_MIN, -1, 1, INT64_MIN, INT64_MAX, 0};
  const int64_t ae[] = {2, 5, 3, 0, 7, 4, 1, 6};
  expect_literal(p, "i64 extremes literal", a, 8, SM_DTYPE_I64, ae);
  const int32_t a32[] = {0, INT32_MAX, INT32_MIN, -1, 1, INT32_MIN, INT32_MAX, 0};
  expect_literal(p, "i32 extremes literal", a32, 8, SM_DTYPE_I32, ae);
  const int16_t a16[] = {0, INT16_MAX, INT16_MIN, -1, 1, INT16_MIN, INT16_MAX, 0};
  expect_literal(p, "i16 extremes literal", a16, 8, SM_DTYPE_I16, ae);
  const int8_t a8[] = {0, INT8_MAX, INT8_MIN, -1, 1, INT8_MIN, INT8_MAX, 0};
  expect_literal(p, "i8 extremes literal", a8, 8, SM_DTYPE_I8, ae);
  const uint64_t u[] = {UINT64_MAX, 0, (uint64_t)1 << 63, ((uint64_t)1 << 63) - 1, 1, UINT64_MAX, 0};
  const int64_t ue[] = {1, 6, 4, 3, 2, 0, 5};
  expect_literal(p, "u64 extremes literal", u, 7, SM_DTYPE_U64, ue);
  const uint32_t u32[] = {UINT32_MAX, 0, 1u << 31, (1u << 31) - 1, 1, UINT32_MAX, 0};
  expect_literal(p, "u32 extremes literal", u32, 7, SM_DTYPE_U32, ue);
  const uint16_t u16[] = {UINT16_MAX, 0, 1u << 15, (1u << 15) - 1, 1, UINT16_MAX, 0};
  expect_literal(p, "u16 extremes literal", u16, 7, SM_DTYPE_U16, ue);
  const uint8_t u8[] = {UINT8_MAX, 0, 1u << 7, (1u << 7) - 1, 1, UINT8_MAX, 0};
  expect_literal(p, "u8 extremes literal", u8, 7, SM_DTYPE_U8, ue);
  /* n = 1, n = 2 equal, n = 2 descending */
  const double one[] = {NAN};
  const int64_t z[] = {0, 1};
  expect_literal(p, "n = 1 (NaN)", one, 1, SM_DTYPE_F64, z);
  const double two_eq[] = {-0.0, 0.0};
  expect_literal(p, "n = 2 (-0.0, +0.0)", two_eq, 2, SM_DTYPE_F64, z);
  const double two_eq2[] = {0.0, -0.0};
  expect_literal(p, "n = 2 (+0.0, -0.0)", two_eq2, 2, SM_DTYPE_F64, z);
  const int8_t two_desc[] = {1, -1};
  const int64_t zd[] = {1, 0};
  expect_literal(p, "n = 2 descending", two_desc, 2, SM_DTYPE_I8, zd);
  /* n = 0 with NULL arrays and with real ones */
  CHECK(sm_argsort(p->pool, NULL, 0, SM_DTYPE_F64, NULL) == SM_OK, "n = 0, NULL arrays (%s pool): %s", p->name,
        last_err());
  int64_t o1 = 42;
  CHECK(sm_argsort(p->pool, f, 0, SM_DTYPE_F64, &o1) == SM_OK && o1 == 42, "n = 0 (%s pool): %s, out[0] = %lld",
        p->name, last_err(), (long long)o1);
}

/* ---------------------------------------------------------------- the matrix */

static const size_t SIZES[] = {0,   1,    2,    3,    4,    5,     7,     8,     15,    16,    17,   31,
                               32,  33,   34,   63,   64,   65,    100,   255,   256,   257,   1000, 2047,
                               2048, 2049, 4097, 12345, 32767, 32768, 32769, 65537, 98305};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])
#define NMAX 98305

static atomic_int g_forks;
static void count_fork(void) { atomic_fetch_add(&g_forks, 1); }

/* Cases with n > SMALL_N are split between the registered runs: run `part` of `parts` runs only the
 * large cases whose index is part modulo parts (the backends and worker counts are then spread over
 * them), each with every pool and one (rotating) kind of memory; cases up to SMALL_N run in every
 * run, with every pool, and every kind of memory up to n = 300 (two of the four, rotating, above). */
#define SMALL_N 4096

static void sort_matrix(pool_t *pools, int npools, int part, int parts) {
  void *k = malloc(NMAX * 8), *kt = malloc(NMAX * 8);
  int64_t *ref = (int64_t *)malloc(NMAX * sizeof(int64_t)), *i1 = (int64_t *)malloc(NMAX * sizeof(int64_t)),
          *i2 = (int64_t *)malloc(NMAX * sizeof(int64_t));
  unsigned char *seen = (unsigned char *)malloc(NMAX);
  CHECK(k && kt && ref && i1 && i2 && seen, "malloc");
  long total = 0, ncases = 0, nlarge = 0;
  buffers_init(NMAX);
  for (int pi = 0; pi < npools; pi++) literal_cases(&pools[pi]);
  for (int dt = 0; dt < NDT; dt++) {
    long calls_before = total;
    for (int d = 0; d < NDIST; d++) {
      if (!dist_applies(d, dt)) continue;
      for (size_t si = 0; si < NSIZES; si++) {
        size_t n = SIZES[si];
        if (n > SMALL_N && nlarge++ % parts != part) continue;
        rng_t r = {0x1234567ULL ^ ((uint64_t)dt << 56) ^ ((uint64_t)d << 48) ^ (uint64_t)n * 0x9E3779B97F4A7C15ULL};
        generate(k, dt, d, n, &r, i1, i2, kt);
        reference(k, dt, ref, i1, n);
        const char *why = "";
        size_t bad = check_perm(k, dt, ref, n, seen, &why);
        CHECK(bad == 0, "the reference itself is wrong (%s at %zu) for %s %s n = %zu", why, bad - 1, DNAME[dt],
              DISTNAME[d], n);
        case_t c = {dt, d, n, k, ref, seen, 0};
        ncases++;
        for (int pi = 0; pi < npools; pi++) {
          /* every memory kind for small n; one (rotating) per pool for large n */
          size_t odd = 1 + 2 * (size_t)((si + (size_t)pi) % 4); /* 1, 3, 5, 7 */
          if (n <= 300) {
            for (int m = 0; m < NMEM; m++) run_case(&c, &pools[pi], m, odd);
          } else if (n <= SMALL_N) {
            for (int m = 0; m < NMEM; m += 2) run_case(&c, &pools[pi], (m + pi + (int)si) % NMEM, odd);
          } else {
            run_case(&c, &pools[pi], (int)((si + (size_t)d + (size_t)pi) % NMEM), odd);
          }
        }
        total += c.ncalls;
      }
    }
    printf("%s: %ld sm_argsort calls match the reference\n", DNAME[dt], total - calls_before);
  }
  printf("%ld cases, %ld calls, all exact\n", ncases, total);
  buffers_free();
  free(k);
  free(kt);
  free(ref);
  free(i1);
  free(i2);
  free(seen);
}

/* ---------------------------------------------------------------- bad input */

static void expect_invalid(const char *what, sm_status st, const char *k1, const char *k2) {
  const char *m = last_err();
  printf("%-62s -> %s \"%s\"\n", what, sm_status_str(st), m);
  CHECK(st == SM_ERR_INVALID, "%s returned %s, expected SM_ERR_INVALID (message \"%s\")", what, sm_status_str(st), m);
  CHECK(m[0] != 0, "%s: sm_last_error() is empty", what);
  CHECK(icontains(m, k1) && (!k2 || icontains(m, k2)), "%s: message \"%s\" should mention \"%s\"%s%s%s", what, m, k1,
        k2 ? " and \"" : "", k2 ? k2 : "", k2 ? "\"" : "");
}

static void invalid_input(sm_backend b) {
  sm_pool *pool = new_pool(3, b);
  double keys[16];
  int64_t out[16];
  for (int i = 0; i < 16; i++) {
    keys[i] = 16 - i;
    out[i] = SENTINEL;
  }
  sm_pool *pools[2] = {pool, NULL};
  for (int pi = 0; pi < 2; pi++) {
    sm_pool *p = pools[pi];
    const char *pn = p ? "pool" : "NULL pool";
    char what[160];
    snprintf(what, sizeof what, "sm_argsort(%s, keys NULL, n = 5)", pn);
    expect_invalid(what, sm_argsort(p, NULL, 5, SM_DTYPE_F64, out), "keys", "null");
    snprintf(what, sizeof what, "sm_argsort(%s, out NULL, n = 5)", pn);
    expect_invalid(what, sm_argsort(p, keys, 5, SM_DTYPE_F64, NULL), "out", "null");
    snprintf(what, sizeof what, "sm_argsort(%s, both NULL, n = 1)", pn);
    expect_invalid(what, sm_argsort(p, NULL, 1, SM_DTYPE_U8, NULL), "null", NULL);
    snprintf(what, sizeof what, "sm_argsort(%s, dtype (sm_dtype)10)", pn);
    expect_invalid(what, sm_argsort(p, keys, 5, (sm_dtype)10, out), "dtype", "10");
    snprintf(what, sizeof what, "sm_argsort(%s, dtype (sm_dtype)-1)", pn);
    expect_invalid(what, sm_argsort(p, keys, 5, (sm_dtype)-1, out), "dtype", "-1");
    snprintf(what, sizeof what, "sm_argsort(%s, dtype (sm_dtype)1000000)", pn);
    expect_invalid(what, sm_argsort(p, keys, 5, (sm_dtype)1000000, out), "dtype", NULL);
    for (int i = 0; i < 16; i++)
      CHECK(out[i] == SENTINEL, "a refused sm_argsort wrote out[%d] = %lld", i, (long long)out[i]);
    /* n = 0 with NULL arrays: nothing to do */
    for (int dt = 0; dt < NDT; dt++)
      CHECK(sm_argsort(p, NULL, 0, DTYPES[dt], NULL) == SM_OK, "sm_argsort(%s, NULL, 0, %s, NULL) != SM_OK: %s", pn,
            DNAME[dt], last_err());
    CHECK(sm_argsort(p, keys, 0, SM_DTYPE_F64, NULL) == SM_OK, "n = 0, out NULL: %s", last_err());
    CHECK(sm_argsort(p, NULL, 0, SM_DTYPE_F64, out) == SM_OK, "n = 0, keys NULL: %s", last_err());

    /* n beyond what int64_t indices (and size_t byte counts) can hold: refused before any access */
    const size_t huge[] = {SIZE_MAX, (size_t)INT64_MAX + 1, SIZE_MAX / 8 + 1};
    for (int h = 0; h < 3; h++)
      for (int dt = 0; dt < NDT; dt++) {
        char nbuf[32];
        snprintf(nbuf, sizeof nbuf, "%zu", huge[h]);
        snprintf(what, sizeof what, "sm_argsort(%s, n = %zu, %s)", pn, huge[h], DNAME[dt]);
        sm_status st = sm_argsort(p, keys, huge[h], DTYPES[dt], out);
        const char *m = last_err();
        expect_invalid(what, st, "", NULL);
        CHECK(icontains(m, nbuf) || icontains(m, "overflow") || icontains(m, "too large") || icontains(m, "int64"),
              "%s: message \"%s\" should name n (%s) or say it is too large", what, m, nbuf);
      }
    for (int i = 0; i < 16; i++)
      CHECK(out[i] == SENTINEL, "a refused sm_argsort wrote out[%d] = %lld", i, (long long)out[i]);
  }

  /* overlapping keys and out: refused, arrays untouched (the buffer is large enough that a call
   * that is wrongly accepted cannot write outside it). Adjacent arrays are fine. */
  {
    enum { NB = 256 };
    int64_t *buf = (int64_t *)must_empty(NB, sizeof(int64_t));
    char *cb = (char *)buf;
    for (int i = 0; i < NB; i++) buf[i] = NB - i;
    int64_t *copy = (int64_t *)malloc(NB * sizeof(int64_t));
    CHECK(copy, "malloc");
    memcpy(copy, buf, NB * sizeof(int64_t));
    struct {
      const char *what;
      const void *keys;
      size_t n;
      sm_dtype dt;
      int64_t *out;
    } ov[] = {
        {"out == keys (i64, n = 16)", buf, 16, SM_DTYPE_I64, buf},
        {"out == keys (f64, n = 1)", buf, 1, SM_DTYPE_F64, buf},
        {"out starts at the last key (i64)", buf, 16, SM_DTYPE_I64, buf + 15},
        {"keys start at the last out element (i64)", buf + 15, 16, SM_DTYPE_I64, buf},
        {"last key byte is the first out byte (u8)", cb + 113, 16, SM_DTYPE_U8, buf + 16},
        {"last out byte is the first key byte (u8)", cb + 127, 16, SM_DTYPE_U8, buf},
        {"keys inside out (i16 at an odd address)", cb + 3, 4, SM_DTYPE_I16, buf},
        {"out starts inside u8 keys (n = 64)", cb, 64, SM_DTYPE_U8, buf + 2},
    };
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
      char what[160];
      snprintf(what, sizeof what, "sm_argsort overlapping: %s", ov[i].what);
      expect_invalid(what, sm_argsort(pool, ov[i].keys, ov[i].n, ov[i].dt, ov[i].out), "overlap", NULL);
      CHECK(memcmp(copy, buf, NB * sizeof(int64_t)) == 0, "%s: the refused call changed the arrays", what);
    }
    /* adjacent, not overlapping: out right before keys, and keys right before out */
    int64_t *o = buf, *kk = buf + 16;
    for (int i = 0; i < 16; i++) kk[i] = (i * 7) % 16;
    CHECK(sm_argsort(pool, kk, 16, SM_DTYPE_I64, o) == SM_OK, "out right before keys: %s", last_err());
    for (int i = 0; i < 16; i++) CHECK(kk[o[i]] == i, "out right before keys: wrong result at %d", i);
    kk = buf + 32;
    o = buf + 32 + 16;
    for (int i = 0; i < 16; i++) kk[i] = (i * 5) % 16;
    CHECK(sm_argsort(pool, kk, 16, SM_DTYPE_I64, o) == SM_OK, "keys right before out: %s", last_err());
    for (int i = 0; i < 16; i++) CHECK(kk[o[i]] == i, "keys right before out: wrong result at %d", i);
    uint8_t *k8 = (uint8_t *)(buf + 8);
    o = buf;
    for (int i = 0; i < 8; i++) k8[i] = (uint8_t)(7 - i);
    CHECK(sm_argsort(pool, k8, 8, SM_DTYPE_U8, o) == SM_OK, "u8 keys right after out: %s", last_err());
    for (int i = 0; i < 8; i++) CHECK(o[i] == 7 - i, "u8 keys right after out: out[%d] = %lld", i, (long long)o[i]);
    k8 = (uint8_t *)(buf + 100) - 8;
    o = buf + 100;
    for (int i = 0; i < 8; i++) k8[i] = (uint8_t)(i % 2);
    CHECK(sm_argsort(pool, k8, 8, SM_DTYPE_U8, o) == SM_OK, "u8 keys right before out: %s", last_err());
    for (int i = 0; i < 8; i++)
      CHECK(o[i] == (i < 4 ? 2 * i : 2 * (i - 4) + 1), "u8 keys right before out: out[%d] = %lld", i,
            (long long)o[i]);
    free(copy);
    sm_free(buf);
  }

  /* a freed pool and something that never was a pool: refused, not used */
  {
    sm_pool *dead = new_pool(2, b);
    sm_pool_free(dead);
    expect_invalid("sm_argsort(freed pool)", sm_argsort(dead, keys, 5, SM_DTYPE_F64, out), "pool", NULL);
    int not_a_pool[64] = {0};
    expect_invalid("sm_argsort(pointer that is not a pool)",
                   sm_argsort((sm_pool *)not_a_pool, keys, 5, SM_DTYPE_F64, out), "pool", NULL);
    for (int i = 0; i < 16; i++)
      CHECK(out[i] == SENTINEL, "a refused sm_argsort wrote out[%d] = %lld", i, (long long)out[i]);
  }

  /* the pool still works after all that */
  CHECK(sm_argsort(pool, keys, 16, SM_DTYPE_F64, out) == SM_OK, "sm_argsort after errors: %s", last_err());
  for (int i = 0; i < 16; i++) CHECK(out[i] == 15 - i, "sm_argsort after errors: out[%d] = %lld", i, (long long)out[i]);
  sm_pool_free(pool);
}

int main(int argc, char **argv) {
  int null_pool = argc >= 2 && strcmp(argv[1], "null") == 0;
  sm_backend b = SM_BACKEND_THREAD;
  if (!null_pool) b = parse_backend(argc, argv);
  else g_backend_name = "null";
  const char *mode = argc >= 3 ? argv[2] : "sort";
  int part = 0, parts = 1;
  if (argc >= 4)
    CHECK(sscanf(argv[3], "%d/%d", &part, &parts) == 2 && parts > 0 && part >= 0 && part < parts,
          "bad part/parts \"%s\"", argv[3]);
  watchdog(120);
  CHECK(pthread_atfork(count_fork, NULL, NULL) == 0, "pthread_atfork");
  {
    uint16_t one = 1;
    CHECK(*(uint8_t *)&one == 1, "this test generates keys assuming a little-endian machine");
  }

  if (strcmp(mode, "invalid") == 0) {
    CHECK(!null_pool, "the invalid mode takes a backend");
    invalid_input(b);
    printf("bad input: all refused with SM_ERR_INVALID and a message\n");
    return 0;
  }
  CHECK(strcmp(mode, "sort") == 0, "unknown mode %s", mode);

  pool_t pools[4];
  int npools = 0;
  char names[4][48];
  if (null_pool) {
    pools[0].pool = NULL;
    pools[0].nworkers = -1;
    pools[0].name = "NULL";
    npools = 1;
    const char *omp = getenv("OMP_NUM_THREADS");
    printf("NULL pool (OMP_NUM_THREADS=%s, %d CPUs)\n", omp ? omp : "unset", affinity_cpus());
  } else {
    const int ws[4] = {1, 2, 3, 8};
    for (int i = 0; i < 4; i++) {
      pools[i].pool = new_pool(ws[i], b);
      pools[i].nworkers = sm_pool_nworkers(pools[i].pool);
      int expected = b == SM_BACKEND_SERIAL ? 1 : ws[i]; /* a serial pool has one worker */
      CHECK(pools[i].nworkers == expected, "sm_pool_nworkers = %d, expected %d", pools[i].nworkers, expected);
      snprintf(names[i], sizeof names[i], "%s %d-worker", g_backend_name, ws[i]);
      pools[i].name = names[i];
    }
    npools = 4;
  }
  long long t0 = now_ms();
  if (parts > 1) printf("large cases: part %d of %d\n", part, parts);
  sort_matrix(pools, npools, part, parts);
  printf("(%lld ms)\n", now_ms() - t0);

  /* threads, whatever the backend: sm_argsort never forks, leaves no children */
  CHECK(atomic_load(&g_forks) == 0, "sm_argsort forked %d time(s); it must run as threads", atomic_load(&g_forks));
  CHECK_NO_CHILDREN("after sm_argsort");
  for (int i = 0; i < npools; i++)
    if (pools[i].pool) sm_pool_free(pools[i].pool);
  return 0;
}
