//! Progress of a map, reported on the calling thread: the caller's `progress(ctx, done, total)`
//! callback (`sm_map_opts.progress`) and, with `SM_PROGRESS=1` in the environment, a bar on stderr
//! when stderr is a terminal and the map has run for more than a second.

use crate::config::env_flag;
use crate::engine::task::ProgressFn;
use std::cell::Cell;
use std::ffi::c_void;
use std::io::Write;
use std::time::{Duration, Instant};

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
        let bar = env_flag("SM_PROGRESS") && stderr_is_terminal();
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
            let line = bar_line(done, self.total, self.started.elapsed());
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// The bar after `elapsed` with `done` of `total` jobs: fraction, counts, time so far and an
/// estimate of the time left (the rate so far, applied to the jobs left), redrawn over itself.
fn bar_line(done: u64, total: u64, elapsed: Duration) -> String {
    let fraction = if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    };
    let filled = ((fraction * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
    let left = if done >= total {
        String::new()
    } else if done == 0 {
        ", time left unknown".to_string()
    } else {
        let rate = elapsed.as_secs_f64() / done as f64;
        format!(", ~{} left", clock((total - done) as f64 * rate))
    };
    // "\x1b[K" clears what a longer earlier line left on the right.
    format!(
        "\rsharedmem [{}{}] {:3.0}% {done}/{total} jobs, {}{left}\x1b[K",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        fraction * 100.0,
        clock(elapsed.as_secs_f64()),
    )
}

/// A duration for people: "4.2 s", "3 min 07 s", "2 h 05 min".
fn clock(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        let s = seconds as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        let m = (seconds / 60.0) as u64;
        format!("{} h {:02} min", m / 60, m % 60)
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
    fn bar_shows_fraction_counts_and_time_left() {
        let line = bar_line(50, 200, Duration::from_secs(10));
        assert!(line.starts_with("\rsharedmem [#######-"), "{line}");
        assert!(
            line.contains(" 25% 50/200 jobs, 10.0 s, ~30.0 s left"),
            "{line}"
        );
        let line = bar_line(200, 200, Duration::from_secs(75));
        assert!(
            line.contains("[##############################] 100%"),
            "{line}"
        );
        assert!(
            line.contains("1 min 15 s") && !line.contains("left"),
            "{line}"
        );
        assert!(bar_line(0, 10, Duration::from_secs(2)).contains("time left unknown"));
        // 1 of 1000 jobs in 9 s: 999 x 9 s left.
        assert!(bar_line(1, 1000, Duration::from_secs(9)).contains("~2 h 29 min left"));
    }

    #[test]
    fn clock_formats() {
        assert_eq!(clock(4.24), "4.2 s");
        assert_eq!(clock(187.0), "3 min 07 s");
        assert_eq!(clock(7500.0), "2 h 05 min");
    }
}
