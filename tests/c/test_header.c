/* The public header matches the contract: SM_STOP, enum values, and it is usable from plain C.
 * (header_hygiene.c is additionally compiled as strict C99 and as C++ by ctest.) */
#include "check.h"
#include <string.h>
#include <sharedmem.h>

int main(void) {
#ifndef SM_STOP
  CHECK(0, "sharedmem.h does not define SM_STOP (contract: #define SM_STOP 1398034256, the work() return "
           "value that stops a map early)");
#else
  CHECK(SM_STOP == 1398034256, "SM_STOP = %d, expected 1398034256", (int)SM_STOP);
#endif
  CHECK(SM_OK == 0 && SM_STOPPED == 1 && SM_ERR_INVALID == 2 && SM_ERR_NOMEM == 3 && SM_ERR_JOB == 4 &&
            SM_ERR_WORKER_DIED == 5 && SM_ERR_INTERRUPTED == 6 && SM_ERR_STATE == 7 && SM_ERR_IO == 8 &&
            SM_ERR_PANIC == 9,
        "sm_status values differ from the contract");
  CHECK(SM_BACKEND_PROCESS == 0 && SM_BACKEND_THREAD == 1 && SM_BACKEND_SERIAL == 2,
        "sm_backend values differ from the contract");
  CHECK(sizeof(sm_status) == sizeof(int) && sizeof(sm_backend) == sizeof(int), "enums are not int-sized");
  /* function pointer types as in the contract */
  sm_work_fn w = 0;
  sm_reduce_fn r = 0;
  (void)w;
  (void)r;
  printf("test_header: OK\n");
  return 0;
}
