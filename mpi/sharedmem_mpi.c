/*
 * libsharedmem_mpi: sm_mpi_map and its relatives (include/sharedmem_mpi.h) over an MPI
 * communicator. The whole cross-rank protocol lives in libsharedmem (src/ranks/, MPI-free); this
 * file only wraps a communicator as the transport it speaks through (mpi/sharedmem_transport.h)
 * and checks what only MPI can tell: whether MPI is up, and the thread level.
 *
 * Compiled once per MPI (Open MPI and MPICH differ in their types: MPI_Comm is a pointer in one and
 * an int in the other), so nothing here may assume either.
 */
#include "sharedmem_mpi.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharedmem_transport.h"

/* What the transport's functions get as `comm`: the duplicated communicator, and the text of the
 * last failure. */
typedef struct {
  MPI_Comm comm;
  char error[MPI_MAX_ERROR_STRING + 160];
} sm_mpi_state;

/* Keeps a description of a failed MPI call (`rc`, from `what`); returns -1, a failure for every
 * function of the transport (for probe, 1 would mean "a message is waiting"). */
static int failed(sm_mpi_state *s, const char *what, int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) {
    snprintf(text, sizeof text, "MPI error code %d", rc);
  } else {
    text[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = '\0';
  }
  snprintf(s->error, sizeof s->error, "%s failed: %s", what, text);
  return -1;
}

/* MPI counts are ints: the driver never passes more than INT_MAX bytes at once. */
static int too_long(sm_mpi_state *s, const char *what, size_t len) {
  snprintf(s->error, sizeof s->error, "%s: %zu bytes is more than MPI can take at once (INT_MAX)",
           what, len);
  return -1;
}

static int mpi_send(void *comm, int to, int tag, const void *buf, size_t len) {
  sm_mpi_state *s = comm;
  if (len > INT_MAX) return too_long(s, "MPI_Send", len);
  int rc = MPI_Send(buf, (int)len, MPI_BYTE, to, tag, s->comm);
  return rc == MPI_SUCCESS ? 0 : failed(s, "MPI_Send", rc);
}

static int mpi_probe(void *comm, int *from, int *tag, size_t *len) {
  sm_mpi_state *s = comm;
  int flag = 0, count = 0;
  MPI_Status status;
  int rc = MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, s->comm, &flag, &status);
  if (rc != MPI_SUCCESS) return failed(s, "MPI_Iprobe", rc);
  if (!flag) return 0;
  rc = MPI_Get_count(&status, MPI_BYTE, &count);
  if (rc != MPI_SUCCESS) return failed(s, "MPI_Get_count", rc);
  if (count < 0) {
    snprintf(s->error, sizeof s->error, "MPI_Get_count: a message of an undefined byte count");
    return -1;
  }
  *from = status.MPI_SOURCE;
  *tag = status.MPI_TAG;
  *len = (size_t)count;
  return 1;
}

static int mpi_recv(void *comm, int from, int tag, void *buf, size_t len) {
  sm_mpi_state *s = comm;
  if (len > INT_MAX) return too_long(s, "MPI_Recv", len);
  MPI_Status status;
  int count = 0;
  int rc = MPI_Recv(buf, (int)len, MPI_BYTE, from, tag, s->comm, &status);
  if (rc != MPI_SUCCESS) return failed(s, "MPI_Recv", rc);
  rc = MPI_Get_count(&status, MPI_BYTE, &count);
  if (rc != MPI_SUCCESS) return failed(s, "MPI_Get_count", rc);
  if (count != (int)len) {
    snprintf(s->error, sizeof s->error,
             "MPI_Recv: the message from rank %d with tag %d has %d bytes, %zu expected", from, tag,
             count, len);
    return -1;
  }
  return 0;
}

static int mpi_allgather(void *comm, const void *mine, void *all, size_t len) {
  sm_mpi_state *s = comm;
  if (len > INT_MAX) return too_long(s, "MPI_Allgather", len);
  int rc = MPI_Allgather(mine, (int)len, MPI_BYTE, all, (int)len, MPI_BYTE, s->comm);
  return rc == MPI_SUCCESS ? 0 : failed(s, "MPI_Allgather", rc);
}

/* The largest piece one MPI call moves (counts are ints): bigger exchanges go in several. */
#define SM_MPI_PIECE ((size_t)1 << 30)
/* The tag of alltoallv's pieces; MPI keeps the pieces between two ranks in the order posted. */
#define SM_MPI_ALLTOALLV_TAG 4242

static size_t pieces(size_t len) { return (len + SM_MPI_PIECE - 1) / SM_MPI_PIECE; }

/* MPI_Alltoallv with size_t counts: nonblocking receives and sends of at most SM_MPI_PIECE bytes
 * each (all posted before any wait, so no order of ranks can deadlock), this rank's own part
 * copied. */
static int mpi_alltoallv(void *comm, const void *send, const size_t *scounts,
                         const size_t *sdispls, void *recv, const size_t *rcounts,
                         const size_t *rdispls) {
  sm_mpi_state *s = comm;
  int rank = 0, size = 0;
  MPI_Comm_rank(s->comm, &rank);
  MPI_Comm_size(s->comm, &size);
  size_t nreq = 0;
  for (int r = 0; r < size; r++) {
    if (r != rank) nreq += pieces(scounts[r]) + pieces(rcounts[r]);
  }
  if (scounts[rank] != rcounts[rank]) {
    snprintf(s->error, sizeof s->error,
             "alltoallv: rank %d sends itself %zu bytes but expects %zu", rank, scounts[rank],
             rcounts[rank]);
    return -1;
  }
  MPI_Request *reqs = NULL;
  /* Real statuses, not MPI_STATUSES_IGNORE: gcc 12 takes MPICH's MPI_STATUSES_IGNORE for a
   * zero-size array and refuses to compile the call (-Werror=stringop-overflow). */
  MPI_Status *statuses = NULL;
  if (nreq > 0) {
    reqs = malloc(nreq * sizeof *reqs);
    statuses = malloc(nreq * sizeof *statuses);
    if (reqs == NULL || statuses == NULL) {
      free(reqs);
      free(statuses);
      snprintf(s->error, sizeof s->error, "alltoallv: out of memory for %zu MPI requests", nreq);
      return -1;
    }
  }
  size_t k = 0;
  int rc = MPI_SUCCESS;
  for (int r = 0; r < size && rc == MPI_SUCCESS; r++) {
    if (r == rank) continue;
    for (size_t at = 0; at < rcounts[r] && rc == MPI_SUCCESS; at += SM_MPI_PIECE) {
      size_t len = rcounts[r] - at < SM_MPI_PIECE ? rcounts[r] - at : SM_MPI_PIECE;
      rc = MPI_Irecv((char *)recv + rdispls[r] + at, (int)len, MPI_BYTE, r, SM_MPI_ALLTOALLV_TAG,
                     s->comm, &reqs[k++]);
    }
  }
  for (int r = 0; r < size && rc == MPI_SUCCESS; r++) {
    if (r == rank) continue;
    for (size_t at = 0; at < scounts[r] && rc == MPI_SUCCESS; at += SM_MPI_PIECE) {
      size_t len = scounts[r] - at < SM_MPI_PIECE ? scounts[r] - at : SM_MPI_PIECE;
      rc = MPI_Isend((const char *)send + sdispls[r] + at, (int)len, MPI_BYTE, r,
                     SM_MPI_ALLTOALLV_TAG, s->comm, &reqs[k++]);
    }
  }
  if (scounts[rank] > 0) {
    memcpy((char *)recv + rdispls[rank], (const char *)send + sdispls[rank], scounts[rank]);
  }
  if (rc == MPI_SUCCESS && k > 0) rc = MPI_Waitall((int)k, reqs, statuses);
  free(reqs);
  free(statuses);
  return rc == MPI_SUCCESS ? 0 : failed(s, "alltoallv (MPI_Isend, MPI_Irecv, MPI_Waitall)", rc);
}

static const char *mpi_error(void *comm) {
  sm_mpi_state *s = comm;
  return s->error[0] ? s->error : "no MPI error recorded";
}

static const char *level_name(int level) {
  if (level == MPI_THREAD_SINGLE) return "MPI_THREAD_SINGLE";
  if (level == MPI_THREAD_FUNNELED) return "MPI_THREAD_FUNNELED";
  if (level == MPI_THREAD_SERIALIZED) return "MPI_THREAD_SERIALIZED";
  if (level == MPI_THREAD_MULTIPLE) return "MPI_THREAD_MULTIPLE";
  return "an unknown thread level";
}

/* Whether MPI can be used now: initialized and not yet finalized. Else `why` says what is wrong. */
static int mpi_is_up(const char *call, char *why, size_t cap) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) return 1;
  snprintf(why, cap,
           "MPI is %s: call %s between MPI_Init_thread (with MPI_THREAD_FUNNELED, or "
           "MPI_THREAD_SERIALIZED from another thread than the main one) and MPI_Finalize",
           finalized ? "already finalized" : "not initialized", call);
  return 0;
}

/* One collective call's transport: over a duplicate of the caller's communicator, or none (with
 * the reason) when this rank cannot take part. */
typedef struct {
  sm_transport t;
  sm_mpi_state state;
  int duplicated;
  char refusal[MPI_MAX_ERROR_STRING + 256];
} sm_mpi_call;

/* Fills `c` for `call` on `comm`. Without a communicator (inside a job, MPI not up, a NULL or
 * inter-communicator) `c->t.comm` stays NULL and `c->t.refusal` says why: the call then fails on
 * this rank alone, at once. With one, a refusal (the thread level) fails every rank after the
 * collective check. */
static void open_call(sm_mpi_call *c, const char *call, int mpi_up, const char *why,
                      MPI_Comm comm) {
  memset(c, 0, sizeof *c);
  c->t.size = sizeof c->t;
  c->t.send = mpi_send;
  c->t.probe = mpi_probe;
  c->t.recv = mpi_recv;
  c->t.allgather = mpi_allgather;
  c->t.error = mpi_error;
  c->t.alltoallv = mpi_alltoallv;
  if (sm_worker_id() >= 0) {
    /* Inside a job (maybe a forked worker): no MPI call may be made here, not even a check. */
    c->t.refusal = "called from inside a job: only the rank's own thread may call it (workers "
                   "never call MPI)";
    return;
  }
  if (!mpi_up) {
    c->t.refusal = why;
    return;
  }
  int inter = 0;
  if (comm == MPI_COMM_NULL || MPI_Comm_test_inter(comm, &inter) != MPI_SUCCESS || inter) {
    snprintf(c->refusal, sizeof c->refusal, "comm is %s",
             comm == MPI_COMM_NULL ? "MPI_COMM_NULL" : "not an intra-communicator");
    c->t.refusal = c->refusal;
    return;
  }

  /* The thread level: only this thread calls MPI during the call, and it may not be the main
   * one. */
  int provided = MPI_THREAD_SINGLE, is_main = 0;
  MPI_Query_thread(&provided);
  MPI_Is_thread_main(&is_main);
  int needed = is_main ? MPI_THREAD_FUNNELED : MPI_THREAD_SERIALIZED;
  if (provided < needed) {
    snprintf(c->refusal, sizeof c->refusal,
             "%s needs the MPI thread level %s when called from %s thread, and MPI provides %s: "
             "initialize MPI with MPI_Init_thread(&argc, &argv, %s, &provided)",
             call, level_name(needed), is_main ? "the main" : "another than the main",
             level_name(provided), level_name(needed));
  }

  int rc = MPI_Comm_dup(comm, &c->state.comm);
  if (rc != MPI_SUCCESS) {
    /* Only when comm's error handler returns errors: this rank cannot take part. */
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    text[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = '\0';
    snprintf(c->refusal, sizeof c->refusal, "MPI_Comm_dup failed: %s", text);
    c->t.refusal = c->refusal;
    return;
  }
  c->duplicated = 1;
  /* A failed send or receive aborts the job rather than leave the other ranks waiting forever. */
  MPI_Comm_set_errhandler(c->state.comm, MPI_ERRORS_ARE_FATAL);
  MPI_Comm_rank(c->state.comm, &c->t.rank);
  MPI_Comm_size(c->state.comm, &c->t.nranks);
  c->t.comm = &c->state;
  c->t.refusal = c->refusal[0] ? c->refusal : NULL;
}

static void close_call(sm_mpi_call *c) {
  if (c->duplicated) MPI_Comm_free(&c->state.comm);
}

/* One map across the ranks of `comm`: the transport, then the driver in libsharedmem. */
static sm_status run(const char *call, sm_pool *pool, int mpi_up, const char *why, MPI_Comm comm,
                     int root, size_t njobs, sm_work_fn work, sm_reduce_fn reduce,
                     size_t result_size, void *ctx, const sm_map_opts *opts) {
  sm_mpi_call c;
  open_call(&c, call, mpi_up, why, comm);
  sm_status status =
      sm_transport_map(&c.t, call, pool, root, njobs, work, reduce, result_size, ctx, opts);
  close_call(&c);
  return status;
}

sm_status sm_mpi_map(sm_pool *pool, MPI_Comm comm, int root, size_t njobs, sm_work_fn work,
                     sm_reduce_fn reduce, size_t result_size, void *ctx) {
  char why[512];
  int up = mpi_is_up("sm_mpi_map", why, sizeof why);
  return run("sm_mpi_map", pool, up, why, comm, root, njobs, work, reduce, result_size, ctx, NULL);
}

sm_status sm_mpi_map_ex(sm_pool *pool, MPI_Comm comm, int root, size_t njobs, sm_work_fn work,
                        sm_reduce_fn reduce, size_t result_size, void *ctx,
                        const sm_map_opts *opts) {
  char why[512];
  int up = mpi_is_up("sm_mpi_map_ex", why, sizeof why);
  return run("sm_mpi_map_ex", pool, up, why, comm, root, njobs, work, reduce, result_size, ctx,
             opts);
}

/* The Fortran handle is converted only once MPI is known to be up (MPI_Comm_f2c needs it). */
sm_status sm_mpi_map_f(sm_pool *pool, MPI_Fint comm, int root, size_t njobs, sm_work_fn work,
                       sm_reduce_fn reduce, size_t result_size, void *ctx) {
  char why[512];
  int up = mpi_is_up("sm_mpi_map", why, sizeof why);
  MPI_Comm c = up ? MPI_Comm_f2c(comm) : MPI_COMM_NULL;
  return run("sm_mpi_map", pool, up, why, c, root, njobs, work, reduce, result_size, ctx, NULL);
}

sm_status sm_mpi_map_ex_f(sm_pool *pool, MPI_Fint comm, int root, size_t njobs, sm_work_fn work,
                          sm_reduce_fn reduce, size_t result_size, void *ctx,
                          const sm_map_opts *opts) {
  char why[512];
  int up = mpi_is_up("sm_mpi_map_ex", why, sizeof why);
  MPI_Comm c = up ? MPI_Comm_f2c(comm) : MPI_COMM_NULL;
  return run("sm_mpi_map_ex", pool, up, why, c, root, njobs, work, reduce, result_size, ctx, opts);
}

/* sm_mpi_argsort once the MPI state is known (`up`, else `why`) and comm converted. */
static sm_status run_argsort(sm_pool *pool, int up, const char *why, MPI_Comm comm,
                             const void *keys, size_t nlocal, int dtype, int64_t *out) {
  sm_mpi_call c;
  open_call(&c, "sm_mpi_argsort", up, why, comm);
  sm_status status = sm_transport_argsort(&c.t, "sm_mpi_argsort", pool, keys, nlocal, dtype, out);
  close_call(&c);
  return status;
}

/* sm_mpi_permute once the MPI state is known (`up`, else `why`) and comm converted. */
static sm_status run_permute(sm_pool *pool, int up, const char *why, MPI_Comm comm,
                             const void *src, size_t nlocal, size_t itemsize,
                             const int64_t *index, size_t nout, void *dst) {
  sm_mpi_call c;
  open_call(&c, "sm_mpi_permute", up, why, comm);
  sm_status status = sm_transport_permute(&c.t, "sm_mpi_permute", pool, src, nlocal, itemsize,
                                          index, nout, dst);
  close_call(&c);
  return status;
}

sm_status sm_mpi_argsort(sm_pool *pool, MPI_Comm comm, const void *keys, size_t nlocal,
                         sm_dtype dtype, int64_t *out) {
  char why[512];
  int up = mpi_is_up("sm_mpi_argsort", why, sizeof why);
  return run_argsort(pool, up, why, comm, keys, nlocal, (int)dtype, out);
}

sm_status sm_mpi_permute(sm_pool *pool, MPI_Comm comm, const void *src, size_t nlocal,
                         size_t itemsize, const int64_t *index, size_t nout, void *dst) {
  char why[512];
  int up = mpi_is_up("sm_mpi_permute", why, sizeof why);
  return run_permute(pool, up, why, comm, src, nlocal, itemsize, index, nout, dst);
}

/* The Fortran entries: the handle converted only once MPI is known to be up, as sm_mpi_map_f. */
sm_status sm_mpi_argsort_f(sm_pool *pool, MPI_Fint comm, const void *keys, size_t nlocal,
                           sm_dtype dtype, int64_t *out) {
  char why[512];
  int up = mpi_is_up("sm_mpi_argsort", why, sizeof why);
  MPI_Comm c = up ? MPI_Comm_f2c(comm) : MPI_COMM_NULL;
  return run_argsort(pool, up, why, c, keys, nlocal, (int)dtype, out);
}

sm_status sm_mpi_permute_f(sm_pool *pool, MPI_Fint comm, const void *src, size_t nlocal,
                           size_t itemsize, const int64_t *index, size_t nout, void *dst) {
  char why[512];
  int up = mpi_is_up("sm_mpi_permute", why, sizeof why);
  MPI_Comm c = up ? MPI_Comm_f2c(comm) : MPI_COMM_NULL;
  return run_permute(pool, up, why, c, src, nlocal, itemsize, index, nout, dst);
}
