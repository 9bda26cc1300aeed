//! Helper threads that degrade instead of failing: `spawn_or_run` starts a scoped thread, or does
//! the work on the calling thread when the system refuses one. Used by `sm_fromfile` and
//! `sm_argsort`, whose helper threads each do a part of the work that no other thread waits for.

use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

/// A piece of work given to [`spawn_or_run`]: running on a thread of its own, or already done.
pub(crate) enum Started<'scope, T> {
    Thread(ScopedJoinHandle<'scope, Option<T>>),
    Done(T),
}

impl<T> Started<'_, T> {
    /// The work's result, once it is done; a panic in its thread goes on in the caller.
    pub(crate) fn join(self) -> T {
        match self {
            Started::Done(t) => t,
            Started::Thread(h) => h
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
                .expect("a thread that started always finds its work (see spawn_or_run)"),
        }
    }
}

/// Runs `work` on a new thread of scope `s` or, when the system refuses one (a thread or process
/// limit such as RLIMIT_NPROC, no memory for a stack), right here on the calling thread before
/// returning. `Scope::spawn` would panic instead (which the C boundary reports as an internal
/// error). The helper threads of `sm_fromfile` and `sm_argsort` each do a part of the work that
/// no other thread waits for (disjoint ranges, or buckets taken from a shared queue), so doing a
/// part on the calling thread gives exactly the same result, only later: fewer threads means
/// slower, never different or failed.
pub(crate) fn spawn_or_run<'scope, 'env, T, F>(
    s: &'scope Scope<'scope, 'env>,
    work: F,
) -> Started<'scope, T>
where
    T: Send + 'scope,
    F: FnOnce() -> T + Send + 'scope,
{
    // A failed spawn drops the closure it was given, so the work itself waits in a slot that the
    // thread takes it from, and that the calling thread takes it back from when there is no thread.
    let slot = Arc::new(Mutex::new(Some(work)));
    let theirs = Arc::clone(&slot);
    let spawned = std::thread::Builder::new().spawn_scoped(s, move || {
        let work = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
        work.map(|work| work())
    });
    match spawned {
        Ok(handle) => Started::Thread(handle),
        Err(_) => {
            let work = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            Started::Done(work.expect(
                "the work of a thread that did not start is still in its slot",
            )())
        }
    }
}
