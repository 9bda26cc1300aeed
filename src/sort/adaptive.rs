//! The presorted cases of `sm_argsort`, tried before the radix sort: catalogs that are already in
//! order, or nearly, are common, and numpy's stable argsort (timsort) does them in one or two
//! passes where a radix sort always does several.
//!
//! 0. Keys in order but for local disorder are sorted by local.rs in one pass; it gives up early
//!    on anything else, and the steps below run.
//! 1. One pass over the keys (each thread on its slice) counts descents (key[i] < key[i-1]) and
//!    ascents, writes the identity to `out` as far as the slice is sorted, and from the slice's
//!    first descent on splits off outliers (step 2), until there are too many.
//!    - no descent: done, the identity is written (sorted keys, or all equal);
//!    - n - 1 descents (strictly decreasing): the reversal;
//!    - no ascent (non-increasing, with ties): the groups of equal keys in reverse order, each in
//!      input order (stable);
//!    - few descents (at most n / 4) and few outliers: step 3; otherwise the radix sort.
//! 2. The split keeps a non-decreasing subsequence, "kept": a key below the last kept one is an
//!    outlier, unless at most 8 of the latest kept keys are above it (they were the outliers: a
//!    displaced large key followed by the run it interrupts), in which case those become outliers
//!    instead. After the pass, a slice's first kept keys below the previous slice's last kept key
//!    become outliers too, so that the kept keys of all slices are one non-decreasing sequence.
//!    A slice gives up (radix sort) when its outliers pass 1/8 of it, or of the part seen so far
//!    (plus a margin), or its descents 1/4.
//! 3. The outliers are sorted by (key, position) (a total order, so an unstable comparison sort
//!    of (key, position) pairs gives it; each thread sorts a share, then the shares are merged)
//!    and merged with the kept sequence in (key, position) order, which is the stable order. The merge is split between
//!    the threads at kept elements; it finds each stretch of kept keys that precedes the next
//!    outlier by exponential search and writes it only if it moved (step 1 wrote the identity),
//!    so a few outliers cost little more than the scan.
//!
//! Only keys of 4 bytes or more try step 0 and are split (numpy radix-sorts 1- and 2-byte keys, and so do we).
//! Extra memory of steps 2 and 3 (m <= n / 8 outliers): their positions, (key, position) pairs
//! twice (sort, merge) and their sorted order, about 45 m <= 6 n bytes: less than the radix
//! sort's 2 n (keysize + indexsize).

use super::keys::{Key, Source};
use super::radix::{self, chunk_len, per_chunk, Index, SharedMut, PARALLEL_MIN};
use crate::status::Result;
use crate::sys::spawn::spawn_or_run;

/// Which way the sort went (for tests, which check that the presorted paths are taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Identity,
    NonIncreasing,
    /// Merged with this many outliers.
    Outliers(usize),
    /// Local disorder (local.rs): this many pieces sorted and merged in place.
    Local(usize),
    Radix,
}

/// Descents above n / DESCENTS_DIV: not presorted, radix sort without trying step 2.
const DESCENTS_DIV: usize = 4;
/// Outliers above n / OUTLIERS_DIV: step 2 gives up (sorting them costs about what the whole
/// radix sort would, plus the merge).
const OUTLIERS_DIV: usize = 8;
/// At most this many of the latest kept keys are demoted to let a smaller key in.
const POP_MAX: usize = 8;
/// The latest kept keys remembered (for demotion).
const RECENT: usize = 16;

/// Sorts `src` into `out`: a presorted path when the keys are, else the radix sort. Keys of 4
/// bytes or more try local.rs first, unless `try_local` is false (tests use that to reach step 2
/// with keys local.rs would take).
pub fn argsort<S: Source, I: Index>(
    src: &S,
    n: usize,
    out: &mut [i64],
    threads: usize,
    try_local: bool,
) -> Result<Path> {
    let threads = if n < PARALLEL_MIN { 1 } else { threads.max(1) };
    // only keys of 4 bytes or more try local.rs and step 2 (see the module comment)
    let split = std::mem::size_of::<S::K>() >= 4;
    if split && try_local {
        match super::local::argsort(src, out, threads)? {
            Some(0) => return Ok(Path::Identity),
            Some(pieces) => return Ok(Path::Local(pieces)),
            None => {}
        }
    }
    let slices = scan::<S, I>(src, out, threads, split);
    let descents: usize = slices.iter().map(|s| s.descents).sum();
    let ascents: usize = slices.iter().map(|s| s.ascents).sum();
    if descents == 0 {
        return Ok(Path::Identity);
    }
    if descents == n - 1 {
        // strictly decreasing (no equal keys): the plain reversal
        let per = chunk_len(n, threads);
        per_chunk(out, threads, |t, chunk| {
            for (j, o) in chunk.iter_mut().enumerate() {
                *o = (n - 1 - (t * per + j)) as i64;
            }
        });
        return Ok(Path::NonIncreasing);
    }
    if ascents == 0 {
        reverse_groups(src, out, threads);
        return Ok(Path::NonIncreasing);
    }
    if split && descents <= n / DESCENTS_DIV {
        if let Some(m) = merge_outliers::<S, I>(src, n, slices, out, threads)? {
            return Ok(Path::Outliers(m));
        }
    }
    radix::argsort::<S, I>(src, n, out, threads)?;
    Ok(Path::Radix)
}

/// Runs `work(lo, hi)` on every slice of 0..n, one per thread, and returns the results in order.
pub(super) fn per_slice<T: Send>(
    n: usize,
    threads: usize,
    work: impl Fn(usize, usize) -> T + Sync,
) -> Vec<T> {
    let per = chunk_len(n, threads);
    if threads == 1 || n <= per {
        return vec![work(0, n)];
    }
    let work = &work;
    std::thread::scope(|s| {
        let started: Vec<_> = (per..n)
            .step_by(per)
            .map(|lo| spawn_or_run(s, move || work(lo, (lo + per).min(n))))
            .collect();
        let mut all = vec![work(0, per)];
        all.extend(started.into_iter().map(|h| h.join()));
        all
    })
}

/// What step 1 (and step 2, done in the same pass) found in one slice.
struct SliceScan<K, I> {
    /// Positions i of the slice with key[i] < key[i-1] (i-1 may be in the slice before).
    descents: usize,
    /// Positions i with key[i] > key[i-1].
    ascents: usize,
    /// Step 2 on the slice: None when it had too many outliers or was not tried.
    split: Option<SliceSplit<K, I>>,
}

/// Steps 1 and 2 in one pass over each slice: counts descents and ascents, writes the identity
/// to `out` as far as the slice is sorted (so that sorted keys are done in this one pass), and,
/// from the slice's first descent on, splits off the outliers (`split`), until there are too many.
fn scan<S: Source, I: Index>(
    src: &S,
    out: &mut [i64],
    threads: usize,
    split: bool,
) -> Vec<SliceScan<S::K, I>> {
    let n = out.len();
    let dst = SharedMut(out.as_mut_ptr());
    per_slice(n, threads, |lo, hi| {
        let key = |i: usize| {
            // SAFETY: every caller passes i < hi <= n.
            unsafe { src.key(i) }
        };
        let (mut down, mut up) = (0usize, 0usize);
        // 1: the sorted prefix
        let mut i = lo;
        let mut prev = key(lo.saturating_sub(1));
        while i < hi {
            let k = key(i);
            if k < prev {
                break;
            }
            up += (k > prev) as usize;
            // SAFETY: i is in this thread's slice [lo, hi) of out.
            unsafe { *dst.at(i) = i as i64 };
            prev = k;
            i += 1;
        }
        // 2: split off the outliers while they are few (its prefix is all kept)
        let mut splitter = if split {
            let mut sp = Splitter::new((hi - lo) / OUTLIERS_DIV);
            sp.kept = i - lo;
            Some(sp)
        } else {
            None
        };
        if let Some(sp) = splitter.as_mut() {
            // kept keys at [i - run, i), consecutive, not yet in the splitter's ring: a run of
            // ascending keys costs what step 1's loop does
            let mut run = i - lo;
            let mut prev_kept = i > lo;
            let mut complete = true;
            while i < hi {
                let k = key(i);
                down += (k < prev) as usize;
                up += (k > prev) as usize;
                // the identity here too: step 3's merge writes only what moves
                // SAFETY: i is in this thread's slice [lo, hi) of out.
                unsafe { *dst.at(i) = i as i64 };
                if prev_kept && k >= prev {
                    run += 1;
                    sp.kept += 1;
                } else {
                    sp.flush(i, run, key);
                    run = 0;
                    // too many outliers, or too many so far, or descents too frequent: give up
                    if !sp.step(k, i)
                        || down * DESCENTS_DIV > i - lo + 1024
                        || sp.outliers.len() * OUTLIERS_DIV > i - lo + 8192
                    {
                        complete = false;
                        prev = k;
                        i += 1;
                        break;
                    }
                    prev_kept = sp.top(0).1 == i;
                }
                prev = k;
                i += 1;
            }
            sp.flush(i, run, key);
            if !complete {
                splitter = None;
            }
        }
        // 3: count only
        while i < hi {
            let k = key(i);
            down += (k < prev) as usize;
            up += (k > prev) as usize;
            prev = k;
            i += 1;
        }
        SliceScan {
            descents: down,
            ascents: up,
            split: splitter.map(|sp| SliceSplit {
                last_kept: (sp.len > 0).then(|| sp.top(0).0),
                outliers: sp.outliers,
            }),
        }
    })
}

/// Non-increasing keys: the group of equal keys at input [s, e) goes to out[n-e .. n-s), in input
/// order. Each thread writes the groups that start in its slice (to their end, past the slice if
/// need be), so every group is written once.
fn reverse_groups<S: Source>(src: &S, out: &mut [i64], threads: usize) {
    let n = out.len();
    let dst = SharedMut(out.as_mut_ptr());
    per_slice(n, threads, |lo, hi| {
        let key = |i: usize| {
            // SAFETY: every caller passes i < n.
            unsafe { src.key(i) }
        };
        // the first group starting at or after lo
        let mut s = lo;
        let mut k = key(s);
        if s > 0 {
            let before = key(s - 1);
            while k == before {
                s += 1;
                if s == hi {
                    return;
                }
                k = key(s);
            }
        }
        while s < hi {
            let mut e = s + 1;
            let mut next = k;
            while e < n {
                next = key(e);
                if next != k {
                    break;
                }
                e += 1;
            }
            for i in s..e {
                // SAFETY: n - e + (i - s) < n - s <= n; the groups are disjoint and each is
                // written by the one thread in whose slice it starts, so no element is written
                // twice.
                unsafe { *dst.at(n - e + (i - s)) = i as i64 };
            }
            s = e;
            k = next;
        }
    });
}

/// One slice's outliers (positions, increasing) and its last kept key, if any.
struct SliceSplit<K, I> {
    outliers: Vec<I>,
    last_kept: Option<K>,
}

/// Step 2's state on one slice.
struct Splitter<K, I> {
    /// Outlier positions, increasing.
    outliers: Vec<I>,
    /// The latest kept (key, position), a stack of at most RECENT (older ones are forgotten):
    /// entry d from the top is ring[(head - d) % RECENT].
    ring: [(K, usize); RECENT],
    head: usize,
    len: usize,
    /// Kept elements in the slice so far.
    kept: usize,
    limit: usize,
}

impl<K: Key, I: Index> Splitter<K, I> {
    fn new(limit: usize) -> Self {
        Splitter {
            outliers: Vec::new(),
            ring: [(K::default(), 0); RECENT],
            head: RECENT - 1,
            len: 0,
            kept: 0,
            limit,
        }
    }

    #[inline(always)]
    fn top(&self, d: usize) -> (K, usize) {
        self.ring[(self.head + RECENT - d) % RECENT]
    }

    #[inline(always)]
    fn keep(&mut self, k: K, i: usize) {
        self.push(k, i);
        self.kept += 1;
    }

    #[inline(always)]
    fn push(&mut self, k: K, i: usize) {
        self.head = (self.head + 1) % RECENT;
        self.ring[self.head] = (k, i);
        self.len = (self.len + 1).min(RECENT);
    }

    /// Puts the kept run [i - run, i) (already counted in `kept`) into the ring.
    fn flush(&mut self, i: usize, run: usize, key: impl Fn(usize) -> K) {
        for p in i - run.min(RECENT)..i {
            self.push(key(p), p);
        }
    }

    /// Takes key k at position i; false when the outliers exceed the limit.
    #[inline(always)]
    fn step(&mut self, k: K, i: usize) -> bool {
        if self.len == 0 || k >= self.top(0).0 {
            self.keep(k, i);
            true
        } else {
            self.below(k, i)
        }
    }

    /// k is below the last kept key: k is an outlier, or the few latest kept keys above it are.
    #[inline(never)]
    fn below(&mut self, k: K, i: usize) -> bool {
        let mut above = 1;
        while above < self.len && above <= POP_MAX && self.top(above).0 > k {
            above += 1;
        }
        // demote them if a kept key <= k remains below them, or (at the slice start) if they are
        // the one or two first keys
        let settled = above < self.len && above <= POP_MAX;
        let all = above == self.kept && above <= 2;
        if !(settled || all) {
            self.outliers.push(I::from_usize(i));
            return self.outliers.len() <= self.limit;
        }
        for d in (0..above).rev() {
            // oldest first; below i, but maybe below some recent outliers: insert in order
            // (searching from the end: the outliers recorded after p are recent, so few)
            let p = self.top(d).1;
            let mut at = self.outliers.len();
            while at > 0 && self.outliers[at - 1].to_usize() > p {
                at -= 1;
            }
            self.outliers.insert(at, I::from_usize(p));
        }
        self.head = (self.head + RECENT - above) % RECENT;
        self.len -= above;
        self.kept -= above;
        self.keep(k, i);
        self.outliers.len() <= self.limit
    }
}

/// Steps 2 and 3; Ok(None) when there are too many outliers (nothing written to `out`).
fn merge_outliers<S: Source, I: Index>(
    src: &S,
    n: usize,
    slices: Vec<SliceScan<S::K, I>>,
    out: &mut [i64],
    threads: usize,
) -> Result<Option<usize>> {
    let limit = n / OUTLIERS_DIV;
    let per = chunk_len(n, threads);
    let mut outliers: Vec<I> = Vec::new();
    let mut last: Option<S::K> = None;
    for (t, slice) in slices.into_iter().enumerate() {
        let Some(slice) = slice.split else {
            return Ok(None);
        };
        let lo = t * per;
        let hi = (lo + per).min(n);
        let mut own = slice.outliers.into_iter().peekable();
        let mut still_kept = false;
        // the slice's first kept keys below the previous slices' last kept key become outliers
        if let Some(prev) = last {
            for i in lo..hi {
                if own.peek().map(|o| o.to_usize()) == Some(i) {
                    outliers.push(own.next().expect("peeked"));
                    continue;
                }
                // SAFETY: i < hi <= n.
                if unsafe { src.key(i) } >= prev {
                    still_kept = true;
                    break;
                }
                outliers.push(I::from_usize(i));
            }
        } else {
            still_kept = true;
        }
        outliers.extend(own);
        if outliers.len() > limit {
            return Ok(None);
        }
        if still_kept && slice.last_kept.is_some() {
            last = slice.last_kept;
        }
    }
    let m = outliers.len();

    // step 3: the outliers in (key, position) order
    let sorted = sort_outliers(src, &outliers, threads);
    merge(src, n, &outliers, &sorted, out, threads);
    Ok(Some(m))
}

/// How many of the positions lo, lo + 1, ... (below hi) satisfy `pred` (true, then false):
/// exponential search, so a long stretch costs its logarithm.
pub(super) fn gallop_count(lo: usize, hi: usize, pred: impl Fn(usize) -> bool) -> usize {
    let mut step = 1;
    let mut ok = 0; // pred holds below lo + ok
    while lo + ok + step <= hi && pred(lo + ok + step - 1) {
        ok += step;
        step *= 2;
    }
    // pred(lo + ok + step - 1) is false (or past hi): search [lo + ok, min(lo + ok + step, hi))
    let (mut a, mut b) = (ok, (ok + step).min(hi - lo));
    while a < b {
        let m = a + (b - a) / 2;
        if pred(lo + m) {
            a = m + 1;
        } else {
            b = m;
        }
    }
    a
}

/// The outliers' positions in (key, position) order, a total order (positions are distinct), so
/// any sort gives the stable order: each thread sorts a share of (key, position) pairs, then the
/// shares are merged.
fn sort_outliers<S: Source, I: Index>(src: &S, outliers: &[I], threads: usize) -> Vec<i64> {
    let m = outliers.len();
    let threads = if m < PARALLEL_MIN { 1 } else { threads };
    let per = chunk_len(m, threads);
    let sort_share = |share: &[I]| {
        let mut pairs: Vec<(S::K, usize)> = share
            .iter()
            .map(|o| {
                let p = o.to_usize();
                // SAFETY: every outlier position is below n.
                (unsafe { src.key(p) }, p)
            })
            .collect();
        pairs.sort_unstable();
        pairs
    };
    let mut shares: Vec<Vec<(S::K, usize)>> = if threads == 1 || m <= per {
        vec![sort_share(outliers)]
    } else {
        let sort_share = &sort_share;
        std::thread::scope(|s| {
            let started: Vec<_> = outliers
                .chunks(per)
                .map(|share| spawn_or_run(s, move || sort_share(share)))
                .collect();
            started.into_iter().map(|h| h.join()).collect()
        })
    };
    while shares.len() > 1 {
        let mut next = Vec::with_capacity(shares.len().div_ceil(2));
        let mut it = shares.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(merge_pairs(&a, &b)),
                None => next.push(a),
            }
        }
        shares = next;
    }
    shares
        .pop()
        .unwrap_or_default()
        .into_iter()
        .map(|(_, p)| p as i64)
        .collect()
}

/// The sorted union of two sorted lists of distinct pairs.
fn merge_pairs<K: Key>(a: &[(K, usize)], b: &[(K, usize)]) -> Vec<(K, usize)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if b[j] < a[i] {
            out.push(b[j]);
            j += 1;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Merges the kept sequence (positions 0..n except `outliers`, keys non-decreasing) with the
/// outliers' positions in (key, position) order, `sorted`, into `out`, on `threads` threads.
fn merge<S: Source, I: Index>(
    src: &S,
    n: usize,
    outliers: &[I],
    sorted: &[i64],
    out: &mut [i64],
    threads: usize,
) {
    let key = |i: usize| {
        // SAFETY: every caller passes a position below n.
        unsafe { src.key(i) }
    };
    let is_outlier = |p: usize| outliers.binary_search_by(|o| o.to_usize().cmp(&p)).is_ok();
    // Split at kept elements: thread t starts at the first kept position at or after t n / T,
    // and with the outliers that order after it.
    let mut cuts: Vec<(usize, usize, usize)> = vec![(0, 0, 0)]; // (position, sorted index, out)
    for t in 1..threads {
        let mut p = t * n / threads;
        while p < n && is_outlier(p) {
            p += 1;
        }
        let (p, j) = if p < n {
            let kp = key(p);
            let j = sorted.partition_point(|&s| {
                let ks = key(s as usize);
                ks < kp || (ks == kp && (s as usize) < p)
            });
            (p, j)
        } else {
            (n, sorted.len())
        };
        let before = outliers.partition_point(|o| o.to_usize() < p);
        cuts.push((p, j, p - before + j));
    }
    cuts.push((n, sorted.len(), n));
    cuts.dedup_by_key(|c| c.0);
    let dst = SharedMut(out.as_mut_ptr());
    let work = |c: usize| {
        let (plo, jlo, olo) = cuts[c];
        let (phi, jhi, ohi) = cuts[c + 1];
        let mut w = olo;
        let put = |w: usize, v: usize| {
            debug_assert!(w < ohi);
            // SAFETY: w < ohi <= n: thread c writes out[olo..ohi), disjoint from the others'
            // (its kept elements and outliers are exactly those ranked olo..ohi).
            unsafe { *dst.at(w) = v as i64 };
        };
        let mut oi = outliers.partition_point(|o| o.to_usize() < plo);
        let mut j = jlo;
        let mut i = plo;
        while i < phi {
            // the kept stretch [i, end) up to the next outlier position
            let end = outliers.get(oi).map_or(phi, |o| o.to_usize()).min(phi);
            while i < end {
                // how many of the stretch precede the next outlier in (key, position) order
                let take = if j < jhi {
                    let hp = sorted[j] as usize;
                    let hk = key(hp);
                    gallop_count(i, end, |x| {
                        let kx = key(x);
                        kx < hk || (kx == hk && x < hp)
                    })
                } else {
                    end - i
                };
                if w == i {
                    w += take; // in place: the scan wrote the identity there
                } else {
                    for x in i..i + take {
                        put(w, x);
                        w += 1;
                    }
                }
                i += take;
                if i < end {
                    put(w, sorted[j] as usize);
                    w += 1;
                    j += 1;
                }
            }
            if i < phi {
                i += 1; // an outlier's position: it is emitted in key order
                oi += 1;
            }
        }
        for &s in &sorted[j..jhi] {
            put(w, s as usize);
            w += 1;
        }
        debug_assert_eq!(w, ohi);
    };
    let parts = cuts.len() - 1;
    if parts == 1 {
        work(0);
        return;
    }
    let work = &work;
    std::thread::scope(|s| {
        for c in 0..parts {
            spawn_or_run(s, move || work(c));
        }
    });
}
