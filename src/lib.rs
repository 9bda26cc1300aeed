//! sharedmem: dispatch trivially parallel jobs from C, C++, Fortran and Julia to a pool of forked
//! (or threaded) workers with one call, sharing arrays with them.
//!
//! The C API is in [`ffi`] (and `include/sharedmem.h`, generated from it). The engine:
//! - [`pool`]: pools and their backends; [`map`]: one `sm_map` call from start to outcome;
//! - [`control`]: the shared control block of a map; [`worker`]: the loop every worker runs;
//!   [`supervise`]: the caller's side (in-order reduce, dead-worker detection);
//! - [`process`], [`threads`], [`serial`]: the three ways of running workers;
//! - [`sync`]: critical and ordered sections; [`frame`]: which job the calling thread runs;
//! - [`sort`]: the parallel radix argsort; [`fromfile`]: parallel file reading;
//! - [`inner`]: OpenMP and BLAS thread counts inside jobs, and forks that OpenMP survives;
//! - [`sys`]: the system wrappers below all of it (shared memory, futexes, fork-safe locks,
//!   signals, helper threads, the loaded OpenMP and BLAS libraries);
//! - [`config`], [`status`], [`last_error`]: settings, status codes and messages.
//!
//! docs/DESIGN.md describes the protocols that cross processes.

pub mod config;
pub mod control;
pub mod ffi;
pub mod frame;
pub mod fromfile;
pub mod inner;
pub mod last_error;
pub mod map;
pub mod pool;
pub mod process;
pub mod progress;
pub mod region;
pub mod serial;
pub mod sort;
pub mod sys;
pub mod status;
pub mod supervise;
pub mod sync;
pub mod threads;
pub mod worker;

pub use ffi::diagnostics::*;
pub use ffi::file::*;
pub use ffi::map::*;
pub use ffi::memory::*;
pub use ffi::pool::*;
pub use ffi::region::*;
pub use ffi::sections::*;
pub use ffi::sort::*;
pub use ffi::types::*;
pub use status::sm_status;
