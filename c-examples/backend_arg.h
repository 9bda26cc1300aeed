/* The examples' command line: an optional backend name, "process" (the default), "persistent",
 * "thread" or "serial". Shared by the example programs; not part of the library. */
#ifndef SHAREDMEM_EXAMPLES_BACKEND_ARG_H
#define SHAREDMEM_EXAMPLES_BACKEND_ARG_H

#include <stdio.h>
#include <string.h>

#include "sharedmem.h"

static int parse_backend(int argc, char **argv, sm_backend *out) {
  const char *name = argc > 1 ? argv[1] : "process";
  if (strcmp(name, "process") == 0) *out = SM_BACKEND_PROCESS;
  else if (strcmp(name, "persistent") == 0) *out = SM_BACKEND_PERSISTENT;
  else if (strcmp(name, "thread") == 0) *out = SM_BACKEND_THREAD;
  else if (strcmp(name, "serial") == 0) *out = SM_BACKEND_SERIAL;
  else {
    fprintf(stderr, "usage: %s [process|persistent|thread|serial]\n", argv[0]);
    return -1;
  }
  return 0;
}

#endif
