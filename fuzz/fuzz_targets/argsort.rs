//! Fuzz target: `sm_argsort` against a reference stable argsort in numpy's order (NaN last and
//! equal to every NaN, -0.0 == +0.0): tests/support/argsort_reference.rs, shared with
//! tests/argsort_props.rs.
//!
//! Input: byte 0 picks the dtype (low nibble % 10) and whether keys / out live in `sm_empty`
//! memory (bits 4, 5); byte 1 the pool (NULL, or 1-3 thread workers, or process / serial pools,
//! created once: argsort runs threads whatever the backend), the keys' misalignment (0-7 bytes)
//! and whether to expand the data; the rest are the keys (little-endian, native width). Expanded
//! inputs (bits 6 and 7 of bytes 0 and 1) take 4 more header bytes and build 28k-44k
//! keys from the data used as a palette, so that the parallel paths (from 32768 keys) get fuzzed
//! too; half of them are then presorted (sorted, reversed, swapped pairs, shuffled areas), for
//! the adaptive paths.
//!
//! Checks: SM_OK, `out` is the stable argsort (a permutation whose neighbours are in (key, index)
//! order: the same as equality with the reference, in linear time), nothing written outside
//! `out[0..n)`, keys unchanged. Any mismatch panics (a finding).
#![no_main]

// The reference and the dtypes, shared with tests/argsort_props.rs.
#[path = "../../tests/support/argsort_reference.rs"]
mod argsort_reference;

use argsort_reference::{compare, reference, Dt, DTS};
use libfuzzer_sys::fuzz_target;
use sharedmem::*;
use std::cmp::Ordering;
use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

fn last_error() -> String {
    // SAFETY: sm_last_error never returns NULL; the string lives until the next failure here.
    unsafe { CStr::from_ptr(sm_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// NULL (the default worker count), thread pools of 1, 2, 3 workers, a process pool of 2 and a
/// serial pool of 3, as addresses (a raw pointer is not Sync).
fn pools() -> &'static [(usize, &'static str); 6] {
    static POOLS: OnceLock<[(usize, &'static str); 6]> = OnceLock::new();
    POOLS.get_or_init(|| {
        let new = |n: c_int, b: sm_backend| {
            let p = sm_pool_new(n, b as c_int);
            assert!(!p.is_null(), "sm_pool_new({n}, {b:?}): {}", last_error());
            p as usize
        };
        [
            (0, "NULL pool"),
            (new(1, sm_backend::SM_BACKEND_THREAD), "thread pool of 1"),
            (new(2, sm_backend::SM_BACKEND_THREAD), "thread pool of 2"),
            (new(3, sm_backend::SM_BACKEND_THREAD), "thread pool of 3"),
            (new(2, sm_backend::SM_BACKEND_PROCESS), "process pool of 2"),
            (new(3, sm_backend::SM_BACKEND_SERIAL), "serial pool of 3"),
        ]
    })
}

fn mix(mut z: u64) -> u64 {
    // splitmix64's finaliser: a deterministic hash of the index.
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The keys: the data as little-endian values or, expanded, n keys built from it as a palette.
fn keys_of(dt: Dt, head: &[u8], data: &[u8], expand: bool) -> Vec<u64> {
    let ks = dt.size();
    let mask = dt.mask();
    let palette: Vec<u64> = data
        .chunks_exact(ks)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..ks].copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect();
    if !expand || palette.is_empty() {
        return palette;
    }
    // head: n (28k .. 44k, around the parallel threshold of 32768), how to spread the palette,
    // which low bits vary.
    let n = 28_000 + (u16::from_le_bytes([head[0], head[1]]) as usize * 16_000 / 65_536);
    let mode = head[2] % 8;
    let noise_bits = (head[3] % 65) as u32;
    let noise = if noise_bits >= 64 {
        u64::MAX
    } else {
        (1u64 << noise_bits) - 1
    } & mask;
    let m = palette.len();
    let run = 1 + head[3] as usize * 37;
    let keys: Vec<u64> = (0..n)
        .map(|i| match mode % 4 {
            0 => palette[i % m],
            1 => palette[(mix(i as u64) % m as u64) as usize],
            2 => palette[(mix(i as u64) % m as u64) as usize] ^ (mix(!(i as u64)) & noise),
            _ => palette[(i / run) % m],
        })
        .collect();
    if mode < 4 {
        return keys;
    }
    // presorted shapes (sm_argsort's adaptive paths): sorted, then reversed (non-increasing, ties
    // included), or with swapped pairs, or with shuffled areas of 100 (numpy's sort benchmarks)
    let mut v: Vec<u64> = reference(dt, &keys).iter().map(|&i| keys[i as usize]).collect();
    let count = 1 + head[3] as usize * 8;
    match mode {
        4 => {}
        5 => v.reverse(),
        6 => {
            for s in 0..count as u64 {
                v.swap((mix(s) % n as u64) as usize, (mix(!s) % n as u64) as usize);
            }
        }
        _ => {
            for a in 0..(count / 8 + 1) as u64 {
                let start = (mix(a) % (n as u64 - 100)) as usize;
                for j in (1..100usize).rev() {
                    let k = (mix(a ^ ((j as u64) << 32)) % (j as u64 + 1)) as usize;
                    v.swap(start + j, start + k);
                }
            }
        }
    }
    v
}

/// A byte buffer in malloc'd (Vec) or sm_empty memory.
struct Buf {
    ptr: *mut u8,
    len: usize,
    heap: Option<Vec<u64>>,
}

impl Buf {
    fn new(len: usize, shared: bool) -> Buf {
        if shared {
            let ptr = sm_empty(len, 1) as *mut u8;
            assert!(!ptr.is_null(), "sm_empty({len}): {}", last_error());
            Buf {
                ptr,
                len,
                heap: None,
            }
        } else {
            let mut v = vec![0u64; len.div_ceil(8)];
            Buf {
                ptr: v.as_mut_ptr().cast(),
                len,
                heap: Some(v),
            }
        }
    }
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: ptr has len bytes (sm_empty or the Vec), alive until drop.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if self.heap.is_none() {
            sm_free(self.ptr.cast());
        }
    }
}

const SENTINEL: i64 = 0x5A5A_5A5A_5A5A_5A5A;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let dt = DTS[(data[0] & 0x0f) as usize % 10];
    let keys_shared = data[0] & 0x10 != 0;
    let out_shared = data[0] & 0x20 != 0;
    let (pool, pool_name) = pools()[(data[1] & 0x07) as usize % 6];
    let offset = ((data[1] >> 3) & 0x07) as usize;
    let expand = data[1] & 0xC0 == 0xC0 && data[0] & 0xC0 == 0xC0;
    let (head, body) = if expand {
        if data.len() < 6 {
            return;
        }
        (&data[2..6], &data[6..])
    } else {
        (&data[..0], &data[2..])
    };
    let bits = keys_of(dt, head, body, expand);
    let n = bits.len();
    let ks = dt.size();

    let mut kbuf = Buf::new(n * ks + offset, keys_shared);
    for (i, b) in bits.iter().enumerate() {
        kbuf.bytes()[offset + i * ks..offset + (i + 1) * ks]
            .copy_from_slice(&b.to_le_bytes()[..ks]);
    }
    let obuf = Buf::new((n + 2) * 8, out_shared);
    // SAFETY: both kinds of buffer are 8-byte aligned, with room for n + 2 i64.
    let out: &mut [i64] = unsafe { std::slice::from_raw_parts_mut(obuf.ptr.cast(), n + 2) };
    out.fill(SENTINEL);
    // SAFETY: offset + n * ks bytes were allocated.
    let keys_ptr = unsafe { kbuf.ptr.add(offset) } as *const c_void;

    let st = sm_argsort(
        pool as *mut sm_pool,
        keys_ptr,
        n,
        dt.c(),
        out[1..].as_mut_ptr(),
    );
    let what = || {
        format!(
            "sm_argsort({pool_name}, n = {n}, {dt:?}, keys {} at offset {offset}, out {})",
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
    // A permutation whose neighbours are in (key, index) order is the stable argsort: checked in
    // linear time (the reference sort is only computed to show a failure).
    let mut seen = vec![false; n];
    let mut bad = None;
    for (i, &g) in got.iter().enumerate() {
        if g < 0 || g as usize >= n || seen[g as usize] {
            bad = Some(i);
            break;
        }
        seen[g as usize] = true;
        if i > 0 {
            let (a, b) = (got[i - 1] as usize, g as usize);
            match compare(dt, bits[a], bits[b]) {
                Ordering::Less => {}
                Ordering::Equal if a < b => {}
                _ => {
                    bad = Some(i);
                    break;
                }
            }
        }
    }
    if let Some(i) = bad {
        let expected = reference(dt, &bits);
        panic!(
            "{}: not the stable argsort at out[{i}]: expected {}, got {}{}",
            what(),
            expected[i],
            got[i],
            if n <= 64 {
                format!("\n  keys: {bits:x?}\n  expected: {expected:?}\n  got: {got:?}")
            } else {
                String::new()
            }
        );
    }
    assert!(
        out[0] == SENTINEL && out[n + 1] == SENTINEL,
        "{}: wrote outside out[0..n)",
        what()
    );
    for (i, b) in bits.iter().enumerate() {
        assert!(
            kbuf.bytes()[offset + i * ks..offset + (i + 1) * ks] == b.to_le_bytes()[..ks],
            "{}: key {i} was modified",
            what()
        );
    }
});
