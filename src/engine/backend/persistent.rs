//! The persistent backend (issue 14): worker processes forked once, at `sm_pool_new`, that serve
//! every map and region of the pool until `sm_pool_free`. The protocol is written out in
//! engine/README.md, "Persistent workers".
//!
//! Who is who:
//! - the caller: rings the workers for a map, supervises it (supervise.rs) as for forked workers;
//! - the zygote: forked from the caller at `sm_pool_new`, it keeps the caller's memory as it was
//!   then; it forks the workers (and their replacements), reaps them, records how they died, and
//!   kills them when asked (only their parent can signal them without racing a pid's reuse);
//! - the workers: children of the zygote, waiting on their seat's doorbell between maps.
//!
//! Everything they share lives in the shared heap (sys/heap.rs), which is mapped in all of them at
//! the same address: the board (seats and requests), each map's control block, and a bitwise copy
//! of the map's `Control` and `Task` (whose pointers are heap or code addresses, valid in every
//! process of the pool).

use crate::engine::control::Control;
use crate::engine::inner;
use crate::engine::outcome::{Cause, Death, Outcome};
use crate::engine::supervise::{supervise, CallerDuties, Workers};
use crate::engine::task::Task;
use crate::engine::worker::run_worker;
use crate::status::{Error, Result};
use crate::sys::futex;
use crate::sys::runtimes::Runtimes;
use crate::sys::shm::SharedMapping;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The signals that stop a program, which the zygote ignores (the caller decides about those).
const STOP_SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];
/// How often the zygote looks whether the caller is still there (a SIGCHLD or a request wakes it
/// sooner).
const ZYGOTE_POLL: Duration = Duration::from_millis(100);
/// How long the caller waits for workers to start before giving up.
const START_LIMIT: Duration = Duration::from_secs(20);
/// How long an idle worker spins for the next map before it sleeps (as pool threads do).
const IDLE_SPIN: Duration = Duration::from_micros(50);
/// How often the caller looks at the seats for deaths while it waits.
const DEATH_POLL: Duration = Duration::from_millis(5);

/// One worker's place on the board.
#[repr(C, align(64))]
struct Seat {
    /// Rung by the caller to hand the worker a map.
    bell: futex::Doorbell,
    /// The worker's pid, set by the zygote when it forks it and kept after its death for the
    /// report; 0 when there was none.
    pid: AtomicI32,
    /// The same while the worker is the zygote's unreaped child, else 0: what the zygote may
    /// signal (a reaped worker's pid may belong to another process by now). Only the zygote
    /// uses it.
    unreaped: AtomicI32,
    /// 1 once the worker waits for maps.
    ready: AtomicU32,
    /// Set by the caller: fork a worker for this seat (the zygote clears it).
    wanted: AtomicU32,
    /// Set by the zygote when it reaped this seat's worker, with its wait status.
    died: AtomicU32,
    status: AtomicI32,
    /// Who takes the map this seat was last rung for: `Join::Open` when rung, then either the
    /// worker joins it or the caller closes it (see `Join`).
    join: AtomicU32,
}

/// A seat's part in one map. The caller opens the seat before ringing it; a worker that wakes
/// joins the map with a compare-and-swap, and the caller may instead close the seat, once every
/// job is claimed, if the worker has not woken yet: then the caller need not wait for a worker
/// that would only check in and out (on a machine with as many workers as CPUs, a worker that
/// is not running can take a scheduler's time slice to get a CPU). Exactly one of the two
/// compare-and-swaps wins. The word carries the ring count the map was rung with, so that a
/// worker that wakes late never joins a map that is over: it finds another count there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Join {
    Open = 1,
    Joined = 2,
    Closed = 3,
}

impl Join {
    fn word(self, rings: u32) -> u32 {
        rings.wrapping_shl(2) | self as u32
    }
}

/// What the caller, the zygote and the workers share.
#[repr(C)]
struct Board {
    /// The zygote sleeps on it; bumped with every request.
    zygote_bell: AtomicU32,
    /// Requests to the zygote.
    kill_all: AtomicU32,
    shutdown: AtomicU32,
    /// Bumped by the zygote for every worker it reaped; the caller may sleep on it.
    deaths: AtomicU32,
    /// The map the workers are rung for: written by the caller before it rings, read by the
    /// workers after, never dropped (bitwise copies of the caller's).
    control: MaybeUninit<Control>,
    task: MaybeUninit<Task>,
}

/// The caller's handle on a pool's resident workers.
pub struct Residents {
    board: SharedMapping,
    /// The code the workers have: what was loaded when the pool was made.
    code: Vec<(usize, usize)>,
    nworkers: usize,
    zygote: libc::pid_t,
    owner: libc::pid_t,
}

// SAFETY: the board is shared memory used through atomics; only the thread holding the pool's
// busy flag writes the staged map.
unsafe impl Send for Residents {}
// SAFETY: as above.
unsafe impl Sync for Residents {}

fn board_size(nworkers: usize) -> usize {
    seats_offset() + nworkers * std::mem::size_of::<Seat>()
}

fn seats_offset() -> usize {
    std::mem::size_of::<Board>().next_multiple_of(64)
}

impl Residents {
    fn board(&self) -> &Board {
        // SAFETY: the mapping starts with a zero-initialised Board (all atomics, or MaybeUninit).
        unsafe { &*(self.board.as_ptr() as *const Board) }
    }

    fn seat(&self, w: usize) -> &Seat {
        seat(self.board.as_ptr(), w)
    }

    /// Forks the zygote and, through it, `nworkers` workers; returns once they all wait for maps.
    pub fn start(nworkers: usize) -> Result<Residents> {
        crate::sys::heap::range().map_err(|why| {
            Error::nomem(format!(
                "sm_pool_new: a persistent pool needs the shared heap, and there is none: {why}"
            ))
        })?;
        let board = SharedMapping::new(board_size(nworkers))?;
        if !board.in_heap() {
            return Err(Error::nomem(
                "sm_pool_new: the shared heap is full (SM_HEAP_SIZE): no room for the pool's board",
            ));
        }
        // The loaded OpenMP/BLAS runtimes are looked up once; a Task's plan refers to that table,
        // which the workers must find filled in.
        let runtimes = crate::sys::runtimes::loaded();
        // The zygote's children run the jobs' OpenMP regions: libgomp's pool of this thread, whose
        // threads they would not have, is freed first (or their regions run on one thread).
        let serialize_omp =
            inner::free_gnu_pools_before_fork(runtimes, "this pool's").then_some(runtimes);
        // SAFETY: getpid has no preconditions.
        let owner = unsafe { libc::getpid() };
        // SAFETY: fflush(NULL) flushes every C output stream before the fork, so nothing the
        // caller has buffered is written again by the zygote's children.
        unsafe { libc::fflush(std::ptr::null_mut()) };
        let code = crate::sys::runtimes::code_ranges();
        let base = board.as_ptr() as usize;
        // SAFETY: the child runs zygote_main, which never returns.
        let zygote = unsafe { libc::fork() };
        if zygote == 0 {
            zygote_main(base as *mut u8, nworkers, owner, serialize_omp);
        }
        if zygote < 0 {
            return Err(Error::nomem(format!(
                "sm_pool_new: could not fork the pool's zygote: {}",
                std::io::Error::last_os_error()
            )));
        }
        let residents = Residents {
            board,
            code,
            nworkers,
            zygote,
            owner,
        };
        residents.replace_dead(true)?;
        Ok(residents)
    }

    /// Asks the zygote for a worker in every seat that has none (all of them with `all`), and
    /// waits until they wait for maps.
    fn replace_dead(&self, all: bool) -> Result<()> {
        let mut asked = false;
        for w in 0..self.nworkers {
            let seat = self.seat(w);
            if all || seat.died.load(Ordering::Acquire) == 1 {
                seat.ready.store(0, Ordering::SeqCst);
                seat.died.store(0, Ordering::SeqCst);
                seat.wanted.store(1, Ordering::SeqCst);
                asked = true;
            }
        }
        if !asked {
            return Ok(());
        }
        self.ring_zygote();
        let start = Instant::now();
        while (0..self.nworkers).any(|w| self.seat(w).ready.load(Ordering::Acquire) == 0) {
            if let Some(w) =
                (0..self.nworkers).find(|&w| self.seat(w).died.load(Ordering::Acquire) == 1)
            {
                return Err(Error::nomem(format!(
                    "persistent worker {w} died while starting (wait status {:#x})",
                    self.seat(w).status.load(Ordering::Acquire)
                )));
            }
            if start.elapsed() > START_LIMIT {
                return Err(Error::nomem(format!(
                    "persistent workers did not start within {} s",
                    START_LIMIT.as_secs()
                )));
            }
            let seen = self.board().deaths.load(Ordering::SeqCst);
            futex::wait(&self.board().deaths, seen, Some(Duration::from_millis(1)));
        }
        Ok(())
    }

    fn ring_zygote(&self) {
        let b = self.board();
        b.zygote_bell.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&b.zygote_bell);
    }

    /// Fails when called in a forked child of the process that made the pool.
    pub fn check_owner(&self, call: &str) -> Result<()> {
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        if me != self.owner {
            return Err(Error::state(format!(
                "{call}: this persistent pool was created in process {}; its workers serve that \
                 process, not this forked child (pid {me}): create a new pool here",
                self.owner
            )));
        }
        Ok(())
    }

    /// The workers were forked at sm_pool_new: they see the caller's memory as it was then,
    /// except `sm_empty` arrays, so a ctx elsewhere would be read stale unless it is copied.
    pub fn check_ctx(&self, ctx: *mut std::ffi::c_void, ctx_size: usize) -> Result<()> {
        let ctx = ctx as *const u8;
        if ctx_size == 0 && !ctx.is_null() && !crate::sys::shm::is_allocated(ctx) {
            return Err(Error::invalid(format!(
                "ctx {ctx:p} is neither NULL nor in sm_empty memory, and opts->ctx_size is 0: \
                 the workers of a persistent pool were forked at sm_pool_new and would read that \
                 memory as it was then; put ctx in sm_empty memory, or give its size in \
                 sm_map_opts.ctx_size (sm_map_ex, sm_parallel_ex) to have it copied to them"
            )));
        }
        Ok(())
    }

    /// The workers have the code that was loaded when the pool was made: a callback they are to
    /// run from a library loaded later (dlopen) would be an address with nothing, or something
    /// else, behind it there.
    pub fn check_callbacks(&self, task: &Task) -> Result<()> {
        let body = match task.body {
            crate::engine::task::Body::Jobs(f) => ("work", f as usize),
            crate::engine::task::Body::Region(f) => ("region", f as usize),
        };
        let hooks = [
            Some(body),
            task.init.map(|f| ("worker_init", f as usize)),
            task.fini.map(|f| ("worker_fini", f as usize)),
        ];
        for (name, addr) in hooks.into_iter().flatten() {
            if !self.code.iter().any(|&(lo, hi)| (lo..hi).contains(&addr)) {
                return Err(Error::invalid(format!(
                    "{name} ({addr:#x}) is not in the code that was loaded when this persistent pool \
                     was created: its workers do not have it. A library loaded later with dlopen: \
                     create the pool after loading it. Code generated at run time (a ctypes or \
                     JIT callback) is never in a persistent pool's workers: use another backend"
                )));
            }
        }
        Ok(())
    }

    /// Runs one map on the resident workers and waits until all of them are done with it.
    pub fn run(&self, ctl: &Control, task: &Task, duties: CallerDuties) -> Result<Outcome> {
        if !ctl.in_heap() {
            return Err(Error::nomem(
                "the map's control block is not in the shared heap (SM_HEAP_SIZE too small?)",
            ));
        }
        self.replace_dead(false)?;
        let board = self.board.as_ptr() as *mut Board;
        // SAFETY: no worker reads the staged map before it is rung below, and every worker of
        // the previous map has checked out; the copies are never dropped (MaybeUninit).
        unsafe {
            std::ptr::addr_of_mut!((*board).control).write(MaybeUninit::new(std::ptr::read(ctl)));
            std::ptr::addr_of_mut!((*board).task).write(MaybeUninit::new(std::ptr::read(task)));
        }
        // Only the caller rings, so the count this ring makes is known before it.
        let rings: Vec<u32> = (0..ctl.nworkers)
            .map(|w| self.seat(w).bell.rings().wrapping_add(1))
            .collect();
        for (w, &r) in rings.iter().enumerate() {
            let seat = self.seat(w);
            seat.join.store(Join::Open.word(r), Ordering::SeqCst);
            seat.bell.ring();
        }
        // A latecomer may be left out of a map only where no worker has to take part: not in a
        // region's team, not where hooks or per-worker results are due from every worker, not
        // in a fed map (whose jobs arrive while it runs).
        let may_leave_out = !ctl.is_region
            && !ctl.fed
            && task.init.is_none()
            && task.fini.is_none()
            && ctl.wresult_size == 0;
        let mut seats = Seats {
            residents: self,
            reported: vec![false; ctl.nworkers],
            killed: false,
            latecomers: if may_leave_out { rings } else { Vec::new() },
        };
        let outcome = supervise(ctl, &mut seats, duties);
        if seats.killed {
            // As with forked workers, none of them outlives the call: wait until the zygote has
            // reaped every worker it killed, those the map did not use included (they are all
            // replaced at the next map).
            let start = Instant::now();
            while (0..self.nworkers).any(|w| self.seat(w).died.load(Ordering::Acquire) == 0)
                && start.elapsed() < START_LIMIT
            {
                let seen = self.board().deaths.load(Ordering::SeqCst);
                futex::wait(&self.board().deaths, seen, Some(Duration::from_millis(1)));
            }
        }
        Ok(outcome)
    }
}

impl Drop for Residents {
    fn drop(&mut self) {
        // SAFETY: getpid has no preconditions.
        if unsafe { libc::getpid() } != self.owner {
            return; // a forked child: the zygote is not ours
        }
        self.board().shutdown.store(1, Ordering::SeqCst);
        self.ring_zygote();
        let start = Instant::now();
        loop {
            let mut status = 0;
            // SAFETY: the zygote is our child, not reaped yet.
            let rc = unsafe { libc::waitpid(self.zygote, &mut status, libc::WNOHANG) };
            if rc == self.zygote || rc < 0 {
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                // SAFETY: our unreaped child.
                unsafe { libc::kill(self.zygote, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn seat<'a>(board: *mut u8, w: usize) -> &'a Seat {
    // SAFETY: the seats follow the board, 64-aligned, one per worker, in shared memory that lives
    // as long as the pool (and in the zygote and workers, for their whole life).
    unsafe { &*(board.add(seats_offset()) as *const Seat).add(w) }
}

/// The seats of one map, as its supervisor sees them: deaths as the zygote recorded them, and
/// the workers not known yet to have joined.
struct Seats<'a> {
    residents: &'a Residents,
    reported: Vec<bool>,
    /// The zygote was asked to kill the workers.
    killed: bool,
    /// The ring count of each seat whose worker may still be left out of the map; emptied once
    /// every seat is settled (or from the start when every worker must take part).
    latecomers: Vec<u32>,
}

impl Workers for Seats<'_> {
    fn poll_death(&mut self, ctl: &Control) -> Option<Death> {
        for w in 0..self.reported.len() {
            let seat = self.residents.seat(w);
            if self.reported[w] || seat.died.load(Ordering::Acquire) == 0 {
                continue;
            }
            self.reported[w] = true;
            let status = seat.status.load(Ordering::Acquire);
            let cause = if libc::WIFSIGNALED(status) {
                Cause::Signal(libc::WTERMSIG(status))
            } else {
                Cause::Exit(libc::WEXITSTATUS(status))
            };
            let record = ctl.worker(w);
            let job = record.current_job.load(Ordering::Acquire);
            return Some(Death {
                worker: w,
                pid: seat.pid.load(Ordering::Acquire),
                job: (job != crate::engine::control::NO_JOB).then_some(job),
                lost_from: record.unfinished.load(Ordering::Acquire),
                cause,
                stage: record.stage.load(Ordering::Acquire),
            });
        }
        None
    }

    fn kill_all(&mut self) -> bool {
        self.killed = true;
        self.residents.board().kill_all.store(1, Ordering::SeqCst);
        self.residents.ring_zygote();
        true
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(DEATH_POLL)
    }

    fn release_latecomers(&mut self, ctl: &Control) {
        if self.latecomers.is_empty() {
            return;
        }
        let h = ctl.header();
        let end = h.limit.load(Ordering::SeqCst).min(ctl.njobs);
        if h.next_job.load(Ordering::SeqCst) < end {
            return; // jobs are left: a latecomer may still be needed
        }
        for (w, &rings) in self.latecomers.iter().enumerate() {
            let closed = self.residents.seat(w).join.compare_exchange(
                Join::Open.word(rings),
                Join::Closed.word(rings),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            if closed.is_ok() {
                // It will not come: its check-out is ours to do.
                h.check_out();
            }
        }
        self.latecomers.clear();
    }
}

extern "C" fn on_sigchld(_: libc::c_int) {}

/// Set in a resident worker process (and only there).
static RESIDENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// In a resident worker, flushes what its jobs printed (C stdio; the process backend's workers
/// flush when they exit, before the caller can return).
pub fn flush_if_resident() {
    if RESIDENT.load(Ordering::Relaxed) {
        // SAFETY: fflush(NULL) flushes every C output stream of this process.
        unsafe { libc::fflush(std::ptr::null_mut()) };
    }
}

/// The zygote: forks, reaps and kills the workers on request, until the pool is freed or its
/// caller is gone. Uses system calls and atomics only (it is a fork of a possibly multi-threaded
/// process, and its children are forks of it).
fn zygote_main(
    board: *mut u8,
    nworkers: usize,
    caller: libc::pid_t,
    serialize_omp: Option<&Runtimes>,
) -> ! {
    // SAFETY: the board is a zero-initialised Board in shared memory mapped here too.
    let b = unsafe { &*(board as *const Board) };
    // Which of the stop signals the caller ignored when it made the pool: they stay ignored in
    // the workers, as in forked workers; the others get their default action there.
    let mut ignored = [false; STOP_SIGNALS.len()];
    // SAFETY: signal dispositions of this process only; the handler does nothing (its point is
    // to interrupt the futex wait when a worker dies). The name shows in ps and /proc.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"sm-zygote".as_ptr());
        for (i, &sig) in STOP_SIGNALS.iter().enumerate() {
            ignored[i] = libc::signal(sig, libc::SIG_IGN) == libc::SIG_IGN;
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigchld as *const () as usize;
        libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut());
    }
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    loop {
        let bell = b.zygote_bell.load(Ordering::SeqCst);
        // SAFETY: getppid has no preconditions.
        let orphan = unsafe { libc::getppid() } != caller;
        if orphan || b.shutdown.load(Ordering::SeqCst) != 0 {
            signal_workers(board, nworkers, libc::SIGKILL);
            reap(board, nworkers, b, true);
            // SAFETY: leaves the zygote.
            unsafe { libc::_exit(0) };
        }
        if b.kill_all.swap(0, Ordering::SeqCst) != 0 {
            signal_workers(board, nworkers, libc::SIGKILL);
        }
        for w in 0..nworkers {
            let s = seat(board, w);
            if s.wanted.swap(0, Ordering::SeqCst) == 1 {
                // SAFETY: the child runs worker_main, which never returns.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    worker_main(board, w, me, ignored, serialize_omp);
                }
                if pid < 0 {
                    s.status.store(0x7f00, Ordering::SeqCst); // as if it exited with 127
                    s.died.store(1, Ordering::SeqCst);
                    b.deaths.fetch_add(1, Ordering::SeqCst);
                    futex::wake_all(&b.deaths);
                } else {
                    s.pid.store(pid, Ordering::SeqCst);
                    s.unreaped.store(pid, Ordering::SeqCst);
                }
            }
        }
        reap(board, nworkers, b, false);
        futex::wait(&b.zygote_bell, bell, Some(ZYGOTE_POLL));
    }
}

/// Sends `signal` to every live worker (the zygote's own children, not reaped yet).
fn signal_workers(board: *mut u8, nworkers: usize, signal: i32) {
    for w in 0..nworkers {
        let pid = seat(board, w).unreaped.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: pid is an unreaped child of this zygote (reap clears `unreaped` before it
            // records the death), so it names that worker and no other process.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

/// Reaps dead workers and records how they ended on their seats (all of them with `all`).
fn reap(board: *mut u8, nworkers: usize, b: &Board, all: bool) {
    loop {
        let mut status = 0;
        let flags = if all { 0 } else { libc::WNOHANG };
        // SAFETY: waits for any child of this zygote.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        if pid <= 0 {
            return;
        }
        if let Some(w) =
            (0..nworkers).find(|&w| seat(board, w).unreaped.load(Ordering::SeqCst) == pid)
        {
            let s = seat(board, w);
            s.unreaped.store(0, Ordering::SeqCst);
            s.status.store(status, Ordering::SeqCst);
            s.died.store(1, Ordering::SeqCst);
            b.deaths.fetch_add(1, Ordering::SeqCst);
            futex::wake_all(&b.deaths);
        }
    }
}

/// A resident worker: waits for maps and runs them, until it is killed or its zygote dies.
fn worker_main(
    board: *mut u8,
    w: usize,
    zygote: libc::pid_t,
    ignored: [bool; STOP_SIGNALS.len()],
    serialize_omp: Option<&Runtimes>,
) -> ! {
    // SAFETY: async-signal-safe calls on this process's own state.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"sm-worker".as_ptr());
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::getppid() != zygote {
            libc::_exit(111);
        }
        for (&sig, &ignore) in STOP_SIGNALS.iter().zip(&ignored) {
            libc::signal(sig, if ignore { libc::SIG_IGN } else { libc::SIG_DFL });
        }
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
    }
    RESIDENT.store(true, Ordering::Relaxed);
    if let Some(runtimes) = serialize_omp {
        inner::serialize_gnu_regions(runtimes);
    }
    // SAFETY: the board is a Board in shared memory mapped here too.
    let b = unsafe { &*(board as *const Board) };
    let s = seat(board, w);
    let mut seen = s.bell.rings();
    s.ready.store(1, Ordering::SeqCst);
    // The caller waits for `ready` on the `deaths` word (with a short timeout): wake it now.
    futex::wake_all(&b.deaths);
    loop {
        // Back-to-back maps start without a wake-up; an idle pool soon gives the CPUs back.
        seen = s.bell.wait_past(seen, IDLE_SPIN);
        let joined = s.join.compare_exchange(
            Join::Open.word(seen),
            Join::Joined.word(seen),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        if joined.is_err() {
            continue; // the caller went on without this worker
        }
        // SAFETY: the caller staged the map before ringing (SeqCst on both sides), and does not
        // touch it again before every worker that joined has checked out. The copies are never
        // dropped.
        let (ctl, task) = unsafe {
            (
                ManuallyDrop::new(b.control.assume_init_read()),
                ManuallyDrop::new(b.task.assume_init_read()),
            )
        };
        run_worker(&ctl, &task, w);
    }
}
