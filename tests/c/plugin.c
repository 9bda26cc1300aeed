/* A job function in a library that test_dlopen loads with dlopen. */
#include <stddef.h>

int plugin_work(void *ctx, size_t job, void *result);

int plugin_work(void *ctx, size_t job, void *result) {
  (void)ctx;
  *(size_t *)result = job * 3;
  return 0;
}
