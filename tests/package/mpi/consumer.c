/* A consumer of the installed MPI component: one sm_mpi_map over MPI_COMM_WORLD, the sum checked
 * on root, which prints "MPI OK". Run under the launcher. */
#include <sharedmem_mpi.h>
#include <stdio.h>

static int work(void *ctx, size_t job, void *result) {
  (void)ctx;
  *(double *)result = (double)job;
  return 0;
}

static int reduce(void *ctx, size_t job, void *result) {
  (void)job;
  *(double *)ctx += *(double *)result;
  return 0;
}

int main(int argc, char **argv) {
  int provided, rank, ok = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  sm_pool *pool = sm_pool_new(2, SM_BACKEND_PROCESS);
  double sum = 0;
  sm_status st = sm_mpi_map(pool, MPI_COMM_WORLD, 0, 1000, work, reduce, sizeof(double), &sum);
  if (st != SM_OK) fprintf(stderr, "rank %d: %s\n", rank, sm_last_error());
  if (rank == 0) {
    ok = st == SM_OK && sum == 499500.0;
    printf(ok ? "MPI OK\n" : "MPI FAIL: sum = %g\n", sum);
  }
  sm_pool_free(pool);
  MPI_Finalize();
  return rank == 0 && !ok;
}
