! ep.f90 -- the kernel of the NAS Parallel Benchmarks' EP with per-worker reductions: the Fortran
! twin of c-examples/ep.c, with sm_parallel_ex and sm_worker_local.
!
! EP draws pairs (x, y) uniform in (-1, 1), keeps those inside the unit circle, turns each into a
! pair of Gaussian deviates (X, Y) (Marsaglia's polar method), sums them (sx, sy) and counts them
! by annulus: q(l) counts pairs with l - 1 <= max(|X|, |Y|) < l. The OpenMP original, in essence:
!
!   !$omp parallel do reduction(+:sx, sy, q)
!   do k = 0, NBATCH - 1
!     ... the pairs of batch k: sx = sx + gx; sy = sy + gy; q(l) = q(l) + 1 ...
!   end do
!
! The port:
!   - the reduction variables become a bind(C) type `acc`, one per worker: opts%wresult_size =
!     c_sizeof(acc) gives every worker its own, zeroed, and the region reaches it with
!     c_f_pointer(sm_worker_local(), a); the loop body is the OpenMP one with `a%` in front;
!   - `!$omp parallel do` is sm_parallel_ex(pool, c_funloc(ep_region), c_loc(ctx), opts) with
!     sm_for_next sharing the batches;
!   - the `+` of the reduction is add_worker (opts%worker_reduce), run on the caller once per
!     worker, in worker order, after the loop: it adds the worker's acc into `total`;
!   - ctx is passed by copy (opts%ctx_size = c_sizeof(ctx)): the region only reads it (the pool),
!     and add_worker, on the caller, gets the caller's own ctx to add into. So ctx may be an
!     ordinary variable on every backend, persistent workers (which see the caller's memory only
!     as it was at sm_pool_new, before ctx%pool was set) included.
! Each batch seeds its own generator (a Park-Miller generator, exact in 64-bit integers), so the
! numbers do not depend on which worker draws them; the program checks the counts exactly and the
! sums to rounding against the same loop run serially.
!
! Usage: fortran_ep [process|persistent|thread|serial]     (default: process)
module ep_kernel
  use sharedmem
  implicit none
  private
  public :: NBATCH, NQ, acc, ep_batch, ep_region, add_worker, ep_context

  integer, parameter :: NBATCH = 128, PAIRS = 8192, NQ = 10

  !> The reduction variables (of one worker, or the total).
  type, bind(C) :: acc
    real(c_double) :: sx = 0, sy = 0
    integer(c_int64_t) :: q(NQ) = 0
  end type acc

  !> The ctx: the region gets a copy of it, worker_reduce the caller's own.
  type, bind(C) :: ep_context
    type(c_ptr) :: pool
    type(acc) :: total
    integer(c_int) :: next_worker = 0                   ! add_worker checks the order it is called in
  end type ep_context

contains

  ! A uniform number in (-1, 1) from a Park-Miller generator (state in 1 .. 2**31 - 2).
  recursive real(c_double) function uniform(state)
    integer(c_int64_t), intent(inout) :: state
    state = mod(16807_c_int64_t * state, 2147483647_c_int64_t)
    uniform = 2 * (real(state, c_double) / 2147483647.0_c_double) - 1
  end function uniform

  !> The body of the OpenMP loop for batch k (0-based): adds into a.
  recursive subroutine ep_batch(k, a)
    integer(c_size_t), intent(in) :: k
    type(acc), intent(inout) :: a
    integer(c_int64_t) :: state
    real(c_double) :: x, y, t, f, gx, gy
    integer :: i, l
    state = mod(int(k, c_int64_t) * 7919_c_int64_t + 12345_c_int64_t, 2147483646_c_int64_t) + 1
    do i = 1, PAIRS
      x = uniform(state)
      y = uniform(state)
      t = x * x + y * y
      if (t > 1 .or. t <= 0) cycle
      f = sqrt(-2 * log(t) / t)
      gx = x * f
      gy = y * f
      l = int(max(abs(gx), abs(gy))) + 1
      if (l <= NQ) a%q(l) = a%q(l) + 1
      a%sx = a%sx + gx
      a%sy = a%sy + gy
    end do
  end subroutine ep_batch

  !> The parallel region: every worker adds its batches into its own acc.
  recursive integer(c_int) function ep_region(ctx) bind(C)
    type(c_ptr), value :: ctx
    type(ep_context), pointer :: c
    type(acc), pointer :: a
    integer(c_size_t) :: lo, hi, k
    call c_f_pointer(ctx, c)
    call c_f_pointer(sm_worker_local(), a)                ! this worker's reduction variables
    do while (sm_for_next(c%pool, 0_c_size_t, int(NBATCH, c_size_t), SM_SCHEDULE_STATIC, &
                          0_c_size_t, 0_c_int, lo, hi) == 1)
      do k = lo, hi - 1
        call ep_batch(k, a)
      end do
    end do
    ep_region = 0
  end function ep_region

  !> worker_reduce: on the caller, once per worker, in worker order.
  recursive integer(c_int) function add_worker(ctx, worker, wresult) bind(C)
    type(c_ptr), value :: ctx, wresult
    integer(c_int), value :: worker
    type(ep_context), pointer :: c
    type(acc), pointer :: a
    call c_f_pointer(ctx, c)
    call c_f_pointer(wresult, a)
    c%total%sx = c%total%sx + a%sx
    c%total%sy = c%total%sy + a%sy
    c%total%q = c%total%q + a%q
    add_worker = 0
    if (worker /= c%next_worker) add_worker = 1         ! (never: workers come in order)
    c%next_worker = worker + 1
  end function add_worker

end module ep_kernel


program fortran_ep
  use, intrinsic :: iso_fortran_env, only: error_unit
  use sharedmem
  use ep_kernel
  use backend_arg
  implicit none

  type(ep_context), target :: ctx
  type(acc) :: serial
  type(sm_map_opts) :: opts
  integer(c_int) :: backend, st
  integer(c_size_t) :: k
  logical :: ok

  backend = backend_from_args("fortran_ep")

  do k = 0, NBATCH - 1
    call ep_batch(k, serial)
  end do

  ctx%pool = sm_pool_new(4_c_int, backend)
  if (.not. c_associated(ctx%pool)) then
    write (error_unit, '(a)') "sm_pool_new: " // sm_last_error_string()
    error stop 1
  end if
  opts%size = c_sizeof(opts)
  opts%chunk = 0
  opts%worker_init = c_null_funptr
  opts%worker_fini = c_null_funptr
  opts%worker_reduce = c_funloc(add_worker)
  opts%wresult_size = c_sizeof(serial)                  ! one acc per worker, zeroed
  opts%progress = c_null_funptr
  opts%ctx_size = c_sizeof(ctx)
  st = sm_parallel_ex(ctx%pool, c_funloc(ep_region), c_loc(ctx), opts)
  if (st /= SM_OK) then
    write (error_unit, '(a)') "sm_parallel_ex: " // sm_last_error_string()
    error stop 1
  end if
  call sm_pool_free(ctx%pool)

  ok = all(ctx%total%q == serial%q) &
       .and. abs(ctx%total%sx - serial%sx) <= 1d-8 * (1 + abs(serial%sx)) &
       .and. abs(ctx%total%sy - serial%sy) <= 1d-8 * (1 + abs(serial%sy)) &
       .and. sum(serial%q) > 0
  print '(a, f0.10, a, f0.10, a, 3(1x, i0))', "sx = ", ctx%total%sx, "  sy = ", ctx%total%sy, &
    "  q(1:3) =", ctx%total%q(1:3)
  print '(a, f0.10, a, f0.10)', "serial: sx = ", serial%sx, "  sy = ", serial%sy
  if (.not. ok) then
    write (error_unit, '(a)') "the per-worker reduction differs from the serial loop"
    error stop 1
  end if
  print '(a)', "EP OK"
end program fortran_ep
