//! The loop every worker of a parallel map runs, in a forked child or in a pool thread.
//!
//! Only atomics, futexes, the clock and the job callback are used here, never a lock or an
//! allocation of the library's own: in a forked child of a multi-threaded caller, a lock held by
//! another thread at fork time would never be released.

use crate::engine::control::wake_slot_waiters;
use crate::engine::control::{
    claim, Control, HookFailure, JobEnd, NO_JOB, SLOT_FAILED, STAGE_FINISHING, STAGE_JOBS,
};
use crate::engine::feed::SegmentCache;
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
/// The longest a worker of a fed map sleeps waiting for jobs before it looks again by itself.
const FEED_WAIT: Duration = Duration::from_millis(10);

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
    let mut segment = SegmentCache::default();
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
        let Some((start, end)) = claim(&h.next_job, ctl.claim_end(), |_| size) else {
            if ctl.fed && wait_for_feed(ctl, w) {
                continue;
            }
            break;
        };
        record.unfinished.store(start, Ordering::Release);
        publish_ordered_pos(ctl, w, start);

        let began = Instant::now();
        let mut ran = 0;
        for job in start..end {
            if job >= h.limit.load(Ordering::Acquire)
                || !run_job(ctl, task, work, &frame, w, job, &mut segment)
            {
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
    // A resident worker lives on: what its jobs printed must be out before the caller returns.
    crate::engine::backend::persistent::flush_if_resident();
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
    let mut cap = ctl.claim_end().saturating_sub(next) / spread;
    if ctl.window > 0 {
        cap = cap.min(ctl.window / spread);
    }
    cap.max(1)
}

/// Runs one job; false when it could not start because the map was stopped meanwhile.
fn run_job(
    ctl: &Control,
    task: &Task,
    work: JobFn,
    frame: &Frame,
    w: usize,
    job: u64,
    segment: &mut SegmentCache,
) -> bool {
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
    let number = ctl.global_job_cached(job, segment);
    let code = frame.run_job(job, || {
        // SAFETY: the caller's work function, called as the API documents.
        unsafe { work(task.ctx, number as usize, result.cast()) }
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

/// A worker of a fed map with nothing left to claim waits for the caller to feed more. True when
/// there are jobs to claim again; false when the map is over for it (the feed ended, or the map
/// was stopped or interrupted).
fn wait_for_feed(ctl: &Control, w: usize) -> bool {
    let h = ctl.header();
    let f = &h.feed;
    // It holds no job while it waits: a death now loses none, and it holds back no ordered turn.
    ctl.worker(w).unfinished.store(NO_JOB, Ordering::Release);
    publish_ordered_pos(ctl, w, NO_JOB);
    ctl.nudge_caller();
    loop {
        let epoch = f.epoch.load(Ordering::SeqCst);
        let next = h.next_job.load(Ordering::SeqCst);
        if next >= h.limit.load(Ordering::SeqCst) || interrupted(ctl) {
            return false;
        }
        if f.available.load(Ordering::SeqCst) > next {
            return true;
        }
        if f.ended.load(Ordering::SeqCst) != 0 {
            return false;
        }
        f.waiters.fetch_add(1, Ordering::SeqCst);
        // The timeout only bounds the damage of a missed wake-up; every change wakes the waiters.
        futex::wait(&f.epoch, epoch, Some(FEED_WAIT));
        f.waiters.fetch_sub(1, Ordering::SeqCst);
    }
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

/// What the engine's tests share: a map run on std threads with the real worker loop and the real
/// caller's side, and a bounded wait.
#[cfg(test)]
pub(crate) mod testing {
    use super::run_worker;
    use crate::engine::backend::threads::NoDeaths;
    use crate::engine::control::Control;
    use crate::engine::feed::Feeder;
    use crate::engine::outcome::Outcome;
    use crate::engine::supervise::{supervise, CallerDuties, Reducer};
    use crate::engine::task::Task;
    use std::time::{Duration, Instant};

    /// Runs the map of `ctl` on `ctl.nworkers` threads, the calling thread supervising (and
    /// reducing with `reducer`) as the thread backend's caller does.
    pub(crate) fn run_on_threads(ctl: &Control, task: &Task, reducer: Option<Reducer>) -> Outcome {
        run_fed_on_threads(ctl, task, reducer, None)
    }

    /// `run_on_threads` for a fed map: the calling thread also polls `feeder`.
    pub(crate) fn run_fed_on_threads(
        ctl: &Control,
        task: &Task,
        reducer: Option<Reducer>,
        feeder: Option<&dyn Feeder>,
    ) -> Outcome {
        std::thread::scope(|s| {
            for w in 0..ctl.nworkers {
                s.spawn(move || run_worker(ctl, task, w));
            }
            let duties = CallerDuties {
                reducer,
                interrupt: None,
                progress: None,
                feeder,
            };
            supervise(ctl, &mut NoDeaths, duties)
        })
    }

    /// Asserts that `ranges`, sorted, cover [0, end) exactly: no gap, no overlap, none empty.
    pub(crate) fn assert_tiles(ranges: &[(u64, u64)], end: u64) {
        let mut at = 0;
        for &(lo, hi) in ranges {
            assert_eq!(lo, at, "gap or overlap at {lo}: {ranges:?}");
            assert!(hi > lo && hi <= end, "bad range {lo}..{hi}: {ranges:?}");
            at = hi;
        }
        assert_eq!(at, end, "{ranges:?}");
    }

    /// Waits until `cond()` holds; panics (fails the test) if it still does not after 10 s, so that
    /// a broken wake-up fails a test instead of hanging it.
    pub(crate) fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out: {what}"
            );
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::outcome::Outcome;
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicU32, AtomicU64};

    const POOL: usize = 0x5eed;

    #[test]
    fn chunk_cap_spreads_the_rest_and_respects_window_and_ordered() {
        // A quarter of an even share of what is left, at least one job.
        let c = Control::new(1000, 2, 0, false, 0, None).unwrap();
        assert_eq!(chunk_cap(&c, 0), 125);
        assert_eq!(chunk_cap(&c, 600), 50);
        assert_eq!(chunk_cap(&c, 993), 1);
        assert_eq!(chunk_cap(&c, 999), 1);
        assert_eq!(chunk_cap(&c, 1000), 1);
        assert_eq!(chunk_cap(&c, 5000), 1);
        // With a reduce, also a quarter of the window's share per worker (window 2048 here).
        let c = Control::new(1_000_000, 2, 8, true, 0, None).unwrap();
        assert_eq!(c.window, 2048);
        assert_eq!(chunk_cap(&c, 0), 256);
        assert_eq!(chunk_cap(&c, 999_000), 125);
        // One job at a time once ordered is in use.
        c.header().ordered.used.store(1, Ordering::SeqCst);
        assert_eq!(chunk_cap(&c, 0), 1);
    }

    /// What the observing job saw: the value of `next_job` while each job ran (one worker: only
    /// its own claims move it, so it tells which chunk each job belonged to).
    struct Chunks {
        ctl: *const Control,
        next_seen: Vec<AtomicU64>,
        /// The job that enters (and leaves) an ordered section, or NO_JOB.
        ordered_job: u64,
        errors: AtomicU32,
    }

    unsafe extern "C" fn observe_chunk(ctx: *mut c_void, job: usize, _: *mut c_void) -> c_int {
        // SAFETY: ctx is the test's `Chunks`, which outlives the map, and its control block too.
        let (obs, ctl) = unsafe {
            let obs = &*(ctx as *const Chunks);
            (obs, &*obs.ctl)
        };
        let next = ctl.header().next_job.load(Ordering::SeqCst);
        obs.next_seen[job].store(next, Ordering::SeqCst);
        if job as u64 == obs.ordered_job {
            let entered = crate::engine::sections::ordered_enter(POOL).is_ok();
            if !entered || crate::engine::sections::ordered_leave(POOL).is_err() {
                obs.errors.fetch_add(1, Ordering::SeqCst);
            }
        }
        0
    }

    /// Runs `njobs` jobs on one worker with `chunk` and returns its claims, checking that they
    /// tile `[0, njobs)` and that every job of a claim ran.
    fn claims_of_one_worker(njobs: u64, chunk: u64, ordered_job: u64) -> Vec<(u64, u64)> {
        let ctl = Control::new(njobs, 1, 0, false, 0, None).unwrap();
        let obs = Chunks {
            ctl: &ctl,
            next_seen: (0..njobs).map(|_| AtomicU64::new(NO_JOB)).collect(),
            ordered_job,
            errors: AtomicU32::new(0),
        };
        let task = Task {
            body: Body::Jobs(observe_chunk),
            ctx: &obs as *const Chunks as *mut c_void,
            pool: POOL,
            chunk,
            init: None,
            fini: None,
            inner: None,
        };
        assert_eq!(
            testing::run_on_threads(&ctl, &task, None),
            Outcome::Completed
        );
        assert_eq!(obs.errors.load(Ordering::SeqCst), 0);
        let mut claims: Vec<(u64, u64)> = Vec::new();
        for job in 0..njobs {
            let next = obs.next_seen[job as usize].load(Ordering::SeqCst);
            match claims.last_mut() {
                Some((_, hi)) if *hi == next => {}
                _ => claims.push((job, next)),
            }
        }
        testing::assert_tiles(&claims, njobs);
        claims
    }

    #[test]
    fn a_fixed_chunk_is_claimed_as_given() {
        assert_eq!(
            claims_of_one_worker(10, 3, NO_JOB),
            [(0, 3), (3, 6), (6, 9), (9, 10)]
        );
    }

    #[test]
    fn adaptive_chunks_start_at_one_and_stay_under_the_cap() {
        let njobs = 20_000;
        let claims = claims_of_one_worker(njobs, 0, NO_JOB);
        assert_eq!(claims[0], (0, 1), "the first chunk is one job");
        for &(lo, hi) in &claims {
            // One worker: the rest spread over 4 chunks' worth of it.
            let cap = ((njobs - lo) / 4).clamp(1, MAX_CHUNK);
            assert!(hi - lo <= cap, "chunk {lo}..{hi} over the cap {cap}");
        }
    }

    #[test]
    fn chunks_shrink_to_one_job_once_ordered_is_used() {
        let claims = claims_of_one_worker(20_000, 0, 10_000);
        let (lo, hi) = *claims.iter().find(|c| c.1 > 10_000).unwrap();
        for &(l, h) in claims.iter().filter(|c| c.0 >= hi) {
            assert_eq!(
                h - l,
                1,
                "chunk {l}..{h} after job 10000's ordered section ({lo}..{hi})"
            );
        }
    }
}
