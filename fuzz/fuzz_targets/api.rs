//! Fuzz target: argument validation of every exported function.
//!
//! The input is a little program: a sequence of calls to every function of include/sharedmem.h
//! with fuzzed arguments — pools of random backends and sizes (thread and serial mostly, the
//! process backend sometimes, with tiny maps), live, freed, NULL and fake pool pointers, maps
//! with random njobs / result sizes / `sm_map_opts` (every `size`, hooks, absurd sizes), parallel
//! regions with loops / barriers / singles / critical / ordered (bad schedules and flags too),
//! region constructs and sections outside regions and maps, misuse inside jobs and reduce,
//! `sm_empty` / `sm_free` with random sizes and bad pointers, `sm_argsort` with bad dtypes, NULLs
//! and overlap, `sm_fromfile` on a small temporary file with random paths, offsets, item sizes and
//! counts, `sm_status_str` of any int, `sm_last_error`, `sm_set_debug`.
//!
//! Pointers are only ever ones that cannot crash by the header's contract: NULL, live objects,
//! pointers to locals or to sm_empty memory standing for a pool, freed pools and freed sm_empty
//! memory (which the library must recognise and refuse), never a pointer to too little memory.
//!
//! Checks (a failed check panics: a finding):
//! - no crash and no panic: libfuzzer-sys aborts on any panic, also one the library catches
//!   (which would otherwise come back as SM_ERR_PANIC, also treated as a finding);
//! - every failure (status other than SM_OK, NULL, -1) comes with a fresh, non-empty
//!   `sm_last_error()` (the message is primed with a marker before each call);
//! - invalid pointers and values never succeed, and get the documented status;
//! - valid calls do what the header says: maps run every job once and reduce in order, with the
//!   outcome of the first failure in job order (exact status and reduced jobs), regions run
//!   every loop iteration once and every single once, sm_empty memory is zeroed and aligned,
//!   sm_fromfile returns the file's bytes, argsort sorts.
#![no_main]
// Checks that call the library read better as `if` inside match arms than as match guards.
#![allow(clippy::collapsible_match)]

use libfuzzer_sys::fuzz_target;
use sharedmem::*;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::OnceLock;

use sm_status::*;

// ------------------------------------------------------------------------------------------ input

struct In<'a> {
    d: &'a [u8],
    i: usize,
}

impl In<'_> {
    fn done(&self) -> bool {
        self.i >= self.d.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.d.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    fn below(&mut self, n: u32) -> u32 {
        if n <= 256 {
            self.u8() as u32 % n
        } else {
            self.u16() as u32 % n
        }
    }
    fn chance(&mut self, in_256: u32) -> bool {
        (self.u8() as u32) < in_256
    }
    /// A size: mostly small, sometimes a boundary or an absurd value.
    fn size(&mut self, small: u64) -> u64 {
        match self.u8() % 16 {
            0 => u64::MAX,
            1 => u64::MAX / 2 + 1,
            2 => 1 << 62,
            3 => (1 << 62) + 1,
            4 => 0,
            _ => self.u16() as u64 % (small + 1),
        }
    }
    /// Any int, biased to small and boundary values.
    fn int(&mut self) -> c_int {
        match self.u8() % 8 {
            0 => c_int::MIN,
            1 => c_int::MAX,
            2 => -1,
            3 => self.u32() as c_int,
            _ => (self.u8() as c_int) - 8,
        }
    }
}

// ------------------------------------------------------------------------------------------ known bugs

/// Library bugs already reported can be skipped, to look for others:
/// `SM_FUZZ_KNOWN=name,name` (or `all`). By default every check is on.
fn is_known(name: &str) -> bool {
    static KNOWN: OnceLock<String> = OnceLock::new();
    let k = KNOWN.get_or_init(|| std::env::var("SM_FUZZ_KNOWN").unwrap_or_default());
    k.split(',').any(|x| x.trim() == name || x.trim() == "all")
}

/// `SM_FUZZ_TRACE=1`: print each call (to see what an input does).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SM_FUZZ_TRACE").is_some())
}

// ------------------------------------------------------------------------------------------ messages

fn last_error() -> String {
    let p = sm_last_error();
    assert!(!p.is_null(), "sm_last_error returned NULL");
    // SAFETY: checked non-NULL; the library keeps it valid until the next failure on this thread.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

static PRIME: AtomicU64 = AtomicU64::new(0);

/// Sets this thread's last error to a marker message (through a call that must fail) and returns
/// the marker, so that a later failure can be checked to have set a message of its own.
fn prime() -> String {
    let n = 1_000_000 + (PRIME.fetch_add(1, SeqCst) % 1_000_000_000) as c_int;
    let p = sm_pool_new(1, n);
    assert!(p.is_null(), "sm_pool_new(1, backend {n}) succeeded");
    let marker = format!("backend {n} ");
    let msg = last_error();
    assert!(
        msg.contains(&marker),
        "sm_pool_new(1, {n}) failed with a message that does not name the backend: {msg:?}"
    );
    marker
}

/// The message of a failure that happened after `prime()` returned `marker`: must be fresh.
fn fresh_error(marker: &str, call: &str) -> String {
    let msg = last_error();
    assert!(
        !msg.is_empty(),
        "{call} failed with an empty sm_last_error()"
    );
    assert!(
        !msg.contains(marker),
        "{call} failed without setting sm_last_error() (still {msg:?})"
    );
    msg
}

fn check_status(st: sm_status, allowed: &[sm_status], marker: &str, call: &str) {
    assert!(st != SM_ERR_PANIC, "{call}: SM_ERR_PANIC: {}", last_error());
    assert!(
        allowed.contains(&st),
        "{call} returned {st:?}, expected one of {allowed:?} ({})",
        last_error()
    );
    if st != SM_OK {
        fresh_error(marker, call);
        assert_eq!(sm_last_status(), st, "{call}: sm_last_status() is not the status returned");
    }
}

// ------------------------------------------------------------------------------------------ shared block

const RUNS: usize = 256;
const HITS_PER_LOOP: usize = 256;
const MAX_ROPS: usize = 8;
const NO: u64 = u64::MAX;

/// What maps and regions run, and what their jobs saw: one block of sm_empty memory (so that
/// process workers' writes reach the caller), set up by the caller before each call.
#[repr(C)]
struct Sh {
    // ---- plan of a map (written by the caller before the map)
    pool: usize,
    other_pool: usize,
    file: [u8; 64],
    nworkers: i32,
    serial: u32,
    njobs: u64,
    fail_at: u64,
    fail_kind: u32,
    fail_code: i32,
    reduce_stop_at: u64,
    reduce_code: i32,
    reduce_op: u32,
    init_fail_worker: i32,
    fini_fail_worker: i32,
    wreduce_stop_worker: i32,
    hook_code: i32,
    result_size: u64,
    wresult_size: u64,
    fini_set: u32,
    inner: [u8; 16],
    ninner: u32,
    caller_tid: i32,
    // ---- plan of a region
    rops: [ROp; MAX_ROPS],
    nrops: u32,
    early_worker: i32,
    early_at: u32,
    ret_worker: i32,
    ret_code: i32,
    // ---- observations
    anomalies: AtomicU32,
    anomaly: AtomicU32,
    anomaly_at: AtomicU64,
    runs: [AtomicU32; RUNS],
    next_reduce: AtomicU64,
    next_wreduce: AtomicI32,
    progress_calls: AtomicU64,
    progress_done: AtomicU64,
    last_ordered: AtomicU64,
    in_critical: AtomicU32,
    hits: [[AtomicU32; HITS_PER_LOOP]; MAX_ROPS],
    ordered_next: [AtomicU64; MAX_ROPS],
    singles: [AtomicU32; MAX_ROPS],
    stop_seen: AtomicU32,
    inits: AtomicU32,
    soft: AtomicU32,
    soft_code: AtomicU32,
}

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct ROp {
    kind: u32,
    start: usize,
    end: usize,
    schedule: c_int,
    chunk: usize,
    flags: c_int,
}

const ANOMALIES: &[&str] = &[
    "none",
    "a job ran twice",
    "result memory was not zeroed",
    "critical enter/leave failed",
    "two workers inside critical at once",
    "critical misuse was not refused (SM_ERR_STATE)",
    "ordered enter/leave failed",
    "ordered sections out of job order",
    "ordered misuse was not refused (SM_ERR_STATE)",
    "sm_empty / sm_free / sm_fromfile / sm_pool_free inside a job was not refused",
    "a region construct inside a map job was not refused",
    "a nested map failed or ran wrongly",
    "sm_parallel inside a job failed or ran wrongly",
    "sm_worker_id / sm_num_workers / sm_master out of range",
    "critical / ordered with another pool succeeded",
    "sm_pool_nworkers inside a job is wrong",
    "reduce out of job order",
    "reduce saw a wrong result",
    "sm_map from reduce on the busy pool did not give SM_ERR_STATE",
    "sm_pool_free from reduce freed the busy pool",
    "sm_empty/sm_free from reduce failed",
    "worker_init called twice or for a bad worker",
    "worker_reduce out of order, or its wresult is wrong",
    "progress: wrong total, done going back, or not on the calling thread",
    "a loop iteration ran twice",
    "ordered loop iterations out of order",
    "sm_single returned 1 to two workers",
    "sm_master disagrees with sm_worker_id",
    "a construct in a region failed without the region being stopped",
    "a failure came with an empty sm_last_error() in a worker",
    "sm_for_next returned a chunk outside the loop",
    "a region worker id / team size is wrong",
    "sm_worker_local in a region: NULL with a per-worker result, set without one, misaligned or not zeroed",
];

fn sh_addr() -> usize {
    static SH: OnceLock<usize> = OnceLock::new();
    *SH.get_or_init(|| {
        let p = sm_empty(1, std::mem::size_of::<Sh>());
        assert!(!p.is_null(), "sm_empty: {}", last_error());
        p as usize
    })
}

fn sh() -> &'static Sh {
    // SAFETY: zeroed sm_empty memory of the right size, never freed; every field is valid zeroed,
    // and fields are only mutated through atomics or by the caller between calls.
    unsafe { &*(sh_addr() as *const Sh) }
}

fn sh_mut() -> &'static mut Sh {
    // SAFETY: as sh(); only called by the caller's thread between calls, when no worker runs.
    unsafe { &mut *(sh_addr() as *mut Sh) }
}

fn anomaly(code: u32, at: u64) {
    let s = sh();
    s.anomalies.fetch_add(1, SeqCst);
    if s.anomaly.compare_exchange(0, code, SeqCst, SeqCst).is_ok() {
        s.anomaly_at.store(at, SeqCst);
    }
}

/// An anomaly in a region that is only one if the region succeeded (a stopping region's
/// constructs may refuse).
fn soft(code: u32) {
    let s = sh();
    s.soft.fetch_add(1, SeqCst);
    let _ = s.soft_code.compare_exchange(0, code, SeqCst, SeqCst);
}

fn reset_observations() {
    let s = sh();
    s.soft.store(0, SeqCst);
    s.soft_code.store(0, SeqCst);
    s.anomalies.store(0, SeqCst);
    s.anomaly.store(0, SeqCst);
    s.anomaly_at.store(0, SeqCst);
    for r in &s.runs {
        r.store(0, SeqCst);
    }
    s.next_reduce.store(0, SeqCst);
    s.next_wreduce.store(0, SeqCst);
    s.progress_calls.store(0, SeqCst);
    s.progress_done.store(0, SeqCst);
    s.last_ordered.store(0, SeqCst);
    s.in_critical.store(0, SeqCst);
    for l in &s.hits {
        for h in l {
            h.store(0, SeqCst);
        }
    }
    for o in &s.ordered_next {
        o.store(0, SeqCst);
    }
    for x in &s.singles {
        x.store(0, SeqCst);
    }
    s.stop_seen.store(0, SeqCst);
    s.inits.store(0, SeqCst);
}

fn check_anomalies(call: &str) {
    let s = sh();
    let n = s.anomalies.load(SeqCst);
    if n != 0 {
        let code = s.anomaly.load(SeqCst) as usize;
        panic!(
            "{call}: {n} anomalies in jobs/workers; first: {} (at {})",
            ANOMALIES.get(code).unwrap_or(&"?"),
            s.anomaly_at.load(SeqCst)
        );
    }
}

fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

fn file_path() -> *const c_char {
    sh().file.as_ptr().cast()
}

// ------------------------------------------------------------------------------------------ jobs

const FAIL_NONE: u32 = 0;
const FAIL_STOP: u32 = 1;
const FAIL_ERROR: u32 = 2;
const FAIL_HOLD_CRITICAL: u32 = 3;
const FAIL_HOLD_ORDERED: u32 = 4;

fn pool_ptr() -> *mut sm_pool {
    sh().pool as *mut sm_pool
}

/// Calls that must fail inside a job or worker hook, each with a message.
fn refused_in_job(at: u64) {
    let s = sh();
    let m = prime();
    let p = sm_empty(1, 1);
    if !p.is_null() || last_error().contains(&m) {
        anomaly(9, at);
    }
    sm_free(std::ptr::null_mut());
    let mut count = 4usize;
    let m = prime();
    let f = sm_fromfile(pool_ptr(), file_path(), 0, 1, &mut count);
    if !f.is_null() || last_error().contains(&m) {
        anomaly(9, at);
    }
    let m = prime();
    sm_pool_free(pool_ptr());
    if last_error().contains(&m) {
        anomaly(9, at);
    }
    if sm_pool_nworkers(pool_ptr()) != s.nworkers {
        anomaly(15, at);
    }
}

unsafe extern "C" fn nested_work(_ctx: *mut c_void, _job: usize, result: *mut c_void) -> c_int {
    let outer = NESTED_OUTER.with(|c| c.get());
    if sm_worker_id() != outer {
        anomaly(11, 1);
    }
    // SAFETY: nested maps use result_size 8.
    unsafe { *(result as *mut u64) = 7 };
    0
}

unsafe extern "C" fn nested_reduce(_ctx: *mut c_void, _job: usize, result: *mut c_void) -> c_int {
    // SAFETY: result_size 8.
    if unsafe { *(result as *const u64) } != 7 {
        anomaly(11, 2);
    }
    NESTED_REDUCED.with(|c| c.set(c.get() + 1));
    0
}

thread_local! {
    static NESTED_OUTER: std::cell::Cell<c_int> = const { std::cell::Cell::new(-1) };
    static NESTED_REDUCED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

unsafe extern "C" fn alone_region(_ctx: *mut c_void) -> c_int {
    let outer = NESTED_OUTER.with(|c| c.get());
    if sm_num_workers() != 1 || sm_worker_id() != outer {
        anomaly(12, 1);
    }
    let (mut lo, mut hi, mut seen) = (0usize, 0usize, 0usize);
    while sm_for_next(
        pool_ptr(),
        0,
        5,
        sm_schedule::SM_SCHEDULE_DYNAMIC as c_int,
        0,
        0,
        &mut lo,
        &mut hi,
    ) == 1
    {
        seen += hi - lo;
    }
    if seen != 5 || sm_barrier(pool_ptr()) != SM_OK || sm_single(pool_ptr()) != 1 {
        anomaly(12, 2);
    }
    0
}

/// One of the harmless things a job may do (`sh().inner`), checked.
fn inner_op(op: u8, job: u64) {
    let s = sh();
    let p = pool_ptr();
    match op % 16 {
        1 => {
            if sm_critical_enter(p) != SM_OK {
                anomaly(3, job);
                return;
            }
            if s.in_critical.fetch_add(1, SeqCst) != 0 {
                anomaly(4, job);
            }
            s.in_critical.fetch_sub(1, SeqCst);
            if sm_critical_leave(p) != SM_OK {
                anomaly(3, job);
            }
        }
        2 => {
            if sm_critical_enter(p) != SM_OK {
                anomaly(3, job);
                return;
            }
            if sm_critical_enter(p) != SM_ERR_STATE || last_error().is_empty() {
                anomaly(5, job);
            }
            if sm_critical_leave(p) != SM_OK {
                anomaly(3, job);
            }
        }
        3 => {
            if sm_critical_leave(p) != SM_ERR_STATE || last_error().is_empty() {
                anomaly(5, job);
            }
        }
        4 => {
            if sm_ordered_enter(p) != SM_OK {
                anomaly(6, job);
                return;
            }
            if s.last_ordered.swap(job + 1, SeqCst) > job {
                anomaly(7, job);
            }
            if sm_ordered_leave(p) != SM_OK {
                anomaly(6, job);
            }
        }
        5 => {
            if sm_ordered_leave(p) != SM_ERR_STATE || last_error().is_empty() {
                anomaly(8, job);
            }
        }
        6 => {
            if sm_ordered_enter(p) != SM_OK {
                anomaly(6, job);
                return;
            }
            if s.last_ordered.swap(job + 1, SeqCst) > job {
                anomaly(7, job);
            }
            if sm_ordered_enter(p) != SM_ERR_STATE || last_error().is_empty() {
                anomaly(8, job);
            }
            if sm_ordered_leave(p) != SM_OK {
                anomaly(6, job);
            }
        }
        7 => {
            if sm_critical_enter(p) != SM_OK {
                anomaly(3, job);
                return;
            }
            if sm_ordered_enter(p) != SM_ERR_STATE || last_error().is_empty() {
                anomaly(8, job);
            }
            if sm_critical_leave(p) != SM_OK {
                anomaly(3, job);
            }
        }
        8 => refused_in_job(job),
        9 => {
            let (mut lo, mut hi) = (0usize, 0usize);
            if sm_barrier(p) != SM_ERR_STATE
                || sm_for_next(p, 0, 10, 0, 0, 0, &mut lo, &mut hi) != 0
                || sm_single(p) != -1
                || last_error().is_empty()
            {
                anomaly(10, job);
            }
        }
        10 => {
            NESTED_OUTER.with(|c| c.set(sm_worker_id()));
            NESTED_REDUCED.with(|c| c.set(0));
            let st = sm_map(
                p,
                3,
                Some(nested_work),
                Some(nested_reduce),
                8,
                std::ptr::null_mut(),
            );
            if st != SM_OK || NESTED_REDUCED.with(|c| c.get()) != 3 {
                anomaly(11, job);
            }
        }
        11 => {
            NESTED_OUTER.with(|c| c.set(sm_worker_id()));
            if sm_parallel(p, Some(alone_region), std::ptr::null_mut()) != SM_OK {
                anomaly(12, job);
            }
        }
        12 => {
            let w = sm_worker_id();
            let n = sm_num_workers();
            let limit = if s.serial != 0 { 1 } else { s.nworkers };
            if w < 0 || w >= limit || n < 1 || n > s.nworkers || sm_master() != (w == 0) as c_int {
                anomaly(13, job);
            }
        }
        13 => {
            let other = s.other_pool as *mut sm_pool;
            if sm_critical_enter(other) == SM_OK || last_error().is_empty() {
                anomaly(14, job);
                sm_critical_leave(other);
            }
            if sm_ordered_enter(other) == SM_OK || last_error().is_empty() {
                anomaly(14, job);
                sm_ordered_leave(other);
            }
        }
        14 => {
            if sm_pool_nworkers(p) != s.nworkers {
                anomaly(15, job);
            }
        }
        _ => {}
    }
}

unsafe extern "C" fn work(_ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    let s = sh();
    let j = job as u64;
    if job < RUNS && s.runs[job].fetch_add(1, SeqCst) != 0 {
        anomaly(1, j);
    }
    let rs = s.result_size.min(64) as usize;
    if rs > 0 {
        // SAFETY: result points to result_size bytes (we read and write at most 64 of them).
        let r = unsafe { std::slice::from_raw_parts_mut(result as *mut u8, rs) };
        if r.iter().any(|&b| b != 0) {
            anomaly(2, j);
        }
        for (i, b) in r.iter_mut().enumerate() {
            *b = (job as u8).wrapping_add(i as u8) | 1;
        }
    } else if s.result_size == 0 && !result.is_null() {
        anomaly(2, j);
    }
    let holds = matches!(s.fail_kind, FAIL_HOLD_CRITICAL | FAIL_HOLD_ORDERED);
    if s.ninner > 0 && !(holds && j == s.fail_at) {
        inner_op(s.inner[job % s.ninner as usize], j);
    }
    if j == s.fail_at {
        match s.fail_kind {
            FAIL_STOP => return SM_STOP,
            FAIL_ERROR => return s.fail_code,
            FAIL_HOLD_CRITICAL => {
                if sm_critical_enter(pool_ptr()) != SM_OK {
                    anomaly(3, j);
                }
                return s.fail_code;
            }
            FAIL_HOLD_ORDERED => {
                if sm_ordered_enter(pool_ptr()) != SM_OK {
                    anomaly(6, j);
                }
                return s.fail_code;
            }
            _ => {}
        }
    }
    0
}

unsafe extern "C" fn noop_work(_ctx: *mut c_void, _job: usize, _result: *mut c_void) -> c_int {
    0
}

unsafe extern "C" fn reduce(_ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    let s = sh();
    let j = job as u64;
    if s.next_reduce.fetch_add(1, SeqCst) != j {
        anomaly(16, j);
    }
    if tid() != s.caller_tid {
        anomaly(16, j);
    }
    let rs = s.result_size.min(64) as usize;
    if rs > 0 {
        // SAFETY: the job's result_size bytes.
        let r = unsafe { std::slice::from_raw_parts(result as *const u8, rs) };
        if r.iter()
            .enumerate()
            .any(|(i, &b)| b != (job as u8).wrapping_add(i as u8) | 1)
        {
            anomaly(17, j);
        }
    } else if !result.is_null() {
        anomaly(17, j);
    }
    if j == 0 {
        match s.reduce_op {
            1 => {
                if sm_map(
                    pool_ptr(),
                    1,
                    Some(noop_work),
                    None,
                    0,
                    std::ptr::null_mut(),
                ) != SM_ERR_STATE
                    || last_error().is_empty()
                {
                    anomaly(18, j);
                }
            }
            2 => {
                sm_pool_free(pool_ptr());
                if sm_pool_nworkers(pool_ptr()) != s.nworkers || last_error().is_empty() {
                    anomaly(19, j);
                }
            }
            3 => {
                let p = sm_empty(3, 5);
                if p.is_null() {
                    anomaly(20, j);
                } else {
                    sm_free(p);
                }
            }
            _ => {}
        }
    }
    if j == s.reduce_stop_at {
        return s.reduce_code;
    }
    0
}

unsafe extern "C" fn worker_init(_ctx: *mut c_void, worker: c_int) -> c_int {
    let s = sh();
    if worker < 0 || worker >= s.nworkers || worker != sm_worker_id() {
        anomaly(21, worker as u64);
    }
    s.inits.fetch_add(1, SeqCst);
    if s.ninner > 0 && s.inner[0] % 16 == 8 {
        refused_in_job(1000 + worker as u64);
    }
    if worker == s.init_fail_worker {
        return s.hook_code;
    }
    0
}

unsafe extern "C" fn worker_fini(_ctx: *mut c_void, worker: c_int, wresult: *mut c_void) -> c_int {
    let s = sh();
    let ws = s.wresult_size.min(64) as usize;
    if ws > 0 {
        // SAFETY: wresult_size bytes (we touch at most 64).
        let r = unsafe { std::slice::from_raw_parts_mut(wresult as *mut u8, ws) };
        if r.iter().any(|&b| b != 0) {
            anomaly(22, worker as u64);
        }
        r.fill(worker as u8 + 1);
    }
    if worker == s.fini_fail_worker {
        return s.hook_code;
    }
    0
}

unsafe extern "C" fn worker_reduce(
    _ctx: *mut c_void,
    worker: c_int,
    wresult: *mut c_void,
) -> c_int {
    let s = sh();
    if s.next_wreduce.load(SeqCst) > worker || tid() != s.caller_tid {
        anomaly(22, worker as u64);
    }
    s.next_wreduce.store(worker + 1, SeqCst);
    let ws = s.wresult_size.min(64) as usize;
    if ws > 0 {
        // SAFETY: wresult_size bytes.
        let r = unsafe { std::slice::from_raw_parts(wresult as *const u8, ws) };
        let want = if s.fini_set != 0 { worker as u8 + 1 } else { 0 };
        if r.iter().any(|&b| b != want) {
            anomaly(22, worker as u64);
        }
    }
    if worker == s.wreduce_stop_worker {
        return s.hook_code;
    }
    0
}

unsafe extern "C" fn progress(_ctx: *mut c_void, done: usize, total: usize) {
    let s = sh();
    s.progress_calls.fetch_add(1, SeqCst);
    let before = s.progress_done.swap(done as u64, SeqCst);
    if total as u64 != s.njobs || done > total || (done as u64) < before || tid() != s.caller_tid {
        anomaly(23, done as u64);
    }
}

// ------------------------------------------------------------------------------------------ regions

const R_LOOP: u32 = 0;
const R_BARRIER: u32 = 1;
const R_SINGLE: u32 = 2;
const R_CRITICAL: u32 = 3;
const R_MASTER: u32 = 4;
const R_NESTED_MAP: u32 = 5;

fn loop_valid(op: &ROp) -> bool {
    (0..=2).contains(&op.schedule)
        && op.flags & !3 == 0
        && (op.end.saturating_sub(op.start) as u64) <= 1 << 62
}

unsafe extern "C" fn region(_ctx: *mut c_void) -> c_int {
    let s = sh();
    let p = pool_ptr();
    let me = sm_worker_id();
    let team = sm_num_workers();
    let expect_team = if s.serial != 0 { 1 } else { s.nworkers };
    if team != expect_team || me < 0 || me >= team {
        anomaly(31, me as u64);
    }
    let local = sm_worker_local();
    let ws = s.wresult_size.min(64) as usize;
    let local_ok = if s.wresult_size == 0 {
        local.is_null()
    } else {
        // SAFETY: a non-NULL per-worker result has wresult_size bytes (we read at most 64).
        !local.is_null()
            && local as usize % SM_RESULT_ALIGN == 0
            && unsafe { std::slice::from_raw_parts(local as *const u8, ws) }
                .iter()
                .all(|&b| b == 0)
    };
    if !local_ok {
        anomaly(32, me as u64);
    }
    for (k, op) in s.rops[..s.nrops as usize].iter().enumerate() {
        if me == s.early_worker && k as u32 == s.early_at {
            return 0;
        }
        match op.kind {
            R_LOOP => {
                let (mut lo, mut hi) = (0usize, 0usize);
                let mut calls = 0;
                while sm_for_next(
                    p,
                    op.start,
                    op.end,
                    op.schedule,
                    op.chunk,
                    op.flags,
                    &mut lo,
                    &mut hi,
                ) == 1
                {
                    calls += 1;
                    if lo >= hi || lo < op.start || hi > op.end || calls > 100_000 {
                        anomaly(30, lo as u64);
                        return 1;
                    }
                    for i in lo..hi {
                        let idx = i - op.start;
                        if idx < HITS_PER_LOOP && s.hits[k][idx].fetch_add(1, SeqCst) != 0 {
                            anomaly(24, idx as u64);
                        }
                        if op.flags & SM_FOR_ORDERED != 0 {
                            let st = sm_ordered_enter(p);
                            if st == SM_OK {
                                if s.ordered_next[k].swap(idx as u64 + 1, SeqCst) > idx as u64 {
                                    soft(25);
                                }
                                if sm_ordered_leave(p) != SM_OK {
                                    soft(6);
                                }
                            } else {
                                s.stop_seen.store(1, SeqCst);
                            }
                        }
                    }
                }
                if !loop_valid(op) && last_error().is_empty() {
                    anomaly(29, k as u64);
                }
            }
            R_BARRIER => {
                let st = sm_barrier(p);
                if st != SM_OK {
                    s.stop_seen.store(1, SeqCst);
                    if last_error().is_empty() {
                        anomaly(29, k as u64);
                    }
                }
            }
            R_SINGLE => {
                let r = sm_single(p);
                if r == 1 && s.singles[k].fetch_add(1, SeqCst) != 0 {
                    anomaly(26, k as u64);
                }
                if r < 0 {
                    soft(28);
                }
            }
            R_CRITICAL => {
                if sm_critical_enter(p) == SM_OK {
                    if s.in_critical.fetch_add(1, SeqCst) != 0 {
                        anomaly(4, k as u64);
                    }
                    s.in_critical.fetch_sub(1, SeqCst);
                    if sm_critical_leave(p) != SM_OK {
                        soft(3);
                    }
                } else {
                    soft(3);
                }
            }
            R_MASTER => {
                if sm_master() != (me == 0) as c_int {
                    anomaly(27, me as u64);
                }
            }
            R_NESTED_MAP => {
                NESTED_OUTER.with(|c| c.set(me));
                NESTED_REDUCED.with(|c| c.set(0));
                let st = sm_map(
                    p,
                    3,
                    Some(nested_work),
                    Some(nested_reduce),
                    8,
                    std::ptr::null_mut(),
                );
                if st != SM_OK || NESTED_REDUCED.with(|c| c.get()) != 3 {
                    anomaly(11, k as u64);
                }
            }
            _ => {}
        }
    }
    if me == s.ret_worker {
        return s.ret_code;
    }
    0
}

// ------------------------------------------------------------------------------------------ state

#[derive(Clone, Copy, PartialEq, Debug)]
enum Backend {
    Process,
    Thread,
    Serial,
}

struct PoolRec {
    ptr: *mut sm_pool,
    nworkers: i32,
    backend: Backend,
}

struct State {
    pools: Vec<PoolRec>,
    freed_pools: Vec<usize>,
    mem: Vec<(usize, usize)>,
    freed_mem: Vec<usize>,
    debug: bool,
    local: [u64; 16],
}

/// A pool argument: a live pool (index) or something that is not one.
enum PoolArg {
    Live(usize),
    Null,
    NotAPool(*mut sm_pool),
}

impl State {
    fn pool_arg(&mut self, inp: &mut In) -> (PoolArg, *mut sm_pool) {
        let sel = inp.u8();
        let arg = match sel % 8 {
            0 => PoolArg::Null,
            1 if !self.freed_pools.is_empty() => {
                let p = self.freed_pools[sel as usize / 8 % self.freed_pools.len()];
                PoolArg::NotAPool(p as *mut sm_pool)
            }
            2 => PoolArg::NotAPool(self.local.as_mut_ptr().cast()),
            3 if !self.mem.is_empty() => {
                let p = self.mem[sel as usize / 8 % self.mem.len()].0;
                PoolArg::NotAPool(p as *mut sm_pool)
            }
            _ if !self.pools.is_empty() => PoolArg::Live(sel as usize % self.pools.len()),
            _ => PoolArg::Null,
        };
        // A freed address may have been reused by a later pool: then it is live.
        let arg = match arg {
            PoolArg::NotAPool(p) => match self.pools.iter().position(|r| r.ptr == p) {
                Some(i) => PoolArg::Live(i),
                None => PoolArg::NotAPool(p),
            },
            a => a,
        };
        let ptr = match arg {
            PoolArg::Live(i) => self.pools[i].ptr,
            PoolArg::Null => std::ptr::null_mut(),
            PoolArg::NotAPool(p) => p,
        };
        (arg, ptr)
    }

    fn cleanup(&mut self) {
        sm_set_debug(0);
        for r in self.pools.drain(..) {
            sm_pool_free(r.ptr);
            assert_eq!(sm_pool_nworkers(r.ptr), -1, "cleanup: pool not freed");
        }
        for (p, _) in self.mem.drain(..) {
            let marker = prime();
            sm_free(p as *mut c_void);
            assert!(
                last_error().contains(&marker),
                "cleanup: sm_free of a live sm_empty pointer failed: {}",
                last_error()
            );
        }
    }
}

// ------------------------------------------------------------------------------------------ ops

fn op_pool_new(st: &mut State, inp: &mut In) {
    let nw = (inp.u8() % 7) as c_int - 2; // -2 ..= 4 (<= 0: the default)
    let backend: c_int = match inp.u8() % 16 {
        0 => sm_backend::SM_BACKEND_PROCESS as c_int,
        1..=7 => sm_backend::SM_BACKEND_THREAD as c_int,
        8..=12 => sm_backend::SM_BACKEND_SERIAL as c_int,
        13 => 4, // one past the last backend
        14 => -1,
        _ => inp.int(),
    };
    let nw = if inp.chance(8) {
        [4097, c_int::MAX, 1 << 20][inp.below(3) as usize]
    } else {
        nw
    };
    if st.pools.len() >= 4 && (0..=2).contains(&backend) && nw <= 4096 {
        return;
    }
    let marker = prime();
    let p = sm_pool_new(nw, backend);
    let call = format!("sm_pool_new({nw}, {backend})");
    let valid = (0..=3).contains(&backend) && nw <= 4096;
    if !valid {
        assert!(p.is_null(), "{call} succeeded");
        fresh_error(&marker, &call);
        return;
    }
    assert!(!p.is_null(), "{call} failed: {}", last_error());
    if backend == sm_backend::SM_BACKEND_PERSISTENT as c_int {
        // A valid backend, but not one the model of this target runs maps on: its ctx rule
        // (ctx in sm_empty memory) is tested in tests/c. Made and freed here only.
        assert!(sm_pool_nworkers(p) >= 1, "{call}: sm_pool_nworkers");
        sm_pool_free(p);
        return;
    }
    let n = sm_pool_nworkers(p);
    if backend == sm_backend::SM_BACKEND_SERIAL as c_int {
        assert_eq!(n, 1, "{call}: sm_pool_nworkers of a serial pool");
    } else if nw > 0 {
        assert_eq!(n, nw, "{call}: sm_pool_nworkers");
    } else {
        assert!(n >= 1, "{call}: sm_pool_nworkers is {n}");
    }
    let backend = match backend {
        0 => Backend::Process,
        1 => Backend::Thread,
        _ => Backend::Serial,
    };
    st.freed_pools.retain(|&f| f != p as usize);
    st.pools.push(PoolRec {
        ptr: p,
        nworkers: n,
        backend,
    });
}

fn op_pool_free(st: &mut State, inp: &mut In) {
    let (arg, p) = st.pool_arg(inp);
    let marker = prime();
    sm_pool_free(p);
    match arg {
        PoolArg::Null => assert!(
            last_error().contains(&marker),
            "sm_pool_free(NULL) set an error: {}",
            last_error()
        ),
        PoolArg::Live(i) => {
            assert!(
                last_error().contains(&marker),
                "sm_pool_free of a live idle pool failed: {}",
                last_error()
            );
            st.pools.swap_remove(i);
            st.freed_pools.push(p as usize);
            let m2 = prime();
            assert_eq!(sm_pool_nworkers(p), -1, "a freed pool still answers");
            fresh_error(&m2, "sm_pool_nworkers(freed pool)");
        }
        PoolArg::NotAPool(_) => {
            fresh_error(&marker, "sm_pool_free(not a pool)");
        }
    }
}

fn op_pool_nworkers(st: &mut State, inp: &mut In) {
    let (arg, p) = st.pool_arg(inp);
    let marker = prime();
    let n = sm_pool_nworkers(p);
    match arg {
        PoolArg::Live(i) => assert_eq!(n, st.pools[i].nworkers, "sm_pool_nworkers"),
        _ => {
            assert_eq!(n, -1, "sm_pool_nworkers(not a pool)");
            fresh_error(&marker, "sm_pool_nworkers(not a pool)");
        }
    }
}

fn op_map(st: &mut State, inp: &mut In) {
    let (arg, p) = st.pool_arg(inp);
    let ex = inp.chance(128);
    let live = match arg {
        PoolArg::Live(i) => Some((st.pools[i].nworkers, st.pools[i].backend)),
        _ => None,
    };
    let process = matches!(live, Some((_, Backend::Process))) && !st.debug;
    let serial = matches!(live, Some((_, Backend::Serial))) || st.debug;
    let nworkers = live.map_or(1, |l| l.0);

    // njobs: small, tiny on process pools; sometimes absurd.
    let absurd_njobs = inp.chance(10);
    let mut njobs: u64 = if absurd_njobs {
        [u64::MAX, (1 << 62) + 1, 1 << 62, 1 << 40][inp.below(4) as usize]
    } else if process {
        inp.below(9) as u64
    } else {
        let big = inp.chance(40);
        inp.below(if big { 200 } else { 24 }) as u64
    };
    let work_null = inp.chance(10);
    let with_reduce = inp.chance(128);
    let result_size = match inp.u8() % 8 {
        0 => [u64::MAX, 1 << 62, u64::MAX / 3][inp.below(3) as usize],
        1..=3 => 0,
        _ => inp.below(4097) as u64,
    };

    // Failures.
    let s = sh_mut();
    reset_observations();
    s.pool = p as usize;
    s.other_pool = match inp.u8() % 3 {
        0 => 0,
        1 => st.local.as_ptr() as usize,
        _ => st
            .pools
            .iter()
            .map(|r| r.ptr as usize)
            .find(|&o| o != p as usize)
            .unwrap_or(0),
    };
    s.nworkers = nworkers;
    s.serial = serial as u32;
    s.fail_kind = if inp.chance(100) {
        1 + inp.below(4)
    } else {
        FAIL_NONE
    };
    s.fail_at = if s.fail_kind != FAIL_NONE {
        inp.below(njobs.min(40) as u32 + 2) as u64
    } else {
        NO
    };
    s.fail_code = match s.fail_kind {
        FAIL_ERROR => match inp.int() {
            0 => 1,
            SM_STOP => -1,
            c => c,
        },
        FAIL_HOLD_CRITICAL | FAIL_HOLD_ORDERED => {
            if inp.chance(128) {
                0
            } else {
                inp.int()
            }
        }
        _ => 0,
    };
    // An absurd njobs only runs with a failure at job 0 (or never runs: invalid).
    if absurd_njobs && njobs <= 1 << 62 && s.fail_at != 0 {
        s.fail_kind = FAIL_STOP;
        s.fail_at = 0;
    }
    s.reduce_stop_at = if with_reduce && inp.chance(64) {
        inp.below(njobs.min(40) as u32 + 2) as u64
    } else {
        NO
    };
    s.reduce_code = if inp.chance(128) { 1 } else { inp.int() | 1 };
    s.reduce_op = if with_reduce { inp.u8() as u32 % 6 } else { 0 };
    s.njobs = njobs;
    s.result_size = result_size;
    s.ninner = inp.below(5);
    for k in 0..s.ninner as usize {
        s.inner[k] = inp.u8();
    }
    if process {
        // Nested maps and regions in forked workers are fine, but keep process maps tiny.
        for k in 0..s.ninner as usize {
            if matches!(s.inner[k] % 16, 10 | 11) && njobs > 4 {
                s.inner[k] = 0;
            }
        }
    }
    s.caller_tid = tid();
    s.init_fail_worker = -1;
    s.fini_fail_worker = -1;
    s.wreduce_stop_worker = -1;
    s.hook_code = 0;
    s.wresult_size = 0;
    s.fini_set = 0;

    // Options.
    let mut buf = [0u8; 256];
    let known = std::mem::size_of::<sm_map_opts>();
    let mut opts_null = true;
    let mut opts_invalid = false;
    let mut eff = sm_map_opts {
        size: 0,
        chunk: 0,
        worker_init: None,
        worker_fini: None,
        worker_reduce: None,
        wresult_size: 0,
        progress: None,
        inner_threads: 0,
        ctx_size: 0,
    };
    if ex && inp.chance(220) {
        opts_null = false;
        let size: usize = match inp.u8() % 12 {
            0 => inp.below(8) as usize, // too small
            1 => 8,
            2 => 12, // cuts chunk: its low half
            3 => 16,
            4 => 40,
            5 => 44, // cuts wresult_size
            6 => 48,
            7 => known + 8,                    // longer, zero extra
            8 => 256,                          // longer, zero extra
            9 => known + inp.below((256 - known) as u32) as usize, // longer, maybe nonzero extra
            10 => 64, // a caller built before ctx_size
            _ => known,
        };
        let chunk: usize = match inp.u8() % 8 {
            0 => usize::MAX,
            1 => 1 << 62,
            2..=4 => 0,
            _ => inp.below(9) as usize,
        };
        let wresult_size: usize = match inp.u8() % 8 {
            // Absurd values whose low half is 0 (size 44 keeps only the low half).
            0 => [usize::MAX << 32, 1 << 62][inp.below(2) as usize],
            1..=3 => 0,
            _ => inp.below(200) as usize,
        };
        let inner_threads: i32 = match inp.u8() % 8 {
            0 => [-2, i32::MIN][inp.below(2) as usize], // invalid
            1 => -1,
            2 => 1,
            3 => 2,
            _ => 0,
        };
        let hooks = inp.u8();
        let o = sm_map_opts {
            size,
            chunk,
            worker_init: (hooks & 1 != 0).then_some(worker_init as _),
            worker_fini: (hooks & 2 != 0).then_some(worker_fini as _),
            worker_reduce: (hooks & 4 != 0).then_some(worker_reduce as _),
            wresult_size,
            progress: (hooks & 8 != 0).then_some(progress as _),
            inner_threads,
            // The oracle keeps its state in ctx, which jobs must share: never a copy.
            ctx_size: 0,
        };
        // SAFETY: sm_map_opts is plain data of `known` bytes; buf has room.
        unsafe {
            std::ptr::copy_nonoverlapping(
                &o as *const sm_map_opts as *const u8,
                buf.as_mut_ptr(),
                known,
            )
        };
        let mut extra_nonzero = false;
        if size > known && inp.chance(100) {
            let at = known + inp.below((size - known) as u32) as usize;
            buf[at] = inp.u8() | 1;
            extra_nonzero = true;
        }
        opts_invalid = size < 8 || (size > known && extra_nonzero);
        // What the library will see: the first min(size, known) bytes, the rest zero.
        let mut img = [0u8; std::mem::size_of::<sm_map_opts>()];
        img[..size.min(known)].copy_from_slice(&buf[..size.min(known)]);
        // SAFETY: img holds an image of an sm_map_opts whose fields are whole (sizes 12 and 44
        // cut only integer fields), so every function pointer is NULL or one of ours.
        eff = unsafe { std::ptr::read_unaligned(img.as_ptr() as *const sm_map_opts) };
        // inner_threads below -1 is refused (when the size reaches the field)
        opts_invalid |= size >= 8 && eff.inner_threads < -1;
        if hooks & 16 != 0 {
            s.init_fail_worker = inp.below(nworkers as u32 + 1) as i32;
        }
        if hooks & 32 != 0 {
            s.fini_fail_worker = inp.below(nworkers as u32 + 1) as i32;
        }
        if hooks & 64 != 0 {
            s.wreduce_stop_worker = inp.below(nworkers as u32 + 1) as i32;
        }
        s.hook_code = inp.int() | 1;
        s.wresult_size = eff.wresult_size as u64;
        s.fini_set = eff.worker_fini.is_some() as u32;
    }
    if ex && inp.chance(16) {
        // A second "ex" flavour: sm_map_ex with NULL options is sm_map.
        opts_null = true;
        opts_invalid = false;
        eff.size = 0;
    }
    if opts_null {
        eff = sm_map_opts {
            size: 0,
            chunk: 0,
            worker_init: None,
            worker_fini: None,
            worker_reduce: None,
            wresult_size: 0,
            progress: None,
            inner_threads: 0,
            ctx_size: 0,
        };
        s.init_fail_worker = -1;
        s.fini_fail_worker = -1;
        s.wreduce_stop_worker = -1;
        s.wresult_size = 0;
    }
    let absurd_chunk = eff.chunk as u64 > 1 << 40;
    let absurd_wresult = eff.wresult_size as u64 > 1 << 40;
    let absurd_result = result_size > 1 << 40;
    if (absurd_chunk || absurd_wresult || absurd_result) && njobs > 50 {
        njobs = njobs.min(50);
        s.njobs = njobs;
    }

    let call = format!(
        "{}(pool {}, njobs {njobs}, work {}, reduce {}, result_size {result_size}, opts {}) \
         [fail {} at {} code {}, reduce stop at {}, inner {:?}, hooks init/fini/wreduce {}/{}/{}]",
        if ex { "sm_map_ex" } else { "sm_map" },
        match live {
            Some((n, b)) => format!("{b:?} {n}{}", if st.debug { " debug" } else { "" }),
            None => format!("{p:p} (not a pool)"),
        },
        if work_null { "NULL" } else { "set" },
        if with_reduce { "set" } else { "NULL" },
        if opts_null {
            "NULL".to_string()
        } else {
            format!(
                "size {} chunk {} wresult {} init {} fini {} wreduce {} progress {}",
                eff.size,
                eff.chunk,
                eff.wresult_size,
                eff.worker_init.is_some(),
                eff.worker_fini.is_some(),
                eff.worker_reduce.is_some(),
                eff.progress.is_some()
            )
        },
        s.fail_kind,
        s.fail_at as i64,
        s.fail_code,
        s.reduce_stop_at as i64,
        &s.inner[..s.ninner as usize],
        s.init_fail_worker,
        s.fini_fail_worker,
        s.wreduce_stop_worker,
    );

    if trace() {
        eprintln!("  {call}");
    }
    let marker = prime();
    let status = if ex {
        sm_map_ex(
            p,
            njobs as usize,
            if work_null { None } else { Some(work) },
            if with_reduce { Some(reduce) } else { None },
            result_size as usize,
            std::ptr::null_mut(),
            if opts_null {
                std::ptr::null()
            } else {
                buf.as_ptr() as *const sm_map_opts
            },
        )
    } else {
        sm_map(
            p,
            njobs as usize,
            if work_null { None } else { Some(work) },
            if with_reduce { Some(reduce) } else { None },
            result_size as usize,
            std::ptr::null_mut(),
        )
    };
    assert!(
        status != SM_ERR_PANIC,
        "{call}: SM_ERR_PANIC: {}",
        last_error()
    );
    let ran: u32 = s.runs.iter().map(|r| r.load(SeqCst)).sum();
    let invalid = live.is_none() || work_null || opts_invalid || njobs > 1 << 62;
    if invalid {
        check_status(status, &[SM_ERR_INVALID], &marker, &call);
        assert_eq!(ran, 0, "{call}: refused, but jobs ran");
        return;
    }
    let huge = njobs > 0 && (absurd_result || absurd_wresult);
    if huge {
        // Bug "serial-alloc-late" (found here, fixed by commit 52c40d1): serial maps (serial
        // backend, debug mode) allocated the job result buffer after running worker_init, and
        // the per-worker result after worker_init and every job, then failed with SM_ERR_NOMEM
        // (or reported worker_init's failure); the other backends refuse before running anything.
        // SM_FUZZ_KNOWN=serial-alloc-late skips the check, to fuzz a library from before the fix.
        if is_known("serial-alloc-late")
            && serial
            && (absurd_wresult || (absurd_result && eff.worker_init.is_some()))
        {
            return;
        }
        // Above SM_MAX_RESULT_SIZE: refused as invalid on every backend.
        check_status(status, &[SM_ERR_INVALID], &marker, &call);
        assert_eq!(
            ran,
            0,
            "{call}: refused with {status:?} ({}), but jobs ran",
            last_error()
        );
        return;
    }
    if absurd_wresult || absurd_result {
        // njobs == 0: the sizes are checked all the same.
        check_status(status, &[SM_ERR_INVALID], &marker, &call);
        return;
    }
    check_anomalies(&call);

    // The expected outcome: the first failure in job order.
    let n = njobs;
    let job_fail = (s.fail_kind != FAIL_NONE && s.fail_at < n).then_some(s.fail_at);
    let red_stop = (with_reduce && s.reduce_stop_at < n).then_some(s.reduce_stop_at);
    let job_status = match s.fail_kind {
        FAIL_STOP => SM_STOPPED,
        FAIL_ERROR => SM_ERR_JOB,
        _ => SM_ERR_STATE,
    };
    // (status, jobs reduced, jobs that surely completed)
    let (exp_status, exp_reduced, exp_done) = match (job_fail, red_stop) {
        (None, None) => (SM_OK, n, n),
        (Some(k), r) if r.is_none_or(|r| k <= r) => {
            if s.fail_kind == FAIL_STOP {
                (SM_STOPPED, k + 1, k + 1)
            } else {
                (job_status, k, k)
            }
        }
        (_, Some(r)) => (SM_STOPPED, r + 1, r + 1),
        _ => unreachable!(),
    };
    let participants = if n == 0 {
        0
    } else if serial {
        1
    } else if process {
        nworkers.min(n.min(4096) as i32)
    } else {
        nworkers
    };
    let init_fails = eff.worker_init.is_some() && s.init_fail_worker >= 0;
    let fini_fails = eff.worker_fini.is_some() && s.fini_fail_worker >= 0;
    let wreduce_stops = eff.worker_reduce.is_some() && s.wreduce_stop_worker >= 0;
    let init_may = init_fails && s.init_fail_worker < participants;
    let fini_may = fini_fails && s.fini_fail_worker < participants;
    let wreduce_may = wreduce_stops && s.wreduce_stop_worker < participants;
    let hooks_may_fail = init_may || fini_may || wreduce_may;
    let reduced = s.next_reduce.load(SeqCst);
    if !hooks_may_fail {
        check_status(status, &[exp_status], &marker, &call);
        if with_reduce {
            assert_eq!(reduced, exp_reduced, "{call}: jobs reduced");
        }
    } else {
        let mut allowed = vec![exp_status];
        if init_may || fini_may {
            allowed.push(SM_ERR_JOB);
        }
        if wreduce_may {
            allowed.push(SM_STOPPED);
        }
        check_status(status, &allowed, &marker, &call);
        if with_reduce && !init_may {
            assert!(reduced <= exp_reduced, "{call}: reduced {reduced} jobs");
        }
    }
    if !init_may && !fini_may {
        for j in 0..exp_done.min(RUNS as u64) {
            assert_eq!(
                s.runs[j as usize].load(SeqCst),
                1,
                "{call}: job {j} ran {} times (status {status:?}: {})",
                s.runs[j as usize].load(SeqCst),
                last_error()
            );
        }
    }
    if !hooks_may_fail && n > 0 && matches!(status, SM_OK | SM_STOPPED) {
        if eff.worker_init.is_some() {
            assert_eq!(
                s.inits.load(SeqCst),
                participants as u32,
                "{call}: worker_init calls"
            );
        }
        if eff.worker_reduce.is_some() {
            assert_eq!(
                s.next_wreduce.load(SeqCst),
                participants,
                "{call}: worker_reduce calls"
            );
        }
    }
    if eff.progress.is_some() {
        assert!(
            s.progress_calls.load(SeqCst) >= 1,
            "{call}: progress never called"
        );
        if status == SM_OK {
            assert_eq!(s.progress_done.load(SeqCst), n, "{call}: final progress");
        }
    }
    // The pool survived whatever the jobs and reduce tried.
    assert_eq!(sm_pool_nworkers(p), nworkers, "{call}: pool gone");
}

fn op_parallel(st: &mut State, inp: &mut In) {
    let (arg, p) = st.pool_arg(inp);
    let live = match arg {
        PoolArg::Live(i) => Some((st.pools[i].nworkers, st.pools[i].backend)),
        _ => None,
    };
    let serial = matches!(live, Some((_, Backend::Serial))) || st.debug;
    let nworkers = live.map_or(1, |l| l.0);
    let region_null = inp.chance(10);
    let s = sh_mut();
    reset_observations();
    s.pool = p as usize;
    s.nworkers = nworkers;
    s.serial = serial as u32;
    s.nrops = inp.below(MAX_ROPS as u32 + 1);
    let mut all_valid = true;
    for k in 0..s.nrops as usize {
        let kind = inp.below(6);
        let mut op = ROp {
            kind,
            ..ROp::default()
        };
        if kind == R_LOOP {
            let base: usize = match inp.u8() % 6 {
                0 => usize::MAX - 300,
                1 => 1 << 62,
                _ => inp.below(1000) as usize,
            };
            op.start = base;
            op.end = match inp.u8() % 10 {
                0 => base.saturating_sub(inp.below(3) as usize), // empty
                1 => usize::MAX,                                 // maybe too long
                _ => base.saturating_add(inp.below(HITS_PER_LOOP as u32 + 1) as usize),
            };
            op.schedule = if inp.chance(8) {
                inp.int()
            } else {
                inp.below(3) as c_int
            };
            op.chunk = match inp.u8() % 8 {
                0 => usize::MAX,
                1 => 1 << 62,
                2..=4 => 0,
                _ => inp.below(17) as usize,
            };
            op.flags = if inp.chance(8) {
                inp.int()
            } else {
                inp.below(4) as c_int
            };
            all_valid &= loop_valid(&op);
        }
        s.rops[k] = op;
    }
    s.early_worker = -1;
    s.early_at = 0;
    s.ret_worker = -1;
    s.ret_code = 0;
    match inp.u8() % 8 {
        0 => {
            s.early_worker = inp.below(nworkers as u32) as i32;
            s.early_at = inp.below(s.nrops + 1);
        }
        1 => {
            s.ret_worker = inp.below(nworkers as u32) as i32;
            s.ret_code = match inp.int() {
                0 => SM_STOP,
                c => c,
            };
        }
        _ => {}
    }
    // sm_parallel; sm_parallel_ex with NULL options, with valid options and a per-worker result
    // (which sm_worker_local must hand to the members, see `region`), or with options a region
    // refuses (a chunk, a progress callback, a size shorter than its first field).
    let flavour = inp.below(4);
    let mut opts = sm_map_opts {
        size: std::mem::size_of::<sm_map_opts>(),
        chunk: 0,
        worker_init: None,
        worker_fini: None,
        worker_reduce: None,
        wresult_size: inp.below(200) as usize,
        progress: None,
        inner_threads: [0, -1, 1][inp.below(3) as usize],
        ctx_size: 0,
    };
    if flavour == 3 {
        match inp.below(3) {
            0 => opts.chunk = 1 + inp.below(100) as usize,
            1 => opts.progress = Some(progress),
            _ => opts.size = inp.below(8) as usize,
        }
    }
    s.wresult_size = if flavour == 2 {
        opts.wresult_size as u64
    } else {
        0
    };
    let call = format!(
        "{}(pool {}, region {}) ops {:?} early {}@{} ret {}:{}",
        match flavour {
            0 => "sm_parallel".to_string(),
            1 => "sm_parallel_ex(NULL opts)".to_string(),
            _ => format!(
                "sm_parallel_ex(size {} chunk {} progress {} wresult_size {})",
                opts.size,
                opts.chunk,
                opts.progress.is_some(),
                opts.wresult_size
            ),
        },
        match live {
            Some((n, b)) => format!("{b:?} {n}{}", if st.debug { " debug" } else { "" }),
            None => format!("{p:p} (not a pool)"),
        },
        if region_null { "NULL" } else { "set" },
        s.rops[..s.nrops as usize]
            .iter()
            .map(|o| if o.kind == R_LOOP {
                format!(
                    "loop[{},{}) sched {} chunk {} flags {}",
                    o.start, o.end, o.schedule, o.chunk, o.flags
                )
            } else {
                ["loop", "barrier", "single", "critical", "master", "map"][o.kind as usize]
                    .to_string()
            })
            .collect::<Vec<_>>(),
        s.early_worker,
        s.early_at,
        s.ret_worker,
        s.ret_code
    );
    if trace() {
        eprintln!("  {call}");
    }
    let marker = prime();
    let region_fn: sm_region_fn = if region_null { None } else { Some(region) };
    let status = match flavour {
        0 => sm_parallel(p, region_fn, std::ptr::null_mut()),
        1 => sm_parallel_ex(p, region_fn, std::ptr::null_mut(), std::ptr::null()),
        _ => sm_parallel_ex(p, region_fn, std::ptr::null_mut(), &opts),
    };
    assert!(
        status != SM_ERR_PANIC,
        "{call}: SM_ERR_PANIC: {}",
        last_error()
    );
    if live.is_none() || region_null || flavour == 3 {
        check_status(status, &[SM_ERR_INVALID], &marker, &call);
        return;
    }
    let team = if serial { 1 } else { nworkers };
    // The early worker leaves before op early_at: the others may wait for it at a barrier or loop.
    let early = s.early_worker >= 0 && s.early_worker < team && s.early_at < s.nrops;
    let ret = s.ret_worker >= 0 && s.ret_worker < team && !early;
    let mut allowed = vec![];
    if !all_valid {
        allowed.push(SM_ERR_STATE);
        // A bad loop after a worker left / returned early may never be reached.
        if early || ret {
            allowed.extend([SM_OK, SM_ERR_JOB, SM_STOPPED]);
        }
    } else if early {
        allowed.extend([SM_OK, SM_ERR_STATE]);
    } else if ret {
        allowed.push(if s.ret_code == SM_STOP {
            SM_STOPPED
        } else {
            SM_ERR_JOB
        });
    } else {
        allowed.push(SM_OK);
    }
    if early && s.ret_worker >= 0 {
        allowed.extend([SM_ERR_JOB, SM_STOPPED]);
    }
    // Loops whose chunks overflow the iteration space are refused or run: both are fine here.
    check_status(status, &allowed, &marker, &call);
    check_anomalies(&call);
    if status == SM_OK && !early && s.soft.load(SeqCst) != 0 {
        let code = s.soft_code.load(SeqCst) as usize;
        panic!(
            "{call}: succeeded, but a worker saw: {}",
            ANOMALIES.get(code).unwrap_or(&"?")
        );
    }
    if status == SM_OK && all_valid && !early {
        for k in 0..s.nrops as usize {
            let op = &s.rops[k];
            match op.kind {
                R_LOOP => {
                    let trip = op.end.saturating_sub(op.start).min(HITS_PER_LOOP);
                    for i in 0..trip {
                        assert_eq!(
                            s.hits[k][i].load(SeqCst),
                            1,
                            "{call}: op {k}: iteration {i} ran {} times",
                            s.hits[k][i].load(SeqCst)
                        );
                    }
                }
                R_SINGLE => assert_eq!(
                    s.singles[k].load(SeqCst),
                    1,
                    "{call}: op {k}: sm_single was 1 in {} workers",
                    s.singles[k].load(SeqCst)
                ),
                _ => {}
            }
        }
    }
    assert_eq!(sm_pool_nworkers(p), nworkers, "{call}: pool gone");
}

fn op_constructs_outside(st: &mut State, inp: &mut In) {
    let (_, p) = st.pool_arg(inp);
    let (mut lo, mut hi) = (11usize, 12usize);
    let null_lo = inp.chance(64);
    let null_hi = inp.chance(64);
    let (start, end) = (inp.size(100) as usize, inp.size(100) as usize);
    let schedule = inp.int();
    let chunk = inp.size(10) as usize;
    let flags = inp.int();
    let marker = prime();
    let r = sm_for_next(
        p,
        start,
        end,
        schedule,
        chunk,
        flags,
        if null_lo {
            std::ptr::null_mut()
        } else {
            &mut lo
        },
        if null_hi {
            std::ptr::null_mut()
        } else {
            &mut hi
        },
    );
    assert_eq!(r, 0, "sm_for_next outside a region returned {r}");
    assert!(
        (lo, hi) == (11, 12),
        "sm_for_next outside a region wrote lo/hi"
    );
    fresh_error(&marker, "sm_for_next outside a region");
    let marker = prime();
    let b = sm_barrier(p);
    check_status(
        b,
        &[SM_ERR_STATE, SM_ERR_INVALID],
        &marker,
        "sm_barrier outside a region",
    );
    let marker = prime();
    let s1 = sm_single(p);
    assert_eq!(s1, -1, "sm_single outside a region");
    fresh_error(&marker, "sm_single outside a region");
}

fn op_sections_outside(st: &mut State, inp: &mut In) {
    let (_, p) = st.pool_arg(inp);
    let which = inp.below(4);
    let marker = prime();
    let (name, r) = match which {
        0 => ("sm_critical_enter", sm_critical_enter(p)),
        1 => ("sm_critical_leave", sm_critical_leave(p)),
        2 => ("sm_ordered_enter", sm_ordered_enter(p)),
        _ => ("sm_ordered_leave", sm_ordered_leave(p)),
    };
    let call = format!("{name}({p:p}) outside a map");
    let allowed: &[sm_status] = if p.is_null() {
        &[SM_ERR_INVALID]
    } else {
        &[SM_ERR_STATE, SM_ERR_INVALID]
    };
    check_status(r, allowed, &marker, &call);
}

fn op_ids_outside() {
    let marker = prime();
    assert!(sm_worker_local().is_null(), "sm_worker_local outside a map");
    fresh_error(&marker, "sm_worker_local outside a map");
    assert_eq!(sm_worker_id(), -1, "sm_worker_id outside a map");
    assert_eq!(sm_master(), 1, "sm_master outside a map");
    assert_eq!(sm_num_workers(), 1, "sm_num_workers outside a map");
}

fn op_empty(st: &mut State, inp: &mut In) {
    let (count, itemsize) = match inp.u8() % 6 {
        0 => (inp.u64() as usize, inp.u64() as usize),
        1 => (usize::MAX, 2),
        2 => (1 << 50, 1),
        3 => (isize::MAX as usize + 1, 1),
        _ => (inp.below(5000) as usize, inp.below(9) as usize),
    };
    let bytes = count.checked_mul(itemsize);
    let marker = prime();
    let p = sm_empty(count, itemsize);
    let call = format!("sm_empty({count}, {itemsize})");
    match bytes {
        None => {
            assert!(p.is_null(), "{call} succeeded on overflow");
            fresh_error(&marker, &call);
        }
        Some(b) if b > isize::MAX as usize => {
            assert!(p.is_null(), "{call} succeeded");
            fresh_error(&marker, &call);
        }
        Some(b) if b > 64 << 20 => {
            // Large: the system may refuse (SM_ERR_NOMEM) or map it lazily.
            if p.is_null() {
                fresh_error(&marker, &call);
            } else {
                assert_eq!(p as usize % 4096, 0, "{call}: not page-aligned");
                // SAFETY: b bytes of fresh memory; touch the first and last byte only.
                unsafe {
                    assert_eq!(*(p as *const u8), 0, "{call}: not zeroed");
                    assert_eq!(*(p as *const u8).add(b - 1), 0, "{call}: not zeroed");
                }
                let m2 = prime();
                sm_free(p);
                assert!(last_error().contains(&m2), "sm_free after {call} failed");
            }
        }
        Some(b) => {
            assert!(!p.is_null(), "{call} failed: {}", last_error());
            assert_eq!(p as usize % 4096, 0, "{call}: not page-aligned");
            if b > 0 {
                // SAFETY: b bytes of fresh memory.
                let m = unsafe { std::slice::from_raw_parts_mut(p as *mut u8, b) };
                assert!(m.iter().all(|&x| x == 0), "{call}: not zeroed");
                m.fill(0xA5);
            }
            st.freed_mem.retain(|&f| f != p as usize);
            st.mem.push((p as usize, b));
            if st.mem.len() > 8 {
                let (q, _) = st.mem.remove(0);
                sm_free(q as *mut c_void);
                st.freed_mem.push(q);
            }
        }
    }
}

fn op_free(st: &mut State, inp: &mut In) {
    let sel = inp.u8();
    let mut local = [0u64; 4];
    let boxed = Box::new([0u64; 4]);
    let (p, live): (*mut c_void, Option<usize>) = match sel % 8 {
        0 => (std::ptr::null_mut(), None),
        1 if !st.freed_mem.is_empty() => {
            let f = st.freed_mem[sel as usize / 8 % st.freed_mem.len()];
            (f as *mut c_void, None)
        }
        2 => (local.as_mut_ptr().cast(), None),
        3 => (&*boxed as *const [u64; 4] as *mut c_void, None),
        4 if !st.mem.is_empty() => {
            let (m, len) = st.mem[sel as usize / 8 % st.mem.len()];
            let off = 1 + inp.below(len.max(1) as u32 + 4096) as usize;
            ((m as *mut u8).wrapping_add(off).cast(), None)
        }
        _ if !st.mem.is_empty() => {
            let i = sel as usize / 8 % st.mem.len();
            (st.mem[i].0 as *mut c_void, Some(i))
        }
        _ => (std::ptr::null_mut(), None),
    };
    // A pointer past an allocation may be the start of the next mapping: never the harness's own
    // block (which sm_free would rightly release).
    let p = if p as usize == sh_addr() {
        std::ptr::null_mut()
    } else {
        p
    };
    // A pointer equal to a live allocation is that allocation (freed addresses get reused).
    let live = live.or_else(|| st.mem.iter().position(|&(m, _)| m == p as usize));
    let marker = prime();
    sm_free(p);
    let call = format!("sm_free({p:p})");
    if p.is_null() {
        assert!(last_error().contains(&marker), "{call} set an error");
    } else if let Some(i) = live {
        assert!(
            last_error().contains(&marker),
            "{call} of live memory failed: {}",
            last_error()
        );
        st.mem.swap_remove(i);
        st.freed_mem.push(p as usize);
        if st.freed_mem.len() > 16 {
            st.freed_mem.remove(0);
        }
    } else {
        fresh_error(&marker, &call);
    }
    assert!(local.iter().all(|&x| x == 0) && boxed.iter().all(|&x| x == 0));
}

fn op_argsort(st: &mut State, inp: &mut In) {
    let (arg, p) = st.pool_arg(inp);
    let pool_ok = matches!(arg, PoolArg::Live(_) | PoolArg::Null);
    let dtype: c_int = if inp.chance(40) {
        inp.int()
    } else {
        inp.below(10) as c_int
    };
    let sizes = [8usize, 4, 8, 4, 2, 1, 8, 4, 2, 1];
    let ks = if (0..10).contains(&dtype) {
        sizes[dtype as usize]
    } else {
        1
    };
    // Keys: n <= 31 elements of ks bytes, value v < 5 in the low byte, zeros above: the same
    // order for every dtype (floats: +0 and positive denormals).
    let mut keys = [0u64; 64];
    let vals: Vec<u8> = (0..32).map(|_| inp.u8() % 5).collect();
    for (i, &v) in vals.iter().enumerate() {
        // SAFETY: i * ks < 32 * 8 bytes of the 512-byte buffer.
        unsafe { *(keys.as_mut_ptr() as *mut u8).add(i * ks) = v };
    }
    let mut out = [0i64; 66];
    let mode = inp.u8() % 10;
    let n_small = inp.below(32) as usize;
    let kp = keys.as_ptr() as *const c_void;
    let op = out[1..].as_mut_ptr();
    // (keys, n, out, must fail, what)
    let (k, n, o, bad, what) = match mode {
        0 => (std::ptr::null(), n_small, op, n_small > 0, "NULL keys"),
        1 => (kp, n_small, std::ptr::null_mut(), n_small > 0, "NULL out"),
        2 => (
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
            false,
            "n = 0, NULL arrays",
        ),
        3 => {
            // out overlapping keys: keys start inside out's n int64.
            let base = keys.as_mut_ptr() as *mut u8;
            let n = 1 + n_small.min(7);
            let shift = inp.below((n * 8 / ks) as u32) as usize * ks;
            (
                base.wrapping_add(shift) as *const c_void,
                n,
                base.cast::<i64>(),
                true,
                "overlap",
            )
        }
        4 => (
            kp,
            [
                usize::MAX,
                1 << 63,
                (1 << 61) + 1,
                (usize::MAX / ks).saturating_add(1),
            ][inp.below(4) as usize],
            op,
            true,
            "absurd n",
        ),
        _ => (kp, n_small, op, false, "valid"),
    };
    let must_fail = !pool_ok || !(0..10).contains(&dtype) || bad;
    let marker = prime();
    let status = sm_argsort(p, k, n, dtype, o);
    let call = format!("sm_argsort(pool {p:p}, {what}, n {n}, dtype {dtype})");
    if must_fail {
        if n == 0 && pool_ok && (0..10).contains(&dtype) {
            check_status(status, &[SM_OK], &marker, &call);
        } else {
            check_status(status, &[SM_ERR_INVALID], &marker, &call);
        }
        return;
    }
    check_status(status, &[SM_OK], &marker, &call);
    if n > 0 && mode >= 5 {
        let mut expected: Vec<i64> = (0..n as i64).collect();
        expected.sort_by_key(|&i| vals[i as usize]);
        assert_eq!(&out[1..n + 1], &expected[..], "{call}: wrong order");
        assert!(out[0] == 0 && out[n + 1] == 0, "{call}: wrote outside out");
    }
}

fn op_fromfile(st: &mut State, inp: &mut In) {
    let (arg, p) = st.pool_arg(inp);
    let pool_ok = matches!(arg, PoolArg::Live(_) | PoolArg::Null);
    let which = inp.u8() % 8;
    let missing = CString::new("/nonexistent/sharedmem-fuzz/none").unwrap();
    let dir = CString::new("/tmp").unwrap();
    let empty = CString::new("").unwrap();
    let devnull = CString::new("/dev/null").unwrap();
    let (path, kind): (*const c_char, u8) = match which {
        0 => (std::ptr::null(), 0),
        1 => (missing.as_ptr(), 1),
        2 => (dir.as_ptr(), 1),
        3 => (empty.as_ptr(), 1),
        4 => (devnull.as_ptr(), 1),
        _ => (file_path(), 2),
    };
    let offset = match inp.u8() % 6 {
        0 => usize::MAX,
        1 => FILE_LEN + inp.below(4) as usize,
        _ => inp.below(FILE_LEN as u32 + 1) as usize,
    };
    let itemsize = match inp.u8() % 8 {
        0 => 0,
        1 => usize::MAX,
        2 => 1 << 62,
        _ => 1 + inp.below(16) as usize,
    };
    let mut count: usize = match inp.u8() % 6 {
        0 | 1 => usize::MAX,
        2 => usize::MAX - 1,
        3 => 1 << 62,
        _ => inp.below(FILE_LEN as u32 + 2) as usize,
    };
    let null_count = inp.chance(16);
    let asked = count;
    let marker = prime();
    let r = sm_fromfile(
        p,
        path,
        offset,
        itemsize,
        if null_count {
            std::ptr::null_mut()
        } else {
            &mut count
        },
    );
    let call = format!(
        "sm_fromfile(pool {p:p}, path kind {which}, offset {offset}, itemsize {itemsize}, count \
         {asked}{})",
        if null_count { " (NULL)" } else { "" }
    );
    // The expected result, for the real file.
    let expect: Option<usize> =
        if kind != 2 || null_count || !pool_ok || itemsize == 0 || offset > FILE_LEN {
            None
        } else {
            let avail = FILE_LEN - offset;
            if asked == usize::MAX {
                #[allow(clippy::manual_is_multiple_of)] // is_multiple_of needs Rust 1.87
                (avail % itemsize == 0).then_some(avail / itemsize)
            } else {
                asked
                    .checked_mul(itemsize)
                    .filter(|&b| b <= avail)
                    .map(|_| asked)
            }
        };
    let expect = if kind == 1 && which == 4 && !null_count && pool_ok && itemsize != 0 {
        // /dev/null is not a regular file.
        None
    } else {
        expect
    };
    match expect {
        None => {
            assert!(r.is_null(), "{call} succeeded (count {count})");
            fresh_error(&marker, &call);
            assert_eq!(count, asked, "{call} failed but changed *count");
        }
        Some(n) => {
            assert!(!r.is_null(), "{call} failed: {}", last_error());
            assert_eq!(count, n, "{call}: *count");
            let bytes = n * itemsize;
            // SAFETY: n items of itemsize bytes were read into fresh memory.
            let got = unsafe { std::slice::from_raw_parts(r as *const u8, bytes) };
            assert!(
                got.iter()
                    .enumerate()
                    .all(|(i, &b)| b == file_byte(offset + i)),
                "{call}: wrong bytes"
            );
            st.freed_mem.retain(|&f| f != r as usize);
            st.mem.push((r as usize, bytes));
        }
    }
}

const FILE_LEN: usize = 1000;

fn file_byte(i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8)
}

fn setup_file() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let path = format!("/tmp/sharedmem-fuzz-{}.bin", std::process::id());
        let data: Vec<u8> = (0..FILE_LEN).map(file_byte).collect();
        std::fs::write(&path, data).expect("write the temporary file");
        let s = sh_mut();
        s.file[..path.len()].copy_from_slice(path.as_bytes());
        s.file[path.len()] = 0;
        extern "C" fn remove() {
            let path = format!("/tmp/sharedmem-fuzz-{}.bin", std::process::id());
            let _ = std::fs::remove_file(path);
        }
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(remove) };
    });
}

fn op_status_str(inp: &mut In) {
    let v = inp.int();
    let s = sm_status_str(v);
    assert!(!s.is_null(), "sm_status_str({v}) is NULL");
    // SAFETY: non-NULL static string.
    let t = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
    assert!(!t.is_empty(), "sm_status_str({v}) is empty");
    if (0..=9).contains(&v) {
        assert!(t.starts_with("SM_"), "sm_status_str({v}) = {t:?}");
    }
}

fn op_debug(st: &mut State, inp: &mut In) {
    let on = inp.int();
    sm_set_debug(on);
    st.debug =
        on != 0 || std::env::var("SM_DEBUG").is_ok_and(|v| !v.trim().is_empty() && v.trim() != "0");
}

static EXECS: AtomicUsize = AtomicUsize::new(0);

fuzz_target!(|data: &[u8]| {
    setup_file();
    EXECS.fetch_add(1, SeqCst);
    let mut inp = In { d: data, i: 0 };
    let mut st = State {
        pools: Vec::new(),
        freed_pools: Vec::new(),
        mem: Vec::new(),
        freed_mem: Vec::new(),
        debug: false,
        local: [0; 16],
    };
    let mut ops = 0;
    while !inp.done() && ops < 48 {
        ops += 1;
        let code = inp.u8() % 16;
        if trace() {
            eprintln!("op {code} at byte {}", inp.i);
        }
        match code {
            0 | 1 => op_pool_new(&mut st, &mut inp),
            2 => op_pool_free(&mut st, &mut inp),
            3 => op_pool_nworkers(&mut st, &mut inp),
            4..=6 => op_map(&mut st, &mut inp),
            7 | 8 => op_parallel(&mut st, &mut inp),
            9 => op_constructs_outside(&mut st, &mut inp),
            10 => op_sections_outside(&mut st, &mut inp),
            11 => op_empty(&mut st, &mut inp),
            12 => op_free(&mut st, &mut inp),
            13 => op_argsort(&mut st, &mut inp),
            14 => op_fromfile(&mut st, &mut inp),
            _ => match inp.u8() % 4 {
                0 => op_status_str(&mut inp),
                1 => {
                    assert!(!sm_last_error().is_null());
                }
                2 => op_debug(&mut st, &mut inp),
                _ => op_ids_outside(),
            },
        }
        op_ids_outside();
    }
    st.cleanup();
});
