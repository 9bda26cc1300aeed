//! Maps across ranks (`sm_mpi_map`): the driver that runs on every rank's calling thread and
//! speaks to the other ranks through a [`transport::sm_transport`]. The protocol is in README.md
//! beside this file.

pub mod transport;

use crate::abi::{sm_reduce_fn, sm_status, sm_work_fn};
use crate::engine::launch::LaunchOptions;
use crate::engine::pool::Pool;
use crate::status::{Error, Result};
use std::ffi::{c_int, c_void};
use transport::sm_transport;

/// One call of `sm_mpi_map` / `sm_mpi_map_ex` on this rank.
pub struct RankMap<'a> {
    pub call: &'a str,
    /// None: this rank runs its jobs serially on the calling thread.
    pub pool: Option<&'a Pool>,
    pub root: c_int,
    pub njobs: u64,
    pub work: sm_work_fn,
    pub reduce: sm_reduce_fn,
    pub result_size: usize,
    pub ctx: *mut c_void,
    /// Whether options were given (part of the collective check).
    pub has_opts: bool,
    pub options: LaunchOptions,
}

/// Runs the map on this rank, collectively with the others.
pub fn map(_t: &sm_transport, m: &RankMap) -> Result<sm_status> {
    Err(Error::new(
        sm_status::SM_ERR_STATE,
        format!("{}: not built yet (issue 13)", m.call),
    ))
}
