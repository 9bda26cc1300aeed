! sharedmem.f90 -- Fortran 2008 bindings for sharedmem (include/sharedmem.h).
!
! Every C function is declared here under its C name, with iso_c_binding types, so the header's
! documentation applies as is; read include/sharedmem.h for the full semantics. Compile with any
! Fortran 2008 compiler and link with libsharedmem:
!
!   use sharedmem
!   type(c_ptr) :: pool
!   pool = sm_pool_new(0, SM_BACKEND_PROCESS)
!   status = sm_map(pool, njobs, c_funloc(work), c_funloc(reduce), c_sizeof(r), c_loc(ctx))
!
! Mapping of the C types:
!   sm_pool *, void *, const void *   type(c_ptr)        (an opaque pool; c_loc(x) for data)
!   sm_work_fn, sm_reduce_fn,         type(c_funptr)     (c_funloc(f) of a bind(C) function with
!     sm_region_fn                                        the interface sm_work / sm_reduce /
!                                                         sm_region; c_null_funptr for "no reduce")
!   sm_status, sm_backend, sm_dtype,  integer(c_int)     (the SM_* parameters below)
!     sm_schedule, int flags
!   size_t                            integer(c_size_t)  (signed in Fortran; SM_SIZE_MAX = -1)
!   int64_t *out (sm_argsort)         integer(c_int64_t) array
!   const char * (arguments)          character(kind=c_char) ending in c_null_char (sm_c_string)
!   const char * (returned)           type(c_ptr); use sm_last_error_string / sm_status_string
!
! Job indices are 0-based, as in C: job runs over 0 .. njobs-1, so job + 1 is the usual Fortran
! array index. With the process backend (the default) jobs run in forked workers: only writes to
! sm_empty memory (mapped to a Fortran array with c_f_pointer) and the per-job `result` reach the
! caller; module variables a job assigns stay in the worker. Also, one ctx goes to both work and
! reduce: put what each needs in one derived type.
! Parallel regions (sm_parallel) follow the same rules: region(ctx) runs in every worker, in forked
! processes by default, so the arrays a region's work-shared loops (sm_for_next) write must be
! sm_empty memory. sm_for_next hands out pieces [lo, hi) of whatever [start, end) it is given, so
! a loop over the Fortran indices 1..n passes start = 1, end = n + 1 and runs `do i = lo, hi - 1`.
! Fortran I/O and the process backend: sharedmem flushes C stdio around the fork, not the Fortran
! runtime's buffers, and workers leave with _exit, which drops what is still buffered. So a job
! that prints or writes must flush(unit) (e.g. flush(output_unit)) before returning, else its
! output is lost whenever the unit is a file (stdout redirected to a file included; gfortran
! writes a terminal or pipe out at once); and the caller should flush its open units before
! sm_map, else a worker that flushes also writes the caller's pending output again.
! Write callbacks as module procedures with bind(C): gfortran makes an internal procedure that
! uses its host's variables a stack trampoline, which needs an executable stack. For
! SM_BACKEND_THREAD, declare the callbacks and every procedure they call `recursive` (or compile
! with -frecursive or -fopenmp): several threads run them at once, and a Fortran 2008 procedure
! that is not recursive may keep its local arrays in static memory (gfortran does for large ones,
! and -fcheck=recursion aborts such a program).
module sharedmem
  use, intrinsic :: iso_c_binding
  implicit none
  private

  ! iso_c_binding is re-exported so that `use sharedmem` is all a program needs.
  public :: c_int, c_size_t, c_int64_t, c_int32_t, c_int16_t, c_int8_t, c_double, c_float
  public :: c_char, c_null_char, c_ptr, c_funptr, c_null_ptr, c_null_funptr
  public :: c_loc, c_funloc, c_f_pointer, c_associated, c_sizeof

  ! --- Constants -------------------------------------------------------------------------------

  !> A work() return value that stops the map early (not an error): sm_map returns SM_STOPPED.
  integer(c_int), parameter, public :: SM_STOP = 1398034256_c_int

  !> sm_backend: forked worker processes, one set per map (the default).
  integer(c_int), parameter, public :: SM_BACKEND_PROCESS = 0_c_int
  !> sm_backend: a persistent set of threads; job code must be thread-safe.
  integer(c_int), parameter, public :: SM_BACKEND_THREAD = 1_c_int
  !> sm_backend: every job runs in the caller, in order (for debugging).
  integer(c_int), parameter, public :: SM_BACKEND_SERIAL = 2_c_int
  integer(c_int), parameter, public :: SM_BACKEND_PERSISTENT = 3_c_int

  !> sm_dtype: real(c_double) keys for sm_argsort.
  integer(c_int), parameter, public :: SM_DTYPE_F64 = 0_c_int
  !> sm_dtype: real(c_float) keys.
  integer(c_int), parameter, public :: SM_DTYPE_F32 = 1_c_int
  !> sm_dtype: integer(c_int64_t) keys.
  integer(c_int), parameter, public :: SM_DTYPE_I64 = 2_c_int
  !> sm_dtype: integer(c_int32_t) keys.
  integer(c_int), parameter, public :: SM_DTYPE_I32 = 3_c_int
  !> sm_dtype: integer(c_int16_t) keys.
  integer(c_int), parameter, public :: SM_DTYPE_I16 = 4_c_int
  !> sm_dtype: integer(c_int8_t) keys.
  integer(c_int), parameter, public :: SM_DTYPE_I8 = 5_c_int
  !> sm_dtype: uint64_t keys (no Fortran unsigned type: the bits of an integer(c_int64_t)).
  integer(c_int), parameter, public :: SM_DTYPE_U64 = 6_c_int
  !> sm_dtype: uint32_t keys (the bits of an integer(c_int32_t)).
  integer(c_int), parameter, public :: SM_DTYPE_U32 = 7_c_int
  !> sm_dtype: uint16_t keys (the bits of an integer(c_int16_t)).
  integer(c_int), parameter, public :: SM_DTYPE_U16 = 8_c_int
  !> sm_dtype: uint8_t keys (the bits of an integer(c_int8_t)).
  integer(c_int), parameter, public :: SM_DTYPE_U8 = 9_c_int

  !> sm_schedule (sm_for_next): chunks dealt round-robin in advance; chunk 0 gives each worker one
  !> contiguous block (`schedule(static)`).
  integer(c_int), parameter, public :: SM_SCHEDULE_STATIC = 0_c_int
  !> sm_schedule: chunks claimed one at a time as workers get free (`schedule(dynamic, chunk)`).
  integer(c_int), parameter, public :: SM_SCHEDULE_DYNAMIC = 1_c_int
  !> sm_schedule: chunks shrinking from an even share of what is left to chunk (`schedule(guided)`).
  integer(c_int), parameter, public :: SM_SCHEDULE_GUIDED = 2_c_int

  !> sm_for_next flag: the loop has an ordered section (sm_ordered_enter/leave in each iteration).
  integer(c_int), parameter, public :: SM_FOR_ORDERED = 1_c_int
  !> sm_for_next flag: no barrier at the end of the loop (`nowait`). Flags add up: ior(a, b).
  integer(c_int), parameter, public :: SM_FOR_NOWAIT = 2_c_int

  !> sm_status: success.
  integer(c_int), parameter, public :: SM_OK = 0_c_int
  !> sm_status: the map stopped early (a job returned SM_STOP or reduce returned nonzero).
  integer(c_int), parameter, public :: SM_STOPPED = 1_c_int
  !> sm_status: an invalid argument (null pool or callback, value out of range, size overflow).
  integer(c_int), parameter, public :: SM_ERR_INVALID = 2_c_int
  !> sm_status: memory (or a process) could not be allocated.
  integer(c_int), parameter, public :: SM_ERR_NOMEM = 3_c_int
  !> sm_status: a job returned an error value (the message names the job and the value).
  integer(c_int), parameter, public :: SM_ERR_JOB = 4_c_int
  !> sm_status: a worker process died (the message names the job, pid and cause).
  integer(c_int), parameter, public :: SM_ERR_WORKER_DIED = 5_c_int
  !> sm_status: the map was interrupted by a signal; all workers were reaped.
  integer(c_int), parameter, public :: SM_ERR_INTERRUPTED = 6_c_int
  !> sm_status: a call in the wrong state (critical/ordered misuse, a call outside a map).
  integer(c_int), parameter, public :: SM_ERR_STATE = 7_c_int
  !> sm_status: an input/output error.
  integer(c_int), parameter, public :: SM_ERR_IO = 8_c_int
  !> sm_status: an internal error (a Rust panic) caught at the C boundary.
  integer(c_int), parameter, public :: SM_ERR_PANIC = 9_c_int

  !> The most workers a pool may have (sm_pool_new refuses more: SM_ERR_INVALID).
  integer(c_int), parameter, public :: SM_MAX_WORKERS = 4096_c_int
  !> The most jobs of a map and iterations of an sm_for_next loop (2**62).
  integer(c_size_t), parameter, public :: SM_MAX_JOBS = 4611686018427387904_c_size_t
  !> The largest result_size and wresult_size in bytes (4 GiB): larger is SM_ERR_INVALID.
  integer(c_size_t), parameter, public :: SM_MAX_RESULT_SIZE = 4294967296_c_size_t

  !> SIZE_MAX as a c_size_t (same bits): pass it as sm_fromfile's count for "to the end of file".
  integer(c_size_t), parameter, public :: SM_SIZE_MAX = -1_c_size_t

  !> Every result and per-worker result (and sm_worker_local()) is aligned to this many bytes.
  integer(c_size_t), parameter, public :: SM_RESULT_ALIGN = 16_c_size_t

  ! --- Callbacks -------------------------------------------------------------------------------

  ! Write each callback as a bind(C) module function with exactly these arguments and pass
  ! c_funloc(f). To have the compiler check one, assign it to a procedure pointer of this
  ! interface: `procedure(sm_work), pointer :: p` then `p => my_work`.
  public :: sm_work, sm_reduce, sm_region
  abstract interface
    !> sm_work_fn: a job, for job in 0..njobs-1 (0-based). `result` points to result_size zeroed
    !> bytes (c_null_ptr when result_size is 0); return 0, SM_STOP, or an error value.
    integer(c_int) function sm_work(ctx, job, result) bind(C)
      import :: c_int, c_size_t, c_ptr
      type(c_ptr), value :: ctx
      integer(c_size_t), value :: job
      type(c_ptr), value :: result
    end function sm_work

    !> sm_reduce_fn: runs in the caller, in increasing job order, with each job's `result`;
    !> return 0 to go on, nonzero to stop the map (SM_STOPPED).
    integer(c_int) function sm_reduce(ctx, job, result) bind(C)
      import :: c_int, c_size_t, c_ptr
      type(c_ptr), value :: ctx
      integer(c_size_t), value :: job
      type(c_ptr), value :: result
    end function sm_reduce

    !> sm_region_fn: a parallel region, run once in every worker by sm_parallel; return 0,
    !> SM_STOP, or an error value. (Declare it `recursive` for SM_BACKEND_THREAD.)
    integer(c_int) function sm_region(ctx) bind(C)
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
    end function sm_region
  end interface

  !> Options of sm_map_ex and sm_parallel_ex (C struct sm_map_opts). Set size = c_sizeof(opts)
  !> and every field:
  !> chunk (0: adaptive), worker_init / worker_fini / worker_reduce (c_funloc(...) or
  !> c_null_funptr), wresult_size (bytes of each worker's result) and progress (a subroutine
  !> progress(ctx, done, total) with value arguments, called on the caller, or c_null_funptr).
  !> inner_threads (OpenMP/BLAS threads of each worker's jobs) starts as 0, the default: at most
  !> CPUs / workers; -1 leaves the runtimes alone, n >= 1 gives exactly n.
  !> ctx_size starts as 0 (workers get ctx itself); n > 0 gives jobs, regions, worker_init and
  !> worker_fini a copy of the n bytes at ctx taken when the call starts (c_sizeof(your_ctx)).
  type, bind(C) :: sm_map_opts
    integer(c_size_t) :: size
    integer(c_size_t) :: chunk
    type(c_funptr) :: worker_init
    type(c_funptr) :: worker_fini
    type(c_funptr) :: worker_reduce
    integer(c_size_t) :: wresult_size
    type(c_funptr) :: progress
    integer(c_int) :: inner_threads = 0
    integer(c_size_t) :: ctx_size = 0
  end type sm_map_opts

  ! --- The C API -------------------------------------------------------------------------------

  public :: sm_map_opts, sm_map_ex
  public :: sm_pool_new, sm_pool_free, sm_pool_nworkers, sm_map
  public :: sm_critical_enter, sm_critical_leave, sm_ordered_enter, sm_ordered_leave
  public :: sm_worker_id, sm_argsort, sm_empty, sm_free, sm_fromfile
  public :: sm_parallel, sm_for_next, sm_barrier, sm_single, sm_master, sm_num_workers
  public :: sm_worker_local, sm_parallel_ex
  public :: sm_last_error, sm_last_status, sm_status_str, sm_set_debug

  interface
    !> A pool of nworkers workers (<= 0: OMP_NUM_THREADS or the CPU count); c_null_ptr on failure.
    type(c_ptr) function sm_pool_new(nworkers, backend) bind(C, name="sm_pool_new")
      import :: c_ptr, c_int
      integer(c_int), value :: nworkers
      integer(c_int), value :: backend
    end function sm_pool_new

    !> Frees a pool (c_null_ptr is fine); refused while it runs a map or inside a job.
    subroutine sm_pool_free(pool) bind(C, name="sm_pool_free")
      import :: c_ptr
      type(c_ptr), value :: pool
    end subroutine sm_pool_free

    !> The pool's number of workers, or -1 for a null pool.
    integer(c_int) function sm_pool_nworkers(pool) bind(C, name="sm_pool_nworkers")
      import :: c_ptr, c_int
      type(c_ptr), value :: pool
    end function sm_pool_nworkers

    !> Runs work(ctx, job, result) for job = 0..njobs-1 on the pool, reduce (c_null_funptr: none)
    !> in the caller in job order; returns an sm_status (SM_OK, SM_STOPPED, SM_ERR_*).
    integer(c_int) function sm_map(pool, njobs, work, reduce, result_size, ctx) &
        bind(C, name="sm_map")
      import :: c_ptr, c_funptr, c_size_t, c_int
      type(c_ptr), value :: pool
      integer(c_size_t), value :: njobs
      type(c_funptr), value :: work
      type(c_funptr), value :: reduce
      integer(c_size_t), value :: result_size
      type(c_ptr), value :: ctx
    end function sm_map

    !> sm_map with options (see sm_map_opts): a fixed chunk size and per-worker init, fini and
    !> reduce. worker_init is int(ctx, worker); worker_fini and worker_reduce are
    !> int(ctx, worker, wresult), all bind(C) with value arguments.
    integer(c_int) function sm_map_ex(pool, njobs, work, reduce, result_size, ctx, opts) &
        bind(C, name="sm_map_ex")
      import :: c_ptr, c_funptr, c_size_t, c_int, sm_map_opts
      type(c_ptr), value :: pool
      integer(c_size_t), value :: njobs
      type(c_funptr), value :: work
      type(c_funptr), value :: reduce
      integer(c_size_t), value :: result_size
      type(c_ptr), value :: ctx
      type(sm_map_opts), intent(in) :: opts
    end function sm_map_ex

    !> Enters the critical section (mutual exclusion among the map's workers); inside a job only.
    integer(c_int) function sm_critical_enter(pool) bind(C, name="sm_critical_enter")
      import :: c_ptr, c_int
      type(c_ptr), value :: pool
    end function sm_critical_enter

    !> Leaves the critical section; SM_ERR_STATE if the job is not inside it.
    integer(c_int) function sm_critical_leave(pool) bind(C, name="sm_critical_leave")
      import :: c_ptr, c_int
      type(c_ptr), value :: pool
    end function sm_critical_leave

    !> Waits until every smaller job has left its ordered section (or finished); at most once a job.
    integer(c_int) function sm_ordered_enter(pool) bind(C, name="sm_ordered_enter")
      import :: c_ptr, c_int
      type(c_ptr), value :: pool
    end function sm_ordered_enter

    !> Leaves the ordered section, letting the next job in; SM_ERR_STATE if not inside it.
    integer(c_int) function sm_ordered_leave(pool) bind(C, name="sm_ordered_leave")
      import :: c_ptr, c_int
      type(c_ptr), value :: pool
    end function sm_ordered_leave

    !> The calling worker's index 0..nworkers-1 inside a job (0 when serial); -1 outside a map.
    integer(c_int) function sm_worker_id() bind(C, name="sm_worker_id")
      import :: c_int
    end function sm_worker_id

    !> The calling worker's per-worker result (opts%wresult_size bytes, zeroed at the start):
    !> inside a job of sm_map_ex or the region of sm_parallel_ex, and their worker_init and
    !> worker_fini, when wresult_size > 0. c_f_pointer it to your accumulator (OpenMP's
    !> reduction variables); worker_reduce gets it on the caller. c_null_ptr (with a message)
    !> outside a job or region, or without a per-worker result.
    type(c_ptr) function sm_worker_local() bind(C, name="sm_worker_local")
      import :: c_ptr
    end function sm_worker_local

    !> Runs region(ctx) once in every worker of the pool at the same time (OpenMP `parallel`):
    !> region is c_funloc of an sm_region function. Inside, the workers share loops with
    !> sm_for_next and synchronise with sm_barrier, sm_single, sm_master and sm_critical_*.
    !> Returns an sm_status: SM_OK when every worker returned 0, else the first failure.
    integer(c_int) function sm_parallel(pool, region, ctx) bind(C, name="sm_parallel")
      import :: c_ptr, c_funptr, c_int
      type(c_ptr), value :: pool
      type(c_funptr), value :: region
      type(c_ptr), value :: ctx
    end function sm_parallel

    !> sm_parallel with sm_map_opts: worker_init before the region and worker_fini after it in
    !> every worker, with its per-worker result (sm_worker_local), and worker_reduce on the caller
    !> once per worker, in worker order. opts%chunk must be 0 and opts%progress c_null_funptr.
    integer(c_int) function sm_parallel_ex(pool, region, ctx, opts) &
        bind(C, name="sm_parallel_ex")
      import :: c_ptr, c_funptr, c_int, sm_map_opts
      type(c_ptr), value :: pool
      type(c_funptr), value :: region
      type(c_ptr), value :: ctx
      type(sm_map_opts), intent(in) :: opts
    end function sm_parallel_ex

    !> The work-shared loop over [start, end) in a region (OpenMP `do`): every worker calls
    !> `do while (sm_for_next(pool, start, end, schedule, chunk, flags, lo, hi) == 1)` with the
    !> same arguments, and runs iterations lo .. hi-1 of each chunk. Returns 1 with a chunk, 0 when
    !> the worker has no more (after the team's barrier unless flags has SM_FOR_NOWAIT), when the
    !> region is being stopped, or on misuse.
    integer(c_int) function sm_for_next(pool, start, end, schedule, chunk, flags, lo, hi) &
        bind(C, name="sm_for_next")
      import :: c_ptr, c_size_t, c_int
      type(c_ptr), value :: pool
      integer(c_size_t), value :: start
      integer(c_size_t), value :: end
      integer(c_int), value :: schedule
      integer(c_size_t), value :: chunk
      integer(c_int), value :: flags
      integer(c_size_t), intent(out) :: lo
      integer(c_size_t), intent(out) :: hi
    end function sm_for_next

    !> Waits for every worker of the region (OpenMP `barrier`). SM_OK; SM_STOPPED when the region
    !> is being stopped (return from the region); SM_ERR_STATE on misuse.
    integer(c_int) function sm_barrier(pool) bind(C, name="sm_barrier")
      import :: c_ptr, c_int
      type(c_ptr), value :: pool
    end function sm_barrier

    !> 1 in exactly one worker (the first to arrive) each time the team reaches it, else 0
    !> (OpenMP `single`, without its barrier: call sm_barrier after it); -1 outside a region.
    integer(c_int) function sm_single(pool) bind(C, name="sm_single")
      import :: c_ptr, c_int
      type(c_ptr), value :: pool
    end function sm_single

    !> 1 in worker 0 of a region or map (OpenMP `master`), else 0; 1 outside any map.
    integer(c_int) function sm_master() bind(C, name="sm_master")
      import :: c_int
    end function sm_master

    !> The number of workers in the current region or map (its team); 1 outside any map.
    integer(c_int) function sm_num_workers() bind(C, name="sm_num_workers")
      import :: c_int
    end function sm_num_workers

    !> Writes to out(1:n) the 0-based permutation that stably sorts keys (c_loc of an array of the
    !> type named by dtype), exactly as numpy.argsort(kind='stable'); keys(out(i)+1) is ascending.
    integer(c_int) function sm_argsort(pool, keys, n, dtype, out) bind(C, name="sm_argsort")
      import :: c_ptr, c_size_t, c_int, c_int64_t
      type(c_ptr), value :: pool
      type(c_ptr), value :: keys
      integer(c_size_t), value :: n
      integer(c_int), value :: dtype
      integer(c_int64_t), intent(out) :: out(*)
    end function sm_argsort

    !> count*itemsize zeroed bytes shared with the workers of later maps (c_f_pointer it to an
    !> array); c_null_ptr on failure or inside a job. Release with sm_free.
    type(c_ptr) function sm_empty(count, itemsize) bind(C, name="sm_empty")
      import :: c_ptr, c_size_t
      integer(c_size_t), value :: count
      integer(c_size_t), value :: itemsize
    end function sm_empty

    !> Releases sm_empty (or sm_fromfile) memory; c_null_ptr is fine, anything else is refused.
    subroutine sm_free(ptr) bind(C, name="sm_free")
      import :: c_ptr
      type(c_ptr), value :: ptr
    end subroutine sm_free

    !> Reads count items of itemsize bytes from byte offset of the file `path` (null-terminated:
    !> sm_c_string(name)) into new sm_empty memory; count = SM_SIZE_MAX reads to the end of the file
    !> and count is set to the items read. c_null_ptr on failure. Release with sm_free.
    type(c_ptr) function sm_fromfile(pool, path, offset, itemsize, count) &
        bind(C, name="sm_fromfile")
      import :: c_ptr, c_char, c_size_t
      type(c_ptr), value :: pool
      character(kind=c_char), intent(in) :: path(*)
      integer(c_size_t), value :: offset
      integer(c_size_t), value :: itemsize
      integer(c_size_t), intent(inout) :: count
    end function sm_fromfile

    !> The C string of the calling thread's last failure (see sm_last_error_string).
    type(c_ptr) function sm_last_error() bind(C, name="sm_last_error")
      import :: c_ptr
    end function sm_last_error

    !> The status of the calling thread's last failure (SM_OK if none yet): why sm_pool_new,
    !> sm_empty or sm_fromfile returned c_null_ptr, or what a map or region returned.
    integer(c_int) function sm_last_status() bind(C, name="sm_last_status")
      import :: c_int
    end function sm_last_status

    !> The static C string describing a status (see sm_status_string).
    type(c_ptr) function sm_status_str(status) bind(C, name="sm_status_str")
      import :: c_ptr, c_int
      integer(c_int), value :: status
    end function sm_status_str

    !> Debug mode: when on /= 0, every later map runs serially in the caller, in job order.
    subroutine sm_set_debug(on) bind(C, name="sm_set_debug")
      import :: c_int
      integer(c_int), value :: on
    end subroutine sm_set_debug
  end interface

  ! C's strlen, to copy C strings into Fortran ones.
  interface
    function c_strlen(s) bind(C, name="strlen")
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: c_strlen
    end function c_strlen
  end interface

  ! --- Fortran conveniences --------------------------------------------------------------------

  public :: sm_last_error_string, sm_status_string, sm_c_string

contains

  ! (These are functions returning deferred-length strings for convenience. gfortran, at least
  ! up to 12, keeps the length of such a result in a static variable at the call site, so do not
  ! call them from thread-backend jobs running at the same time; the caller is the usual place.)

  !> The message of the calling thread's last failure, as a Fortran string ("" if none yet).
  recursive function sm_last_error_string() result(msg)
    character(len=:), allocatable :: msg
    call copy_c_string(sm_last_error(), msg)
  end function sm_last_error_string

  !> A description of a status, e.g. "SM_ERR_JOB: a job returned an error", as a Fortran string.
  recursive function sm_status_string(status) result(msg)
    integer(c_int), intent(in) :: status
    character(len=:), allocatable :: msg
    call copy_c_string(sm_status_str(status), msg)
  end function sm_status_string

  !> `str` without trailing blanks, plus a C null terminator: a path for sm_fromfile.
  recursive function sm_c_string(str) result(cstr)
    character(len=*), intent(in) :: str
    character(kind=c_char, len=:), allocatable :: cstr
    cstr = trim(str) // c_null_char
  end function sm_c_string

  ! Copies the null-terminated C string at p (c_null_ptr: "") into str.
  recursive subroutine copy_c_string(p, str)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable, intent(out) :: str
    character(kind=c_char), pointer :: chars(:)
    integer(c_size_t) :: n, i
    if (.not. c_associated(p)) then
      allocate (character(len=0) :: str)
      return
    end if
    n = c_strlen(p)
    allocate (character(len=n) :: str)
    if (n == 0) return
    call c_f_pointer(p, chars, [n])
    do i = 1, n
      str(i:i) = chars(i)
    end do
  end subroutine copy_c_string

end module sharedmem
