//! The three ways of running a map's workers: forked processes (`process`), the pool's persistent
//! threads (`threads`), or the calling thread alone (`serial`).

pub(crate) mod persistent;
pub(crate) mod process;
pub(crate) mod serial;
pub(crate) mod threads;
