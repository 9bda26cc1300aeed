/*
 * The benchmark of issue 15: sm_mpi_argsort against its peers. scripts/bench-mpisort.sh runs it
 * together with the mpsort peer (bench/mpisort_peer.py) and writes bench/RESULTS-mpisort.md.
 *
 *   mpirun -np 4 mpisort_bench [NLOCAL [RUNS [KEYDIR]]]
 *   (NLOCAL keys per rank, 2500000 by default; RUNS timed runs per measure, 5 by default, after
 *   one warm-up; KEYDIR: when given, each rank writes its keys of case C to KEYDIR/C.keys.RANK
 *   and its sm_mpi_argsort output to KEYDIR/C.out.RANK, raw native-endian 8-byte items, for the
 *   peer to read the same keys and to check its order against ours)
 *
 * Cases: float64 and int64 keys, each in three distributions, generated on each rank from a
 * splitmix64 stream seeded by (case, rank):
 *   uniform    f64: u in [0, 1); i64: every 64-bit value equally likely;
 *   powerlaw   Pareto with alpha 1: 1 / u with u in (0, 1]; i64: floor of that (half the keys
 *              are 1, a sixth are 2, ...; values up to 2^53), so a heavy tail and many ties;
 *   fewvalues  90% of the keys on 3 values (-1, 0, 1), the other 10% uniform as in "uniform"
 *              (f64 in [-2, 2), i64 any value).
 *
 * Each rank has a pool `sm_pool_new(2, SM_BACKEND_THREAD)` (2 threads: the sort's thread count),
 * created once before any timing. Measures, each timed from an MPI_Barrier to the end of the
 * call on every rank, the time being the maximum over the ranks (MPI_Allreduce MAX of each rank's
 * MPI_Wtime difference), median [min .. max] of RUNS runs after one warm-up:
 *   mpi      sm_mpi_argsort of the rank's keys on MPI_COMM_WORLD;
 *   local    sm_argsort of the same per-rank keys on the same pool, every rank at once (the local
 *            phase sm_mpi_argsort starts with, in the same conditions: the peer of the 1.5x target);
 *   gather   MPI_Gatherv of every rank's keys to rank 0, then sm_argsort of the 4 x NLOCAL keys
 *            there on rank 0's pool (the result is not scattered back: not included);
 *   phase_local, phase_split, phase_exchange, phase_merge
 *            the phases inside each timed sm_mpi_argsort call, found from the MPI calls the
 *            library makes (intercepted through the MPI profiling interface, see "phases"
 *            below): phase_local is the local sm_argsort inside sm_mpi_argsort, the one the 1.5x
 *            target is about; "n/a" when the calls do not have the expected shape.
 * Checked once per case (any failure aborts): the concatenated sm_mpi_argsort output, gathered on
 * rank 0, is a permutation of [0, N), the keys in that order are non-decreasing and equal keys
 * are in increasing index order (checked directly on the keys), and it is identical to rank 0's
 * sm_argsort of the gathered keys.
 *
 * Prints on rank 0 "case NAME MEASURE median min max" (seconds) per case and measure, plus
 * "sharedmem VERSION", "mpi LIBRARY_VERSION" and "check NAME ok" lines. A benchmark, not a test.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharedmem_mpi.h"

#define MAX_RUNS 51

#define BENCH_NAME "mpisort_bench"
#include "mpi_common.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* ---- keys ----------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* u in [0, 1) with 53 random bits */
static double unit(uint64_t *s) { return (double)(splitmix64(s) >> 11) * 0x1.0p-53; }

enum { DIST_UNIFORM, DIST_POWERLAW, DIST_FEWVALUES, NDIST };
static const char *dist_name[NDIST] = {"uniform", "powerlaw", "fewvalues"};

static void generate(void *keys, size_t n, sm_dtype dtype, int dist, uint64_t seed) {
  uint64_t s = seed;
  double *f = keys;
  int64_t *k = keys;
  for (size_t i = 0; i < n; i++) {
    uint64_t bits = splitmix64(&s);
    double u = (double)(bits >> 11) * 0x1.0p-53;
    if (dist == DIST_UNIFORM) {
      if (dtype == SM_DTYPE_F64) f[i] = u;
      else k[i] = (int64_t)bits;
    } else if (dist == DIST_POWERLAW) {
      double x = 1.0 / (1.0 - u); /* 1 - u in (0, 1] */
      if (dtype == SM_DTYPE_F64) f[i] = x;
      else k[i] = (int64_t)x;
    } else {
      if (u < 0.9) {
        int v = (int)(bits % 3) - 1;
        if (dtype == SM_DTYPE_F64) f[i] = v;
        else k[i] = v;
      } else if (dtype == SM_DTYPE_F64) {
        f[i] = 4.0 * unit(&s) - 2.0;
      } else {
        k[i] = (int64_t)splitmix64(&s);
      }
    }
  }
}

/* ---- timing ---------------------------------------------------------------------------- */

typedef struct {
  double v[MAX_RUNS];
  int n;
} samples;

static void add_sample(samples *s, double t0) {
  double mine = MPI_Wtime() - t0, all;
  MPI_Allreduce(&mine, &all, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  s->v[s->n++] = all;
}

static void report(const char *cname, const char *measure, samples *s) {
  qsort(s->v, (size_t)s->n, sizeof s->v[0], cmp_double);
  if (world_rank == 0) {
    printf("case %s %s %.6f %.6f %.6f\n", cname, measure, s->v[s->n / 2], s->v[0], s->v[s->n - 1]);
    fflush(stdout);
  }
}

/* ---- the phases of sm_mpi_argsort, through the MPI profiling interface ------------------ */

/* libsharedmem_mpi's transport calls MPI_Allgather and (in its alltoallv) MPI_Waitall; these
 * definitions take their place (the executable's symbols come first) and record when each call
 * began and ended, then call the real PMPI_ functions. With the order of src/ranks/sort.rs's
 * argsort: allgather 1 (the collective check), the local sort (and the exchange buffers'
 * allocation), allgather 2 (all ranks sorted), the splitter rounds and the bounds (allgathers,
 * the bounds last), pack and two alltoallv (Waitall), the merge, the return:
 *   local    = enter(allgather 2) - exit(allgather 1)
 *   split    = exit(last allgather) - exit(allgather 2)
 *   exchange = exit(last Waitall) - exit(last allgather)  (pack and the alltoallv)
 *   merge    = return - exit(last Waitall)
 * each on one rank, then the maximum over the ranks. Time spent waiting inside a collective for
 * slower ranks is in none of them but the split and exchange phases. (SM_VERBOSE=1 makes the
 * library print the same phases itself, per rank.) */
#define MAX_EVENTS 256
static int trace_on, trace_n, trace_overflow;
static double trace_enter[MAX_EVENTS], trace_exit[MAX_EVENTS];
static char trace_kind[MAX_EVENTS];

static void trace(char kind, double t0) {
  if (!trace_on) return;
  if (trace_n == MAX_EVENTS) {
    trace_overflow = 1;
    return;
  }
  trace_kind[trace_n] = kind;
  trace_enter[trace_n] = t0;
  trace_exit[trace_n++] = MPI_Wtime();
}

int MPI_Allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                  int recvcount, MPI_Datatype recvtype, MPI_Comm comm) {
  double t0 = MPI_Wtime();
  int rc = PMPI_Allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm);
  trace('g', t0);
  return rc;
}

int MPI_Waitall(int count, MPI_Request reqs[], MPI_Status statuses[]) {
  double t0 = MPI_Wtime();
  int rc = PMPI_Waitall(count, reqs, statuses);
  trace('w', t0);
  return rc;
}

enum { PH_LOCAL, PH_SPLIT, PH_EXCHANGE, PH_MERGE, NPHASES };
static const char *phase_name[NPHASES] = {"phase_local", "phase_split", "phase_exchange",
                                          "phase_merge"};

/* The phases of the traced call on this rank (seconds), `end` the time it returned, or -1 each
 * when the calls seen do not have the expected shape (then the phases are reported as n/a). */
static void phases(double ph[NPHASES], double end) {
  int g[MAX_EVENTS], ng = 0, lastw = -1;
  for (int i = 0; i < trace_n; i++) {
    if (trace_kind[i] == 'g') g[ng++] = i;
    else lastw = i;
  }
  for (int p = 0; p < NPHASES; p++) ph[p] = -1;
  if (trace_overflow || ng < 3) return;
  int g1 = g[0], g2 = g[1], glast = g[ng - 1];
  /* one rank: no alltoallv, no Waitall */
  double xdone = lastw > glast ? trace_exit[lastw] : trace_exit[glast];
  ph[PH_LOCAL] = trace_enter[g2] - trace_exit[g1];
  ph[PH_SPLIT] = trace_exit[glast] - trace_exit[g2];
  ph[PH_EXCHANGE] = xdone - trace_exit[glast];
  ph[PH_MERGE] = end - xdone;
}

/* ---- check ----------------------------------------------------------------------------- */

/* key a < key b (no NaN in these keys) */
static int key_cmp(const void *keys, sm_dtype dtype, int64_t a, int64_t b) {
  if (dtype == SM_DTYPE_F64) {
    double x = ((const double *)keys)[a], y = ((const double *)keys)[b];
    return (x > y) - (x < y);
  }
  int64_t x = ((const int64_t *)keys)[a], y = ((const int64_t *)keys)[b];
  return (x > y) - (x < y);
}

/* Gathers keys and out on rank 0 and checks out as described at the top; ref (rank 0 only) is
 * rank 0's sm_argsort of the gathered keys, computed here. */
static void check(sm_pool *pool, const char *cname, const void *keys, const int64_t *out,
                  size_t nlocal, sm_dtype dtype) {
  size_t n = nlocal * (size_t)world_size;
  int *counts = xmalloc(sizeof(int) * (size_t)world_size);
  int *displs = xmalloc(sizeof(int) * (size_t)world_size);
  for (int r = 0; r < world_size; r++) {
    counts[r] = (int)nlocal;
    displs[r] = (int)(nlocal * (size_t)r);
  }
  void *all_keys = world_rank == 0 ? xmalloc(8 * n) : NULL;
  int64_t *all_out = world_rank == 0 ? xmalloc(8 * n) : NULL;
  MPI_Gatherv(keys, (int)nlocal, dtype == SM_DTYPE_F64 ? MPI_DOUBLE : MPI_INT64_T, all_keys,
              counts, displs, dtype == SM_DTYPE_F64 ? MPI_DOUBLE : MPI_INT64_T, 0, MPI_COMM_WORLD);
  MPI_Gatherv(out, (int)nlocal, MPI_INT64_T, all_out, counts, displs, MPI_INT64_T, 0,
              MPI_COMM_WORLD);
  int bad = 0;
  if (world_rank == 0) {
    unsigned char *seen = calloc(n, 1);
    if (!seen) DIE("out of memory");
    for (size_t i = 0; i < n && !bad; i++) {
      int64_t j = all_out[i];
      if (j < 0 || (size_t)j >= n || seen[j]) {
        fprintf(stderr, "check %s: out[%zu] = %lld is out of range or repeated\n", cname, i,
                (long long)j);
        bad = 1;
        break;
      }
      seen[j] = 1;
      if (i > 0) {
        int c = key_cmp(all_keys, dtype, all_out[i - 1], j);
        if (c > 0 || (c == 0 && all_out[i - 1] > j)) {
          fprintf(stderr, "check %s: positions %zu, %zu (indices %lld, %lld) out of order\n",
                  cname, i - 1, i, (long long)all_out[i - 1], (long long)j);
          bad = 1;
        }
      }
    }
    free(seen);
    if (!bad) {
      int64_t *ref = xmalloc(8 * n);
      check_status(sm_argsort(pool, all_keys, n, dtype, ref), "sm_argsort (check)");
      if (memcmp(ref, all_out, 8 * n) != 0) {
        fprintf(stderr, "check %s: sm_mpi_argsort differs from sm_argsort of the gathered keys\n",
                cname);
        bad = 1;
      }
      free(ref);
    }
    if (!bad) printf("check %s ok (%zu keys: a permutation, sorted, ties in index order, equal to sm_argsort of the concatenation)\n", cname, n);
    fflush(stdout);
  }
  MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (bad) DIE("check of %s failed (see rank 0's message)", cname);
  free(all_keys);
  free(all_out);
  free(counts);
  free(displs);
}

static void write_file(const char *dir, const char *cname, const char *what, const void *p,
                       size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.%s.%d", dir, cname, what, world_rank);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f) != 0) DIE("cannot write %s", path);
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  size_t nlocal = argc > 1 ? strtoull(argv[1], NULL, 10) : 2500000;
  int runs = argc > 2 ? atoi(argv[2]) : 5;
  const char *keydir = argc > 3 ? argv[3] : NULL;
  if (runs < 1 || runs > MAX_RUNS) DIE("RUNS must be in [1, %d]", MAX_RUNS);
  if (nlocal * (size_t)world_size > (size_t)INT32_MAX) DIE("too many keys for MPI_Gatherv");

  if (world_rank == 0) {
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;
    MPI_Get_library_version(lib, &len);
    for (char *c = lib; *c; c++)
      if (*c == '\n') *c = ' ';
    printf("sharedmem %s\nmpi %s\n", SM_VERSION_STRING, lib);
    printf("setup %d ranks x %zu keys, pool sm_pool_new(2, SM_BACKEND_THREAD), %d runs\n",
           world_size, nlocal, runs);
    fflush(stdout);
  }

  sm_pool *pool = sm_pool_new(2, SM_BACKEND_THREAD);
  if (!pool) DIE("sm_pool_new: %s", sm_last_error());

  size_t n = nlocal * (size_t)world_size;
  void *keys = xmalloc(8 * nlocal);
  int64_t *out = xmalloc(8 * nlocal);
  void *all_keys = world_rank == 0 ? xmalloc(8 * n) : NULL;
  int64_t *all_out = world_rank == 0 ? xmalloc(8 * n) : NULL;
  int *counts = xmalloc(sizeof(int) * (size_t)world_size);
  int *displs = xmalloc(sizeof(int) * (size_t)world_size);
  for (int r = 0; r < world_size; r++) {
    counts[r] = (int)nlocal;
    displs[r] = (int)(nlocal * (size_t)r);
  }

  const sm_dtype dtypes[2] = {SM_DTYPE_F64, SM_DTYPE_I64};
  const char *dtype_name[2] = {"float64", "int64"};
  for (int d = 0; d < 2; d++) {
    sm_dtype dtype = dtypes[d];
    MPI_Datatype mtype = dtype == SM_DTYPE_F64 ? MPI_DOUBLE : MPI_INT64_T;
    for (int dist = 0; dist < NDIST; dist++) {
      char cname[64];
      snprintf(cname, sizeof cname, "%s-%s", dtype_name[d], dist_name[dist]);
      uint64_t seed = 0x5EED0000ULL + (uint64_t)(d * NDIST + dist) * 1000003ULL +
                      (uint64_t)world_rank * 0x9E3779B97F4A7C15ULL;
      generate(keys, nlocal, dtype, dist, seed);

      samples s_mpi = {.n = 0}, s_local = {.n = 0}, s_gather = {.n = 0}, s_phase[NPHASES];
      for (int p = 0; p < NPHASES; p++) s_phase[p].n = 0;
      for (int run = -1; run < runs; run++) {
        /* (a) sm_mpi_argsort */
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        trace_on = 1;
        trace_n = trace_overflow = 0;
        check_status(sm_mpi_argsort(pool, MPI_COMM_WORLD, keys, nlocal, dtype, out),
                     "sm_mpi_argsort");
        double returned = MPI_Wtime();
        trace_on = 0;
        if (run >= 0) {
          add_sample(&s_mpi, t0);
          double ph[NPHASES], all[NPHASES];
          phases(ph, returned);
          MPI_Allreduce(ph, all, NPHASES, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
          double lo[NPHASES];
          MPI_Allreduce(ph, lo, NPHASES, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
          for (int p = 0; p < NPHASES; p++) s_phase[p].v[s_phase[p].n++] = lo[p] < 0 ? -1 : all[p];
        } else {
          MPI_Barrier(MPI_COMM_WORLD);
        }
        if (run == -1) check(pool, cname, keys, out, nlocal, dtype);
        if (run == -1 && keydir) {
          write_file(keydir, cname, "keys", keys, 8 * nlocal);
          write_file(keydir, cname, "out", out, 8 * nlocal);
        }

        /* (b) the local phase: sm_argsort of the same per-rank keys, every rank at once */
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
        check_status(sm_argsort(pool, keys, nlocal, dtype, out), "sm_argsort (local)");
        if (run >= 0) add_sample(&s_local, t0);

        /* (c) gather the keys to rank 0 and sm_argsort them there */
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
        MPI_Gatherv(keys, (int)nlocal, mtype, all_keys, counts, displs, mtype, 0,
                    MPI_COMM_WORLD);
        if (world_rank == 0)
          check_status(sm_argsort(pool, all_keys, n, dtype, all_out), "sm_argsort (gathered)");
        if (run >= 0) add_sample(&s_gather, t0);
      }
      report(cname, "mpi", &s_mpi);
      report(cname, "local", &s_local);
      report(cname, "gather", &s_gather);
      for (int p = 0; p < NPHASES; p++) {
        int ok = 1;
        for (int i = 0; i < s_phase[p].n; i++) ok &= s_phase[p].v[i] >= 0;
        if (ok) report(cname, phase_name[p], &s_phase[p]);
        else if (world_rank == 0) printf("case %s %s n/a\n", cname, phase_name[p]);
      }
    }
  }

  sm_pool_free(pool);
  free(keys);
  free(out);
  free(all_keys);
  free(all_out);
  free(counts);
  free(displs);
  MPI_Finalize();
  return 0;
}
