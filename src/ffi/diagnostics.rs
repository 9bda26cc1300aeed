//! `sm_last_error`, `sm_last_status`, `sm_status_str`, `sm_set_debug`.

use crate::abi::sm_status;
use crate::abi::sm_status_arg;
use crate::config;
use crate::last_error;
use crate::status::Status;
use std::ffi::{c_char, c_int};

/// The message of the last failure on the calling thread ("" if none yet). Valid until the next
/// failing sharedmem call on this thread. Never NULL.
#[no_mangle]
pub extern "C" fn sm_last_error() -> *const c_char {
    super::call(c"".as_ptr(), || Ok(last_error::as_ptr()))
}

/// The status of the last failure on the calling thread, the one `sm_last_error()` describes
/// (SM_OK if none yet). Set together with the message by every failing call, cleared by none (as
/// errno): it tells why a call that returns a pointer or a number failed (`sm_pool_new`,
/// `sm_empty` and `sm_fromfile` return NULL, `sm_pool_nworkers` and `sm_single` -1, `sm_for_next`
/// 0), and is the status a map or region returned when it did not return SM_OK.
#[no_mangle]
pub extern "C" fn sm_last_status() -> sm_status {
    super::call(Status::SM_ERR_PANIC, || Ok(last_error::status()))
}

/// A static description of a status, e.g. "SM_ERR_JOB: a job returned an error". Never NULL, also
/// for values that are not a status.
#[no_mangle]
pub extern "C" fn sm_status_str(status: sm_status_arg) -> *const c_char {
    super::call(c"unknown sm_status".as_ptr(), || {
        Ok(match Status::from_raw(status as i64) {
            Some(s) => s.describe().as_ptr().cast(),
            None => c"unknown sm_status value".as_ptr(),
        })
    })
}

/// Debug mode: when `on` is nonzero, every later map runs serially in the calling process and
/// thread, in job order, so a debugger can step into jobs. `SM_DEBUG=1` in the environment does the
/// same (the environment is read once, at the first map; this call works at any time).
#[no_mangle]
pub extern "C" fn sm_set_debug(on: c_int) {
    super::call((), || {
        config::set_debug(on != 0);
        Ok(())
    })
}
