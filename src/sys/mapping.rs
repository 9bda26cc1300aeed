//! Anonymous memory mappings, the one place that calls mmap and munmap for them: shared ones (shm.rs:
//! the control block, `sm_empty`) and private ones (the sort's work buffers, sort/buffer.rs).
//! Each caller words its own error message around the system's error.

use std::ptr::NonNull;

/// `len` zero-filled, readable and writable bytes at an address of the kernel's choosing, unmapped
/// on drop. Neither `Send` nor `Sync` by itself: the types that hold one say why they may be.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// `MAP_SHARED`: writes are seen by the children forked after the call and by the caller alike.
    pub fn shared(len: usize) -> std::io::Result<Mapping> {
        Mapping::anonymous(len, libc::MAP_SHARED)
    }

    /// `MAP_PRIVATE`: ordinary memory, copy-on-write across fork.
    pub fn private(len: usize) -> std::io::Result<Mapping> {
        Mapping::anonymous(len, libc::MAP_PRIVATE)
    }

    /// Maps `len` bytes (at least one: mmap refuses zero) with `flags | MAP_ANONYMOUS`; the error is
    /// the system's (`errno`), for the caller to word.
    fn anonymous(len: usize, flags: libc::c_int) -> std::io::Result<Mapping> {
        let len = len.max(1);
        // SAFETY: an anonymous mapping at an address of the kernel's choosing touches no existing
        // memory; the result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: NonNull::new(ptr.cast()).expect("mmap returned NULL without MAP_FIXED"),
            len,
        })
    }

    /// Asks for transparent huge pages (the madvise mode of THP); where the kernel does not have
    /// them, nothing changes but the speed.
    pub fn advise_huge_pages(&self) {
        // SAFETY: advice on our own live mapping of exactly `len` bytes; it changes no contents.
        unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, libc::MADV_HUGEPAGE) };
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapped length (`len` as asked, but at least one).
    pub fn size(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own this mapping of `len` bytes and nothing refers to it after drop.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_filled_and_at_least_one_byte() {
        for m in [
            Mapping::shared(0).unwrap(),
            Mapping::private(10_000).unwrap(),
        ] {
            assert!(m.size() >= 1);
            m.advise_huge_pages();
            // SAFETY: `len` bytes are mapped at as_ptr() while `m` lives.
            let bytes = unsafe { std::slice::from_raw_parts(m.as_ptr(), m.size()) };
            assert!(bytes.iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn a_mapping_too_large_is_the_systems_error() {
        let e = Mapping::private(isize::MAX as usize)
            .err()
            .expect("no such mapping");
        assert!(e.raw_os_error().is_some(), "{e}");
    }
}
