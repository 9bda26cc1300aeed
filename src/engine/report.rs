//! How a launch ended, in words: the status and message that `sm_map`, `sm_map_ex`,
//! `sm_parallel` and `sm_parallel_ex` return, each message starting with the function called.

use crate::engine::control::{HookFailure, JobEnd, Misuse, MAX_JOBS, NO_JOB, STAGE_FINISHING};
use crate::engine::launch::{Launch, Work};
use crate::engine::outcome::{Cause, Death, Outcome};
use crate::engine::supervise::KeptResult;
use crate::status::{Error, Result, Status};

/// How the workers of a launch ended.
pub struct Ran {
    pub outcome: Outcome,
    /// How many jobs ran to their end, when a map ran on parallel workers.
    pub completed: Option<u64>,
    /// How many workers ran (1 when serial).
    pub nworkers: usize,
    /// A fed map's per-worker results (worker, bytes), of the workers whose worker_fini
    /// succeeded, in worker order, when it has a worker_reduce (which its feeder's owner calls).
    pub kept: Vec<KeptResult>,
}

/// SM_OK, or SM_STOPPED with a message, or the failure.
pub fn status_and_message(launch: &Launch, ran: Ran) -> Result<(Status, Option<String>)> {
    let call = launch.call;
    match launch.work {
        Work::Jobs { njobs, reduce, .. } => map_status(
            call,
            ran.outcome,
            njobs as u64,
            ran.completed,
            reduce.is_some(),
        ),
        Work::Fed { reducer, .. } => map_status(
            call,
            ran.outcome,
            MAX_JOBS,
            ran.completed,
            reducer.is_some(),
        ),
        Work::Region(_) => said(region_ended(call, ran.outcome)),
    }
}

/// How a map of `njobs` jobs ended, as `sm_map` reports it (`completed`: jobs that ran to their
/// end, when known; `reduced`: whether it had a reduce). Maps across ranks report through it too,
/// with global job numbers and the rank in `call`.
pub fn map_status(
    call: &str,
    outcome: Outcome,
    njobs: u64,
    completed: Option<u64>,
    reduced: bool,
) -> Result<(Status, Option<String>)> {
    said(map_ended(call, outcome, njobs, completed, reduced))
}

fn said(said: Said) -> Result<(Status, Option<String>)> {
    match said {
        Said::Ok => Ok((Status::SM_OK, None)),
        Said::Stopped(message) => Ok((Status::SM_STOPPED, Some(message))),
        Said::Failed(status, message) => Err(Error::new(status, message)),
    }
}

enum Said {
    Ok,
    Stopped(String),
    Failed(Status, String),
}

/// `reduced`: whether the map had a reduce callback (messages say what happened to the results).
fn map_ended(
    call: &str,
    outcome: Outcome,
    njobs: u64,
    completed: Option<u64>,
    reduced: bool,
) -> Said {
    let and_reduced = if reduced { " (and was reduced)" } else { "" };
    match outcome {
        Outcome::Completed => Said::Ok,
        Outcome::StoppedByJob(job) => Said::Stopped(format!(
            "{call} stopped: job {job} returned SM_STOP (it and every job before it {})",
            if reduced { "were reduced" } else { "completed" }
        )),
        Outcome::StoppedByReduce { job, code } => Said::Stopped(format!(
            "{call} stopped: reduce returned {code} for job {job}"
        )),
        Outcome::JobFailed { job, end } => match end {
            JobEnd::HeldCritical(code) => Said::Failed(
                Status::SM_ERR_STATE,
                format!(
                    "{call}: job {job} returned {code} while still inside its critical section \
                     (sm_critical_leave missing); sharedmem released it and stopped the map"
                ),
            ),
            JobEnd::HeldOrdered(code) => Said::Failed(
                Status::SM_ERR_STATE,
                format!(
                    "{call}: job {job} returned {code} while still inside its ordered section \
                     (sm_ordered_leave missing); sharedmem left it and stopped the map"
                ),
            ),
            JobEnd::Error(code) => Said::Failed(
                Status::SM_ERR_JOB,
                format!(
                    "{call}: job {job} failed: work() returned {code}; every job before it \
                     completed{and_reduced}"
                ),
            ),
            JobEnd::Misuse(_) | JobEnd::BarrierBroken(_) => {
                unreachable!("region constructs fail regions, not map jobs")
            }
            JobEnd::Done | JobEnd::Stop => unreachable!("not a failure"),
        },
        Outcome::WorkerDied(d) => Said::Failed(
            Status::SM_ERR_WORKER_DIED,
            match d.job.or((d.lost_from != NO_JOB).then_some(d.lost_from)) {
                Some(first_lost) => format!(
                    "{call}: {}; every job before {first_lost} completed{and_reduced}; the other \
                     workers were stopped",
                    describe_death(&d)
                ),
                None => match completed {
                    Some(done) if done < njobs => format!(
                        "{call}: {}; it held no job, but no worker was left to run the rest: \
                         {done} of {njobs} jobs completed",
                        describe_death(&d)
                    ),
                    _ => format!(
                        "{call}: {}; it held no job, and the other workers completed every job",
                        describe_death(&d)
                    ),
                },
            },
        ),
        Outcome::StoppedByWorkerReduce { worker, code } => Said::Stopped(format!(
            "{call} stopped: worker_reduce returned {code} for worker {worker}"
        )),
        Outcome::HookFailed { worker, failure } => hook_failed(call, worker, failure, "map"),
        Outcome::Interrupted { signal, death } => Said::Failed(
            Status::SM_ERR_INTERRUPTED,
            match death {
                Some(d) => format!(
                    "{call} interrupted: {}; all workers were stopped",
                    describe_death(&d)
                ),
                None => format!(
                    "{call} interrupted by {}: no new job was started, all workers were stopped",
                    signal_name(signal)
                ),
            },
        ),
    }
}

fn region_ended(call: &str, outcome: Outcome) -> Said {
    match outcome {
        Outcome::Completed => Said::Ok,
        Outcome::StoppedByJob(w) => Said::Stopped(format!(
            "{call} stopped: the region returned SM_STOP in worker {w}; the region was stopped \
             in every worker"
        )),
        Outcome::JobFailed { job: w, end } => {
            let state =
                |what: String| Said::Failed(Status::SM_ERR_STATE, format!("{call}: {what}"));
            match end {
                JobEnd::Error(code) => Said::Failed(
                    Status::SM_ERR_JOB,
                    format!(
                        "{call}: the region returned {code} in worker {w}; the region was \
                         stopped in every worker"
                    ),
                ),
                JobEnd::HeldCritical(code) => state(format!(
                    "the region returned {code} in worker {w} while still inside its critical \
                     section (sm_critical_leave missing); sharedmem released it"
                )),
                JobEnd::HeldOrdered(code) => state(format!(
                    "the region returned {code} in worker {w} while still inside its ordered \
                     section (sm_ordered_leave missing)"
                )),
                JobEnd::BarrierBroken(left) => state(format!(
                    "worker {w} waited at a barrier or work-shared loop that worker {left} \
                     never reached (it had returned from the region): every worker must reach \
                     the same barriers and loops, in the same order"
                )),
                JobEnd::Misuse(m) => state(format!("worker {w} {}", describe_misuse(m))),
                JobEnd::Done | JobEnd::Stop => unreachable!("not a failure"),
            }
        }
        Outcome::WorkerDied(d) => Said::Failed(
            Status::SM_ERR_WORKER_DIED,
            format!(
                "{call}: worker {} (pid {}) {} {}; the other workers were stopped",
                d.worker,
                d.pid,
                describe_cause(d.cause),
                match d.stage {
                    0 => "in worker_init",
                    STAGE_FINISHING => "in worker_fini",
                    _ => "inside the parallel region",
                }
            ),
        ),
        Outcome::HookFailed { worker, failure } => hook_failed(call, worker, failure, "region"),
        Outcome::StoppedByWorkerReduce { worker, code } => Said::Stopped(format!(
            "{call} stopped: worker_reduce returned {code} for worker {worker}"
        )),
        Outcome::Interrupted { signal, death } => Said::Failed(
            Status::SM_ERR_INTERRUPTED,
            match death {
                Some(d) => format!(
                    "{call} interrupted: worker {} (pid {}) {}; all workers were stopped",
                    d.worker,
                    d.pid,
                    describe_cause(d.cause)
                ),
                None => format!(
                    "{call} interrupted by {}: the region was stopped in every worker",
                    signal_name(signal)
                ),
            },
        ),
        Outcome::StoppedByReduce { .. } => unreachable!("a region has no reduce"),
    }
}

fn describe_misuse(m: Misuse) -> &'static str {
    match m {
        Misuse::BarrierInCritical => {
            "called sm_barrier inside its critical section (the others could never enter it to \
             reach the barrier)"
        }
        Misuse::BarrierInOrdered => "called sm_barrier inside its ordered section",
        Misuse::LoopInSection => "called sm_for_next inside its critical or ordered section",
        Misuse::LoopChanged => {
            "called sm_for_next with other arguments before its loop was over (run each loop \
             until sm_for_next returns 0, with the same arguments)"
        }
        Misuse::LoopDiffers => {
            "reached a work-shared loop that another worker reached with different arguments \
             (every worker must run the same loops in the same order)"
        }
        Misuse::OrderedOutsideOrderedLoop => {
            "called sm_ordered_enter outside a loop with SM_FOR_ORDERED"
        }
        Misuse::OrderedTwiceInIteration => {
            "entered more ordered sections than its chunk has iterations (an iteration enters at \
             most one)"
        }
        Misuse::BadLoopArguments => {
            "called sm_for_next with invalid arguments (schedule, flags, NULL lo/hi, or more \
             than 2^62 iterations)"
        }
    }
}

/// A failed worker_init/worker_fini of a map or region (`what`).
fn hook_failed(call: &str, worker: usize, failure: HookFailure, what: &str) -> Said {
    let message = match failure {
        HookFailure::Init(code) => {
            format!("worker_init returned {code} in worker {worker}; the {what} was stopped")
        }
        HookFailure::Fini(code) => {
            format!("worker_fini returned {code} in worker {worker}; no worker result was reduced")
        }
        HookFailure::InitLeftSection => format!(
            "worker_init returned in worker {worker} while still inside its critical or ordered \
             section; sharedmem closed it and stopped the {what}"
        ),
        HookFailure::FiniLeftSection => format!(
            "worker_fini returned in worker {worker} while still inside its critical or ordered \
             section; sharedmem closed it, and no worker result was reduced"
        ),
    };
    Said::Failed(Status::SM_ERR_JOB, format!("{call}: {message}"))
}

fn describe_cause(cause: Cause) -> String {
    match cause {
        Cause::Signal(sig) => format!("was killed by signal {sig} ({})", signal_name(sig)),
        Cause::Exit(code) => format!("exited with status {code}"),
        Cause::Vanished => {
            "disappeared (reaped by someone else: is SIGCHLD ignored or reaped by the caller?)"
                .to_string()
        }
    }
}

fn describe_death(d: &Death) -> String {
    let how = describe_cause(d.cause);
    let when = match d.job {
        Some(job) => format!("while running job {job}"),
        None if d.lost_from == NO_JOB && d.stage == STAGE_FINISHING => {
            "after its last job (in worker_fini)".to_string()
        }
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
