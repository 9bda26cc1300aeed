/* Tiny assertion header shared by the sharedmem C tests.
 * CHECK(cond, fmt, ...) prints file:line, the condition and the message, then exits 1. */
#ifndef SM_TEST_CHECK_H
#define SM_TEST_CHECK_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fflush(stdout);                                                                 \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);        \
      fprintf(stderr, __VA_ARGS__);                                                   \
      fputc('\n', stderr);                                                            \
      fflush(stderr);                                                                 \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

#endif
