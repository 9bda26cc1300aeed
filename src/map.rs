//! One call of `sm_map`: pick how to run it, run it, and turn the outcome into a status and message.

use crate::config;
use crate::control::{Control, HookFailure, JobEnd, MAX_JOBS, NO_JOB};
use crate::frame::{self, with_current};
use crate::interrupt::InterruptWatch;
use crate::pool::{Backend, Pool};
use crate::status::{Error, Result, Status};
use crate::supervise::{with_hook_failures, Cause, Death, Outcome, Reducer};
use crate::worker::{JobFn, Task, WorkerFiniFn, WorkerHooks, WorkerInitFn};
use crate::{process, serial};
use std::ffi::c_void;
use std::sync::atomic::Ordering;

pub struct MapRequest {
    pub njobs: usize,
    pub work: JobFn,
    pub reduce: Option<JobFn>,
    pub result_size: usize,
    pub ctx: *mut c_void,
    pub options: MapOptions,
}

/// What `sm_map_ex` adds to `sm_map`.
#[derive(Default)]
pub struct MapOptions {
    /// Jobs claimed at a time; 0 = adaptive.
    pub chunk: u64,
    pub worker_init: Option<WorkerInitFn>,
    pub worker_fini: Option<WorkerFiniFn>,
    pub worker_reduce: Option<WorkerFiniFn>,
    pub wresult_size: usize,
}

/// Runs the map. Ok carries SM_OK or SM_STOPPED (with a message for the latter); every failure is
/// an Err.
pub fn run(pool: &Pool, req: &MapRequest) -> Result<(Status, Option<String>)> {
    let njobs = req.njobs as u64;
    if njobs > MAX_JOBS {
        return Err(Error::invalid(format!(
            "sm_map: njobs = {} is larger than the {MAX_JOBS} jobs a map supports",
            req.njobs
        )));
    }
    let options = &req.options;
    let task = Task {
        work: req.work,
        ctx: req.ctx,
        pool: pool as *const Pool as usize,
        chunk: options.chunk,
        init: options.worker_init,
        fini: options.worker_fini,
    };
    let hooks = WorkerHooks {
        wresult_size: options.wresult_size,
        worker_reduce: options.worker_reduce,
    };
    let reducer = req.reduce.map(|reduce| Reducer {
        reduce,
        ctx: req.ctx,
    });
    let outcome = if frame::in_job() {
        // A map inside a job runs serially in that worker, keeping its worker id.
        let worker = with_current(|f| f.map_or(0, |f| f.worker));
        serial::run(njobs, &task, reducer, req.result_size, worker, None, &hooks)?
    } else if njobs == 0 {
        // Nothing to run: no fork, no thread wake-up, no signal handling to set up.
        pool.claim()?;
        Outcome::Completed
    } else {
        let _busy = pool.claim()?;
        let interrupt = InterruptWatch::start();
        if pool.backend() == Backend::Serial || config::debug() {
            serial::run(
                njobs,
                &task,
                reducer,
                req.result_size,
                0,
                Some(&interrupt),
                &hooks,
            )?
        } else {
            // Forked workers are started per map: never more than there are jobs.
            let n = match pool.threads() {
                Some(_) => pool.nworkers(),
                None => pool.nworkers().min(req.njobs),
            };
            if let Some(threads) = pool.threads() {
                threads.check_owner()?;
            }
            let spare = pool.take_spare_region();
            let ctl = Control::new(
                njobs,
                n,
                req.result_size,
                reducer.is_some(),
                options.wresult_size,
                spare,
            )?;
            let outcome = match pool.threads() {
                Some(threads) => Ok(threads.run(&ctl, &task, reducer, &interrupt)),
                None => process::run(&ctl, &task, reducer, &interrupt),
            }
            .map(|outcome| {
                let outcome = with_hook_failures(&ctl, outcome);
                let finished = (0..ctl.nworkers)
                    .filter(|&w| ctl.worker(w).fini_done.load(Ordering::Acquire) == 1)
                    .map(|w| (w, ctl.worker_result(w)));
                hooks.combine(outcome, req.ctx, finished)
            });
            pool.keep_spare_region(ctl.into_region());
            outcome?
        }
    };
    interpret(outcome)
}

fn interpret(outcome: Outcome) -> Result<(Status, Option<String>)> {
    match outcome {
        Outcome::Completed => Ok((Status::SM_OK, None)),
        Outcome::StoppedByJob(job) => Ok((
            Status::SM_STOPPED,
            Some(format!(
                "sm_map stopped: job {job} returned SM_STOP (it and every job before it were reduced)"
            )),
        )),
        Outcome::StoppedByReduce { job, code } => Ok((
            Status::SM_STOPPED,
            Some(format!(
                "sm_map stopped: reduce returned {code} for job {job}"
            )),
        )),
        Outcome::JobFailed { job, end } => Err(match end {
            JobEnd::HeldCritical(code) => Error::state(format!(
                "job {job} returned {code} while still inside its critical section (sm_critical_leave \
                 missing); sharedmem released it and stopped the map"
            )),
            JobEnd::HeldOrdered(code) => Error::state(format!(
                "job {job} returned {code} while still inside its ordered section (sm_ordered_leave \
                 missing); sharedmem left it and stopped the map"
            )),
            JobEnd::Error(code) => Error::new(
                Status::SM_ERR_JOB,
                format!(
                    "job {job} failed: work() returned {code}; every job before it completed (and was reduced)"
                ),
            ),
            JobEnd::Done | JobEnd::Stop => unreachable!("not a failure"),
        }),
        Outcome::WorkerDied(d) => Err(Error::new(
            Status::SM_ERR_WORKER_DIED,
            match d.job.or((d.lost_from != NO_JOB).then_some(d.lost_from)) {
                Some(first_lost) => format!(
                    "{}; every job before {first_lost} completed (and was reduced); the other \
                     workers were stopped",
                    describe_death(&d)
                ),
                None => format!(
                    "{}; it had taken no job, and the other workers completed every job",
                    describe_death(&d)
                ),
            },
        )),
        Outcome::StoppedByWorkerReduce { worker, code } => Ok((
            Status::SM_STOPPED,
            Some(format!(
                "sm_map stopped: worker_reduce returned {code} for worker {worker}"
            )),
        )),
        Outcome::HookFailed { worker, failure } => Err(Error::new(
            Status::SM_ERR_JOB,
            match failure {
                HookFailure::Init(code) => format!(
                    "worker_init returned {code} in worker {worker}; the map was stopped"
                ),
                HookFailure::Fini(code) => format!(
                    "worker_fini returned {code} in worker {worker}; no worker result was reduced"
                ),
                HookFailure::InitLeftSection => format!(
                    "worker_init returned in worker {worker} while still inside its critical or \
                     ordered section; sharedmem closed it and stopped the map"
                ),
                HookFailure::FiniLeftSection => format!(
                    "worker_fini returned in worker {worker} while still inside its critical or \
                     ordered section; sharedmem closed it, and no worker result was reduced"
                ),
            },
        )),
        Outcome::Interrupted { signal, death } => Err(Error::new(
            Status::SM_ERR_INTERRUPTED,
            match death {
                Some(d) => format!(
                    "sm_map interrupted: {}; all workers were stopped",
                    describe_death(&d)
                ),
                None => format!(
                    "sm_map interrupted by {}: no new job was started, all workers were stopped",
                    signal_name(signal)
                ),
            },
        )),
    }
}

fn describe_death(d: &Death) -> String {
    let how = match d.cause {
        Cause::Signal(sig) => format!("was killed by signal {sig} ({})", signal_name(sig)),
        Cause::Exit(code) => format!("exited with status {code}"),
        Cause::Vanished => {
            "disappeared (reaped by someone else: is SIGCHLD ignored or reaped by the \
                            caller?)"
                .to_string()
        }
    };
    let when = match d.job {
        Some(job) => format!("while running job {job}"),
        None if d.lost_from == NO_JOB => "before taking a job".to_string(),
        None => format!("between jobs (jobs from {} on did not run)", d.lost_from),
    };
    format!("worker {} (pid {}) {how} {when}", d.worker, d.pid)
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "unnamed signal",
    }
}
