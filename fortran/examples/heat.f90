! heat.f90 -- the steady-state heat equation on a square plate, by Jacobi iteration: an OpenMP
! loop nest ported to a sharedmem parallel region (the Fortran twin of c-examples/heat.c).
!
! The plate is an N x N grid; its edges are held at fixed temperatures (the top edge, row 1, at
! 100, the others at 0) and every interior point is repeatedly replaced by the mean of its four
! neighbours until the largest change in one sweep (the residual) drops below TOL, or MAX_ITER
! sweeps. The two grids are g(:, :, 1) and g(:, :, 2); a sweep reads g(:, :, cur) and writes
! g(:, :, nxt), then the two swap.
!
! The OpenMP original:
!
!   res = 0; iter = 0; cur = 1; nxt = 2
!   !$omp parallel firstprivate(cur, nxt)
!   do
!     !$omp do reduction(max:res)
!     do j = 2, N - 1
!       do i = 2, N - 1
!         g(i, j, nxt) = 0.25d0 * (g(i-1, j, cur) + g(i+1, j, cur) + g(i, j-1, cur) &
!                                  + g(i, j+1, cur))
!         res = max(res, abs(g(i, j, nxt) - g(i, j, cur)))
!       end do
!     end do
!     !$omp end do                                 (implicit barrier)
!     !$omp single
!     last = res; res = 0; iter = iter + 1
!     !$omp end single                             (implicit barrier)
!     cur = 3 - cur; nxt = 3 - nxt                 (every thread swaps its own indices)
!     if (last < TOL .or. iter >= MAX_ITER) exit
!   end do
!   !$omp end parallel
!
! The port, jacobi_region below, has the same structure; what changes:
!   - `!$omp parallel` is sm_parallel(pool, c_funloc(jacobi_region), ctx_mem): every worker
!     runs the region once; firstprivate variables are the region's locals (cur, nxt).
!   - `!$omp do` over columns j (the contiguous dimension is i) is
!     `do while (sm_for_next(pool, 2, N, ...) == 1)` then `do j = lo, hi - 1`: sm_for_next hands
!     out pieces [lo, hi) of [2, N), i.e. the columns 2 .. N-1.
!   - reduction(max:res) and the loop's barrier: each worker keeps its own maximum, stores it in
!     partial(worker) after its last columns (hence SM_FOR_NOWAIT), then sm_barrier; the single
!     worker (sm_single) combines the partials into state%res (`last`). A max is exact and does
!     not depend on the order it is taken in: the residual is the serial one to the bit.
!   - the single's implicit barrier is an explicit sm_barrier after `if (sm_single(pool) == 1)`.
!   - shared data must live in sm_empty memory: with the process backend (the default) the
!     workers are forked processes, and what they write to ordinary memory stays in the worker;
!     persistent workers (SM_BACKEND_PERSISTENT), forked once at sm_pool_new, do not even see
!     what the caller writes there after that, main-program variables included. So the grids,
!     the partials, the shared res/iter and the ctx itself are sm_empty memory, seen from
!     Fortran through c_f_pointer.
!
! The program then runs the same algorithm serially, in an ordinary array, and checks that the
! grid and the iteration count are identical to the bit: every point's update is the same
! expression, so Jacobi gives the same result whatever the number of workers.
!
! Usage: fortran_heat [process|persistent|thread|serial]     (default: process)
! Prints the iterations, residual and times; stops with `error stop 1` if parallel /= serial.
module heat_jacobi
  use sharedmem
  implicit none
  private
  public :: N, TOL, MAX_ITER, heat_context, shared_state, init_grids, sweep_column, jacobi_region

  integer, parameter :: N = 128                        ! grid points per side, boundary included
  real(c_double), parameter :: TOL = 1.0e-3_c_double   ! stop when no point changes more ...
  integer, parameter :: MAX_ITER = 20000               ! ... or after this many sweeps
  real(c_double), parameter :: TOP = 100.0_c_double    ! the top edge's temperature

  ! The ctx of sm_parallel: read-only in the workers. It is filled in after sm_pool_new, hence in
  ! sm_empty memory, as is everything it points to.
  type, bind(C) :: heat_context
    type(c_ptr) :: pool
    type(c_ptr) :: grids      ! N x N x 2 real(c_double): g(:, :, 1) and g(:, :, 2)
    type(c_ptr) :: partial    ! one residual per worker
    type(c_ptr) :: state      ! a shared_state
  end type heat_context

  ! What the single worker computes for the team.
  type, bind(C) :: shared_state
    real(c_double) :: res     ! the combined residual of the last sweep
    integer(c_int) :: iter    ! sweeps done
    integer(c_int) :: team    ! workers in the region
  end type shared_state

contains

  ! The procedures the region runs are `recursive`: with SM_BACKEND_THREAD, several threads run
  ! them at once.

  !> Both grids at the start: 0 everywhere but the top edge (row 1). Sweeps never write the edges.
  subroutine init_grids(g)
    real(c_double), intent(out) :: g(N, N, 2)
    g = 0
    g(1, :, :) = TOP
  end subroutine init_grids

  !> Column j of a Jacobi sweep, from g(:, :, cur) into g(:, :, nxt); res becomes the largest of
  !> res and the changes in the column. Shared by the parallel and serial versions.
  recursive subroutine sweep_column(g, cur, nxt, j, res)
    real(c_double), intent(inout) :: g(N, N, 2)
    integer, intent(in) :: cur, nxt, j
    real(c_double), intent(inout) :: res
    integer :: i
    do i = 2, N - 1
      g(i, j, nxt) = 0.25_c_double * (g(i - 1, j, cur) + g(i + 1, j, cur) + g(i, j - 1, cur) + &
                                      g(i, j + 1, cur))
      res = max(res, abs(g(i, j, nxt) - g(i, j, cur)))
    end do
  end subroutine sweep_column

  !> The parallel region: every worker runs it once (an sm_region function).
  recursive integer(c_int) function jacobi_region(ctx_ptr) bind(C)
    type(c_ptr), value :: ctx_ptr
    type(heat_context), pointer :: ctx
    real(c_double), pointer, contiguous :: g(:, :, :), partial(:)
    type(shared_state), pointer :: state
    integer(c_size_t) :: lo, hi
    integer :: cur, nxt, j, me
    real(c_double) :: mine

    call c_f_pointer(ctx_ptr, ctx)
    call c_f_pointer(ctx%grids, g, [N, N, 2])
    call c_f_pointer(ctx%partial, partial, [sm_num_workers()])
    call c_f_pointer(ctx%state, state)
    me = sm_worker_id() + 1                          ! 1 .. sm_num_workers()
    cur = 1                                          ! private to each worker, like firstprivate
    nxt = 2
    jacobi_region = 0
    do
      ! !$omp do reduction(max:res) nowait: this worker's columns and its own maximum.
      mine = 0
      do while (sm_for_next(ctx%pool, 2_c_size_t, int(N, c_size_t), SM_SCHEDULE_STATIC, &
                            0_c_size_t, SM_FOR_NOWAIT, lo, hi) == 1)
        do j = int(lo), int(hi) - 1
          call sweep_column(g, cur, nxt, j, mine)
        end do
      end do
      partial(me) = mine

      ! The reduction: once every worker has stored its maximum, one of them combines them.
      if (sm_barrier(ctx%pool) /= SM_OK) return      ! (the region is being stopped)
      if (sm_single(ctx%pool) == 1) then
        state%res = maxval(partial)
        state%iter = state%iter + 1
        state%team = sm_num_workers()
      end if
      if (sm_barrier(ctx%pool) /= SM_OK) return      ! everyone sees res and iter

      cur = 3 - cur
      nxt = 3 - nxt
      if (state%res < TOL .or. state%iter >= MAX_ITER) return
    end do
  end function jacobi_region

end module heat_jacobi


program heat
  use, intrinsic :: iso_fortran_env, only: error_unit, output_unit, int64
  use sharedmem
  use heat_jacobi
  use backend_arg
  implicit none

  type(c_ptr) :: pool
  type(c_ptr) :: ctx_mem
  type(heat_context), pointer :: ctx
  type(heat_context) :: ctx_probe                    ! only its size is used
  real(c_double), pointer, contiguous :: g(:, :, :)
  type(shared_state), pointer :: state
  type(shared_state) :: state_probe                  ! only its size is used
  real(c_double), allocatable :: s(:, :, :)          ! the serial version's grids
  real(c_double) :: res_serial
  integer(c_int) :: backend, st
  integer :: iter_serial, cur, nxt, j, last
  integer(int64) :: t0, t1, t2, rate
  procedure(sm_region), pointer :: region_check      ! the compiler checks jacobi_region's interface

  region_check => jacobi_region
  backend = backend_from_args("fortran_heat")

  pool = sm_pool_new(0_c_int, backend)               ! 0: OMP_NUM_THREADS, else one per CPU
  if (.not. c_associated(pool)) call fail("sm_pool_new: " // sm_last_error_string())
  ctx_mem = sm_empty(1_c_size_t, c_sizeof(ctx_probe))
  if (.not. c_associated(ctx_mem)) call fail("sm_empty: " // sm_last_error_string())
  call c_f_pointer(ctx_mem, ctx)
  ctx%pool = pool
  ctx%grids = sm_empty(int(N, c_size_t) * int(N, c_size_t) * 2, c_sizeof(0.0_c_double))
  ctx%partial = sm_empty(int(sm_pool_nworkers(pool), c_size_t), c_sizeof(0.0_c_double))
  ctx%state = sm_empty(1_c_size_t, c_sizeof(state_probe))
  if (.not. (c_associated(ctx%grids) .and. c_associated(ctx%partial) .and. &
             c_associated(ctx%state))) call fail("sm_empty: " // sm_last_error_string())
  call c_f_pointer(ctx%grids, g, [N, N, 2])
  call c_f_pointer(ctx%state, state)
  call init_grids(g)

  ! --- In parallel ---------------------------------------------------------------------------
  flush (output_unit)
  call system_clock(t0, rate)
  st = sm_parallel(pool, c_funloc(jacobi_region), ctx_mem)
  call system_clock(t1)
  if (st /= SM_OK) call fail("sm_parallel: " // sm_status_string(st) // ": " // &
                             sm_last_error_string())

  ! --- Serially, the same sweeps --------------------------------------------------------------
  allocate (s(N, N, 2))
  call init_grids(s)
  cur = 1
  nxt = 2
  iter_serial = 0
  do
    res_serial = 0
    do j = 2, N - 1
      call sweep_column(s, cur, nxt, j, res_serial)
    end do
    iter_serial = iter_serial + 1
    cur = 3 - cur
    nxt = 3 - nxt
    if (res_serial < TOL .or. iter_serial >= MAX_ITER) exit
  end do
  call system_clock(t2)

  print '(a,i0,a,es12.6,a,f6.3,a,a,a,i0,a)', "sm_parallel: ", state%iter, &
    " iterations, residual ", state%res, ",", real(t1 - t0) / real(rate), " s (", backend_name(backend), &
    " backend, team of ", state%team, ")"
  print '(a,i0,a,es12.6,a,f6.3,a)', "serial:      ", iter_serial, " iterations, residual ", &
    res_serial, ",", real(t2 - t1) / real(rate), " s"
  last = 1 + mod(state%iter, 2)                      ! the grid the last sweep wrote
  print '(a,f0.6)', "centre temperature ", g(N / 2 + 1, N / 2 + 1, last)

  if (state%iter /= iter_serial .or. &
      transfer(state%res, 0_c_int64_t) /= transfer(res_serial, 0_c_int64_t) .or. &
      .not. same_bits(g(:, :, last), s(:, :, cur))) &
    call fail("the parallel result differs from the serial one")

  call sm_free(ctx%grids)
  call sm_free(ctx%partial)
  call sm_free(ctx%state)
  call sm_free(ctx_mem)
  call sm_pool_free(pool)
  print '(a)', "OK"

contains

  ! Whether two arrays hold the same bits (an exact comparison, without -Wcompare-reals' warning).
  logical function same_bits(a, b)
    real(c_double), intent(in) :: a(:, :), b(:, :)
    same_bits = all(shape(a) == shape(b))
    if (same_bits) same_bits = all(transfer(a, 0_c_int64_t, size(a)) == &
                                   transfer(b, 0_c_int64_t, size(b)))
  end function same_bits

  subroutine fail(what)
    character(len=*), intent(in) :: what
    write (error_unit, '(a)') "FAIL: " // what
    error stop 1
  end subroutine fail

end program heat
