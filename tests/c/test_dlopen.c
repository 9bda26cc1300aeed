/* Persistent workers have the code that was loaded when their pool was made:
 *  - a job function in a library dlopen'ed before sm_pool_new runs and its results are right;
 *  - one in a library dlopen'ed after sm_pool_new is refused (SM_ERR_INVALID naming dlopen),
 *    nothing runs, and the pool still works;
 *  - on the process and thread backends, both run (their workers have the caller's code as it is
 *    at each call). Argument: the backend and the path of the plugin library. */
#include "testutil.h"

#include <dlfcn.h>

static int sum_reduce(void *ctx, size_t job, void *result) {
  size_t *sum = (size_t *)ctx;
  (void)job;
  *sum += *(size_t *)result;
  return 0;
}

static sm_work_fn load(const char *path) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  CHECK(lib != NULL, "dlopen(%s): %s", path, dlerror());
  sm_work_fn f;
  *(void **)&f = dlsym(lib, "plugin_work");
  CHECK(f != NULL, "dlsym(plugin_work): %s", dlerror());
  return f;
}

static sm_status run(sm_pool *pool, sm_work_fn f, size_t *sum) {
  *sum = 0;
  return sm_map(pool, 100, f, sum_reduce, sizeof(size_t), sum);
}

int main(int argc, char **argv) {
  sm_backend b = parse_backend(argc, argv);
  CHECK(argc >= 3, "usage: test_dlopen <backend> <plugin path>");
  watchdog(60);
  jfail_init();
  size_t *sum = (size_t *)must_empty(1, sizeof(size_t));
  const size_t want = 3 * 99 * 100 / 2;

  /* loaded before the pool: the workers have it */
  sm_work_fn before = load(argv[2]);
  sm_pool *pool = new_pool(2, b);
  sm_status st = run(pool, before, sum);
  CHECK_STATUS(st, SM_OK, "a job function loaded before the pool");
  CHECK(*sum == want, "sum %zu, expected %zu", *sum, want);
  sm_pool_free(pool);

  /* loaded after the pool: refused on persistent, fine elsewhere (a copy under another name, so
   * that dlopen loads it anew rather than handing back the library already loaded) */
  pool = new_pool(2, b);
  char copy[] = "/tmp/sm_plugin_XXXXXX";
  int fd = mkstemp(copy);
  CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
  int in = open(argv[2], O_RDONLY | O_CLOEXEC);
  CHECK(in >= 0, "open %s: %s", argv[2], strerror(errno));
  char buf[65536];
  ssize_t r;
  while ((r = read(in, buf, sizeof buf)) > 0) CHECK(write(fd, buf, (size_t)r) == r, "write");
  close(in);
  close(fd);
  sm_work_fn after = load(copy);
  unlink(copy);
  st = run(pool, after, sum);
  if (b == SM_BACKEND_PERSISTENT) {
    printf("a job function loaded after the persistent pool: %s \"%s\"\n", sm_status_str(st), last_err());
    CHECK(st == SM_ERR_INVALID && icontains(last_err(), "dlopen") && icontains(last_err(), "work"),
          "a job function loaded after the persistent pool: %s \"%s\" (expected SM_ERR_INVALID naming work and "
          "dlopen)", sm_status_str(st), last_err());
    CHECK(*sum == 0, "the refused map reduced something (sum %zu)", *sum);
  } else {
    CHECK_STATUS(st, SM_OK, "a job function loaded after the pool");
    CHECK(*sum == want, "sum %zu, expected %zu", *sum, want);
  }
  /* the pool still works */
  CHECK_STATUS(sm_map(pool, 10, work_nothing, NULL, 0, NULL), SM_OK, "a map after");
  sm_pool_free(pool);
  sm_free(sum);
  CHECK_NO_CHILDREN("end");
  printf("test_dlopen[%s]: OK\n", g_backend_name);
  return 0;
}
