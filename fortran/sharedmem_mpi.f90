! sharedmem_mpi.f90 -- Fortran 2008 bindings for sm_mpi_map (include/sharedmem_mpi.h): one map
! across the ranks of an MPI communicator, reduce on root in global job order.
!
! The communicator is passed as its integer handle, so the module needs no MPI module of its own
! and works with either of MPI's:
!
!   use mpi:      status = sm_mpi_map(pool, MPI_COMM_WORLD, ...)
!   use mpi_f08:  status = sm_mpi_map(pool, MPI_COMM_WORLD%MPI_VAL, ...)
!
! (The handle is C's MPI_Fint, a default integer, which is integer(c_int) with gfortran and the
! usual MPI builds; an MPI built for 8-byte default integers is not supported.)
!
!   use sharedmem
!   use sharedmem_mpi
!   call MPI_Init_thread(MPI_THREAD_FUNNELED, provided, ierr)
!   pool = sm_pool_new(0, SM_BACKEND_PROCESS)
!   status = sm_mpi_map(pool, MPI_COMM_WORLD, 0, njobs, c_funloc(work), c_funloc(reduce), &
!                       c_sizeof(r), c_loc(ctx))
!
! The arguments are those of sm_map (module sharedmem) plus comm and root; read
! include/sharedmem_mpi.h for the semantics: collective over comm (every rank calls it with the
! same root, njobs and result_size); jobs 0 .. njobs-1 are numbered globally and handed out
! across the ranks, each rank running its jobs on its own pool (c_null_ptr: serially on the
! calling thread); reduce runs on root only, in global job order; every rank returns the same
! status. MPI must be initialized with at least MPI_THREAD_FUNNELED (MPI_THREAD_SERIALIZED when
! called from another thread than the main one), else SM_ERR_STATE. Link with libsharedmem_mpi
! (CMake: sharedmem::fortran_mpi) and build with the compiler wrapper (mpif90) of the MPI that
! sharedmem_mpi was built against.
module sharedmem_mpi
  use, intrinsic :: iso_c_binding
  use sharedmem
  implicit none
  private

  public :: sm_mpi_map, sm_mpi_map_ex

  interface
    !> Runs work(ctx, job, result) for job = 0..njobs-1 across the ranks of comm (an integer
    !> handle: MPI_COMM_WORLD from `use mpi`, or comm%MPI_VAL from `use mpi_f08`), each rank on
    !> its own pool, and reduce (c_null_funptr: none) on rank root, in global job order. Collective.
    !> Returns an sm_status, the same on every rank.
    integer(c_int) function sm_mpi_map(pool, comm, root, njobs, work, reduce, result_size, ctx) &
        bind(C, name="sm_mpi_map_f")
      import :: c_ptr, c_funptr, c_size_t, c_int
      type(c_ptr), value :: pool
      integer(c_int), value :: comm
      integer(c_int), value :: root
      integer(c_size_t), value :: njobs
      type(c_funptr), value :: work
      type(c_funptr), value :: reduce
      integer(c_size_t), value :: result_size
      type(c_ptr), value :: ctx
    end function sm_mpi_map

    !> sm_mpi_map with options (sm_map_opts, as sm_map_ex): worker_init / worker_fini run in each
    !> rank's workers; worker_reduce and progress run on root, worker_reduce once for every worker
    !> of every rank in (rank, worker) order, workers numbered across the ranks rank-major.
    integer(c_int) function sm_mpi_map_ex(pool, comm, root, njobs, work, reduce, result_size, &
                                          ctx, opts) bind(C, name="sm_mpi_map_ex_f")
      import :: c_ptr, c_funptr, c_size_t, c_int, sm_map_opts
      type(c_ptr), value :: pool
      integer(c_int), value :: comm
      integer(c_int), value :: root
      integer(c_size_t), value :: njobs
      type(c_funptr), value :: work
      type(c_funptr), value :: reduce
      integer(c_size_t), value :: result_size
      type(c_ptr), value :: ctx
      type(sm_map_opts), intent(in) :: opts
    end function sm_mpi_map_ex
  end interface

end module sharedmem_mpi
