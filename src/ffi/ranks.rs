//! `sm_transport_map`: the entry libsharedmem_mpi calls for `sm_mpi_map` and `sm_mpi_map_ex`
//! (mpi/sharedmem_mpi.c). Not in sharedmem.h: programs call `sm_mpi_map` from sharedmem_mpi.h.

use super::call_status;
use super::map::read_options;
use super::pool::{check_pool, sm_pool};
use super::sort::dtype_from;
use crate::abi::{sm_map_opts, sm_reduce_fn, sm_status, sm_work_fn};
use crate::config;
use crate::ranks::sort::{RankArgsort, RankPermute};
use crate::ranks::{self, transport::sm_transport, RankMap};
use crate::status::{Error, Result};
use std::ffi::{c_char, c_int, c_void, CStr};

/// Runs one map across the ranks of `transport`; collective. `call` names the export in messages.
/// mpi/sharedmem_transport.h declares it for libsharedmem_mpi, with the contract.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn sm_transport_map(
    transport: *const sm_transport,
    call: *const c_char,
    pool: *mut sm_pool,
    root: c_int,
    njobs: usize,
    work: sm_work_fn,
    reduce: sm_reduce_fn,
    result_size: usize,
    ctx: *mut c_void,
    opts: *const sm_map_opts,
) -> sm_status {
    call_status(|| {
        let call = call_name(call, "sm_mpi_map");
        let t = transport_of(transport, &call)?;
        let pool = if pool.is_null() {
            None
        } else {
            Some(check_pool(pool, &call)?)
        };
        let options = read_options(opts, &call)?;
        ranks::map(
            t,
            &RankMap {
                call: &call,
                pool,
                root,
                njobs: njobs as u64,
                work,
                reduce,
                result_size,
                ctx,
                has_opts: !opts.is_null(),
                options,
            },
        )
    })
}

/// The name of the export, as libsharedmem_mpi passes it (`fallback` when NULL).
fn call_name(call: *const c_char, fallback: &str) -> String {
    if call.is_null() {
        fallback.to_string()
    } else {
        // SAFETY: libsharedmem_mpi passes a NUL-terminated literal.
        unsafe { CStr::from_ptr(call) }
            .to_string_lossy()
            .into_owned()
    }
}

/// The transport, checked: not NULL, and of this library's layout.
fn transport_of<'a>(transport: *const sm_transport, call: &str) -> Result<&'a sm_transport> {
    if transport.is_null() {
        return Err(Error::invalid(format!("{call}: transport is NULL")));
    }
    // SAFETY: a non-NULL transport points to the caller's live struct; its size is checked
    // before any field beyond it is read.
    let t = unsafe { &*transport };
    if t.size != std::mem::size_of::<sm_transport>() {
        return Err(Error::invalid(format!(
            "{call}: libsharedmem_mpi and libsharedmem do not match (transport of {} bytes, \
             expected {}): install them from the same sharedmem version",
            t.size,
            std::mem::size_of::<sm_transport>()
        )));
    }
    Ok(t)
}

/// The thread count of a sort on `pool` (NULL: the default worker count), or why the pool
/// cannot be used.
fn sort_threads(pool: *mut sm_pool, call: &str) -> Result<usize> {
    if pool.is_null() {
        Ok(config::default_workers() as usize)
    } else {
        check_pool(pool, call).map(|p| p.nworkers())
    }
}

/// `sm_mpi_argsort` over `transport` (collective); mpi/sharedmem_transport.h declares it for
/// libsharedmem_mpi, and include/sharedmem_mpi.h documents the contract.
#[no_mangle]
pub extern "C" fn sm_transport_argsort(
    transport: *const sm_transport,
    call: *const c_char,
    pool: *mut sm_pool,
    keys: *const c_void,
    nlocal: usize,
    dtype: c_int,
    out: *mut i64,
) -> sm_status {
    call_status(|| {
        let call = call_name(call, "sm_mpi_argsort");
        let t = transport_of(transport, &call)?;
        ranks::sort::argsort(
            t,
            &RankArgsort {
                call: &call,
                threads: sort_threads(pool, &call),
                keys: keys.cast(),
                n: nlocal,
                dtype_raw: dtype,
                dtype: dtype_from(dtype, ""),
                out,
            },
        )
    })
}

/// `sm_mpi_permute` over `transport` (collective); as `sm_transport_argsort`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn sm_transport_permute(
    transport: *const sm_transport,
    call: *const c_char,
    pool: *mut sm_pool,
    src: *const c_void,
    nlocal: usize,
    itemsize: usize,
    index: *const i64,
    nout: usize,
    dst: *mut c_void,
) -> sm_status {
    call_status(|| {
        let call = call_name(call, "sm_mpi_permute");
        let t = transport_of(transport, &call)?;
        ranks::sort::permute(
            t,
            &RankPermute {
                call: &call,
                threads: sort_threads(pool, &call),
                src: src.cast(),
                n: nlocal,
                itemsize,
                index,
                nout,
                dst: dst.cast(),
            },
        )
    })
}
