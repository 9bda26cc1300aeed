//! `sm_map` and `sm_map_ex`, and the launch that `sm_parallel` shares with them.

use super::call_status;
use super::pool::check_pool;
use super::pool::sm_pool;
use crate::abi::sm_status;
use crate::abi::{sm_map_opts, sm_reduce_fn, sm_work_fn};
use crate::engine;
use crate::engine::inner::check_setting;
use crate::engine::launch::{Launch, LaunchOptions, Work};
use crate::engine::pool::Pool;
use crate::last_error;
use crate::status::{Error, Result};
use std::ffi::c_void;

/// Runs `work(ctx, job, result)` once for every job in [0, njobs) on the pool's workers, handing
/// jobs out dynamically in increasing order. Each job's `result` points to `result_size` zeroed
/// bytes aligned to `SM_RESULT_ALIGN`. `reduce` (may be NULL) runs in the calling thread, once
/// per completed job, in increasing job order, while the workers go on; results wait in a
/// bounded window, whatever njobs is.
///
/// Returns SM_OK; SM_STOPPED if a job returned SM_STOP or reduce returned nonzero; SM_ERR_JOB if a
/// job returned another nonzero value; SM_ERR_WORKER_DIED if a worker process died;
/// SM_ERR_INTERRUPTED on SIGINT/SIGTERM; SM_ERR_STATE for critical/ordered misuse; SM_ERR_INVALID
/// for bad arguments (NULL pool or work, njobs above SM_MAX_JOBS, result_size above
/// SM_MAX_RESULT_SIZE); SM_ERR_NOMEM when the result buffers or workers cannot be had. In every
/// case reduce has run for each job before the first one that failed or stopped, and no worker
/// process is left behind. Called from inside a job, the map runs serially in that worker.
#[no_mangle]
pub extern "C" fn sm_map(
    pool: *mut sm_pool,
    njobs: usize,
    work: sm_work_fn,
    reduce: sm_reduce_fn,
    result_size: usize,
    ctx: *mut c_void,
) -> sm_status {
    call_status(|| {
        run(
            "sm_map",
            pool,
            njobs,
            work,
            reduce,
            result_size,
            ctx,
            LaunchOptions::default(),
        )
    })
}

/// `sm_map` with options (`opts` may be NULL: then exactly `sm_map`): a fixed chunk size, and
/// per-worker state: `worker_init` before a worker's first job, `worker_fini` after its last,
/// filling a per-worker result that `worker_reduce` combines on the caller, once per worker, in
/// worker order, after the jobs (only when the map succeeded or stopped on request; with SM_STOP,
/// a worker's result may include jobs after the stopping one that had already started). Keeping a
/// partial result per worker and combining them once is the fast way to reduce tiny jobs: jobs
/// add into their worker's result through `sm_worker_local()`.
/// Returns what `sm_map` returns; a failing worker_init/worker_fini gives SM_ERR_JOB naming the
/// worker; `opts->size` smaller than its first field, or larger than this library knows with
/// nonzero bytes beyond, or `wresult_size` above SM_MAX_RESULT_SIZE, gives SM_ERR_INVALID.
#[no_mangle]
pub extern "C" fn sm_map_ex(
    pool: *mut sm_pool,
    njobs: usize,
    work: sm_work_fn,
    reduce: sm_reduce_fn,
    result_size: usize,
    ctx: *mut c_void,
    opts: *const sm_map_opts,
) -> sm_status {
    call_status(|| {
        let options = read_options(opts, "sm_map_ex")?;
        run(
            "sm_map_ex",
            pool,
            njobs,
            work,
            reduce,
            result_size,
            ctx,
            options,
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn run(
    call: &str,
    pool: *mut sm_pool,
    njobs: usize,
    work: sm_work_fn,
    reduce: sm_reduce_fn,
    result_size: usize,
    ctx: *mut c_void,
    options: LaunchOptions,
) -> Result<sm_status> {
    let pool = check_pool(pool, call)?;
    let work = work.ok_or_else(|| Error::invalid(format!("{call}: work is NULL")))?;
    let work = Work::Jobs {
        njobs,
        work,
        reduce,
        result_size,
    };
    launch(call, pool, work, ctx, options)
}

/// Launches a map or region on `pool` for the export `call`; a stop's message goes to
/// `sm_last_error()` with its SM_STOPPED.
pub(super) fn launch(
    call: &str,
    pool: &Pool,
    work: Work,
    ctx: *mut c_void,
    options: LaunchOptions,
) -> Result<sm_status> {
    let request = Launch {
        call,
        work,
        ctx,
        options,
    };
    let (status, note) = engine::launch::launch(pool, &request)?;
    if let Some(note) = note {
        last_error::set(status, &note);
    }
    Ok(status)
}

/// Reads the caller's options, as many bytes of them as its `size` says (a caller built against
/// an older, shorter struct gets zero for the fields it does not know). `call` names the export
/// in messages.
pub(super) fn read_options(opts: *const sm_map_opts, call: &str) -> Result<LaunchOptions> {
    if opts.is_null() {
        return Ok(LaunchOptions::default());
    }
    // SAFETY: opts points to at least a size_t: the struct's first field (the caller's contract).
    let size = unsafe { std::ptr::read_unaligned(opts as *const usize) };
    let known = std::mem::size_of::<sm_map_opts>();
    if size < std::mem::size_of::<usize>() {
        return Err(Error::invalid(format!(
            "{call}: opts->size is {size}; set it to sizeof(sm_map_opts) ({known})"
        )));
    }
    let mut copy = [0u8; std::mem::size_of::<sm_map_opts>()];
    let have = size.min(known);
    // SAFETY: the caller's struct has `size` readable bytes; we copy at most that many.
    unsafe { std::ptr::copy_nonoverlapping(opts as *const u8, copy.as_mut_ptr(), have) };
    if size > known {
        // SAFETY: as above: bytes [known, size) of the caller's struct are readable.
        let extra =
            unsafe { std::slice::from_raw_parts((opts as *const u8).add(known), size - known) };
        if extra.iter().any(|&b| b != 0) {
            return Err(Error::invalid(format!(
                "{call}: opts->size is {size}, larger than the {known} bytes this library \
                 knows, and the extra fields are set: the program needs a newer sharedmem"
            )));
        }
    }
    // SAFETY: `copy` holds a zero-padded image of an sm_map_opts; all-zero bytes are valid for
    // every field (sizes, and NULL function pointers as None).
    let opts: sm_map_opts =
        unsafe { std::ptr::read_unaligned(copy.as_ptr() as *const sm_map_opts) };
    check_setting(opts.inner_threads, &format!("{call}: opts->inner_threads"))?;
    Ok(LaunchOptions {
        chunk: opts.chunk as u64,
        worker_init: opts.worker_init,
        worker_fini: opts.worker_fini,
        worker_reduce: opts.worker_reduce,
        wresult_size: opts.wresult_size,
        progress: opts.progress,
        inner_threads: opts.inner_threads,
        ctx_size: opts.ctx_size,
    })
}
