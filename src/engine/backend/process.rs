//! The process backend: every map forks its workers, which run `worker::run_worker` on the shared
//! control block and leave with `_exit`. See engine/README.md, "Process workers".

use crate::engine::control::Control;
use crate::engine::control::{wake_slot_waiters, NO_JOB};
use crate::engine::outcome::{Cause, Death, Outcome};
use crate::engine::supervise::{supervise, CallerDuties, Workers};
use crate::engine::task::Task;
use crate::engine::worker::run_worker;
use crate::status::{Error, Result};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the caller looks for dead workers while it waits.
const DEATH_POLL: Duration = Duration::from_millis(5);

/// Exit code of a worker whose caller died before it could start.
const ORPHAN_EXIT: i32 = 111;
/// Exit code of a worker in which the library itself panicked (a bug).
const PANIC_EXIT: i32 = 112;

struct Children {
    pids: Vec<libc::pid_t>,
    /// Parallel to pids: true once reaped (or found reaped by someone else).
    reaped: Vec<bool>,
}

impl Children {
    fn reap_blocking(&mut self) {
        for (i, &pid) in self.pids.iter().enumerate() {
            if self.reaped[i] {
                continue;
            }
            let mut status = 0;
            loop {
                // SAFETY: waitpid on a child of ours that has not been reaped yet.
                let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
                if rc >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    break;
                }
            }
            self.reaped[i] = true;
        }
    }
}

impl Workers for Children {
    fn poll_death(&mut self, ctl: &Control) -> Option<Death> {
        for (w, &pid) in self.pids.iter().enumerate() {
            if self.reaped[w] {
                continue;
            }
            let mut status = 0;
            // SAFETY: waitpid on a specific child of ours, without blocking.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            let cause = if rc == pid {
                if libc::WIFSIGNALED(status) {
                    Cause::Signal(libc::WTERMSIG(status))
                } else if libc::WIFEXITED(status) {
                    Cause::Exit(libc::WEXITSTATUS(status))
                } else {
                    continue; // stopped or continued: still alive
                }
            } else if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
            {
                Cause::Vanished
            } else {
                continue;
            };
            self.reaped[w] = true;
            let record = ctl.worker(w);
            if record.finished.load(Ordering::Acquire) == 1 {
                continue; // it had done all its work; how it then left does not matter
            }
            let job = record.current_job.load(Ordering::Acquire);
            return Some(Death {
                worker: w,
                pid,
                job: (job != NO_JOB).then_some(job),
                lost_from: record.unfinished.load(Ordering::Acquire),
                cause,
                stage: record.stage.load(Ordering::Acquire),
            });
        }
        None
    }

    fn kill_all(&mut self) -> bool {
        for (w, &pid) in self.pids.iter().enumerate() {
            if !self.reaped[w] {
                // SAFETY: pid is an unreaped child of ours, so it cannot have been recycled.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        true
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(DEATH_POLL)
    }
}

/// Runs a map on `ctl.nworkers` forked workers; returns once every one of them is reaped.
pub fn run(ctl: &Control, task: &Task, duties: CallerDuties) -> Result<Outcome> {
    // Whatever the caller has buffered (C stdio, and Fortran units when the program uses
    // gfortran) would otherwise be written once by the caller and once more by a worker.
    let fortran_flush = fortran_flush_all();
    flush_all_output(fortran_flush);
    // libgomp's pool of OpenMP threads would not exist in the children (see inner.rs)
    if let Some(plan) = &task.inner {
        plan.before_fork();
    }
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let mut children = Children {
        pids: Vec::with_capacity(ctl.nworkers),
        reaped: Vec::with_capacity(ctl.nworkers),
    };
    for w in 0..ctl.nworkers {
        // SAFETY: fork is how this backend works. The child only runs child_main, which touches
        // what is safe after fork in a multi-threaded process (see there) and never returns.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            child_main(ctl, task, w, parent, fortran_flush);
        }
        if pid < 0 {
            let err = std::io::Error::last_os_error();
            let h = ctl.header();
            // Stop the workers already started and account for the ones that never were.
            h.limit.store(0, Ordering::SeqCst);
            h.active()
                .fetch_sub((ctl.nworkers - w) as u32, Ordering::SeqCst);
            wake_slot_waiters(ctl);
            children.kill_all();
            children.reap_blocking();
            return Err(Error::nomem(format!(
                "could not start worker {w} of {}: fork failed: {err} (no job was run serially instead)",
                ctl.nworkers
            )));
        }
        children.pids.push(pid);
        children.reaped.push(false);
    }
    let outcome = supervise(ctl, &mut children, duties);
    children.reap_blocking();
    Ok(outcome)
}

/// The body of a forked worker. Runs in a child of a possibly multi-threaded process, so until the
/// job callback it uses only system calls, atomics and memory it owns (no locks, no allocation).
fn child_main(
    ctl: &Control,
    task: &Task,
    w: usize,
    parent: libc::pid_t,
    fortran_flush: Option<FortranFlush>,
) -> ! {
    // SAFETY: prctl/getppid/sigaction/_exit are async-signal-safe system calls; the sigaction
    // structs are plain data owned by this frame.
    unsafe {
        // Die with the caller: if it is killed, no worker goes on running on its own.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if libc::getppid() != parent {
            libc::_exit(ORPHAN_EXIT);
        }
        // The caller's own Ctrl-C/terminate handlers are for the caller: in a worker they would
        // run the caller's cleanup on a copy of its memory. Ignored signals stay ignored.
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction != libc::SIG_IGN
                && old.sa_sigaction != libc::SIG_DFL
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
    }
    let code =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_worker(ctl, task, w))) {
            Ok(()) => 0,
            Err(_) => PANIC_EXIT,
        };
    // What the jobs printed is flushed (the caller's own buffers were flushed before the fork, so
    // nothing of the caller's is written twice); _exit then skips the caller's atexit handlers.
    flush_all_output(fortran_flush);
    // SAFETY: _exit ends this child; nothing after it runs.
    unsafe { libc::_exit(code) }
}

/// gfortran's FLUSH: `_gfortran_flush_i4(NULL)` flushes every unit.
type FortranFlush = unsafe extern "C" fn(*const i32);

/// The gfortran runtime's flush, when the program has one loaded. Looked up in the caller before
/// forking (dlsym takes the loader's lock, which is not safe to take in a forked child).
fn fortran_flush_all() -> Option<FortranFlush> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the loaded objects'
    // symbol tables; a non-null result is gfortran's flush entry point, whose C signature is
    // `void _gfortran_flush_i4(GFC_INTEGER_4 *unit)`.
    unsafe {
        let symbol = libc::dlsym(libc::RTLD_DEFAULT, c"_gfortran_flush_i4".as_ptr());
        (!symbol.is_null()).then(|| std::mem::transmute::<*mut libc::c_void, FortranFlush>(symbol))
    }
}

fn flush_all_output(fortran_flush: Option<FortranFlush>) {
    // SAFETY: fflush(NULL) flushes every C output stream; gfortran's flush with a NULL unit flushes
    // every Fortran unit (glibc resets stdio locks in a forked child; libgfortran's unit locks are
    // as safe there as any Fortran I/O the jobs themselves do).
    unsafe {
        if let Some(flush) = fortran_flush {
            flush(std::ptr::null());
        }
        libc::fflush(std::ptr::null_mut());
    }
}
