//! Work buffers of the sort: private anonymous mappings backed by huge pages where the kernel
//! allows (madvise mode of transparent huge pages). A sort streams several times over hundreds of
//! megabytes and scatters into hundreds of places at once: with 4 KiB pages that costs one page
//! fault per page and a TLB miss on most scattered writes; 2 MiB pages remove both.

use crate::status::{Error, Result};
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

/// `n` zero-initialised `T`s, unmapped on drop.
pub struct Buffer<T: Zeroable> {
    ptr: *mut T,
    len: usize,
    bytes: usize,
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
        // SAFETY: a fresh anonymous private mapping touches no existing memory; the result is
        // checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(fail(std::io::Error::last_os_error().to_string()));
        }
        // SAFETY: advice on our own fresh mapping; failure (no THP) only loses the speed-up.
        unsafe { libc::madvise(ptr, bytes, libc::MADV_HUGEPAGE) };
        Ok(Buffer {
            ptr: ptr.cast(),
            len,
            bytes,
            _owns: PhantomData,
        })
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: the mapping holds `len` Ts, zero-initialised by the kernel (valid: Zeroable),
        // and is exclusively borrowed through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl<T: Zeroable> Drop for Buffer<T> {
    fn drop(&mut self) {
        // SAFETY: our own mapping of `bytes` bytes, not used after drop.
        unsafe { libc::munmap(self.ptr.cast(), self.bytes) };
    }
}
