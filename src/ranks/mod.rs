//! Maps across ranks (`sm_mpi_map`): the driver that runs on every rank's calling thread and
//! speaks to the other ranks through a [`transport::sm_transport`]. The protocol is in README.md
//! beside this file: check.rs (the collective check), driver.rs (a rank's side), root.rs
//! (root's side), link.rs (the messages).

mod check;
mod driver;
mod link;
mod root;
pub mod sort;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod sort_tests;
pub mod transport;

use crate::abi::{sm_reduce_fn, sm_status, sm_work_fn};
use crate::engine::control::MAX_JOBS;
use crate::engine::frame;
use crate::engine::launch::{self, Launch, LaunchOptions, Work, MAX_RESULT_SIZE};
use crate::engine::pool::{Backend, Pool};
use crate::engine::progress::Progress;
use crate::last_error;
use crate::status::{Error, Result, Status};
use driver::Driver;
use link::Link;
use root::Root;
use std::ffi::{c_int, c_void, CStr};
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

/// Runs the map on this rank, collectively with the others: SM_OK, or SM_STOPPED (its message
/// in last_error), or the failure, the same on every rank.
pub fn map(t: &sm_transport, m: &RankMap) -> Result<sm_status> {
    let call = m.call;
    let link = open(t, call)?;
    let refusal = refusal(t, m);
    let agreed = check::agree(&link, m, refusal.as_ref())?;
    let (status, message) = run(&link, m, &agreed)?;
    match status {
        Status::SM_OK => Ok(status),
        Status::SM_STOPPED => {
            last_error::set(status, message.as_deref().unwrap_or(""));
            Ok(status)
        }
        _ => Err(Error::new(status, message.unwrap_or_default())),
    }
}

/// The link of one collective call, or the error of a rank that cannot take part at all (called
/// from a job, no communicator): that rank fails alone, at once, as nothing collective can be
/// done.
fn open<'a>(t: &'a sm_transport, call: &'a str) -> Result<Link<'a>> {
    if frame::in_job() {
        return Err(Error::state(format!(
            "{call}: called from inside a job; workers must not call MPI (call it from the \
             rank's own thread)"
        )));
    }
    if t.comm.is_null() {
        let why = if t.refusal.is_null() {
            "no communicator".into()
        } else {
            // SAFETY: a non-NULL refusal is a NUL-terminated message (the transport's contract).
            unsafe { CStr::from_ptr(t.refusal) }.to_string_lossy()
        };
        return Err(Error::state(format!("{call}: {why}")));
    }
    if t.nranks < 1 || t.rank < 0 || t.rank >= t.nranks {
        return Err(Error::invalid(format!(
            "{call}: the transport says rank {} of {}",
            t.rank, t.nranks
        )));
    }
    Ok(Link::new(t, call))
}

/// Why this rank cannot take part, found before the collective check (which then fails every
/// rank): the transport's refusal (SM_ERR_STATE), arguments no rank could run (SM_ERR_INVALID),
/// or a pool busy with another map (SM_ERR_STATE).
fn refusal(t: &sm_transport, m: &RankMap) -> Option<Error> {
    if !t.refusal.is_null() {
        // SAFETY: as in `map`.
        let why = unsafe { CStr::from_ptr(t.refusal) }
            .to_string_lossy()
            .into_owned();
        return Some(Error::state(why));
    }
    if m.work.is_none() {
        return Some(Error::invalid("work is NULL"));
    }
    if m.njobs > MAX_JOBS {
        return Some(Error::invalid(format!(
            "njobs = {} is larger than the {MAX_JOBS} jobs (SM_MAX_JOBS) a map supports",
            m.njobs
        )));
    }
    for (name, size) in [
        ("result_size", m.result_size),
        ("wresult_size", m.options.wresult_size),
    ] {
        if size > MAX_RESULT_SIZE {
            return Some(Error::invalid(format!(
                "{name} = {size} is larger than the {MAX_RESULT_SIZE} bytes (SM_MAX_RESULT_SIZE) \
                 a result may have"
            )));
        }
    }
    if m.pool.is_some_and(|p| p.is_busy()) {
        return Some(Error::state("the pool is running another map"));
    }
    None
}

fn run(link: &Link, m: &RankMap, agreed: &check::Agreed) -> Result<(Status, Option<String>)> {
    let me = link.rank();
    let is_root = me == agreed.root;
    let progress = is_root
        .then(|| Progress::new(m.options.progress, m.ctx, m.njobs))
        .flatten();
    if m.njobs == 0 {
        if let Some(p) = &progress {
            p.finish(0);
        }
        return Ok((Status::SM_OK, None));
    }
    // A NULL pool runs this rank's jobs serially on the calling thread.
    let serial;
    let pool = match m.pool {
        Some(pool) => pool,
        None => {
            serial = Pool::new(1, Backend::Serial)?;
            &serial
        }
    };
    let root_side = is_root.then(|| {
        Root::new(
            m.call,
            link.nranks(),
            me,
            m.njobs,
            m.result_size,
            m.reduce.filter(|_| agreed.root_reduces).map(|r| (r, m.ctx)),
            progress,
        )
    });
    let driver = Driver::new(
        link,
        m,
        agreed.root,
        pool.nworkers(),
        agreed.root_reduces,
        root_side,
    );
    // A rank that got no job still runs its workers when they have per-worker work to do:
    // worker_init and worker_fini run in every worker of every rank, and root's worker_reduce
    // gets every worker's result, numbered across the ranks.
    let per_worker = m.options.worker_init.is_some()
        || m.options.worker_fini.is_some()
        || m.options.wresult_size > 0;
    let ran = if driver.first_grant()? || per_worker {
        let options = LaunchOptions {
            progress: None,
            worker_reduce: m
                .options
                .worker_reduce
                .filter(|_| agreed.root_worker_reduces),
            ..m.options.clone()
        };
        let request = Launch {
            call: &driver.label,
            work: Work::Fed {
                work: m.work.expect("checked by every rank"),
                reducer: agreed.root_reduces.then(|| driver.reducer()),
                result_size: m.result_size,
                feeder: &driver,
            },
            ctx: m.ctx,
            options,
        };
        Some(launch::launch_fed(pool, &request))
    } else {
        None
    };
    driver.finish(ran, m.njobs)?;
    driver.conclude(m.options.worker_reduce.map(|f| (f, m.ctx)))
}
