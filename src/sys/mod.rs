//! System wrappers, the bottom layer: they import nothing of the library but each other and
//! `status` (tests/layers.rs checks it), and know nothing of maps, jobs or the C API.
//!
//! - [`mapping`]: anonymous mappings, shared or private (mmap, munmap);
//! - [`heap`]: the shared heap, one range that shared allocations are cut from;
//! - [`shm`]: shared memory; [`futex`]: sleeping on words that live in it;
//! - [`forklock`]: mutexes that a fork by any thread cannot leave locked;
//! - [`interrupt`]: noticing SIGINT/SIGTERM the caller handles;
//! - [`spawn`]: helper threads that fall back to the calling thread;
//! - [`runtimes`]: the OpenMP runtimes and BLAS libraries loaded in the process.

pub(crate) mod forklock;
pub(crate) mod futex;
pub(crate) mod heap;
pub(crate) mod interrupt;
pub(crate) mod mapping;
pub(crate) mod runtimes;
pub(crate) mod shm;
pub(crate) mod spawn;

/// An environment variable, read with libc's getenv: std::env::var takes a lock of the Rust
/// runtime, which a fork by another thread could leave locked in a child (see forklock.rs).
pub(crate) fn getenv(name: &str) -> Option<String> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getenv with a NUL-terminated name returns NULL or a NUL-terminated string that stays
    // valid until the environment is changed; it is copied at once.
    unsafe {
        let value = libc::getenv(name.as_ptr());
        (!value.is_null()).then(|| {
            std::ffi::CStr::from_ptr(value)
                .to_string_lossy()
                .into_owned()
        })
    }
}
