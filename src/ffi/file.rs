//! `sm_fromfile`.

use super::call;
use super::pool::check_pool;
use super::pool::sm_pool;
use crate::config;
use crate::engine::frame;
use crate::fromfile;
use crate::status::Error;
use std::ffi::{c_char, c_void, CStr};

/// Reads `*count` items of `itemsize` bytes, starting at byte `offset` of the file at `path`, into
/// new `sm_empty` memory, with the pool's worker count of threads (NULL pool: the default), and
/// returns it (release with `sm_free`). `*count == SIZE_MAX` means "to the end of the file"; on
/// return `*count` holds the number of items read. Returns NULL, with a message naming the path
/// and the problem, for: a missing or unreadable file, an offset past its end, a length after
/// offset that is not a whole number of items (with SIZE_MAX), a file too short for `*count` items,
/// a short read, itemsize 0, NULL path or count, or a call inside a job. `sm_last_status()` then
/// tells which kind: SM_ERR_IO for the file's problems, SM_ERR_INVALID for the arguments',
/// SM_ERR_NOMEM when the memory cannot be had, SM_ERR_STATE inside a job.
#[no_mangle]
pub extern "C" fn sm_fromfile(
    pool: *mut sm_pool,
    path: *const c_char,
    offset: usize,
    itemsize: usize,
    count: *mut usize,
) -> *mut c_void {
    call(std::ptr::null_mut(), || {
        if path.is_null() {
            return Err(Error::invalid("sm_fromfile: path is NULL"));
        }
        // SAFETY: path is a NUL-terminated string (the caller's contract in the header), not NULL.
        let path = unsafe { CStr::from_ptr(path) };
        if count.is_null() {
            return Err(Error::invalid(format!(
                "sm_fromfile('{}'): count is NULL (it must point to the number of items, or to \
                 SIZE_MAX)",
                path.to_string_lossy()
            )));
        }
        if frame::in_job() {
            return Err(Error::state(
                "sm_fromfile called inside a job: memory allocated in a worker would not be \
                 shared with the caller; read the file before sm_map",
            ));
        }
        let threads = if pool.is_null() {
            config::default_workers() as usize
        } else {
            check_pool(pool, "sm_fromfile")?.nworkers()
        };
        // SAFETY: count points to a size_t (the caller's contract), not NULL (checked above).
        let count = unsafe { &mut *count };
        Ok(fromfile::fromfile(path, offset, itemsize, count, threads)?.cast())
    })
}
