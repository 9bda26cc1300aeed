//! Every message of a launching export starts with the function called (issue 12): `sm_map`,
//! `sm_map_ex`, `sm_parallel` and `sm_parallel_ex` share one launch, and a message must still say
//! which of them the program called. Checked for failures, stops and refused sizes on every
//! backend.

use sharedmem::*;
use std::ffi::{c_int, c_void, CStr};

const BACKENDS: [sm_backend; 3] = [
    sm_backend::SM_BACKEND_PROCESS,
    sm_backend::SM_BACKEND_THREAD,
    sm_backend::SM_BACKEND_SERIAL,
];

fn last_error() -> String {
    // SAFETY: sm_last_error never returns NULL.
    unsafe { CStr::from_ptr(sm_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// `*ctx` is what job 3 (or every region) returns; the others return 0.
unsafe extern "C" fn job(ctx: *mut c_void, job: usize, _: *mut c_void) -> c_int {
    // SAFETY: ctx points to the test's c_int.
    let code = unsafe { *(ctx as *const c_int) };
    if job == 3 {
        code
    } else {
        0
    }
}

unsafe extern "C" fn region(ctx: *mut c_void) -> c_int {
    // SAFETY: as above.
    unsafe { *(ctx as *const c_int) }
}

fn options() -> sm_map_opts {
    // SAFETY: all-zero bytes are a valid sm_map_opts (sizes and NULL callbacks).
    let mut o: sm_map_opts = unsafe { std::mem::zeroed() };
    o.size = std::mem::size_of::<sm_map_opts>();
    o
}

/// Runs the export `call` with job 3 (or the region) returning `code` and the given result sizes.
fn launch(
    pool: *mut sm_pool,
    call: &str,
    code: c_int,
    result_size: usize,
    wresult_size: usize,
) -> sm_status {
    let mut code = code;
    let ctx = &mut code as *mut c_int as *mut c_void;
    let mut o = options();
    o.wresult_size = wresult_size;
    match call {
        "sm_map" => sm_map(pool, 10, Some(job), None, result_size, ctx),
        "sm_map_ex" => sm_map_ex(pool, 10, Some(job), None, result_size, ctx, &o),
        "sm_parallel" => sm_parallel(pool, Some(region), ctx),
        "sm_parallel_ex" => sm_parallel_ex(pool, Some(region), ctx, &o),
        _ => unreachable!(),
    }
}

#[test]
fn every_launch_message_starts_with_the_function_called() {
    let too_big = SM_MAX_RESULT_SIZE as usize + 1;
    for backend in BACKENDS {
        let pool = sm_pool_new(2, backend as c_int);
        assert!(!pool.is_null(), "{}", last_error());
        for call in ["sm_map", "sm_map_ex", "sm_parallel", "sm_parallel_ex"] {
            let is_map = call.starts_with("sm_map");
            let cases: &[(&str, c_int, usize, usize, sm_status)] = &[
                ("a job returning 7", 7, 0, 0, sm_status::SM_ERR_JOB),
                (
                    "a job returning SM_STOP",
                    SM_STOP,
                    0,
                    0,
                    sm_status::SM_STOPPED,
                ),
                (
                    "result_size too large",
                    0,
                    too_big,
                    0,
                    sm_status::SM_ERR_INVALID,
                ),
                (
                    "wresult_size too large",
                    0,
                    0,
                    too_big,
                    sm_status::SM_ERR_INVALID,
                ),
            ];
            for &(what, code, result_size, wresult_size, expected) in cases {
                if (result_size > 0 && !is_map) || (wresult_size > 0 && !call.ends_with("_ex")) {
                    continue; // the export has no such size
                }
                let st = launch(pool, call, code, result_size, wresult_size);
                let message = last_error();
                assert_eq!(st, expected, "{backend:?} {call}, {what}: {message}");
                let named = message.starts_with(&format!("{call}: "))
                    || message.starts_with(&format!("{call} stopped: "));
                assert!(
                    named,
                    "{backend:?} {call}, {what}: \"{message}\" does not start with {call}"
                );
            }
        }
        sm_pool_free(pool);
    }
}
