/* The shared heap that sm_empty arrays and control blocks are cut from (src/sys/heap.rs), run with
 * SM_HEAP_SIZE=64M (set by CMake) so that its edges are near:
 *   full:   an array larger than what is free fails with SM_ERR_NOMEM naming SM_HEAP_SIZE, and the
 *           heap stays usable; arrays are zero-filled, shared with process workers, and a freed
 *           range is handed out again zero-filled, also as persistent workers see it; freed
 *           neighbours merge (48 arrays of 1 MiB freed make room for one of 48 MiB).
 *   misset: SM_HEAP_SIZE that is not a size: sm_empty and sm_map fail with SM_ERR_INVALID naming it.
 *   fork:   a child the caller forks allocates from a heap of its own (the parent's arrays do not
 *           change), and sm_free of an inherited array there leaves the parent's intact. */
#include "testutil.h"

#define MIB ((size_t)1 << 20)

static int all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

static int fill_job(void *ctx, size_t job, void *result) {
  (void)result;
  unsigned char *a = (unsigned char *)ctx;
  memset(a + job * MIB, (int)(job + 1), MIB);
  return 0;
}

static int check_zero_job(void *ctx, size_t job, void *result) {
  const unsigned char *a = (const unsigned char *)ctx;
  *(int *)result = all_zero(a + job * MIB, MIB);
  return 0;
}

static int g_zero_blocks; /* counted by reduce, on the caller */

static int count_zero(void *ctx, size_t job, void *result) {
  (void)ctx;
  (void)job;
  g_zero_blocks += *(int *)result;
  return 0;
}

/* Persistent workers, forked before the arrays exist: they see an array allocated later, and
 * after sm_free a range handed out again is seen zero-filled by them too (no stale pages). */
static void persistent_reuse(void) {
  sm_pool *pool = new_pool(2, SM_BACKEND_PERSISTENT);
  unsigned char *a = (unsigned char *)must_empty(8, MIB);
  sm_status st = sm_map(pool, 8, fill_job, NULL, 0, a);
  CHECK(st == SM_OK, "persistent workers fill an array made after the pool: %s: %s", sm_status_str(st), last_err());
  for (size_t j = 0; j < 8; j++)
    CHECK(a[j * MIB] == j + 1 && a[j * MIB + MIB - 1] == j + 1, "block %zu not written by the persistent workers", j);
  sm_free(a);
  unsigned char *b = (unsigned char *)must_empty(8, MIB);
  CHECK(b == a, "the freed range was not handed out again (first fit): %p then %p", (void *)a, (void *)b);
  g_zero_blocks = 0;
  st = sm_map(pool, 8, check_zero_job, count_zero, sizeof(int), b);
  CHECK(st == SM_OK, "zero check: %s: %s", sm_status_str(st), last_err());
  CHECK(g_zero_blocks == 8, "persistent workers see %d of 8 blocks of a reused range zero-filled (stale pages)",
        g_zero_blocks);
  st = sm_map(pool, 8, fill_job, NULL, 0, b);
  CHECK(st == SM_OK, "persistent workers fill the reused range: %s: %s", sm_status_str(st), last_err());
  CHECK(b[5 * MIB] == 6 && b[8 * MIB - 1] == 8, "the reused range was not written by the workers");
  sm_free(b);
  sm_pool_free(pool);
}

static void case_full(void) {
  void *too_big = sm_empty(100 * MIB, 1);
  CHECK(too_big == NULL, "sm_empty(100 MiB) succeeded in a heap of 64 MiB");
  CHECK(sm_last_status() == SM_ERR_NOMEM, "sm_empty(100 MiB): status %s, expected SM_ERR_NOMEM",
        sm_status_str(sm_last_status()));
  CHECK(strstr(last_err(), "SM_HEAP_SIZE"), "the message should name SM_HEAP_SIZE: \"%s\"", last_err());
  printf("sm_empty(100 MiB) in a 64 MiB heap: \"%s\"\n", last_err());

  /* Shared with process workers, which write 8 MiB of it. */
  unsigned char *a = (unsigned char *)must_empty(8, MIB);
  CHECK(all_zero(a, 8 * MIB), "a new array is not zero-filled");
  sm_pool *pool = new_pool(2, SM_BACKEND_PROCESS);
  sm_status st = sm_map(pool, 8, fill_job, NULL, 0, a);
  CHECK(st == SM_OK, "sm_map: %s: %s", sm_status_str(st), last_err());
  for (size_t j = 0; j < 8; j++)
    CHECK(a[j * MIB] == j + 1 && a[j * MIB + MIB - 1] == j + 1, "block %zu not written by the workers", j);
  sm_free(a);

  persistent_reuse();

  /* The range is handed out again (first fit), zero-filled. */
  unsigned char *b = (unsigned char *)must_empty(8, MIB);
  CHECK(all_zero(b, 8 * MIB), "an array reusing a freed range is not zero-filled");
  sm_free(b);

  /* Freed neighbours merge. */
  unsigned char *small[48];
  for (int i = 0; i < 48; i++) {
    small[i] = (unsigned char *)must_empty(1, MIB);
    small[i][0] = 1;
  }
  for (int i = 0; i < 48; i += 2) sm_free(small[i]);
  for (int i = 1; i < 48; i += 2) sm_free(small[i]);
  unsigned char *large = (unsigned char *)sm_empty(48, MIB);
  CHECK(large != NULL, "48 MiB after freeing 48 arrays of 1 MiB: %s", last_err());
  CHECK(all_zero(large, 48 * MIB), "the merged range is not zero-filled");
  sm_free(large);
  sm_pool_free(pool);
}

static void case_misset(void) {
  void *p = sm_empty(10, 1);
  CHECK(p == NULL, "sm_empty succeeded with SM_HEAP_SIZE=%s", getenv("SM_HEAP_SIZE"));
  CHECK(sm_last_status() == SM_ERR_INVALID, "sm_empty: status %s, expected SM_ERR_INVALID",
        sm_status_str(sm_last_status()));
  CHECK(strstr(last_err(), "SM_HEAP_SIZE"), "the message should name SM_HEAP_SIZE: \"%s\"", last_err());
  printf("sm_empty with SM_HEAP_SIZE=%s: \"%s\"\n", getenv("SM_HEAP_SIZE"), last_err());
  sm_pool *pool = new_pool(2, SM_BACKEND_THREAD);
  uint64_t sum = 0;
  sm_status st = sm_map(pool, 4, work_nothing, NULL, 8, &sum);
  CHECK(st == SM_ERR_INVALID && strstr(last_err(), "SM_HEAP_SIZE"),
        "sm_map with a reduce: %s, \"%s\" (expected SM_ERR_INVALID naming SM_HEAP_SIZE)", sm_status_str(st),
        last_err());
  sm_pool_free(pool);
}

static void case_fork(void) {
  unsigned char *a = (unsigned char *)must_empty(1, MIB);
  memset(a, 7, MIB);
  pid_t pid = fork_subtest(30);
  if (pid == 0) {
    /* A heap of its own: what it allocates and writes is not in the parent's heap. */
    unsigned char *c = (unsigned char *)sm_empty(1, MIB);
    if (!c) _exit(10);
    memset(c, 9, MIB);
    if (a[0] != 7 || a[MIB - 1] != 7) _exit(11);
    sm_free(a); /* only unmaps it here */
    sm_free(c);
    _exit(0);
  }
  int code = wait_sub(pid, "child allocating and freeing");
  CHECK(code == 0, "the child failed (%d: 10 sm_empty, 11 inherited array changed)", code);
  CHECK(a[0] == 7 && a[MIB - 1] == 7, "the parent's array changed after the child freed it");
  /* Had the child cut from our heap, its 9s would be in the range we are given next. */
  unsigned char *next = (unsigned char *)must_empty(1, MIB);
  CHECK(all_zero(next, MIB), "the child wrote into the parent's heap");
  sm_free(next);
  sm_free(a);
}

int main(int argc, char **argv) {
  watchdog(60);
  const char *which = argc > 1 ? argv[1] : "";
  if (strcmp(which, "full") == 0)
    case_full();
  else if (strcmp(which, "misset") == 0)
    case_misset();
  else if (strcmp(which, "fork") == 0)
    case_fork();
  else {
    fprintf(stderr, "usage: %s full|misset|fork\n", argv[0]);
    return 2;
  }
  printf("test_heap[%s]: OK\n", which);
  return 0;
}
