/* sm_mpi_map on communicators other than MPI_COMM_WORLD, on every local backend (process, thread,
 * serial, persistent pools and a NULL pool):
 *
 * - MPI_Comm_split into two halves (even and odd ranks), each running its own map at the same time
 *   (other njobs, other results, root = the half's last rank): each half's root reduced exactly
 *   its own jobs, in order, and no job ran twice or in the other half;
 * - the program's own messages are not the map's: rank 0 sends rank 1 a message on
 *   MPI_COMM_WORLD with a tag the driver might use before the map, and rank 1 receives it intact
 *   after the map (sm_mpi_map talks on a duplicate of the communicator);
 * - MPI_COMM_SELF: a one-rank map on each rank at once.
 *
 * Usage: test_split (under mpiexec, any number of ranks) */
#include "mpitest.h"

/* In sm_empty memory: persistent workers see no later write to the caller's other memory. */
typedef struct {
  uint64_t salt;
  size_t njobs;
  _Atomic unsigned char *runs; /* sm_empty: how often each job ran on this rank */
  size_t reduced;
  int bad;
} split_ctx;

static int work(void *ctx_, size_t job, void *result) {
  split_ctx *c = ctx_;
  JCHECK(job < c->njobs, "job %zu beyond %zu", job, c->njobs);
  atomic_fetch_add(&c->runs[job], 1);
  if (job % 64 == 0) usleep_full(50);
  *(uint64_t *)result = mix64(job ^ c->salt);
  return 0;
}

static int reduce(void *ctx_, size_t job, void *result) {
  split_ctx *c = ctx_;
  if (job != c->reduced || *(uint64_t *)result != mix64(job ^ c->salt)) c->bad++;
  c->reduced++;
  return 0;
}

/* One map on `comm` (of this rank's half), checked. */
static void map_on(MPI_Comm comm, sm_pool *pool, size_t njobs, uint64_t salt, const char *what) {
  int rank = 0, size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int root = size - 1;
  split_ctx *c = must_empty(1, sizeof *c);
  c->salt = salt;
  c->njobs = njobs;
  c->runs = must_empty(njobs, 1);
  JRESET();
  sm_status st = sm_mpi_map(pool, comm, root, njobs, work, reduce, 8, c);
  mt_check_status_all(comm, st, SM_OK, what);
  unsigned char *total = rank == root ? calloc(njobs, 1) : NULL;
  CHECK(rank != root || total, "calloc");
  MPI_Reduce((void *)c->runs, total, (int)njobs, MPI_UNSIGNED_CHAR, MPI_SUM, root, comm);
  if (rank == root) {
    for (size_t j = 0; j < njobs; j++)
      CHECK(total[j] == 1, "%s [%s]: job %zu ran %d times in this half", what, g_backend_name, j,
            total[j]);
    free(total);
    CHECK(c->reduced == njobs && c->bad == 0,
          "%s [%s]: root reduced %zu jobs of %zu, %d out of order or wrong", what, g_backend_name,
          c->reduced, njobs, c->bad);
  } else {
    CHECK(c->reduced == 0, "%s [%s]: reduce ran on a rank that is not root", what, g_backend_name);
  }
  sm_free((void *)c->runs);
  sm_free(c);
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, 100);
  MPI_Comm half;
  MPI_Comm_split(MPI_COMM_WORLD, g_rank % 2, g_rank, &half);
  for (size_t b = 0; b < MT_NBACKENDS; b++) {
    sm_pool *pool = mt_pool(&MT_BACKENDS[b]);

    /* Messages of the program's own (small: sent eagerly), pending on MPI_COMM_WORLD during the
     * maps, with the small tags the driver uses on its duplicate. */
    uint64_t mine[4] = {0x5EED, (uint64_t)b, 42, 7}, got[4] = {0, 0, 0, 0};
    for (int tag = 0; tag < 3 && g_nranks > 1; tag++)
      if (g_rank == 0) MPI_Send(mine, 4, MPI_UINT64_T, 1, tag, MPI_COMM_WORLD);

    map_on(MPI_COMM_WORLD, pool, 4000, 11, "MPI_COMM_WORLD with the program's messages pending");
    map_on(half, pool, g_rank % 2 ? 7000 : 5000, g_rank % 2 ? 1 : 2, "two halves at once");
    map_on(MPI_COMM_SELF, pool, 1500, (uint64_t)g_rank, "MPI_COMM_SELF on every rank at once");

    if (g_nranks > 1 && g_rank == 1)
      for (int tag = 0; tag < 3; tag++) {
        MPI_Status status;
        MPI_Recv(got, 4, MPI_UINT64_T, 0, tag, MPI_COMM_WORLD, &status);
        CHECK(memcmp(got, mine, sizeof mine) == 0,
              "[%s] the program's own message (tag %d) was not received intact after the maps",
              g_backend_name, tag);
      }
    if (pool) sm_pool_free(pool);
    if (g_rank == 0) printf("backend %s: OK\n", MT_BACKENDS[b].name);
  }
  MPI_Comm_free(&half);
  return mt_finish("test_split");
}
