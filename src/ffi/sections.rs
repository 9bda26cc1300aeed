//! `sm_critical_*`, `sm_ordered_*`, `sm_worker_id` and `sm_worker_local`: what jobs call.

use super::call_status;
use super::pool::sm_pool;
use crate::abi::sm_status;
use crate::engine::frame;
use crate::engine::sections;
use crate::status::{Error, Result, Status};
use std::ffi::{c_int, c_void};

pub(crate) fn pool_identity(pool: *mut sm_pool, call: &str) -> Result<usize> {
    if pool.is_null() {
        return Err(Error::invalid(format!("{call}: pool is NULL")));
    }
    // SAFETY: only the address of the pool field is computed (no read): it identifies the pool and
    // is compared against the running maps' pools before anything else happens.
    Ok(unsafe { std::ptr::addr_of!((*pool).pool) } as usize)
}

/// Enters the critical section: mutual exclusion among all workers of the running map (processes
/// or threads). Only valid inside a job; a job must leave before returning. SM_ERR_STATE if called
/// outside a job or already inside.
#[no_mangle]
pub extern "C" fn sm_critical_enter(pool: *mut sm_pool) -> sm_status {
    call_status(|| {
        sections::critical_enter(pool_identity(pool, "sm_critical_enter")?)?;
        Ok(Status::SM_OK)
    })
}

/// Leaves the critical section. SM_ERR_STATE if the job is not inside it.
#[no_mangle]
pub extern "C" fn sm_critical_leave(pool: *mut sm_pool) -> sm_status {
    call_status(|| {
        sections::critical_leave(pool_identity(pool, "sm_critical_leave")?)?;
        Ok(Status::SM_OK)
    })
}

/// Blocks until every job with a smaller index has left its ordered section or finished without
/// entering one. A job enters at most one ordered section, and not while inside critical.
/// SM_ERR_STATE on misuse.
#[no_mangle]
pub extern "C" fn sm_ordered_enter(pool: *mut sm_pool) -> sm_status {
    call_status(|| {
        sections::ordered_enter(pool_identity(pool, "sm_ordered_enter")?)?;
        Ok(Status::SM_OK)
    })
}

/// Leaves the ordered section, letting the next job in. SM_ERR_STATE if not inside it.
#[no_mangle]
pub extern "C" fn sm_ordered_leave(pool: *mut sm_pool) -> sm_status {
    call_status(|| {
        sections::ordered_leave(pool_identity(pool, "sm_ordered_leave")?)?;
        Ok(Status::SM_OK)
    })
}

/// The calling worker's index, 0..nworkers-1, inside a job (0 in a serial or debug map; a nested
/// map keeps the enclosing worker's index); -1 outside any map.
#[no_mangle]
pub extern "C" fn sm_worker_id() -> c_int {
    super::call(-1, || {
        Ok(frame::with_current(|f| f.map_or(-1, |f| f.worker)))
    })
}

/// The calling worker's per-worker result (`wresult_size` bytes, aligned to `SM_RESULT_ALIGN`):
/// inside a job, `worker_init` or `worker_fini` of `sm_map_ex`, or inside the region (and its
/// hooks) of `sm_parallel_ex`, when `opts->wresult_size > 0`. It is zeroed at the start of the
/// call, stays this worker's for the whole call (every job the worker runs sees the same bytes),
/// is the `wresult` that `worker_fini` gets, and is handed to `worker_reduce` on the caller, once
/// per worker in worker order, after the workers are done. So `reduction(+:sum)` becomes
/// `((struct acc *)sm_worker_local())->sum += x` in the body and one addition in worker_reduce.
/// A map or region inside a job runs in that worker with its own per-worker result (NULL if it
/// has none); the enclosing one's comes back when it returns.
/// NULL, with a message in `sm_last_error()`, outside a job or region, or when the running map or
/// region has no per-worker result (wresult_size 0).
#[no_mangle]
pub extern "C" fn sm_worker_local() -> *mut c_void {
    super::call(std::ptr::null_mut(), || match frame::worker_local() {
        Ok(wresult) => Ok(wresult.cast()),
        Err(true) => Err(Error::state(
            "sm_worker_local called outside a job or parallel region: it is only valid in the \
             jobs, region and worker hooks of sm_map_ex / sm_parallel_ex",
        )),
        Err(false) => Err(Error::state(
            "sm_worker_local: the running map or region has no per-worker result (set \
             opts->wresult_size > 0 in sm_map_ex / sm_parallel_ex)",
        )),
    })
}
