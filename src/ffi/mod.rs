//! The C boundary: argument checks and conversions only; the engine lives in the crate root's
//! modules. Every export catches panics (a panic never unwinds into C) and reports failures
//! through a status (or NULL / -1) plus `sm_last_error()`.
//!
//! Exports take raw pointers but cannot be `unsafe fn` for their C callers; each checks what can
//! be checked (NULL, live pools, sizes, overlap) and relies on the header's documented contract
//! for the rest (that a non-NULL array has the length given).
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod pool;
pub mod map;
pub mod sections;
pub mod region;
pub mod sort;
pub mod memory;
pub mod file;
pub mod diagnostics;
pub mod ranks;

use crate::last_error;
use crate::status::{Result, Status};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs `f` for an export returning a value: on error or panic, records the message and returns
/// `on_error`.
pub(crate) fn call<T>(on_error: T, f: impl FnOnce() -> Result<T>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            last_error::set(e.status, &e.message);
            on_error
        }
        Err(payload) => {
            last_error::set(
                Status::SM_ERR_PANIC,
                &format!(
                    "internal error in sharedmem (please report): {}",
                    panic_message(&*payload)
                ),
            );
            on_error
        }
    }
}

/// Runs `f` for an export returning a status: errors become their status, panics SM_ERR_PANIC.
pub(crate) fn call_status(f: impl FnOnce() -> Result<Status>) -> Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            last_error::set(e.status, &e.message);
            e.status
        }
        Err(payload) => {
            last_error::set(
                Status::SM_ERR_PANIC,
                &format!(
                    "internal error in sharedmem (please report): {}",
                    panic_message(&*payload)
                ),
            );
            Status::SM_ERR_PANIC
        }
    }
}
