//! The caller's side of a parallel map: reduce results in job order while the workers run, watch
//! for dead workers, and decide what the map returns.

use crate::engine::control::wake_slot_waiters;
use crate::engine::control::{Control, HookFailure, JobEnd, NO_JOB, SLOT_FAILED};
use crate::engine::feed::{Feeder, FEED_POLL};
use crate::engine::outcome::{Cause, Death, Outcome};
use crate::engine::progress::Progress;
use crate::engine::sections::release_lock_of_dead_worker;
use crate::engine::task::{JobFn, WorkerFiniFn};
use crate::sys::futex;
use crate::sys::interrupt::InterruptWatch;
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a backend lets the supervisor do with its workers.
pub trait Workers {
    /// Reports a worker that ended without finishing its loop, if one did since the last call.
    fn poll_death(&mut self, ctl: &Control) -> Option<Death>;
    /// Stops every worker still running (after a death or an interrupt). False when workers
    /// cannot be killed (threads): they then stop at the next job boundary.
    fn kill_all(&mut self) -> bool;
    /// How long the caller may sleep before looking for deaths again (None: deaths cannot happen).
    fn poll_interval(&self) -> Option<Duration>;
    /// Checks out, in their stead, workers that were asked to join the map but have not started
    /// on it and are no longer needed (resident workers that are late to wake up).
    fn release_latecomers(&mut self, _ctl: &Control) {}
}

/// What the calling thread attends to while the workers run.
#[derive(Clone, Copy)]
pub struct CallerDuties<'a> {
    pub reducer: Option<Reducer>,
    /// None for a map inside a job (the enclosing map watches).
    pub interrupt: Option<&'a InterruptWatch>,
    pub progress: Option<&'a Progress>,
    /// Feeds a fed map (feed.rs) while it runs; None for other maps.
    pub feeder: Option<&'a dyn Feeder>,
}

/// The reduce callback and its context.
#[derive(Clone, Copy)]
pub struct Reducer {
    pub reduce: JobFn,
    pub ctx: *mut c_void,
    /// Called instead of `reduce` for a job that returned SM_STOP, when set: a fed map's driver
    /// must tell root that nothing after that job is to be reduced.
    pub reduce_stopped: Option<JobFn>,
}

/// What a job's end does to its map, once its result (at `result`, when it has one) is reduced
/// if the map reduces: None, go on; else the outcome that stops the map there. A job that
/// returned SM_STOP is still reduced; a failed one is not. Serial and parallel maps both end
/// their jobs here.
pub fn job_ended(
    reducer: Option<Reducer>,
    job: u64,
    end: JobEnd,
    result: *mut u8,
) -> Option<Outcome> {
    let reduce = |r: Reducer| {
        let reduce = match end {
            JobEnd::Stop => r.reduce_stopped.unwrap_or(r.reduce),
            _ => r.reduce,
        };
        // SAFETY: the caller's reduce function, with the job's finished result, which no worker
        // touches until reduce returns (the contract of `result`).
        unsafe { reduce(r.ctx, job as usize, result.cast()) }
    };
    match end {
        JobEnd::Done => {
            let code = reducer.map_or(0, reduce);
            (code != 0).then_some(Outcome::StoppedByReduce { job, code })
        }
        JobEnd::Stop => {
            reducer.map(reduce);
            Some(Outcome::StoppedByJob(job))
        }
        end => Some(Outcome::JobFailed { job, end }),
    }
}

/// How long the caller spins before it sleeps: results about to arrive and short maps then cost
/// no wake-up. Short, because on a machine with as many workers as CPUs the caller's spinning
/// takes time from a worker.
const CALLER_SPIN: Duration = Duration::from_micros(10);

/// A worker's number and a copy of its per-worker result.
pub type KeptResult = (usize, Vec<u8>);

/// What becomes of the per-worker results once the jobs are done.
pub struct WorkerHooks {
    pub wresult_size: usize,
    pub worker_reduce: Option<WorkerFiniFn>,
    /// The caller's ctx, which worker_reduce gets (the workers may have had a copy).
    pub ctx: *mut c_void,
    /// Some: keep copies of the per-worker results here instead of calling `worker_reduce` (a
    /// fed map, whose owner combines them across ranks).
    pub kept: Option<RefCell<Vec<KeptResult>>>,
}

impl WorkerHooks {
    /// On the caller, after a map that succeeded (or stopped on request): worker_reduce for each
    /// given worker's result, in the order given (worker order); a nonzero return stops there.
    pub(crate) fn combine(
        &self,
        outcome: Outcome,
        results: impl IntoIterator<Item = (usize, *mut u8)>,
    ) -> Outcome {
        if let Some(kept) = self.kept.as_ref().filter(|_| outcome.is_success()) {
            let size = self.wresult_size;
            kept.borrow_mut()
                .extend(results.into_iter().map(|(worker, wresult)| {
                    let bytes = match size {
                        0 => Vec::new(),
                        // SAFETY: that worker's result, `wresult_size` bytes, which no worker
                        // touches any more.
                        _ => unsafe { std::slice::from_raw_parts(wresult, size) }.to_vec(),
                    };
                    (worker, bytes)
                }));
            return outcome;
        }
        let Some(worker_reduce) = self.worker_reduce.filter(|_| outcome.is_success()) else {
            return outcome;
        };
        for (worker, wresult) in results {
            // SAFETY: the caller's hook, with that worker's result (wresult_size bytes), which no
            // worker touches any more.
            let code = unsafe { worker_reduce(self.ctx, worker as c_int, wresult.cast()) };
            if code != 0 {
                return Outcome::StoppedByWorkerReduce { worker, code };
            }
        }
        outcome
    }
}

impl WorkerHooks {
    /// The per-worker results kept so far (see `kept`).
    pub(crate) fn take_kept(&self) -> Vec<KeptResult> {
        self.kept.as_ref().map(|k| k.take()).unwrap_or_default()
    }
}

/// The first worker (in worker order) whose init or fini hook failed, if the map otherwise
/// succeeded.
pub fn with_hook_failures(ctl: &Control, outcome: Outcome) -> Outcome {
    if !outcome.is_success() {
        return outcome;
    }
    (0..ctl.nworkers)
        .find_map(|w| {
            HookFailure::unpack(ctl.worker(w).hook_failure.load(Ordering::Acquire))
                .map(|failure| Outcome::HookFailed { worker: w, failure })
        })
        .unwrap_or(outcome)
}

struct Supervisor<'a> {
    ctl: &'a Control,
    workers: &'a mut dyn Workers,
    death: Option<Death>,
    dead: usize,
    interrupt: Option<&'a InterruptWatch>,
    progress: Option<&'a Progress>,
    feeder: Option<&'a dyn Feeder>,
    /// The signal that interrupted the map, once one did.
    interrupted: Option<i32>,
    /// True once the workers were killed (they will never check out).
    killed: bool,
    last_poll: Instant,
    /// A fed map's reduce loop polls the feeder every `feed_mask + 1` jobs (a power of two),
    /// adapted so that polls come about every FEED_POLL whatever the jobs' duration; and when it
    /// last did.
    feed_mask: u64,
    fed_at: Instant,
}

/// Runs the caller's side of the map until every worker has checked out (or died), and returns
/// the outcome. Workers are not reaped here; the backend does that afterwards.
pub fn supervise(ctl: &Control, workers: &mut dyn Workers, duties: CallerDuties) -> Outcome {
    let mut s = Supervisor {
        ctl,
        workers,
        death: None,
        dead: 0,
        interrupt: duties.interrupt,
        progress: duties.progress,
        feeder: duties.feeder,
        interrupted: None,
        killed: false,
        last_poll: Instant::now(),
        feed_mask: 63,
        fed_at: Instant::now(),
    };
    let reduced_outcome = match duties.reducer {
        Some(r) => s.reduce_in_order(r),
        None => None,
    };
    s.wait_for_workers();
    if let Some(p) = s.progress {
        p.finish(ctl.completed());
    }
    if let Some(signal) = s.interrupted {
        return Outcome::Interrupted {
            signal,
            death: s.death,
        };
    }
    if let Some(o) = reduced_outcome {
        return o;
    }
    let first_failure = (0..ctl.nworkers)
        .map(|w| ctl.worker(w))
        .map(|r| {
            (
                r.failed_job.load(Ordering::Acquire),
                r.failed_end.load(Ordering::Relaxed),
            )
        })
        .filter(|(job, _)| *job != NO_JOB)
        .min_by_key(|(job, _)| *job);
    let failure = first_failure.map(|(job, end)| match JobEnd::unpack(end) {
        JobEnd::Stop => Outcome::StoppedByJob(job),
        end => Outcome::JobFailed { job, end },
    });
    match (failure, s.death) {
        (Some(f), Some(d)) => {
            let job = match f {
                Outcome::StoppedByJob(j) | Outcome::JobFailed { job: j, .. } => j,
                _ => unreachable!(),
            };
            if job < d.lost_from {
                f
            } else {
                Outcome::WorkerDied(d)
            }
        }
        (Some(f), None) => f,
        (None, Some(d)) => Outcome::WorkerDied(d),
        (None, None) => Outcome::Completed,
    }
}

impl Supervisor<'_> {
    /// Reduces jobs 0, 1, 2, ... as their results arrive. Returns the outcome when a job or reduce
    /// stopped the map; None when it ran to the end or a worker died (decided later).
    fn reduce_in_order(&mut self, r: Reducer) -> Option<Outcome> {
        let ctl = self.ctl;
        let h = ctl.header();
        let mut job = 0;
        while job < ctl.njobs {
            let word = self.wait_filled(job)?;
            let result = ctl.result_buffer(job, 0);
            let end = if word & SLOT_FAILED == 0 {
                JobEnd::Done
            } else {
                JobEnd::unpack(ctl.slot_end(job).load(Ordering::Acquire))
            };
            // The slot is the finished job's: no worker touches it until it is freed below.
            if let Some(outcome) = job_ended(Some(r), job, end, result) {
                h.limit.fetch_min(job + 1, Ordering::SeqCst);
                wake_slot_waiters(ctl);
                return Some(outcome);
            }
            ctl.slot_state(job)
                .store(ctl.slot_free_word(job + ctl.window), Ordering::Release);
            // Waking a waiting worker per freed slot would make it sleep again at the next slot:
            // wake once per half window, and whenever the caller is about to wait (wait_filled).
            if job & (ctl.window / 2).saturating_sub(1) == 0 {
                wake_slot_waiters(ctl);
            }
            if job & 255 == 0 {
                self.tick_progress();
            }
            if self.feeder.is_some() && job & self.feed_mask == 0 {
                self.feed_while_reducing();
            }
            job += 1;
        }
        None
    }

    /// Waits for job's result and returns its slot's state word. None if it will never come (a
    /// worker died before it, or the map was interrupted).
    fn wait_filled(&mut self, job: u64) -> Option<u32> {
        let ctl = self.ctl;
        let h = ctl.header();
        let state = ctl.slot_state(job);
        let filled = |word: u32| ctl.slot_holds(job, word);
        let word = state.load(Ordering::Acquire);
        if filled(word) {
            return Some(word);
        }
        wake_slot_waiters(ctl);
        if futex::spin_until(CALLER_SPIN, || filled(state.load(Ordering::Acquire))) {
            return Some(state.load(Ordering::Acquire));
        }
        loop {
            // The slot may wait on jobs not fed yet.
            self.feed();
            if self.interrupted.is_some() || self.death.is_some_and(|d| job >= d.lost_from) {
                return None;
            }
            // Every worker has left its loop or died (a hook failed, or every worker died before
            // its first job): nothing will fill the slot any more, unless it was filled just before
            // its worker checked out.
            if h.active().load(Ordering::SeqCst) as usize <= self.dead {
                let word = state.load(Ordering::SeqCst);
                return filled(word).then_some(word);
            }
            h.caller_waits_for.store(job, Ordering::SeqCst);
            let seen = state.load(Ordering::SeqCst);
            if !filled(seen) {
                futex::wait(state, seen, self.sleep_limit());
            }
            h.caller_waits_for.store(NO_JOB, Ordering::SeqCst);
            let word = state.load(Ordering::Acquire);
            if filled(word) {
                return Some(word);
            }
            self.check_interrupt();
            self.poll_deaths(false);
            self.tick_progress();
        }
    }

    /// Polls the feeder from the reduce loop, and adapts how many jobs go between two polls.
    fn feed_while_reducing(&mut self) {
        let since = self.fed_at.elapsed();
        self.feed();
        self.fed_at = Instant::now();
        if since > 2 * FEED_POLL {
            self.feed_mask >>= 1;
        } else if since < FEED_POLL / 2 && self.feed_mask < 1023 {
            self.feed_mask = self.feed_mask * 2 + 1;
        }
    }

    /// Lets the feeder of a fed map feed.
    fn feed(&self) {
        if let Some(feeder) = self.feeder {
            feeder.poll(self.ctl);
        }
    }

    /// The longest the caller may sleep: until the next look for deaths, and for a fed map until
    /// its feeder's next poll.
    fn sleep_limit(&self) -> Option<Duration> {
        match (self.workers.poll_interval(), self.feeder) {
            (interval, None) => interval,
            (Some(interval), Some(_)) => Some(interval.min(FEED_POLL)),
            (None, Some(_)) => Some(FEED_POLL),
        }
    }

    fn tick_progress(&self) {
        if let Some(p) = self.progress.filter(|p| p.due()) {
            p.tick(self.ctl.completed());
        }
    }

    /// Waits until every worker has left its loop or died. After a death, waits only until the
    /// survivors have finished every job before the lost one, then kills them.
    fn wait_for_workers(&mut self) {
        let h = self.ctl.header();
        futex::spin_until(CALLER_SPIN, || {
            self.workers.release_latecomers(self.ctl);
            h.active().load(Ordering::Acquire) == 0
        });
        loop {
            // A fed map's workers check out only once the feed has ended.
            self.feed();
            self.workers.release_latecomers(self.ctl);
            let active = h.active().load(Ordering::SeqCst);
            if active as usize <= self.dead {
                break;
            }
            if self.death.is_some() && self.survivors_drained() {
                break;
            }
            h.sleep_while_active(active, self.sleep_limit());
            // A region that failed in one worker is lost: stop the others now rather than let
            // them run on (or wait at a barrier) for nothing.
            if self.ctl.is_region && !self.killed && self.region_lost() {
                self.killed = self.workers.kill_all();
                if self.killed {
                    break;
                }
            }
            self.check_interrupt();
            self.tick_progress();
            if self.interrupted.is_some() && self.killed {
                break;
            }
            self.poll_deaths(true);
        }
        if self.death.is_some() {
            self.workers.kill_all();
        }
    }

    /// True once a member of the region stopped it, unless it asked to stop (SM_STOP) and the
    /// others are to finish with their worker_fini (`finish_on_stop`).
    fn region_lost(&self) -> bool {
        let stopped_by = self.ctl.header().team.stopped_by.load(Ordering::SeqCst) as usize;
        if stopped_by == 0 {
            return false;
        }
        let record = self.ctl.worker(stopped_by - 1);
        let requested = record.hook_failure.load(Ordering::Acquire) == 0
            && JobEnd::unpack(record.failed_end.load(Ordering::Acquire)) == JobEnd::Stop;
        !(requested && self.ctl.finish_on_stop)
    }

    fn check_interrupt(&mut self) {
        if self.interrupted.is_none() {
            if let Some(signal) = self.interrupt.and_then(|i| i.interrupted()) {
                self.stop_everything(signal);
            }
        }
    }

    /// The user wants the map gone: nothing new starts, and workers that can be killed are.
    fn stop_everything(&mut self, signal: i32) {
        let h = self.ctl.header();
        self.interrupted = Some(signal);
        h.limit.store(0, Ordering::SeqCst);
        wake_slot_waiters(self.ctl);
        h.ordered.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&h.ordered.epoch);
        if self.ctl.is_region {
            self.ctl.wake_region_waiters();
        }
        self.killed = self.workers.kill_all();
    }

    /// True when no surviving worker still has a job below the lost one to finish.
    fn survivors_drained(&self) -> bool {
        let limit = self.ctl.header().limit.load(Ordering::SeqCst);
        (0..self.ctl.nworkers).all(|w| {
            let r = self.ctl.worker(w);
            r.finished.load(Ordering::Acquire) == 1 || r.unfinished.load(Ordering::Acquire) >= limit
        })
    }

    fn poll_deaths(&mut self, force: bool) {
        let Some(interval) = self.workers.poll_interval() else {
            return;
        };
        if !force && self.last_poll.elapsed() < interval {
            return;
        }
        self.last_poll = Instant::now();
        while let Some(d) = self.workers.poll_death(self.ctl) {
            self.on_death(d);
        }
    }

    fn on_death(&mut self, d: Death) {
        let ctl = self.ctl;
        self.dead += 1;
        if self.death.is_none_or(|first| d.lost_from < first.lost_from) {
            self.death = Some(d);
        }
        if let (true, Cause::Signal(signal)) = (d.is_interrupt(), d.cause) {
            self.stop_everything(signal);
            return;
        }
        // Let the jobs before the lost one finish: nothing after it starts, and the dead worker's
        // critical lock (if it held it) is freed so nobody waits on it forever.
        let h = ctl.header();
        h.limit.fetch_min(d.lost_from, Ordering::SeqCst);
        release_lock_of_dead_worker(ctl, d.worker);
        wake_slot_waiters(ctl);
        h.ordered.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&h.ordered.epoch);
        if ctl.is_region {
            ctl.wake_region_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::{Body, Task};
    use crate::engine::worker::testing::run_on_threads;
    use std::sync::atomic::AtomicU64;

    /// What the jobs and the reduce of a map with a small window saw.
    struct Window {
        window: u64,
        started: AtomicU64,
        reduced: AtomicU64,
        /// Jobs that started before the job `window` earlier was reduced.
        early: AtomicU64,
        /// Reduces that came out of job order or found another job's result in the slot.
        wrong: AtomicU64,
    }

    unsafe extern "C" fn write_job(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
        // SAFETY: ctx is the test's `Window`, which outlives the map.
        let s = unsafe { &*(ctx as *const Window) };
        let job = job as u64;
        s.started.fetch_add(1, Ordering::SeqCst);
        if job >= s.window && s.reduced.load(Ordering::SeqCst) <= job - s.window {
            s.early.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: result is this job's slot: 8 bytes (result_size), 16-aligned.
        unsafe { result.cast::<u64>().write(job + 1) };
        0
    }

    unsafe extern "C" fn check_job(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
        // SAFETY: ctx is the test's `Window`, which outlives the map.
        let s = unsafe { &*(ctx as *const Window) };
        let job = job as u64;
        if job == 0 {
            // Give a worker that would write a slot before it is free the time to do it: the jobs
            // of the first window have all started by now or soon will, and no more may start
            // until this reduce is over.
            let start = Instant::now();
            while s.started.load(Ordering::SeqCst) <= s.window
                && start.elapsed() < Duration::from_millis(50)
            {
                std::thread::yield_now();
            }
        }
        // SAFETY: result is job's slot, filled by it and not reused before this returns.
        let got = unsafe { result.cast::<u64>().read() };
        if got != job + 1 || s.reduced.load(Ordering::SeqCst) != job {
            s.wrong.fetch_add(1, Ordering::SeqCst);
        }
        s.reduced.store(job + 1, Ordering::SeqCst);
        0
    }

    #[test]
    fn reduce_in_job_order_and_no_job_writes_a_slot_before_it_was_reduced() {
        // 8 slots for 2 workers (sized for 8 jobs), over 400 jobs: the ring wraps 50 times.
        let njobs = 400;
        let ctl = Control::new(8, 2, 8, true, 0, None)
            .unwrap()
            .with_njobs(njobs);
        assert_eq!(ctl.window, 8);
        let s = Window {
            window: ctl.window,
            started: AtomicU64::new(0),
            reduced: AtomicU64::new(0),
            early: AtomicU64::new(0),
            wrong: AtomicU64::new(0),
        };
        let ctx = &s as *const Window as *mut c_void;
        let task = Task {
            body: Body::Jobs(write_job),
            ctx,
            pool: 1,
            chunk: 0,
            init: None,
            fini: None,
            inner: None,
        };
        let reducer = Reducer {
            reduce: check_job,
            ctx,
            reduce_stopped: None,
        };
        assert_eq!(
            run_on_threads(&ctl, &task, Some(reducer)),
            Outcome::Completed
        );
        assert_eq!(
            s.early.load(Ordering::SeqCst),
            0,
            "jobs ran ahead of the window"
        );
        assert_eq!(
            s.wrong.load(Ordering::SeqCst),
            0,
            "reduce saw a wrong result"
        );
        assert_eq!(s.reduced.load(Ordering::SeqCst), njobs);
        assert_eq!(s.started.load(Ordering::SeqCst), njobs);
        // Every slot is left free for the job one window past the end.
        for job in njobs - ctl.window..njobs {
            assert_eq!(
                ctl.slot_state(job).load(Ordering::SeqCst),
                ctl.slot_free_word(job + ctl.window)
            );
        }
    }
}
