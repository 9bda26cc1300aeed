//! The thread backend: a persistent set of threads, started with the pool, that run each map's
//! `worker::run_worker` on the same control block protocol as forked workers.

use crate::engine::control::Control;
use crate::engine::outcome::{Death, Outcome};
use crate::engine::supervise::{supervise, CallerDuties, Workers};
use crate::engine::task::Task;
use crate::engine::worker::run_worker;
use crate::status::{Error, Result};
use crate::sys::futex;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Pool threads get the stack size of a typical main thread: job code written for serial use
/// (Fortran with large local arrays) expects it.
const STACK_SIZE: usize = 8 << 20;
/// How long an idle thread spins for the next map before it sleeps: back-to-back maps then start
/// without a wake-up, while a caller that goes on with its own work soon has the CPUs back.
const IDLE_SPIN: Duration = Duration::from_micros(50);

/// One thread's doorbell, and what it is rung for: everything a thread needs to start a map sits
/// on this one cache line, so that starting costs it a single transfer from the caller's CPU.
#[repr(C, align(64))]
struct Doorbell {
    /// Rung when the thread has a map to run (and once at shutdown).
    bell: futex::Doorbell,
    /// The map to run (null at shutdown) and its task: written before the bell is rung.
    ctl: AtomicPtr<Control>,
    task: AtomicPtr<Task>,
}

struct Shared {
    doorbells: Vec<Doorbell>,
}

impl Shared {
    /// Hands thread `w` a map (null `ctl`: shut down) and wakes it if it sleeps.
    fn ring(&self, w: usize, ctl: *const Control, task: *const Task) {
        let bell = &self.doorbells[w];
        bell.ctl.store(ctl.cast_mut(), Ordering::Relaxed);
        bell.task.store(task.cast_mut(), Ordering::Relaxed);
        bell.bell.ring();
    }
}

pub struct ThreadPool {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    /// The process that started the threads: in a forked child of it they do not exist.
    owner: libc::pid_t,
}

impl ThreadPool {
    pub fn new(nworkers: usize) -> Result<ThreadPool> {
        let shared = Arc::new(Shared {
            doorbells: (0..nworkers)
                .map(|_| Doorbell {
                    bell: futex::Doorbell::new(),
                    ctl: AtomicPtr::new(std::ptr::null_mut()),
                    task: AtomicPtr::new(std::ptr::null_mut()),
                })
                .collect(),
        });
        let mut pool = ThreadPool {
            shared,
            handles: Vec::with_capacity(nworkers),
            owner: current_pid(),
        };
        for w in 0..nworkers {
            let shared = Arc::clone(&pool.shared);
            let spawned = std::thread::Builder::new()
                .name(format!("sharedmem-{w}"))
                .stack_size(STACK_SIZE)
                .spawn(move || thread_main(&shared, w));
            match spawned {
                Ok(h) => pool.handles.push(h),
                Err(e) => {
                    return Err(Error::nomem(format!(
                        "could not start worker thread {w} of {nworkers}: {e}"
                    )));
                    // dropping `pool` stops the threads already started
                }
            }
        }
        Ok(pool)
    }

    /// Fails when called in a forked child of the process that started the threads.
    pub fn check_owner(&self, call: &str) -> Result<()> {
        if current_pid() != self.owner {
            return Err(Error::state(format!(
                "{call}: this thread pool was created in process {}; its threads do not exist in \
                 this forked child (pid {}): create a new pool here",
                self.owner,
                current_pid()
            )));
        }
        Ok(())
    }

    /// Runs one map on the pool's threads and waits until all of them are done with it. Without a
    /// reduce, progress reports or a feeder the calling thread would only wait, so it runs worker 0
    /// itself (see `run_with_caller`).
    pub fn run(&self, ctl: &Control, task: &Task, duties: CallerDuties) -> Outcome {
        if duties.reducer.is_none() && duties.progress.is_none() && duties.feeder.is_none() {
            return self.run_with_caller(ctl, task, duties);
        }
        for w in 0..ctl.nworkers {
            self.shared.ring(w, ctl, task);
        }
        // Returns once every thread has checked out of this map (active == 0): none of them
        // touches `ctl` or `task` again before it is rung for the next one.
        supervise(ctl, &mut NoDeaths, duties)
    }

    /// Runs a map without reduce, or a parallel region, with the calling thread as worker 0 (as in
    /// OpenMP: then no more threads are busy than there are workers) and the pool's threads 1..
    /// as the others; pool thread 0 sits it out. The workers watch for interrupts themselves
    /// (`ctl.interrupt_baseline`), since the caller only supervises once its own part is done.
    pub fn run_with_caller(&self, ctl: &Control, task: &Task, duties: CallerDuties) -> Outcome {
        for w in 1..ctl.nworkers {
            self.shared.ring(w, ctl, task);
        }
        // The other members use `ctl` and `task` until they check out, so a panic in worker 0 must
        // not skip the wait below.
        let mine =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_worker(ctl, task, 0)));
        let outcome = supervise(ctl, &mut NoDeaths, duties);
        if let Err(panic) = mine {
            std::panic::resume_unwind(panic);
        }
        outcome
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        if current_pid() != self.owner {
            // A forked child: the threads are not here to stop or join.
            std::mem::forget(std::mem::take(&mut self.handles));
            return;
        }
        for w in 0..self.shared.doorbells.len() {
            self.shared.ring(w, std::ptr::null(), std::ptr::null());
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// This process's pid, cached: `getpid` is a system call, and `check_owner` runs on every map of a
/// thread pool. A `fork` (whoever calls it) clears the cache in the child, through an atfork
/// handler registered with the first thread pool.
static CACHED_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forget_pid_in_child() {
    // An atomic store: safe in a forked child of a multi-threaded process.
    CACHED_PID.store(0, Ordering::SeqCst);
}

fn current_pid() -> libc::pid_t {
    static ATFORK: std::sync::Once = std::sync::Once::new();
    let mut registered = true;
    ATFORK.call_once(|| {
        // SAFETY: registers a child handler that only stores to an atomic.
        registered = unsafe { libc::pthread_atfork(None, None, Some(forget_pid_in_child)) } == 0;
    });
    let cached = CACHED_PID.load(Ordering::SeqCst);
    if cached != 0 && registered {
        return cached;
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    if registered {
        CACHED_PID.store(pid, Ordering::SeqCst);
    }
    pid
}

fn thread_main(shared: &Shared, w: usize) {
    let bell = &shared.doorbells[w];
    let mut seen = 0u32;
    loop {
        seen = bell.bell.wait_past(seen, IDLE_SPIN);
        let ctl = bell.ctl.load(Ordering::Relaxed);
        let task = bell.task.load(Ordering::Relaxed);
        if ctl.is_null() {
            return; // shutdown
        }
        // SAFETY: ring() stored both pointers before the ring this thread has just seen
        // (SeqCst on both sides orders them). They point into the stack frame of the thread running
        // ThreadPool::run, which does not return before this worker checks out (active reaches 0).
        let (ctl, task) = unsafe { (&*ctl, &*task) };
        run_worker(ctl, task, w);
    }
}

/// How often a waiting caller checks for a signal that another thread caught.
const INTERRUPT_POLL: Duration = Duration::from_millis(20);

/// Threads cannot die on their own: a crashing job takes the whole process.
pub(crate) struct NoDeaths;

impl Workers for NoDeaths {
    fn poll_death(&mut self, _: &Control) -> Option<Death> {
        None
    }
    fn kill_all(&mut self) -> bool {
        false
    }
    fn poll_interval(&self) -> Option<Duration> {
        // Nothing to poll for deaths, but a signal caught on another thread must still be noticed.
        Some(INTERRUPT_POLL)
    }
}
