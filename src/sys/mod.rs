//! System wrappers, the bottom layer: they import nothing of the library but each other and
//! `status` (tests/layers.rs checks it), and know nothing of maps, jobs or the C API.
//!
//! - [`mapping`]: anonymous mappings, shared or private (mmap, munmap);
//! - [`shm`]: shared memory; [`futex`]: sleeping on words that live in it;
//! - [`forklock`]: mutexes that a fork by any thread cannot leave locked;
//! - [`interrupt`]: noticing SIGINT/SIGTERM the caller handles;
//! - [`spawn`]: helper threads that fall back to the calling thread;
//! - [`runtimes`]: the OpenMP runtimes and BLAS libraries loaded in the process.

pub(crate) mod forklock;
pub(crate) mod futex;
pub(crate) mod interrupt;
pub(crate) mod mapping;
pub(crate) mod runtimes;
pub(crate) mod shm;
pub(crate) mod spawn;
