//! `sm_parallel` and what its region calls: `sm_for_next`, `sm_barrier`, `sm_single`,
//! `sm_master`, `sm_num_workers`.

use super::map::{launch, read_options};
use super::pool::check_pool;
use super::pool::sm_pool;
use super::sections::pool_identity;
use super::{call, call_status};
use crate::abi::sm_status;
use crate::abi::{
    sm_map_opts, sm_region_fn, sm_schedule, sm_schedule_arg, SM_FOR_NOWAIT, SM_FOR_ORDERED,
};
use crate::engine::control::MAX_JOBS;
use crate::engine::control::{JobEnd, Misuse};
use crate::engine::frame::with_current;
use crate::engine::launch::{LaunchOptions, Work};
use crate::engine::region::{self, BarrierError, LoopSpec, Schedule};
use crate::status::{Error, Result, Status};
use std::ffi::{c_int, c_void};

/// Runs a parallel region: every worker of the pool runs `region(ctx)` once, at the same time,
/// and the call returns when all have returned. Inside, `sm_worker_id()` is the worker's rank
/// (0..nworkers-1) and `sm_num_workers()` the team's size; the workers share loops with
/// `sm_for_next`, wait for each other with `sm_barrier`, and use `sm_single`, `sm_master`,
/// `sm_critical_*` and (in ordered loops) `sm_ordered_*`. As with sm_map, process workers see
/// the caller's memory as it was at the call and share only `sm_empty` memory; on the thread
/// backend the calling thread is worker 0. The serial backend, debug mode and a region inside a
/// job or region run it once in the calling thread, as a team of one.
///
/// Returns SM_OK when every worker's region returned 0; SM_STOPPED if one returned SM_STOP;
/// SM_ERR_JOB if one returned another nonzero value; SM_ERR_STATE for misuse (a barrier or loop
/// that not every worker reached, a construct used inside critical, a section left open);
/// SM_ERR_WORKER_DIED if a worker process died; SM_ERR_INTERRUPTED on SIGINT/SIGTERM. The first
/// failure stops the region: process workers are stopped at once; threads at their next
/// `sm_for_next`, `sm_barrier` or ordered section (which then return 0 / SM_STOPPED), so a region
/// should return when they do.
#[no_mangle]
pub extern "C" fn sm_parallel(
    pool: *mut sm_pool,
    region: sm_region_fn,
    ctx: *mut c_void,
) -> sm_status {
    call_status(|| run_region("sm_parallel", pool, region, ctx, LaunchOptions::default()))
}

/// `sm_parallel` with the per-worker options of `sm_map_ex` (`opts` may be NULL: then exactly
/// `sm_parallel`): each worker runs `worker_init(ctx, worker)` before the region and
/// `worker_fini(ctx, worker, wresult)` after it, with its own zeroed per-worker result of
/// `wresult_size` bytes, which the region reaches through `sm_worker_local()`; `worker_reduce`
/// then runs on the caller once per worker, in worker order, after every worker returned, only
/// when the region succeeded or stopped on request (SM_STOP: then process workers are not
/// killed, but, like threads, return at their next construct and run worker_fini, so that every
/// worker's result is combined). So `omp parallel for
/// reduction(+:sx, sy)` becomes a `struct {double sx, sy;}` per-worker result that the region
/// adds into and worker_reduce adds into ctx. `opts->chunk` must be 0 and `opts->progress` NULL
/// (a region has no jobs to count or chunk; loops take their chunk in `sm_for_next`).
/// Returns what `sm_parallel` returns; a failing worker_init/worker_fini gives SM_ERR_JOB naming
/// the worker; SM_STOPPED if worker_reduce returned nonzero; SM_ERR_INVALID for a NULL pool or
/// region, a bad `opts->size` (as in sm_map_ex), a nonzero chunk or a progress callback.
#[no_mangle]
pub extern "C" fn sm_parallel_ex(
    pool: *mut sm_pool,
    region: sm_region_fn,
    ctx: *mut c_void,
    opts: *const sm_map_opts,
) -> sm_status {
    call_status(|| {
        let options = read_options(opts, "sm_parallel_ex")?;
        if options.chunk != 0 {
            return Err(Error::invalid(format!(
                "sm_parallel_ex: opts->chunk is {}; it must be 0 for a region (pass the chunk \
                 of each loop to sm_for_next)",
                options.chunk
            )));
        }
        if options.progress.is_some() {
            return Err(Error::invalid(
                "sm_parallel_ex: opts->progress must be NULL for a region (it has no jobs to \
                 count)",
            ));
        }
        run_region("sm_parallel_ex", pool, region, ctx, options)
    })
}

fn run_region(
    call: &str,
    pool: *mut sm_pool,
    region: sm_region_fn,
    ctx: *mut c_void,
    options: LaunchOptions,
) -> Result<Status> {
    let pool = check_pool(pool, call)?;
    let region = region.ok_or_else(|| Error::invalid(format!("{call}: region is NULL")))?;
    launch(call, pool, Work::Region(region), ctx, options)
}

/// The work-shared loop over [start, end) in a region: every worker calls
/// `while (sm_for_next(pool, start, end, schedule, chunk, flags, &lo, &hi)) for (i = lo; i < hi;
/// i++) ...` with the same arguments, and each iteration runs in exactly one worker. Returns 1 with
/// the next chunk [*lo, *hi) for this worker, 0 when the worker has no more (after waiting for the
/// whole team, unless `flags` has SM_FOR_NOWAIT). `chunk` 0 means the schedule's default: static
/// gives each worker one contiguous block, dynamic and guided hand out 1 iteration at a time (guided:
/// at least `chunk`, shrinking from an even share of what is left). `start >= end` is an empty loop.
/// Every worker must run each loop to its end (until 0), and all the same loops in the same order.
///
/// Also returns 0, with a message in `sm_last_error()`, when the region is being stopped or on
/// misuse (outside a region, inside critical or ordered, other arguments mid-loop, bad schedule or
/// flags, NULL lo/hi); misuse also fails the region (sm_parallel returns SM_ERR_STATE).
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn sm_for_next(
    pool: *mut sm_pool,
    start: usize,
    end: usize,
    schedule: sm_schedule_arg,
    chunk: usize,
    flags: c_int,
    lo: *mut usize,
    hi: *mut usize,
) -> c_int {
    call(0, || {
        let identity = pool_identity(pool, "sm_for_next")?;
        let schedule = match schedule {
            s if s == sm_schedule::SM_SCHEDULE_STATIC as c_int => Schedule::Static,
            s if s == sm_schedule::SM_SCHEDULE_DYNAMIC as c_int => Schedule::Dynamic,
            s if s == sm_schedule::SM_SCHEDULE_GUIDED as c_int => Schedule::Guided,
            other => {
                return Err(bad_loop(format!(
                    "sm_for_next: schedule {other} is not an sm_schedule (SM_SCHEDULE_STATIC, \
                     SM_SCHEDULE_DYNAMIC or SM_SCHEDULE_GUIDED)"
                )))
            }
        };
        if flags & !(SM_FOR_ORDERED | SM_FOR_NOWAIT) != 0 {
            return Err(bad_loop(format!(
                "sm_for_next: flags {flags:#x} has bits other than SM_FOR_ORDERED and SM_FOR_NOWAIT"
            )));
        }
        if lo.is_null() || hi.is_null() {
            return Err(bad_loop("sm_for_next: lo or hi is NULL".to_string()));
        }
        if end.saturating_sub(start) as u64 > MAX_JOBS {
            return Err(bad_loop(format!(
                "sm_for_next: the loop [{start}, {end}) has more than {} iterations (SM_MAX_JOBS)",
                MAX_JOBS
            )));
        }
        let spec = LoopSpec {
            start: start as u64,
            end: end as u64,
            schedule,
            chunk: chunk as u64,
            ordered: flags & SM_FOR_ORDERED != 0,
            nowait: flags & SM_FOR_NOWAIT != 0,
        };
        Ok(match region::for_next(identity, spec)? {
            Some((l, h)) => {
                // SAFETY: both pointers were checked non-NULL; the caller passes addresses of two
                // size_t it owns.
                unsafe {
                    *lo = l as usize;
                    *hi = h as usize;
                }
                1
            }
            None => 0,
        })
    })
}

/// Bad arguments to sm_for_next in a region fail the region: every worker passes the same ones,
/// and a loop silently skipped would give wrong results.
fn bad_loop(message: String) -> Error {
    with_current(|f| {
        if let Some(frame) = f.filter(|f| f.team.is_some()) {
            region::fail(frame, JobEnd::Misuse(Misuse::BadLoopArguments));
        }
    });
    Error::state(message)
}

/// Waits until every worker of the region has called it. Returns SM_OK; SM_STOPPED when the
/// region is being stopped (return from the region); SM_ERR_STATE outside a region, inside
/// critical or ordered, or when a worker returned from the region without reaching this barrier
/// (which also fails the region, instead of waiting forever).
#[no_mangle]
pub extern "C" fn sm_barrier(pool: *mut sm_pool) -> sm_status {
    call_status(|| {
        let identity = pool_identity(pool, "sm_barrier")?;
        match region::barrier(identity)? {
            Ok(()) => Ok(Status::SM_OK),
            Err(BarrierError::Stopped) => Err(Error::new(
                Status::SM_STOPPED,
                "sm_barrier: the region is being stopped (another worker failed, or the call was \
                 interrupted): return from the region",
            )),
            Err(BarrierError::Broken(left)) => Err(Error::state(format!(
                "sm_barrier: worker {left} returned from the region without reaching this barrier"
            ))),
        }
    })
}

/// In a region, 1 for exactly one worker (the first to get there) each time the team reaches a
/// `sm_single` call, 0 for the others: `if (sm_single(pool)) { ... }`. There is no barrier after
/// it: call `sm_barrier` if the others need what the single block computed. -1 (with a message)
/// outside a region.
#[no_mangle]
pub extern "C" fn sm_single(pool: *mut sm_pool) -> c_int {
    call(-1, || {
        let identity = pool_identity(pool, "sm_single")?;
        Ok(c_int::from(region::single(identity)?))
    })
}

/// 1 in worker 0 of a region or map, 0 in the other workers; 1 outside any map (the calling
/// thread is then the only one).
#[no_mangle]
pub extern "C" fn sm_master() -> c_int {
    call(0, || Ok(c_int::from(region::is_master())))
}

/// The number of workers running the current region (its team) or map; 1 outside any map, and in
/// a serial, debug or nested region or map. In a region it is `sm_pool_nworkers(pool)` (1 for a
/// serial pool); in a map, the same, except that a process-backend map forks no more workers than
/// it has jobs.
#[no_mangle]
pub extern "C" fn sm_num_workers() -> c_int {
    call(1, || Ok(region::team_size() as c_int))
}
