//! `sm_map`.

use super::call_status;
use super::pool::check_pool;
use super::types::{sm_pool, sm_reduce_fn, sm_work_fn};
use crate::last_error;
use crate::map::{self, MapRequest};
use crate::status::{sm_status, Error};
use std::ffi::c_void;

/// Runs `work(ctx, job, result)` once for every job in [0, njobs) on the pool's workers, handing
/// jobs out dynamically in increasing order. Each job's `result` points to `result_size` zeroed
/// bytes. `reduce` (may be NULL) runs in the calling thread, once per completed job, in increasing
/// job order, while the workers go on; results wait in a bounded window, whatever njobs is.
///
/// Returns SM_OK; SM_STOPPED if a job returned SM_STOP or reduce returned nonzero; SM_ERR_JOB if a
/// job returned another nonzero value; SM_ERR_WORKER_DIED if a worker process died;
/// SM_ERR_INTERRUPTED on SIGINT/SIGTERM; SM_ERR_STATE for critical/ordered misuse; SM_ERR_INVALID
/// or SM_ERR_NOMEM for bad arguments. In every case reduce has run for each job before the first
/// one that failed or stopped, and no worker process is left behind. Called from inside a job, the
/// map runs serially in that worker.
#[no_mangle]
pub extern "C" fn sm_map(
    pool: *mut sm_pool,
    njobs: usize,
    work: sm_work_fn,
    reduce: sm_reduce_fn,
    result_size: usize,
    ctx: *mut c_void,
) -> sm_status {
    call_status(|| {
        let pool = check_pool(pool, "sm_map")?;
        let work = work.ok_or_else(|| Error::invalid("sm_map: work is NULL"))?;
        let request = MapRequest {
            njobs,
            work,
            reduce,
            result_size,
            ctx,
        };
        let (status, note) = map::run(pool, &request)?;
        if let Some(note) = note {
            last_error::set(&note);
        }
        Ok(status)
    })
}
