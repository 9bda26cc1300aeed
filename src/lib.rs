//! sharedmem: dispatch trivially parallel jobs from C, C++, Fortran and Julia to a pool of forked
//! (or threaded) workers with one call, sharing arrays with them.
//!
//! Three layers, each importing only the ones below it (tests/layers.rs):
//! - [`ffi`]: the C API (and `include/sharedmem.h`, generated from it): argument checks,
//!   conversions, the panic boundary;
//! - [`engine`]: pools ([`engine::pool`]), one map or region from start to outcome
//!   ([`engine::launch`], [`engine::report`]), its shared control block ([`engine::control`]), the workers' loop
//!   ([`engine::worker`]) and the caller's side ([`engine::supervise`]), critical and ordered
//!   sections ([`engine::sections`]), regions ([`engine::region`]), the three ways of running
//!   workers ([`engine::backend`]), OpenMP/BLAS thread counts in jobs ([`engine::inner`]);
//! - [`sys`]: the system wrappers below all of it (shared memory, futexes, fork-safe locks,
//!   signals, helper threads, the loaded OpenMP and BLAS libraries).
//!
//! Beside them: [`sort`] (the parallel argsort), [`fromfile`] (parallel file reading), and
//! [`config`], [`status`], [`last_error`] (settings, status codes and messages). Below them all:
//! [`abi`], the header's types and constants, each defined once.
//!
//! docs/DESIGN.md describes the layers; src/engine/README.md the protocols that cross processes.

pub mod abi;
pub(crate) mod config;
pub(crate) mod engine;
pub mod ffi;
pub(crate) mod ranks;
pub(crate) mod fromfile;
pub(crate) mod last_error;
pub(crate) mod sort;
pub(crate) mod sys;
pub mod status;

pub use abi::*;
pub use ffi::diagnostics::*;
pub use ffi::file::*;
pub use ffi::map::*;
pub use ffi::memory::*;
pub use ffi::pool::*;
pub use ffi::region::*;
pub use ffi::sections::*;
pub use ffi::sort::*;
