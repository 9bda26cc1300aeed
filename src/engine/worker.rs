//! The loop every worker of a parallel map runs, in a forked child or in a pool thread.
//!
//! Only atomics, futexes, the clock and the job callback are used here, never a lock or an
//! allocation of the library's own: in a forked child of a multi-threaded caller, a lock held by
//! another thread at fork time would never be released.

use crate::engine::control::wake_slot_waiters;
use crate::engine::control::{
    claim, Control, HookFailure, JobEnd, NO_JOB, SLOT_FAILED, STAGE_FINISHING, STAGE_JOBS,
};
use crate::engine::frame::Frame;
use crate::engine::frame::OrderedState;
use crate::engine::region::run_member;
use crate::engine::sections::{finish_hook, finish_job, publish_ordered_pos};
use crate::engine::task::{Body, JobFn, Task};
use crate::sys::futex;
use crate::sys::interrupt::caught_since;
use std::ffi::c_int;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A chunk of tiny jobs should take about this long: long enough to make the claim (one contended
/// atomic) negligible, short enough that the last chunks still balance between workers.
const CHUNK_TARGET_NS: u128 = 20_000;
const MAX_CHUNK: u64 = 1 << 16;
/// How long a worker spins for a free result slot before sleeping.
const SLOT_SPIN: Duration = Duration::from_micros(20);

/// Runs jobs for worker `w` until none are left (or the map was stopped), or its member of the
/// region, between its worker_init and worker_fini, then checks out.
pub fn run_worker(ctl: &Control, task: &Task, w: usize) {
    // set back (thread workers) before checking out: the caller may then start the next map
    let inner = task.inner.as_ref().map(|plan| plan.enter_worker());
    let record = ctl.worker(w);
    // Hooks and jobs reach this worker's result through sm_worker_local.
    let frame = Frame::new(Some(ctl), w as i32, task.pool, std::ptr::null())
        .with_wresult(ctl.worker_result(w));
    let work = match task.body {
        Body::Jobs(work) => work,
        Body::Region(region) => {
            // If this worker dies, the region is lost from its start.
            record.unfinished.store(0, Ordering::Release);
            let started = run_init(ctl, task, &frame, w);
            record.stage.store(STAGE_JOBS, Ordering::Release);
            run_member(ctl, task, region, w, started);
            record.unfinished.store(NO_JOB, Ordering::Release);
            record.stage.store(STAGE_FINISHING, Ordering::Release);
            if started {
                run_fini(ctl, task, &frame, w);
            }
            drop(inner);
            check_out(ctl, w);
            return;
        }
    };
    let h = ctl.header();
    let started = run_init(ctl, task, &frame, w);
    record.stage.store(STAGE_JOBS, Ordering::Release);
    let mut chunk: u64 = task.chunk.max(1);
    // A failed init stopped the map (limit 0): the loop then ends at once.
    loop {
        // Publish a lower bound of what we are about to claim before claiming it, so that a job
        // waiting for its ordered turn (or a caller examining our death) never misses this claim.
        let bound = h.next_job.load(Ordering::SeqCst);
        if bound >= h.limit.load(Ordering::Acquire) || interrupted(ctl) {
            break;
        }
        record.unfinished.store(bound, Ordering::Release);
        publish_ordered_pos(ctl, w, bound);

        let size = if task.chunk > 0 {
            task.chunk
        } else {
            chunk.min(chunk_cap(ctl, bound))
        };
        let Some((start, end)) = claim(&h.next_job, ctl.njobs, |_| size) else {
            break;
        };
        record.unfinished.store(start, Ordering::Release);
        publish_ordered_pos(ctl, w, start);

        let began = Instant::now();
        let mut ran = 0;
        for job in start..end {
            if job >= h.limit.load(Ordering::Acquire) || !run_job(ctl, task, work, &frame, w, job) {
                break;
            }
            ran += 1;
        }
        if ran < end - start {
            break; // the map was stopped: the rest of the chunk is past the limit
        }
        let elapsed = began.elapsed().as_nanos();
        if task.chunk > 0 {
            // The caller chose the chunk size.
        } else if elapsed < CHUNK_TARGET_NS / 2 {
            chunk = (chunk * 2).min(MAX_CHUNK);
        } else if elapsed > CHUNK_TARGET_NS * 4 {
            chunk = (chunk / 2).max(1);
        }
    }
    record.current_job.store(NO_JOB, Ordering::Release);
    record.unfinished.store(NO_JOB, Ordering::Release);
    publish_ordered_pos(ctl, w, NO_JOB);
    record.stage.store(STAGE_FINISHING, Ordering::Release);
    if started {
        run_fini(ctl, task, &frame, w);
    }
    drop(inner);
    check_out(ctl, w);
}

/// The worker is done with this map: the last one out wakes the caller if it sleeps.
fn check_out(ctl: &Control, w: usize) {
    let h = ctl.header();
    ctl.worker(w).finished.store(1, Ordering::Release);
    h.check_out();
}

/// True when a thread-backend map was interrupted (the caller may be busy running worker 0, so the
/// workers look for themselves); the map is then stopped.
fn interrupted(ctl: &Control) -> bool {
    match ctl.interrupt_baseline {
        Some(baseline) if caught_since(baseline) => {
            ctl.header().limit.store(0, Ordering::SeqCst);
            wake_slot_waiters(ctl);
            true
        }
        _ => false,
    }
}

/// Runs the worker_init hook; false (and the map stopped) if it failed.
fn run_init(ctl: &Control, task: &Task, frame: &Frame, w: usize) -> bool {
    let Some(init) = task.init else {
        return true;
    };
    // SAFETY: the caller's hook, called as the API documents.
    let code = frame.run_job(NO_JOB, || unsafe { init(task.ctx, w as c_int) });
    match finish_hook(frame, code, true) {
        None => true,
        Some(failure) => {
            hook_failed(ctl, w, failure);
            false
        }
    }
}

/// Runs the worker_fini hook into this worker's result.
fn run_fini(ctl: &Control, task: &Task, frame: &Frame, w: usize) {
    let record = ctl.worker(w);
    if let Some(fini) = task.fini {
        let wresult = ctl.worker_result(w);
        // SAFETY: the caller's hook, with this worker's own result buffer (wresult_size bytes).
        let code = frame.run_job(NO_JOB, || unsafe {
            fini(task.ctx, w as c_int, wresult.cast())
        });
        if let Some(failure) = finish_hook(frame, code, false) {
            hook_failed(ctl, w, failure);
            return;
        }
    }
    record.fini_done.store(1, Ordering::Release);
}

fn hook_failed(ctl: &Control, w: usize, failure: HookFailure) {
    ctl.worker(w)
        .hook_failure
        .store(failure.pack(), Ordering::Release);
    let h = ctl.header();
    if ctl.is_region {
        // The region reports the first worker that stopped it: this hook, if nobody before it.
        let _ =
            h.team
                .stopped_by
                .compare_exchange(0, w as u32 + 1, Ordering::SeqCst, Ordering::SeqCst);
    }
    h.limit.store(0, Ordering::SeqCst);
    if ctl.is_region {
        // Members waiting at a barrier or for a turn look at the limit once woken.
        ctl.wake_region_waiters();
    } else {
        wake_slot_waiters(ctl);
    }
}

/// The largest chunk worth claiming now: small enough that the remaining jobs still spread over
/// all workers, and one job at a time once ordered sections are in use (a chunk would serialise them).
fn chunk_cap(ctl: &Control, next: u64) -> u64 {
    if ctl.header().ordered.used.load(Ordering::Relaxed) != 0 {
        return 1;
    }
    let spread = 4 * ctl.nworkers as u64;
    let mut cap = ctl.njobs.saturating_sub(next) / spread;
    if ctl.window > 0 {
        cap = cap.min(ctl.window / spread);
    }
    cap.max(1)
}

/// Runs one job; false when it could not start because the map was stopped meanwhile.
fn run_job(ctl: &Control, task: &Task, work: JobFn, frame: &Frame, w: usize, job: u64) -> bool {
    let h = ctl.header();
    let record = ctl.worker(w);
    if ctl.window > 0 && !wait_for_free_slot(ctl, w, job) {
        return false;
    }
    record.current_job.store(job, Ordering::Release);
    let result = ctl.result_buffer(job, w);
    if !result.is_null() {
        // SAFETY: result points to result_size bytes that only this job may touch until it
        // publishes them (its slot, or this worker's scratch buffer).
        unsafe { std::ptr::write_bytes(result, 0, ctl.result_size) };
    }
    let code = frame.run_job(job, || {
        // SAFETY: the caller's work function, called as the API documents.
        unsafe { work(task.ctx, job as usize, result.cast()) }
    });
    let end = finish_job(frame, code);
    if end != JobEnd::Done {
        if job < record.failed_job.load(Ordering::Relaxed) {
            record.failed_end.store(end.pack(), Ordering::Relaxed);
            record.failed_job.store(job, Ordering::Release);
        }
        h.limit.fetch_min(job + 1, Ordering::SeqCst);
        wake_slot_waiters(ctl);
    }
    if ctl.window > 0 {
        let mut word = ctl.slot_filled_word(job);
        if end != JobEnd::Done {
            ctl.slot_end(job).store(end.pack(), Ordering::Relaxed);
            word |= SLOT_FAILED;
        }
        let state = ctl.slot_state(job);
        state.store(word, Ordering::SeqCst);
        if h.caller_waits_for.load(Ordering::SeqCst) == job {
            futex::wake(state, 1);
        }
    }
    record.unfinished.store(job + 1, Ordering::Release);
    if matches!(end, JobEnd::Done | JobEnd::Stop) {
        let completed = record.completed.load(Ordering::Relaxed);
        record.completed.store(completed + 1, Ordering::Relaxed);
    }
    // Positions only matter once some job waits for its turn; until then the per-chunk publish in
    // run_worker is enough (a waiter sets `used` first, and every worker looks at it after each job).
    if frame.ordered.get() == OrderedState::NotEntered && h.ordered.used.load(Ordering::SeqCst) != 0
    {
        publish_ordered_pos(ctl, w, job + 1);
    }
    record.current_job.store(NO_JOB, Ordering::Release);
    true
}

/// Waits until the caller has reduced the job that last used `job`'s slot. False if the map was
/// stopped below `job` meanwhile (the slot may then never come free).
fn wait_for_free_slot(ctl: &Control, w: usize, job: u64) -> bool {
    let h = ctl.header();
    let state = ctl.slot_state(job);
    let free = ctl.slot_free_word(job);
    if state.load(Ordering::Acquire) == free {
        return true;
    }
    // Blocking with a stale ordered position could keep an earlier job from its turn, and that
    // job's reduce is what frees our slot.
    publish_ordered_pos(ctl, w, job);
    futex::spin_until(SLOT_SPIN, || {
        state.load(Ordering::Acquire) == free || job >= h.limit.load(Ordering::Acquire)
    });
    loop {
        let epoch = h.slot_wait.epoch.load(Ordering::SeqCst);
        h.slot_wait.waiters.fetch_add(1, Ordering::SeqCst);
        let ready = state.load(Ordering::SeqCst) == free;
        let stopped = job >= h.limit.load(Ordering::SeqCst);
        if !ready && !stopped {
            futex::wait(&h.slot_wait.epoch, epoch, None);
        }
        h.slot_wait.waiters.fetch_sub(1, Ordering::SeqCst);
        if ready {
            return true;
        }
        if stopped {
            return false;
        }
    }
}
