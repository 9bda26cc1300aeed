//! One launch: `sm_map`, `sm_map_ex`, `sm_parallel` and `sm_parallel_ex` all run here. It checks
//! the request, claims the pool, watches for interrupts, picks how the workers run (serially in
//! the caller, on the pool's threads, or on forked processes), builds the control block, runs the
//! backend, settles the outcome, and hands it to report.rs for the status and message. A new
//! option is added once, here.

use crate::config;
use crate::engine::backend::{process, serial};
use crate::engine::control::{Control, HookFailure, JobEnd, MAX_JOBS};
use crate::engine::feed::Feeder;
use crate::engine::frame::{self, with_current};
use crate::engine::inner::{Plan, Workers};
use crate::engine::outcome::Outcome;
use crate::engine::pool::{Backend, Pool};
use crate::engine::progress::Progress;
use crate::engine::report::{self, Ran};
use crate::engine::supervise::{with_hook_failures, CallerDuties, Reducer, WorkerHooks};
use crate::engine::task::{
    check_ctx_size, Body, CtxCopy, JobFn, ProgressFn, RegionFn, Task, WorkerFiniFn, WorkerInitFn,
};
use crate::status::{Error, Result, Status};
use crate::sys::interrupt::InterruptWatch;
use std::ffi::c_void;
use std::sync::atomic::Ordering;

/// What the workers are to run.
#[derive(Clone, Copy)]
pub enum Work<'a> {
    /// A map: `work(ctx, job, result)` for every job in [0, njobs), each completed job's result
    /// handed to `reduce` (if any) on the caller in job order.
    Jobs {
        njobs: usize,
        work: JobFn,
        reduce: Option<JobFn>,
        result_size: usize,
    },
    /// A parallel region: `region(ctx)` once in every worker, as one team.
    Region(RegionFn),
    /// A fed map (feed.rs): `work(ctx, job, result)` for the global jobs `feeder` feeds while the
    /// map runs; `reducer` gets each completed job's result on the caller, in local order, under
    /// its local number. The launch returns its outcome in local numbers, and keeps the workers'
    /// results for the feeder's owner instead of calling worker_reduce.
    Fed {
        work: JobFn,
        reducer: Option<Reducer>,
        result_size: usize,
        feeder: &'a dyn Feeder,
    },
}

/// One call of a launching export.
pub struct Launch<'a> {
    /// The C function called (`sm_map`, `sm_map_ex`, `sm_parallel`, `sm_parallel_ex`): every
    /// message of the launch starts with it.
    pub call: &'a str,
    pub work: Work<'a>,
    pub ctx: *mut c_void,
    pub options: LaunchOptions,
}

/// What the `_ex` calls add (`sm_map_opts`); zero for the plain ones. A region takes no chunk and
/// no progress (the C boundary refuses them).
#[derive(Default, Clone)]
pub struct LaunchOptions {
    /// Jobs claimed at a time; 0 = adaptive.
    pub chunk: u64,
    pub worker_init: Option<WorkerInitFn>,
    pub worker_fini: Option<WorkerFiniFn>,
    pub worker_reduce: Option<WorkerFiniFn>,
    pub wresult_size: usize,
    pub progress: Option<ProgressFn>,
    /// OpenMP/BLAS threads per worker: 0 default, -1 leave alone, n (see inner.rs).
    pub inner_threads: i32,
    /// Bytes at ctx the workers get a copy of, taken at the start (0: ctx itself).
    pub ctx_size: usize,
}

/// The largest result and per-worker result, in bytes: one limit for every backend, so that a size
/// is refused (SM_ERR_INVALID) or tried (and then maybe SM_ERR_NOMEM) the same way on each.
pub(crate) const MAX_RESULT_SIZE: usize = crate::abi::SM_MAX_RESULT_SIZE as usize;

/// Runs the launch. Ok carries SM_OK or SM_STOPPED (with a message for the latter); every failure
/// is an Err. Every message starts with `launch.call`.
pub fn launch(pool: &Pool, launch: &Launch) -> Result<(Status, Option<String>)> {
    let ran = run(pool, launch).map_err(|e| e.in_call(launch.call))?;
    report::status_and_message(launch, ran)
}

/// Runs a fed map (`Work::Fed`) and returns how it ended, in local job numbers, for its feeder's
/// owner to report. Errs (with `launch.call` in the message) only when it could not run.
pub fn launch_fed(pool: &Pool, launch: &Launch) -> Result<Ran> {
    debug_assert!(matches!(launch.work, Work::Fed { .. }));
    run(pool, launch).map_err(|e| e.in_call(launch.call))
}

impl Launch<'_> {
    /// The jobs of a map; None for a region, or a fed map (whose jobs are not known).
    fn njobs(&self) -> Option<u64> {
        match self.work {
            Work::Jobs { njobs, .. } => Some(njobs as u64),
            Work::Region(_) | Work::Fed { .. } => None,
        }
    }

    fn result_size(&self) -> usize {
        match self.work {
            Work::Jobs { result_size, .. } | Work::Fed { result_size, .. } => result_size,
            Work::Region(_) => 0,
        }
    }

    fn feeder(&self) -> Option<&dyn Feeder> {
        match self.work {
            Work::Fed { feeder, .. } => Some(feeder),
            _ => None,
        }
    }

    fn check(&self) -> Result<()> {
        if let Some(njobs) = self.njobs().filter(|&n| n > MAX_JOBS) {
            return Err(Error::invalid(format!(
                "njobs = {njobs} is larger than the {MAX_JOBS} jobs (SM_MAX_JOBS) a map supports"
            )));
        }
        let sizes = [
            ("result_size", self.result_size()),
            ("wresult_size", self.options.wresult_size),
        ];
        for (name, size) in sizes {
            if size > MAX_RESULT_SIZE {
                return Err(Error::invalid(format!(
                    "{name} = {size} is larger than the {MAX_RESULT_SIZE} bytes \
                     (SM_MAX_RESULT_SIZE) a result may have; return large data through sm_empty \
                     memory"
                )));
            }
        }
        check_ctx_size(self.ctx, self.options.ctx_size)
    }

    /// The task every worker reads (its inner thread counts are set once the backend is known),
    /// and what becomes of the per-worker results.
    fn task_and_hooks(&self, pool: &Pool) -> (Task, WorkerHooks) {
        let options = &self.options;
        let body = match self.work {
            Work::Jobs { work, .. } | Work::Fed { work, .. } => Body::Jobs(work),
            Work::Region(region) => Body::Region(region),
        };
        let task = Task {
            body,
            ctx: self.ctx,
            pool: pool as *const Pool as usize,
            chunk: options.chunk,
            init: options.worker_init,
            fini: options.worker_fini,
            inner: None,
        };
        let fed = self.feeder().is_some();
        let hooks = WorkerHooks {
            wresult_size: options.wresult_size,
            worker_reduce: options.worker_reduce.filter(|_| !fed),
            ctx: self.ctx,
            kept: (fed && options.worker_reduce.is_some()).then(Default::default),
        };
        (task, hooks)
    }
}

/// Runs the workers and settles how they ended.
fn run(pool: &Pool, launch: &Launch) -> Result<Ran> {
    launch.check()?;
    let options = &launch.options;
    let (mut task, hooks) = launch.task_and_hooks(pool);
    // Lives until the workers are done; reduce, worker_reduce and progress keep launch.ctx.
    let ctx_copy = CtxCopy::take(launch.ctx, options.ctx_size)?;
    if let Some(copy) = &ctx_copy {
        task.ctx = copy.as_ptr();
    }
    let reducer = match launch.work {
        Work::Jobs {
            reduce: Some(reduce),
            ..
        } => Some(Reducer {
            reduce,
            ctx: launch.ctx,
            reduce_stopped: None,
        }),
        Work::Fed { reducer, .. } => reducer,
        _ => None,
    };
    let progress = launch
        .njobs()
        .and_then(|njobs| Progress::new(options.progress, launch.ctx, njobs));
    let duties = |interrupt| CallerDuties {
        reducer,
        interrupt,
        progress: progress.as_ref(),
        feeder: launch.feeder(),
    };
    // Run serially, a map's jobs one after the other, a region once as a team of one.
    let serially = |task: &Task, worker: i32, interrupt| {
        let units = launch.njobs().unwrap_or(1);
        let outcome = serial::run(
            units,
            task,
            launch.result_size(),
            worker,
            &hooks,
            duties(interrupt),
        )?;
        Ok(Ran {
            outcome,
            completed: None,
            nworkers: 1,
            kept: hooks.take_kept(),
        })
    };
    if frame::in_job() {
        // Inside a job or region: run serially in that worker, keeping its worker id (the
        // enclosing launch watches for interrupts).
        let worker = with_current(|f| f.map_or(0, |f| f.worker));
        return serially(&task, worker, None);
    }
    if let Some(residents) = pool.residents() {
        residents.check_ctx(launch.ctx, options.ctx_size)?;
        residents.check_callbacks(&task)?;
    }
    if launch.njobs() == Some(0) {
        // Nothing to run: no fork, no thread wake-up, no signal handling to set up.
        pool.claim(launch.call)?;
        if let Some(p) = &progress {
            p.finish(0);
        }
        return Ok(Ran {
            outcome: Outcome::Completed,
            completed: None,
            nworkers: 0,
            kept: Vec::new(),
        });
    }
    let _busy = pool.claim(launch.call)?;
    let interrupt = InterruptWatch::start();
    if pool.backend() == Backend::Serial || config::debug() {
        task.inner = Plan::new(options.inner_threads, 1, Workers::Caller)?;
        let _counts = task.inner.as_ref().map(|plan| plan.enter_worker());
        return serially(&task, 0, Some(&interrupt));
    }
    if let Some(threads) = pool.threads() {
        threads.check_owner(launch.call)?;
    }
    if let Some(residents) = pool.residents() {
        residents.check_owner(launch.call)?;
    }
    // Forked workers are started per map: never more than there are jobs.
    let nworkers = match (launch.njobs(), pool.threads()) {
        (Some(njobs), None) => pool.nworkers().min(njobs as usize),
        _ => pool.nworkers(),
    };
    let units = match launch.work {
        Work::Fed { .. } => MAX_JOBS,
        _ => launch.njobs().unwrap_or(nworkers as u64),
    };
    let mut ctl = Control::new(
        units,
        nworkers,
        launch.result_size(),
        reducer.is_some(),
        options.wresult_size,
        pool.take_spare_mapping(),
    )?;
    if let Work::Fed { .. } = launch.work {
        ctl.start_feed();
    }
    if let Work::Region(_) = launch.work {
        ctl.is_region = true;
        ctl.oversubscribed = pool.oversubscribed();
        ctl.finish_on_stop = options.worker_fini.is_some()
            || options.worker_reduce.is_some()
            || options.wresult_size > 0;
    }
    task.inner = Plan::new(options.inner_threads, nworkers, workers_of(pool))?;
    let outcome = match pool.threads() {
        Some(threads) => {
            ctl.interrupt_baseline = Some(interrupt.baseline());
            let _counts = task.inner.as_ref().map(|plan| plan.enter_caller());
            Ok(match launch.work {
                Work::Jobs { .. } | Work::Fed { .. } => {
                    threads.run(&ctl, &task, duties(Some(&interrupt)))
                }
                Work::Region(_) => threads.run_with_caller(&ctl, &task, duties(Some(&interrupt))),
            })
        }
        None => match pool.residents() {
            Some(residents) => residents.run(&ctl, &task, duties(Some(&interrupt))),
            None => process::run(&ctl, &task, duties(Some(&interrupt))),
        },
    }
    .map(|outcome| {
        let outcome = settle(launch, &ctl, outcome, interrupt.interrupted());
        finish_workers(&ctl, outcome, &hooks)
    });
    let completed = Some(ctl.completed());
    pool.keep_spare_mapping(ctl.into_mapping());
    Ok(Ran {
        outcome: outcome?,
        completed,
        nworkers,
        kept: hooks.take_kept(),
    })
}

/// How a pool's parallel launches run their workers, for the inner thread counts.
fn workers_of(pool: &Pool) -> Workers {
    if pool.threads().is_some() {
        Workers::Threads
    } else if pool.residents().is_some() {
        Workers::Resident
    } else {
        Workers::Forked
    }
}

/// The outcome of parallel workers, once a signal the caller caught (`interrupted`) is taken into
/// account: it interrupts a map that otherwise succeeded (workers that noticed the signal
/// themselves stopped without the supervisor's help), and a region unless a worker died or was
/// killed first. A region reports the failure of the worker that stopped it first.
fn settle(launch: &Launch, ctl: &Control, outcome: Outcome, interrupted: Option<i32>) -> Outcome {
    let interrupt = |signal| Outcome::Interrupted {
        signal,
        death: None,
    };
    match (launch.work, interrupted) {
        (Work::Jobs { .. } | Work::Fed { .. }, Some(signal)) if outcome.is_success() => {
            interrupt(signal)
        }
        (Work::Jobs { .. } | Work::Fed { .. }, _) => outcome,
        (Work::Region(_), _) => match (first_region_failure(ctl, outcome), interrupted) {
            (o @ (Outcome::Interrupted { .. } | Outcome::WorkerDied(_)), _) => o,
            (_, Some(signal)) => interrupt(signal),
            (o, None) => o,
        },
    }
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

/// After the parallel workers are done: a failed hook fails the launch, else worker_reduce runs
/// for every worker whose worker_fini succeeded, in worker order.
fn finish_workers(ctl: &Control, outcome: Outcome, hooks: &WorkerHooks) -> Outcome {
    let outcome = with_hook_failures(ctl, outcome);
    let finished = (0..ctl.nworkers)
        .filter(|&w| ctl.worker(w).fini_done.load(Ordering::Acquire) == 1)
        .map(|w| (w, ctl.worker_result(w)));
    hooks.combine(outcome, finished)
}
