//! Futex wait/wake on 32-bit words that may live in memory shared between processes.
//!
//! The non-private futex operations are used on purpose: the same words are waited on by forked
//! workers (process backend) and by threads, and the kernel keys shared futexes by the physical page,
//! which works for both.

use std::sync::atomic::{AtomicU32, Ordering};
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

/// A doorbell: its owner waits until someone rings it. Ringing costs a system call only while the
/// owner sleeps. All-zero bytes are a valid, unrung doorbell, so it can live in fresh shared
/// memory (pool threads and persistent workers each wait on one).
#[repr(C)]
pub struct Doorbell {
    /// How many times it was rung.
    rings: AtomicU32,
    /// 1 while the owner sleeps on `rings`.
    sleeping: AtomicU32,
}

impl Doorbell {
    pub const fn new() -> Doorbell {
        Doorbell {
            rings: AtomicU32::new(0),
            sleeping: AtomicU32::new(0),
        }
    }

    /// How many times it was rung so far.
    pub fn rings(&self) -> u32 {
        self.rings.load(Ordering::SeqCst)
    }

    /// Rings it: the owner's wait for a ring past the ones it saw returns. Whatever the ringer
    /// wrote before is seen by the owner after (SeqCst on both sides).
    pub fn ring(&self) {
        self.rings.fetch_add(1, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) != 0 {
            wake_all(&self.rings);
        }
    }

    /// Waits until it was rung more than `seen` times: spins for `spin` (back-to-back rings then
    /// need no wake-up), then sleeps. Returns the count of rings.
    pub fn wait_past(&self, seen: u32, spin: Duration) -> u32 {
        spin_until(spin, || self.rings() != seen);
        let mut rings = self.rings();
        while rings == seen {
            // The owner says it sleeps before it looks once more, and the ringer bumps the count
            // before it looks at `sleeping`: one of them always sees the other.
            self.sleeping.store(1, Ordering::SeqCst);
            if self.rings() == seen {
                wait(&self.rings, seen, None);
            }
            self.sleeping.store(0, Ordering::SeqCst);
            rings = self.rings();
        }
        rings
    }
}
