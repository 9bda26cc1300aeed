//! What a map or region asks of its workers (the task every worker reads) and the callbacks'
//! types: shared by the launch (launch.rs), the workers (worker.rs) and the backends.

use crate::engine::region::RegionFn;
use std::ffi::{c_int, c_void};

/// `sm_work_fn` / `sm_reduce_fn`: `int (*)(void *ctx, size_t job, void *result)`.
pub type JobFn = unsafe extern "C" fn(*mut c_void, usize, *mut c_void) -> c_int;

/// `sm_worker_init_fn`: `int (*)(void *ctx, int worker)`.
pub type WorkerInitFn = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
/// `sm_worker_fini_fn` (also worker_reduce): `int (*)(void *ctx, int worker, void *wresult)`.
pub type WorkerFiniFn = unsafe extern "C" fn(*mut c_void, c_int, *mut c_void) -> c_int;

/// What the workers run: a map's jobs, or a parallel region (once per worker).
#[derive(Clone, Copy)]
pub enum Body {
    Jobs(JobFn),
    Region(RegionFn),
}

/// What every worker of a map runs.
pub struct Task {
    pub body: Body,
    pub ctx: *mut c_void,
    /// Identity (address) of the pool running the map, for the checks in sections.rs.
    pub pool: usize,
    /// Jobs claimed at a time; 0 = adaptive.
    pub chunk: u64,
    /// Run by each worker before its first job / after its last.
    pub init: Option<WorkerInitFn>,
    pub fini: Option<WorkerFiniFn>,
    /// The OpenMP and BLAS thread counts each worker sets (None: no runtime loaded, or a map
    /// inside a job, which keeps its worker's).
    pub inner: Option<crate::engine::inner::Plan>,
}

// SAFETY: ctx is the caller's pointer, handed to the caller's own work function; sharing it with
// the workers is the whole point of the API, and the caller promised it is valid for the map.
unsafe impl Send for Task {}
// SAFETY: as above.
unsafe impl Sync for Task {}
