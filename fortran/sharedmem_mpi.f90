! sharedmem_mpi.f90 -- Fortran 2008 bindings for sm_mpi_map (include/sharedmem_mpi.h): one map
! across the ranks of an MPI communicator, reduce on root in global job order; and for
! sm_mpi_argsort / sm_mpi_permute: a stable argsort of an array spread over the ranks, and the
! gather by global index that moves any payload array into that order.
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
!
! Sorting across the ranks (see sm_mpi_argsort / sm_mpi_permute below and the header):
!
!   real(c_double), allocatable, target :: keys(:), pos(:, :)
!   integer(c_int64_t), allocatable, target :: order(:)
!   status = sm_mpi_argsort(pool, MPI_COMM_WORLD, c_loc(keys), n, SM_DTYPE_F64, c_loc(order))
!   status = sm_mpi_permute(pool, MPI_COMM_WORLD, c_loc(pos), n, 3 * c_sizeof(pos(1, 1)), &
!                           c_loc(order), n, c_loc(pos))
!
! The indices are global and 0-based, as in C: order(i) + 1 is the 1-based position in the
! concatenation of every rank's keys. On a rank holding nothing pass c_null_ptr rather than
! c_loc of an empty array (Fortran 2008 does not allow c_loc of a zero-size array).
module sharedmem_mpi
  use, intrinsic :: iso_c_binding
  use sharedmem
  implicit none
  private

  public :: sm_mpi_map, sm_mpi_map_ex, sm_mpi_argsort, sm_mpi_permute

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

    !> numpy's stable argsort of the array spread over the ranks of comm (the concatenation of
    !> every rank's keys in rank order; counts may differ, zero included). Collective. keys is
    !> c_loc of nlocal elements of the type named by dtype (SM_DTYPE_F64 for real(c_double), ...,
    !> module sharedmem), out is c_loc of an integer(c_int64_t) array of nlocal elements; both may
    !> be c_null_ptr when nlocal is 0. On return out holds this rank's share of the sorted order,
    !> as 0-based GLOBAL indices (add 1 to index a 1-based Fortran array): the concatenation of
    !> every rank's out is numpy.argsort(concatenation, kind='stable'). Returns an sm_status, the
    !> same on every rank (SM_ERR_INVALID when the ranks pass different dtypes).
    integer(c_int) function sm_mpi_argsort(pool, comm, keys, nlocal, dtype, out) &
        bind(C, name="sm_mpi_argsort_f")
      import :: c_ptr, c_size_t, c_int
      type(c_ptr), value :: pool
      integer(c_int), value :: comm
      type(c_ptr), value :: keys
      integer(c_size_t), value :: nlocal
      integer(c_int), value :: dtype
      type(c_ptr), value :: out
    end function sm_mpi_argsort

    !> Gathers items by global index across the ranks of comm: item i of dst (i = 0..nout-1) is
    !> item index(i) (0-based, global) of the concatenation of every rank's src (nlocal items of
    !> itemsize bytes each). Collective. src, index (integer(c_int64_t)) and dst are c_loc of
    !> arrays (c_null_ptr when empty); dst may be src (reorder in place), not index. With the out
    !> of sm_mpi_argsort as index (nout = nlocal) it moves a payload held like the keys into the
    !> sorted order. Returns an sm_status, the same on every rank (SM_ERR_INVALID for an index
    !> outside [0, total items) or different itemsizes).
    integer(c_int) function sm_mpi_permute(pool, comm, src, nlocal, itemsize, index, nout, dst) &
        bind(C, name="sm_mpi_permute_f")
      import :: c_ptr, c_size_t, c_int
      type(c_ptr), value :: pool
      integer(c_int), value :: comm
      type(c_ptr), value :: src
      integer(c_size_t), value :: nlocal
      integer(c_size_t), value :: itemsize
      type(c_ptr), value :: index
      integer(c_size_t), value :: nout
      type(c_ptr), value :: dst
    end function sm_mpi_permute
  end interface

end module sharedmem_mpi
