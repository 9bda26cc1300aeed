//! Memory shared between the caller and its forked workers.
//!
//! Everything here is cut from the shared heap (heap.rs), or, in a process the system refuses a
//! heap, mapped anonymous `MAP_SHARED` one allocation at a time. Neither has a name in /dev/shm or
//! anywhere else, so no other process can open it; only the caller and the children it forks
//! (which inherit the mapping) see it. Writes by any of them are seen by all, unlike ordinary
//! memory, which fork makes copy-on-write.

use crate::status::{Error, Result};
use crate::sys::forklock::ForkSafeMutex;
use crate::sys::heap::{self, Refusal};
use crate::sys::mapping::Mapping;
use std::collections::BTreeMap;

/// Shared memory, given back on drop: a part of the heap, or a mapping of its own.
pub enum SharedMapping {
    Heap { ptr: *mut u8, len: usize },
    Own(Mapping),
}

// SAFETY: the mapping is plain memory; all concurrent access to it goes through atomics or is
// partitioned by the protocols that use it (see engine/control.rs).
unsafe impl Send for SharedMapping {}
// SAFETY: as above.
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    /// `len` zero-filled bytes (at least one page) from the heap; a mapping of their own when
    /// this process has no heap or it is full (which only `in_heap` users care about).
    pub fn new(len: usize) -> Result<SharedMapping> {
        match heap::allocate(len) {
            Ok((ptr, len)) => Ok(SharedMapping::Heap { ptr, len }),
            Err(Refusal::Misset(why)) => Err(Error::invalid(why)),
            Err(Refusal::NoHeap | Refusal::Full { .. }) => SharedMapping::own(len),
        }
    }

    /// `len` zero-filled bytes in a mapping of their own.
    fn own(len: usize) -> Result<SharedMapping> {
        let len = len.max(1);
        Mapping::shared(len).map(SharedMapping::Own).map_err(|err| {
            Error::nomem(format!("could not map {len} bytes of shared memory: {err}"))
        })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        match self {
            SharedMapping::Heap { ptr, .. } => *ptr,
            SharedMapping::Own(m) => m.as_ptr(),
        }
    }

    pub fn size(&self) -> usize {
        match self {
            SharedMapping::Heap { len, .. } => *len,
            SharedMapping::Own(m) => m.size(),
        }
    }

    /// True when the memory lies in the heap, where every process forked after the heap was
    /// made sees it, whenever it was allocated.
    pub fn in_heap(&self) -> bool {
        matches!(self, SharedMapping::Heap { .. })
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        if let SharedMapping::Heap { ptr, len } = *self {
            // SAFETY: the part came from heap::allocate and is given back once, here; nothing
            // uses it after its owner dropped it.
            unsafe { heap::release(ptr, len) };
        }
        // An own mapping unmaps itself (Mapping's drop).
    }
}

/// Live `sm_empty` allocations by address. The lock is only ever taken by the caller's threads
/// for a map insert or remove, never while forking and never in a worker.
static ALLOCATIONS: ForkSafeMutex<BTreeMap<usize, SharedMapping>> =
    ForkSafeMutex::new(BTreeMap::new());

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
    let mapping = match heap::allocate(bytes) {
        Ok((ptr, len)) => SharedMapping::Heap { ptr, len },
        // Workers forked after the heap was made see only the heap: an array outside it would
        // be missing in them, so a full heap is an error, not a reason to map elsewhere.
        Err(Refusal::Full { size }) => {
            return Err(Error::nomem(format!(
                "sm_empty({count}, {itemsize}): {bytes} bytes do not fit in what is free of the \
                 shared heap ({}; set SM_HEAP_SIZE before the program starts for a larger one)",
                heap::size_text(size)
            )))
        }
        Err(Refusal::Misset(why)) => {
            return Err(Error::invalid(format!(
                "sm_empty({count}, {itemsize}): {why}"
            )))
        }
        Err(Refusal::NoHeap) => SharedMapping::own(bytes).map_err(|e| {
            Error::nomem(format!(
                "sm_empty({count}, {itemsize}): {}",
                e.message.trim_start_matches("could not ")
            ))
        })?,
    };
    let ptr = mapping.as_ptr();
    let mut table = ALLOCATIONS.lock();
    table.insert(ptr as usize, mapping);
    Ok(ptr)
}

/// `sm_free`: releases memory from `allocate`. Any other pointer is refused with an error: the
/// pointer is only used after it was found in the table of live allocations.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn release(ptr: *mut u8) -> Result<()> {
    let mapping = {
        let mut table = ALLOCATIONS.lock();
        table.remove(&(ptr as usize))
    };
    match mapping {
        // Dropped outside the lock: giving back a large array takes a while.
        Some(mapping) => {
            drop(mapping);
            Ok(())
        }
        None => Err(Error::invalid(format!(
            "sm_free: {ptr:p} was not returned by sm_empty (or was freed already); ignored"
        ))),
    }
}

/// True when `ptr` lies inside a live `sm_empty` array.
pub fn is_allocated(ptr: *const u8) -> bool {
    let addr = ptr as usize;
    let table = ALLOCATIONS.lock();
    table
        .range(..=addr)
        .next_back()
        .is_some_and(|(&start, m)| addr < start + m.size())
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
