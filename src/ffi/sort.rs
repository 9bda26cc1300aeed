//! `sm_argsort`.

use super::call_status;
use super::pool::check_pool;
use super::pool::sm_pool;
use crate::abi::sm_status;
use crate::abi::{sm_dtype, sm_dtype_arg};
use crate::config;
use crate::sort::{self, Dtype};
use crate::status::{Error, Result, Status};
use std::ffi::{c_int, c_void};

pub(super) fn dtype_from(raw: sm_dtype_arg, call: &str) -> Result<Dtype> {
    use sm_dtype::*;
    const ALL: [(sm_dtype, Dtype); 10] = [
        (SM_DTYPE_F64, Dtype::F64),
        (SM_DTYPE_F32, Dtype::F32),
        (SM_DTYPE_I64, Dtype::I64),
        (SM_DTYPE_I32, Dtype::I32),
        (SM_DTYPE_I16, Dtype::I16),
        (SM_DTYPE_I8, Dtype::I8),
        (SM_DTYPE_U64, Dtype::U64),
        (SM_DTYPE_U32, Dtype::U32),
        (SM_DTYPE_U16, Dtype::U16),
        (SM_DTYPE_U8, Dtype::U8),
    ];
    ALL.iter()
        .find(|(c, _)| *c as c_int == raw)
        .map(|(_, d)| *d)
        .ok_or_else(|| {
            Error::invalid(format!(
                "{call}dtype {raw} is not an sm_dtype (SM_DTYPE_F64 ... SM_DTYPE_U8)"
            ))
        })
}

/// Writes to `out[0..n)` the permutation that sorts `keys`, exactly as numpy's
/// `argsort(keys, kind='stable')`: equal keys keep their input order; for floats
/// -inf < finite < +inf < NaN, every NaN last in input order, and -0.0 equals +0.0.
/// Runs on the pool's worker count as threads, whatever its backend (NULL pool: the default
/// worker count). `keys` and `out` may be ordinary or `sm_empty` memory but must not overlap.
/// Keys already in order, reversed, in order but for local shuffles, or in order but for a
/// minority of outliers take one or two passes instead of a full sort.
/// Extra memory: about 2 n (keysize + 4) bytes (2 n (keysize + 8) above 2^32 elements), much
/// less for keys already (nearly) in order.
/// SM_ERR_INVALID for NULL keys/out with n > 0, a dtype out of range, overlapping arrays or n
/// beyond int64_t; SM_ERR_NOMEM if the work buffers cannot be allocated.
#[no_mangle]
pub extern "C" fn sm_argsort(
    pool: *mut sm_pool,
    keys: *const c_void,
    n: usize,
    dtype: sm_dtype_arg,
    out: *mut i64,
) -> sm_status {
    call_status(|| {
        let dtype = dtype_from(dtype, "sm_argsort: ")?;
        let threads = if pool.is_null() {
            config::default_workers() as usize
        } else {
            check_pool(pool, "sm_argsort")?.nworkers()
        };
        if n == 0 {
            return Ok(Status::SM_OK);
        }
        if keys.is_null() || out.is_null() {
            return Err(Error::invalid(format!(
                "sm_argsort: {} is NULL with n = {n}",
                if keys.is_null() { "keys" } else { "out" }
            )));
        }
        let key_bytes = n
            .checked_mul(dtype.size())
            .ok_or_else(|| Error::invalid(format!("sm_argsort: n = {n} keys overflow size_t")))?;
        let out_bytes = n.checked_mul(8).ok_or_else(|| {
            Error::invalid(format!("sm_argsort: n = {n} indices overflow size_t"))
        })?;
        let (k0, o0) = (keys as usize, out as usize);
        if k0 < o0.saturating_add(out_bytes) && o0 < k0.saturating_add(key_bytes) {
            return Err(Error::invalid(
                "sm_argsort: out overlaps keys; give it an array of its own",
            ));
        }
        // SAFETY: keys has n elements of dtype and out n int64 (the caller's contract, which the
        // header states), and they do not overlap (checked above).
        unsafe { sort::argsort(keys.cast(), n, dtype, out, threads) }?;
        Ok(Status::SM_OK)
    })
}
