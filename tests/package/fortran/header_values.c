/* The values of sharedmem.h's constants, for main.f90 to compare with the `sharedmem` module's
 * parameters (fortran/sharedmem.f90 copies them by hand: this catches a drift). The order is the
 * one main.f90 expects. Returns the number of values written, or -1 if n is too small. */
#include <sharedmem.h>
#include <stdint.h>

int sm_test_header_values(int64_t *v, int n) {
  const int64_t values[] = {
      SM_STOP,
      SM_BACKEND_PROCESS, SM_BACKEND_THREAD, SM_BACKEND_SERIAL, SM_BACKEND_PERSISTENT,
      SM_DTYPE_F64, SM_DTYPE_F32, SM_DTYPE_I64, SM_DTYPE_I32, SM_DTYPE_I16,
      SM_DTYPE_I8, SM_DTYPE_U64, SM_DTYPE_U32, SM_DTYPE_U16, SM_DTYPE_U8,
      SM_OK, SM_STOPPED, SM_ERR_INVALID, SM_ERR_NOMEM, SM_ERR_JOB,
      SM_ERR_WORKER_DIED, SM_ERR_INTERRUPTED, SM_ERR_STATE, SM_ERR_IO, SM_ERR_PANIC,
      SM_SCHEDULE_STATIC, SM_SCHEDULE_DYNAMIC, SM_SCHEDULE_GUIDED, SM_FOR_ORDERED, SM_FOR_NOWAIT,
      (int64_t)sizeof(size_t), (int64_t)sizeof(sm_status), (int64_t)sizeof(sm_backend),
      (int64_t)sizeof(sm_dtype), (int64_t)sizeof(sm_schedule), (int64_t)sizeof(sm_map_opts),
      SM_MAX_WORKERS, (int64_t)SM_MAX_JOBS, (int64_t)SM_MAX_RESULT_SIZE, SM_RESULT_ALIGN,
  };
  const int count = (int)(sizeof values / sizeof values[0]);
  if (n < count) return -1;
  for (int i = 0; i < count; i++) v[i] = values[i];
  return count;
}
