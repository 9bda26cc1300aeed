//! Parallel regions (`sm_parallel`): every worker of the pool runs the region once, as a member of
//! a team, and the members share work-shared loops (`sm_for_next`), barriers, `sm_single` and
//! `sm_master`, plus the critical and ordered sections of sections.rs.
//!
//! The team's words live in the region's control block (control.rs: `TeamWords`, `BarrierWords`,
//! `LoopSlot`, and per worker `loop_seq`, `ordered_pos`, `left_region`), so forked workers and
//! threads use one protocol; engine/README.md, "Parallel regions", explains it. A team of one
//! (serial backend, debug mode, a region inside a job) has no control block: its loops are handed
//! out locally and its barriers return at once.
//!
//! As in worker.rs, nothing here takes a lock or allocates: members may be forked children of a
//! multi-threaded caller.

use crate::engine::control::{claim, Control, JobEnd, Misuse, LOOP_SLOTS, NO_JOB};
use crate::engine::frame::{with_current, CriticalState, Frame, OrderedState};
use crate::engine::sections::{finish_job, publish_ordered_pos};
use crate::engine::task::{RegionFn, Task};
use crate::status::Status;
use crate::status::{Error, Result};
use crate::sys::futex;
use crate::sys::interrupt::caught_since;
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Chunks dealt round-robin in advance (one block per member when no chunk is given).
    Static,
    /// Chunks claimed one at a time from a shared counter.
    Dynamic,
    /// Like dynamic, with chunks shrinking as the loop nears its end.
    Guided,
}

/// A work-shared loop as the members call it: `sm_for_next(pool, start, end, schedule, chunk,
/// flags, ...)`. Every member must call the same loops, with the same parameters, in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopSpec {
    pub start: u64,
    pub end: u64,
    pub schedule: Schedule,
    /// 0: the schedule's default (static: one block per member; dynamic and guided: 1).
    pub chunk: u64,
    pub ordered: bool,
    pub nowait: bool,
}

impl LoopSpec {
    fn trip(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Nonzero digest of the parameters, compared between members at dynamic/guided loops.
    fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for v in [
            self.start,
            self.end,
            self.schedule as u64,
            self.chunk,
            self.ordered as u64 | (self.nowait as u64) << 1,
        ] {
            h = (h ^ v).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h | 1
    }
}

/// The loop a member is in.
#[derive(Debug, Clone, Copy)]
struct LoopRun {
    spec: LoopSpec,
    /// The loop's index among the region's loops.
    seq: u64,
    /// Its index among the region's dynamic/guided loops (None for static and for teams of one).
    dynamic_seq: Option<u64>,
    /// Chunk size in effect (>= 1; unused by static blocks).
    chunk: u64,
    /// Static: chunks handed to this member so far. Team of one: the next iteration.
    cursor: u64,
    /// The chunk handed out last, relative to `spec.start`.
    lo: u64,
    hi: u64,
    /// Ordered sections entered in the current chunk.
    ordered_entries: u64,
}

/// A member's own view of its region (thread-local, in its Frame).
pub struct TeamFrame {
    pub rank: usize,
    pub size: usize,
    loops: Cell<u64>,
    dynamic_loops: Cell<u64>,
    singles: Cell<u64>,
    current: Cell<Option<LoopRun>>,
    /// This member's first failure (how a team of one reports it).
    pub failure: Cell<Option<JobEnd>>,
}

impl TeamFrame {
    pub fn new(rank: usize, size: usize) -> TeamFrame {
        TeamFrame {
            rank,
            size,
            loops: Cell::new(0),
            dynamic_loops: Cell::new(0),
            singles: Cell::new(0),
            current: Cell::new(None),
            failure: Cell::new(None),
        }
    }
}

/// How long a member spins at a barrier or for its turn before sleeping: a team whose members
/// run on their own CPUs hands over in well under a microsecond.
const REGION_SPIN: Duration = Duration::from_micros(50);
/// ... and when the team has more members than CPUs, only this long: the member being waited for
/// may be the one that needs this CPU.
const OVERSUBSCRIBED_SPIN: Duration = Duration::from_micros(2);
/// How often members of a thread-backend region look for Ctrl-C while they sleep.
const INTERRUPT_POLL: Duration = Duration::from_millis(20);

/// Why a barrier let a member through without the whole team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierError {
    /// The region is being stopped (a member failed, the map was interrupted or a worker died).
    Stopped,
    /// This worker had left the region, so the team can never meet.
    Broken(u32),
}

/// Runs worker `w`'s member of the region (in a forked child, a pool thread or the caller), or, when
/// its worker_init failed (`started` false), only leaves the region, so that the team's barriers
/// and turns do not wait for it.
pub fn run_member(ctl: &Control, task: &Task, region: RegionFn, w: usize, started: bool) {
    let team = TeamFrame::new(w, ctl.nworkers);
    let frame = Frame::for_region(Some(ctl), w as i32, task.pool, std::ptr::null(), team)
        .with_wresult(ctl.worker_result(w));
    if started {
        // SAFETY: the caller's region function, called as the API documents.
        let code = frame.run_job(w as u64, || unsafe { region(task.ctx) });
        let end = finish_job(&frame, code);
        if end != JobEnd::Done {
            fail(&frame, end);
        }
    }
    leave_region(ctl, &frame);
}

/// Runs the region as a team of one in the calling thread (serial backend, debug mode, or a
/// region inside a job, which keeps the enclosing worker's id), with `wresult` (null: none) as the
/// member's per-worker result. Returns how it ended.
pub fn run_alone(task: &Task, region: RegionFn, worker: i32, wresult: *mut u8) -> JobEnd {
    let parent = with_current(|f| f.map_or(std::ptr::null(), |f| f as *const Frame));
    let frame = Frame::for_region(None, worker, task.pool, parent, TeamFrame::new(0, 1))
        .with_wresult(wresult);
    // SAFETY: the caller's region function, called as the API documents.
    let code = frame.run_job(0, || unsafe { region(task.ctx) });
    let end = finish_job(&frame, code);
    let team = frame.team.as_ref().expect("a region frame");
    team.failure.get().unwrap_or(end)
}

/// Records this member's failure and stops the region: loops hand out nothing more, barriers and
/// ordered turns let everyone through, and the caller learns who failed first.
pub fn fail(frame: &Frame, end: JobEnd) {
    let Some(team) = frame.team.as_ref() else {
        return;
    };
    if team.failure.get().is_none() {
        team.failure.set(Some(end));
    }
    let Some(ctl) = frame.control() else {
        return;
    };
    let w = team.rank;
    let record = ctl.worker(w);
    if record.failed_job.load(Ordering::Relaxed) == NO_JOB {
        record.failed_end.store(end.pack(), Ordering::Relaxed);
        record.failed_job.store(w as u64, Ordering::Release);
    }
    let h = ctl.header();
    let _ = h
        .team
        .stopped_by
        .compare_exchange(0, w as u32 + 1, Ordering::SeqCst, Ordering::SeqCst);
    h.limit.store(0, Ordering::SeqCst);
    ctl.wake_region_waiters();
}

/// True when the region is being stopped. In a thread-backend region this is also where a caught
/// Ctrl-C turns into a stop, since the caller is busy running worker 0.
fn stopped(ctl: &Control) -> bool {
    if ctl.header().limit.load(Ordering::Acquire) == 0 {
        return true;
    }
    if let Some(baseline) = ctl.interrupt_baseline {
        if caught_since(baseline) {
            ctl.header().limit.store(0, Ordering::SeqCst);
            ctl.wake_region_waiters();
            return true;
        }
    }
    false
}

/// Waits until `ready()` or the region stops (false). Sleeps on `word`, registered in `sleepers`;
/// whoever makes `ready()` true bumps `word` and wakes the sleepers.
fn wait_until(
    ctl: &Control,
    word: &AtomicU32,
    sleepers: &AtomicU32,
    mut ready: impl FnMut() -> bool,
) -> bool {
    let spin = if ctl.oversubscribed {
        OVERSUBSCRIBED_SPIN
    } else {
        REGION_SPIN
    };
    if futex::spin_until(spin, || ready() || stopped(ctl)) && ready() {
        return true;
    }
    let timeout = ctl.interrupt_baseline.map(|_| INTERRUPT_POLL);
    loop {
        if ready() {
            return true;
        }
        if stopped(ctl) {
            return false;
        }
        let seen = word.load(Ordering::SeqCst);
        sleepers.fetch_add(1, Ordering::SeqCst);
        if !ready() && !stopped(ctl) {
            futex::wait(word, seen, timeout);
        }
        sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The innermost region frame of the calling thread, checked against `pool`.
fn with_member<R>(
    pool: usize,
    call: &str,
    f: impl FnOnce(&Frame, &TeamFrame) -> Result<R>,
) -> Result<R> {
    with_current(|frame| {
        let frame = frame.ok_or_else(|| {
            Error::state(format!(
                "{call} called outside a parallel region: it is only valid inside the region \
                 function of sm_parallel"
            ))
        })?;
        let Some(team) = frame.team.as_ref() else {
            return Err(Error::state(format!(
                "{call} called inside a job of sm_map: it is only valid inside the region \
                 function of sm_parallel"
            )));
        };
        if !frame.belongs_to(pool) {
            return Err(Error::invalid(format!(
                "{call}: the pool passed is not the pool running this region"
            )));
        }
        f(frame, team)
    })
}

/// Fails the region for misuse and returns the error for the call that misused it.
fn misuse(frame: &Frame, m: Misuse, message: String) -> Error {
    fail(frame, JobEnd::Misuse(m));
    Error::state(message)
}

/// `sm_barrier`: waits until every member of the team has reached it.
pub fn barrier(pool: usize) -> Result<std::result::Result<(), BarrierError>> {
    with_member(pool, "sm_barrier", |frame, team| {
        if frame.critical.get() != CriticalState::NotHeld {
            return Err(misuse(
                frame,
                Misuse::BarrierInCritical,
                format!(
                    "sm_barrier called by worker {} inside its critical section: the others could \
                     never enter it to reach the barrier",
                    team.rank
                ),
            ));
        }
        if frame.ordered.get() == OrderedState::Inside {
            return Err(misuse(
                frame,
                Misuse::BarrierInOrdered,
                format!(
                    "sm_barrier called by worker {} inside its ordered section",
                    team.rank
                ),
            ));
        }
        Ok(team_barrier(frame))
    })
}

/// The barrier itself, also run at the end of every loop without `nowait`. See engine/README.md, "Parallel regions".
fn team_barrier(frame: &Frame) -> std::result::Result<(), BarrierError> {
    let Some(ctl) = frame.control() else {
        return Ok(()); // a team of one
    };
    if stopped(ctl) {
        return Err(BarrierError::Stopped);
    }
    let b = &ctl.header().barrier;
    let generation = b.generation.load(Ordering::SeqCst);
    let v = b.count.fetch_add(1, Ordering::SeqCst) + 1;
    if arrived(v) + departed(v) == ctl.nworkers as u64 {
        open_barrier(ctl, v);
    } else {
        wait_until(ctl, &b.generation, &b.sleepers, || {
            b.generation.load(Ordering::Acquire) != generation
        });
    }
    if stopped(ctl) {
        Err(BarrierError::Stopped)
    } else if b.broken.load(Ordering::SeqCst) != 0 {
        let left = first_departed(ctl).unwrap_or(0);
        fail(frame, JobEnd::BarrierBroken(left));
        Err(BarrierError::Broken(left))
    } else {
        Ok(())
    }
}

fn arrived(count: u64) -> u64 {
    count & 0xffff_ffff
}

fn departed(count: u64) -> u64 {
    count >> 32
}

/// Lets the waiting members through; `count` is the barrier word as the last arrival made it.
fn open_barrier(ctl: &Control, count: u64) {
    let b = &ctl.header().barrier;
    b.count.fetch_sub(arrived(count), Ordering::SeqCst);
    if departed(count) > 0 {
        b.broken.store(1, Ordering::SeqCst);
    }
    b.generation.fetch_add(1, Ordering::SeqCst);
    if b.sleepers.load(Ordering::SeqCst) > 0 {
        futex::wake_all(&b.generation);
    }
}

fn first_departed(ctl: &Control) -> Option<u32> {
    (0..ctl.nworkers)
        .find(|&w| ctl.worker(w).left_region.load(Ordering::SeqCst) != 0)
        .map(|w| w as u32)
}

/// A member leaves the region: it counts as arrived at every later barrier (which is then broken:
/// the others wait in vain otherwise), as past every ordered turn, and gives back the slot of a
/// loop it returned from the middle of.
fn leave_region(ctl: &Control, frame: &Frame) {
    let team = frame.team.as_ref().expect("a region frame");
    let record = ctl.worker(team.rank);
    if let Some(run) = team.current.take() {
        finish_dynamic(ctl, &run);
    }
    record
        .dynamic_loops_at_exit
        .store(team.dynamic_loops.get(), Ordering::SeqCst);
    record.left_region.store(1, Ordering::SeqCst);
    record.loop_seq.store(u64::MAX, Ordering::SeqCst);
    publish_ordered_pos(ctl, team.rank, NO_JOB);
    let b = &ctl.header().barrier;
    let v = b.count.fetch_add(1 << 32, Ordering::SeqCst) + (1 << 32);
    if arrived(v) > 0 && arrived(v) + departed(v) == ctl.nworkers as u64 {
        open_barrier(ctl, v);
    }
    bump_team_epoch(ctl);
}

/// Wakes members waiting for a loop slot (or for a member that left), if any registered: the
/// change they wait for was made (SeqCst) before this look at `waiters`, and a waiter registers
/// before its last look at the condition, so one of the two always sees the other.
fn bump_team_epoch(ctl: &Control) {
    let t = &ctl.header().team;
    if t.waiters.load(Ordering::SeqCst) > 0 {
        t.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&t.epoch);
    }
}

/// `sm_single`: true for exactly one member (the first to get there) at each single construct.
pub fn single(pool: usize) -> Result<bool> {
    with_member(pool, "sm_single", |frame, team| {
        let n = team.singles.get();
        team.singles.set(n + 1);
        let Some(ctl) = frame.control() else {
            return Ok(true);
        };
        // The n-th single goes to whoever moves the counter from n: a member reaching it late finds
        // the counter already past n (members pass singles in the same order).
        Ok(ctl
            .header()
            .team
            .singles
            .compare_exchange(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok())
    })
}

/// `sm_for_next`: the calling member's next chunk `[lo, hi)` of the loop, or None once the loop
/// is over for it (after the loop's barrier, unless `nowait`).
pub fn for_next(pool: usize, spec: LoopSpec) -> Result<Option<(u64, u64)>> {
    with_member(pool, "sm_for_next", |frame, team| {
        if frame.critical.get() != CriticalState::NotHeld
            || frame.ordered.get() == OrderedState::Inside
        {
            return Err(misuse(
                frame,
                Misuse::LoopInSection,
                format!(
                    "sm_for_next called by worker {} inside its critical or ordered section",
                    team.rank
                ),
            ));
        }
        let mut run = match team.current.get() {
            Some(run) if run.spec == spec => run,
            Some(run) => {
                return Err(misuse(
                    frame,
                    Misuse::LoopChanged,
                    format!(
                        "sm_for_next: worker {} called it for [{}, {}) while its loop over [{}, \
                         {}) was not finished (a loop must be run until sm_for_next returns 0, \
                         with the same arguments)",
                        team.rank, spec.start, spec.end, run.spec.start, run.spec.end
                    ),
                ))
            }
            None => match enter_loop(frame, team, spec)? {
                Some(run) => run,
                None => return Err(stopping()),
            },
        };
        match next_chunk(frame, team, &mut run)? {
            Some((lo, hi)) => {
                run.lo = lo;
                run.hi = hi;
                run.ordered_entries = 0;
                team.current.set(Some(run));
                Ok(Some((spec.start + lo, spec.start + hi)))
            }
            None => {
                team.current.set(None);
                end_loop(frame, team, &run);
                if frame.control().is_some_and(stopped) {
                    return Err(stopping());
                }
                Ok(None)
            }
        }
    })
}

/// What a loop that ends because the region is stopping says (sm_for_next returns 0 with it).
fn stopping() -> Error {
    Error::new(
        Status::SM_STOPPED,
        "sm_for_next: the region is being stopped (another worker failed, or the call was \
         interrupted): return from the region",
    )
}

/// Starts the member's next loop. None when the region is stopping (the loop is then skipped).
fn enter_loop(frame: &Frame, team: &TeamFrame, spec: LoopSpec) -> Result<Option<LoopRun>> {
    let seq = team.loops.get();
    team.loops.set(seq + 1);
    let trip = spec.trip();
    let chunk = spec.chunk.clamp(1, trip.max(1));
    let mut run = LoopRun {
        spec,
        seq,
        dynamic_seq: None,
        chunk,
        cursor: 0,
        lo: 0,
        hi: 0,
        ordered_entries: 0,
    };
    let Some(ctl) = frame.control() else {
        return Ok(Some(run));
    };
    if spec.schedule != Schedule::Static {
        let d = team.dynamic_loops.get();
        team.dynamic_loops.set(d + 1);
        run.dynamic_seq = Some(d);
        if !wait_for_slot(frame, ctl, d, spec)? {
            return Ok(None);
        }
    }
    // Before anyone can see this member in the new loop, its position must already be a lower
    // bound of what it will claim there (0 is one).
    let record = ctl.worker(team.rank);
    record.ordered_pos.store(0, Ordering::SeqCst);
    record.loop_seq.store(seq + 1, Ordering::SeqCst);
    publish_ordered_pos(ctl, team.rank, 0);
    Ok(Some(run))
}

/// Waits until the slot of dynamic loop `d` is free (the loop `LOOP_SLOTS` earlier is done in every
/// member) and checks that the members agree on the loop. False if the region stopped meanwhile.
fn wait_for_slot(frame: &Frame, ctl: &Control, d: u64, spec: LoopSpec) -> Result<bool> {
    let h = ctl.header();
    let slot = &h.loops[(d % LOOP_SLOTS as u64) as usize];
    let mut abandoned_by = None;
    let ready = wait_until(ctl, &h.team.epoch, &h.team.waiters, || {
        if slot.ready_for.load(Ordering::SeqCst) == d {
            return true;
        }
        // A member that left the region before reaching the loop that last used this slot will
        // never be done with it.
        abandoned_by = (0..ctl.nworkers).find(|&w| {
            let r = ctl.worker(w);
            r.left_region.load(Ordering::SeqCst) != 0
                && r.dynamic_loops_at_exit.load(Ordering::SeqCst) + LOOP_SLOTS as u64 <= d
        });
        abandoned_by.is_some()
    });
    if let Some(left) = abandoned_by.filter(|_| slot.ready_for.load(Ordering::SeqCst) != d) {
        fail(frame, JobEnd::BarrierBroken(left as u32));
        return Ok(false);
    }
    if !ready {
        return Ok(false);
    }
    let fingerprint = spec.fingerprint();
    match slot
        .fingerprint
        .compare_exchange(0, fingerprint, Ordering::SeqCst, Ordering::SeqCst)
    {
        Ok(_) => Ok(true),
        Err(seen) if seen == fingerprint => Ok(true),
        Err(_) => Err(misuse(
            frame,
            Misuse::LoopDiffers,
            format!(
                "sm_for_next: worker {} reached a loop ([{}, {})) that another worker reached with \
                 different arguments: every worker must run the same loops in the same order",
                frame.worker, spec.start, spec.end
            ),
        )),
    }
}

/// Hands out the member's next chunk, relative to the loop's start; None when it gets no more.
fn next_chunk(frame: &Frame, team: &TeamFrame, run: &mut LoopRun) -> Result<Option<(u64, u64)>> {
    let trip = run.spec.trip();
    let ctl = frame.control();
    if ctl.is_some_and(stopped) {
        return Ok(None);
    }
    let Some(ctl) = ctl else {
        return Ok(next_chunk_alone(run, trip));
    };
    let n = team.size as u64;
    let publish = |pos: u64| {
        if run.spec.ordered {
            publish_ordered_pos(ctl, team.rank, pos);
        }
    };
    let chunk = match run.spec.schedule {
        Schedule::Static => {
            let k = run.cursor;
            run.cursor += 1;
            let range = if run.spec.chunk == 0 {
                // One block per member, the first `trip % n` members one iteration longer.
                let (q, r, rank) = (trip / n, trip % n, team.rank as u64);
                let lo = rank * q + rank.min(r);
                let len = q + u64::from(rank < r);
                (k == 0 && len > 0).then_some((lo, lo + len))
            } else {
                // Chunk number `rank + k * n`, dealt round-robin.
                k.checked_mul(n)
                    .and_then(|x| x.checked_add(team.rank as u64))
                    .and_then(|c| c.checked_mul(run.chunk))
                    .filter(|&lo| lo < trip)
                    .map(|lo| (lo, lo.saturating_add(run.chunk).min(trip)))
            };
            if let Some((lo, _)) = range {
                publish(lo);
            }
            range
        }
        Schedule::Dynamic | Schedule::Guided => {
            let d = run.dynamic_seq.expect("a shared loop has a slot");
            let slot = &ctl.header().loops[(d % LOOP_SLOTS as u64) as usize];
            // Publish a lower bound of the claim before claiming (see "Ordered" in engine/README.md).
            publish(slot.next.load(Ordering::SeqCst));
            let chunk = run.chunk;
            let claimed = if run.spec.schedule == Schedule::Dynamic {
                claim(&slot.next, trip, |_| chunk)
            } else {
                claim(&slot.next, trip, |remaining| {
                    guided_size(remaining, n, chunk)
                })
            };
            if let Some((lo, _)) = claimed {
                publish(lo);
            }
            claimed
        }
    };
    Ok(chunk)
}

/// Guided chunk size for `remaining` iterations: an even share of what is left per member, at
/// least `min_chunk` (the libgomp rule).
fn guided_size(remaining: u64, n: u64, min_chunk: u64) -> u64 {
    remaining.div_ceil(n).max(min_chunk).min(remaining)
}

/// A team of one gets every chunk in order, sized as its schedule says.
fn next_chunk_alone(run: &mut LoopRun, trip: u64) -> Option<(u64, u64)> {
    let lo = run.cursor;
    if lo >= trip {
        return None;
    }
    let size = match run.spec.schedule {
        Schedule::Static if run.spec.chunk == 0 => trip,
        Schedule::Static | Schedule::Dynamic => run.chunk,
        Schedule::Guided => guided_size(trip - lo, 1, run.chunk),
    };
    let hi = lo.saturating_add(size).min(trip);
    run.cursor = hi;
    Some((lo, hi))
}

/// The member is done with its loop: its ordered turns are all passed, the loop's slot is given
/// back, and unless `nowait` it waits for the team.
fn end_loop(frame: &Frame, team: &TeamFrame, run: &LoopRun) {
    if let Some(ctl) = frame.control() {
        publish_ordered_pos(ctl, team.rank, NO_JOB);
        finish_dynamic(ctl, run);
    }
    if !run.spec.nowait {
        let _ = team_barrier(frame);
    }
}

/// Counts the member out of a dynamic loop's slot; the last one resets it for its next loop.
fn finish_dynamic(ctl: &Control, run: &LoopRun) {
    let Some(d) = run.dynamic_seq else {
        return;
    };
    let slot = &ctl.header().loops[(d % LOOP_SLOTS as u64) as usize];
    if slot.done.fetch_add(1, Ordering::SeqCst) + 1 == ctl.nworkers as u32 {
        slot.next.store(0, Ordering::SeqCst);
        slot.done.store(0, Ordering::SeqCst);
        slot.fingerprint.store(0, Ordering::SeqCst);
        slot.ready_for
            .store(d + LOOP_SLOTS as u64, Ordering::SeqCst);
        bump_team_epoch(ctl);
    }
}

/// `sm_ordered_enter` inside a region: waits until every iteration before the current chunk has
/// passed its ordered section (the member's own earlier iterations of the chunk ran before).
pub fn ordered_enter(frame: &Frame, team: &TeamFrame) -> Result<()> {
    let Some(mut run) = team.current.get().filter(|r| r.spec.ordered) else {
        return Err(misuse(
            frame,
            Misuse::OrderedOutsideOrderedLoop,
            format!(
                "sm_ordered_enter called by worker {} outside an ordered loop (a region's ordered \
                 section belongs inside sm_for_next with SM_FOR_ORDERED)",
                team.rank
            ),
        ));
    };
    if run.ordered_entries >= run.hi - run.lo {
        return Err(misuse(
            frame,
            Misuse::OrderedTwiceInIteration,
            format!(
                "sm_ordered_enter: worker {} entered more ordered sections than its chunk [{}, {}) \
                 has iterations (an iteration has at most one)",
                team.rank,
                run.spec.start + run.lo,
                run.spec.start + run.hi
            ),
        ));
    }
    run.ordered_entries += 1;
    team.current.set(Some(run));
    if let Some(ctl) = frame.control() {
        let h = ctl.header();
        let me = team.rank;
        let turn = || {
            (0..ctl.nworkers).filter(|&w| w != me).all(|w| {
                let r = ctl.worker(w);
                let seq = r.loop_seq.load(Ordering::SeqCst);
                seq > run.seq + 1
                    || (seq == run.seq + 1 && r.ordered_pos.load(Ordering::SeqCst) >= run.lo)
            })
        };
        h.ordered.used.store(1, Ordering::SeqCst);
        if !wait_until(ctl, &h.ordered.epoch, &h.ordered.waiters, turn) {
            return Err(Error::new(
                Status::SM_STOPPED,
                "sm_ordered_enter: the region is being stopped",
            ));
        }
    }
    frame.ordered.set(OrderedState::Inside);
    Ok(())
}

/// Leaving a region's ordered section: once every iteration of the chunk has had its section,
/// the next chunk's owner may go on.
pub fn ordered_leave(frame: &Frame, team: &TeamFrame) {
    frame.ordered.set(OrderedState::NotEntered);
    if let (Some(ctl), Some(run)) = (frame.control(), team.current.get()) {
        if run.ordered_entries == run.hi - run.lo {
            publish_ordered_pos(ctl, team.rank, run.hi);
        }
    }
}

/// `sm_master()`: true in member 0 of the innermost team; outside any map, true (the caller).
pub fn is_master() -> bool {
    with_current(|f| match f {
        None => true,
        Some(frame) => match frame.team.as_ref() {
            Some(team) => team.rank == 0,
            None => frame.worker == 0,
        },
    })
}

/// Members in the innermost team (workers of the map in a job; 1 outside any map).
pub fn team_size() -> usize {
    with_current(|f| match f {
        None => 1,
        Some(frame) => match (frame.team.as_ref(), frame.control()) {
            (Some(team), _) => team.size,
            (None, Some(ctl)) => ctl.nworkers,
            (None, None) => 1,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::worker::testing::wait_for;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    const POOL: usize = 0xba5;

    /// The control block of a region of `n` members, not stopped (limit n).
    fn team(n: usize) -> Control {
        let mut ctl = Control::new(n as u64, n, 0, false, 0, None).unwrap();
        ctl.is_region = true;
        ctl
    }

    fn member(ctl: &Control, rank: usize) -> Frame {
        let n = ctl.nworkers;
        Frame::for_region(
            Some(ctl),
            rank as i32,
            POOL,
            std::ptr::null(),
            TeamFrame::new(rank, n),
        )
    }

    fn generation(ctl: &Control) -> u32 {
        ctl.header().barrier.generation.load(Ordering::SeqCst)
    }

    fn count(ctl: &Control) -> u64 {
        ctl.header().barrier.count.load(Ordering::SeqCst)
    }

    #[test]
    fn barrier_generation_advances_once_per_barrier_when_all_arrive() {
        const ROUNDS: usize = 300;
        let ctl = team(3);
        let arrivals: Vec<AtomicU64> = (0..ROUNDS).map(|_| AtomicU64::new(0)).collect();
        let bad = AtomicU64::new(0);
        let done = AtomicU64::new(0);
        let all_done = std::thread::scope(|s| {
            for rank in 0..3 {
                let (ctl, arrivals, bad, done) = (&ctl, &arrivals, &bad, &done);
                s.spawn(move || {
                    let frame = member(ctl, rank);
                    for (r, arrived) in arrivals.iter().enumerate() {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        if team_barrier(&frame) != Ok(()) {
                            bad.fetch_add(1, Ordering::SeqCst);
                        }
                        // Nobody leaves barrier r before every member reached it, and barrier r
                        // is generation r + 1: barrier r + 1 cannot open without this member.
                        if arrived.load(Ordering::SeqCst) != 3 {
                            bad.fetch_add(1, Ordering::SeqCst);
                        }
                        if generation(ctl) != r as u32 + 1 {
                            bad.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            // A barrier that lets the wrong members through leaves one waiting at the end: stop
            // the region then (every wait returns), so that the test fails instead of hanging.
            let all_done = std::panic::catch_unwind(|| {
                wait_for("every member to pass every barrier", || {
                    done.load(Ordering::SeqCst) == 3
                })
            })
            .is_ok();
            if !all_done {
                ctl.header().limit.store(0, Ordering::SeqCst);
                ctl.wake_region_waiters();
            }
            all_done
        });
        assert_eq!(bad.load(Ordering::SeqCst), 0);
        assert!(all_done, "a member never got through");
        assert_eq!(generation(&ctl), ROUNDS as u32);
        assert_eq!(
            count(&ctl),
            0,
            "arrivals are taken back out at every barrier"
        );
        assert_eq!(ctl.header().barrier.broken.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_barrier_waiter_is_released_when_the_generation_changes() {
        let ctl = Arc::new(team(2));
        let passed_first = Arc::new(AtomicU64::new(0));
        let waiter = {
            let (ctl, passed_first) = (Arc::clone(&ctl), Arc::clone(&passed_first));
            std::thread::spawn(move || {
                let frame = member(&ctl, 0);
                let first = team_barrier(&frame);
                passed_first.store(1, Ordering::SeqCst);
                let second = team_barrier(&frame);
                (first, second)
            })
        };
        let asleep = |ctl: &Control| {
            arrived(count(ctl)) == 1 && ctl.header().barrier.sleepers.load(Ordering::SeqCst) == 1
        };
        // Member 0 waits (asleep) at the first barrier for member 1: generation 0 still.
        wait_for("member 0 to sleep at the barrier", || asleep(&ctl));
        assert_eq!(generation(&ctl), 0);
        assert_eq!(passed_first.load(Ordering::SeqCst), 0);
        // Member 1 arrives last: it opens the barrier without waiting, and member 0 goes on.
        assert_eq!(team_barrier(&member(&ctl, 1)), Ok(()));
        assert_eq!(generation(&ctl), 1);
        wait_for("member 0 to pass the first barrier", || {
            passed_first.load(Ordering::SeqCst) == 1
        });
        // At the second barrier member 0 sleeps again; only a change of generation (here the
        // region being stopped) lets it out.
        wait_for("member 0 to sleep at the second barrier", || asleep(&ctl));
        assert_eq!(generation(&ctl), 1);
        ctl.header().limit.store(0, Ordering::SeqCst);
        ctl.wake_region_waiters();
        wait_for("member 0 to leave the second barrier", || {
            waiter.is_finished()
        });
        let (first, second) = waiter.join().unwrap();
        assert_eq!(first, Ok(()));
        assert_eq!(second, Err(BarrierError::Stopped));
    }

    #[test]
    fn a_member_that_left_breaks_the_next_barrier_whoever_comes_last() {
        // Member 1 leaves first; member 0 then arrives and completes the team itself.
        let ctl = team(2);
        leave_region(&ctl, &member(&ctl, 1));
        assert_eq!(generation(&ctl), 0, "no barrier opens without an arrival");
        let frame = member(&ctl, 0);
        assert_eq!(team_barrier(&frame), Err(BarrierError::Broken(1)));
        assert_eq!(ctl.header().barrier.broken.load(Ordering::SeqCst), 1);
        assert_eq!(
            generation(&ctl),
            2,
            "opened once, then bumped by the stop it caused"
        );
        assert_eq!((arrived(count(&ctl)), departed(count(&ctl))), (0, 1));
        assert_eq!(ctl.header().team.stopped_by.load(Ordering::SeqCst), 1);
        assert_eq!(ctl.header().limit.load(Ordering::SeqCst), 0);

        // Member 0 waits first (asleep); member 1 leaving completes the team and opens it.
        let ctl = Arc::new(team(2));
        let waiter = {
            let ctl = Arc::clone(&ctl);
            std::thread::spawn(move || team_barrier(&member(&ctl, 0)))
        };
        wait_for("member 0 to sleep at the barrier", || {
            arrived(count(&ctl)) == 1 && ctl.header().barrier.sleepers.load(Ordering::SeqCst) == 1
        });
        leave_region(&ctl, &member(&ctl, 1));
        wait_for("member 0 to be let through", || waiter.is_finished());
        assert_eq!(waiter.join().unwrap(), Err(BarrierError::Broken(1)));
        assert_eq!(
            generation(&ctl),
            2,
            "opened by the departure, then woken by the stop"
        );
    }
}
