! The Fortran example for README.md, verbatim below this line (built and run by CMakeLists.txt).
module squares_job                                           ! callbacks: bind(C) module procedures
  use sharedmem
  implicit none
  real(c_double), pointer :: squares(:)                      ! sm_empty memory: shared with workers
contains
  integer(c_int) function work(ctx, job, result) bind(C)     ! runs in a worker process
    type(c_ptr), value :: ctx, result
    integer(c_size_t), value :: job                          ! 0-based, as in C
    real(c_double), pointer :: r
    call c_f_pointer(result, r)
    squares(job + 1) = real(job, c_double)**2                ! sm_empty memory: the caller sees it
    r = squares(job + 1)                                     ! handed to reduce
    work = 0                                                 ! nonzero: error; SM_STOP: stop early
  end function work
  integer(c_int) function reduce(ctx, job, result) bind(C)   ! in the caller, in job order
    type(c_ptr), value :: ctx, result
    integer(c_size_t), value :: job
    real(c_double), pointer :: total, r
    call c_f_pointer(ctx, total)
    call c_f_pointer(result, r)
    total = total + r
    reduce = 0
  end function reduce
end module squares_job

program readme
  use squares_job
  implicit none
  type(c_ptr) :: pool
  real(c_double), target :: total = 0
  integer(c_int) :: s
  pool = sm_pool_new(0, SM_BACKEND_PROCESS)                  ! 0: OMP_NUM_THREADS or #CPUs
  call c_f_pointer(sm_empty(1000_c_size_t, c_sizeof(total)), squares, [1000])
  s = sm_map(pool, 1000_c_size_t, c_funloc(work), c_funloc(reduce), c_sizeof(total), c_loc(total))
  if (s /= SM_OK) print '(3a)', sm_status_string(s), ': ', sm_last_error_string()
  print '(a,i0,a,i0)', 'sum = ', nint(total), ', squares(1000) = ', nint(squares(1000))
  call sm_free(c_loc(squares)); call sm_pool_free(pool)
  if (s /= SM_OK) error stop 1
end program readme
