//! Noticing SIGINT/SIGTERM/SIGHUP/SIGQUIT that the caller handles itself, so that `sm_map` can stop
//! and return SM_ERR_INTERRUPTED instead of running on after the user asked it to stop.
//!
//! While at least one map runs, each of these signals whose disposition is a handler of the
//! caller's gets a small wrapper that notes the signal and then calls the caller's handler exactly
//! as the kernel would have. When the last running map ends, the caller's handlers are put back.
//! Signals left at their default (the process dies, and its workers with it) or ignored are not
//! touched. Forked workers reset caught signals to the default before running jobs (engine/backend/process.rs).

use crate::sys::forklock::ForkSafeMutex;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

const SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The caller's handlers, saved while ours are installed. Written only under `STATE`'s lock
/// before our handler is installed, and read by our handler while it is installed.
struct Saved(UnsafeCell<[Option<libc::sigaction>; 4]>);
// SAFETY: see the struct's comment: writes happen-before the sigaction() that installs the reader.
unsafe impl Sync for Saved {}
static SAVED: Saved = Saved(UnsafeCell::new([None; 4]));

/// Maps running in this process (any thread; the first installs, the last restores) and what the
/// last full scan of the dispositions found.
struct WatchState {
    /// Maps that took the locked path (see `QUIET_UNTIL_MS` for the others).
    running: usize,
    /// When (`coarse_ms`) the dispositions of all four signals were last queried, and which of
    /// them (bit i for SIGNALS[i]) had a handler of the caller's.
    scanned: Option<(u64, u32)>,
}

static STATE: ForkSafeMutex<WatchState> = ForkSafeMutex::new(WatchState {
    running: 0,
    scanned: None,
});

/// A query costs a system call per signal (a quarter of a microsecond each on some machines,
/// more than a whole short region), so a signal found without a handler of the caller's is only
/// queried again once the last scan is this old. A handler the caller installs between two maps
/// less than this apart may therefore not stop the second one early; it still runs.
const RESCAN_MS: u64 = 50;

/// Until when (`coarse_ms`) a map needs neither the lock nor a system call to start and end: set
/// when a full scan found no handler of the caller's (so there is nothing to install), to the end
/// of that scan's validity; 0 once a scan found one. Such a map leaves `running` alone: it installs
/// nothing, so it has nothing to restore, and a locked map that meanwhile installs wrappers (it
/// rescanned and found a new handler) restores them on its own.
static QUIET_UNTIL_MS: AtomicU64 = AtomicU64::new(0);

/// A monotonic clock in milliseconds that costs no system call (the kernel's tick-based clock,
/// read through the vDSO): precise enough for a 50 ms rescan period.
fn coarse_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a valid local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

static LAST_SIGNAL: AtomicI32 = AtomicI32::new(0);
static CAUGHT: AtomicU64 = AtomicU64::new(0);

extern "C" fn note_and_forward(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    LAST_SIGNAL.store(sig, Ordering::SeqCst);
    CAUGHT.fetch_add(1, Ordering::SeqCst);
    let Some(index) = SIGNALS.iter().position(|&s| s == sig) else {
        return;
    };
    // SAFETY: SAVED[index] was written before this handler was installed and is not changed until
    // after it is uninstalled. The saved handler is the caller's own, called with the arguments the
    // kernel gave us, as its flags (SA_SIGINFO or not) say it expects.
    unsafe {
        if let Some(saved) = (*SAVED.0.get())[index] {
            let handler = saved.sa_sigaction;
            if saved.sa_flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(handler);
                f(sig, info, context);
            } else {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
                f(sig);
            }
        }
    }
}

fn our_handler() -> libc::sighandler_t {
    note_and_forward as *const () as libc::sighandler_t
}

fn is_callers_handler(action: &libc::sigaction) -> bool {
    let h = action.sa_sigaction;
    h != libc::SIG_DFL && h != libc::SIG_IGN && h != our_handler()
}

/// Watches for interrupting signals for as long as it lives (the duration of one map).
pub struct InterruptWatch {
    caught_at_start: u64,
    /// Counted in `WatchState::running` (took the locked path).
    counted: bool,
}

impl InterruptWatch {
    pub fn start() -> InterruptWatch {
        if coarse_ms() < QUIET_UNTIL_MS.load(Ordering::Acquire) {
            return InterruptWatch {
                caught_at_start: CAUGHT.load(Ordering::SeqCst),
                counted: false,
            };
        }
        let mut state = STATE.lock();
        if state.running == 0 {
            let now = coarse_ms();
            let rescan = state.scanned.is_none_or(|(at, _)| now >= at + RESCAN_MS);
            let had_handler = state.scanned.map_or(0, |(_, mask)| mask);
            let mut handled = 0u32;
            for (i, &sig) in SIGNALS.iter().enumerate() {
                if !rescan && had_handler & (1 << i) == 0 {
                    // SAFETY: no handler of ours is installed (no map runs), so nobody reads SAVED.
                    unsafe { (*SAVED.0.get())[i] = None };
                    continue;
                }
                // SAFETY: sigaction with valid pointers to plain-data structs; SAVED is only written
                // here, under the lock, while none of our handlers is installed.
                unsafe {
                    let mut current: libc::sigaction = std::mem::zeroed();
                    (*SAVED.0.get())[i] = None;
                    if libc::sigaction(sig, std::ptr::null(), &mut current) != 0
                        || !is_callers_handler(&current)
                    {
                        continue;
                    }
                    (*SAVED.0.get())[i] = Some(current);
                    handled |= 1 << i;
                    let mut ours = current;
                    ours.sa_sigaction = our_handler();
                    // The caller's flags are kept: with SA_RESETHAND the kernel puts the default
                    // back on delivery, as it would have for the caller's handler (and the restore
                    // below then leaves that default in place).
                    ours.sa_flags = current.sa_flags | libc::SA_SIGINFO;
                    libc::sigaction(sig, &ours, std::ptr::null_mut());
                }
            }
            if rescan {
                state.scanned = Some((now, handled));
            } else {
                state.scanned = state.scanned.map(|(at, _)| (at, handled));
            }
            let quiet_until = match state.scanned {
                Some((at, 0)) => at + RESCAN_MS,
                _ => 0,
            };
            QUIET_UNTIL_MS.store(quiet_until, Ordering::Release);
        }
        state.running += 1;
        InterruptWatch {
            caught_at_start: CAUGHT.load(Ordering::SeqCst),
            counted: true,
        }
    }

    /// The count of caught signals when this watch started; see `caught_since`.
    pub fn baseline(&self) -> u64 {
        self.caught_at_start
    }

    /// The signal that interrupted the map, if one of the watched signals was caught since start.
    pub fn interrupted(&self) -> Option<i32> {
        (CAUGHT.load(Ordering::SeqCst) != self.caught_at_start)
            .then(|| LAST_SIGNAL.load(Ordering::SeqCst))
    }
}

/// True when a watched signal was caught since `baseline` (an `InterruptWatch::baseline`): lets
/// the workers of a thread-backend region notice Ctrl-C while the caller itself runs worker 0.
pub fn caught_since(baseline: u64) -> bool {
    CAUGHT.load(Ordering::SeqCst) != baseline
}

impl Drop for InterruptWatch {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut state = STATE.lock();
        state.running -= 1;
        if state.running > 0 {
            return;
        }
        for (i, &sig) in SIGNALS.iter().enumerate() {
            // SAFETY: as in start(); the caller's handler goes back only where ours is still in
            // place (if the caller installed another one meanwhile, theirs stays).
            unsafe {
                let Some(saved) = (*SAVED.0.get())[i] else {
                    continue;
                };
                let mut current: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut current) == 0
                    && current.sa_sigaction == our_handler()
                {
                    libc::sigaction(sig, &saved, std::ptr::null_mut());
                }
            }
        }
    }
}
