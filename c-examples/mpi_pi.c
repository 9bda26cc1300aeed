/*
 * mpi_pi.c -- one map across MPI ranks: pi by the midpoint rule, reduced on rank 0.
 *
 * The work and reduce functions are exactly what sm_map would take on one machine; sm_mpi_map
 * hands the jobs out across the ranks of MPI_COMM_WORLD (each rank running its share on its own
 * pool of workers) and calls reduce on rank 0 only, in job order. Every rank gets the same status.
 *
 * What it shows:
 *   - MPI_Init_thread with MPI_THREAD_FUNNELED: the level sm_mpi_map needs from the main thread
 *     (the workers never call MPI; only the calling thread does);
 *   - a collective call: every rank passes the same root, njobs and result_size;
 *   - ctx, which only reduce uses, passed by copy (sm_mpi_map_ex with sm_map_opts.ctx_size): so
 *     it may be a local on every backend, persistent workers (which see ordinary memory only as
 *     it was at sm_pool_new) included; reduce gets the caller's own ctx;
 *   - Open MPI binds each rank to a core by default, and a pool of 0 (= as many workers as CPUs)
 *     then has one worker: run with `mpirun --bind-to none`, or `--map-by ppr:1:node:PE=N`.
 *
 * Usage: mpirun -n 4 --bind-to none ./mpi_pi [process|persistent|thread|serial]
 */
#include <math.h>
#include <stdio.h>

#include "sharedmem_mpi.h"
#include "backend_arg.h"

#define NJOBS 1000           /* jobs, each integrating one slice of [0, 1] */
#define STEPS_PER_JOB 10000  /* midpoints per slice */

static int work(void *ctx, size_t job, void *result) {   /* on some rank's worker */
  (void)ctx;
  double h = 1.0 / ((double)NJOBS * STEPS_PER_JOB), s = 0;
  for (size_t i = 0; i < STEPS_PER_JOB; i++) {
    double x = ((double)(job * STEPS_PER_JOB + i) + 0.5) * h;
    s += 4.0 / (1.0 + x * x);
  }
  *(double *)result = s * h;
  return 0;
}

static int reduce(void *ctx, size_t job, void *result) { /* on rank 0, in job order */
  (void)job;
  *(double *)ctx += *(double *)result;
  return 0;
}

int main(int argc, char **argv) {
  int provided, rank, nranks;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  sm_backend backend = SM_BACKEND_PROCESS;
  if (parse_backend(argc, argv, &backend) != 0) MPI_Abort(MPI_COMM_WORLD, 2);

  sm_pool *pool = sm_pool_new(2, backend);                /* this rank's workers */
  double pi = 0;
  sm_map_opts opts = {.size = sizeof(sm_map_opts), .ctx_size = sizeof pi};
  sm_status st =
      sm_mpi_map_ex(pool, MPI_COMM_WORLD, 0, NJOBS, work, reduce, sizeof(double), &pi, &opts);
  int ok = st == SM_OK;
  if (!ok) {
    fprintf(stderr, "rank %d: sm_mpi_map_ex: %s\n", rank, sm_last_error());
  } else if (rank == 0) {
    printf("pi = %.12f on %d rank(s) (error %.1e)\n", pi, nranks, fabs(pi - M_PI));
    ok = fabs(pi - M_PI) < 1e-9;
  }
  sm_pool_free(pool);
  MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return ok ? 0 : 1;
}
