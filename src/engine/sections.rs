//! `sm_critical_*` and `sm_ordered_*`: what a job calls, on any backend.
//!
//! Critical is a futex mutex in the map's control block (so it works across processes and is fresh
//! for every map: a worker that dies holding it cannot wedge the next map). Ordered lets job `j` in
//! once every other worker's ordered position is at or past `j`; positions only grow, and each
//! worker moves its own when a job leaves its ordered section or finishes. See engine/README.md, "Critical" and "Ordered".

use crate::abi::SM_STOP;
use crate::engine::control::{Control, HookFailure, JobEnd};
use crate::engine::frame::{with_current, CriticalState, Frame, OrderedState};
use crate::engine::region;
use crate::status::{Error, Result};
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
            wait_ordered_turn(ctl, job, frame.worker as usize);
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

fn wait_ordered_turn(ctl: &Control, job: u64, me: usize) {
    let h = ctl.header();
    h.ordered.used.store(1, Ordering::SeqCst);
    if futex::spin_until(ORDERED_SPIN, || ctl.ordered_turn_reached(job, me)) {
        return;
    }
    loop {
        let epoch = h.ordered.epoch.load(Ordering::SeqCst);
        h.ordered.waiters.fetch_add(1, Ordering::SeqCst);
        let reached = ctl.ordered_turn_reached(job, me);
        if !reached {
            futex::wait(&h.ordered.epoch, epoch, None);
        }
        h.ordered.waiters.fetch_sub(1, Ordering::SeqCst);
        if reached || ctl.ordered_turn_reached(job, me) {
            return;
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
