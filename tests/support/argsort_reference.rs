//! The reference `sm_argsort` is checked against, shared by tests/argsort_props.rs and the fuzz
//! target fuzz/fuzz_targets/argsort.rs (a crate of its own, which includes this file with
//! `#[path]`): the ten dtypes, and numpy's order (NaN greater than everything and equal to every
//! NaN, -0.0 == +0.0) as a comparison of two keys and as numpy.argsort(kind='stable'), an obviously
//! correct stable `sort_by` on the indices. Keys are bit patterns in the low bits of a `u64`.
//! Written against the public C API only, like the tests, never against the library's own sort.

// Each includer uses part of this file (the fuzz target no dtype properties, the property test no
// `compare`).
#![allow(dead_code)]

use sharedmem::sm_dtype;
use std::cmp::Ordering;
use std::ffi::c_int;

/// The dtypes, in the order of `sm_dtype` (DTS[i].c() == i).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dt {
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

pub const DTS: [Dt; 10] = [
    Dt::F64,
    Dt::F32,
    Dt::I64,
    Dt::I32,
    Dt::I16,
    Dt::I8,
    Dt::U64,
    Dt::U32,
    Dt::U16,
    Dt::U8,
];

impl Dt {
    /// Bytes per key.
    pub fn size(self) -> usize {
        match self {
            Dt::F64 | Dt::I64 | Dt::U64 => 8,
            Dt::F32 | Dt::I32 | Dt::U32 => 4,
            Dt::I16 | Dt::U16 => 2,
            Dt::I8 | Dt::U8 => 1,
        }
    }
    pub fn bits(self) -> u32 {
        8 * self.size() as u32
    }
    /// The bits a key of this type uses (the low `bits()` bits).
    pub fn mask(self) -> u64 {
        if self.bits() == 64 {
            u64::MAX
        } else {
            (1u64 << self.bits()) - 1
        }
    }
    pub fn is_float(self) -> bool {
        matches!(self, Dt::F64 | Dt::F32)
    }
    pub fn is_signed(self) -> bool {
        matches!(self, Dt::I64 | Dt::I32 | Dt::I16 | Dt::I8)
    }
    /// The `sm_dtype` argument of `sm_argsort`.
    pub fn c(self) -> c_int {
        (match self {
            Dt::F64 => sm_dtype::SM_DTYPE_F64,
            Dt::F32 => sm_dtype::SM_DTYPE_F32,
            Dt::I64 => sm_dtype::SM_DTYPE_I64,
            Dt::I32 => sm_dtype::SM_DTYPE_I32,
            Dt::I16 => sm_dtype::SM_DTYPE_I16,
            Dt::I8 => sm_dtype::SM_DTYPE_I8,
            Dt::U64 => sm_dtype::SM_DTYPE_U64,
            Dt::U32 => sm_dtype::SM_DTYPE_U32,
            Dt::U16 => sm_dtype::SM_DTYPE_U16,
            Dt::U8 => sm_dtype::SM_DTYPE_U8,
        }) as c_int
    }
}

pub fn nan_order<T: PartialOrd + Copy>(x: T, y: T, xnan: bool, ynan: bool) -> Ordering {
    match (xnan, ynan) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => x.partial_cmp(&y).expect("not NaN"), // -0.0 == +0.0
    }
}

/// numpy's order of two keys given as bit patterns (low bits of each u64).
pub fn compare(dt: Dt, x: u64, y: u64) -> Ordering {
    match dt {
        Dt::F64 => {
            let (a, b) = (f64::from_bits(x), f64::from_bits(y));
            nan_order(a, b, a.is_nan(), b.is_nan())
        }
        Dt::F32 => {
            let (a, b) = (f32::from_bits(x as u32), f32::from_bits(y as u32));
            nan_order(a, b, a.is_nan(), b.is_nan())
        }
        Dt::I64 => (x as i64).cmp(&(y as i64)),
        Dt::I32 => (x as u32 as i32).cmp(&(y as u32 as i32)),
        Dt::I16 => (x as u16 as i16).cmp(&(y as u16 as i16)),
        Dt::I8 => (x as u8 as i8).cmp(&(y as u8 as i8)),
        Dt::U64 => x.cmp(&y),
        Dt::U32 => (x as u32).cmp(&(y as u32)),
        Dt::U16 => (x as u16).cmp(&(y as u16)),
        Dt::U8 => (x as u8).cmp(&(y as u8)),
    }
}

/// numpy.argsort(kind='stable') of keys given as bit patterns (low bits of each u64): a stable
/// sort of the indices by numpy's order (the keys converted once, then compared as their type).
pub fn reference(dt: Dt, bits: &[u64]) -> Vec<i64> {
    let mut idx: Vec<i64> = (0..bits.len() as i64).collect();
    macro_rules! by {
        ($conv:expr, $cmp:expr) => {{
            let keys: Vec<_> = bits.iter().map(|&b| $conv(b)).collect();
            idx.sort_by(|&a, &b| $cmp(keys[a as usize], keys[b as usize]));
        }};
    }
    match dt {
        Dt::F64 => by!(f64::from_bits, |x: f64, y: f64| nan_order(
            x,
            y,
            x.is_nan(),
            y.is_nan()
        )),
        Dt::F32 => by!(|b: u64| f32::from_bits(b as u32), |x: f32, y: f32| {
            nan_order(x, y, x.is_nan(), y.is_nan())
        }),
        Dt::I64 => by!(|b: u64| b as i64, |x: i64, y: i64| x.cmp(&y)),
        Dt::I32 => by!(|b: u64| b as u32 as i32, |x: i32, y: i32| x.cmp(&y)),
        Dt::I16 => by!(|b: u64| b as u16 as i16, |x: i16, y: i16| x.cmp(&y)),
        Dt::I8 => by!(|b: u64| b as u8 as i8, |x: i8, y: i8| x.cmp(&y)),
        Dt::U64 => by!(|b: u64| b, |x: u64, y: u64| x.cmp(&y)),
        Dt::U32 => by!(|b: u64| b as u32, |x: u32, y: u32| x.cmp(&y)),
        Dt::U16 => by!(|b: u64| b as u16, |x: u16, y: u16| x.cmp(&y)),
        Dt::U8 => by!(|b: u64| b as u8, |x: u8, y: u8| x.cmp(&y)),
    }
    idx
}
