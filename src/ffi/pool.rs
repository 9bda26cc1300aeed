//! `sm_pool_new`, `sm_pool_free`, `sm_pool_nworkers`.

use super::call;
use crate::abi::{sm_backend, sm_backend_arg};
use crate::engine::frame;
use crate::engine::pool::{Backend, Pool};
use crate::status::{Error, Result};
use crate::sys::forklock::{ForkSafeGuard, ForkSafeMutex};
use std::ffi::c_int;

/// Addresses of live pools, so a freed or foreign pointer is refused instead of dereferenced.
/// Only the caller's threads consult it, never a forked worker (see `check_pool`).
static LIVE_POOLS: ForkSafeMutex<Vec<usize>> = ForkSafeMutex::new(Vec::new());

fn live_pools() -> ForkSafeGuard<'static, Vec<usize>> {
    LIVE_POOLS.lock()
}

/// A pool of workers. Opaque: create with `sm_pool_new`, release with `sm_pool_free`.
#[allow(non_camel_case_types)]
pub struct sm_pool {
    pub(crate) pool: Pool,
}

/// Turns a pool pointer from C into a reference, refusing NULL and pointers that are not live pools.
pub(crate) fn check_pool<'a>(pool: *const sm_pool, call: &str) -> Result<&'a Pool> {
    if pool.is_null() {
        return Err(Error::invalid(format!("{call}: pool is NULL")));
    }
    let addr = pool as usize;
    let known = if frame::in_job() {
        // In a worker (maybe a forked child) the registry's lock may be held by a caller thread that
        // does not exist here: accept the pools of the enclosing maps, which are live by definition.
        frame::with_current(|f| f.is_some_and(|f| f.belongs_to(addr as *const Pool as usize)))
            || LIVE_POOLS.try_lock().is_some_and(|l| l.contains(&addr))
    } else {
        live_pools().contains(&addr)
    };
    if !known {
        return Err(Error::invalid(format!(
            "{call}: {pool:p} is not a live pool (already freed, or not from sm_pool_new)"
        )));
    }
    // SAFETY: the address is a live Box<sm_pool> from sm_pool_new (checked above).
    Ok(unsafe { &(*pool).pool })
}

/// Creates a pool of `nworkers` workers of the given backend. `nworkers <= 0` means the default:
/// `OMP_NUM_THREADS` when set to a positive integer, else the number of CPUs this process may run
/// on. Thread pools start their threads here, persistent pools their worker processes; process
/// pools fork at each map; a serial pool has one worker. Returns NULL on failure, with
/// `sm_last_status()`: SM_ERR_INVALID for a backend out of range or `nworkers` above
/// SM_MAX_WORKERS, SM_ERR_NOMEM when threads or processes cannot be started; and
/// the reason in `sm_last_error()`.
#[no_mangle]
pub extern "C" fn sm_pool_new(nworkers: c_int, backend: sm_backend_arg) -> *mut sm_pool {
    call(std::ptr::null_mut(), || {
        let backend = match backend {
            b if b == sm_backend::SM_BACKEND_PROCESS as c_int => Backend::Process,
            b if b == sm_backend::SM_BACKEND_THREAD as c_int => Backend::Thread,
            b if b == sm_backend::SM_BACKEND_SERIAL as c_int => Backend::Serial,
            b if b == sm_backend::SM_BACKEND_PERSISTENT as c_int => Backend::Persistent,
            other => {
                return Err(Error::invalid(format!(
                    "sm_pool_new: backend {other} is not an sm_backend (SM_BACKEND_PROCESS, \
                     SM_BACKEND_THREAD, SM_BACKEND_SERIAL or SM_BACKEND_PERSISTENT)"
                )))
            }
        };
        let pool = Box::into_raw(Box::new(sm_pool {
            pool: Pool::new(nworkers, backend)?,
        }));
        live_pools().push(pool as usize);
        Ok(pool)
    })
}

/// Frees a pool (stopping its threads). NULL is fine. Refused, with a message, while the pool runs
/// a map or when called from inside a job.
#[no_mangle]
pub extern "C" fn sm_pool_free(pool: *mut sm_pool) {
    call((), || {
        if pool.is_null() {
            return Ok(());
        }
        if frame::in_job() {
            return Err(Error::state(
                "sm_pool_free called inside a job: pools belong to the caller; not freed",
            ));
        }
        let mut live = live_pools();
        let Some(index) = live.iter().position(|&p| p == pool as usize) else {
            return Err(Error::invalid(format!(
                "sm_pool_free: {pool:p} is not a live pool (freed twice?); ignored"
            )));
        };
        // SAFETY: pool is live (in the registry), hence a valid Box<sm_pool>.
        if unsafe { (*pool).pool.is_busy() } {
            return Err(Error::state(
                "sm_pool_free: the pool is running a map (in another thread); not freed",
            ));
        }
        live.swap_remove(index);
        drop(live);
        // SAFETY: it came from Box::into_raw in sm_pool_new and was just removed from the registry,
        // so this is its only release.
        drop(unsafe { Box::from_raw(pool) });
        Ok(())
    })
}

/// The number of workers of `pool`, or -1 (with a message) if `pool` is NULL or not a pool: what
/// `sm_pool_new` was given or defaulted to for process and thread pools, always 1 for a serial
/// pool (debug mode runs maps serially but does not change this count).
#[no_mangle]
pub extern "C" fn sm_pool_nworkers(pool: *const sm_pool) -> c_int {
    call(-1, || {
        let pool = check_pool(pool, "sm_pool_nworkers")?;
        Ok(pool.nworkers() as c_int)
    })
}
