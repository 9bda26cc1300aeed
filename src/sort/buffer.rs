//! Work buffers of the sort: private anonymous mappings backed by huge pages where the kernel
//! allows (madvise mode of transparent huge pages). A sort streams several times over hundreds of
//! megabytes and scatters into hundreds of places at once: with 4 KiB pages that costs one page
//! fault per page and a TLB miss on most scattered writes; 2 MiB pages remove both.

use crate::status::{Error, Result};
use crate::sys::mapping::Mapping;
use std::marker::PhantomData;

/// Unsigned integers: all-zero bytes are a valid value.
///
/// # Safety
/// Implement only for types for which every all-zero bit pattern is a valid value.
pub unsafe trait Zeroable: Copy {}
// SAFETY: plain unsigned integers.
unsafe impl Zeroable for u8 {}
// SAFETY: as above.
unsafe impl Zeroable for u16 {}
// SAFETY: as above.
unsafe impl Zeroable for u32 {}
// SAFETY: as above.
unsafe impl Zeroable for u64 {}

/// `n` zero-initialised `T`s, unmapped on drop (by the mapping).
pub struct Buffer<T: Zeroable> {
    map: Mapping,
    len: usize,
    _owns: PhantomData<T>,
}

// SAFETY: the buffer owns its memory exclusively, like a Vec<T>.
unsafe impl<T: Zeroable + Send> Send for Buffer<T> {}

impl<T: Zeroable> Buffer<T> {
    pub fn new(len: usize) -> Result<Buffer<T>> {
        let fail = |why: String| {
            Error::nomem(format!(
                "sm_argsort: could not allocate a work buffer of {len} x {} bytes: {why}",
                std::mem::size_of::<T>()
            ))
        };
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "sm_argsort: a work buffer of {len} x {} bytes overflows size_t",
                    std::mem::size_of::<T>()
                ))
            })?
            .max(1);
        let map = Mapping::private(bytes).map_err(|err| fail(err.to_string()))?;
        // Failure (no THP) only loses the speed-up.
        map.advise_huge_pages();
        Ok(Buffer {
            map,
            len,
            _owns: PhantomData,
        })
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: as in as_mut_slice, shared.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<T>(), self.len) }
    }

    /// The buffer's bytes (to send them).
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the mapping holds len * size_of::<T>() initialised bytes.
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr(), self.len * std::mem::size_of::<T>())
        }
    }

    /// The buffer's bytes, writable (to receive into them): any bytes are a valid T (Zeroable
    /// types are plain unsigned integers).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in as_bytes, exclusively borrowed.
        unsafe {
            std::slice::from_raw_parts_mut(self.map.as_ptr(), self.len * std::mem::size_of::<T>())
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: the mapping holds `len` Ts, zero-initialised by the kernel (valid: Zeroable),
        // and is exclusively borrowed through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_ptr().cast::<T>(), self.len) }
    }
}
