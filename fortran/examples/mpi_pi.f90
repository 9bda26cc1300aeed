! mpi_pi.f90 -- one map across MPI ranks from Fortran: pi by the midpoint rule, reduced on rank 0.
!
! The work and reduce functions are those sm_map would take on one machine; sm_mpi_map (module
! sharedmem_mpi) hands the jobs out across the ranks of MPI_COMM_WORLD, each rank running its
! share on its own pool, and calls reduce on rank 0 only, in job order. The communicator is its
! integer handle: MPI_COMM_WORLD from `use mpi` (from `use mpi_f08`: MPI_COMM_WORLD%MPI_VAL).
! ctx, which only reduce uses, is passed by copy (sm_mpi_map_ex with opts%ctx_size): so it may be
! an ordinary variable on every backend, persistent workers (which see ordinary memory only as
! it was at sm_pool_new) included; reduce gets the caller's own.
!
!   mpirun -n 4 --bind-to none ./fortran_mpi_pi [process|persistent|thread|serial]
module mpi_pi_jobs
  use sharedmem
  implicit none
  private
  public :: work, reduce, njobs

  integer(c_size_t), parameter :: njobs = 1000_c_size_t
  integer, parameter :: steps = 10000

contains

  !> Job `job` (0-based) integrates 4/(1+x^2) over its slice of [0, 1]; in some rank's worker.
  recursive integer(c_int) function work(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx
    integer(c_size_t), value :: job
    type(c_ptr), value :: result
    real(c_double), pointer :: r
    real(c_double) :: h, x, s
    integer :: i
    if (c_associated(ctx)) continue
    h = 1.0_c_double / (real(njobs, c_double) * steps)
    s = 0
    do i = 0, steps - 1
      x = (real(job, c_double) * steps + i + 0.5_c_double) * h
      s = s + 4.0_c_double / (1.0_c_double + x * x)
    end do
    call c_f_pointer(result, r)
    r = s * h
    work = 0
  end function work

  !> On rank 0, in job order: adds the job's part into ctx.
  integer(c_int) function reduce(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx
    integer(c_size_t), value :: job
    type(c_ptr), value :: result
    real(c_double), pointer :: total, r
    if (job < 0) continue
    call c_f_pointer(ctx, total)
    call c_f_pointer(result, r)
    total = total + r
    reduce = 0
  end function reduce
end module mpi_pi_jobs

program mpi_pi
  use mpi
  use sharedmem
  use sharedmem_mpi
  use backend_arg
  use mpi_pi_jobs
  implicit none
  integer :: provided, rank, nranks, ierr, ok
  integer(c_int) :: status
  type(c_ptr) :: pool
  real(c_double), target :: pi
  real(c_double) :: r
  type(sm_map_opts) :: opts

  call MPI_Init_thread(MPI_THREAD_FUNNELED, provided, ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)

  pool = sm_pool_new(2_c_int, backend_from_args("fortran_mpi_pi"))
  pi = 0
  opts = sm_map_opts(size=c_sizeof(opts), chunk=0, worker_init=c_null_funptr, &
                     worker_fini=c_null_funptr, worker_reduce=c_null_funptr, wresult_size=0, &
                     progress=c_null_funptr, ctx_size=c_sizeof(pi))
  status = sm_mpi_map_ex(pool, MPI_COMM_WORLD, 0_c_int, njobs, c_funloc(work), &
                         c_funloc(reduce), c_sizeof(r), c_loc(pi), opts)
  ok = 1
  if (status /= SM_OK) then
    print '(a, i0, a, a)', "rank ", rank, ": sm_mpi_map_ex: ", sm_last_error_string()
    ok = 0
  else if (rank == 0) then
    print '(a, f14.12, a, i0, a)', "pi = ", pi, " on ", nranks, " rank(s)"
    if (abs(pi - 4 * atan(1.0_c_double)) > 1e-9_c_double) ok = 0
  end if
  call sm_pool_free(pool)
  call MPI_Bcast(ok, 1, MPI_INTEGER, 0, MPI_COMM_WORLD, ierr)
  call MPI_Finalize(ierr)
  if (ok /= 1) error stop 1
end program mpi_pi
