//! `sm_empty` and `sm_free`.

use super::call;
use crate::engine::frame;
use crate::status::Error;
use crate::sys::shm;
use std::ffi::c_void;

/// Allocates `count * itemsize` zero-filled bytes shared between the caller and the workers of
/// every later map: writes by a worker process are seen by the caller (ordinary memory is
/// copy-on-write in forked workers). Page-aligned; a zero size still returns a valid pointer.
/// The memory comes from the process's shared heap: one range of address space, mapped once
/// (64 GiB or twice the machine's memory, whichever is larger; `SM_HEAP_SIZE` in the environment
/// sets another size, e.g. `SM_HEAP_SIZE=256G`), of which only what arrays use takes memory.
/// Returns NULL, with `sm_last_status()` and `sm_last_error()` saying why: SM_ERR_INVALID when
/// `count * itemsize` overflows or exceeds PTRDIFF_MAX, or `SM_HEAP_SIZE` is not a size;
/// SM_ERR_NOMEM when the memory cannot be had or does not fit in what is free of the heap;
/// SM_ERR_STATE inside a job (memory allocated there would not be shared with the caller).
/// Release with `sm_free`, which gives the pages back at once.
#[no_mangle]
pub extern "C" fn sm_empty(count: usize, itemsize: usize) -> *mut c_void {
    call(std::ptr::null_mut(), || {
        if frame::in_job() {
            return Err(Error::state(
                "sm_empty called inside a job: memory allocated in a worker would not be shared \
                 with the caller; allocate it before sm_map",
            ));
        }
        Ok(shm::allocate(count, itemsize)?.cast())
    })
}

/// Releases memory from `sm_empty`. NULL is fine. Other pointers, double frees and calls inside a
/// job are refused (nothing is freed) with a message in `sm_last_error()`.
#[no_mangle]
pub extern "C" fn sm_free(ptr: *mut c_void) {
    call((), || {
        if ptr.is_null() {
            return Ok(());
        }
        if frame::in_job() {
            return Err(Error::state(
                "sm_free called inside a job: shared memory belongs to the caller; not freed",
            ));
        }
        shm::release(ptr.cast())
    })
}
