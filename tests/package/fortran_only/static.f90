! Linked against libsharedmem.a from a Fortran-only project: a pool of 3 threads (the thread backend
! exercises the threads library the static link must bring in) reports its size.
program fortran_only_static
  use iso_c_binding, only: c_int, c_ptr, c_associated
  implicit none
  interface
    type(c_ptr) function sm_pool_new(nworkers, backend) bind(C, name="sm_pool_new")
      import :: c_int, c_ptr
      integer(c_int), value :: nworkers, backend
    end function sm_pool_new
    integer(c_int) function sm_pool_nworkers(pool) bind(C, name="sm_pool_nworkers")
      import :: c_int, c_ptr
      type(c_ptr), value :: pool
    end function sm_pool_nworkers
    subroutine sm_pool_free(pool) bind(C, name="sm_pool_free")
      import :: c_ptr
      type(c_ptr), value :: pool
    end subroutine sm_pool_free
  end interface
  type(c_ptr) :: pool
  pool = sm_pool_new(3_c_int, 1_c_int)   ! SM_BACKEND_THREAD
  if (.not. c_associated(pool)) error stop 1
  print '(a,i0)', 'static workers = ', sm_pool_nworkers(pool)
  call sm_pool_free(pool)
end program fortran_only_static
