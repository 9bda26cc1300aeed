//! Process-wide mutexes that a `fork()` cannot leave locked in the child.
//!
//! The library keeps a little process-wide state behind mutexes (live pools, `sm_empty`
//! allocations, the signal watch). Callers are often multi-threaded, and any of their threads may
//! fork (the child then typically calls sharedmem too): had another thread held one of these
//! mutexes at that moment, the child's copy would stay locked forever. So every such mutex is a
//! [`ForkSafeMutex`]: holding it also holds a process-wide *gate* shared, and a `pthread_atfork`
//! handler takes the gate exclusively before any fork and releases it on both sides afterwards. No
//! library mutex is therefore held across a fork, and the data they guard is never half-updated in
//! the child.
//!
//! Rule: never fork while holding a `ForkSafeMutex` (the prepare handler would wait for itself).
//! The library's own forks (engine/backend/process.rs) happen with none held.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard, Once};

struct Gate(UnsafeCell<libc::pthread_rwlock_t>);
// SAFETY: a pthread rwlock is made to be used from many threads through a shared pointer.
unsafe impl Sync for Gate {}

static GATE: Gate = Gate(UnsafeCell::new(libc::PTHREAD_RWLOCK_INITIALIZER));
static ATFORK: Once = Once::new();

extern "C" fn before_fork() {
    // SAFETY: GATE is a valid, statically initialised rwlock; the forking thread holds no part of it
    // (see the module's rule), so this waits only for other threads' short critical sections.
    unsafe { libc::pthread_rwlock_wrlock(GATE.0.get()) };
}

extern "C" fn after_fork_in_parent() {
    // SAFETY: this thread took the write lock in before_fork.
    unsafe { libc::pthread_rwlock_unlock(GATE.0.get()) };
}

extern "C" fn after_fork_in_child() {
    // The child's only thread has a new thread id, so glibc would not recognise it as the writer:
    // the lock is set back to its initial state instead. Nobody else can be using it (one thread).
    // SAFETY: GATE points to a valid rwlock that no other thread of this process can touch.
    unsafe { std::ptr::write(GATE.0.get(), libc::PTHREAD_RWLOCK_INITIALIZER) };
}

/// Holds the gate shared for as long as it lives.
struct GateGuard;

impl GateGuard {
    fn enter() -> GateGuard {
        ATFORK.call_once(|| {
            // SAFETY: registers handlers that only lock and unlock GATE. (The registration goes
            // through __register_atfork with this library's DSO handle, so it is undone if the
            // library is unloaded.)
            unsafe {
                libc::pthread_atfork(
                    Some(before_fork),
                    Some(after_fork_in_parent),
                    Some(after_fork_in_child),
                );
            }
        });
        // SAFETY: GATE is a valid rwlock; a read lock may be taken recursively by one thread.
        unsafe { libc::pthread_rwlock_rdlock(GATE.0.get()) };
        GateGuard
    }
}

impl Drop for GateGuard {
    fn drop(&mut self) {
        // SAFETY: this guard took a read lock in enter().
        unsafe { libc::pthread_rwlock_unlock(GATE.0.get()) };
    }
}

/// A mutex that is never held across a fork (see the module doc). A panic while it was held does
/// not poison it for later callers: the data it guards stays valid between statements.
pub struct ForkSafeMutex<T> {
    inner: Mutex<T>,
}

/// The lock of a [`ForkSafeMutex`]; the mutex is released before the gate (field order).
pub struct ForkSafeGuard<'a, T> {
    inner: MutexGuard<'a, T>,
    _gate: GateGuard,
}

impl<T> ForkSafeMutex<T> {
    pub const fn new(value: T) -> ForkSafeMutex<T> {
        ForkSafeMutex {
            inner: Mutex::new(value),
        }
    }

    pub fn lock(&self) -> ForkSafeGuard<'_, T> {
        let gate = GateGuard::enter();
        ForkSafeGuard {
            inner: self.inner.lock().unwrap_or_else(|p| p.into_inner()),
            _gate: gate,
        }
    }

    /// The lock if it is free now (used where waiting could deadlock).
    pub fn try_lock(&self) -> Option<ForkSafeGuard<'_, T>> {
        let gate = GateGuard::enter();
        let inner = match self.inner.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(ForkSafeGuard { inner, _gate: gate })
    }
}

impl<T> Deref for ForkSafeGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for ForkSafeGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}
