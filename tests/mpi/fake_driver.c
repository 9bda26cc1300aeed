/* A stand-in for libsharedmem's cross-rank driver (sm_transport_map), for checking the MPI tests
 * and the transport of mpi/sharedmem_mpi.c before the real driver exists, or against it:
 * configure with -DSM_MPI_FAKE_DRIVER=ON and the test programs of tests/mpi are linked with this
 * file, whose sm_transport_map (exported by the program) takes the place of libsharedmem's.
 *
 * It is deliberately naive, and no model of the real protocol: static blocks of jobs, one per
 * rank, run one rank after the other (a token passes from rank to rank), each with a local
 * sm_map_ex; every result goes to root at the end of its rank's block, and root reduces them all
 * at the end, in job order (memory: all the results). Running the ranks one after the other makes
 * ordered sections follow global order for free. It speaks only through the transport
 * (allgather, bcast, send, probe + recv), so the tests also exercise mpi/sharedmem_mpi.c. It cannot
 * set sm_last_error() itself: it makes sm_fromfile fail on a path that carries the message.
 * Not built by default; never installed. */
#define _GNU_SOURCE 1
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sharedmem_transport.h"

#define TAG_TOKEN 1
#define TAG_COUNT 2
#define TAG_DATA 3
#define TAG_WDATA 4

typedef struct {
  int32_t root, has_opts;
  uint64_t njobs, result_size, opts_size, wresult_size;
  int32_t refused, nworkers;
} args_t;

typedef struct {
  int32_t status, rank;
  uint64_t job;
  char msg[768];
} outcome_t;

/* sm_last_error() := msg (and a status of the caller's choosing is returned). */
static void set_error(const char *msg) {
  char path[1024];
  snprintf(path, sizeof path, "/nonexistent-sm-fake-driver/%s", msg);
  for (char *p = path + 28; *p; p++)
    if (*p == '/') *p = '|';
  size_t count = 1;
  void *m = sm_fromfile(NULL, path, 0, 1, &count);
  if (m) sm_free(m);
}

static sm_status fail(sm_status s, const char *msg) {
  set_error(msg);
  return s;
}

typedef struct {
  sm_work_fn work;
  sm_reduce_fn reduce;
  void *ctx;
  size_t offset, result_size;
  unsigned char *results; /* the block's results, in local job order */
  size_t reduced;
  sm_worker_fini_fn worker_reduce;
  unsigned char *wresults;
  size_t wresult_size;
  int nworkers;
} local_t;

static int lwork(void *ctx, size_t job, void *result) {
  local_t *l = ctx;
  return l->work(l->ctx, l->offset + job, result);
}

static int lreduce(void *ctx, size_t job, void *result) {
  local_t *l = ctx;
  if (l->result_size) memcpy(l->results + job * l->result_size, result, l->result_size);
  l->reduced = job + 1;
  return 0;
}

static int lwreduce(void *ctx, int worker, void *wresult) {
  local_t *l = ctx;
  if (worker < l->nworkers) memcpy(l->wresults + (size_t)worker * l->wresult_size, wresult, l->wresult_size);
  return 0;
}

static int lwinit(void *ctx, int worker);
static int lwfini(void *ctx, int worker, void *wresult);
static sm_worker_init_fn g_winit;
static sm_worker_fini_fn g_wfini;
static int lwinit(void *ctx, int worker) { return g_winit(((local_t *)ctx)->ctx, worker); }
static int lwfini(void *ctx, int worker, void *wresult) {
  return g_wfini(((local_t *)ctx)->ctx, worker, wresult);
}

static int xsend(const sm_transport *t, int to, int tag, const void *buf, size_t len) {
  return t->send(t->comm, to, tag, buf, len);
}

/* Receives the message from `from` with `tag`: probes until some message waits (checking the
 * length probe reports when it is this one), then receives this one (blocking). */
static int xrecv(const sm_transport *t, int from, int tag, void *buf, size_t len) {
  for (;;) {
    int f = -1, g = -1;
    size_t n = 0;
    int r = t->probe(t->comm, &f, &g, &n);
    if (r != 0 && r != 1) return r;
    if (r == 1) {
      if (f == from && g == tag && n != len) {
        fprintf(stderr, "fake driver: probe reports %zu bytes from %d tag %d, %zu expected\n", n,
                f, g, len);
        abort();
      }
      break;
    }
  }
  return t->recv(t->comm, from, tag, buf, len);
}

sm_status sm_transport_map(const sm_transport *t, const char *call, sm_pool *pool, int root,
                           size_t njobs, sm_work_fn work, sm_reduce_fn reduce, size_t result_size,
                           void *ctx, const sm_map_opts *opts) {
  char msg[1024];
  if (!t->comm) return fail(SM_ERR_STATE, t->refusal ? t->refusal : "no communicator");
  int n = t->nranks, me = t->rank;
  sm_pool *own = NULL;
  if (!pool) pool = own = sm_pool_new(1, SM_BACKEND_SERIAL);
  args_t mine = {root, opts != NULL, njobs, result_size, opts ? opts->size : 0,
                 opts ? opts->wresult_size : 0, t->refusal != NULL, sm_pool_nworkers(pool)};
  args_t *all = calloc((size_t)n, sizeof *all);
  if (t->allgather(t->comm, &mine, all, sizeof mine)) {
    snprintf(msg, sizeof msg, "%s: allgather: %s", call, t->error(t->comm));
    sm_pool_free(own);
    free(all);
    return fail(SM_ERR_IO, msg);
  }
  for (int r = 0; r < n; r++) {
    if (all[r].root != root || all[r].njobs != njobs || all[r].result_size != result_size ||
        all[r].has_opts != mine.has_opts || all[r].opts_size != mine.opts_size ||
        all[r].wresult_size != mine.wresult_size) {
      snprintf(msg, sizeof msg, "%s: the ranks disagree: rank %d and rank %d", call, me, r);
      sm_pool_free(own);
      free(all);
      return fail(SM_ERR_INVALID, msg);
    }
  }
  if (root < 0 || root >= n) {
    snprintf(msg, sizeof msg, "%s: root %d out of range", call, root);
    sm_pool_free(own);
    free(all);
    return fail(SM_ERR_INVALID, msg);
  }
  for (int r = 0; r < n; r++)
    if (all[r].refused) {
      snprintf(msg, sizeof msg, "%s", t->refusal ? t->refusal : "another rank refused");
      sm_pool_free(own);
      free(all);
      return fail(SM_ERR_STATE, msg);
    }
  int woffset = 0, wtotal = 0;
  for (int r = 0; r < n; r++) {
    if (r < me) woffset += all[r].nworkers;
    wtotal += all[r].nworkers;
  }
  (void)woffset;

  /* My block, after the rank before me passed the token (the outcome so far). */
  size_t lo = njobs * (size_t)me / (size_t)n, hi = njobs * (size_t)(me + 1) / (size_t)n;
  outcome_t oc;
  memset(&oc, 0, sizeof oc);
  if (me > 0) xrecv(t, me - 1, TAG_TOKEN, &oc, sizeof oc);
  local_t l;
  memset(&l, 0, sizeof l);
  l.work = work;
  l.ctx = ctx;
  l.offset = lo;
  l.result_size = reduce ? result_size : 0;
  l.results = malloc((hi - lo) * l.result_size + 1);
  l.nworkers = mine.nworkers;
  l.wresult_size = mine.wresult_size;
  l.wresults = calloc((size_t)l.nworkers, l.wresult_size + 1);
  sm_map_opts o;
  memset(&o, 0, sizeof o);
  if (opts) {
    memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
    o.size = sizeof o;
    o.progress = NULL;
    g_winit = opts->worker_init;
    g_wfini = opts->worker_fini;
    o.worker_init = opts->worker_init ? lwinit : NULL;
    o.worker_fini = opts->worker_fini ? lwfini : NULL;
    o.worker_reduce = opts->worker_reduce ? lwreduce : NULL;
  }
  if (oc.status == SM_OK) {
    sm_status s = sm_map_ex(pool, hi - lo, lwork, reduce ? lreduce : NULL, result_size, &l,
                            opts ? &o : NULL);
    if (s != SM_OK) {
      oc.status = s;
      oc.rank = me;
      oc.job = lo + l.reduced - (s == SM_STOPPED && l.reduced ? 1 : 0);
      snprintf(oc.msg, sizeof oc.msg, "%s: rank %d, job %llu (local numbers: %s)", call, me,
               (unsigned long long)oc.job, sm_last_error());
    }
  } else {
    l.wresult_size = 0;
  }
  if (me + 1 < n) xsend(t, me + 1, TAG_TOKEN, &oc, sizeof oc);
  else if (me != root) xsend(t, root, TAG_TOKEN, &oc, sizeof oc);
  /* Results to root. */
  uint64_t count = l.reduced;
  if (me != root) {
    xsend(t, root, TAG_COUNT, &count, sizeof count);
    if (count * l.result_size != 0) xsend(t, root, TAG_DATA, l.results, count * l.result_size);
    if (opts && opts->worker_reduce && oc.status <= SM_STOPPED)
      xsend(t, root, TAG_WDATA, l.wresults, (size_t)l.nworkers * l.wresult_size);
  } else {
    if (n - 1 != root) xrecv(t, n - 1, TAG_TOKEN, &oc, sizeof oc);
    int stop = 0;
    for (int r = 0; r < n; r++) {
      uint64_t c = count;
      unsigned char *data = l.results;
      if (r != me) {
        xrecv(t, r, TAG_COUNT, &c, sizeof c);
        data = malloc(c * l.result_size + 1);
        if (c * l.result_size != 0) xrecv(t, r, TAG_DATA, data, c * l.result_size);
      }
      size_t rlo = njobs * (size_t)r / (size_t)n;
      for (size_t j = 0; j < c && reduce && !stop; j++)
        if (reduce(ctx, rlo + j, data + j * result_size)) stop = 1;
      if (r != me) free(data);
    }
    if (opts && opts->worker_reduce && oc.status <= SM_STOPPED) {
      int w = 0;
      for (int r = 0; r < n; r++) {
        unsigned char *data = l.wresults;
        if (r != me) {
          data = malloc((size_t)all[r].nworkers * l.wresult_size + 1);
          xrecv(t, r, TAG_WDATA, data, (size_t)all[r].nworkers * l.wresult_size);
        }
        for (int k = 0; k < all[r].nworkers; k++, w++)
          opts->worker_reduce(ctx, w, data + (size_t)k * l.wresult_size);
        if (r != me) free(data);
      }
    }
    if (opts && opts->progress) opts->progress(ctx, oc.status == SM_OK ? njobs : oc.job, njobs);
    if (stop && oc.status == SM_OK) oc.status = SM_STOPPED;
    (void)wtotal;
  }
  t->bcast(t->comm, &oc, sizeof oc, root);
  free(l.results);
  free(l.wresults);
  free(all);
  sm_pool_free(own);
  if (oc.status != SM_OK) set_error(oc.msg);
  return (sm_status)oc.status;
}
