//! Serial maps: the serial backend, debug mode, and maps called from inside a job. Jobs run one
//! after the other in the calling thread, with the same outcomes a parallel map would report.
//! Regions run here too, as a team of one, with the same per-worker hooks.

use crate::engine::control::{Control, JobEnd, MAX_JOBS, NO_JOB, RESULT_ALIGN};
use crate::engine::feed::{Feeder, FEED_POLL};
use crate::engine::frame::{with_current, Frame};
use crate::engine::outcome::Outcome;
use crate::engine::region::run_alone;
use crate::engine::sections::{finish_hook, finish_job};
use crate::engine::supervise::{job_ended, CallerDuties, WorkerHooks};
use crate::engine::task::JobFn;
use crate::engine::task::{Body, Task};
use crate::status::{Error, Result};
use std::alloc::Layout;
use std::sync::atomic::Ordering;

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
    let result = ResultBuffer::zeroed(result_size).ok_or_else(|| {
        Error::nomem(format!(
            "result_size {result_size} is too large to allocate a result buffer"
        ))
    })?;
    let wresult = ResultBuffer::zeroed(hooks.wresult_size)
        .ok_or_else(|| Error::nomem(format!("wresult_size {} is too large", hooks.wresult_size)))?;
    let wresult_ptr = wresult.ptr;
    let parent = with_current(|f| f.map_or(std::ptr::null(), |f| f as *const Frame));
    // A fed map keeps its feed (segments, gate, stops) in a control block of one worker; its
    // jobs' sections then follow that block's protocol, and wait for the gate by polling.
    let fed = match duties.feeder {
        Some(_) => Some(fed_control()?),
        None => None,
    };
    let frame = Frame::new(fed.as_ref(), worker, task.pool, parent).with_wresult(wresult_ptr);
    let frame = match duties.feeder {
        // SAFETY: the frame lives on this stack frame, within the feeder's lifetime (a borrow
        // for the whole call).
        Some(feeder) => unsafe { frame.with_feeder(feeder) },
        None => frame,
    };
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
    let outcome = match task.body {
        Body::Jobs(work) => run_jobs(njobs, task, work, &result, &frame, duties, &mut completed),
        Body::Region(region) => {
            let end = run_alone(task, region, worker, wresult_ptr);
            // A signal caught while the region ran stops it (as a parallel region would be).
            Ok(match duties.interrupt.and_then(|i| i.interrupted()) {
                Some(signal) => Outcome::Interrupted {
                    signal,
                    death: None,
                },
                None => match end {
                    JobEnd::Done => Outcome::Completed,
                    JobEnd::Stop => Outcome::StoppedByJob(worker as u64),
                    end => Outcome::JobFailed {
                        job: worker as u64,
                        end,
                    },
                },
            })
        }
    };
    if let Some(p) = progress {
        p.finish(completed);
    }
    let outcome = outcome?;
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
    Ok(hooks.combine(outcome, [(worker as usize, wresult_ptr)]))
}

/// The jobs of a serial map, in order; counts those that ran to their end in `completed`.
fn run_jobs(
    njobs: u64,
    task: &Task,
    work: JobFn,
    result: &ResultBuffer,
    frame: &Frame,
    duties: CallerDuties,
    completed: &mut u64,
) -> Result<Outcome> {
    let CallerDuties {
        reducer,
        interrupt,
        progress,
        feeder,
    } = duties;
    let buffer = result.ptr;
    let fed = frame.control().zip(feeder);
    let mut job = 0;
    loop {
        if let Some(signal) = interrupt.and_then(|i| i.interrupted()) {
            return Ok(Outcome::Interrupted {
                signal,
                death: None,
            });
        }
        let number = match fed {
            None if job < njobs => job,
            None => break,
            Some((ctl, feeder)) => match next_fed_job(ctl, feeder, job) {
                Some(global) => global,
                None => break,
            },
        };
        if let Some(p) = progress.filter(|_| job & 63 == 0) {
            p.tick(job);
        }
        result.clear();
        let code = frame.run_job(job, || {
            // SAFETY: the caller's work function, called as the API documents.
            unsafe { work(task.ctx, number as usize, buffer.cast()) }
        });
        let end = finish_job(frame, code);
        if matches!(end, JobEnd::Done | JobEnd::Stop) {
            *completed += 1;
        }
        if let Some(outcome) = job_ended(reducer, job, end, buffer) {
            return Ok(outcome);
        }
        job += 1;
    }
    Ok(Outcome::Completed)
}

/// The global number of local job `job` of a serial fed map, once it is fed (polling the feeder
/// until it is); None when the feed ended before it or the map was stopped at or below it. The
/// control block's claim and unfinished words follow the job, as a worker's would, so that the
/// feeder's ring and stop logic work unchanged.
fn next_fed_job(ctl: &Control, feeder: &dyn Feeder, job: u64) -> Option<u64> {
    let h = ctl.header();
    let me = ctl.worker(0);
    me.unfinished.store(job, Ordering::SeqCst);
    h.next_job.store(job, Ordering::SeqCst);
    if job & 63 == 0 && job < ctl.claim_end() {
        feeder.poll(ctl);
    }
    loop {
        if job >= h.limit.load(Ordering::SeqCst) {
            return None;
        }
        if job < ctl.claim_end() {
            h.next_job.store(job + 1, Ordering::SeqCst);
            return Some(ctl.global_job(job));
        }
        if h.feed.ended.load(Ordering::SeqCst) != 0 {
            return None;
        }
        // Out of jobs: counted as a worker waiting for the feed (the feeder sees it hungry).
        h.feed.waiters.fetch_add(1, Ordering::SeqCst);
        feeder.poll(ctl);
        if job >= ctl.claim_end() {
            std::thread::sleep(FEED_POLL);
        }
        h.feed.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The control block of a serial fed map: one worker, no result window.
fn fed_control() -> Result<Control> {
    let mut ctl = Control::new(MAX_JOBS, 1, 0, false, 0, None)?;
    ctl.start_feed();
    Ok(ctl)
}

/// `size` zeroed bytes aligned to `RESULT_ALIGN` (a Vec<u8> promises alignment 1 only); a null
/// pointer when `size` is 0.
struct ResultBuffer {
    ptr: *mut u8,
    size: usize,
}

impl ResultBuffer {
    /// None when the memory cannot be had (instead of aborting the process).
    fn zeroed(size: usize) -> Option<ResultBuffer> {
        if size == 0 {
            return Some(ResultBuffer {
                ptr: std::ptr::null_mut(),
                size,
            });
        }
        let layout = Layout::from_size_align(size, RESULT_ALIGN).ok()?;
        // SAFETY: the layout has a nonzero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        (!ptr.is_null()).then_some(ResultBuffer { ptr, size })
    }

    fn clear(&self) {
        if !self.ptr.is_null() {
            // SAFETY: ptr points to `size` bytes we allocated, used by one job at a time.
            unsafe { std::ptr::write_bytes(self.ptr, 0, self.size) };
        }
    }
}

impl Drop for ResultBuffer {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: allocated in `zeroed` with exactly this layout (which was valid then).
            unsafe {
                std::alloc::dealloc(
                    self.ptr,
                    Layout::from_size_align_unchecked(self.size, RESULT_ALIGN),
                )
            };
        }
    }
}
