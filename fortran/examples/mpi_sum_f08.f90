! sm_mpi_map_ex from `use mpi_f08`: the communicator is passed as comm%MPI_VAL, its integer
! handle. Each job returns its number; root's reduce adds them in job order and checks the sum.
! ctx, which only reduce uses, is passed by copy (opts%ctx_size): a persistent pool refuses an
! ordinary variable as ctx otherwise; reduce gets the caller's own.
!
! Usage: mpiexec -n 3 fortran_mpi_sum_f08 [process|persistent|thread|serial]
module mpi_sum_jobs
  use sharedmem
  implicit none
  private
  public :: work, reduce, njobs

  integer(c_size_t), parameter :: njobs = 100000_c_size_t

contains

  recursive integer(c_int) function work(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx
    integer(c_size_t), value :: job
    type(c_ptr), value :: result
    integer(c_int64_t), pointer :: r
    if (c_associated(ctx)) continue
    call c_f_pointer(result, r)
    r = int(job, c_int64_t)
    work = 0
  end function work

  integer(c_int) function reduce(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx
    integer(c_size_t), value :: job
    type(c_ptr), value :: result
    integer(c_int64_t), pointer :: total, r
    call c_f_pointer(ctx, total)
    call c_f_pointer(result, r)
    reduce = 0
    if (r /= int(job, c_int64_t)) reduce = 1   ! out of order or wrong: stop the map
    total = total + r
  end function reduce
end module mpi_sum_jobs

program mpi_sum_f08
  use mpi_f08
  use sharedmem
  use sharedmem_mpi
  use backend_arg
  use mpi_sum_jobs
  implicit none
  integer :: provided, rank, nranks, ok
  integer(c_int) :: status
  type(c_ptr) :: pool
  integer(c_int64_t), target :: total
  integer(c_int64_t) :: r
  type(sm_map_opts) :: opts

  call MPI_Init_thread(MPI_THREAD_FUNNELED, provided)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks)

  pool = sm_pool_new(2_c_int, backend_from_args("fortran_mpi_sum_f08"))
  total = 0
  opts = sm_map_opts(size=c_sizeof(opts), chunk=0, worker_init=c_null_funptr, &
                     worker_fini=c_null_funptr, worker_reduce=c_null_funptr, wresult_size=0, &
                     progress=c_null_funptr, ctx_size=c_sizeof(total))
  status = sm_mpi_map_ex(pool, MPI_COMM_WORLD%MPI_VAL, 0_c_int, njobs, c_funloc(work), &
                         c_funloc(reduce), c_sizeof(r), c_loc(total), opts)
  ok = 1
  if (status /= SM_OK) then
    print '(a, i0, a, a)', "rank ", rank, ": sm_mpi_map_ex: ", sm_last_error_string()
    ok = 0
  else if (rank == 0) then
    print '(a, i0, a, i0, a)', "sum = ", total, " on ", nranks, " rank(s)"
    if (total /= int(njobs, c_int64_t) * (int(njobs, c_int64_t) - 1) / 2) ok = 0
  end if
  call sm_pool_free(pool)
  call MPI_Bcast(ok, 1, MPI_INTEGER, 0, MPI_COMM_WORLD)
  call MPI_Finalize()
  if (ok /= 1) error stop 1
end program mpi_sum_f08
