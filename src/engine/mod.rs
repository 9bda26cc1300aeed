//! The engine: pools, launching a map or region, the workers' loop, the caller's supervision,
//! sections and regions, and the three ways of running workers (`backend/`). Above the system
//! wrappers (`crate::sys`), below the C boundary (`crate::ffi`), which it never imports
//! (tests/layers.rs). README.md beside this file explains the protocols.

pub(crate) mod backend;
pub(crate) mod control;
pub(crate) mod feed;
pub(crate) mod frame;
pub(crate) mod inner;
pub(crate) mod launch;
pub(crate) mod outcome;
pub(crate) mod pool;
pub(crate) mod progress;
pub(crate) mod region;
pub(crate) mod report;
pub(crate) mod sections;
pub(crate) mod supervise;
pub(crate) mod task;
pub(crate) mod worker;
