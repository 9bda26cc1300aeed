/* A whole rank dying in the middle of sm_mpi_map: not something MPI lets the other ranks survive,
 * so the launcher must end the job. The last rank's jobs from job 200 on (thread backend, jobs of
 * 1 ms) print "rank R dying in job J" and end the rank's process: `_exit(3)` (mode exit) or
 * SIGKILL (mode kill). run_rankdeath.cmake checks that mpiexec then ends, within its time limit,
 * with a nonzero status, and that a rank did die in a job (not before the map).
 *
 * No watchdog here: a hang must show as the launcher not ending.
 *
 * Usage: test_rankdeath exit|kill (under mpiexec, any number of ranks) */
#include "mpitest.h"

static int dying_mode;

static int work(void *ctx, size_t job, void *result) {
  (void)ctx, (void)result;
  usleep_full(1000);
  if (job >= 200 && g_rank == g_nranks - 1) {
    printf("rank %d dying in job %zu\n", g_rank, job);
    fflush(stdout);
    if (dying_mode) raise(SIGKILL);
    _exit(3);
  }
  return 0;
}

int main(int argc, char **argv) {
  dying_mode = argc > 1 && strcmp(argv[1], "kill") == 0;
  mt_init(&argc, &argv, 0);
  sm_pool *pool = new_pool(2, SM_BACKEND_THREAD);
  size_t n = 0;
  sm_status st = sm_mpi_map(pool, MPI_COMM_WORLD, 0, 20000, work, NULL, 0, &n);
  /* Not reached by a correct run: the launcher ends every rank once one died. */
  printf("rank %d: sm_mpi_map returned %s: %s\n", g_rank, sm_status_str(st), last_err());
  fflush(stdout);
  sm_pool_free(pool);
  MPI_Finalize();
  return 0;
}
