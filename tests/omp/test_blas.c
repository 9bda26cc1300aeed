/* dgemm of OpenBLAS in the caller and in every job (issue 11), with OpenBLAS's pthreads build and
 * its OpenMP build (the same soname; the test runs once with each on the loader path):
 * results equal to a serial triple loop, the BLAS thread count inside jobs as inner_threads says,
 * the caller's count unchanged after every map, no hang.
 *
 *   test_blas process|thread|serial pthread|openmp
 *
 * The OpenBLAS entry points are declared here (they are the library's C ABI), so that the test
 * needs no particular cblas.h. */
#include "testutil.h"

#include <math.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111 };
void cblas_dgemm(int order, int transa, int transb, int m, int n, int k, double alpha, const double *a,
                 int lda, const double *b, int ldb, double beta, double *c, int ldc);
int openblas_get_num_threads(void);
int openblas_get_parallel(void); /* 0 sequential, 1 pthreads, 2 OpenMP */

#define N 96
#define NJOBS 8
#define NWORKERS 2

struct shared {
  double err[NJOBS];
  int threads[NJOBS];
  int done[NJOBS];
};
static struct shared *g;

static void fill(double *a, double *b, long seed) {
  for (int i = 0; i < N * N; i++) {
    a[i] = (double)((i * 7 + seed * 13) % 17) - 8.0;
    b[i] = (double)((i * 5 + seed * 3) % 11) - 5.0;
  }
}

/* max |dgemm - triple loop| for the matrices of `seed` */
static double dgemm_error(long seed) {
  static __thread double a[N * N], b[N * N], c[N * N];
  fill(a, b, seed);
  cblas_dgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, N, N, N, 1.0, a, N, b, N, 0.0, c, N);
  double worst = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      double s = 0;
      for (int k = 0; k < N; k++) s += a[i * N + k] * b[k * N + j];
      double e = fabs(s - c[i * N + j]);
      if (e > worst) worst = e;
    }
  return worst;
}

static int job_fn(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)result;
  g->threads[job] = openblas_get_num_threads();
  g->err[job] = dgemm_error((long)job);
  g->done[job] = 1;
  return 0;
}

int main(int argc, char **argv) {
  sm_backend backend = parse_backend(argc, argv);
  const char *build = argc >= 3 ? argv[2] : "pthread";
  watchdog(120);
  int parallel = openblas_get_parallel();
  CHECK(parallel == (strcmp(build, "openmp") == 0 ? 2 : 1), "OpenBLAS build %d, expected the %s build",
        parallel, build);
  g = sm_empty(1, sizeof *g);
  CHECK(g, "sm_empty: %s", sm_last_error());
  sm_pool *pool = sm_pool_new(NWORKERS, backend);
  CHECK(pool, "sm_pool_new: %s", sm_last_error());
  int workers = sm_pool_nworkers(pool);
  /* the caller uses BLAS before mapping (with the OpenMP build: an OpenMP region) */
  CHECK(dgemm_error(99) == 0.0, "caller's dgemm");
  int mine = openblas_get_num_threads();
  for (int m = 0; m < 50; m++) {
    int inner = m % 3 == 0 ? 0 : m % 3 == 1 ? 1 : 2;
    int expect = inner;
    if (inner == 0) {
      expect = affinity_cpus() / workers;
      if (expect < 1) expect = 1;
      if (expect > mine) expect = mine;
    }
    memset(g, 0, sizeof *g);
    sm_map_opts o = default_opts();
    o.inner_threads = inner;
    CHECK(sm_map_ex(pool, NJOBS, job_fn, NULL, 0, NULL, &o) == SM_OK, "map %d: %s", m, sm_last_error());
    for (int j = 0; j < NJOBS; j++) {
      CHECK(g->done[j] && g->err[j] == 0.0, "map %d job %d: dgemm differs by %g", m, j, g->err[j]);
      CHECK(g->threads[j] == expect, "map %d job %d: OpenBLAS threads %d, expected %d (inner_threads %d)", m, j,
            g->threads[j], expect, inner);
    }
    CHECK(openblas_get_num_threads() == mine, "the caller's OpenBLAS threads are %d after map %d, were %d",
          openblas_get_num_threads(), m, mine);
    CHECK(dgemm_error(m) == 0.0, "caller's dgemm after map %d", m);
  }
  sm_pool_free(pool);
  sm_free(g);
  CHECK_NO_CHILDREN("end");
  printf("test_blas %s %s: ok\n", g_backend_name, build);
  return 0;
}
