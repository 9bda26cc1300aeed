//! Order-preserving transforms of every dtype into unsigned integers, so that one radix sort on
//! unsigned keys gives numpy's order for all of them.
//!
//! - unsigned: as is;
//! - signed: the sign bit flipped (negative below positive);
//! - floats: -0.0 becomes +0.0 (numpy treats them as equal, so their input order is kept); negative
//!   numbers have every bit flipped, others the sign bit set, which orders -inf < finite < +inf;
//!   every NaN becomes the largest key, after +inf, and keeps its input order (stable).

/// An unsigned key the radix sort works on: stored at its own width, compared through u64.
pub trait Key: super::buffer::Zeroable + Ord + Default + Send + Sync + 'static {
    /// The key zero-extended to 64 bits (digits are extracted from this).
    fn wide(self) -> u64;
}

macro_rules! impl_key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            #[inline(always)]
            fn wide(self) -> u64 {
                self as u64
            }
        }
    )*};
}
impl_key!(u8, u16, u32, u64);

/// Reads element `i` of the caller's keys and transforms it.
pub trait Source: Send + Sync {
    type K: Key;
    /// # Safety
    /// `i` must be below the number of keys the source was made for.
    unsafe fn key(&self, i: usize) -> Self::K;
}

/// The caller's key array, read without assuming alignment (C callers may pass any address).
#[derive(Clone, Copy)]
pub struct Raw<T> {
    pub ptr: *const T,
}
// SAFETY: only read, and the caller guarantees the array outlives the sort.
unsafe impl<T> Send for Raw<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Raw<T> {}

macro_rules! unsigned_source {
    ($t:ty) => {
        impl Source for Raw<$t> {
            type K = $t;
            #[inline(always)]
            unsafe fn key(&self, i: usize) -> $t {
                // SAFETY: i is in bounds by the caller's contract.
                unsafe { self.ptr.add(i).read_unaligned() }
            }
        }
    };
}
unsigned_source!(u8);
unsigned_source!(u16);
unsigned_source!(u32);
unsigned_source!(u64);

macro_rules! signed_source {
    ($t:ty, $u:ty) => {
        impl Source for Raw<$t> {
            type K = $u;
            #[inline(always)]
            unsafe fn key(&self, i: usize) -> $u {
                // SAFETY: i is in bounds by the caller's contract.
                let v = unsafe { self.ptr.add(i).read_unaligned() };
                (v as $u) ^ (1 << (<$u>::BITS - 1))
            }
        }
    };
}
signed_source!(i8, u8);
signed_source!(i16, u16);
signed_source!(i32, u32);
signed_source!(i64, u64);

macro_rules! float_source {
    ($t:ty, $u:ty) => {
        impl Source for Raw<$t> {
            type K = $u;
            #[inline(always)]
            unsafe fn key(&self, i: usize) -> $u {
                // SAFETY: i is in bounds by the caller's contract.
                let v = unsafe { self.ptr.add(i).read_unaligned() };
                float_key!(v, $u)
            }
        }
    };
}

macro_rules! float_key {
    ($v:expr, $u:ty) => {{
        const SIGN: $u = 1 << (<$u>::BITS - 1);
        let v = $v;
        if v.is_nan() {
            <$u>::MAX
        } else {
            let bits = if v == 0.0 { 0 } else { v.to_bits() };
            if bits & SIGN != 0 {
                !bits
            } else {
                bits | SIGN
            }
        }
    }};
}
float_source!(f32, u32);
float_source!(f64, u64);

#[cfg(test)]
mod tests {
    use super::*;

    fn f64_key(v: f64) -> u64 {
        // SAFETY: index 0 of a one-element array.
        unsafe { Raw { ptr: &v }.key(0) }
    }

    #[test]
    fn float_keys_follow_numpy_order() {
        let ordered = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -f64::MIN_POSITIVE,
            -5e-324,
            0.0,
            5e-324,
            1.0,
            1e300,
            f64::INFINITY,
        ];
        for w in ordered.windows(2) {
            assert!(f64_key(w[0]) < f64_key(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(f64_key(-0.0), f64_key(0.0));
        assert_eq!(f64_key(f64::NAN), u64::MAX);
        assert_eq!(f64_key(-f64::NAN), u64::MAX);
        assert!(f64_key(f64::INFINITY) < f64_key(f64::NAN));
    }

    #[test]
    fn signed_keys_order() {
        let v = [i8::MIN, -1, 0, 1, i8::MAX];
        let keys: Vec<u8> = (0..5)
            // SAFETY: i < 5.
            .map(|i| unsafe { Raw { ptr: v.as_ptr() }.key(i) })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
}
