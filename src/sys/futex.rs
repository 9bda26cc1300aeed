//! Futex wait/wake on 32-bit words that may live in memory shared between processes.
//!
//! The non-private futex operations are used on purpose: the same words are waited on by forked
//! workers (process backend) and by threads, and the kernel keys shared futexes by the physical page,
//! which works for both.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `word` still holds `expected`, at most `timeout` when given. It may also return
/// early (a wake-up, a signal handler, a spurious wake): callers re-check their condition.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned 32-bit atomic for the duration of the call; FUTEX_WAIT only
    // reads it. The timespec pointer is either null or points to a live local.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes up to `count` waiters on `word`.
pub fn wake(word: &AtomicU32, count: i32) {
    // SAFETY: FUTEX_WAKE does not access the word's contents; the address only keys the wait queue.
    // A wake on memory that was unmapped meanwhile fails with EFAULT, which is harmless.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            count,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes every waiter on `word`.
pub fn wake_all(word: &AtomicU32) {
    wake(word, i32::MAX);
}

/// Busy-waits until `ready()` holds or `budget` has passed; true if it holds. Used before sleeping
/// on a futex: a handover between running workers takes well under a microsecond, a sleep and
/// wake-up tens of microseconds. The budget is time, not rounds, because the cost of a spin-loop
/// hint varies tenfold between processors. After the first couple of microseconds the waiter
/// yields its CPU between checks: when there are more runnable threads than CPUs (the caller
/// reducing beside as many workers as CPUs), the one being waited for may need this CPU.
pub fn spin_until(budget: Duration, mut ready: impl FnMut() -> bool) -> bool {
    const TIGHT: Duration = Duration::from_micros(2);
    let start = std::time::Instant::now();
    loop {
        for _ in 0..32 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        let waited = start.elapsed();
        if waited >= budget {
            return ready();
        }
        if waited >= TIGHT {
            std::thread::yield_now();
        }
    }
}
