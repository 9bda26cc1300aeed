//! The calling thread's place in a map: which worker it is, which job it runs, and whether that job
//! is inside its critical or ordered section.
//!
//! A frame is pushed (thread-locally) around every job a worker runs; nested maps push a frame whose
//! parent is the outer job's. In a forked worker the frame lives in the child's copy of the thread
//! that forked, so no lock or allocation is involved.

use crate::engine::control::Control;
use crate::engine::feed::Feeder;
use crate::engine::region::TeamFrame;
use std::cell::Cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderedState {
    NotEntered,
    Inside,
    Left,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriticalState {
    NotHeld,
    /// Held, and this frame locked `Control`'s lock (which it must unlock).
    Locked,
    /// Held without locking: no other worker can run concurrently (serial map, or an enclosing job
    /// already holds the lock).
    Exclusive,
}

pub struct Frame {
    /// The map's shared control block; None for a serial map or a team of one.
    pub control: Option<*const Control>,
    pub worker: i32,
    /// Identity of the pool that runs the map (its address).
    pub pool: usize,
    pub parent: *const Frame,
    pub job: Cell<u64>,
    pub critical: Cell<CriticalState>,
    pub ordered: Cell<OrderedState>,
    /// Set when this frame runs a parallel region (`sm_parallel`) rather than a map's jobs.
    pub team: Option<TeamFrame>,
    /// This worker's per-worker result in the map or region this frame runs (`sm_worker_local`);
    /// null when it has none. Never inherited from a parent: a nested map has its own or none.
    pub wresult: *mut u8,
    /// A serial fed map's feeder (feed.rs): its jobs run on the thread that feeds, so an ordered
    /// section waiting for the gate polls it instead of sleeping. Null otherwise.
    pub feeder: Option<*const (dyn Feeder + 'static)>,
}

thread_local! {
    static CURRENT: Cell<*const Frame> = const { Cell::new(std::ptr::null()) };
}

impl Frame {
    pub fn new(control: Option<&Control>, worker: i32, pool: usize, parent: *const Frame) -> Frame {
        Frame {
            control: control.map(|c| c as *const Control),
            worker,
            pool,
            parent,
            job: Cell::new(0),
            critical: Cell::new(CriticalState::NotHeld),
            ordered: Cell::new(OrderedState::NotEntered),
            team: None,
            wresult: std::ptr::null_mut(),
            feeder: None,
        }
    }

    /// The same frame, handing `wresult` (null: none) to `sm_worker_local`.
    pub fn with_wresult(self, wresult: *mut u8) -> Frame {
        Frame { wresult, ..self }
    }

    /// The frame of a worker running a parallel region as member `team.rank` of its team.
    pub fn for_region(
        control: Option<&Control>,
        worker: i32,
        pool: usize,
        parent: *const Frame,
        team: TeamFrame,
    ) -> Frame {
        Frame {
            team: Some(team),
            ..Frame::new(control, worker, pool, parent)
        }
    }

    /// Runs `f` with this frame as the thread's current one, set up for `job`.
    pub fn run_job<R>(&self, job: u64, f: impl FnOnce() -> R) -> R {
        self.job.set(job);
        self.critical.set(CriticalState::NotHeld);
        self.ordered.set(OrderedState::NotEntered);
        let previous = CURRENT.with(|c| c.replace(self as *const Frame));
        struct Restore(*const Frame);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(previous);
        f()
    }

    /// The same frame, polling `feeder` while a job waits at the ordered gate (a serial fed map).
    ///
    /// # Safety
    /// The frame must not outlive `feeder` (the serial map keeps both on its stack).
    pub unsafe fn with_feeder(self, feeder: &dyn Feeder) -> Frame {
        // SAFETY: only the lifetime is erased; the caller keeps the feeder alive for as long as
        // the frame.
        let feeder: &'static dyn Feeder = unsafe { std::mem::transmute(feeder) };
        Frame {
            feeder: Some(feeder as *const dyn Feeder),
            ..self
        }
    }

    /// The serial fed map's feeder, if this frame runs one.
    pub fn feeder(&self) -> Option<&dyn Feeder> {
        // SAFETY: `with_feeder`'s contract: the feeder outlives the frame.
        self.feeder.map(|f| unsafe { &*f })
    }

    pub fn control(&self) -> Option<&Control> {
        // SAFETY: a frame never outlives the map whose control block it points to (frames are
        // pushed and popped within the worker's run of that map).
        self.control.map(|c| unsafe { &*c })
    }

    pub fn parent(&self) -> Option<&Frame> {
        // SAFETY: the parent frame is on this thread's stack, below the current one, for as long as
        // the current one is alive.
        unsafe { self.parent.as_ref() }
    }

    /// True when `pool` runs this frame's map or an enclosing one.
    pub fn belongs_to(&self, pool: usize) -> bool {
        let mut f = Some(self);
        while let Some(frame) = f {
            if frame.pool == pool {
                return true;
            }
            f = frame.parent();
        }
        false
    }
}

/// Calls `f` with the calling thread's current frame, or None outside any job.
pub fn with_current<R>(f: impl FnOnce(Option<&Frame>) -> R) -> R {
    let ptr = CURRENT.with(|c| c.get());
    // SAFETY: CURRENT only ever holds the address of a frame that is live on this thread's stack
    // (run_job restores the previous value before the frame goes away).
    f(unsafe { ptr.as_ref() })
}

/// `sm_worker_local`: the per-worker result of the innermost map or region the calling thread
/// works for; Err(true) outside any, Err(false) when that map or region has none.
pub fn worker_local() -> Result<*mut u8, bool> {
    with_current(|f| match f {
        None => Err(true),
        Some(frame) if frame.wresult.is_null() => Err(false),
        Some(frame) => Ok(frame.wresult),
    })
}

/// True when the calling thread is running a job.
pub fn in_job() -> bool {
    with_current(|f| f.is_some())
}
