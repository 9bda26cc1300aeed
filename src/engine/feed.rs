//! A fed map: a map whose jobs are not `[0, njobs)` but ranges of *global* jobs (segments) that
//! the caller feeds while it runs, as `sm_mpi_map` does with the jobs root grants to a rank
//! (src/ranks/README.md). Claims, the result window, ordered positions and deaths keep working on
//! *local* job numbers, which run on across segments; a worker translates a local job to its
//! global number just before calling `work`.
//!
//! The caller feeds from the supervisor's loop (supervise.rs), which calls its [`Feeder`] often;
//! the feeder pushes segments with [`Control::feed`] and finally calls [`Control::end_feed`].
//! The ordered gate keeps ordered sections in global order across ranks: a job enters its section
//! only once its local turn has come and the gate has reached its segment's start. Fed maps run
//! through launch.rs (`Work::Fed`) on every backend; serial ones keep their feed in a control
//! block of one worker (backend/serial.rs).

use crate::engine::control::{
    wake_feed_waiters, wake_ordered_waiters, wake_slot_waiters, Control, MAX_JOBS, NO_JOB, SEGMENTS,
};
use crate::sys::futex;
use std::sync::atomic::Ordering;

/// Who feeds a fed map. Called on the caller's thread only, while the map runs: about every
/// `FEED_POLL`, whether the caller waits or reduces (supervise.rs).
pub(crate) trait Feeder {
    fn poll(&self, ctl: &Control);
}

/// How long the supervisor of a fed map sleeps at most between two polls of its feeder: a worker
/// that runs out of jobs waits about this long at worst (a feeder asks for more before then).
pub(crate) const FEED_POLL: std::time::Duration = std::time::Duration::from_micros(50);

/// The segment a worker's last job was in: local jobs `[start, end)` are global jobs from
/// `global` on (empty at first).
#[derive(Clone, Copy, Default)]
pub(crate) struct SegmentCache {
    start: u64,
    global: u64,
    end: u64,
}

impl Control {
    /// Makes this control block a fed map with nothing fed yet.
    pub(crate) fn start_feed(&mut self) {
        self.fed = true;
        let h = self.header();
        h.limit.store(MAX_JOBS, Ordering::Relaxed);
        h.feed.gate_wanted.store(NO_JOB, Ordering::Relaxed);
    }

    /// Every global job below `global` has passed its ordered turn: jobs of segments starting
    /// there or before may enter their ordered sections.
    pub(crate) fn open_gate(&self, global: u64) {
        let h = self.header();
        h.feed.gate.fetch_max(global, Ordering::SeqCst);
        wake_ordered_waiters(h);
    }

    /// The smallest segment start a job is waiting at the gate for, if any (beyond the gate).
    pub(crate) fn gate_wanted(&self) -> Option<u64> {
        let f = &self.header().feed;
        let wanted = f.gate_wanted.load(Ordering::SeqCst);
        (wanted != NO_JOB && wanted > f.gate.load(Ordering::SeqCst)).then_some(wanted)
    }

    /// Feeds the `len` global jobs from `global` on, as the next local jobs. False (nothing fed)
    /// when all `SEGMENTS` slots still hold segments that a worker may yet translate: feed again
    /// later.
    pub(crate) fn feed(&self, global: u64, len: u64) -> bool {
        debug_assert!(self.fed && len > 0);
        let h = self.header();
        let f = &h.feed;
        let k = f.segments.load(Ordering::Relaxed);
        let local = f.available.load(Ordering::Relaxed);
        if k >= SEGMENTS as u64 && !self.segment_done(k - SEGMENTS as u64) {
            return false;
        }
        let slot = &h.segments[(k % SEGMENTS as u64) as usize];
        slot.local.store(local, Ordering::Relaxed);
        slot.global.store(global, Ordering::Relaxed);
        // Release: a worker that sees the new count or `available` sees the segment's words.
        f.segments.store(k + 1, Ordering::Release);
        f.available.store(local + len, Ordering::SeqCst);
        wake_feed_waiters(self);
        true
    }

    /// True once no worker runs, or will run, a job of segment `k` (it needs no translation any
    /// more): the next segment's first local job is claimed and below every worker's unfinished.
    fn segment_done(&self, k: u64) -> bool {
        let h = self.header();
        let next = h.segments[((k + 1) % SEGMENTS as u64) as usize]
            .local
            .load(Ordering::Relaxed);
        h.next_job.load(Ordering::SeqCst) >= next
            && (0..self.nworkers).all(|w| self.worker(w).unfinished.load(Ordering::SeqCst) >= next)
    }

    /// No more segments will come: the workers finish what they have and check out.
    pub(crate) fn end_feed(&self) {
        self.header().feed.ended.store(1, Ordering::SeqCst);
        wake_feed_waiters(self);
    }

    /// Stops the map from local job `local` on (a failure elsewhere, as root reports it): no job
    /// from there starts, and jobs waiting for it at the ordered gate give up.
    pub(crate) fn stop_from(&self, local: u64) {
        self.header().limit.fetch_min(local, Ordering::SeqCst);
        wake_slot_waiters(self);
    }

    /// Local jobs fed but not claimed yet.
    pub(crate) fn unclaimed(&self) -> u64 {
        let h = self.header();
        let available = h.feed.available.load(Ordering::SeqCst);
        available.saturating_sub(h.next_job.load(Ordering::SeqCst))
    }

    /// Workers waiting for jobs to be fed (a serial fed map counts itself while it waits).
    pub(crate) fn feed_waiters(&self) -> u32 {
        self.header().feed.waiters.load(Ordering::SeqCst)
    }

    /// A worker ran out of fed jobs: wakes the caller wherever it sleeps (waiting for its workers,
    /// or for a result), so that its feeder asks for more now rather than at its next poll.
    pub(crate) fn nudge_caller(&self) {
        let h = self.header();
        h.wake_sleeping_caller();
        let job = h.caller_waits_for.load(Ordering::SeqCst);
        if job != NO_JOB && self.window > 0 {
            futex::wake_all(self.slot_state(job));
        }
    }

    /// Every local job below this one has finished (or was stopped before it started): the
    /// claims, then every worker's unfinished job, in that order (a worker publishes its
    /// unfinished bound before it claims, so no claim slips between the two reads).
    pub(crate) fn finished_below(&self) -> u64 {
        let h = self.header();
        let claimed = h.next_job.load(Ordering::SeqCst);
        (0..self.nworkers)
            .map(|w| self.worker(w).unfinished.load(Ordering::SeqCst))
            .fold(claimed, u64::min)
    }
}

impl Control {
    /// Where claims stop: the jobs fed so far, or `njobs`.
    #[inline]
    pub(crate) fn claim_end(&self) -> u64 {
        if self.fed {
            self.header().feed.available.load(Ordering::Acquire)
        } else {
            self.njobs
        }
    }

    /// The global number of local job `local` of a fed map (a job claimed and not finished, so
    /// its segment is still in the ring); `local` itself for other maps.
    pub(crate) fn global_job(&self, local: u64) -> u64 {
        self.global_job_cached(local, &mut SegmentCache::default())
    }

    /// `global_job` for a worker, remembering the segment of its last job in `cache`: the jobs
    /// of a chunk are almost always in one segment, so the ring is searched once per segment.
    /// Inlined into the job loop, where a plain map pays one predictable branch for it.
    #[inline(always)]
    pub(crate) fn global_job_cached(&self, local: u64, cache: &mut SegmentCache) -> u64 {
        if !self.fed {
            return local;
        }
        if !(cache.start <= local && local < cache.end) {
            *cache = self.segment_around(local);
        }
        cache.global + (local - cache.start)
    }

    /// The segment of `local`, a claimed and unfinished job, found in the ring.
    #[inline(never)]
    fn segment_around(&self, local: u64) -> SegmentCache {
        let h = self.header();
        // `available` first: a segment fed after this read starts at or beyond it, so the last
        // segment seen below covers every job up to it.
        let available = h.feed.available.load(Ordering::Acquire);
        let k = h.feed.segments.load(Ordering::Acquire);
        let slot = |i: u64| &h.segments[(i % SEGMENTS as u64) as usize];
        for i in (k.saturating_sub(SEGMENTS as u64)..k).rev() {
            let start = slot(i).local.load(Ordering::Relaxed);
            if start <= local {
                let end = match i + 1 < k {
                    true => slot(i + 1).local.load(Ordering::Relaxed),
                    false => available,
                };
                let global = slot(i).global.load(Ordering::Relaxed);
                return SegmentCache { start, global, end };
            }
        }
        unreachable!("local job {local} of a fed map is in no live segment")
    }

    /// Whether local job `local` may pass the ordered gate (always, for other maps): the gate
    /// has reached its segment's global start. When it has not, the segment's start is noted in
    /// `gate_wanted` for the feeder to ask for.
    pub(crate) fn gate_open(&self, local: u64) -> bool {
        if !self.fed {
            return true;
        }
        let start = self.segment_around(local).global;
        let f = &self.header().feed;
        if f.gate.load(Ordering::SeqCst) >= start {
            return true;
        }
        // Wishes at or below the gate are spent: replace them; else keep the smallest.
        let mut wanted = f.gate_wanted.load(Ordering::SeqCst);
        loop {
            let spent = wanted == NO_JOB || wanted <= f.gate.load(Ordering::SeqCst);
            if !spent && wanted <= start {
                break;
            }
            match f
                .gate_wanted
                .compare_exchange(wanted, start, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(seen) => wanted = seen,
            }
        }
        // The feeder may have opened it before it saw the wish.
        f.gate.load(Ordering::SeqCst) >= start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::control::JobEnd;
    use crate::engine::outcome::Outcome;
    use crate::engine::supervise::Reducer;
    use crate::engine::task::{Body, Task};
    use crate::engine::worker::testing::run_fed_on_threads;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::AtomicU32;

    const POOL: usize = 0xfeed;

    /// Feeds a list of global segments, keeping at most `ahead` local jobs unclaimed, holding back
    /// while the ring is full; ends the feed after the last (unless `never_end`). `slow`: feeds
    /// only on every 8th poll, so that workers run dry and wait.
    struct ListFeeder {
        segments: RefCell<VecDeque<(u64, u64)>>,
        ahead: u64,
        never_end: bool,
        slow: bool,
        polls: Cell<u64>,
        refused: Cell<u64>,
    }

    impl ListFeeder {
        fn new(segments: &[(u64, u64)], ahead: u64) -> ListFeeder {
            ListFeeder {
                segments: RefCell::new(segments.iter().copied().collect()),
                ahead,
                never_end: false,
                slow: false,
                polls: Cell::new(0),
                refused: Cell::new(0),
            }
        }
    }

    impl Feeder for ListFeeder {
        fn poll(&self, ctl: &Control) {
            self.polls.set(self.polls.get() + 1);
            if self.slow && self.polls.get() % 8 != 0 {
                return;
            }
            let mut segments = self.segments.borrow_mut();
            while ctl.unclaimed() < self.ahead {
                let Some(&(global, len)) = segments.front() else {
                    break;
                };
                if !ctl.feed(global, len) {
                    self.refused.set(self.refused.get() + 1);
                    break;
                }
                segments.pop_front();
            }
            if segments.is_empty() && !self.never_end {
                ctl.end_feed();
            }
        }
    }

    /// Irregular segments of global jobs: lengths 1..=97, starts scattered (not in order), in all
    /// `total` jobs below `total * 4`.
    fn scattered(total: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let (mut fed, mut i) = (0, 0u64);
        while fed < total {
            let len = (1 + (i * 37) % 97).min(total - fed);
            // Distinct, non-overlapping ranges: segment i takes [i * 100, i * 100 + len).
            out.push((i * 100, len));
            fed += len;
            i += 1;
        }
        // Not in global order: swap neighbours.
        for pair in out.chunks_mut(2) {
            pair.reverse();
        }
        out
    }

    /// What the jobs saw: runs per global job (indexed by global number).
    struct Seen {
        runs: Vec<AtomicU32>,
        /// Global job that fails with 7, if any.
        fail_at: u64,
        /// Global numbers in the order reduce saw them (by local job).
        reduced: RefCell<Vec<u64>>,
    }

    unsafe extern "C" fn record(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
        // SAFETY: ctx is the test's Seen, alive for the whole map.
        let seen = unsafe { &*(ctx as *const Seen) };
        seen.runs[job].fetch_add(1, Ordering::SeqCst);
        if !result.is_null() {
            // SAFETY: the job's result has 8 bytes (result_size), aligned for a u64.
            unsafe { *(result as *mut u64) = job as u64 };
        }
        if job as u64 == seen.fail_at {
            7
        } else {
            0
        }
    }

    unsafe extern "C" fn reduce(ctx: *mut c_void, _local: usize, result: *mut c_void) -> c_int {
        // SAFETY: as above; reduce runs on the caller thread only.
        let seen = unsafe { &*(ctx as *const Seen) };
        // SAFETY: the reduced job's 8-byte result.
        seen.reduced
            .borrow_mut()
            .push(unsafe { *(result as *const u64) });
        0
    }

    fn seen(fail_at: u64, globals: u64) -> Seen {
        Seen {
            runs: (0..globals).map(|_| AtomicU32::new(0)).collect(),
            fail_at,
            reduced: RefCell::new(Vec::new()),
        }
    }

    fn task(seen: &Seen) -> Task {
        Task {
            body: Body::Jobs(record),
            ctx: seen as *const Seen as *mut c_void,
            pool: POOL,
            chunk: 0,
            init: None,
            fini: None,
            inner: None,
        }
    }

    fn fed_control(nworkers: usize, result_size: usize, with_reduce: bool) -> Control {
        let mut ctl = Control::new(MAX_JOBS, nworkers, result_size, with_reduce, 0, None).unwrap();
        ctl.start_feed();
        ctl
    }

    #[test]
    fn every_fed_job_runs_once_under_its_global_number() {
        let segments = scattered(20_000);
        assert!(
            segments.len() > 4 * SEGMENTS,
            "the ring must wrap several times"
        );
        let seen = seen(NO_JOB, 20_000 * 4);
        for slow in [false, true] {
            for run in &seen.runs {
                run.store(0, Ordering::SeqCst);
            }
            let ctl = fed_control(3, 0, false);
            let mut feeder = ListFeeder::new(&segments, 64);
            feeder.slow = slow;
            let outcome = run_fed_on_threads(&ctl, &task(&seen), None, Some(&feeder));
            assert_eq!(outcome, Outcome::Completed, "slow {slow}");
            let mut want = vec![0u32; seen.runs.len()];
            for &(global, len) in &segments {
                want[global as usize..(global + len) as usize].fill(1);
            }
            let got: Vec<u32> = seen.runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
            let wrong = (0..want.len()).find(|&g| got[g] != want[g]);
            assert_eq!(
                wrong,
                None,
                "slow {slow}: global job ran {:?} times",
                wrong.map(|g| got[g])
            );
            assert_eq!(ctl.completed(), 20_000);
            assert!(feeder.segments.borrow().is_empty());
        }
    }

    #[test]
    fn reduce_sees_the_fed_jobs_in_local_order() {
        let segments = scattered(5_000);
        let seen = seen(NO_JOB, 5_000 * 4);
        let ctl = fed_control(2, 8, true);
        let feeder = ListFeeder::new(&segments, 256);
        let reducer = Reducer {
            reduce,
            ctx: &seen as *const Seen as *mut c_void,
            reduce_stopped: None,
        };
        let outcome = run_fed_on_threads(&ctl, &task(&seen), Some(reducer), Some(&feeder));
        assert_eq!(outcome, Outcome::Completed);
        let want: Vec<u64> = segments.iter().flat_map(|&(g, len)| g..g + len).collect();
        assert_eq!(*seen.reduced.borrow(), want);
    }

    #[test]
    fn a_failing_job_stops_a_fed_map_whose_feed_never_ends() {
        let segments = scattered(3_000);
        // The 1000th fed job fails; the feeder would keep the map open forever.
        let order: Vec<u64> = segments.iter().flat_map(|&(g, len)| g..g + len).collect();
        let seen = seen(order[999], 3_000 * 4);
        let ctl = fed_control(3, 0, false);
        let mut feeder = ListFeeder::new(&segments, 32);
        feeder.never_end = true;
        let outcome = run_fed_on_threads(&ctl, &task(&seen), None, Some(&feeder));
        assert_eq!(
            outcome,
            Outcome::JobFailed {
                job: 999,
                end: JobEnd::Error(7)
            }
        );
        // Every job before it ran, once.
        for (local, &global) in order.iter().enumerate() {
            let runs = seen.runs[global as usize].load(Ordering::SeqCst);
            if local <= 999 {
                assert_eq!(runs, 1, "local job {local} (global {global})");
            }
        }
        assert_eq!(ctl.header().limit.load(Ordering::SeqCst), 1000);
    }

    #[test]
    fn a_full_ring_refuses_a_segment_until_the_oldest_is_done() {
        let ctl = fed_control(2, 0, false);
        for k in 0..SEGMENTS as u64 {
            assert!(ctl.feed(1000 * k, 10));
        }
        let h = ctl.header();
        // Worker 0 still holds local job 3, of segment 0.
        ctl.worker(0).unfinished.store(3, Ordering::SeqCst);
        h.next_job.store(15, Ordering::SeqCst);
        assert!(!ctl.feed(99_000, 5), "segment 0's slot is still needed");
        assert_eq!(ctl.global_job(3), 3);
        // It finished segment 0 (and worker 1 holds nothing): the slot may be reused.
        ctl.worker(0).unfinished.store(12, Ordering::SeqCst);
        assert!(ctl.feed(99_000, 5));
        let first_new = 10 * SEGMENTS as u64;
        assert_eq!(ctl.global_job(first_new + 4), 99_004);
        assert_eq!(ctl.global_job(12), 1002);
        // Segment 1 is in use until the claims pass segment 2's start (local 20).
        assert!(!ctl.feed(77_000, 1));
        h.next_job.store(20, Ordering::SeqCst);
        ctl.worker(0).unfinished.store(NO_JOB, Ordering::SeqCst);
        assert!(ctl.feed(77_000, 1));
        assert_eq!(ctl.claim_end(), first_new + 6, "the jobs fed so far");
    }

    /// What the jobs of a fed map with ordered sections saw, by global job.
    struct Gated {
        passed: Vec<AtomicU32>,
        entered: std::sync::Mutex<Vec<u64>>,
        /// Jobs that entered while the gate was below their segment's start, or before an
        /// earlier job of this rank had passed.
        early: AtomicU32,
        /// Jobs whose sm_ordered_enter said SM_STOPPED.
        stopped: AtomicU32,
        /// The control block, to read the gate from inside a job.
        ctl: *const Control,
        /// (global start, len) of this rank's segments.
        segments: Vec<(u64, u64)>,
    }

    /// Jobs with a global number that is 2 mod 3 skip their ordered section.
    unsafe extern "C" fn gated_job(ctx: *mut c_void, job: usize, _: *mut c_void) -> c_int {
        // SAFETY: ctx is the test's Gated, alive for the whole map.
        let g = unsafe { &*(ctx as *const Gated) };
        let job = job as u64;
        if job % 3 == 2 {
            g.passed[job as usize].store(1, Ordering::SeqCst);
            return 0;
        }
        match crate::engine::sections::ordered_enter(POOL) {
            Ok(()) => {}
            Err(e) if e.status == crate::status::Status::SM_STOPPED => {
                g.stopped.fetch_add(1, Ordering::SeqCst);
                return 0;
            }
            Err(e) => panic!("sm_ordered_enter: {}", e.message),
        }
        // SAFETY: the control block outlives the map.
        let gate = unsafe { &*g.ctl }.header().feed.gate.load(Ordering::SeqCst);
        let start = g
            .segments
            .iter()
            .find(|&&(s, len)| s <= job && job < s + len)
            .unwrap()
            .0;
        let earlier_pending = g
            .segments
            .iter()
            .flat_map(|&(s, len)| s..s + len)
            .take_while(|&j| j < job)
            .any(|j| g.passed[j as usize].load(Ordering::SeqCst) == 0);
        if gate < start || earlier_pending {
            g.early.fetch_add(1, Ordering::SeqCst);
        }
        g.entered.lock().unwrap().push(job);
        std::thread::yield_now();
        g.passed[job as usize].store(1, Ordering::SeqCst);
        crate::engine::sections::ordered_leave(POOL).unwrap();
        0
    }

    /// Feeds every segment, and opens the gate to a wished segment start once every job of this
    /// rank before it has passed (the jobs in the gaps belong to other ranks, done at once) —
    /// what root's frontier does — but never beyond `open_up_to` (as root after a failure there).
    struct GateFeeder<'a> {
        list: ListFeeder,
        gated: &'a Gated,
        open_up_to: u64,
        /// Once a job waits at the gate for this segment start, stop the map from this local job
        /// (as when a job before it failed on another rank).
        stop_when_wanted: Option<(u64, u64)>,
        opened: Cell<u32>,
    }

    impl Feeder for GateFeeder<'_> {
        fn poll(&self, ctl: &Control) {
            self.list.poll(ctl);
            let Some(wanted) = ctl.gate_wanted() else {
                return;
            };
            if let Some((_, local)) = self.stop_when_wanted.filter(|&(s, _)| s == wanted) {
                ctl.stop_from(local);
            }
            let g = self.gated;
            let done = g
                .segments
                .iter()
                .flat_map(|&(s, len)| s..s + len)
                .take_while(|&j| j < wanted)
                .all(|j| g.passed[j as usize].load(Ordering::SeqCst) == 1);
            if done && wanted <= self.open_up_to {
                ctl.open_gate(wanted);
                self.opened.set(self.opened.get() + 1);
            }
        }
    }

    fn gated(ctl: &Control, segments: &[(u64, u64)]) -> Gated {
        let top = segments.iter().map(|&(s, len)| s + len).max().unwrap();
        Gated {
            passed: (0..top).map(|_| AtomicU32::new(0)).collect(),
            entered: std::sync::Mutex::new(Vec::new()),
            early: AtomicU32::new(0),
            stopped: AtomicU32::new(0),
            ctl: ctl as *const Control,
            segments: segments.to_vec(),
        }
    }

    fn gated_task(g: &Gated) -> Task {
        Task {
            body: Body::Jobs(gated_job),
            ctx: g as *const Gated as *mut c_void,
            ..task(&seen(NO_JOB, 0))
        }
    }

    #[test]
    fn ordered_sections_follow_global_order_through_the_gate() {
        // This rank's segments: [0, 7), [20, 27), [40, 47), ...; the gaps are other ranks' jobs.
        let segments: Vec<(u64, u64)> = (0..40).map(|i| (20 * i, 7)).collect();
        let ctl = fed_control(3, 0, false);
        let g = gated(&ctl, &segments);
        let feeder = GateFeeder {
            list: ListFeeder::new(&segments, 16),
            gated: &g,
            open_up_to: NO_JOB,
            stop_when_wanted: None,
            opened: Cell::new(0),
        };
        let outcome = run_fed_on_threads(&ctl, &gated_task(&g), None, Some(&feeder));
        assert_eq!(outcome, Outcome::Completed);
        assert_eq!(
            g.early.load(Ordering::SeqCst),
            0,
            "a job entered before its turn"
        );
        let want: Vec<u64> = segments
            .iter()
            .flat_map(|&(s, len)| s..s + len)
            .filter(|j| j % 3 != 2)
            .collect();
        assert_eq!(*g.entered.lock().unwrap(), want);
        assert!(feeder.opened.get() > 0, "no job ever waited at the gate");
    }

    #[test]
    fn a_job_waiting_at_a_shut_gate_is_released_when_the_map_stops() {
        let segments: Vec<(u64, u64)> = (0..8).map(|i| (20 * i, 5)).collect();
        let ctl = fed_control(3, 0, false);
        let g = gated(&ctl, &segments);
        // The gate opens up to segment 60 only; once a job of segment 80 (local jobs 20..25) waits
        // for it, the map is stopped from local job 20 on, as root does after a failure at 79.
        let feeder = GateFeeder {
            list: ListFeeder::new(&segments, 64),
            gated: &g,
            open_up_to: 60,
            stop_when_wanted: Some((80, 20)),
            opened: Cell::new(0),
        };
        let outcome = run_fed_on_threads(&ctl, &gated_task(&g), None, Some(&feeder));
        assert_eq!(outcome, Outcome::Completed);
        assert_eq!(g.early.load(Ordering::SeqCst), 0);
        assert!(
            g.stopped.load(Ordering::SeqCst) > 0,
            "no job was released from the gate"
        );
        let want: Vec<u64> = segments[..4]
            .iter()
            .flat_map(|&(s, len)| s..s + len)
            .filter(|j| j % 3 != 2)
            .collect();
        assert_eq!(
            *g.entered.lock().unwrap(),
            want,
            "only the jobs before the stop entered"
        );
        assert_eq!(ctl.header().limit.load(Ordering::SeqCst), 20);
    }

    /// Counts runs per global job in shared memory (forked workers' writes reach the caller) and
    /// writes the job's global number as its result.
    unsafe extern "C" fn count_shared(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
        // SAFETY: ctx points to the test's slice of counters in a shared mapping, which outlives
        // the map; the result has 8 bytes.
        unsafe {
            let runs = &*(ctx as *const &[AtomicU32]);
            runs[job].fetch_add(1, Ordering::SeqCst);
            *(result as *mut u64) = job as u64;
        }
        0
    }

    #[test]
    fn forked_workers_run_a_fed_map() {
        let segments = scattered(5_000);
        let globals = 5_000 * 4;
        let counters = crate::sys::shm::SharedMapping::new(4 * globals).unwrap();
        // SAFETY: the mapping holds `globals` zeroed u32s, suitably aligned (page-aligned), and
        // outlives every use below.
        let runs: &[AtomicU32] =
            unsafe { std::slice::from_raw_parts(counters.as_ptr() as *const AtomicU32, globals) };
        let reduced = seen(NO_JOB, 0);
        let ctl = fed_control(2, 8, true);
        let mut feeder = ListFeeder::new(&segments, 128);
        feeder.slow = true;
        let task = Task {
            body: Body::Jobs(count_shared),
            ctx: &runs as *const &[AtomicU32] as *mut c_void,
            ..task(&reduced)
        };
        let duties = crate::engine::supervise::CallerDuties {
            reducer: Some(Reducer {
                reduce,
                ctx: &reduced as *const Seen as *mut c_void,
                reduce_stopped: None,
            }),
            interrupt: None,
            progress: None,
            feeder: Some(&feeder),
        };
        let outcome = crate::engine::backend::process::run(&ctl, &task, duties).unwrap();
        assert_eq!(outcome, Outcome::Completed);
        let want: Vec<u64> = segments.iter().flat_map(|&(g, len)| g..g + len).collect();
        let mut expected = vec![0u32; globals];
        for &g in &want {
            expected[g as usize] = 1;
        }
        for (g, run) in runs.iter().enumerate() {
            assert_eq!(run.load(Ordering::SeqCst), expected[g], "global job {g}");
        }
        assert_eq!(*reduced.reduced.borrow(), want);
    }
}
