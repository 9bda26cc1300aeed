//! Serial maps: the serial backend, debug mode, and maps called from inside a job. Jobs run one
//! after the other in the calling thread, with the same outcomes a parallel map would report.

use crate::control::{JobEnd, NO_JOB};
use crate::frame::{with_current, Frame};
use crate::status::{Error, Result};
use crate::supervise::{CallerDuties, Outcome};
use crate::sync::{finish_hook, finish_job};
use crate::worker::{Body, Task, WorkerHooks};

/// Runs `njobs` jobs in order in the calling thread. `worker` is the id jobs see (the enclosing
/// job's for a nested map).
pub fn run(
    njobs: u64,
    task: &Task,
    result_size: usize,
    worker: i32,
    hooks: &WorkerHooks,
    duties: CallerDuties,
) -> Result<Outcome> {
    let progress = duties.progress;
    // Both buffers are allocated before any callback runs: a map that cannot have them is
    // refused before worker_init or a job runs, as on the other backends.
    let mut result = zeroed_buffer(result_size).map_err(|_| {
        Error::nomem(format!(
            "result_size {result_size} is too large to allocate a result buffer"
        ))
    })?;
    let mut wresult = zeroed_buffer(hooks.wresult_size)
        .map_err(|_| Error::nomem(format!("wresult_size {} is too large", hooks.wresult_size)))?;
    let parent = with_current(|f| f.map_or(std::ptr::null(), |f| f as *const Frame));
    let frame = Frame::new(None, worker, task.pool, parent);
    if let Some(init) = task.init {
        // SAFETY: the caller's hook, called as the API documents.
        let code = frame.run_job(NO_JOB, || unsafe { init(task.ctx, worker) });
        if let Some(failure) = finish_hook(&frame, code, true) {
            if let Some(p) = progress {
                p.finish(0);
            }
            return Ok(Outcome::HookFailed {
                worker: worker as usize,
                failure,
            });
        }
    }
    let mut completed = 0;
    let outcome = run_jobs(njobs, task, &mut result, &frame, duties, &mut completed);
    if let Some(p) = progress {
        p.finish(completed);
    }
    let outcome = outcome?;
    let wresult_ptr = if wresult.is_empty() {
        std::ptr::null_mut()
    } else {
        wresult.as_mut_ptr()
    };
    if let Some(fini) = task.fini {
        // SAFETY: the caller's hook, with this worker's result buffer of wresult_size bytes.
        let code = frame.run_job(NO_JOB, || unsafe {
            fini(task.ctx, worker, wresult_ptr.cast())
        });
        if let Some(failure) = finish_hook(&frame, code, false).filter(|_| outcome.is_success()) {
            return Ok(Outcome::HookFailed {
                worker: worker as usize,
                failure,
            });
        }
    }
    Ok(hooks.combine(outcome, task.ctx, [(worker as usize, wresult_ptr)]))
}

/// The jobs of a serial map, in order; counts those that ran to their end in `completed`.
fn run_jobs(
    njobs: u64,
    task: &Task,
    result: &mut [u8],
    frame: &Frame,
    duties: CallerDuties,
    completed: &mut u64,
) -> Result<Outcome> {
    let CallerDuties {
        reducer,
        interrupt,
        progress,
    } = duties;
    let Body::Jobs(work) = task.body else {
        unreachable!("a region runs through region::run_alone")
    };
    let buffer = if result.is_empty() {
        std::ptr::null_mut()
    } else {
        result.as_mut_ptr()
    };
    for job in 0..njobs {
        if let Some(signal) = interrupt.and_then(|i| i.interrupted()) {
            return Ok(Outcome::Interrupted {
                signal,
                death: None,
            });
        }
        if let Some(p) = progress.filter(|_| job & 63 == 0) {
            p.tick(job);
        }
        result.fill(0);
        let code = frame.run_job(job, || {
            // SAFETY: the caller's work function, called as the API documents.
            unsafe { work(task.ctx, job as usize, buffer.cast()) }
        });
        let end = finish_job(frame, code);
        if matches!(end, JobEnd::Done | JobEnd::Stop) {
            *completed += 1;
        }
        match end {
            JobEnd::Done => {
                if let Some(r) = reducer {
                    // SAFETY: the caller's reduce function with this job's result.
                    let code = unsafe { (r.reduce)(r.ctx, job as usize, buffer.cast()) };
                    if code != 0 {
                        return Ok(Outcome::StoppedByReduce { job, code });
                    }
                }
            }
            JobEnd::Stop => {
                if let Some(r) = reducer {
                    // SAFETY: as above; the stopping job is still reduced.
                    unsafe { (r.reduce)(r.ctx, job as usize, buffer.cast()) };
                }
                return Ok(Outcome::StoppedByJob(job));
            }
            end => return Ok(Outcome::JobFailed { job, end }),
        }
    }
    Ok(Outcome::Completed)
}

/// `size` zero bytes, or an error when they cannot be had (instead of aborting the process).
fn zeroed_buffer(size: usize) -> std::result::Result<Vec<u8>, std::collections::TryReserveError> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(size)?;
    buffer.resize(size, 0u8);
    Ok(buffer)
}
