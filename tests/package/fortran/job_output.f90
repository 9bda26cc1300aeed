! What jobs on forked workers print reaches a redirected stdout exactly once, and so does what the
! caller printed before the map (sharedmem flushes Fortran units around the fork and at exit).
module job_output_jobs
  use sharedmem
  implicit none
contains
  integer(c_int) function work(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx, result
    integer(c_size_t), value :: job
    if (c_associated(ctx) .or. c_associated(result)) continue  ! (unused)
    print '(A,I0)', 'job ', job
    work = 0
  end function
end module
program job_output
  use sharedmem
  use job_output_jobs
  implicit none
  type(c_ptr) :: pool
  integer(c_int) :: s
  print '(A)', 'before'
  pool = sm_pool_new(2_c_int, SM_BACKEND_PROCESS)
  s = sm_map(pool, 4_c_size_t, c_funloc(work), c_null_funptr, 0_c_size_t, c_null_ptr)
  print '(A,I0)', 'status ', s
  call sm_pool_free(pool)
end program
