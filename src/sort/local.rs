//! Keys in order but for local disorder (numpy's `random_unsorted_area`: areas of a sorted array
//! shuffled in place; a catalog sorted but for measurement noise): the whole sort is one pass over
//! the keys writing the identity, plus a small sort of each disordered piece and a merge of it
//! with the few elements before it that it overlaps. Tried first; gives up early, having written
//! nothing that matters, when the disorder is not local (then adaptive.rs's scan and paths run).
//!
//! Each thread sorts its slice of `out` on its own:
//! 1. While keys are at or above the last one placed (`tail`), the identity is written.
//! 2. A key below `tail` starts a piece. The piece takes every following key until CLOSE_RUN keys
//!    in a row are in order and at or above everything before them (those are not in the piece;
//!    step 1 takes them). It is sorted as (key, position) pairs, a total order, so that any sort
//!    gives the stable order.
//! 3. The elements already placed whose keys are above the piece's smallest key (found by an
//!    exponential search back from the piece) are merged with it; on equal keys they go first
//!    (they came first in the input).
//!
//! A slice gives up when a piece starts with DESCENDING_MAX non-increasing keys (reversed input),
//! when a piece or an overlap passes PIECE_MAX elements (or a quarter of the slice), or when the
//! overlaps together pass twice the slice: random, reversed, block-interleaved or far-swapped keys
//! give up within the first PIECE_MAX keys or so. One slice giving up stops the others.
//!
//! Then the sorted slices are joined left to right: the end of the sorted prefix that is above the
//! next slice's first key is merged with the start of that slice that is below the prefix's last
//! key (exponential searches from the boundary), which for local disorder is a few elements.
//!
//! Extra memory: the piece and the overlap, (key, position) pairs, at most PIECE_MAX each per
//! thread; a join copies the prefix's overlapping end, at most n / 2 pairs (16 n / 2 bytes),
//! within the radix sort's 2 n (keysize + 4).

use super::keys::{Key, Source};
use super::radix::SharedMut;
use crate::status::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};

/// A piece or an overlap above this many elements: the disorder is not local.
const PIECE_MAX: usize = 1 << 14;
/// A piece ends before this many keys in a row that are in order and at or above all before them.
const CLOSE_RUN: usize = 8;
/// A piece whose first keys are this many non-increasing ones: reversed input, for
/// adaptive.rs's reversal (a shuffled area has no such stretch).
const DESCENDING_MAX: usize = 64;

/// Sorts `src` into `out` if its disorder is local: Ok(Some(pieces sorted)), or Ok(None) when it
/// gave up (then `out` holds nothing of use).
pub(super) fn argsort<S: Source>(
    src: &S,
    out: &mut [i64],
    threads: usize,
) -> Result<Option<usize>> {
    let n = out.len();
    let give_up = AtomicBool::new(false);
    let dst = SharedMut(out.as_mut_ptr());
    let slices = super::adaptive::per_slice(n, threads, |lo, hi| {
        // SAFETY: per_slice hands each thread a distinct [lo, hi) within 0..n, so the slices of
        // `out` are disjoint, and `out` outlives the scope.
        let mine = unsafe { std::slice::from_raw_parts_mut(dst.at(lo), hi - lo) };
        sort_slice(src, lo, mine, &give_up)
    });
    let mut pieces = 0;
    let mut ends = Vec::with_capacity(slices.len());
    let mut hi = 0;
    for slice in slices {
        let Some(p) = slice else {
            return Ok(None);
        };
        pieces += p.pieces;
        hi += p.len;
        ends.push(hi);
    }
    let mut prefix = Vec::new();
    for w in ends.windows(2) {
        if join(src, &mut out[..w[1]], w[0], &mut prefix)? {
            pieces += 1;
        }
    }
    Ok(Some(pieces))
}

/// One slice's outcome.
struct Slice {
    len: usize,
    pieces: usize,
}

/// Steps 1-3 on the slice of positions [lo, lo + out.len()); None when it gave up.
fn sort_slice<S: Source>(
    src: &S,
    lo: usize,
    out: &mut [i64],
    give_up: &AtomicBool,
) -> Option<Slice> {
    let len = out.len();
    let hi = lo + len;
    let key = |i: usize| {
        // SAFETY: every caller passes i < hi <= n.
        unsafe { src.key(i) }
    };
    let at = |out: &[i64], x: usize| out[x - lo] as usize;
    let piece_max = PIECE_MAX.min(len / 4);
    // overlap elements the slice may still merge
    let mut budget = 2 * len;
    // both at their largest from the start: no allocation (which could abort) while sorting, and
    // memory that cannot be had is one more reason to leave the keys to the other paths
    let mut piece: Vec<(S::K, usize)> = Vec::new();
    let mut overlap: Vec<(S::K, usize)> = Vec::new();
    if piece.try_reserve_exact(piece_max + 1).is_err()
        || overlap.try_reserve_exact(piece_max).is_err()
    {
        give_up.store(true, Ordering::Relaxed);
        return None;
    }
    let mut pieces = 0;
    let mut tail = key(lo);
    out[0] = lo as i64;
    let mut i = lo + 1;
    loop {
        // 1: in order
        while i < hi {
            let k = key(i);
            if k < tail {
                break;
            }
            out[i - lo] = i as i64;
            tail = k;
            i += 1;
        }
        if i == hi {
            return Some(Slice { len, pieces });
        }
        if give_up.load(Ordering::Relaxed) {
            return None;
        }
        // 2: the piece [i, j); `top` is the largest key of the piece and before it, `last` the
        // last key of the current run of in-order keys (`run` of them)
        piece.clear();
        let (mut top, mut last, mut run) = (tail, tail, 0);
        let mut j = i;
        let mut prev = tail;
        let mut descending = 0; // the piece's first keys, while non-increasing
        while j < hi {
            let k = key(j);
            if descending == piece.len() && k <= prev {
                descending += 1;
                if descending == DESCENDING_MAX {
                    give_up.store(true, Ordering::Relaxed);
                    return None;
                }
            }
            prev = k;
            if k >= last {
                run += 1;
                last = k;
                if run == CLOSE_RUN {
                    break;
                }
            } else {
                // the run, if any, belongs to the piece
                top = top.max(last);
                last = top;
                run = 0;
            }
            piece.push((k, j));
            j += 1;
            if piece.len() > piece_max {
                give_up.store(true, Ordering::Relaxed);
                return None;
            }
        }
        if j < hi {
            // the run's keys before j are not in the piece: step 1 takes them
            let keep = piece.len() - (run - 1);
            piece.truncate(keep);
            j -= run - 1;
        } else {
            top = top.max(last);
        }
        piece.sort_unstable();
        // 3: the placed elements above the piece's smallest key
        let smallest = piece[0].0;
        let above = gallop_back(lo, i, |x| key(at(out, x)) > smallest);
        if above > piece_max || above > budget {
            give_up.store(true, Ordering::Relaxed);
            return None;
        }
        budget -= above;
        let s = i - above;
        overlap.clear();
        overlap.extend((s..i).map(|x| {
            let p = at(out, x);
            (key(p), p)
        }));
        merge_into(&overlap, &piece, &mut out[s - lo..j - lo]);
        pieces += 1;
        tail = top;
        i = j;
    }
}

/// Merges `a` and `b`, each sorted, into `dst` (a.len() + b.len() elements), positions only; on
/// equal keys `a`'s first.
fn merge_into<K: Key>(a: &[(K, usize)], b: &[(K, usize)], dst: &mut [i64]) {
    debug_assert_eq!(a.len() + b.len(), dst.len());
    let (mut x, mut y) = (0, 0);
    for d in dst.iter_mut() {
        let from_b = x == a.len() || (y < b.len() && b[y].0 < a[x].0);
        *d = if from_b {
            y += 1;
            b[y - 1].1
        } else {
            x += 1;
            a[x - 1].1
        } as i64;
    }
}

/// How many of the positions hi - 1, hi - 2, ... (down to lo) satisfy `pred` (true, then
/// false): exponential search, so a long stretch costs its logarithm.
pub(super) fn gallop_back(lo: usize, hi: usize, pred: impl Fn(usize) -> bool) -> usize {
    let mut step = 1;
    let mut ok = 0; // pred holds at hi - 1 ..= hi - ok
    while ok + step <= hi - lo && pred(hi - ok - step) {
        ok += step;
        step *= 2;
    }
    // pred(hi - ok - step) is false (or below lo): the count is in [ok, min(ok + step, hi - lo))
    let (mut a, mut b) = (ok, (ok + step).min(hi - lo + 1) - 1);
    while a < b {
        let m = a + (b - a).div_ceil(2);
        if pred(hi - m) {
            a = m;
        } else {
            b = m - 1;
        }
    }
    a
}

/// Joins the sorted prefix out[..m) with the sorted slice out[m..): merges the prefix's end above
/// the slice's first key with the slice's start below the prefix's last key. `prefix` is scratch
/// space (kept between joins). True when anything moved.
fn join<S: Source>(
    src: &S,
    out: &mut [i64],
    m: usize,
    prefix: &mut Vec<(S::K, usize)>,
) -> Result<bool> {
    let key = |p: i64| {
        // SAFETY: out holds positions below n.
        unsafe { src.key(p as usize) }
    };
    let first = key(out[m]);
    let above = gallop_back(0, m, |x| key(out[x]) > first);
    if above == 0 {
        return Ok(false);
    }
    let last = key(out[m - 1]);
    let below = super::adaptive::gallop_count(m, out.len(), |x| key(out[x]) < last);
    let s = m - above;
    prefix.clear();
    prefix.try_reserve(above).map_err(|e| {
        Error::nomem(format!(
            "sm_argsort: could not allocate {above} x 16 bytes to join the threads' slices: {e}"
        ))
    })?;
    prefix.extend(out[s..m].iter().map(|&p| (key(p), p as usize)));
    // the slice's start is read ahead of the writes: out[w] with w = s + taken < m + taken <= r
    let (mut x, mut r) = (0, m);
    for w in s..m + below {
        let from_slice = x == above || (r < m + below && key(out[r]) < prefix[x].0);
        out[w] = if from_slice {
            r += 1;
            out[r - 1]
        } else {
            x += 1;
            prefix[x - 1].1 as i64
        };
    }
    Ok(true)
}
