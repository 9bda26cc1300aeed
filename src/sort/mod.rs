//! `sm_argsort`: numpy's stable argsort, in parallel: presorted input (sorted, non-increasing,
//! sorted but for local disorder, or sorted but for a minority of outliers) by adaptive.rs and
//! local.rs, everything else by radix (radix.rs); keys.rs makes every dtype an unsigned key.

mod adaptive;
pub(crate) mod buffer;
pub(crate) mod keys;
mod local;
mod radix;
pub(crate) mod runs;

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
    sort::<S>(src, n, out, threads).map(|_| ())
}

fn sort<S: Source>(src: &S, n: usize, out: &mut [i64], threads: usize) -> Result<adaptive::Path> {
    sort_paths(src, n, out, threads, true)
}

/// `sort`, optionally without local.rs's path (for tests of the others).
fn sort_paths<S: Source>(
    src: &S,
    n: usize,
    out: &mut [i64],
    threads: usize,
    try_local: bool,
) -> Result<adaptive::Path> {
    if n <= u32::MAX as usize {
        adaptive::argsort::<S, u32>(src, n, out, threads, try_local)
    } else {
        adaptive::argsort::<S, u64>(src, n, out, threads, try_local)
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

    /// Sorts through the adaptive entry point, checks against the reference, returns the path.
    fn check_f64(v: &[f64], threads: usize, what: &str) -> adaptive::Path {
        check_f64_paths(v, threads, what, true)
    }

    /// `check_f64`, optionally without local.rs's path.
    fn check_f64_paths(v: &[f64], threads: usize, what: &str, try_local: bool) -> adaptive::Path {
        let mut out = vec![-1i64; v.len()];
        let src = raw::<f64>(v.as_ptr().cast());
        let path = sort_paths(&src, v.len(), &mut out, threads, try_local).unwrap();
        assert_eq!(out, reference_f64(v), "{what}, threads {threads}, {path:?}");
        path
    }

    fn check_i64(v: &[i64], threads: usize, what: &str) -> adaptive::Path {
        check_i64_paths(v, threads, what, true)
    }

    fn check_i64_paths(v: &[i64], threads: usize, what: &str, try_local: bool) -> adaptive::Path {
        let mut out = vec![-1i64; v.len()];
        let src = raw::<i64>(v.as_ptr().cast());
        let path = sort_paths(&src, v.len(), &mut out, threads, try_local).unwrap();
        let mut expected: Vec<i64> = (0..v.len() as i64).collect();
        expected.sort_by_key(|&i| v[i as usize]);
        assert_eq!(out, expected, "{what}, threads {threads}, {path:?}");
        path
    }

    /// Shuffles v[s..s + len) in place (Fisher-Yates with the test's generator).
    fn shuffle_area(v: &mut [f64], s: usize, len: usize, seed: &mut u64) {
        for j in (1..len).rev() {
            let k = (lcg(seed) % (j as u64 + 1)) as usize;
            v.swap(s + j, s + k);
        }
    }

    use adaptive::Path;

    /// Sizes around the thread split (n = 2 * 40_000: slices of 40_000 with 2 threads, 26_667
    /// with 3) and tiny ones; the presorted paths must be taken and be exact.
    #[test]
    fn presorted_paths_are_taken_and_exact() {
        for &n in &[1usize, 2, 3, 5, 33, 80_000, 80_001] {
            for threads in [1, 2, 3] {
                let asc: Vec<f64> = (0..n).map(|i| i as f64 - 7.0).collect();
                assert_eq!(check_f64(&asc, threads, "ascending"), Path::Identity);
                let eq = vec![2.5f64; n];
                assert_eq!(check_f64(&eq, threads, "all equal"), Path::Identity);
                let nan = vec![f64::NAN; n];
                assert_eq!(check_f64(&nan, threads, "all NaN"), Path::Identity);
                if n < 2 {
                    continue;
                }
                let desc: Vec<f64> = asc.iter().rev().copied().collect();
                assert_eq!(
                    check_f64(&desc, threads, "strictly descending"),
                    Path::NonIncreasing
                );
                let desc_i: Vec<i64> = (0..n as i64).map(|i| -3 * i).collect();
                assert_eq!(
                    check_i64(&desc_i, threads, "descending ints"),
                    Path::NonIncreasing
                );
                // non-increasing with runs of equal keys, one of them across the thread split
                let groups: Vec<f64> = (0..n).map(|i| -((i / 7) as f64)).collect();
                let p = check_f64(&groups, threads, "non-increasing groups");
                assert!(p == Path::NonIncreasing || n <= 7, "{p:?}");
                let mut split_group = desc.clone();
                if n >= 11 {
                    let g = desc[n / 2 - 5];
                    for x in split_group.iter_mut().skip(n / 2 - 5).take(11) {
                        *x = g;
                    }
                }
                let p = check_f64(&split_group, threads, "equal group across the split");
                assert!(p == Path::NonIncreasing || n < 11, "{p:?}");
                // -0.0 and +0.0 are equal: a "descending" pair of them is a tie
                let zeros: Vec<f64> = (0..n)
                    .map(|i| if i % 2 == 0 { 0.0 } else { -0.0 })
                    .collect();
                assert_eq!(
                    check_f64(&zeros, threads, "alternating zeros"),
                    Path::Identity
                );
                // sorted, then NaNs (the largest keys) in the middle: not sorted
                let mut nan_mid = asc.clone();
                nan_mid[n / 2] = f64::NAN;
                check_f64(&nan_mid, threads, "one NaN in the middle");
            }
        }
    }

    /// Sorted input disturbed in the places the outlier split must handle: the very first and
    /// last element, both sides of the thread split, adjacent large outliers (a demoted pair),
    /// a short descending run containing equal keys, NaN and -0.0 outliers.
    #[test]
    fn outlier_path_edges() {
        let n = 100_000;
        let base: Vec<f64> = (0..n).map(|i| (i / 3) as f64).collect(); // sorted with ties
        type Disturb<'a> = Box<dyn Fn(&mut Vec<f64>) + 'a>;
        let cases: Vec<(&str, Disturb)> = vec![
            ("last element smallest", Box::new(|v| v[n - 1] = -1.0)),
            ("first element largest", Box::new(|v| v[0] = 1e9)),
            (
                "first two largest",
                Box::new(|v| {
                    v[0] = 1e9;
                    v[1] = 1e9 + 1.0;
                }),
            ),
            (
                "adjacent large outliers",
                Box::new(|v| {
                    v[500] = 70_000.0;
                    v[501] = 80_000.0;
                    v[502] = 80_000.0;
                }),
            ),
            (
                "outliers at the thread split",
                Box::new(|v| {
                    for d in [n / 2 - 1, n / 2, n / 3, 2 * n / 3] {
                        v[d] = -5.0;
                    }
                    v[n / 2 + 1] = 1e12;
                }),
            ),
            (
                "the second slice starts below the first's end",
                Box::new(|v| {
                    for x in v.iter_mut().skip(n / 2).take(2000) {
                        *x -= 1000.0;
                    }
                }),
            ),
            (
                "descending run with equal keys",
                Box::new(|v| {
                    let vals = [900.0, 900.0, 800.0, 800.0, 800.0, 700.0];
                    for (j, x) in vals.iter().enumerate() {
                        v[30_000 + j] = *x;
                    }
                }),
            ),
            (
                "NaN and signed zero outliers",
                Box::new(|v| {
                    v[10] = f64::NAN;
                    v[20_000] = -0.0;
                    v[20_001] = 0.0;
                    v[60_000] = f64::NAN;
                    v[60_001] = -0.0;
                    v[n - 2] = f64::NEG_INFINITY;
                }),
            ),
            (
                "swapped pairs",
                Box::new(|v| {
                    let mut seed = 11;
                    for _ in 0..500 {
                        let a = (lcg(&mut seed) % n as u64) as usize;
                        let b = (lcg(&mut seed) % n as u64) as usize;
                        v.swap(a, b);
                    }
                }),
            ),
            (
                "shuffled areas",
                Box::new(|v| {
                    let mut seed = 5;
                    for _ in 0..20 {
                        let s = (lcg(&mut seed) % (n as u64 - 100)) as usize;
                        for j in (1..100).rev() {
                            let k = (lcg(&mut seed) % (j as u64 + 1)) as usize;
                            v.swap(s + j, s + k);
                        }
                    }
                }),
            ),
        ];
        for (what, disturb) in &cases {
            let mut v = base.clone();
            disturb(&mut v);
            for threads in [1, 2, 3, 4] {
                let p = check_f64_paths(&v, threads, what, false);
                assert!(
                    matches!(p, Path::Outliers(_)),
                    "{what}, threads {threads}: {p:?}"
                );
                // local.rs takes some of these, gives the others up
                let p = check_f64(&v, threads, what);
                assert!(
                    matches!(p, Path::Outliers(_) | Path::Local(_)),
                    "{what}, threads {threads}: {p:?}"
                );
            }
            let vi: Vec<i64> = v
                .iter()
                .map(|&x| {
                    if x.is_nan() {
                        i64::MAX
                    } else {
                        (x as i64).saturating_sub(40_000)
                    }
                })
                .collect();
            for threads in [1, 2, 3] {
                let p = check_i64_paths(&vi, threads, what, false);
                assert!(
                    matches!(p, Path::Outliers(_)),
                    "{what} (int64), threads {threads}: {p:?}"
                );
                check_i64(&vi, threads, what);
            }
        }
    }

    /// Enough outliers for them to be sorted in shares by the threads and merged (at least
    /// radix::PARALLEL_MIN of them), on float keys with ties, NaN and signed zeros.
    #[test]
    fn many_outliers_are_sorted_in_shares_exactly() {
        let n = 400_000;
        let mut v: Vec<f64> = (0..n).map(|i| ((i / 2) as f64) - 1000.0).collect();
        v[1999] = -0.0;
        v[2001] = 0.0;
        let mut seed = 17;
        for _ in 0..450 {
            let s = (lcg(&mut seed) % (n as u64 - 100)) as usize;
            for j in (1..100).rev() {
                let k = (lcg(&mut seed) % (j as u64 + 1)) as usize;
                v.swap(s + j, s + k);
            }
        }
        v[n / 2] = f64::NAN;
        v[n / 2 + 7] = f64::NAN;
        for threads in [1, 2, 3] {
            match check_f64_paths(&v, threads, "many outliers", false) {
                Path::Outliers(m) => assert!(m >= radix::PARALLEL_MIN, "{m} outliers"),
                p => panic!("threads {threads}: {p:?}"),
            }
        }
    }

    /// Inputs the presorted paths must hand to the radix sort, still exactly.
    #[test]
    fn unsorted_inputs_fall_back_exactly() {
        let n = 100_000;
        let mut seed = 9;
        let random: Vec<f64> = (0..n).map(|_| (lcg(&mut seed) % 1000) as f64).collect();
        assert_eq!(check_f64(&random, 2, "random"), Path::Radix);
        // interleaved sorted blocks (numpy's sorted_block): too many outliers
        let blocks = 100;
        let sb: Vec<i64> = (0..blocks)
            .flat_map(|b| (0..n / blocks).map(move |j| (b + j * blocks) as i64))
            .collect();
        assert_eq!(check_i64(&sb, 2, "sorted blocks"), Path::Radix);
        // 1- and 2-byte keys never take the outlier path
        let small: Vec<i16> = (0..n).map(|i| (i as i16) ^ 1).collect();
        let mut out = vec![0i64; n];
        let p = sort(&raw::<i16>(small.as_ptr().cast()), n, &mut out, 2).unwrap();
        assert_eq!(p, Path::Radix);
        let mut expected: Vec<i64> = (0..n as i64).collect();
        expected.sort_by_key(|&i| small[i as usize]);
        assert_eq!(out, expected);
    }

    /// local.rs: shuffled areas of every size from 2 to 400 keys, at the start and end of the
    /// input and across the thread splits (2, 3, 4 and 8 threads), on keys with ties, NaN (at the
    /// end: elsewhere they are far from their place) and signed zeros; the path must be local.rs's and the result exact, for float64 and int64.
    #[test]
    fn local_disorder_is_sorted_exactly_in_one_pass() {
        let n = 120_000;
        let base: Vec<f64> = (0..n).map(|i| (i / 3) as f64 - 20.0).collect();
        let mut v = base.clone();
        let mut seed = 23;
        let mut starts: Vec<usize> = vec![0, n - 50];
        for t in [2, 3, 4, 8] {
            for c in 1..t {
                starts.push(c * n.div_ceil(t) - 37);
            }
        }
        for _ in 0..300 {
            starts.push((lcg(&mut seed) % (n as u64 - 400)) as usize);
        }
        for (a, &s) in starts.iter().enumerate() {
            let len = (2 + a * 7 % 399).min(n - s);
            shuffle_area(&mut v, s, len, &mut seed);
        }
        // NaN are the largest keys: in order at the end, shuffled among the last keys
        v[n - 3] = f64::NAN;
        v[n - 1] = f64::NAN;
        shuffle_area(&mut v, n - 40, 40, &mut seed);
        // keys 0 at 60..63: signed zeros, shuffled with their neighbours
        v[60] = -0.0;
        v[62] = -0.0;
        shuffle_area(&mut v, 50, 20, &mut seed);
        let vi: Vec<i64> = v
            .iter()
            .map(|&x| if x.is_nan() { i64::MAX } else { x as i64 })
            .collect();
        for threads in [1, 2, 3, 4, 8] {
            let p = check_f64(&v, threads, "shuffled areas");
            assert!(
                matches!(p, Path::Local(m) if m >= 100),
                "threads {threads}: {p:?}"
            );
            let p = check_i64(&vi, threads, "shuffled areas (int64)");
            assert!(matches!(p, Path::Local(_)), "threads {threads}: {p:?}");
        }
        // areas of equal keys only: nothing moves
        let ties: Vec<f64> = (0..n).map(|i| (i / 1000) as f64).collect();
        assert_eq!(check_f64(&ties, 2, "ties"), Path::Identity);
    }

    /// local.rs's join of the threads' slices: sorted slices whose ranges overlap a little
    /// (shifted keys at the split) or entirely (two interleaved sorted halves: every key moves).
    #[test]
    fn local_join_of_slices() {
        let n = 100_000;
        let mut shifted: Vec<f64> = (0..n).map(|i| i as f64).collect();
        for x in shifted.iter_mut().skip(n / 2).take(300) {
            *x -= 500.0;
        }
        for threads in [2, 3] {
            assert!(matches!(
                check_f64(&shifted, threads, "shifted"),
                Path::Local(_)
            ));
        }
        let halves: Vec<i64> = (0..n as i64)
            .map(|i| {
                if i < n as i64 / 2 {
                    2 * i
                } else {
                    2 * (i - n as i64 / 2) + 1
                }
            })
            .collect();
        assert_eq!(check_i64(&halves, 2, "interleaved halves"), Path::Local(1));
        // one thread: not local (the second half is one piece of n / 2)
        assert!(!matches!(check_i64(&halves, 1, "halves"), Path::Local(_)));
    }

    /// Disorder that is not local: local.rs gives up and the other paths sort it exactly.
    #[test]
    fn local_gives_up_on_disorder_that_is_not() {
        let n = 200_000;
        for threads in [1, 2, 3] {
            // a key far from its place
            let mut far: Vec<f64> = (0..n).map(|i| i as f64).collect();
            far.swap(10, n - 10);
            assert!(matches!(check_f64(&far, threads, "far"), Path::Outliers(_)));
            // reversed after a sorted start
            let mut rev: Vec<f64> = (0..n).map(|i| -(i as f64)).collect();
            rev[0] = -1e9;
            assert!(!matches!(
                check_f64(&rev, threads, "reversed"),
                Path::Local(_)
            ));
            // every ninth key small: each overlap reaches far back
            let comb: Vec<f64> = (0..n)
                .map(|i| if i % 9 == 8 { (i / 2) as f64 } else { i as f64 })
                .collect();
            assert!(!matches!(check_f64(&comb, threads, "comb"), Path::Local(_)));
        }
    }

    #[test]
    fn gallop_back_counts_the_true_suffix() {
        for len in 0..70usize {
            for count in 0..=len {
                let lo = 5;
                let hi = lo + len;
                let got = local::gallop_back(lo, hi, |x| x >= hi - count);
                assert_eq!(got, count, "len {len} count {count}");
            }
        }
    }
}
