! main.f90 -- checks the installed sharedmem Fortran module (sharedmem::fortran) end to end.
!
! Usage: fortran_consumer [process|thread|serial]     (default: process)
!
! One map of NJOBS jobs on NWORKERS workers, where every job
!   - records sm_worker_id() in a per-job slot of sm_empty memory,
!   - adds PER_JOB counts to a histogram in sm_empty memory, each one a plain (non-atomic)
!     read-modify-write under sm_critical_enter/leave, so a count is lost if the section is not
!     exclusive across the forked workers,
!   - appends its job index to a shared sequence inside sm_ordered_enter/leave,
!   - returns job**2 + 1 through `result`, which a reduce callback sums in the caller, checking
!     that it sees every job once, in increasing order.
! Then a parallel region (sm_parallel: a dynamic sm_for_next loop, sm_single, sm_master,
! sm_barrier, sm_num_workers), a sum reduction through per-worker results (sm_parallel_ex,
! sm_worker_local), early stop (SM_STOP), a failing job (SM_ERR_JOB and its message),
! misuse outside a map,
! sm_argsort on real(c_double) keys (0-based permutation), and sm_fromfile. Then, whatever the
! backend argument, a pool of SM_BACKEND_PERSISTENT: a ctx set after sm_pool_new reaches its
! workers when passed by copy (sm_map_opts%ctx_size), and is refused (SM_ERR_INVALID) without.
! Every value is checked exactly; prints "FORTRAN OK" at the end, and stops with `error stop 1`
! on any failure.
module sm_test_jobs
  use sharedmem
  implicit none
  private
  public :: NJOBS, NBINS, PER_JOB, NWORKERS, job_bin
  public :: map_context, hist, worker_of, seq
  public :: fill_work, sum_reduce, stop_work, fail_work
  public :: region_hits, region_counts, region_work, region_sum, add_partial
  public :: copy_context, offset_work, offset_reduce

  integer, parameter :: NJOBS = 300, NBINS = 13, PER_JOB = 40, NWORKERS = 4

  ! The one ctx of a map, passed as c_loc(...): sm_map hands the same pointer to work (in the
  ! workers, where it is a copy-on-write copy for the process backend) and to reduce (in the
  ! caller, where updates stick).
  type, bind(C) :: map_context
    type(c_ptr) :: pool              ! for work: sm_critical_* and sm_ordered_* need it
    integer(c_int) :: nworkers       ! for work: the expected range of sm_worker_id()
    integer(c_int64_t) :: total      ! for reduce: sum of the results
    integer(c_int64_t) :: next_job   ! for reduce: the job it expects next (0-based)
    integer(c_int64_t) :: errors     ! for reduce: out-of-order jobs or wrong results
  end type map_context

  ! Shared with the workers: Fortran views of sm_empty memory, set by the caller before the map.
  ! (The pointers themselves are copied into the forked workers; their targets are shared.)
  integer(c_int64_t), pointer :: hist(:) => null()      ! NBINS bins, then the total count
  integer(c_int), pointer :: worker_of(:) => null()     ! per job: sm_worker_id() + 1
  integer(c_int64_t), pointer :: seq(:) => null()       ! seq(1): count; seq(2:): jobs in order
  integer(c_int), pointer :: region_hits(:) => null()   ! per loop iteration: how often it ran
  integer(c_int), pointer :: region_counts(:) => null() ! singles, masters, team size, workers

  ! The ctx of the map on a persistent pool: offset is set after sm_pool_new, so its workers can
  ! only have it from the copy that sm_map_opts%ctx_size makes.
  type, bind(C) :: copy_context
    integer(c_int64_t) :: offset     ! for work: added to every result
    integer(c_int64_t) :: next_job   ! for reduce: the job it expects next (0-based)
    integer(c_int64_t) :: errors     ! for reduce: out-of-order jobs or wrong results
  end type copy_context

contains

  ! The callbacks, and what they call, are `recursive` because the thread backend runs them in
  ! several threads at once: Fortran 2008 procedures are otherwise non-recursive (gfortran may
  ! then keep large local arrays in static memory, and -fcheck=recursion stops the program).

  ! The bin (1-based) of sample i of a job: deterministic, so the caller can recompute it.
  pure recursive integer function job_bin(job, i)
    integer(c_size_t), intent(in) :: job
    integer, intent(in) :: i
    job_bin = int(mod(job * 31_c_size_t + int(i, c_size_t) * 7_c_size_t, int(NBINS, c_size_t))) + 1
  end function job_bin

  recursive integer(c_int) function fill_work(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx, result
    integer(c_size_t), value :: job                     ! 0-based, as in C
    type(map_context), pointer :: c
    integer(c_int64_t), pointer :: r
    integer(c_int) :: w, st
    integer :: i, b

    call c_f_pointer(ctx, c)
    w = sm_worker_id()
    if (w < 0 .or. w >= c%nworkers) then
      fill_work = 101_c_int                             ! any nonzero value: SM_ERR_JOB
      return
    end if
    worker_of(job + 1) = w + 1                          ! one slot per job: no lock needed

    do i = 1, PER_JOB
      b = job_bin(job, i)
      st = sm_critical_enter(c%pool)
      if (st /= SM_OK) then
        fill_work = 102_c_int
        return
      end if
      hist(b) = hist(b) + 1                             ! non-atomic: safe only inside critical
      hist(NBINS + 1) = hist(NBINS + 1) + 1
      st = sm_critical_leave(c%pool)
      if (st /= SM_OK) then
        fill_work = 103_c_int
        return
      end if
    end do

    st = sm_ordered_enter(c%pool)                       ! jobs pass here in increasing order
    if (st /= SM_OK) then
      fill_work = 104_c_int
      return
    end if
    seq(1) = seq(1) + 1
    seq(seq(1) + 1) = int(job, c_int64_t)
    st = sm_ordered_leave(c%pool)
    if (st /= SM_OK) then
      fill_work = 105_c_int
      return
    end if

    call c_f_pointer(result, r)                         ! result_size = 8 zeroed bytes
    if (r /= 0) then
      fill_work = 106_c_int
      return
    end if
    r = int(job, c_int64_t)**2 + 1
    fill_work = 0
  end function fill_work

  recursive integer(c_int) function sum_reduce(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx, result
    integer(c_size_t), value :: job
    type(map_context), pointer :: s
    integer(c_int64_t), pointer :: r

    call c_f_pointer(ctx, s)
    call c_f_pointer(result, r)
    if (int(job, c_int64_t) /= s%next_job) s%errors = s%errors + 1
    if (r /= int(job, c_int64_t)**2 + 1) s%errors = s%errors + 1
    s%total = s%total + r
    s%next_job = int(job, c_int64_t) + 1
    sum_reduce = 0
  end function sum_reduce

  ! Job 7 stops the map: reduce then runs for exactly jobs 0..7.
  recursive integer(c_int) function stop_work(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx, result
    integer(c_size_t), value :: job
    integer(c_int64_t), pointer :: r

    call c_f_pointer(result, r)
    r = int(job, c_int64_t)**2 + 1
    stop_work = 0
    if (job == 7 .and. c_associated(ctx)) stop_work = SM_STOP
  end function stop_work

  ! Job 3 fails with 42: the map returns SM_ERR_JOB, reduce ran for exactly jobs 0..2.
  recursive integer(c_int) function fail_work(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx, result
    integer(c_size_t), value :: job
    integer(c_int64_t), pointer :: r

    call c_f_pointer(result, r)
    r = int(job, c_int64_t)**2 + 1
    fail_work = 0
    if (job == 3 .and. c_associated(ctx)) fail_work = 42_c_int
  end function fail_work

  ! A parallel region (ctx is the pool): every worker runs it once. Each iteration of the
  ! work-shared loop must run exactly once, each single block and master block once.
  recursive integer(c_int) function region_work(ctx) bind(C)
    type(c_ptr), value :: ctx
    integer(c_size_t) :: lo, hi, i

    region_work = 0
    do while (sm_for_next(ctx, 1_c_size_t, int(NJOBS + 1, c_size_t), SM_SCHEDULE_DYNAMIC, &
                          5_c_size_t, 0_c_int, lo, hi) == 1)
      do i = lo, hi - 1
        region_hits(i) = region_hits(i) + 1
      end do
    end do
    if (sm_single(ctx) == 1) region_counts(1) = region_counts(1) + 1
    if (sm_master() == 1) region_counts(2) = region_counts(2) + 1
    if (sm_barrier(ctx) /= SM_OK) then
      region_work = 201_c_int
      return
    end if
    if (sm_single(ctx) == 1) region_counts(3) = sm_num_workers()
    if (sm_critical_enter(ctx) /= SM_OK) then
      region_work = 202_c_int
      return
    end if
    region_counts(4) = region_counts(4) + 1
    if (sm_critical_leave(ctx) /= SM_OK) region_work = 203_c_int
  end function region_work

  ! `!$omp parallel do reduction(+:total)` with a per-worker result (ctx is a map_context): the
  ! worker's partial sum is sm_worker_local(), add_partial adds each one into ctx%total.
  recursive integer(c_int) function region_sum(ctx) bind(C)
    type(c_ptr), value :: ctx
    type(map_context), pointer :: c
    integer(c_int64_t), pointer :: partial
    integer(c_size_t) :: lo, hi, i

    call c_f_pointer(ctx, c)
    region_sum = 301_c_int
    if (.not. c_associated(sm_worker_local())) return
    call c_f_pointer(sm_worker_local(), partial)
    do while (sm_for_next(c%pool, 1_c_size_t, int(NJOBS + 1, c_size_t), SM_SCHEDULE_STATIC, &
                          0_c_size_t, 0_c_int, lo, hi) == 1)
      do i = lo, hi - 1
        partial = partial + int(i, c_int64_t)
      end do
    end do
    region_sum = 0
  end function region_sum

  ! Job j returns offset + j, with the offset of the worker's view of ctx.
  recursive integer(c_int) function offset_work(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx, result
    integer(c_size_t), value :: job
    type(copy_context), pointer :: c
    integer(c_int64_t), pointer :: r

    call c_f_pointer(ctx, c)
    call c_f_pointer(result, r)
    r = c%offset + int(job, c_int64_t)
    offset_work = 0
  end function offset_work

  ! On the caller, with the caller's ctx: every result must carry the caller's offset.
  recursive integer(c_int) function offset_reduce(ctx, job, result) bind(C)
    type(c_ptr), value :: ctx, result
    integer(c_size_t), value :: job
    type(copy_context), pointer :: c
    integer(c_int64_t), pointer :: r

    call c_f_pointer(ctx, c)
    call c_f_pointer(result, r)
    if (int(job, c_int64_t) /= c%next_job) c%errors = c%errors + 1
    if (r /= c%offset + int(job, c_int64_t)) c%errors = c%errors + 1
    c%next_job = int(job, c_int64_t) + 1
    offset_reduce = 0
  end function offset_reduce

  recursive integer(c_int) function add_partial(ctx, worker, wresult) bind(C)
    type(c_ptr), value :: ctx, wresult
    integer(c_int), value :: worker
    type(map_context), pointer :: c
    integer(c_int64_t), pointer :: partial

    call c_f_pointer(ctx, c)
    call c_f_pointer(wresult, partial)
    c%total = c%total + partial
    if (worker /= c%next_job) c%errors = c%errors + 1   ! workers come in order
    c%next_job = c%next_job + 1
    add_partial = 0
  end function add_partial

end module sm_test_jobs


program fortran_consumer
  use, intrinsic :: iso_fortran_env, only: error_unit, output_unit
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan, ieee_negative_inf
  use sharedmem
  use sm_test_jobs
  implicit none

  type(c_ptr) :: pool, hist_mem, worker_mem, seq_mem, file_mem, region_mem, persistent_pool
  type(map_context), target :: ctx
  type(copy_context), target :: copied                  ! outside sm_empty memory
  type(sm_map_opts) :: copy_opts
  integer(c_int) :: backend, st
  integer(c_int64_t) :: expected_hist(NBINS), expected_total
  integer(c_size_t) :: job, count
  integer :: i, j, u
  character(len=16) :: arg
  character(len=4096) :: argv0
  character(len=:), allocatable :: data_file
  integer(c_int64_t) :: header(64)
  integer(c_int) :: nheader
  type(sm_map_opts) :: opts_probe  ! its size is compared with the header, then sm_parallel_ex uses it
  ! Each callback assigned to a pointer with the C callback's interface: the compiler checks them.
  procedure(sm_work), pointer :: work_check
  procedure(sm_reduce), pointer :: reduce_check

  interface
    ! header_values.c: the constants of sharedmem.h, as the C compiler sees them.
    integer(c_int) function sm_test_header_values(v, n) bind(C, name="sm_test_header_values")
      import :: c_int, c_int64_t
      integer(c_int64_t), intent(out) :: v(*)
      integer(c_int), value :: n
    end function sm_test_header_values
  end interface
  character(len=:), allocatable :: msg
  real(c_double), target :: keys(8)
  integer(c_int64_t) :: order(8)
  integer(c_int64_t), parameter :: expected_order(8) = [7, 1, 4, 3, 5, 0, 6, 2]
  real(c_double), pointer :: from_file(:)

  ! --- Backend from the command line ---------------------------------------------------------
  backend = SM_BACKEND_PROCESS
  if (command_argument_count() >= 1) then
    call get_command_argument(1, arg)
    select case (trim(arg))
    case ("process")
      backend = SM_BACKEND_PROCESS
    case ("thread")
      backend = SM_BACKEND_THREAD
    case ("serial")
      backend = SM_BACKEND_SERIAL
    case default
      call fail("usage: fortran_consumer [process|thread|serial]")
    end select
  end if
  ! A scratch file for sm_fromfile next to the executable: distinct for concurrent runs.
  call get_command_argument(0, argv0)
  data_file = trim(argv0) // "." // trim(adjustl(backend_name(backend))) // ".f8"

  ! --- The module's constants and types match the header, as compiled by the C compiler -------
  nheader = sm_test_header_values(header, size(header, kind=c_int))
  call check(nheader == 40, "header_values.c and main.f90 disagree on the number of values")
  if (any(header(1:nheader) /= [integer(c_int64_t) :: SM_STOP, &
          SM_BACKEND_PROCESS, SM_BACKEND_THREAD, SM_BACKEND_SERIAL, SM_BACKEND_PERSISTENT, &
          SM_DTYPE_F64, SM_DTYPE_F32, SM_DTYPE_I64, SM_DTYPE_I32, SM_DTYPE_I16, &
          SM_DTYPE_I8, SM_DTYPE_U64, SM_DTYPE_U32, SM_DTYPE_U16, SM_DTYPE_U8, &
          SM_OK, SM_STOPPED, SM_ERR_INVALID, SM_ERR_NOMEM, SM_ERR_JOB, &
          SM_ERR_WORKER_DIED, SM_ERR_INTERRUPTED, SM_ERR_STATE, SM_ERR_IO, SM_ERR_PANIC, &
          SM_SCHEDULE_STATIC, SM_SCHEDULE_DYNAMIC, SM_SCHEDULE_GUIDED, SM_FOR_ORDERED, &
          SM_FOR_NOWAIT, &
          c_sizeof(0_c_size_t), c_sizeof(0_c_int), c_sizeof(0_c_int), c_sizeof(0_c_int), &
          c_sizeof(0_c_int), c_sizeof(opts_probe), &
          int(SM_MAX_WORKERS, c_int64_t), int(SM_MAX_JOBS, c_int64_t), &
          int(SM_MAX_RESULT_SIZE, c_int64_t), int(SM_RESULT_ALIGN, c_int64_t)])) then
    write (error_unit, '(a,*(1x,i0))') "sharedmem.h gives", header(1:nheader)
    call fail("a constant or type size of the sharedmem module differs from sharedmem.h")
  end if
  call check(SM_STOP == 1398034256_c_int .and. SM_SIZE_MAX == -1_c_size_t, "SM_STOP, SM_SIZE_MAX")
  work_check => fill_work
  work_check => stop_work
  work_check => fail_work
  work_check => offset_work
  reduce_check => sum_reduce
  reduce_check => offset_reduce
  call check(associated(work_check) .and. associated(reduce_check), "procedure pointers")
  call check(sm_status_string(SM_ERR_JOB) == "SM_ERR_JOB: a job returned an error", &
             "sm_status_string(SM_ERR_JOB) = '" // sm_status_string(SM_ERR_JOB) // "'")

  ! --- Pool and shared memory ----------------------------------------------------------------
  pool = sm_pool_new(int(NWORKERS, c_int), backend)
  if (.not. c_associated(pool)) call fail("sm_pool_new: " // sm_last_error_string())
  if (backend == SM_BACKEND_SERIAL) then                  ! a serial pool has one worker
    call check(sm_pool_nworkers(pool) == 1, "sm_pool_nworkers of a serial pool")
  else
    call check(sm_pool_nworkers(pool) == NWORKERS, "sm_pool_nworkers")
  end if
  call check(.not. c_associated(sm_pool_new(SM_MAX_WORKERS + 1_c_int, backend)), &
             "sm_pool_new(SM_MAX_WORKERS + 1)")
  call check(sm_last_status() == SM_ERR_INVALID, "sm_last_status after sm_pool_new(SM_MAX_WORKERS + 1)")
  call check(sm_pool_nworkers(c_null_ptr) == -1, "sm_pool_nworkers(c_null_ptr)")
  call check(len(sm_last_error_string()) > 0, "sm_last_error_string after a failure is empty")
  call check(sm_worker_id() == -1, "sm_worker_id outside a map")
  call check(sm_critical_enter(pool) == SM_ERR_STATE, "sm_critical_enter outside a job")

  hist_mem = sm_empty(int(NBINS + 1, c_size_t), c_sizeof(0_c_int64_t))
  worker_mem = sm_empty(int(NJOBS, c_size_t), c_sizeof(0_c_int))
  seq_mem = sm_empty(int(NJOBS + 1, c_size_t), c_sizeof(0_c_int64_t))
  if (.not. (c_associated(hist_mem) .and. c_associated(worker_mem) .and. c_associated(seq_mem))) &
    call fail("sm_empty: " // sm_last_error_string())
  call c_f_pointer(hist_mem, hist, [NBINS + 1])
  call c_f_pointer(worker_mem, worker_of, [NJOBS])
  call c_f_pointer(seq_mem, seq, [NJOBS + 1])
  call check(all(hist == 0) .and. all(worker_of == 0) .and. all(seq == 0), "sm_empty is zeroed")

  ! --- The main map --------------------------------------------------------------------------
  ctx = map_context(pool, int(NWORKERS, c_int), 0, 0, 0)
  flush (output_unit)   ! forked workers inherit unflushed Fortran buffers (C stdio is flushed)
  st = sm_map(pool, int(NJOBS, c_size_t), c_funloc(fill_work), c_funloc(sum_reduce), &
              c_sizeof(0_c_int64_t), c_loc(ctx))
  if (st /= SM_OK) call fail("sm_map: " // sm_status_string(st) // ": " // sm_last_error_string())

  expected_hist = 0
  do job = 0, NJOBS - 1
    do i = 1, PER_JOB
      expected_hist(job_bin(job, i)) = expected_hist(job_bin(job, i)) + 1
    end do
  end do
  do j = 1, NBINS
    if (hist(j) /= expected_hist(j)) then
      write (error_unit, '(a,i0,a,i0,a,i0)') "bin ", j, ": ", hist(j), " counts, expected ", &
        expected_hist(j)
      call fail("histogram filled under sm_critical lost or gained counts")
    end if
  end do
  call check(hist(NBINS + 1) == int(NJOBS, c_int64_t) * PER_JOB, "histogram total count")
  call check(all(worker_of >= 1 .and. worker_of <= NWORKERS), "sm_worker_id in a job")
  call check(seq(1) == NJOBS, "every job passed its ordered section once")
  do j = 1, NJOBS
    if (seq(j + 1) /= j - 1) call fail("ordered sections ran out of job order")
  end do
  expected_total = 0
  do j = 0, NJOBS - 1
    expected_total = expected_total + int(j, c_int64_t)**2 + 1
  end do
  call check(ctx%errors == 0, "reduce saw a job out of order or a wrong result")
  call check(ctx%next_job == NJOBS, "reduce ran for every job")
  call check(ctx%total == expected_total, "sum of the results")

  ! --- A parallel region ----------------------------------------------------------------------
  region_mem = sm_empty(int(NJOBS + 4, c_size_t), c_sizeof(0_c_int))
  if (.not. c_associated(region_mem)) call fail("sm_empty: " // sm_last_error_string())
  call c_f_pointer(region_mem, region_hits, [NJOBS])
  call c_f_pointer(region_mem, region_counts, [NJOBS + 4])
  region_counts => region_counts(NJOBS + 1:)
  st = sm_parallel(pool, c_funloc(region_work), pool)
  if (st /= SM_OK) &
    call fail("sm_parallel: " // sm_status_string(st) // ": " // sm_last_error_string())
  call check(all(region_hits == 1), "sm_for_next: every iteration ran once")
  call check(region_counts(1) == 1 .and. region_counts(2) == 1, "sm_single, sm_master")
  j = NWORKERS
  if (backend == SM_BACKEND_SERIAL) j = 1                 ! a serial region is a team of one
  call check(region_counts(3) == j .and. region_counts(4) == j, "sm_num_workers, the team")
  call check(sm_barrier(pool) == SM_ERR_STATE, "sm_barrier outside a region")
  call check(sm_single(pool) == -1, "sm_single outside a region")
  call check(sm_master() == 1, "sm_master outside a region")
  call check(sm_num_workers() == 1, "sm_num_workers outside a region")
  call check(sm_parallel(pool, c_null_funptr, c_null_ptr) == SM_ERR_INVALID, &
             "sm_parallel without a region")
  call sm_free(region_mem)

  ! --- Per-worker results: sm_parallel_ex and sm_worker_local ----------------------------------
  opts_probe%size = c_sizeof(opts_probe)
  opts_probe%chunk = 0
  opts_probe%worker_init = c_null_funptr
  opts_probe%worker_fini = c_null_funptr
  opts_probe%worker_reduce = c_funloc(add_partial)
  opts_probe%wresult_size = c_sizeof(0_c_int64_t)
  opts_probe%progress = c_null_funptr
  ctx = map_context(pool, int(NWORKERS, c_int), 0, 0, 0)
  st = sm_parallel_ex(pool, c_funloc(region_sum), c_loc(ctx), opts_probe)
  if (st /= SM_OK) &
    call fail("sm_parallel_ex: " // sm_status_string(st) // ": " // sm_last_error_string())
  j = NWORKERS
  if (backend == SM_BACKEND_SERIAL) j = 1
  call check(ctx%total == int(NJOBS, c_int64_t) * (NJOBS + 1) / 2 .and. ctx%errors == 0 .and. &
             ctx%next_job == j, "sm_parallel_ex: the per-worker sums add up to the serial sum")
  call check(.not. c_associated(sm_worker_local()), "sm_worker_local outside a region")
  opts_probe%chunk = 3
  call check(sm_parallel_ex(pool, c_funloc(region_sum), c_loc(ctx), opts_probe) == &
             SM_ERR_INVALID, "sm_parallel_ex with a chunk")

  ! --- Early stop and a failing job ----------------------------------------------------------
  ctx = map_context(pool, int(NWORKERS, c_int), 0, 0, 0)
  st = sm_map(pool, 100_c_size_t, c_funloc(stop_work), c_funloc(sum_reduce), &
              c_sizeof(0_c_int64_t), c_loc(ctx))
  call check(st == SM_STOPPED, "SM_STOP: sm_map returned " // sm_status_string(st))
  call check(ctx%next_job == 8 .and. ctx%errors == 0 .and. ctx%total == 148, &
             "SM_STOP: reduce ran for jobs 0..7 only")

  ctx = map_context(pool, int(NWORKERS, c_int), 0, 0, 0)
  st = sm_map(pool, 100_c_size_t, c_funloc(fail_work), c_funloc(sum_reduce), &
              c_sizeof(0_c_int64_t), c_loc(ctx))
  call check(st == SM_ERR_JOB, "failing job: sm_map returned " // sm_status_string(st))
  msg = sm_last_error_string()
  call check(index(msg, "job 3") > 0 .and. index(msg, "42") > 0, &
             "failing job: message does not name job 3 and 42: " // msg)
  call check(ctx%next_job == 3 .and. ctx%errors == 0, "failing job: reduce ran for 0..2")

  call check(sm_map(pool, 10_c_size_t, c_null_funptr, c_null_funptr, 0_c_size_t, c_null_ptr) &
             == SM_ERR_INVALID, "sm_map without work")

  ! --- sm_argsort: keys(order(i) + 1) ascending, stable, -0.0 == 0.0, NaN last ----------------
  keys = [2.5_c_double, -1.0_c_double, ieee_value(1.0_c_double, ieee_quiet_nan), 0.0_c_double, &
          -1.0_c_double, -0.0_c_double, huge(1.0_c_double), &
          ieee_value(1.0_c_double, ieee_negative_inf)]
  order = -99
  st = sm_argsort(pool, c_loc(keys), size(keys, kind=c_size_t), SM_DTYPE_F64, order)
  if (st /= SM_OK) &
    call fail("sm_argsort: " // sm_status_string(st) // ": " // sm_last_error_string())
  if (any(order /= expected_order)) then
    write (error_unit, '(a,8(1x,i0))') "sm_argsort gave", order
    call fail("sm_argsort: wrong permutation")
  end if
  call check(sm_argsort(pool, c_null_ptr, 3_c_size_t, SM_DTYPE_F64, order) == SM_ERR_INVALID, &
             "sm_argsort with null keys")

  ! --- sm_fromfile: 10 doubles written with stream access, read back into sm_empty memory -----
  open (newunit=u, file=data_file, access="stream", form="unformatted", status="replace")
  write (u) [(0.5_c_double * i, i = 0, 9)]
  close (u)
  count = SM_SIZE_MAX                                     ! to the end of the file
  file_mem = sm_fromfile(pool, sm_c_string(data_file), 16_c_size_t, c_sizeof(0.0_c_double), count)
  if (.not. c_associated(file_mem)) call fail("sm_fromfile: " // sm_last_error_string())
  call check(count == 8, "sm_fromfile: item count")
  call c_f_pointer(file_mem, from_file, [count])
  call check(all(int(2 * from_file) == [(i, i = 2, 9)]) .and. all(from_file >= 1.0_c_double), &
             "sm_fromfile: values")      ! 0.5*i are exact; compared as integers (-Wcompare-reals)
  call sm_free(file_mem)
  count = 3
  file_mem = sm_fromfile(pool, sm_c_string("no/such/file.f8"), 0_c_size_t, 8_c_size_t, count)
  msg = sm_last_error_string()   ! (not inside the .and.: gfortran -O may skip an impure call)
  call check(.not. c_associated(file_mem) .and. index(msg, "no/such/file.f8") > 0, &
             "sm_fromfile of a missing file")
  open (newunit=u, file=data_file, status="old")
  close (u, status="delete")

  ! --- A persistent pool: a ctx set after sm_pool_new, by copy, and refused without -----------
  copied = copy_context(7, 0, 0)      ! what the workers see of `copied` if they read it directly
  persistent_pool = sm_pool_new(2_c_int, SM_BACKEND_PERSISTENT)
  if (.not. c_associated(persistent_pool)) &
    call fail("sm_pool_new(SM_BACKEND_PERSISTENT): " // sm_last_error_string())
  copied%offset = 1000000007_c_int64_t
  copy_opts = sm_map_opts(size=c_sizeof(copy_opts), chunk=0, worker_init=c_null_funptr, &
                          worker_fini=c_null_funptr, worker_reduce=c_null_funptr, &
                          wresult_size=0, progress=c_null_funptr, ctx_size=c_sizeof(copied))
  st = sm_map_ex(persistent_pool, int(NJOBS, c_size_t), c_funloc(offset_work), &
                 c_funloc(offset_reduce), c_sizeof(0_c_int64_t), c_loc(copied), copy_opts)
  if (st /= SM_OK) call fail("sm_map_ex with ctx_size on a persistent pool: " // &
                             sm_status_string(st) // ": " // sm_last_error_string())
  call check(copied%errors == 0 .and. copied%next_job == NJOBS, &
             "persistent pool: the jobs did not see the ctx set after sm_pool_new")

  copied%next_job = 0
  copy_opts%ctx_size = 0
  st = sm_map_ex(persistent_pool, int(NJOBS, c_size_t), c_funloc(offset_work), &
                 c_funloc(offset_reduce), c_sizeof(0_c_int64_t), c_loc(copied), copy_opts)
  msg = sm_last_error_string()
  call check(st == SM_ERR_INVALID, "persistent pool, a ctx outside sm_empty memory and no " // &
             "ctx_size: sm_map_ex returned " // sm_status_string(st))
  call check(index(msg, "ctx_size") > 0, "persistent pool, a ctx outside sm_empty memory and " // &
             "no ctx_size: the message does not say what to do: " // msg)
  call check(copied%next_job == 0, "persistent pool: reduce ran for a refused map")
  call sm_pool_free(persistent_pool)

  ! --- Clean up ------------------------------------------------------------------------------
  call sm_free(hist_mem)
  call sm_free(worker_mem)
  call sm_free(seq_mem)
  call sm_pool_free(pool)
  deallocate (msg, data_file)    ! main-program variables are saved: no leak report under ASan
  print "(a)", "FORTRAN OK"

contains

  function backend_name(b) result(name)
    integer(c_int), intent(in) :: b
    character(len=7) :: name
    select case (b)
    case (SM_BACKEND_THREAD)
      name = "thread"
    case (SM_BACKEND_SERIAL)
      name = "serial"
    case default
      name = "process"
    end select
  end function backend_name

  subroutine check(condition, what)
    logical, intent(in) :: condition
    character(len=*), intent(in) :: what
    if (.not. condition) call fail(what)
  end subroutine check

  subroutine fail(what)
    character(len=*), intent(in) :: what
    write (error_unit, '(a)') "FORTRAN FAIL: " // what
    error stop 1
  end subroutine fail

end program fortran_consumer
