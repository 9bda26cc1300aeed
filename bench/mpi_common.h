/* What the MPI benchmarks share (bench/mpi_bench.c, bench/mpisort_bench.c): the rank, a DIE that
 * ends every rank with a message, status checks and allocation. BENCH_NAME names the program in
 * messages; define it before including this file. */
#ifndef SHAREDMEM_BENCH_MPI_COMMON_H
#define SHAREDMEM_BENCH_MPI_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#include "sharedmem_mpi.h"

static int world_rank, world_size;

#define DIE(...)                                                  \
  do {                                                            \
    fprintf(stderr, "%s (rank %d): ", BENCH_NAME, world_rank);    \
    fprintf(stderr, __VA_ARGS__);                                 \
    fprintf(stderr, "\n");                                        \
    MPI_Abort(MPI_COMM_WORLD, 1);                                 \
  } while (0)

static inline void check_status(sm_status s, const char *what) {
  if (s != SM_OK) DIE("%s: %s: %s", what, sm_status_str(s), sm_last_error());
}

static inline void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) DIE("out of memory (%zu bytes)", n);
  return p;
}

#endif
