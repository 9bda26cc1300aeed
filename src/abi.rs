//! The types and constants of the C header (`include/sharedmem.h`), each defined once: the C
//! boundary (`ffi`) takes and returns them, the engine works with them (its callback types and
//! limits are these), so this module sits below both and imports nothing of the crate. The one C
//! type defined elsewhere is the opaque `sm_pool` (ffi/pool.rs), which holds an engine pool.

use std::ffi::{c_int, c_void};

/// A `work()` return value that asks the map to stop early. It is not an error: jobs before it
/// (and it) are reduced, and `sm_map` returns `SM_STOPPED`. (The value spells "STOP" in ASCII.)
pub const SM_STOP: c_int = 0x5354_4f50;

/// The most workers a pool may have: `sm_pool_new` refuses more with SM_ERR_INVALID.
pub const SM_MAX_WORKERS: c_int = 4096;

/// The most jobs a map may have (2^62), and the most iterations of a work-shared loop
/// (`sm_for_next`): more is SM_ERR_INVALID.
pub const SM_MAX_JOBS: u64 = 4_611_686_018_427_387_904;

/// The largest `result_size` and `wresult_size` in bytes (4 GiB): larger, and sizes whose buffers
/// would overflow size_t, are SM_ERR_INVALID, on every backend. A size within it that cannot be
/// allocated is SM_ERR_NOMEM. (Return bigger data through `sm_empty` memory.)
pub const SM_MAX_RESULT_SIZE: u64 = 4_294_967_296;

/// Every `result` and `wresult` pointer sharedmem hands to a callback (and `sm_worker_local()`)
/// is aligned to at least this many bytes, `alignof(max_align_t)` on x86_64 and aarch64 Linux,
/// whatever `result_size` / `wresult_size` is: cast it to a struct of yours freely.
pub const SM_RESULT_ALIGN: usize = 16;

/// Which kind of workers a pool uses.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sm_backend {
    /// Forked processes, one set per map (the default): job code needs no thread safety, writes go
    /// to the caller only through `sm_empty` memory or results, and a crashing job cannot take the
    /// caller down.
    SM_BACKEND_PROCESS = 0,
    /// A persistent set of threads: no fork, memory is shared, job code must be thread-safe, and a
    /// crashing job crashes the process.
    SM_BACKEND_THREAD = 1,
    /// Every job runs in the caller, in order: for debugging. A serial pool has one worker
    /// (`sm_pool_nworkers` is 1 whatever was asked), and sorts and reads with one thread.
    SM_BACKEND_SERIAL = 2,
    /// Processes forked once, at `sm_pool_new`, that serve every map and region of the pool until
    /// `sm_pool_free`: isolation as with SM_BACKEND_PROCESS without a fork per call. They see the
    /// caller's memory as it was at `sm_pool_new` (as Python's multiprocessing.Pool does), and
    /// every `sm_empty` array whenever it was allocated. So ctx must be NULL, in `sm_empty`
    /// memory, or copied with `sm_map_opts.ctx_size`; callbacks must be in code loaded before
    /// the pool; a pool made later cannot be used in their jobs. Anything else is SM_ERR_INVALID
    /// saying why. A worker that dies is reported as on SM_BACKEND_PROCESS and replaced before
    /// the next call. Signals the caller ignored at `sm_pool_new` stay ignored in the workers;
    /// its handlers do not run there. `sm_pool_new` fails (SM_ERR_NOMEM) when the shared heap
    /// cannot be had (`RLIMIT_AS`); in a forked child of the caller the pool is refused
    /// (SM_ERR_STATE).
    SM_BACKEND_PERSISTENT = 3,
}

/// How `sm_for_next` hands out the iterations of a work-shared loop.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sm_schedule {
    /// Chunks dealt to the workers round-robin in advance; with chunk 0, one contiguous block per
    /// worker (`schedule(static)`). The cheapest, for iterations of equal cost.
    SM_SCHEDULE_STATIC = 0,
    /// Chunks claimed one at a time as workers get free (`schedule(dynamic, chunk)`); chunk 0 is 1.
    SM_SCHEDULE_DYNAMIC = 1,
    /// Like dynamic, with chunks starting at an even share of what is left and shrinking to `chunk`
    /// (`schedule(guided, chunk)`).
    SM_SCHEDULE_GUIDED = 2,
}

/// `sm_for_next` flag: the loop has an ordered section (`sm_ordered_enter`/`sm_ordered_leave`
/// around part of each iteration's body), run in iteration order.
pub const SM_FOR_ORDERED: c_int = 1;
/// `sm_for_next` flag: no barrier at the end of the loop (a worker done with its chunks goes on).
pub const SM_FOR_NOWAIT: c_int = 2;

/// How an `sm_schedule` argument arrives; named `sm_schedule` in the header.
#[allow(non_camel_case_types)]
pub type sm_schedule_arg = c_int;

/// A parallel region: `region(ctx)` runs once in every worker of the pool (`sm_parallel`). Return
/// 0 on success, `SM_STOP` to stop the region, any other value to fail it with `SM_ERR_JOB`.
#[allow(non_camel_case_types)]
pub type sm_region_fn = Option<unsafe extern "C" fn(ctx: *mut c_void) -> c_int>;

/// Element type of the keys given to `sm_argsort`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sm_dtype {
    /// IEEE double (`double`, `real(c_double)`).
    SM_DTYPE_F64 = 0,
    /// IEEE single (`float`, `real(c_float)`).
    SM_DTYPE_F32 = 1,
    /// `int64_t`.
    SM_DTYPE_I64 = 2,
    /// `int32_t`.
    SM_DTYPE_I32 = 3,
    /// `int16_t`.
    SM_DTYPE_I16 = 4,
    /// `int8_t`.
    SM_DTYPE_I8 = 5,
    /// `uint64_t`.
    SM_DTYPE_U64 = 6,
    /// `uint32_t`.
    SM_DTYPE_U32 = 7,
    /// `uint16_t`.
    SM_DTYPE_U16 = 8,
    /// `uint8_t`.
    SM_DTYPE_U8 = 9,
}

/// How an `sm_dtype` argument arrives; named `sm_dtype` in the header.
#[allow(non_camel_case_types)]
pub type sm_dtype_arg = c_int;

/// How an `sm_backend` argument arrives: an int, checked before it is trusted (a C caller can pass
/// any value). Named `sm_backend` in the header.
#[allow(non_camel_case_types)]
pub type sm_backend_arg = c_int;
/// How an `sm_status` argument arrives; named `sm_status` in the header.
#[allow(non_camel_case_types)]
pub type sm_status_arg = c_int;

/// A job: `work(ctx, job, result)` for `job` in [0, njobs). `result` points to `result_size` zeroed
/// bytes the job may fill, aligned to `SM_RESULT_ALIGN` (NULL when result_size is 0). Return 0 on
/// success, `SM_STOP` to stop the map early, any other value to fail the map with `SM_ERR_JOB`.
#[allow(non_camel_case_types)]
pub type sm_work_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int>;

/// `worker_init(ctx, worker)`: runs in each worker before its first job (every worker of the map
/// runs it once; in `sm_parallel_ex`, before the region). It reaches the worker's per-worker
/// result, to set it up, with `sm_worker_local()`. Return 0 to go on; nonzero stops the map with
/// `SM_ERR_JOB`.
#[allow(non_camel_case_types)]
pub type sm_worker_init_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, worker: c_int) -> c_int>;

/// `worker_fini(ctx, worker, wresult)`: runs in each worker after its last job and fills that
/// worker's result (`wresult_size` bytes, zeroed at the start of the map, aligned to
/// `SM_RESULT_ALIGN`; the same bytes jobs reach with `sm_worker_local()`). Also the type of
/// `worker_reduce(ctx, worker, wresult)`, which runs on the caller once per worker, in worker
/// order, after the jobs. Return 0 to go on; nonzero from worker_fini fails the map
/// (`SM_ERR_JOB`), from worker_reduce stops the combining (`SM_STOPPED`).
#[allow(non_camel_case_types)]
pub type sm_worker_fini_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, worker: c_int, wresult: *mut c_void) -> c_int>;

/// Options of `sm_map_ex` and `sm_parallel_ex`. Zero-initialise it, set
/// `size = sizeof(sm_map_opts)`, then the fields you need: `size` lets later versions add fields
/// without breaking programs built against this one (fields beyond `size` are taken as zero).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct sm_map_opts {
    /// `sizeof(sm_map_opts)` as the caller's header has it.
    pub size: usize,
    /// Jobs a worker claims at a time; 0 lets sharedmem adapt it to the jobs' duration.
    pub chunk: usize,
    /// Before each worker's first job (may be NULL).
    pub worker_init: sm_worker_init_fn,
    /// After each worker's last job, filling its `wresult` (may be NULL).
    pub worker_fini: sm_worker_fini_fn,
    /// On the caller, once per worker in worker order, with that worker's `wresult` (may be NULL).
    pub worker_reduce: sm_worker_fini_fn,
    /// Bytes of each worker's result (0: `wresult` is NULL), aligned to `SM_RESULT_ALIGN`: jobs,
    /// regions and hooks reach theirs with `sm_worker_local()`.
    pub wresult_size: usize,
    /// On the caller, about every 0.1 s while the map runs and once at its end (may be NULL).
    pub progress: sm_progress_fn,
    /// OpenMP and BLAS threads of each worker's jobs (or region): 0 = `SM_INNER_THREADS` if set,
    /// else at most max(1, CPUs / workers) and at most the caller's own count; -1 = leave the
    /// runtimes' thread counts alone; n >= 1 = exactly n. See "Calling OpenMP and BLAS from jobs"
    /// in the README.
    pub inner_threads: c_int,
    /// Bytes at `ctx` to copy for the workers when the call starts (0: workers get `ctx` itself).
    /// Jobs, regions, worker_init and worker_fini then get a pointer to the copy (aligned to 64
    /// bytes; what they write there is not seen by the caller), so `ctx` may be anything the
    /// caller can read, its stack included; reduce, worker_reduce and progress still get `ctx`.
    /// A ctx that is not NULL must then point to at least `ctx_size` readable bytes.
    pub ctx_size: usize,
}

/// `progress(ctx, done, total)`: called on the calling thread of `sm_map_ex` at most about every
/// 0.1 s while the map runs, and once when it ends, with the number of jobs completed so far and
/// `njobs`. (With `SM_PROGRESS=1` in the environment, any map that runs longer than a second also
/// draws a progress bar on stderr when stderr is a terminal.)
#[allow(non_camel_case_types)]
pub type sm_progress_fn = Option<unsafe extern "C" fn(ctx: *mut c_void, done: usize, total: usize)>;

/// Called on the caller, in increasing job order, once per completed job, with that job's result
/// (aligned to `SM_RESULT_ALIGN`). Return 0 to go on, nonzero to stop the map (`SM_STOPPED`).
#[allow(non_camel_case_types)]
pub type sm_reduce_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int>;

/// Result of a sharedmem call. `SM_OK` is zero; every other value is a reason the call did not
/// complete as asked, with details in `sm_last_error()`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum sm_status {
    /// Success.
    SM_OK = 0,
    /// The map stopped early because a job returned SM_STOP or reduce returned nonzero.
    SM_STOPPED = 1,
    /// An argument was invalid (NULL pool or callback, a value out of range, a size overflow).
    SM_ERR_INVALID = 2,
    /// Memory (or a process, for the process backend) could not be allocated.
    SM_ERR_NOMEM = 3,
    /// A job returned an error value; the message names the job and the value.
    SM_ERR_JOB = 4,
    /// A worker process died (signal or exit); the message names the job, pid and cause.
    SM_ERR_WORKER_DIED = 5,
    /// The map was interrupted by a signal (SIGINT, SIGTERM, ...); all workers were reaped.
    SM_ERR_INTERRUPTED = 6,
    /// A call made in the wrong state: critical/ordered misuse, or a call outside a map.
    SM_ERR_STATE = 7,
    /// An input/output error.
    SM_ERR_IO = 8,
    /// An internal error (a Rust panic) was caught at the C boundary.
    SM_ERR_PANIC = 9,
}
