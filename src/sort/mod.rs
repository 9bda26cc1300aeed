//! `sm_argsort`: numpy's stable argsort, in parallel, by radix (see radix.rs for the algorithm and
//! keys.rs for how each dtype becomes an unsigned key).

mod buffer;
mod keys;
mod radix;

use crate::status::{Error, Result};
use keys::{Raw, Source};

/// The element types `sm_argsort` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I8 | Dtype::U8 => 1,
        }
    }
}

/// Writes to `out[0..n)` the stable sorting permutation of the `n` keys at `keys`, on `threads`
/// threads.
///
/// # Safety
/// `keys` must point to `n` readable elements of `dtype` (any alignment), `out` to `n` writable
/// i64, and the two must not overlap.
pub unsafe fn argsort(
    keys: *const u8,
    n: usize,
    dtype: Dtype,
    out: *mut i64,
    threads: usize,
) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    if n as u64 > i64::MAX as u64 {
        return Err(Error::invalid(format!(
            "sm_argsort: n = {n} does not fit the int64_t indices of out"
        )));
    }
    // SAFETY: out has n writable elements and does not overlap keys (the caller's contract).
    let out = unsafe { std::slice::from_raw_parts_mut(out, n) };
    let (k, o, t) = (keys, out, threads);
    match dtype {
        Dtype::F64 => run(&raw::<f64>(k), n, o, t),
        Dtype::F32 => run(&raw::<f32>(k), n, o, t),
        Dtype::I64 => run(&raw::<i64>(k), n, o, t),
        Dtype::I32 => run(&raw::<i32>(k), n, o, t),
        Dtype::I16 => run(&raw::<i16>(k), n, o, t),
        Dtype::I8 => run(&raw::<i8>(k), n, o, t),
        Dtype::U64 => run(&raw::<u64>(k), n, o, t),
        Dtype::U32 => run(&raw::<u32>(k), n, o, t),
        Dtype::U16 => run(&raw::<u16>(k), n, o, t),
        Dtype::U8 => run(&raw::<u8>(k), n, o, t),
    }
}

fn raw<T>(keys: *const u8) -> Raw<T> {
    Raw { ptr: keys.cast() }
}

fn run<S: Source>(src: &S, n: usize, out: &mut [i64], threads: usize) -> Result<()> {
    if n <= u32::MAX as usize {
        radix::argsort::<S, u32>(src, n, out, threads)
    } else {
        radix::argsort::<S, u64>(src, n, out, threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obviously correct reference: a stable comparison sort with numpy's float order.
    fn reference_f64(v: &[f64]) -> Vec<i64> {
        let mut idx: Vec<i64> = (0..v.len() as i64).collect();
        idx.sort_by(|&a, &b| {
            let (x, y) = (v[a as usize], v[b as usize]);
            match (x.is_nan(), y.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => x.partial_cmp(&y).unwrap(),
            }
        });
        idx
    }

    fn sort_f64(v: &[f64], threads: usize) -> Vec<i64> {
        let mut out = vec![-1i64; v.len()];
        // SAFETY: v and out have v.len() elements and do not overlap.
        unsafe {
            argsort(
                v.as_ptr().cast(),
                v.len(),
                Dtype::F64,
                out.as_mut_ptr(),
                threads,
            )
        }
        .unwrap();
        out
    }

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 11
    }

    #[test]
    fn matches_reference_on_mixed_floats() {
        let mut seed = 7;
        for &n in &[0usize, 1, 2, 3, 31, 32, 33, 100, 1000, 40_000, 100_000] {
            let v: Vec<f64> = (0..n)
                .map(|_| match lcg(&mut seed) % 10 {
                    0 => f64::NAN,
                    1 => -0.0,
                    2 => 0.0,
                    3 => f64::INFINITY,
                    4 => f64::NEG_INFINITY,
                    5 => (lcg(&mut seed) % 5) as f64,
                    _ => (lcg(&mut seed) as f64 / 1e6) - 4e6,
                })
                .collect();
            for threads in [1, 2, 3, 8] {
                assert_eq!(
                    sort_f64(&v, threads),
                    reference_f64(&v),
                    "n {n} threads {threads}"
                );
            }
        }
    }

    #[test]
    fn uniform_and_skewed_large() {
        let mut seed = 3;
        let n = 300_000;
        let uniform: Vec<f64> = (0..n)
            .map(|_| lcg(&mut seed) as f64 / (1u64 << 53) as f64)
            .collect();
        assert_eq!(sort_f64(&uniform, 2), reference_f64(&uniform));
        let skewed: Vec<f64> = uniform.iter().map(|x| (x * 20.0).exp().floor()).collect();
        assert_eq!(sort_f64(&skewed, 3), reference_f64(&skewed));
    }
}
