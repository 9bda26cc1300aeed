//! Memory shared between the caller and its forked workers.
//!
//! Everything here is anonymous `MAP_SHARED` memory: it has no name in /dev/shm or anywhere else, so
//! no other process can open it; only the caller and the children it forks (which inherit the
//! mapping) see it. Writes by any of them are seen by all, unlike ordinary memory, which fork makes
//! copy-on-write.

use crate::status::{Error, Result};
use crate::sys::forklock::ForkSafeMutex;
use crate::sys::mapping::Mapping;
use std::collections::HashMap;

/// An anonymous shared mapping, unmapped on drop.
pub struct SharedMapping(Mapping);

// SAFETY: the mapping is plain memory; all concurrent access to it goes through atomics or is
// partitioned by the protocols that use it (see engine/control.rs).
unsafe impl Send for SharedMapping {}
// SAFETY: as above.
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    /// Maps `len` zero-filled bytes (at least one page).
    pub fn new(len: usize) -> Result<SharedMapping> {
        let len = len.max(1);
        Mapping::shared(len).map(SharedMapping).map_err(|err| {
            Error::nomem(format!("could not map {len} bytes of shared memory: {err}"))
        })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.0.as_ptr()
    }

    pub fn size(&self) -> usize {
        self.0.size()
    }

    /// Gives up ownership: the mapping stays until `release_raw` is called with the same values.
    fn into_raw(self) -> (*mut u8, usize) {
        self.0.into_raw()
    }

    /// # Safety
    /// `ptr` and `len` must come from `into_raw` and not have been released before.
    unsafe fn release_raw(ptr: *mut u8, len: usize) {
        // SAFETY: by the caller's contract this is a live mapping of exactly `len` bytes, given up
        // by `into_raw`; dropping it unmaps it.
        drop(unsafe { Mapping::from_raw(ptr, len) });
    }
}

/// Live `sm_empty` allocations: address -> mapped length. The lock is only ever taken by the
/// caller's threads for a map insert or remove, never while forking and never in a worker.
static ALLOCATIONS: ForkSafeMutex<Option<HashMap<usize, usize>>> = ForkSafeMutex::new(None);

/// `sm_empty`: `count * itemsize` zero-filled bytes of shared memory.
pub fn allocate(count: usize, itemsize: usize) -> Result<*mut u8> {
    let bytes = count.checked_mul(itemsize).ok_or_else(|| {
        Error::invalid(format!(
            "sm_empty: count ({count}) * itemsize ({itemsize}) overflows size_t"
        ))
    })?;
    if bytes > isize::MAX as usize {
        return Err(Error::invalid(format!(
            "sm_empty: {bytes} bytes is larger than any allocation can be"
        )));
    }
    let mapping = SharedMapping::new(bytes).map_err(|e| {
        Error::nomem(format!(
            "sm_empty({count}, {itemsize}): {}",
            e.message.trim_start_matches("could not ")
        ))
    })?;
    let (ptr, len) = mapping.into_raw();
    let mut table = ALLOCATIONS.lock();
    table
        .get_or_insert_with(HashMap::new)
        .insert(ptr as usize, len);
    Ok(ptr)
}

/// `sm_free`: releases memory from `allocate`. Any other pointer is refused with an error: the
/// pointer is only used after it was found in the table of live allocations.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn release(ptr: *mut u8) -> Result<()> {
    let len = {
        let mut table = ALLOCATIONS.lock();
        table.as_mut().and_then(|t| t.remove(&(ptr as usize)))
    };
    match len {
        // SAFETY: the table held this exact mapping, and removing it from the table makes this the
        // only release.
        Some(len) => unsafe {
            SharedMapping::release_raw(ptr, len);
            Ok(())
        },
        None => Err(Error::invalid(format!(
            "sm_free: {ptr:p} was not returned by sm_empty (or was freed already); ignored"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_is_zeroed_and_released_once() {
        let p = allocate(1000, 8).unwrap();
        // SAFETY: 8000 bytes were just mapped at p.
        let bytes = unsafe { std::slice::from_raw_parts(p, 8000) };
        assert!(bytes.iter().all(|&b| b == 0));
        assert!(release(p).is_ok());
        assert!(release(p).is_err());
    }

    #[test]
    fn overflow_is_refused() {
        let e = allocate(usize::MAX, 2).unwrap_err();
        assert!(e.message.contains("overflows"), "{}", e.message);
    }
}
