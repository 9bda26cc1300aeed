//! What a map or region asks of its workers (the task every worker reads) and the callbacks'
//! types: shared by the launch (launch.rs), the workers (worker.rs) and the backends.

use crate::abi;
use crate::engine::inner::Plan;
use crate::status::{Error, Result};
use crate::sys::shm::SharedMapping;
use std::ffi::c_void;

/// The function inside one of the header's nullable callback types (`Option<fn>`): the engine
/// holds callbacks that are known to be there. Through it, each callback type is defined once, in
/// abi.rs, as the header has it.
pub trait Callback {
    type Fn: Copy;
}

impl<F: Copy> Callback for Option<F> {
    type Fn = F;
}

/// `sm_work_fn` (and `sm_reduce_fn`, the same type): `int (*)(void *ctx, size_t job, void *result)`.
pub type JobFn = <abi::sm_work_fn as Callback>::Fn;
/// `sm_worker_init_fn`: `int (*)(void *ctx, int worker)`.
pub type WorkerInitFn = <abi::sm_worker_init_fn as Callback>::Fn;
/// `sm_worker_fini_fn`: `int (*)(void *ctx, int worker, void *wresult)`; also worker_reduce's.
pub type WorkerFiniFn = <abi::sm_worker_fini_fn as Callback>::Fn;
/// `sm_region_fn`: `int (*)(void *ctx)`.
pub type RegionFn = <abi::sm_region_fn as Callback>::Fn;
/// `sm_progress_fn`: `void (*)(void *ctx, size_t done, size_t total)`.
pub type ProgressFn = <abi::sm_progress_fn as Callback>::Fn;

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
    pub inner: Option<Plan>,
}

// SAFETY: ctx is the caller's pointer, handed to the caller's own work function; sharing it with
// the workers is the whole point of the API, and the caller promised it is valid for the map.
unsafe impl Send for Task {}
// SAFETY: as above.
unsafe impl Sync for Task {}

/// The workers' copy of the caller's ctx (`sm_map_opts.ctx_size`): taken when the launch starts,
/// page-aligned shared memory (persistent workers, forked before it, see it in the heap), freed
/// when the launch ends.
pub struct CtxCopy(SharedMapping);

impl CtxCopy {
    /// Copies `size` bytes at `ctx`; None when `size` is 0 (the workers get ctx itself).
    pub fn take(ctx: *mut c_void, size: usize) -> Result<Option<CtxCopy>> {
        if size == 0 {
            return Ok(None);
        }
        check_ctx_size(ctx, size)?;
        let copy = SharedMapping::new(size)?;
        // SAFETY: ctx points to `size` readable bytes (the caller's contract for ctx_size), and
        // the copy is fresh memory of at least `size` bytes that overlaps nothing.
        unsafe { std::ptr::copy_nonoverlapping(ctx as *const u8, copy.as_ptr(), size) };
        Ok(Some(CtxCopy(copy)))
    }

    pub fn as_ptr(&self) -> *mut c_void {
        self.0.as_ptr().cast()
    }
}

/// `sm_map_opts.ctx_size` must come with a ctx, and stay below the limit of any one buffer the
/// library copies.
pub fn check_ctx_size(ctx: *mut c_void, size: usize) -> Result<()> {
    if size > 0 && ctx.is_null() {
        return Err(Error::invalid(format!(
            "opts->ctx_size is {size} but ctx is NULL: there is nothing to copy"
        )));
    }
    let max = abi::SM_MAX_RESULT_SIZE as usize;
    if size > max {
        return Err(Error::invalid(format!(
            "opts->ctx_size = {size} is larger than the {max} bytes (SM_MAX_RESULT_SIZE) the \
             library copies; put large data in sm_empty memory"
        )));
    }
    Ok(())
}
