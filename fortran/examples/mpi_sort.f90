! mpi_sort.f90 -- an array spread over MPI ranks, sorted from Fortran: sm_mpi_argsort, then
! sm_mpi_permute to move a payload along (module sharedmem_mpi, `use mpi`).
!
! Every rank holds some real(c_double) keys, a different number on each rank (none at all on
! rank 1 when there are 3 ranks or more), with many repeats. Each element's key is a function of
! its global index g (its 0-based position in the concatenation of every rank's keys, in rank
! order), and its payload, an integer(c_int64_t) tag, is g itself.
!
! sm_mpi_argsort gives each rank as many global indices as it holds keys: its share of the stable
! sorted order. sm_mpi_permute with those indices brings the keys and the tags there, in place.
! The program then checks, on every rank and across the rank boundaries (the first and last
! element of every rank, gathered with MPI_Allgather): the keys ascend, equal keys keep their
! input order (their tags ascend: the sort is stable), every tag is still its key's, and the tags
! are exactly 0 .. N-1 once each. Any failure makes every rank stop with a nonzero status.
!
! Indices are 0-based, as in C: order(i) + 1 is a 1-based position in the concatenation.
! A rank holding nothing passes c_null_ptr for its arrays (c_loc of a zero-size array is not
! Fortran 2008).
!
!   mpirun -n 3 --bind-to none ./fortran_mpi_sort
module mpi_sort_keys
  use sharedmem
  implicit none
  private
  public :: key_of, count_on

contains

  !> The key of the element with global index g: 1009 distinct values, so N > 1009 repeats some;
  !> negative and positive.
  pure real(c_double) function key_of(g)
    integer(c_int64_t), intent(in) :: g
    key_of = real(mod(g * 7919_c_int64_t, 1009_c_int64_t), c_double) * 0.25_c_double &
             - 100.0_c_double
  end function key_of

  !> How many elements rank r of nranks holds: uneven, and none on rank 1 with 3 ranks or more.
  pure integer function count_on(r, nranks)
    integer, intent(in) :: r, nranks
    if (nranks >= 3 .and. r == 1) then
      count_on = 0
    else
      count_on = 700 + 450 * r
    end if
  end function count_on
end module mpi_sort_keys

program mpi_sort
  use mpi
  use sharedmem
  use sharedmem_mpi
  use mpi_sort_keys
  implicit none
  integer :: provided, rank, nranks, ierr, r, n, prev
  integer(c_int64_t) :: offset, total, i, bad, total_bad, tag_sum, tag_total
  integer(c_int) :: status
  type(c_ptr) :: pool
  real(c_double), allocatable, target :: keys(:)
  integer(c_int64_t), allocatable, target :: tags(:), order(:)
  integer(c_int64_t) :: mine_tags(2)
  integer(c_int64_t), allocatable :: all_tags(:, :)

  call MPI_Init_thread(MPI_THREAD_FUNNELED, provided, ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)

  ! This rank's elements: global indices offset .. offset + n - 1.
  n = count_on(rank, nranks)
  offset = 0
  total = 0
  do r = 0, nranks - 1
    if (r < rank) offset = offset + count_on(r, nranks)
    total = total + count_on(r, nranks)
  end do
  allocate(keys(n), tags(n), order(n))
  do i = 1, n
    tags(i) = offset + i - 1
    keys(i) = key_of(tags(i))
  end do

  ! Sort with 2 threads on each rank, then move the keys and the tags into that order (in place).
  pool = sm_pool_new(2_c_int, SM_BACKEND_THREAD)
  status = sm_mpi_argsort(pool, MPI_COMM_WORLD, loc_f64(keys), int(n, c_size_t), SM_DTYPE_F64, &
                          loc_i64(order))
  if (status == SM_OK) then
    status = sm_mpi_permute(pool, MPI_COMM_WORLD, loc_f64(keys), int(n, c_size_t), &
                            c_sizeof(0.0_c_double), &
                            loc_i64(order), int(n, c_size_t), loc_f64(keys))
  end if
  if (status == SM_OK) then
    status = sm_mpi_permute(pool, MPI_COMM_WORLD, loc_i64(tags), int(n, c_size_t), &
                            c_sizeof(0_c_int64_t), &
                            loc_i64(order), int(n, c_size_t), loc_i64(tags))
  end if
  call sm_pool_free(pool)

  bad = 0
  if (status /= SM_OK) then
    print '(a, i0, a, a)', "rank ", rank, ": ", sm_last_error_string()
    bad = 1
  else
    ! Here: each tag is its key's, and (key, tag) ascends (keys ascending, equal keys in input
    ! order); permuting the global indices by order gives order itself.
    do i = 1, n
      if (tags(i) /= order(i) .or. tags(i) < 0 .or. tags(i) >= total) then
        bad = bad + 1
      else if (transfer(keys(i), 0_c_int64_t) /= transfer(key_of(tags(i)), 0_c_int64_t)) then
        bad = bad + 1  ! compared bit for bit: the key moved exactly
      end if
      if (i > 1) then
        if (.not. before(keys(i - 1), tags(i - 1), keys(i), tags(i))) bad = bad + 1
      end if
    end do
  end if

  ! Across the ranks: every rank's first element comes after the last element of the nearest
  ! rank before it that holds any. Only the tags travel (the keys are key_of(tag), checked
  ! above), and every buffer passed to MPI here is integer(c_int64_t): with some MPIs (MPICH)
  ! `use mpi` has no interface for buffers, and gfortran then refuses two calls of one routine
  ! with buffers of different types in a file.
  mine_tags = 0
  if (n > 0 .and. status == SM_OK) mine_tags = [tags(1), tags(n)]
  allocate(all_tags(2, 0:nranks - 1))
  call MPI_Allgather(mine_tags, 2, MPI_INTEGER8, all_tags, 2, MPI_INTEGER8, MPI_COMM_WORLD, ierr)
  if (n > 0) then
    prev = -1
    do r = 0, rank - 1
      if (count_on(r, nranks) > 0) prev = r
    end do
    if (prev >= 0) then
      if (.not. before(key_of(all_tags(2, prev)), all_tags(2, prev), &
                       key_of(all_tags(1, rank)), all_tags(1, rank))) bad = bad + 1
    end if
  end if

  ! (key, tag) strictly ascending everywhere, N tags in [0, N): each exactly once if they add up.
  tag_sum = 0
  if (status == SM_OK) tag_sum = sum(tags)
  call MPI_Allreduce(tag_sum, tag_total, 1, MPI_INTEGER8, MPI_SUM, MPI_COMM_WORLD, ierr)
  if (tag_total /= total * (total - 1) / 2) bad = bad + 1
  call MPI_Allreduce(bad, total_bad, 1, MPI_INTEGER8, MPI_SUM, MPI_COMM_WORLD, ierr)
  if (rank == 0) then
    if (total_bad == 0) then
      print '(i0, a, i0, a)', total, " keys sorted across ", nranks, &
            " rank(s): in order, stable, payload followed"
    else
      print '(a, i0, a)', "WRONG: ", total_bad, " failed check(s)"
    end if
  end if
  call MPI_Finalize(ierr)
  if (total_bad /= 0) error stop 1

contains

  !> Whether element (k1, t1) comes strictly before (k2, t2) in a stable sort by key.
  pure logical function before(k1, t1, k2, t2)
    real(c_double), intent(in) :: k1, k2
    integer(c_int64_t), intent(in) :: t1, t2
    before = k1 < k2 .or. (.not. k2 < k1 .and. t1 < t2)  ! no NaN here: not k2 < k1 is k1 == k2
  end function before

  !> c_loc of a real(c_double) array, or c_null_ptr when it is empty.
  type(c_ptr) function loc_f64(a)
    real(c_double), intent(in), target :: a(:)
    loc_f64 = c_null_ptr
    if (size(a) > 0) loc_f64 = c_loc(a(1))
  end function loc_f64

  !> c_loc of an integer(c_int64_t) array, or c_null_ptr when it is empty.
  type(c_ptr) function loc_i64(a)
    integer(c_int64_t), intent(in), target :: a(:)
    loc_i64 = c_null_ptr
    if (size(a) > 0) loc_i64 = c_loc(a(1))
  end function loc_i64
end program mpi_sort
