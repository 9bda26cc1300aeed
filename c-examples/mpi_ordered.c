/*
 * mpi_ordered.c -- output written in job order from many ranks.
 *
 * Each job works for an uneven time, then appends the line "job N" to one file inside
 * sm_ordered_enter()/sm_ordered_leave(). Across ranks too, the ordered section follows global job
 * order: job N enters only once jobs 0..N-1, on whatever rank, have left theirs (or skipped it).
 * So the file reads job 0, job 1, ... although the jobs ran on several ranks at once. Rank 0 then
 * checks the file and prints it.
 *
 * (All ranks append to one file: that needs a file system every rank sees, here one machine.)
 *
 * The jobs only read ctx, so it is passed by copy (sm_mpi_map_ex with sm_map_opts.ctx_size): then
 * it may be a local on every backend, persistent workers (which see ordinary memory only as it
 * was at sm_pool_new) included.
 *
 * Usage: mpirun -n 3 --bind-to none ./mpi_ordered [process|persistent|thread|serial]
 */
#define _DEFAULT_SOURCE /* usleep(), mkstemp() */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sharedmem_mpi.h"
#include "backend_arg.h"

#define NJOBS 40

struct ordered_ctx {
  sm_pool *pool;
  char path[256];
};

static int job_fn(void *ctx_, size_t job, void *result) {
  (void)result;
  const struct ordered_ctx *ctx = ctx_;
  uint64_t z = (uint64_t)job * 0x9E3779B97F4A7C15ULL;
  usleep((unsigned)((z >> 40) % 5000)); /* the parallel part: 0..5 ms */

  if (sm_ordered_enter(ctx->pool) != SM_OK) return 1;      /* waits for jobs 0..job-1 */
  int fd = open(ctx->path, O_WRONLY | O_APPEND);
  char line[32];
  int n = snprintf(line, sizeof line, "job %zu\n", job);
  int ok = fd >= 0 && write(fd, line, (size_t)n) == n;
  if (fd >= 0) close(fd);
  sm_ordered_leave(ctx->pool);
  return ok ? 0 : 2;
}

int main(int argc, char **argv) {
  int provided, rank, nranks;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  sm_backend backend = SM_BACKEND_PROCESS;
  if (parse_backend(argc, argv, &backend) != 0) MPI_Abort(MPI_COMM_WORLD, 2);

  struct ordered_ctx ctx;
  if (rank == 0) {                                         /* one file for every rank */
    snprintf(ctx.path, sizeof ctx.path, "/tmp/sm_mpi_ordered_XXXXXX");
    int fd = mkstemp(ctx.path);
    if (fd < 0) MPI_Abort(MPI_COMM_WORLD, 3);
    close(fd);
  }
  MPI_Bcast(ctx.path, sizeof ctx.path, MPI_CHAR, 0, MPI_COMM_WORLD);
  ctx.pool = sm_pool_new(2, backend);

  sm_map_opts opts = {.size = sizeof(sm_map_opts), .ctx_size = sizeof ctx};
  sm_status st = sm_mpi_map_ex(ctx.pool, MPI_COMM_WORLD, 0, NJOBS, job_fn, NULL, 0, &ctx, &opts);
  int ok = st == SM_OK;
  if (!ok) fprintf(stderr, "rank %d: sm_mpi_map_ex: %s\n", rank, sm_last_error());
  if (rank == 0 && ok) {
    FILE *f = fopen(ctx.path, "r");
    char line[64];
    size_t next = 0;
    while (f && fgets(line, sizeof line, f)) {
      fputs(line, stdout);
      char expected[32];
      snprintf(expected, sizeof expected, "job %zu\n", next++);
      if (strcmp(line, expected) != 0) ok = 0;
    }
    if (f) fclose(f);
    ok = ok && next == NJOBS;
    printf("%d jobs written in job order from %d rank(s): %s\n", NJOBS, nranks, ok ? "yes" : "NO");
    unlink(ctx.path);
  }
  sm_pool_free(ctx.pool);
  MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return ok ? 0 : 1;
}
