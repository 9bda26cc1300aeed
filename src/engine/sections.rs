//! `sm_critical_*` and `sm_ordered_*`: what a job calls, on any backend.
//!
//! Critical is a futex mutex in the map's control block (so it works across processes and is fresh
//! for every map: a worker that dies holding it cannot wedge the next map). Ordered lets job `j` in
//! once every other worker's ordered position is at or past `j`; positions only grow, and each
//! worker moves its own when a job leaves its ordered section or finishes. See engine/README.md, "Critical" and "Ordered".

use crate::abi::SM_STOP;
use crate::engine::control::{Control, HookFailure, JobEnd};
use crate::engine::feed::{Feeder, FEED_POLL};
use crate::engine::frame::{with_current, CriticalState, Frame, OrderedState};
use crate::engine::region;
use crate::status::{Error, Result, Status};
use crate::sys::futex;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long a job spins for its ordered turn before sleeping: the previous job usually hands
/// over within a microsecond, and a futex sleep/wake costs tens.
const ORDERED_SPIN: Duration = Duration::from_micros(50);
/// How long a job spins for the critical lock before sleeping.
const CRITICAL_SPIN: Duration = Duration::from_micros(20);

fn current_job_frame<R>(pool: usize, call: &str, f: impl FnOnce(&Frame) -> Result<R>) -> Result<R> {
    with_current(|frame| {
        let frame = frame.ok_or_else(|| {
            Error::state(format!(
                "{call} called outside a job: it is only valid inside work() during sm_map or \
                 inside the region function of sm_parallel"
            ))
        })?;
        if !frame.belongs_to(pool) {
            return Err(Error::invalid(format!(
                "{call}: the pool passed is not the pool running this job (job {})",
                frame.job.get()
            )));
        }
        f(frame)
    })
}

/// The control block whose lock guards `frame`'s job: its own, or an enclosing map's.
fn lock_owner(frame: &Frame) -> Option<&Control> {
    let mut f = Some(frame);
    while let Some(fr) = f {
        if let Some(c) = fr.control() {
            return Some(c);
        }
        f = fr.parent();
    }
    None
}

fn ancestor_holds_critical(frame: &Frame) -> bool {
    let mut f = frame.parent();
    while let Some(fr) = f {
        if fr.critical.get() != CriticalState::NotHeld {
            return true;
        }
        f = fr.parent();
    }
    false
}

pub fn critical_enter(pool: usize) -> Result<()> {
    current_job_frame(pool, "sm_critical_enter", |frame| {
        if frame.critical.get() != CriticalState::NotHeld {
            return Err(Error::state(format!(
                "sm_critical_enter: job {} is already inside its critical section",
                frame.job.get()
            )));
        }
        let state = match lock_owner(frame) {
            Some(_) if ancestor_holds_critical(frame) => CriticalState::Exclusive,
            Some(ctl) => {
                lock(ctl, frame.worker);
                CriticalState::Locked
            }
            None => CriticalState::Exclusive,
        };
        frame.critical.set(state);
        Ok(())
    })
}

pub fn critical_leave(pool: usize) -> Result<()> {
    current_job_frame(pool, "sm_critical_leave", |frame| {
        if frame.critical.get() == CriticalState::NotHeld {
            return Err(Error::state(format!(
                "sm_critical_leave: job {} is not inside a critical section",
                frame.job.get()
            )));
        }
        release_critical(frame);
        Ok(())
    })
}

fn release_critical(frame: &Frame) {
    if frame.critical.get() == CriticalState::Locked {
        if let Some(ctl) = lock_owner(frame) {
            unlock(ctl);
        }
    }
    frame.critical.set(CriticalState::NotHeld);
}

pub fn ordered_enter(pool: usize) -> Result<()> {
    current_job_frame(pool, "sm_ordered_enter", |frame| {
        let job = frame.job.get();
        if let Some(team) = frame.team.as_ref() {
            if frame.ordered.get() == OrderedState::Inside {
                return Err(Error::state(format!(
                    "sm_ordered_enter: worker {} is already inside its ordered section",
                    team.rank
                )));
            }
            if frame.critical.get() != CriticalState::NotHeld {
                return Err(Error::state(format!(
                    "sm_ordered_enter: worker {} is inside its critical section; waiting for its \
                     ordered turn there could deadlock (leave critical first)",
                    team.rank
                )));
            }
            return region::ordered_enter(frame, team);
        }
        match frame.ordered.get() {
            OrderedState::NotEntered => {}
            OrderedState::Inside => {
                return Err(Error::state(format!(
                    "sm_ordered_enter: job {job} is already inside its ordered section"
                )))
            }
            OrderedState::Left => {
                return Err(Error::state(format!(
                    "sm_ordered_enter: job {job} already had its ordered section (a job enters at most one)"
                )))
            }
        }
        if frame.critical.get() != CriticalState::NotHeld {
            return Err(Error::state(format!(
                "sm_ordered_enter: job {job} is inside its critical section; waiting for its ordered \
                 turn there could deadlock (leave critical first)"
            )));
        }
        if let Some(ctl) = frame.control() {
            if !wait_ordered_turn(ctl, job, frame.worker as usize, frame.feeder()) {
                return Err(Error::new(
                    Status::SM_STOPPED,
                    format!(
                        "sm_ordered_enter: job {} was stopped before its ordered turn (a job \
                         before it failed elsewhere); return from the job",
                        ctl.global_job(job)
                    ),
                ));
            }
        }
        frame.ordered.set(OrderedState::Inside);
        Ok(())
    })
}

pub fn ordered_leave(pool: usize) -> Result<()> {
    current_job_frame(pool, "sm_ordered_leave", |frame| {
        if frame.ordered.get() != OrderedState::Inside {
            return Err(Error::state(match frame.team.as_ref() {
                Some(team) => format!(
                    "sm_ordered_leave: worker {} is not inside an ordered section",
                    team.rank
                ),
                None => format!(
                    "sm_ordered_leave: job {} is not inside an ordered section",
                    frame.job.get()
                ),
            }));
        }
        leave_ordered(frame);
        Ok(())
    })
}

fn leave_ordered(frame: &Frame) {
    if let Some(team) = frame.team.as_ref() {
        region::ordered_leave(frame, team);
        return;
    }
    if let Some(ctl) = frame.control() {
        publish_ordered_pos(ctl, frame.worker as usize, frame.job.get() + 1);
    }
    frame.ordered.set(OrderedState::Left);
}

/// Classifies work()'s return value and cleans up after a job that forgot to leave its sections,
/// so that the other workers never wait for it.
pub fn finish_job(frame: &Frame, code: i32) -> JobEnd {
    let mut end = match code {
        0 => JobEnd::Done,
        SM_STOP => JobEnd::Stop,
        c => JobEnd::Error(c),
    };
    if frame.critical.get() != CriticalState::NotHeld {
        release_critical(frame);
        end = JobEnd::HeldCritical(code);
    }
    if frame.ordered.get() == OrderedState::Inside {
        leave_ordered(frame);
        end = JobEnd::HeldOrdered(code);
    }
    end
}

/// Checks a worker_init / worker_fini hook that returned `code`, closing any section it left open:
/// None when it succeeded.
pub fn finish_hook(frame: &Frame, code: i32, init: bool) -> Option<HookFailure> {
    let left_open = finish_job(frame, 0) != JobEnd::Done;
    match (code, left_open, init) {
        (0, false, _) => None,
        (0, true, true) => Some(HookFailure::InitLeftSection),
        (0, true, false) => Some(HookFailure::FiniLeftSection),
        (c, _, true) => Some(HookFailure::Init(c)),
        (c, _, false) => Some(HookFailure::Fini(c)),
    }
}

/// Moves worker `w`'s ordered position to `pos` and wakes jobs waiting for their turn.
pub fn publish_ordered_pos(ctl: &Control, w: usize, pos: u64) {
    let h = ctl.header();
    ctl.worker(w).ordered_pos.store(pos, Ordering::SeqCst);
    if h.ordered.waiters.load(Ordering::SeqCst) > 0 {
        h.ordered.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&h.ordered.epoch);
    }
}

/// Waits until `job` may enter its ordered section: its local turn, and for a fed map the gate
/// (feed.rs). False when a fed map was stopped at or below `job` before the gate opened (it may
/// then never open). A serial fed map's job waits by polling its `feeder` (the thread that would
/// open the gate is this one).
fn wait_ordered_turn(ctl: &Control, job: u64, me: usize, feeder: Option<&dyn Feeder>) -> bool {
    let h = ctl.header();
    h.ordered.used.store(1, Ordering::SeqCst);
    let turn = || ctl.ordered_turn_reached(job, me) && ctl.gate_open(job);
    if let Some(feeder) = feeder {
        loop {
            if turn() {
                return true;
            }
            if job >= h.limit.load(Ordering::SeqCst) {
                return false;
            }
            feeder.poll(ctl);
            if !turn() {
                std::thread::sleep(FEED_POLL);
            }
        }
    }
    if futex::spin_until(ORDERED_SPIN, turn) {
        return true;
    }
    loop {
        let epoch = h.ordered.epoch.load(Ordering::SeqCst);
        h.ordered.waiters.fetch_add(1, Ordering::SeqCst);
        let reached = turn();
        let stopped = ctl.fed && job >= h.limit.load(Ordering::SeqCst);
        if !reached && !stopped {
            futex::wait(&h.ordered.epoch, epoch, None);
        }
        h.ordered.waiters.fetch_sub(1, Ordering::SeqCst);
        if reached || turn() {
            return true;
        }
        if stopped {
            return false;
        }
    }
}

fn lock(ctl: &Control, worker: i32) {
    let c = &ctl.header().critical;
    // Test before test-and-set: spinning on a plain load keeps the line shared instead of
    // bouncing it between the waiters.
    let try_lock = || {
        c.state.load(Ordering::Relaxed) == 0
            && c.state
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    };
    if !futex::spin_until(CRITICAL_SPIN, try_lock) {
        // Drepper's mutex: 2 means "held, maybe with sleepers", so the holder knows to wake one.
        while c.state.swap(2, Ordering::Acquire) != 0 {
            futex::wait(&c.state, 2, None);
        }
    }
    c.owner.store(worker, Ordering::Relaxed);
}

fn unlock(ctl: &Control) {
    let c = &ctl.header().critical;
    c.owner.store(-1, Ordering::Relaxed);
    if c.state.swap(0, Ordering::Release) == 2 {
        futex::wake(&c.state, 1);
    }
}

/// Frees the critical lock if worker `w` died holding it, so the jobs before its death can finish.
pub fn release_lock_of_dead_worker(ctl: &Control, w: usize) {
    let c = &ctl.header().critical;
    if c.owner.load(Ordering::Relaxed) == w as i32 {
        c.owner.store(-1, Ordering::Relaxed);
        c.state.store(0, Ordering::Release);
        futex::wake_all(&c.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::control::NO_JOB;
    use crate::engine::outcome::Outcome;
    use crate::engine::task::{Body, Task};
    use crate::engine::worker::testing::{run_on_threads, wait_for};
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::{AtomicU32, AtomicU64};
    use std::sync::{Arc, Mutex};

    const POOL: usize = 0x0dd;

    fn lock_words(ctl: &Control) -> (u32, i32) {
        let c = &ctl.header().critical;
        (
            c.state.load(Ordering::SeqCst),
            c.owner.load(Ordering::SeqCst),
        )
    }

    #[test]
    fn critical_held_by_a_dead_worker_is_freed_and_by_a_live_one_kept() {
        let ctl = Arc::new(Control::new(4, 3, 0, false, 0, None).unwrap());
        assert_eq!(lock_words(&ctl), (0, -1));
        lock(&ctl, 1);
        assert_eq!(lock_words(&ctl), (1, 1));
        // Workers that do not hold the lock die: it stays with worker 1.
        release_lock_of_dead_worker(&ctl, 0);
        release_lock_of_dead_worker(&ctl, 2);
        assert_eq!(lock_words(&ctl), (1, 1));

        // Worker 0 waits for the lock, until it sleeps on it (state 2).
        let got = Arc::new(AtomicU32::new(0));
        let waiter = {
            let (ctl, got) = (Arc::clone(&ctl), Arc::clone(&got));
            std::thread::spawn(move || {
                lock(&ctl, 0);
                got.store(1, Ordering::SeqCst);
            })
        };
        wait_for("the waiter to sleep on the lock", || {
            lock_words(&ctl).0 == 2
        });
        release_lock_of_dead_worker(&ctl, 2);
        assert_eq!(lock_words(&ctl), (2, 1), "a live holder's lock was freed");
        assert_eq!(got.load(Ordering::SeqCst), 0);

        // Worker 1 dies holding it: the sleeping waiter is woken and gets it.
        release_lock_of_dead_worker(&ctl, 1);
        wait_for("the waiter to get the freed lock", || {
            got.load(Ordering::SeqCst) == 1
        });
        waiter.join().unwrap();
        let (state, owner) = lock_words(&ctl);
        assert_ne!(state, 0);
        assert_eq!(owner, 0);
        unlock(&ctl);
        assert_eq!(lock_words(&ctl), (0, -1));
    }

    /// What the jobs of an ordered map saw.
    struct Turns {
        /// passed[j] is set once job j has passed its ordered turn (left its section, or is about to
        /// return without one).
        passed: Vec<AtomicU32>,
        /// The jobs in the order they entered their ordered sections.
        entered: Mutex<Vec<u64>>,
        /// Jobs that entered while a job before them had not passed its turn.
        early: AtomicU64,
        errors: AtomicU64,
    }

    /// Jobs 2, 5, 8, ... skip their ordered section.
    fn skips(job: u64) -> bool {
        job % 3 == 2
    }

    unsafe extern "C" fn ordered_job(ctx: *mut c_void, job: usize, _: *mut c_void) -> c_int {
        // SAFETY: ctx is the test's `Turns`, which outlives the map.
        let t = unsafe { &*(ctx as *const Turns) };
        if skips(job as u64) {
            t.passed[job].store(1, Ordering::SeqCst);
            return 0;
        }
        if ordered_enter(POOL).is_err() {
            t.errors.fetch_add(1, Ordering::SeqCst);
            return 1;
        }
        if t.passed[..job]
            .iter()
            .any(|p| p.load(Ordering::SeqCst) == 0)
        {
            t.early.fetch_add(1, Ordering::SeqCst);
        }
        t.entered.lock().unwrap().push(job as u64);
        // Stay inside a little, so that a job let in too early is likely to get in meanwhile.
        for _ in 0..3 {
            std::thread::yield_now();
        }
        t.passed[job].store(1, Ordering::SeqCst);
        if ordered_leave(POOL).is_err() {
            t.errors.fetch_add(1, Ordering::SeqCst);
        }
        0
    }

    #[test]
    fn ordered_turns_follow_job_order_across_workers_and_skipped_sections() {
        let njobs = 300;
        let ctl = Control::new(njobs, 3, 0, false, 0, None).unwrap();
        let t = Turns {
            passed: (0..njobs).map(|_| AtomicU32::new(0)).collect(),
            entered: Mutex::new(Vec::new()),
            early: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        };
        let task = Task {
            body: Body::Jobs(ordered_job),
            ctx: &t as *const Turns as *mut c_void,
            pool: POOL,
            chunk: 0,
            init: None,
            fini: None,
            inner: None,
        };
        assert_eq!(run_on_threads(&ctl, &task, None), Outcome::Completed);
        assert_eq!(t.errors.load(Ordering::SeqCst), 0);
        assert_eq!(t.early.load(Ordering::SeqCst), 0, "a turn came too early");
        let expected: Vec<u64> = (0..njobs).filter(|&j| !skips(j)).collect();
        assert_eq!(*t.entered.lock().unwrap(), expected);
        assert_eq!(ctl.header().ordered.used.load(Ordering::SeqCst), 1);
        // Every worker ended its loop at "infinity".
        for w in 0..ctl.nworkers {
            assert_eq!(ctl.worker(w).ordered_pos.load(Ordering::SeqCst), NO_JOB);
        }
    }
}
