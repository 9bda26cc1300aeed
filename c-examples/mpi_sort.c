/*
 * mpi_sort.c -- particles spread over MPI ranks, sorted by ID: sm_mpi_argsort, then
 * sm_mpi_permute to move their positions along.
 *
 * Every rank holds some particles (a different number on each rank, as after a simulation step):
 * an int64 ID and a position of 3 doubles. sm_mpi_argsort gives each rank the global indices of
 * its share of the sorted order (as many as it holds); sm_mpi_permute with those indices brings
 * the IDs and the positions there. Afterwards the IDs run in order from rank 0 to the last rank,
 * equal IDs in their input order (numpy's argsort(kind='stable') of the concatenation), and every
 * position is still its particle's.
 *
 * What it shows:
 *   - both calls are collective: every rank calls them, with its own count (zero is fine);
 *   - the pool only sets how many threads each rank sorts with (any backend; NULL: the default);
 *   - a payload of any item size follows the keys with one call, in place here (dst == src).
 *
 * Usage: mpirun -n 4 --bind-to none ./mpi_sort [particles per rank]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sharedmem_mpi.h"

typedef struct {
  double x, y, z;
} position;

/* The position a particle starts with: a function of its ID, so that it can be checked. */
static position place(int64_t id) {
  return (position){(double)id, (double)id * 0.5, (double)(id % 7)};
}

int main(int argc, char **argv) {
  int provided, rank, nranks;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  size_t base = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
  size_t n = base / 2 + base * (size_t)rank / (size_t)nranks; /* uneven on purpose */

  int64_t *id = malloc(n * sizeof *id + 1), *order = malloc(n * sizeof *order + 1);
  position *pos = malloc(n * sizeof *pos + 1);
  if (!id || !order || !pos) {
    fprintf(stderr, "out of memory\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  uint64_t state = 0x9E3779B97F4A7C15ULL * (uint64_t)(rank + 1);
  for (size_t i = 0; i < n; i++) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    id[i] = (int64_t)(state >> 40) % 1000000; /* with repeats */
    pos[i] = place(id[i]);
  }

  sm_pool *pool = sm_pool_new(0, SM_BACKEND_THREAD); /* the sort's threads on this rank */
  sm_status s = sm_mpi_argsort(pool, MPI_COMM_WORLD, id, n, SM_DTYPE_I64, order);
  if (s == SM_OK) s = sm_mpi_permute(pool, MPI_COMM_WORLD, pos, n, sizeof *pos, order, n, pos);
  if (s == SM_OK) s = sm_mpi_permute(pool, MPI_COMM_WORLD, id, n, sizeof *id, order, n, id);
  if (s != SM_OK) {
    fprintf(stderr, "rank %d: %s: %s\n", rank, sm_status_str(s), sm_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

  /* Check: IDs ascending here and across the rank boundary, positions still their particles'. */
  long bad = 0;
  for (size_t i = 0; i < n; i++) {
    position p = place(id[i]);
    if (i > 0 && id[i - 1] > id[i]) bad++;
    if (pos[i].x != p.x || pos[i].y != p.y || pos[i].z != p.z) bad++;
  }
  /* The largest ID so far passes from rank to rank (a rank with none passes on what it got). */
  int64_t prev = INT64_MIN;
  if (rank > 0) MPI_Recv(&prev, 1, MPI_INT64_T, rank - 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  if (n && prev > id[0]) bad++;
  int64_t last = n ? id[n - 1] : prev;
  if (rank + 1 < nranks) MPI_Send(&last, 1, MPI_INT64_T, rank + 1, 0, MPI_COMM_WORLD);
  long total_bad = 0;
  MPI_Allreduce(&bad, &total_bad, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("%d ranks sorted their particles by ID: %s\n", nranks,
           total_bad ? "WRONG" : "in order, positions followed");
  }
  sm_pool_free(pool);
  free(id);
  free(order);
  free(pos);
  MPI_Finalize();
  return total_bad ? 1 : 0;
}
