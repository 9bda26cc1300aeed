/*
 * The hand-written MPI peers that sm_mpi_map (issue 13) is measured against, written the way a
 * careful MPI programmer would, without sharedmem:
 *
 *   dispatch    NJOBS trivial jobs (result: one double) handed out dynamically to every rank, root
 *               included, through a counter on root (MPI_Fetch_and_op on a window, CHUNK jobs per
 *               claim). Each rank sends each chunk's results to root as one message; root places
 *               them by job number and sums them in job order (its memory is O(NJOBS): it has no
 *               window). Root checks the sum. Prints ns per job.
 *   throughput  MSG-byte messages from rank 1 to rank 0 with MPI_Send / MPI_Recv: MB/s.
 *
 *   mpirun -np 4 mpi_peer [NJOBS [CHUNK [MSG [NMSG]]]]     (scripts/bench-mpi.sh runs it)
 *
 * Prints one line per measure, "peer <name> <value> <unit> [min .. max]", the median of 5 runs
 * after a warm-up. A benchmark, not a test.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS 5
#define TAG_RESULTS 1
#define TAG_DATA 2

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double job_result(int64_t job) { return (double)(job % 8); }

/* Root receives the probed message: a chunk's results (its start first), placed by job number, or
 * a rank's "no more from me" (one value). */
static void receive_results(MPI_Comm comm, MPI_Status *st, double *all, double *buf, int64_t *received,
                            int64_t *done_ranks) {
  int count;
  MPI_Get_count(st, MPI_DOUBLE, &count);
  MPI_Recv(buf, count, MPI_DOUBLE, st->MPI_SOURCE, TAG_RESULTS, comm, MPI_STATUS_IGNORE);
  if (count == 1) {
    (*done_ranks)++;
  } else {
    memcpy(all + (int64_t)buf[0], buf + 1, (size_t)(count - 1) * sizeof(double));
    *received += count - 1;
  }
}

/* One dispatch run; returns the seconds root measured (the same value on every rank). */
static double dispatch(MPI_Comm comm, int64_t njobs, int64_t chunk, double *all, double *mine) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int64_t *counter = NULL;
  MPI_Win win;
  MPI_Win_allocate(rank == 0 ? (MPI_Aint)sizeof(int64_t) : 0, sizeof(int64_t), MPI_INFO_NULL, comm, &counter, &win);
  if (rank == 0) *counter = 0;
  MPI_Win_lock_all(0, win);
  MPI_Win_sync(win);
  MPI_Barrier(comm);
  double t0 = MPI_Wtime();
  int64_t received = 0, done_ranks = 0, one = chunk;
  for (;;) {
    int64_t start;
    MPI_Fetch_and_op(&one, &start, MPI_INT64_T, 0, 0, MPI_SUM, win);
    MPI_Win_flush(0, win);
    if (start >= njobs) break;
    int64_t end = start + chunk < njobs ? start + chunk : njobs;
    for (int64_t j = start; j < end; j++) mine[1 + j - start] = job_result(j);
    if (rank == 0) {
      memcpy(all + start, mine + 1, (size_t)(end - start) * sizeof(double));
      received += end - start;
      /* root also serves the others' results between its own chunks */
      int flag = 1;
      while (flag) {
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULTS, comm, &flag, &st);
        if (flag) receive_results(comm, &st, all, mine, &received, &done_ranks);
      }
    } else {
      mine[0] = (double)start; /* exact: njobs < 2^53 */
      MPI_Send(mine, (int)(end - start + 1), MPI_DOUBLE, 0, TAG_RESULTS, comm);
    }
  }
  if (rank != 0) {
    mine[0] = -1;
    MPI_Send(mine, 1, MPI_DOUBLE, 0, TAG_RESULTS, comm); /* "no more from me" */
  } else {
    while (received < njobs || done_ranks < size - 1) {
      MPI_Status st;
      MPI_Probe(MPI_ANY_SOURCE, TAG_RESULTS, comm, &st);
      receive_results(comm, &st, all, mine, &received, &done_ranks);
    }
  }
  double seconds = 0;
  if (rank == 0) {
    double sum = 0;
    for (int64_t j = 0; j < njobs; j++) sum += all[j]; /* the in-order reduce */
    seconds = MPI_Wtime() - t0;
    double want = 0;
    for (int64_t j = 0; j < njobs; j++) want += job_result(j);
    if (sum != want) {
      fprintf(stderr, "mpi_peer: dispatch sum %.17g, expected %.17g\n", sum, want);
      MPI_Abort(comm, 1);
    }
  }
  MPI_Win_unlock_all(win);
  MPI_Win_free(&win);
  MPI_Bcast(&seconds, 1, MPI_DOUBLE, 0, comm);
  return seconds;
}

/* Seconds for nmsg messages of len bytes from rank 1 to rank 0. */
static double throughput(MPI_Comm comm, size_t len, int nmsg, char *buf) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  MPI_Barrier(comm);
  double t0 = MPI_Wtime();
  for (int i = 0; i < nmsg; i++) {
    if (rank == 1) MPI_Send(buf, (int)len, MPI_BYTE, 0, TAG_DATA, comm);
    if (rank == 0) MPI_Recv(buf, (int)len, MPI_BYTE, 1, TAG_DATA, comm, MPI_STATUS_IGNORE);
  }
  double seconds = MPI_Wtime() - t0;
  MPI_Bcast(&seconds, 1, MPI_DOUBLE, 0, comm);
  return seconds;
}

static void report(int rank, const char *name, double *v, const char *unit) {
  qsort(v, RUNS, sizeof v[0], cmp_double);
  if (rank == 0) printf("peer %s %.4g %s [%.4g .. %.4g]\n", name, v[RUNS / 2], unit, v[0], v[RUNS - 1]);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int64_t njobs = argc > 1 ? atoll(argv[1]) : 1000000;
  int64_t chunk = argc > 2 ? atoll(argv[2]) : 1000;
  size_t msg = argc > 3 ? (size_t)atoll(argv[3]) : (size_t)1 << 20;
  int nmsg = argc > 4 ? atoi(argv[4]) : 200;
  if (njobs < 1 || chunk < 1 || msg < 1 || nmsg < 1) {
    if (rank == 0) fprintf(stderr, "usage: mpi_peer [NJOBS [CHUNK [MSG [NMSG]]]] (all positive)\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  double *all = rank == 0 ? malloc((size_t)njobs * sizeof(double)) : NULL;
  double *mine = malloc((size_t)(chunk + 1) * sizeof(double));
  char *buf = malloc(msg);
  if ((rank == 0 && !all) || !mine || !buf) {
    fprintf(stderr, "mpi_peer: out of memory\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  memset(buf, 1, msg);
  if (rank == 0) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;
    MPI_Get_library_version(version, &len);
    char *nl = strchr(version, '\n');
    if (nl) *nl = 0;
    printf("mpi %s\nranks %d\nnjobs %lld chunk %lld\n", version, size, (long long)njobs, (long long)chunk);
  }
  double v[RUNS];
  dispatch(MPI_COMM_WORLD, njobs, chunk, all, mine); /* warm-up */
  for (int r = 0; r < RUNS; r++) v[r] = dispatch(MPI_COMM_WORLD, njobs, chunk, all, mine) / (double)njobs * 1e9;
  report(rank, "dispatch", v, "ns/job");
  if (size >= 2) {
    throughput(MPI_COMM_WORLD, msg, nmsg / 10 + 1, buf); /* warm-up */
    for (int r = 0; r < RUNS; r++) v[r] = (double)msg * nmsg / throughput(MPI_COMM_WORLD, msg, nmsg, buf) / 1e6;
    report(rank, "throughput", v, "MB/s");
  }
  free(all);
  free(mine);
  free(buf);
  MPI_Finalize();
  return 0;
}
