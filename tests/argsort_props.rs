//! Property test of `sm_argsort`: thousands of random cases (dtype, size, distribution, pool,
//! memory, alignment), each compared exactly with an obviously correct reference: Rust's stable
//! `sort_by` on the indices with numpy's order (NaN greater than everything and equal to every NaN,
//! -0.0 == +0.0).
//!
//! Sizes are skewed: mostly small, some around the library's thresholds (32 for insertion sort,
//! 32768 for going parallel, 65536), a few up to ~200k. Distributions include prefixes of every
//! width with varying low bits, sparse varying bits, dominant values, narrow ranges with outliers,
//! sorted/reversed/nearly sorted runs and float specials.
//!
//! Deterministic by default; `ARGSORT_PROPS_SEED=<u64>` picks another seed,
//! `ARGSORT_PROPS_CASES=<n>` another number of cases, `ARGSORT_PROPS_ONLY=<case>` runs one case
//! (as printed by a failure). Run with `cargo test --release --test argsort_props`.

#[path = "support/argsort_reference.rs"]
mod argsort_reference;

use argsort_reference::{reference, Dt, DTS};
use sharedmem::*;
use std::ffi::{c_int, c_void, CStr};

const DEFAULT_SEED: u64 = 0x5EED_A125_0127_2024;
const DEFAULT_CASES: u64 = 4000;

// ------------------------------------------------------------------------------------------ rng

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, m: u64) -> u64 {
        if m == 0 {
            0
        } else {
            self.next() % m
        }
    }
    fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

// ------------------------------------------------------------------------------------------ dtypes

// The dtypes (size, mask, signedness, the sm_dtype value) are in the shared reference module; here
// what the property test adds to generate keys and show them.
impl Dt {
    /// The bit pattern of a real number in this float type.
    fn real(self, v: f64) -> u64 {
        match self {
            Dt::F64 => v.to_bits(),
            Dt::F32 => (v as f32).to_bits() as u64,
            _ => unreachable!(),
        }
    }
    /// IEEE specials: -inf, -MAX, -1, -MIN_POSITIVE, -denorm, -0, +0, denorm, largest denormal,
    /// MIN_POSITIVE, 1, MAX, +inf; NaNs: quiet, negative, signalling, max payload, all ones.
    fn specials(self) -> &'static [u64] {
        const S64: [u64; 18] = [
            0xFFF0000000000000,
            0xFFEFFFFFFFFFFFFF,
            0xBFF0000000000000,
            0x8010000000000000,
            0x8000000000000001,
            0x8000000000000000,
            0x0000000000000000,
            0x0000000000000001,
            0x000FFFFFFFFFFFFF,
            0x0010000000000000,
            0x3FF0000000000000,
            0x7FEFFFFFFFFFFFFF,
            0x7FF0000000000000,
            0x7FF8000000000000,
            0xFFF8000000000000,
            0x7FF0000000000001,
            0x7FFFFFFFFFFFFFFF,
            0xFFFFFFFFFFFFFFFF,
        ];
        const S32: [u64; 18] = [
            0xFF800000, 0xFF7FFFFF, 0xBF800000, 0x80800000, 0x80000001, 0x80000000, 0x00000000,
            0x00000001, 0x007FFFFF, 0x00800000, 0x3F800000, 0x7F7FFFFF, 0x7F800000, 0x7FC00000,
            0xFFC00000, 0x7F800001, 0x7FFFFFFF, 0xFFFFFFFF,
        ];
        match self {
            Dt::F64 => &S64,
            Dt::F32 => &S32,
            _ => unreachable!(),
        }
    }
    fn extremes(self) -> Vec<u64> {
        let m = self.mask();
        if self.is_signed() {
            let min = 1u64 << (self.bits() - 1);
            vec![min, min + 1, m, 0, 1, min - 2, min - 1]
        } else {
            vec![0, 1, 2, m / 2, m / 2 + 1, m - 1, m]
        }
    }
    fn random_nan(self, r: &mut Rng) -> u64 {
        match self {
            Dt::F64 => 0x7FF0000000000000 | (r.next() & 0x800FFFFFFFFFFFFF) | 1,
            Dt::F32 => 0x7F800000 | (r.next() & 0x807FFFFF) | 1,
            _ => unreachable!(),
        }
    }
    fn show(self, bits: u64) -> String {
        match self {
            Dt::F64 => format!("{:e} ({bits:#018x})", f64::from_bits(bits)),
            Dt::F32 => format!("{:e} ({bits:#010x})", f32::from_bits(bits as u32)),
            _ if self.is_signed() => {
                let sh = 64 - self.bits();
                format!("{}", ((bits << sh) as i64) >> sh)
            }
            _ => format!("{bits}"),
        }
    }
}

/// An "interesting" value: random bits, an extreme, (floats) a special or a small number.
fn any_value(dt: Dt, r: &mut Rng) -> u64 {
    let v = match r.below(4) {
        0 => r.next(),
        1 if dt.is_float() => {
            let s = dt.specials();
            s[r.below(s.len() as u64) as usize]
        }
        1 => {
            let e = dt.extremes();
            e[r.below(e.len() as u64) as usize]
        }
        2 if dt.is_float() => dt.real(r.range(0, 8) as f64 - 4.0),
        2 => r.range(0, 8).wrapping_sub(4),
        _ if dt.is_float() => dt.real((r.unit() - 0.5) * 1e6),
        _ => r.below(1000),
    };
    v & dt.mask()
}

// ------------------------------------------------------------------------------------------ data

const DISTS: [&str; 21] = [
    "random bits",
    "prefix + varying low bits",
    "sparse varying bits",
    "few distinct",
    "dominant value",
    "narrow range + outliers",
    "small range",
    "sorted",
    "reversed",
    "nearly sorted",
    "all equal",
    "extremes / specials",
    "uniform [0,1)",
    "NaN fraction",
    "zeros of both signs",
    "small integers",
    "sorted blocks",
    "swapped pairs",
    "unsorted areas",
    "non-increasing with ties",
    "sorted, ends disturbed",
];

/// Bit patterns (low `dt.bits()` bits) of n keys of distribution `d`.
fn generate(dt: Dt, d: usize, n: usize, r: &mut Rng) -> Vec<u64> {
    let m = dt.mask();
    let mut v: Vec<u64> = Vec::with_capacity(n);
    match DISTS[d] {
        "random bits" => v.extend((0..n).map(|_| r.next() & m)),
        "prefix + varying low bits" => {
            let b = r.range(1, dt.bits() as u64) as u32;
            let low = if b == 64 { u64::MAX } else { (1u64 << b) - 1 };
            let prefix = r.next() & !low & m;
            v.extend((0..n).map(|_| prefix | (r.next() & low)));
        }
        "sparse varying bits" => {
            let vary = r.next() & r.next() & r.next() & m; // about 1/8 of the bits
            let base = r.next() & m;
            v.extend((0..n).map(|_| (base & !vary) | (r.next() & vary)));
        }
        "few distinct" => {
            let k = r.range(1, 8) as usize;
            let vals: Vec<u64> = (0..k).map(|_| any_value(dt, r)).collect();
            v.extend((0..n).map(|_| vals[r.below(k as u64) as usize]));
        }
        "dominant value" => {
            let p = [0.5, 0.9, 0.99, 0.999][r.below(4) as usize];
            let dom = any_value(dt, r);
            v.extend((0..n).map(|_| if r.chance(p) { dom } else { any_value(dt, r) }));
        }
        "narrow range + outliers" => {
            let p = [0.001, 0.01, 0.1][r.below(3) as usize];
            let base = r.next();
            let width = r.range(1, 5000);
            let fbase = (r.unit() - 0.5) * 1e4;
            v.extend((0..n).map(|_| {
                if r.chance(p) {
                    r.next() & m
                } else if dt.is_float() {
                    dt.real(fbase + r.below(width) as f64 * 0.125)
                } else {
                    base.wrapping_add(r.below(width)) & m
                }
            }));
        }
        "small range" => {
            let range = r.range(1, (n as u64 / 2).max(1));
            v.extend((0..n).map(|_| {
                let x = r.below(range) as i64
                    - if dt.is_signed() || dt.is_float() {
                        range as i64 / 2
                    } else {
                        0
                    };
                if dt.is_float() {
                    dt.real(x as f64)
                } else {
                    x as u64 & m
                }
            }));
        }
        "sorted" | "reversed" | "nearly sorted" => {
            let base: Vec<u64> = (0..n).map(|_| any_value(dt, r)).collect();
            let p = reference(dt, &base);
            v.extend(p.iter().map(|&i| base[i as usize]));
            if DISTS[d] == "reversed" {
                v.reverse();
            }
            if DISTS[d] == "nearly sorted" && n > 1 {
                for _ in 0..r.range(1, 1 + n as u64 / 50) {
                    let (a, b) = (r.below(n as u64) as usize, r.below(n as u64) as usize);
                    v.swap(a, b);
                }
            }
        }
        "all equal" => {
            let x = any_value(dt, r);
            v.resize(n, x);
        }
        "extremes / specials" => {
            let vals = if dt.is_float() {
                dt.specials().to_vec()
            } else {
                dt.extremes()
            };
            v.extend((0..n).map(|_| vals[r.below(vals.len() as u64) as usize]));
        }
        "uniform [0,1)" => v.extend((0..n).map(|_| {
            if dt.is_float() {
                dt.real(r.unit())
            } else {
                (r.unit() * m as f64) as u64 & m
            }
        })),
        "NaN fraction" => {
            let p = r.unit();
            v.extend((0..n).map(|_| {
                if dt.is_float() && r.chance(p) {
                    dt.random_nan(r)
                } else {
                    any_value(dt, r)
                }
            }));
        }
        "zeros of both signs" => v.extend((0..n).map(|_| {
            if dt.is_float() {
                dt.real(if r.chance(0.5) { -0.0 } else { 0.0 })
            } else {
                r.below(2) * m // 0 and all ones (-1 or MAX)
            }
        })),
        "small integers" => v.extend((0..n).map(|_| {
            let x = r.range(0, 6) as i64 - 3;
            if dt.is_float() {
                dt.real(x as f64)
            } else {
                x as u64 & m
            }
        })),
        // numpy's sort benchmark shapes (SortGenerator), on sorted "interesting" values with ties
        "sorted blocks" | "swapped pairs" | "unsorted areas" | "sorted, ends disturbed"
            if n > 0 =>
        {
            let base: Vec<u64> = (0..n).map(|_| any_value(dt, r)).collect();
            let p = reference(dt, &base);
            let sorted: Vec<u64> = p.iter().map(|&i| base[i as usize]).collect();
            match DISTS[d] {
                "sorted blocks" => {
                    let block = [2, 10, 100, 1000][r.below(4) as usize].min(n.max(1));
                    let blocks = (n / block).max(1);
                    for b in 0..blocks {
                        v.extend(sorted.iter().skip(b).step_by(blocks));
                    }
                }
                "swapped pairs" => {
                    v.extend_from_slice(&sorted);
                    let frac = [0.0001, 0.01, 0.1, 0.5][r.below(4) as usize];
                    for _ in 0..((n as f64 * frac) as usize).max(1) {
                        let (a, b) = (r.below(n as u64) as usize, r.below(n as u64) as usize);
                        v.swap(a, b);
                    }
                }
                "unsorted areas" => {
                    v.extend_from_slice(&sorted);
                    let area = [3, 100][r.below(2) as usize].min(n);
                    let frac = [0.01, 0.1, 0.5][r.below(3) as usize];
                    for _ in 0..((n as f64 * frac) as usize / area).max(1) {
                        let s = r.below((n - area + 1) as u64) as usize;
                        for j in (1..area).rev() {
                            v.swap(s + j, s + r.below(j as u64 + 1) as usize);
                        }
                    }
                }
                _ => {
                    v.extend_from_slice(&sorted);
                    for _ in 0..r.range(1, 3) {
                        let at = [0, 1, n.saturating_sub(1), n.saturating_sub(2), n / 2]
                            [r.below(5) as usize];
                        if at < n {
                            v[at] = any_value(dt, r);
                        }
                    }
                }
            }
        }
        "non-increasing with ties" => {
            let k = r.range(1, 50);
            let vals: Vec<u64> = (0..n).map(|_| any_value(dt, r) % k.max(1)).collect();
            let base: Vec<u64> = vals
                .iter()
                .map(|&x| if dt.is_float() { dt.real(x as f64) } else { x })
                .collect();
            let p = reference(dt, &base);
            v.extend(p.iter().rev().map(|&i| base[i as usize]));
        }
        _ if n == 0 => {}
        other => unreachable!("{other}"),
    }
    v
}

// ------------------------------------------------------------------------------------------ reference

// numpy.argsort(kind='stable') and its dtypes: tests/support/argsort_reference.rs, shared with
// the fuzz target fuzz/fuzz_targets/argsort.rs.

// ------------------------------------------------------------------------------------------ library

fn last_error() -> String {
    // SAFETY: sm_last_error never returns NULL; the string lives until the next failure here.
    unsafe { CStr::from_ptr(sm_last_error()) }
        .to_string_lossy()
        .into_owned()
}

struct Pool {
    ptr: *mut sm_pool,
    name: String,
}

impl Drop for Pool {
    fn drop(&mut self) {
        sm_pool_free(self.ptr);
    }
}

fn pools() -> Vec<Pool> {
    let mut v = vec![Pool {
        ptr: std::ptr::null_mut(),
        name: "NULL pool".into(),
    }];
    for (b, bname) in [
        (sm_backend::SM_BACKEND_PROCESS, "process"),
        (sm_backend::SM_BACKEND_THREAD, "thread"),
        (sm_backend::SM_BACKEND_SERIAL, "serial"),
    ] {
        for w in 1..=8 {
            let p = sm_pool_new(w, b as c_int);
            assert!(!p.is_null(), "sm_pool_new({w}, {bname}): {}", last_error());
            v.push(Pool {
                ptr: p,
                name: format!("{bname} {w}-worker pool"),
            });
        }
    }
    v
}

/// A byte buffer in malloc'd (Vec) or sm_empty memory.
enum Buf {
    Heap(Vec<u64>),
    Shared(*mut u8, usize),
}

impl Buf {
    fn new(bytes: usize, shared: bool) -> Buf {
        if shared {
            let p = sm_empty(bytes, 1) as *mut u8;
            assert!(!p.is_null(), "sm_empty({bytes}): {}", last_error());
            Buf::Shared(p, bytes)
        } else {
            Buf::Heap(vec![0u64; bytes.div_ceil(8)])
        }
    }
    fn bytes(&mut self) -> &mut [u8] {
        match self {
            // SAFETY: a Vec<u64> of at least `bytes` bytes, viewed as bytes.
            Buf::Heap(v) => unsafe {
                std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), v.len() * 8)
            },
            // SAFETY: sm_empty returned `len` writable bytes, alive until drop.
            Buf::Shared(p, len) => unsafe { std::slice::from_raw_parts_mut(*p, *len) },
        }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if let Buf::Shared(p, _) = self {
            sm_free(p.cast());
        }
    }
}

// ------------------------------------------------------------------------------------------ cases

fn pick_n(r: &mut Rng) -> usize {
    const THRESHOLDS: [u64; 9] = [31, 32, 33, 32767, 32768, 32769, 65535, 65536, 65537];
    let x = r.below(1000);
    (if x < 450 {
        r.range(0, 40)
    } else if x < 700 {
        r.range(41, 1000)
    } else if x < 850 {
        r.range(1001, 40_000)
    } else if x < 960 {
        let t = THRESHOLDS[r.below(THRESHOLDS.len() as u64) as usize];
        t + r.range(0, 4) - 2
    } else {
        r.range(40_001, 200_000)
    }) as usize
}

struct Stats {
    cases: u64,
    elements: u64,
    by_dtype: [u64; 10],
}

fn run_case(seed: u64, case: u64, pools: &[Pool], stats: &mut Stats) {
    let mut r = Rng(seed ^ case.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let dti = r.below(10) as usize;
    let dt = DTS[dti];
    let n = pick_n(&mut r);
    let d = r.below(DISTS.len() as u64) as usize;
    let pool = &pools[r.below(pools.len() as u64) as usize];
    let keys_shared = r.chance(0.3);
    let out_shared = r.chance(0.3);
    let offset = if r.chance(0.5) {
        0
    } else {
        r.range(1, 15) as usize
    };

    let bits = generate(dt, d, n, &mut r);
    assert_eq!(bits.len(), n);
    let expected = reference(dt, &bits);

    let ks = dt.size();
    let mut kbuf = Buf::new(n * ks + offset + 1, keys_shared);
    {
        let kb = kbuf.bytes();
        for (i, b) in bits.iter().enumerate() {
            kb[offset + i * ks..offset + (i + 1) * ks].copy_from_slice(&b.to_le_bytes()[..ks]);
        }
    }
    let original: Vec<u8> = kbuf.bytes()[offset..offset + n * ks].to_vec();
    let mut obuf = Buf::new((n + 2) * 8, out_shared);
    const SENTINEL: i64 = 0x5A5A_5A5A_5A5A_5A5A;
    let out: &mut [i64] = {
        let ob = obuf.bytes();
        // SAFETY: both buffers are 8-byte aligned (Vec<u64> / page-aligned) with room for n + 2 i64.
        unsafe { std::slice::from_raw_parts_mut(ob.as_mut_ptr().cast::<i64>(), n + 2) }
    };
    out.fill(SENTINEL);
    let keys_ptr = kbuf.bytes()[offset..].as_ptr() as *const c_void;

    let st = sm_argsort(pool.ptr, keys_ptr, n, dt.c(), out[1..].as_mut_ptr());
    let what = || {
        format!(
            "case {case} (ARGSORT_PROPS_SEED={seed} ARGSORT_PROPS_ONLY={case}): sm_argsort({}, n = {n}, {dt:?}, \
             distribution \"{}\", keys in {} memory at byte offset {offset}, out in {} memory)",
            pool.name,
            DISTS[d],
            if keys_shared { "sm_empty" } else { "malloc'd" },
            if out_shared { "sm_empty" } else { "malloc'd" },
        )
    };
    assert_eq!(
        st,
        sm_status::SM_OK,
        "{}: returned {st:?}: {}",
        what(),
        last_error()
    );
    let got = &out[1..n + 1];
    if got != expected.as_slice() {
        let i = (0..n).find(|&i| got[i] != expected[i]).unwrap();
        let key = |j: i64| {
            if j >= 0 && (j as usize) < n {
                dt.show(bits[j as usize])
            } else {
                "out of range".into()
            }
        };
        let mut msg = format!(
            "{}: differs from the stable reference at out[{i}]: expected index {} (key {}), got {} (key {})",
            what(),
            expected[i],
            key(expected[i]),
            got[i],
            key(got[i])
        );
        if n <= 64 {
            let ks: Vec<String> = bits.iter().map(|&b| dt.show(b)).collect();
            msg += &format!("\n  keys:     {ks:?}\n  expected: {expected:?}\n  got:      {got:?}");
        }
        panic!("{msg}");
    }
    assert!(
        out[0] == SENTINEL && out[n + 1] == SENTINEL,
        "{}: wrote outside out[0..n): out[-1] = {:#x}, out[n] = {:#x}",
        what(),
        out[0],
        out[n + 1]
    );
    assert!(
        kbuf.bytes()[offset..offset + n * ks] == original[..],
        "{}: the keys were modified",
        what()
    );
    stats.cases += 1;
    stats.elements += n as u64;
    stats.by_dtype[dti] += 1;
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not an unsigned integer"))
    })
}

#[test]
fn argsort_matches_stable_reference_on_random_cases() {
    let seed = env_u64("ARGSORT_PROPS_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("ARGSORT_PROPS_CASES").unwrap_or(DEFAULT_CASES);
    let only = env_u64("ARGSORT_PROPS_ONLY");
    let pools = pools();
    let mut stats = Stats {
        cases: 0,
        elements: 0,
        by_dtype: [0; 10],
    };
    let t0 = std::time::Instant::now();
    match only {
        Some(c) => run_case(seed, c, &pools, &mut stats),
        None => {
            for c in 0..cases {
                run_case(seed, c, &pools, &mut stats);
            }
        }
    }
    eprintln!(
        "argsort_props: seed {seed}: {} cases ({} elements; per dtype {:?}) identical to the reference in {:.1?}",
        stats.cases,
        stats.elements,
        stats.by_dtype,
        t0.elapsed()
    );
}

/// The property test's reference itself, against literal numpy answers.
#[test]
fn reference_matches_numpy_literals() {
    let f = [
        f64::NAN,
        1.0,
        -0.0,
        f64::NEG_INFINITY,
        0.0,
        f64::INFINITY,
        -f64::NAN,
        -1.0,
        0.0,
        -0.0,
        1.0,
        f64::NAN,
    ];
    let bits: Vec<u64> = f.iter().map(|x| x.to_bits()).collect();
    assert_eq!(
        reference(Dt::F64, &bits),
        [3, 7, 2, 4, 8, 9, 1, 10, 5, 0, 6, 11]
    );
    let bits32: Vec<u64> = f.iter().map(|&x| (x as f32).to_bits() as u64).collect();
    assert_eq!(
        reference(Dt::F32, &bits32),
        [3, 7, 2, 4, 8, 9, 1, 10, 5, 0, 6, 11]
    );
    let i = [0i64, i64::MAX, i64::MIN, -1, 1, i64::MIN, i64::MAX, 0];
    let bits: Vec<u64> = i.iter().map(|&x| x as u64).collect();
    assert_eq!(reference(Dt::I64, &bits), [2, 5, 3, 0, 7, 4, 1, 6]);
    let bits8: Vec<u64> = [0i8, 127, -128, -1, 1, -128, 127, 0]
        .iter()
        .map(|&x| x as u8 as u64)
        .collect();
    assert_eq!(reference(Dt::I8, &bits8), [2, 5, 3, 0, 7, 4, 1, 6]);
    // and the library agrees on these, with the NULL pool
    let mut out = [0i64; 12];
    assert_eq!(
        sm_argsort(
            std::ptr::null_mut(),
            f.as_ptr().cast(),
            12,
            Dt::F64.c(),
            out.as_mut_ptr()
        ),
        sm_status::SM_OK
    );
    assert_eq!(out, [3, 7, 2, 4, 8, 9, 1, 10, 5, 0, 6, 11]);
}
