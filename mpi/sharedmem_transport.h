/*
 * The transport between libsharedmem_mpi and libsharedmem: the few communicator operations the
 * cross-rank driver of sm_mpi_map needs (src/ranks/README.md). Private to this build: not
 * installed. It mirrors `sm_transport` in src/ranks/transport.rs field for field
 * (tests/header.rs checks that both list the same fields; libsharedmem refuses another size).
 */
#ifndef SHAREDMEM_TRANSPORT_H
#define SHAREDMEM_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include "sharedmem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every function returns 0 on success (probe: 1 when a message waits, 0 when none); any other
 * value is a failure that `error` describes. Messages between two ranks arrive in the order they
 * were sent; `len` is at most INT_MAX. */
typedef struct sm_transport {
  size_t size; /* sizeof(sm_transport) */
  void *comm; /* NULL: no communicator to use (MPI not initialized, say): the call fails at
                once with `refusal`, on this rank alone, as nothing collective can be done */
  int rank;
  int nranks;
  const char *refusal; /* non-NULL: this rank cannot take part, and why */
  int (*send)(void *comm, int to, int tag, const void *buf, size_t len);
  int (*probe)(void *comm, int *from, int *tag, size_t *len);
  /* receives the next message from `from` with `tag`, waiting for it (MPI_Recv) */
  int (*recv)(void *comm, int from, int tag, void *buf, size_t len);
  int (*allgather)(void *comm, const void *mine, void *all, size_t len);
  const char *(*error)(void *comm);
  /* collective: scounts[r] bytes from send + sdispls[r] to rank r, rcounts[r] bytes from rank r
   * into recv + rdispls[r] (MPI_Alltoallv on bytes, any size) */
  int (*alltoallv)(void *comm, const void *send, const size_t *scounts, const size_t *sdispls,
                   void *recv, const size_t *rcounts, const size_t *rdispls);
} sm_transport;

/* Runs one map across the ranks of `transport` (collective). `call` names the export in
 * messages ("sm_mpi_map"). Everything else is as sm_mpi_map_ex documents. */
sm_status sm_transport_map(const sm_transport *transport, const char *call, sm_pool *pool,
                           int root, size_t njobs, sm_work_fn work, sm_reduce_fn reduce,
                           size_t result_size, void *ctx, const sm_map_opts *opts);

/* sm_mpi_argsort and sm_mpi_permute over `transport` (collective), as sharedmem_mpi.h documents
 * them. `call` names the export in messages. */
sm_status sm_transport_argsort(const sm_transport *transport, const char *call, sm_pool *pool,
                               const void *keys, size_t nlocal, int dtype, int64_t *out);
sm_status sm_transport_permute(const sm_transport *transport, const char *call, sm_pool *pool,
                               const void *src, size_t nlocal, size_t itemsize,
                               const int64_t *index, size_t nout, void *dst);

#ifdef __cplusplus
}
#endif
#endif
