//! `sm_map_ex`: per-worker init / fini / reduce, a fixed chunk size, and the options struct's
//! size checks, on all three backends.

use sharedmem::*;
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};

const BACKENDS: [sm_backend; 3] = [
    sm_backend::SM_BACKEND_PROCESS,
    sm_backend::SM_BACKEND_THREAD,
    sm_backend::SM_BACKEND_SERIAL,
];
const WORKERS: usize = 3;
const N: usize = 20_000;

fn last_error() -> String {
    // SAFETY: sm_last_error never returns NULL.
    unsafe { CStr::from_ptr(sm_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Lives in sm_empty memory: what workers write here reaches the caller on every backend.
struct Shared {
    /// Worker-local partial sums: each worker only touches its own entry (in a forked worker,
    /// its own copy of the caller's memory would do as well; threads need the index).
    partial: [AtomicU64; 8],
    init_calls: [AtomicU64; 8],
    fini_calls: [AtomicU64; 8],
    /// Which worker ran each job (worker + 1; 0 = never ran): N entries of sm_empty memory.
    worker_of_job: *mut AtomicU64,
    reduced_total: u64,
    reduce_order: Vec<u64>,
    fail_init_in: i32,
    fail_fini_in: i32,
    stop_reduce_at: i32,
}

struct Ctx {
    shared: *mut Shared,
}

fn shared(ctx: *mut c_void) -> &'static mut Shared {
    // SAFETY: ctx is a Ctx whose `shared` points to sm_empty memory alive for the whole test.
    unsafe { &mut *(*(ctx as *mut Ctx)).shared }
}

unsafe extern "C" fn work(ctx: *mut c_void, job: usize, _: *mut c_void) -> c_int {
    let s = shared(ctx);
    let w = sm_worker_id() as usize;
    s.partial[w].fetch_add(job as u64, Ordering::Relaxed);
    // SAFETY: job < N entries.
    unsafe { &*s.worker_of_job.add(job) }.store(w as u64 + 1, Ordering::Relaxed);
    0
}

unsafe extern "C" fn init(ctx: *mut c_void, worker: c_int) -> c_int {
    let s = shared(ctx);
    s.init_calls[worker as usize].fetch_add(1, Ordering::Relaxed);
    if worker == s.fail_init_in {
        return 5;
    }
    (sm_worker_id() != worker) as c_int
}

unsafe extern "C" fn fini(ctx: *mut c_void, worker: c_int, wresult: *mut c_void) -> c_int {
    let s = shared(ctx);
    s.fini_calls[worker as usize].fetch_add(1, Ordering::Relaxed);
    // SAFETY: wresult has the 8 bytes asked for.
    unsafe { *(wresult as *mut u64) = s.partial[worker as usize].load(Ordering::Relaxed) };
    if worker == s.fail_fini_in {
        return 6;
    }
    0
}

unsafe extern "C" fn worker_reduce(ctx: *mut c_void, worker: c_int, wresult: *mut c_void) -> c_int {
    let s = shared(ctx);
    // SAFETY: wresult holds the worker's u64.
    s.reduced_total += unsafe { *(wresult as *const u64) };
    s.reduce_order.push(worker as u64);
    (worker == s.stop_reduce_at) as c_int
}

fn options(chunk: usize) -> sm_map_opts {
    sm_map_opts {
        size: std::mem::size_of::<sm_map_opts>(),
        chunk,
        worker_init: Some(init),
        worker_fini: Some(fini),
        worker_reduce: Some(worker_reduce),
        wresult_size: 8,
        progress: None,
        inner_threads: 0,
        ctx_size: 0,
    }
}

fn with_shared<R>(f: impl FnOnce(&mut Ctx) -> R) -> R {
    let p = sm_empty(1, std::mem::size_of::<Shared>()) as *mut Shared;
    assert!(!p.is_null());
    // SAFETY: fresh memory large enough for Shared.
    unsafe {
        p.write(Shared {
            partial: Default::default(),
            init_calls: Default::default(),
            fini_calls: Default::default(),
            worker_of_job: sm_empty(N, 8) as *mut AtomicU64,
            reduced_total: 0,
            reduce_order: Vec::new(),
            fail_init_in: -1,
            fail_fini_in: -1,
            stop_reduce_at: -1,
        })
    };
    let mut ctx = Ctx { shared: p };
    let r = f(&mut ctx);
    // SAFETY: p was written above and is dropped once.
    unsafe {
        sm_free((*p).worker_of_job.cast());
        std::ptr::drop_in_place(p);
    }
    sm_free(p.cast());
    r
}

fn map_ex(pool: *mut sm_pool, ctx: &mut Ctx, opts: &sm_map_opts) -> sm_status {
    sm_map_ex(pool, N, Some(work), None, 0, (ctx as *mut Ctx).cast(), opts)
}

#[test]
fn per_worker_results_are_combined_once_per_worker_in_order() {
    for b in BACKENDS {
        let pool = sm_pool_new(WORKERS as c_int, b as c_int);
        with_shared(|ctx| {
            let status = map_ex(pool, ctx, &options(0));
            assert_eq!(status, sm_status::SM_OK, "{b:?}: {}", last_error());
            let s = shared((ctx as *mut Ctx).cast());
            assert_eq!(s.reduced_total, (N as u64 - 1) * N as u64 / 2, "{b:?}");
            let workers = if b == sm_backend::SM_BACKEND_SERIAL {
                1
            } else {
                WORKERS
            };
            assert_eq!(
                s.reduce_order,
                (0..workers as u64).collect::<Vec<_>>(),
                "{b:?}"
            );
            for w in 0..workers {
                assert_eq!(s.init_calls[w].load(Ordering::Relaxed), 1, "{b:?} w{w}");
                assert_eq!(s.fini_calls[w].load(Ordering::Relaxed), 1, "{b:?} w{w}");
            }
        });
        sm_pool_free(pool);
    }
}

#[test]
fn a_fixed_chunk_keeps_each_chunk_on_one_worker() {
    for b in BACKENDS {
        let pool = sm_pool_new(WORKERS as c_int, b as c_int);
        with_shared(|ctx| {
            assert_eq!(map_ex(pool, ctx, &options(7)), sm_status::SM_OK, "{b:?}");
            let s = shared((ctx as *mut Ctx).cast());
            // SAFETY: N entries of sm_empty memory, written by the workers.
            let ran_by = |j: usize| unsafe { &*s.worker_of_job.add(j) }.load(Ordering::Relaxed);
            for j in 0..N {
                assert_ne!(ran_by(j), 0, "{b:?} job {j} did not run");
                assert_eq!(ran_by(j), ran_by(j - j % 7), "{b:?} job {j}");
            }
            assert_eq!(s.reduced_total, (N as u64 - 1) * N as u64 / 2, "{b:?}");
        });
        sm_pool_free(pool);
    }
}

unsafe extern "C" fn sum_reduce(ctx: *mut c_void, _: usize, _: *mut c_void) -> c_int {
    let _ = ctx;
    0
}

#[test]
fn failing_hooks_are_reported_and_nothing_hangs() {
    for b in BACKENDS {
        let pool = sm_pool_new(WORKERS as c_int, b as c_int);
        for with_reduce in [false, true] {
            with_shared(|ctx| {
                shared((ctx as *mut Ctx).cast()).fail_init_in = 0;
                let reduce =
                    with_reduce.then_some(sum_reduce as unsafe extern "C" fn(_, _, _) -> _);
                let status = sm_map_ex(
                    pool,
                    N,
                    Some(work),
                    reduce,
                    8,
                    (ctx as *mut Ctx).cast(),
                    &options(0),
                );
                assert_eq!(status, sm_status::SM_ERR_JOB, "{b:?}");
                assert!(
                    last_error().contains("worker_init returned 5 in worker 0"),
                    "{}",
                    last_error()
                );
                assert_eq!(
                    shared((ctx as *mut Ctx).cast()).reduce_order,
                    Vec::<u64>::new()
                );
            });
        }
        with_shared(|ctx| {
            shared((ctx as *mut Ctx).cast()).fail_fini_in = 0;
            assert_eq!(
                map_ex(pool, ctx, &options(0)),
                sm_status::SM_ERR_JOB,
                "{b:?}"
            );
            assert!(
                last_error().contains("worker_fini returned 6 in worker 0"),
                "{}",
                last_error()
            );
        });
        with_shared(|ctx| {
            shared((ctx as *mut Ctx).cast()).stop_reduce_at = 0;
            assert_eq!(
                map_ex(pool, ctx, &options(0)),
                sm_status::SM_STOPPED,
                "{b:?}"
            );
            assert_eq!(shared((ctx as *mut Ctx).cast()).reduce_order, vec![0]);
        });
        sm_pool_free(pool);
    }
}

#[test]
fn the_options_size_is_checked() {
    let pool = sm_pool_new(2, sm_backend::SM_BACKEND_THREAD as c_int);
    with_shared(|ctx| {
        // NULL options: exactly sm_map.
        let status = sm_map_ex(
            pool,
            N,
            Some(work),
            None,
            0,
            (ctx as *mut Ctx).cast(),
            std::ptr::null(),
        );
        assert_eq!(status, sm_status::SM_OK);
        let mut opts = options(0);
        opts.size = 0;
        assert_eq!(map_ex(pool, ctx, &opts), sm_status::SM_ERR_INVALID);
        assert!(last_error().contains("opts->size"), "{}", last_error());
        // An older caller's shorter struct: the fields it does not have count as zero.
        opts.size = std::mem::offset_of!(sm_map_opts, worker_init);
        assert_eq!(
            map_ex(pool, ctx, &opts),
            sm_status::SM_OK,
            "{}",
            last_error()
        );
        // A newer caller's longer struct: fine while the fields we do not know are zero.
        #[repr(C)]
        struct Newer {
            known: sm_map_opts,
            future: usize,
        }
        let mut newer = Newer {
            known: options(0),
            future: 0,
        };
        newer.known.size = std::mem::size_of::<Newer>();
        let as_opts = &newer as *const Newer as *const sm_map_opts;
        let status = sm_map_ex(
            pool,
            N,
            Some(work),
            None,
            0,
            (ctx as *mut Ctx).cast(),
            as_opts,
        );
        assert_eq!(status, sm_status::SM_OK, "{}", last_error());
        newer.future = 1;
        let as_opts = &newer as *const Newer as *const sm_map_opts;
        let status = sm_map_ex(
            pool,
            N,
            Some(work),
            None,
            0,
            (ctx as *mut Ctx).cast(),
            as_opts,
        );
        assert_eq!(status, sm_status::SM_ERR_INVALID);
        assert!(last_error().contains("newer sharedmem"), "{}", last_error());
    });
    sm_pool_free(pool);
}

/// The pool of the running test map, for the hook below (sections take the pool).
static LEAKY_POOL: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn init_leaving_critical(_: *mut c_void, _: c_int) -> c_int {
    let pool = LEAKY_POOL.load(Ordering::Relaxed) as usize as *mut sm_pool;
    (sm_critical_enter(pool) != sm_status::SM_OK) as c_int
}

#[test]
fn a_hook_that_leaves_a_section_open_fails_the_map() {
    for b in BACKENDS {
        let pool = sm_pool_new(WORKERS as c_int, b as c_int);
        LEAKY_POOL.store(pool as usize as u64, Ordering::Relaxed);
        with_shared(|ctx| {
            let mut opts = options(0);
            opts.worker_init = Some(init_leaving_critical);
            let status = map_ex(pool, ctx, &opts);
            assert_eq!(status, sm_status::SM_ERR_JOB, "{b:?}");
            assert!(
                last_error().contains("worker_init returned in worker")
                    && last_error().contains("critical"),
                "{}",
                last_error()
            );
            // The lock was released: the next map on the pool runs.
            assert_eq!(map_ex(pool, ctx, &options(0)), sm_status::SM_OK, "{b:?}");
        });
        sm_pool_free(pool);
    }
}
