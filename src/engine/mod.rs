//! The engine: pools, launching a map or region, the workers' loop, the caller's supervision,
//! sections and regions, and the three ways of running workers (`backend/`). Above the system
//! wrappers (`crate::sys`), below the C boundary (`crate::ffi`), which it never imports
//! (tests/layers.rs). README.md beside this file explains the protocols.

pub mod backend;
pub mod control;
pub mod frame;
pub mod inner;
pub mod launch;
pub mod outcome;
pub mod pool;
pub mod progress;
pub mod region;
pub mod report;
pub mod sections;
pub mod supervise;
pub mod task;
pub mod worker;
