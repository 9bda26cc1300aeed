//! Process-wide settings: the default worker count and debug (serial) mode.

use crate::status::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};

static DEBUG: AtomicBool = AtomicBool::new(false);
/// `SM_DEBUG` as read at the first map: ENV_UNREAD, or 1 + whether it asks for debug mode.
static DEBUG_ENV: AtomicU8 = AtomicU8::new(ENV_UNREAD);
const ENV_UNREAD: u8 = 0;

/// The largest pool we agree to create: a guard against forking INT_MAX processes by mistake.
pub(crate) const MAX_WORKERS: i32 = crate::abi::SM_MAX_WORKERS;

/// Turns debug mode on or off for every later map (`sm_set_debug`).
pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

/// True when maps must run serially in the caller: `sm_set_debug(1)` or `SM_DEBUG` set to a value
/// other than empty or "0" in the environment. The environment is read once, at the first map
/// (as OpenMP reads its variables once): a lookup costs as much as a whole short region, and
/// `sm_set_debug` is the way to switch modes while the program runs.
pub fn debug() -> bool {
    if DEBUG.load(Ordering::Relaxed) {
        return true;
    }
    let mut env = DEBUG_ENV.load(Ordering::Relaxed);
    if env == ENV_UNREAD {
        env = 1 + env_flag("SM_DEBUG") as u8;
        DEBUG_ENV.store(env, Ordering::Relaxed);
    }
    env == 2
}

/// `SM_VERBOSE` set (not empty, not "0"): sharedmem says on stderr what it decided for the
/// caller's OpenMP and BLAS runtimes where that is not what the caller asked for. Read once (an
/// atomic, not a lock: see `env`).
pub fn verbose() -> bool {
    static VERBOSE: AtomicU8 = AtomicU8::new(ENV_UNREAD);
    let mut v = VERBOSE.load(Ordering::Relaxed);
    if v == ENV_UNREAD {
        v = 1 + env_flag("SM_VERBOSE") as u8;
        VERBOSE.store(v, Ordering::Relaxed);
    }
    v == 2
}

/// `SM_INNER_THREADS`, the process-wide default of `inner_threads` (0 when unset or empty), read
/// at the first map. A value that is not -1, 0 or a positive count fails every map that uses it.
pub fn inner_threads() -> Result<i32> {
    const UNREAD: i64 = i64::MIN;
    const BAD: i64 = i64::MIN + 1;
    static INNER: AtomicI64 = AtomicI64::new(UNREAD);
    let mut v = INNER.load(Ordering::Relaxed);
    if v == UNREAD {
        v = match env("SM_INNER_THREADS") {
            None => 0,
            Some(text) => match text.trim() {
                "" => 0,
                t => t
                    .parse::<i32>()
                    .ok()
                    .filter(|&n| n >= -1)
                    .map_or(BAD, i64::from),
            },
        };
        INNER.store(v, Ordering::Relaxed);
    }
    if v == BAD {
        return Err(Error::invalid(format!(
            "SM_INNER_THREADS={:?}: use -1 (leave OpenMP and BLAS thread counts alone), 0 (at most \
             cpus / workers) or a thread count >= 1",
            env("SM_INNER_THREADS").unwrap_or_default()
        )));
    }
    Ok(v as i32)
}

fn env(name: &str) -> Option<String> {
    crate::sys::getenv(name)
}

pub(crate) fn env_flag(name: &str) -> bool {
    match env(name) {
        Some(v) => !v.trim().is_empty() && v.trim() != "0",
        None => false,
    }
}

/// The worker count used for `nworkers <= 0`: `OMP_NUM_THREADS` when its first entry is a positive
/// integer, else the number of CPUs in this process's affinity mask.
pub fn default_workers() -> i32 {
    if let Some(v) = env("OMP_NUM_THREADS") {
        if let Some(n) = parse_omp_num_threads(&v) {
            return n.min(MAX_WORKERS);
        }
    }
    affinity_cpus()
}

/// OMP_NUM_THREADS may be a comma-separated list (one entry per nesting level); the first entry is
/// the outermost level, the one a pool stands for.
fn parse_omp_num_threads(value: &str) -> Option<i32> {
    let first = value.split(',').next()?.trim();
    match first.parse::<i64>() {
        Ok(n) if n > 0 => Some(n.min(i32::MAX as i64) as i32),
        _ => None,
    }
}

pub(crate) fn affinity_cpus() -> i32 {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set. sched_getaffinity writes at most
    // size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let n = libc::CPU_COUNT(&set);
            if n > 0 {
                return n;
            }
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get() as i32)
}

#[cfg(test)]
mod tests {
    use super::parse_omp_num_threads;

    #[test]
    fn omp_num_threads_forms() {
        assert_eq!(parse_omp_num_threads("3"), Some(3));
        assert_eq!(parse_omp_num_threads(" 4 "), Some(4));
        assert_eq!(parse_omp_num_threads("4,2"), Some(4));
        assert_eq!(parse_omp_num_threads("0"), None);
        assert_eq!(parse_omp_num_threads("-2"), None);
        assert_eq!(parse_omp_num_threads("lots"), None);
        assert_eq!(parse_omp_num_threads(""), None);
    }
}
