//! Progress of a map, reported on the calling thread: the caller's `progress(ctx, done, total)`
//! callback (`sm_map_opts.progress`) and, with `SM_PROGRESS=1` in the environment, a bar on stderr
//! when stderr is a terminal and the map has run for more than a second.

use std::cell::Cell;
use std::ffi::c_void;
use std::io::Write;
use std::time::{Duration, Instant};

/// `sm_progress_fn`: `void (*)(void *ctx, size_t done, size_t total)`.
pub type ProgressFn = unsafe extern "C" fn(*mut c_void, usize, usize);

/// How often the callback and the bar are updated at most.
const INTERVAL: Duration = Duration::from_millis(100);
/// A map shorter than this draws no bar.
const BAR_DELAY: Duration = Duration::from_secs(1);
const BAR_WIDTH: usize = 30;

pub struct Progress {
    callback: Option<(ProgressFn, *mut c_void)>,
    bar: bool,
    total: u64,
    started: Instant,
    last: Cell<Instant>,
    /// True once the bar has been drawn (it then gets its final state and a newline at the end).
    drawn: Cell<bool>,
}

impl Progress {
    /// None when there is nothing to report to: no callback, and no bar asked for (or no terminal).
    pub fn new(callback: Option<ProgressFn>, ctx: *mut c_void, total: u64) -> Option<Progress> {
        let bar = crate::config::env_flag("SM_PROGRESS") && stderr_is_terminal();
        if callback.is_none() && !bar {
            return None;
        }
        let now = Instant::now();
        Some(Progress {
            callback: callback.map(|f| (f, ctx)),
            bar,
            total,
            started: now,
            last: Cell::new(now),
            drawn: Cell::new(false),
        })
    }

    /// True when an update is due; `tick` callers use it to avoid counting `done` for nothing.
    pub fn due(&self) -> bool {
        self.last.get().elapsed() >= INTERVAL
    }

    /// Reports `done` jobs if the last report is at least the interval old.
    pub fn tick(&self, done: u64) {
        if self.due() {
            self.report(done);
        }
    }

    /// The final report, once the map is over (whatever its outcome).
    pub fn finish(&self, done: u64) {
        self.report(done);
        if self.drawn.get() {
            let _ = std::io::stderr().write_all(b"\n");
        }
    }

    fn report(&self, done: u64) {
        self.last.set(Instant::now());
        if let Some((f, ctx)) = self.callback {
            // SAFETY: the caller's callback, on the caller's thread, as the API documents.
            unsafe { f(ctx, done as usize, self.total as usize) };
        }
        if self.bar && (self.drawn.get() || self.started.elapsed() >= BAR_DELAY) {
            self.drawn.set(true);
            let _ = std::io::stderr().write_all(self.bar_line(done).as_bytes());
        }
    }

    fn bar_line(&self, done: u64) -> String {
        let fraction = if self.total == 0 {
            1.0
        } else {
            done as f64 / self.total as f64
        };
        let filled = ((fraction * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
        format!(
            "\rsharedmem [{}{}] {:3.0}% {done}/{} jobs {:.1} s",
            "#".repeat(filled),
            "-".repeat(BAR_WIDTH - filled),
            fraction * 100.0,
            self.total,
            self.started.elapsed().as_secs_f64()
        )
    }
}

fn stderr_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_shows_fraction_and_counts() {
        let p = Progress {
            callback: None,
            bar: true,
            total: 200,
            started: Instant::now(),
            last: Cell::new(Instant::now()),
            drawn: Cell::new(false),
        };
        let line = p.bar_line(50);
        assert!(line.starts_with("\rsharedmem [#######-"), "{line}");
        assert!(line.contains(" 25% 50/200 jobs"), "{line}");
        assert!(p.bar_line(200).contains("[##############################]"));
    }
}
