//! The C API exercised from Rust, on all three backends, through the exported functions.
//! (The same contract is tested from C through the real header in tests/c.)

use sharedmem::*;
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};

const BACKENDS: [sm_backend; 3] = [
    sm_backend::SM_BACKEND_PROCESS,
    sm_backend::SM_BACKEND_THREAD,
    sm_backend::SM_BACKEND_SERIAL,
];

fn pool(n: c_int, b: sm_backend) -> *mut sm_pool {
    let p = sm_pool_new(n, b as c_int);
    assert!(!p.is_null(), "sm_pool_new: {}", last_error());
    p
}

fn last_error() -> String {
    // SAFETY: sm_last_error never returns NULL and its string lives until the next failure.
    unsafe { CStr::from_ptr(sm_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Shared state of one test map, in sm_empty memory so forked workers' writes reach the caller.
struct Shared<T> {
    ptr: *mut T,
}

impl<T> Shared<T> {
    fn new(value: T) -> Shared<T> {
        let ptr = sm_empty(1, std::mem::size_of::<T>()) as *mut T;
        assert!(!ptr.is_null());
        // SAFETY: fresh, page-aligned memory large enough for T.
        unsafe { ptr.write(value) };
        Shared { ptr }
    }
    fn ctx(&self) -> *mut c_void {
        self.ptr.cast()
    }
    fn get(&self) -> &T {
        // SAFETY: the allocation lives until drop.
        unsafe { &*self.ptr }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        sm_free(self.ptr.cast());
    }
}

const N: usize = 3000;

struct Run {
    pool: *mut sm_pool,
    runs: [AtomicU64; N],
    nonzero_results: AtomicU64,
    fail_at: u64,
    fail_code: c_int,
    reduced: AtomicU64,
    next_reduce: AtomicU64,
    reduce_out_of_order: AtomicU64,
    reduce_wrong_value: AtomicU64,
    reduce_stop_at: u64,
    caller_pid: u32,
}

impl Run {
    fn new(pool: *mut sm_pool, fail_at: u64, fail_code: c_int) -> Run {
        Run {
            pool,
            runs: std::array::from_fn(|_| AtomicU64::new(0)),
            nonzero_results: AtomicU64::new(0),
            fail_at,
            fail_code,
            reduced: AtomicU64::new(0),
            next_reduce: AtomicU64::new(0),
            reduce_out_of_order: AtomicU64::new(0),
            reduce_wrong_value: AtomicU64::new(0),
            reduce_stop_at: u64::MAX,
            caller_pid: std::process::id(),
        }
    }
}

const RESULT_SIZE: usize = 37;

unsafe extern "C" fn work(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    // SAFETY: ctx is the Run in shared memory; result has RESULT_SIZE bytes.
    let (run, result) = unsafe {
        (
            &*(ctx as *const Run),
            std::slice::from_raw_parts_mut(result as *mut u8, RESULT_SIZE),
        )
    };
    run.runs[job].fetch_add(1, Ordering::Relaxed);
    if result.iter().any(|&b| b != 0) {
        run.nonzero_results.fetch_add(1, Ordering::Relaxed);
    }
    result.fill(0xAB);
    result[..8].copy_from_slice(&(job as u64 * 3).to_le_bytes());
    if job as u64 == run.fail_at {
        return run.fail_code;
    }
    0
}

unsafe extern "C" fn reduce(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    // SAFETY: as in work.
    let (run, result) = unsafe {
        (
            &*(ctx as *const Run),
            std::slice::from_raw_parts(result as *const u8, RESULT_SIZE),
        )
    };
    if std::process::id() != run.caller_pid {
        run.reduce_wrong_value.fetch_add(1000, Ordering::Relaxed);
    }
    if run.next_reduce.fetch_add(1, Ordering::Relaxed) != job as u64 {
        run.reduce_out_of_order.fetch_add(1, Ordering::Relaxed);
    }
    if u64::from_le_bytes(result[..8].try_into().unwrap()) != job as u64 * 3 || result[36] != 0xAB {
        run.reduce_wrong_value.fetch_add(1, Ordering::Relaxed);
    }
    run.reduced.fetch_add(1, Ordering::Relaxed);
    (job as u64 == run.reduce_stop_at) as c_int
}

fn run_map(run: &Shared<Run>, njobs: usize) -> sm_status {
    sm_map(
        run.get().pool,
        njobs,
        Some(work),
        Some(reduce),
        RESULT_SIZE,
        run.ctx(),
    )
}

fn check_ran(run: &Run, jobs: std::ops::Range<usize>, label: &str) {
    for j in jobs {
        assert_eq!(run.runs[j].load(Ordering::Relaxed), 1, "{label}: job {j}");
    }
    assert_eq!(run.nonzero_results.load(Ordering::Relaxed), 0, "{label}");
    assert_eq!(
        run.reduce_out_of_order.load(Ordering::Relaxed),
        0,
        "{label}"
    );
    assert_eq!(run.reduce_wrong_value.load(Ordering::Relaxed), 0, "{label}");
}

#[test]
fn every_job_runs_once_and_reduces_in_order() {
    for b in BACKENDS {
        for workers in [1, 2, 3] {
            let p = pool(workers, b);
            let run = Shared::new(Run::new(p, u64::MAX, 0));
            assert_eq!(
                run_map(&run, N),
                sm_status::SM_OK,
                "{b:?}: {}",
                last_error()
            );
            check_ran(run.get(), 0..N, &format!("{b:?}/{workers}"));
            assert_eq!(run.get().reduced.load(Ordering::Relaxed), N as u64);
            sm_pool_free(p);
        }
    }
}

#[test]
fn stop_and_error_keep_every_earlier_result() {
    for b in BACKENDS {
        let p = pool(2, b);
        // SM_STOP at job 500: it and every job before it are reduced, nothing after.
        let run = Shared::new(Run::new(p, 500, SM_STOP));
        assert_eq!(run_map(&run, N), sm_status::SM_STOPPED, "{b:?}");
        check_ran(run.get(), 0..501, &format!("{b:?} stop"));
        assert_eq!(run.get().reduced.load(Ordering::Relaxed), 501, "{b:?}");

        // A job error at 500: every job before it is reduced, it is not.
        let run = Shared::new(Run::new(p, 500, 42));
        assert_eq!(run_map(&run, N), sm_status::SM_ERR_JOB, "{b:?}");
        let msg = last_error();
        assert!(msg.contains("job 500") && msg.contains("42"), "{msg}");
        check_ran(run.get(), 0..500, &format!("{b:?} error"));
        assert_eq!(run.get().reduced.load(Ordering::Relaxed), 500, "{b:?}");

        // reduce returning nonzero stops the map.
        let mut r = Run::new(p, u64::MAX, 0);
        r.reduce_stop_at = 300;
        let run = Shared::new(r);
        assert_eq!(run_map(&run, N), sm_status::SM_STOPPED, "{b:?}");
        assert_eq!(run.get().reduced.load(Ordering::Relaxed), 301, "{b:?}");

        // Without reduce the same stop/error outcomes hold.
        let run = Shared::new(Run::new(p, 77, -5));
        let status = sm_map(p, N, Some(work), None, RESULT_SIZE, run.ctx());
        assert_eq!(status, sm_status::SM_ERR_JOB, "{b:?}");
        assert!(last_error().contains("job 77"), "{}", last_error());
        check_ran(run.get(), 0..77, &format!("{b:?} error, no reduce"));
        sm_pool_free(p);
    }
}

unsafe extern "C" fn crash_at_7(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    if job == 7 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        // SAFETY: deliberately kills this worker process (the test expects it). Rust's own
        // SIGSEGV handler (for stack overflows) would ignore a raised signal, so restore the default.
        unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
        }
    }
    // SAFETY: forwards the same arguments.
    unsafe { work(ctx, job, result) }
}

unsafe extern "C" fn exit_at_7(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    if job == 7 {
        // SAFETY: deliberately ends this worker process (the test expects it).
        unsafe { libc::_exit(3) };
    }
    // SAFETY: forwards the same arguments.
    unsafe { work(ctx, job, result) }
}

#[test]
fn a_dead_worker_is_reported_and_earlier_results_kept() {
    let p = pool(2, sm_backend::SM_BACKEND_PROCESS);
    for (f, cause) in [
        (crash_at_7 as unsafe extern "C" fn(_, _, _) -> _, "SIGSEGV"),
        (exit_at_7, "status 3"),
    ] {
        let run = Shared::new(Run::new(p, u64::MAX, 0));
        let status = sm_map(p, 100, Some(f), Some(reduce), RESULT_SIZE, run.ctx());
        assert_eq!(status, sm_status::SM_ERR_WORKER_DIED);
        let msg = last_error();
        assert!(
            msg.contains("job 7") && msg.contains(cause) && msg.contains("pid"),
            "{msg}"
        );
        check_ran(run.get(), 0..7, cause);
        assert_eq!(run.get().reduced.load(Ordering::Relaxed), 7, "{cause}");
        // The pool is still good.
        let run = Shared::new(Run::new(p, u64::MAX, 0));
        assert_eq!(run_map(&run, 100), sm_status::SM_OK, "{}", last_error());
    }
    sm_pool_free(p);
}

struct Sections {
    pool: *mut sm_pool,
    counter: u64,
    log: [u64; 400],
    log_len: usize,
    misuse: AtomicU64,
}

unsafe extern "C" fn critical_job(ctx: *mut c_void, job: usize, _: *mut c_void) -> c_int {
    let s = ctx as *mut Sections;
    // SAFETY: ctx is Sections in shared memory; the counter is only touched inside critical.
    unsafe {
        if sm_critical_enter((*s).pool) != sm_status::SM_OK {
            (*s).misuse.fetch_add(1, Ordering::Relaxed);
        }
        for _ in 0..100 {
            let v = std::ptr::read_volatile(&(*s).counter);
            if job % 7 == 0 {
                std::hint::spin_loop();
            }
            std::ptr::write_volatile(&mut (*s).counter, v + 1);
        }
        if sm_critical_leave((*s).pool) != sm_status::SM_OK {
            (*s).misuse.fetch_add(1, Ordering::Relaxed);
        }
    }
    0
}

unsafe extern "C" fn ordered_job(ctx: *mut c_void, job: usize, _: *mut c_void) -> c_int {
    let s = ctx as *mut Sections;
    // Uneven durations, so that jobs reach their ordered section out of order.
    let pause = (job * 7919 % 13) as u64 * 50;
    std::thread::sleep(std::time::Duration::from_micros(pause));
    if job % 3 == 1 {
        return 0; // some jobs never enter: later ones must not wait for them
    }
    // SAFETY: ctx is Sections in shared memory; the log is only touched inside ordered.
    unsafe {
        if sm_ordered_enter((*s).pool) != sm_status::SM_OK {
            (*s).misuse.fetch_add(1, Ordering::Relaxed);
        }
        let n = std::ptr::read_volatile(&(*s).log_len);
        std::ptr::write_volatile(&mut (*s).log[n], job as u64);
        std::ptr::write_volatile(&mut (*s).log_len, n + 1);
        if sm_ordered_leave((*s).pool) != sm_status::SM_OK {
            (*s).misuse.fetch_add(1, Ordering::Relaxed);
        }
    }
    0
}

#[test]
fn critical_excludes_and_ordered_orders() {
    for b in BACKENDS {
        let p = pool(3, b);
        let s = Shared::new(Sections {
            pool: p,
            counter: 0,
            log: [0; 400],
            log_len: 0,
            misuse: AtomicU64::new(0),
        });
        let status = sm_map(p, 1000, Some(critical_job), None, 0, s.ctx());
        assert_eq!(status, sm_status::SM_OK, "{b:?}: {}", last_error());
        assert_eq!(s.get().counter, 100_000, "{b:?}");

        let status = sm_map(p, 400, Some(ordered_job), None, 0, s.ctx());
        assert_eq!(status, sm_status::SM_OK, "{b:?}: {}", last_error());
        let expected: Vec<u64> = (0..400u64).filter(|j| j % 3 != 1).collect();
        assert_eq!(&s.get().log[..s.get().log_len], &expected[..], "{b:?}");
        assert_eq!(s.get().misuse.load(Ordering::Relaxed), 0, "{b:?}");
        sm_pool_free(p);
    }
}

unsafe extern "C" fn misuse_job(ctx: *mut c_void, job: usize, _: *mut c_void) -> c_int {
    let s = ctx as *mut Sections;
    // SAFETY: ctx is Sections in shared memory.
    let s = unsafe { &*s };
    let p = s.pool;
    let mut wrong = 0;
    wrong += (sm_critical_leave(p) != sm_status::SM_ERR_STATE) as u64;
    wrong += (sm_ordered_leave(p) != sm_status::SM_ERR_STATE) as u64;
    wrong += (sm_critical_enter(p) != sm_status::SM_OK) as u64;
    wrong += (sm_critical_enter(p) != sm_status::SM_ERR_STATE) as u64;
    wrong += (sm_ordered_enter(p) != sm_status::SM_ERR_STATE) as u64; // inside critical
    wrong += (sm_critical_leave(p) != sm_status::SM_OK) as u64;
    wrong += (sm_ordered_enter(p) != sm_status::SM_OK) as u64;
    wrong += (sm_ordered_enter(p) != sm_status::SM_ERR_STATE) as u64;
    wrong += (sm_ordered_leave(p) != sm_status::SM_OK) as u64;
    wrong += (sm_ordered_enter(p) != sm_status::SM_ERR_STATE) as u64; // at most one per job
    wrong += (sm_critical_enter(std::ptr::null_mut()) != sm_status::SM_ERR_INVALID) as u64;
    wrong += (!sm_empty(10, 10).is_null()) as u64;
    s.misuse.fetch_add(wrong, Ordering::Relaxed);
    if job == 5 {
        // Returns while holding critical: the map must fail cleanly, not deadlock.
        sm_critical_enter(p);
    }
    0
}

#[test]
fn misuse_is_reported_never_deadlocks() {
    assert_eq!(
        sm_critical_enter(std::ptr::null_mut()),
        sm_status::SM_ERR_INVALID
    );
    for b in BACKENDS {
        let p = pool(2, b);
        assert_eq!(sm_critical_enter(p), sm_status::SM_ERR_STATE);
        assert!(last_error().contains("outside a job"), "{}", last_error());
        assert_eq!(sm_ordered_leave(p), sm_status::SM_ERR_STATE);
        let s = Shared::new(Sections {
            pool: p,
            counter: 0,
            log: [0; 400],
            log_len: 0,
            misuse: AtomicU64::new(0),
        });
        let status = sm_map(p, 50, Some(misuse_job), None, 0, s.ctx());
        assert_eq!(status, sm_status::SM_ERR_STATE, "{b:?}");
        assert!(
            last_error().contains("job 5") && last_error().contains("critical"),
            "{}",
            last_error()
        );
        assert_eq!(s.get().misuse.load(Ordering::Relaxed), 0, "{b:?}");
        // The next map works: the lock was released.
        let status = sm_map(p, 1000, Some(critical_job), None, 0, s.ctx());
        assert_eq!(status, sm_status::SM_OK, "{b:?}: {}", last_error());
        sm_pool_free(p);
    }
}

struct Nested {
    pool: *mut sm_pool,
    outer_pid: [u32; 8],
    inner_sum: [u64; 8],
    worker_ids_ok: AtomicU64,
}

/// The inner map's context, on the outer job's stack.
struct Inner {
    sum: u64,
    pid: u32,
    worker: c_int,
    elsewhere: u64,
}

unsafe extern "C" fn inner_job(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    // SAFETY: ctx is the outer job's Inner; result holds a u64.
    let inner = unsafe { &mut *(ctx as *mut Inner) };
    if std::process::id() != inner.pid || sm_worker_id() != inner.worker {
        inner.elsewhere += 1;
    }
    // SAFETY: result has the 8 bytes asked for.
    unsafe { *(result as *mut u64) = job as u64 + 1 };
    0
}

unsafe extern "C" fn inner_reduce(ctx: *mut c_void, _job: usize, result: *mut c_void) -> c_int {
    // SAFETY: ctx is the outer job's Inner; result holds the job's u64.
    unsafe { (*(ctx as *mut Inner)).sum += *(result as *const u64) };
    0
}

unsafe extern "C" fn outer_job(ctx: *mut c_void, job: usize, _: *mut c_void) -> c_int {
    // SAFETY: ctx is Nested in shared memory; each job writes its own entries.
    let n = unsafe { &mut *(ctx as *mut Nested) };
    let id = sm_worker_id();
    let workers = sm_pool_nworkers(n.pool);
    if (0..workers.max(1)).contains(&id) {
        n.worker_ids_ok.fetch_add(1, Ordering::Relaxed);
    }
    n.outer_pid[job] = std::process::id();
    let mut inner = Inner {
        sum: 0,
        pid: std::process::id(),
        worker: id,
        elsewhere: 0,
    };
    let status = sm_map(
        n.pool,
        10,
        Some(inner_job),
        Some(inner_reduce),
        8,
        (&mut inner as *mut Inner).cast(),
    );
    // The inner jobs ran here, in this worker, and wrote into this worker's own memory.
    if status != sm_status::SM_OK || sm_worker_id() != id || inner.elsewhere != 0 {
        return 1;
    }
    n.inner_sum[job] = inner.sum;
    0
}

#[test]
fn a_map_inside_a_job_runs_serially_in_that_worker() {
    assert_eq!(sm_worker_id(), -1);
    for b in BACKENDS {
        let p = pool(2, b);
        let n = Shared::new(Nested {
            pool: p,
            outer_pid: [0; 8],
            inner_sum: [0; 8],
            worker_ids_ok: AtomicU64::new(0),
        });
        let status = sm_map(p, 8, Some(outer_job), None, 0, n.ctx());
        assert_eq!(status, sm_status::SM_OK, "{b:?}: {}", last_error());
        assert_eq!(n.get().inner_sum, [55; 8], "{b:?}");
        assert_eq!(n.get().worker_ids_ok.load(Ordering::Relaxed), 8, "{b:?}");
        let forked = n
            .get()
            .outer_pid
            .iter()
            .filter(|&&pid| pid != std::process::id())
            .count();
        match b {
            sm_backend::SM_BACKEND_PROCESS => assert_eq!(forked, 8),
            _ => assert_eq!(forked, 0),
        }
        sm_pool_free(p);
    }
    assert_eq!(sm_worker_id(), -1);
}

unsafe extern "C" fn noop(_: *mut c_void, _: usize, _: *mut c_void) -> c_int {
    0
}

#[test]
fn bad_input_is_refused_with_a_message() {
    assert!(sm_pool_new(2, 7).is_null());
    assert!(last_error().contains("backend 7"), "{}", last_error());
    assert!(sm_pool_new(2, -1).is_null());
    assert!(sm_pool_new(1 << 20, 0).is_null());
    assert!(last_error().contains("nworkers"), "{}", last_error());

    let status = sm_map(
        std::ptr::null_mut(),
        10,
        Some(noop),
        None,
        0,
        std::ptr::null_mut(),
    );
    assert_eq!(status, sm_status::SM_ERR_INVALID);
    assert!(last_error().contains("pool is NULL"), "{}", last_error());

    let p = pool(2, sm_backend::SM_BACKEND_PROCESS);
    let status = sm_map(p, 10, None, None, 0, std::ptr::null_mut());
    assert_eq!(status, sm_status::SM_ERR_INVALID);
    assert!(last_error().contains("work is NULL"), "{}", last_error());

    let status = sm_map(
        p,
        10,
        Some(noop),
        Some(noop),
        usize::MAX / 4,
        std::ptr::null_mut(),
    );
    assert_eq!(status, sm_status::SM_ERR_INVALID);
    assert_eq!(sm_last_status(), sm_status::SM_ERR_INVALID);
    assert!(
        last_error().contains("SM_MAX_RESULT_SIZE"),
        "{}",
        last_error()
    );

    assert!(sm_empty(usize::MAX, 16).is_null());
    assert!(last_error().contains("overflows"), "{}", last_error());

    let mut local = 0u64;
    sm_free((&mut local as *mut u64).cast());
    assert!(last_error().contains("not returned by sm_empty"));

    assert_eq!(sm_pool_nworkers(std::ptr::null()), -1);
    assert_eq!(sm_pool_nworkers(p), 2);
    sm_pool_free(p);
    // A freed pool is refused rather than used.
    assert_eq!(sm_pool_nworkers(p), -1);
    assert!(last_error().contains("not a live pool"), "{}", last_error());
    sm_pool_free(p);
    sm_pool_free(std::ptr::null_mut());
    sm_free(std::ptr::null_mut());

    for s in 0..10 {
        // SAFETY: sm_status_str returns a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(sm_status_str(s)) }
            .to_str()
            .unwrap();
        assert!(text.starts_with("SM_"), "{text}");
    }
    // SAFETY: as above.
    let unknown = unsafe { CStr::from_ptr(sm_status_str(99)) };
    assert!(unknown.to_str().unwrap().contains("unknown"));
}

#[test]
fn empty_maps_and_more_workers_than_jobs() {
    for b in BACKENDS {
        let p = pool(4, b);
        assert_eq!(
            sm_map(p, 0, Some(noop), Some(noop), 8, std::ptr::null_mut()),
            sm_status::SM_OK
        );
        let run = Shared::new(Run::new(p, u64::MAX, 0));
        assert_eq!(run_map(&run, 2), sm_status::SM_OK, "{b:?}");
        check_ran(run.get(), 0..2, &format!("{b:?}"));
        sm_pool_free(p);
    }
}
