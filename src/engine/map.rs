//! One call of `sm_map`: pick how to run it, run it, and turn the outcome into a status and message.

use crate::config;
use crate::engine::backend::{process, serial};
use crate::engine::control::{
    Control, HookFailure, JobEnd, Misuse, MAX_JOBS, NO_JOB, STAGE_FINISHING,
};
use crate::engine::frame::{self, with_current};
use crate::engine::inner::{Plan, Workers};
use crate::engine::outcome::{Cause, Death, Outcome};
use crate::engine::pool::{Backend, Pool};
use crate::engine::progress::{Progress, ProgressFn};
use crate::engine::region::RegionFn;
use crate::engine::supervise::{with_hook_failures, CallerDuties, Reducer, WorkerHooks};
use crate::engine::task::{Body, JobFn, Task, WorkerFiniFn, WorkerInitFn};
use crate::status::{Error, Result, Status};
use crate::sys::interrupt::InterruptWatch;
use std::ffi::c_void;
use std::sync::atomic::Ordering;

pub struct MapRequest<'a> {
    /// The C function called (`sm_map`, `sm_map_ex`), for messages.
    pub call: &'a str,
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
    pub progress: Option<ProgressFn>,
    /// OpenMP/BLAS threads per worker: 0 default, -1 leave alone, n (see inner.rs).
    pub inner_threads: i32,
}

/// The largest result and per-worker result, in bytes: one limit for every backend, so that a size
/// is refused (SM_ERR_INVALID) or tried (and then maybe SM_ERR_NOMEM) the same way on each.
pub(crate) const MAX_RESULT_SIZE: usize = 1 << 32;

/// Refuses a result or per-worker result size above MAX_RESULT_SIZE.
fn check_result_sizes(result_size: usize, wresult_size: usize) -> Result<()> {
    for (name, size) in [("result_size", result_size), ("wresult_size", wresult_size)] {
        if size > MAX_RESULT_SIZE {
            return Err(Error::invalid(format!(
                "{name} = {size} is larger than the {MAX_RESULT_SIZE} bytes (SM_MAX_RESULT_SIZE) \
                 a result may have; return large data through sm_empty memory"
            )));
        }
    }
    Ok(())
}

/// Runs the map. Ok carries SM_OK or SM_STOPPED (with a message for the latter); every failure is
/// an Err.
pub fn run(pool: &Pool, req: &MapRequest) -> Result<(Status, Option<String>)> {
    let njobs = req.njobs as u64;
    if njobs > MAX_JOBS {
        return Err(Error::invalid(format!(
            "sm_map: njobs = {} is larger than the {MAX_JOBS} jobs (SM_MAX_JOBS) a map supports",
            req.njobs
        )));
    }
    check_result_sizes(req.result_size, req.options.wresult_size)?;
    let options = &req.options;
    let (mut task, hooks) =
        task_and_hooks(pool, Body::Jobs(req.work), req.ctx, options.chunk, options);
    let reducer = req.reduce.map(|reduce| Reducer {
        reduce,
        ctx: req.ctx,
    });
    let progress = Progress::new(options.progress, req.ctx, njobs);
    let progress = progress.as_ref();
    let mut completed = None;
    let outcome = if frame::in_job() {
        // A map inside a job runs serially in that worker, keeping its worker id.
        let worker = with_current(|f| f.map_or(0, |f| f.worker));
        let duties = CallerDuties {
            reducer,
            interrupt: None,
            progress,
        };
        serial::run(njobs, &task, req.result_size, worker, &hooks, duties)?
    } else if njobs == 0 {
        // Nothing to run: no fork, no thread wake-up, no signal handling to set up.
        pool.claim(req.call)?;
        if let Some(p) = progress {
            p.finish(0);
        }
        Outcome::Completed
    } else {
        let _busy = pool.claim(req.call)?;
        let interrupt = InterruptWatch::start();
        if pool.backend() == Backend::Serial || config::debug() {
            let duties = CallerDuties {
                reducer,
                interrupt: Some(&interrupt),
                progress,
            };
            task.inner = Plan::new(options.inner_threads, 1, Workers::Caller)?;
            let _counts = task.inner.as_ref().map(|plan| plan.enter_worker());
            serial::run(njobs, &task, req.result_size, 0, &hooks, duties)?
        } else {
            // Forked workers are started per map: never more than there are jobs.
            let n = match pool.threads() {
                Some(_) => pool.nworkers(),
                None => pool.nworkers().min(req.njobs),
            };
            if let Some(threads) = pool.threads() {
                threads.check_owner("sm_map")?;
            }
            let spare = pool.take_spare_mapping();
            let mut ctl = Control::new(
                njobs,
                n,
                req.result_size,
                reducer.is_some(),
                options.wresult_size,
                spare,
            )?;
            let duties = CallerDuties {
                reducer,
                interrupt: Some(&interrupt),
                progress,
            };
            if pool.threads().is_some() {
                ctl.interrupt_baseline = Some(interrupt.baseline());
            }
            task.inner = Plan::new(options.inner_threads, n, workers_of(pool))?;
            let outcome = match pool.threads() {
                Some(threads) => {
                    let _counts = task.inner.as_ref().map(|plan| plan.enter_caller());
                    Ok(threads.run(&ctl, &task, duties))
                }
                None => process::run(&ctl, &task, duties),
            }
            .map(|outcome| {
                // Workers that noticed the signal themselves stopped without the supervisor's help.
                let outcome = match interrupt.interrupted() {
                    Some(signal) if outcome.is_success() => Outcome::Interrupted {
                        signal,
                        death: None,
                    },
                    _ => outcome,
                };
                finish_workers(&ctl, outcome, &hooks, req.ctx)
            });
            completed = Some(ctl.completed());
            pool.keep_spare_mapping(ctl.into_mapping());
            outcome?
        }
    };
    interpret(outcome, njobs, completed, req.reduce.is_some())
}

/// What a map or region hands its workers (the task; its inner thread counts are set once the
/// backend is known) and what becomes of their per-worker results.
fn task_and_hooks(
    pool: &Pool,
    body: Body,
    ctx: *mut c_void,
    chunk: u64,
    options: &MapOptions,
) -> (Task, WorkerHooks) {
    let task = Task {
        body,
        ctx,
        pool: pool as *const Pool as usize,
        chunk,
        init: options.worker_init,
        fini: options.worker_fini,
        inner: None,
    };
    let hooks = WorkerHooks {
        wresult_size: options.wresult_size,
        worker_reduce: options.worker_reduce,
    };
    (task, hooks)
}

/// How a pool's parallel maps run their workers, for the inner thread counts.
fn workers_of(pool: &Pool) -> Workers {
    match pool.threads() {
        Some(_) => Workers::Threads,
        None => Workers::Forked,
    }
}

/// After the parallel workers of a map or region are done: a failed hook fails it, else
/// worker_reduce runs for every worker whose worker_fini succeeded, in worker order.
fn finish_workers(
    ctl: &Control,
    outcome: Outcome,
    hooks: &WorkerHooks,
    ctx: *mut c_void,
) -> Outcome {
    let outcome = with_hook_failures(ctl, outcome);
    let finished = (0..ctl.nworkers)
        .filter(|&w| ctl.worker(w).fini_done.load(Ordering::Acquire) == 1)
        .map(|w| (w, ctl.worker_result(w)));
    hooks.combine(outcome, ctx, finished)
}

/// Runs a parallel region (`sm_parallel`, `sm_parallel_ex`): every worker runs `region(ctx)` once,
/// as a member of one team, between the options' worker_init and worker_fini (the options' chunk
/// and progress are not used: the ffi refuses them). Ok carries SM_OK or SM_STOPPED (with a
/// message); every failure is an Err.
pub fn run_region(
    call: &str,
    pool: &Pool,
    region: RegionFn,
    ctx: *mut c_void,
    options: &MapOptions,
) -> Result<(Status, Option<String>)> {
    check_result_sizes(0, options.wresult_size)?;
    let (mut task, hooks) = task_and_hooks(pool, Body::Region(region), ctx, 0, options);
    let alone = |task: &Task, worker: i32, interrupt: Option<&InterruptWatch>| {
        let duties = CallerDuties {
            reducer: None,
            interrupt,
            progress: None,
        };
        serial::run(1, task, 0, worker, &hooks, duties)
    };
    let outcome = if frame::in_job() {
        // A region inside a job or region runs as a team of one in that worker, keeping its id.
        alone(&task, with_current(|f| f.map_or(0, |f| f.worker)), None)?
    } else {
        let _busy = pool.claim(call)?;
        let interrupt = InterruptWatch::start();
        if pool.backend() == Backend::Serial || config::debug() {
            task.inner = Plan::new(options.inner_threads, 1, Workers::Caller)?;
            let _counts = task.inner.as_ref().map(|plan| plan.enter_worker());
            alone(&task, 0, Some(&interrupt))?
        } else {
            if let Some(threads) = pool.threads() {
                threads.check_owner("sm_parallel")?;
            }
            let n = pool.nworkers();
            let spare = pool.take_spare_mapping();
            let mut ctl = Control::new(n as u64, n, 0, false, options.wresult_size, spare)?;
            ctl.is_region = true;
            ctl.oversubscribed = pool.oversubscribed();
            ctl.finish_on_stop = options.worker_fini.is_some()
                || options.worker_reduce.is_some()
                || options.wresult_size > 0;
            let duties = CallerDuties {
                reducer: None,
                interrupt: Some(&interrupt),
                progress: None,
            };
            task.inner = Plan::new(options.inner_threads, n, workers_of(pool))?;
            let outcome = match pool.threads() {
                Some(threads) => {
                    ctl.interrupt_baseline = Some(interrupt.baseline());
                    let _counts = task.inner.as_ref().map(|plan| plan.enter_caller());
                    Ok(threads.run_with_caller(&ctl, &task, duties))
                }
                None => process::run(&ctl, &task, duties),
            }
            .map(|outcome| {
                let outcome = match (first_region_failure(&ctl, outcome), interrupt.interrupted()) {
                    (o @ (Outcome::Interrupted { .. } | Outcome::WorkerDied(_)), _) => o,
                    (_, Some(signal)) => Outcome::Interrupted {
                        signal,
                        death: None,
                    },
                    (o, None) => o,
                };
                finish_workers(&ctl, outcome, &hooks, ctx)
            });
            pool.keep_spare_mapping(ctl.into_mapping());
            outcome?
        }
    };
    interpret_region(outcome)
}

/// A region reports the failure of the worker that stopped it first (the others' failures, if
/// any, came after and are likely consequences).
fn first_region_failure(ctl: &Control, outcome: Outcome) -> Outcome {
    if !matches!(
        outcome,
        Outcome::Completed | Outcome::StoppedByJob(_) | Outcome::JobFailed { .. }
    ) {
        return outcome;
    }
    let stopped_by = ctl.header().team.stopped_by.load(Ordering::SeqCst) as usize;
    if stopped_by == 0 {
        return outcome;
    }
    let w = stopped_by - 1;
    if let Some(failure) = HookFailure::unpack(ctl.worker(w).hook_failure.load(Ordering::Acquire)) {
        return Outcome::HookFailed { worker: w, failure };
    }
    match JobEnd::unpack(ctl.worker(w).failed_end.load(Ordering::Acquire)) {
        JobEnd::Stop => Outcome::StoppedByJob(w as u64),
        end => Outcome::JobFailed { job: w as u64, end },
    }
}

fn interpret_region(outcome: Outcome) -> Result<(Status, Option<String>)> {
    match outcome {
        Outcome::Completed => Ok((Status::SM_OK, None)),
        Outcome::StoppedByJob(w) => Ok((
            Status::SM_STOPPED,
            Some(format!(
                "sm_parallel stopped: the region returned SM_STOP in worker {w}; the region was \
                 stopped in every worker"
            )),
        )),
        Outcome::JobFailed { job: w, end } => Err(match end {
            JobEnd::Error(code) => Error::new(
                Status::SM_ERR_JOB,
                format!(
                    "sm_parallel: the region returned {code} in worker {w}; the region was \
                     stopped in every worker"
                ),
            ),
            JobEnd::HeldCritical(code) => Error::state(format!(
                "sm_parallel: the region returned {code} in worker {w} while still inside its \
                 critical section (sm_critical_leave missing); sharedmem released it"
            )),
            JobEnd::HeldOrdered(code) => Error::state(format!(
                "sm_parallel: the region returned {code} in worker {w} while still inside its \
                 ordered section (sm_ordered_leave missing)"
            )),
            JobEnd::BarrierBroken(left) => Error::state(format!(
                "sm_parallel: worker {w} waited at a barrier or work-shared loop that worker \
                 {left} never reached (it had returned from the region): every worker must reach \
                 the same barriers and loops, in the same order"
            )),
            JobEnd::Misuse(m) => Error::state(format!(
                "sm_parallel: worker {w} {}",
                match m {
                    Misuse::BarrierInCritical => {
                        "called sm_barrier inside its critical section (the others could never \
                         enter it to reach the barrier)"
                    }
                    Misuse::BarrierInOrdered => "called sm_barrier inside its ordered section",
                    Misuse::LoopInSection => {
                        "called sm_for_next inside its critical or ordered section"
                    }
                    Misuse::LoopChanged => {
                        "called sm_for_next with other arguments before its loop was over (run \
                         each loop until sm_for_next returns 0, with the same arguments)"
                    }
                    Misuse::LoopDiffers => {
                        "reached a work-shared loop that another worker reached with different \
                         arguments (every worker must run the same loops in the same order)"
                    }
                    Misuse::OrderedOutsideOrderedLoop => {
                        "called sm_ordered_enter outside a loop with SM_FOR_ORDERED"
                    }
                    Misuse::OrderedTwiceInIteration => {
                        "entered more ordered sections than its chunk has iterations (an \
                         iteration enters at most one)"
                    }
                    Misuse::BadLoopArguments => {
                        "called sm_for_next with invalid arguments (schedule, flags, NULL lo/hi, \
                         or more than 2^62 iterations)"
                    }
                }
            )),
            JobEnd::Done | JobEnd::Stop => unreachable!("not a failure"),
        }),
        Outcome::WorkerDied(d) => Err(Error::new(
            Status::SM_ERR_WORKER_DIED,
            format!(
                "sm_parallel: worker {} (pid {}) {} {}; the other workers were stopped",
                d.worker,
                d.pid,
                describe_cause(d.cause),
                match d.stage {
                    0 => "in worker_init",
                    STAGE_FINISHING => "in worker_fini",
                    _ => "inside the parallel region",
                }
            ),
        )),
        Outcome::HookFailed { worker, failure } => {
            Err(hook_failure_error(worker, failure, "region"))
        }
        Outcome::StoppedByWorkerReduce { worker, code } => Ok((
            Status::SM_STOPPED,
            Some(format!(
                "sm_parallel stopped: worker_reduce returned {code} for worker {worker}"
            )),
        )),
        Outcome::Interrupted { signal, death } => Err(Error::new(
            Status::SM_ERR_INTERRUPTED,
            match death {
                Some(d) => format!(
                    "sm_parallel interrupted: worker {} (pid {}) {}; all workers were stopped",
                    d.worker,
                    d.pid,
                    describe_cause(d.cause)
                ),
                None => format!(
                    "sm_parallel interrupted by {}: the region was stopped in every worker",
                    signal_name(signal)
                ),
            },
        )),
        other => unreachable!("a region does not end with {other:?}"),
    }
}

/// `completed`: how many jobs ran to their end, when the map ran on parallel workers;
/// `reduced`: whether the map had a reduce callback (messages say what happened to the results).
fn interpret(
    outcome: Outcome,
    njobs: u64,
    completed: Option<u64>,
    reduced: bool,
) -> Result<(Status, Option<String>)> {
    let and_reduced = if reduced { " (and was reduced)" } else { "" };
    match outcome {
        Outcome::Completed => Ok((Status::SM_OK, None)),
        Outcome::StoppedByJob(job) => Ok((
            Status::SM_STOPPED,
            Some(if reduced {
                format!(
                    "sm_map stopped: job {job} returned SM_STOP (it and every job before it were \
                     reduced)"
                )
            } else {
                format!(
                    "sm_map stopped: job {job} returned SM_STOP (it and every job before it \
                     completed)"
                )
            }),
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
                    "job {job} failed: work() returned {code}; every job before it completed{and_reduced}"
                ),
            ),
            JobEnd::Misuse(_) | JobEnd::BarrierBroken(_) => {
                unreachable!("region constructs fail regions, not map jobs")
            }
            JobEnd::Done | JobEnd::Stop => unreachable!("not a failure"),
        }),
        Outcome::WorkerDied(d) => Err(Error::new(
            Status::SM_ERR_WORKER_DIED,
            match d.job.or((d.lost_from != NO_JOB).then_some(d.lost_from)) {
                Some(first_lost) => format!(
                    "{}; every job before {first_lost} completed{and_reduced}; the other \
                     workers were stopped",
                    describe_death(&d)
                ),
                None => match completed {
                    Some(done) if done < njobs => format!(
                        "{}; it held no job, but no worker was left to run the rest: {done} of \
                         {njobs} jobs completed",
                        describe_death(&d)
                    ),
                    _ => format!(
                        "{}; it held no job, and the other workers completed every job",
                        describe_death(&d)
                    ),
                },
            },
        )),
        Outcome::StoppedByWorkerReduce { worker, code } => Ok((
            Status::SM_STOPPED,
            Some(format!(
                "sm_map stopped: worker_reduce returned {code} for worker {worker}"
            )),
        )),
        Outcome::HookFailed { worker, failure } => Err(hook_failure_error(worker, failure, "map")),
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

/// A failed worker_init/worker_fini of a map or region (`what`).
fn hook_failure_error(worker: usize, failure: HookFailure, what: &str) -> Error {
    Error::new(
        Status::SM_ERR_JOB,
        match failure {
            HookFailure::Init(code) => {
                format!("worker_init returned {code} in worker {worker}; the {what} was stopped")
            }
            HookFailure::Fini(code) => format!(
                "worker_fini returned {code} in worker {worker}; no worker result was reduced"
            ),
            HookFailure::InitLeftSection => format!(
                "worker_init returned in worker {worker} while still inside its critical or \
                 ordered section; sharedmem closed it and stopped the {what}"
            ),
            HookFailure::FiniLeftSection => format!(
                "worker_fini returned in worker {worker} while still inside its critical or \
                 ordered section; sharedmem closed it, and no worker result was reduced"
            ),
        },
    )
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
