//! `sm_critical_*`, `sm_ordered_*` and `sm_worker_id`: what jobs call.

use super::call_status;
use super::types::sm_pool;
use crate::frame;
use crate::status::{sm_status, Error, Result, Status};
use crate::sync;
use std::ffi::c_int;

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
        sync::critical_enter(pool_identity(pool, "sm_critical_enter")?)?;
        Ok(Status::SM_OK)
    })
}

/// Leaves the critical section. SM_ERR_STATE if the job is not inside it.
#[no_mangle]
pub extern "C" fn sm_critical_leave(pool: *mut sm_pool) -> sm_status {
    call_status(|| {
        sync::critical_leave(pool_identity(pool, "sm_critical_leave")?)?;
        Ok(Status::SM_OK)
    })
}

/// Blocks until every job with a smaller index has left its ordered section or finished without
/// entering one. A job enters at most one ordered section, and not while inside critical.
/// SM_ERR_STATE on misuse.
#[no_mangle]
pub extern "C" fn sm_ordered_enter(pool: *mut sm_pool) -> sm_status {
    call_status(|| {
        sync::ordered_enter(pool_identity(pool, "sm_ordered_enter")?)?;
        Ok(Status::SM_OK)
    })
}

/// Leaves the ordered section, letting the next job in. SM_ERR_STATE if not inside it.
#[no_mangle]
pub extern "C" fn sm_ordered_leave(pool: *mut sm_pool) -> sm_status {
    call_status(|| {
        sync::ordered_leave(pool_identity(pool, "sm_ordered_leave")?)?;
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
