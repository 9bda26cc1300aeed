//! Stable parallel radix argsort on unsigned keys: most significant digit first.
//!
//! 1. Transform the caller's keys into unsigned keys (`keys.rs`), in parallel, noting which bits
//!    vary at all.
//! 2. Partition by the 8 highest varying bits, in parallel and stably: each thread counts its
//!    contiguous share, shares are laid out bucket by bucket in thread order, and each thread moves
//!    its elements (key and index) to their places in a second buffer.
//! 3. A bucket still larger than a thread's share gets step 2 again on its own varying bits (this
//!    is what handles skew: uniform floats put most keys under a handful of exponents).
//! 4. The remaining buckets, now small enough for a core's cache, are sorted by the threads
//!    (dynamically handed out), each recursively: jump to the bucket's highest varying bit, split
//!    on up to 11 bits, recurse; insertion sort below 32 elements. A bucket whose keys are all
//!    equal is done: its elements are already in input order.
//!
//! Every partition keeps the input order of equal digits, so the result is stable. Buffers: two for
//! keys, two for indices (32-bit when n fits), so the extra memory is 2 n (keysize + indexsize).
//!
//! Threads are started with `spawn_or_run`: a thread the system refuses (RLIMIT_NPROC, no memory
//! for its stack) has its share done by the calling thread instead, so the result is the same,
//! only slower, and never an error.

use super::buffer::{Buffer, Zeroable};
use super::keys::{Key, Source};
use crate::status::Result;
use crate::sys::spawn::spawn_or_run;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// An element index: 32-bit while n fits, which cuts the memory traffic of every pass.
pub trait Index: Zeroable + Default + Send + Sync + 'static {
    fn from_usize(i: usize) -> Self;
    fn to_i64(self) -> i64;
    fn to_usize(self) -> usize;
}

impl Index for u32 {
    #[inline(always)]
    fn from_usize(i: usize) -> u32 {
        i as u32
    }
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn to_usize(self) -> usize {
        self as usize
    }
}

impl Index for u64 {
    #[inline(always)]
    fn from_usize(i: usize) -> u64 {
        i as u64
    }
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn to_usize(self) -> usize {
        self as usize
    }
}

/// Below this many elements a bucket is insertion-sorted.
const INSERTION_MAX: usize = 32;
/// Below this many elements the whole sort runs on one thread (starting threads costs more).
pub(super) const PARALLEL_MIN: usize = 1 << 15;
/// Digit width of the parallel passes over main memory: 256 output streams keep the scatter
/// friendly to caches and TLB.
const WIDE_PASS_BITS: u32 = 8;

/// Sorts: writes to `out` the permutation that sorts `src`'s `n` keys, stably.
pub fn argsort<S: Source, I: Index>(
    src: &S,
    n: usize,
    out: &mut [i64],
    threads: usize,
) -> Result<()> {
    let threads = if n < PARALLEL_MIN { 1 } else { threads.max(1) };
    let mut keys_a = Buffer::<S::K>::new(n)?;
    let mut keys_b = Buffer::<S::K>::new(n)?;
    let mut idx_a = Buffer::<I>::new(n)?;
    let mut idx_b = Buffer::<I>::new(n)?;
    let (keys_a, keys_b) = (keys_a.as_mut_slice(), keys_b.as_mut_slice());
    let (idx_a, idx_b) = (idx_a.as_mut_slice(), idx_b.as_mut_slice());

    let varying = transform(src, keys_a, threads);
    if varying == 0 {
        fill_identity(out, threads);
        return Ok(());
    }
    let data = Buffers {
        keys: keys_a,
        idx: idx_a,
        scratch_keys: keys_b,
        scratch_idx: idx_b,
        out,
        base: 0,
    };
    if threads == 1 {
        for (j, i) in data.idx.iter_mut().enumerate() {
            *i = I::from_usize(j);
        }
        sort_sequential(data);
        return Ok(());
    }
    let tasks = Mutex::new(Vec::new());
    let big = n / (2 * threads);
    partition_parallel(data, true, Some(varying), threads, big, &tasks);
    let tasks = tasks.into_inner().unwrap_or_else(|p| p.into_inner());
    sort_buckets(tasks, threads);
    Ok(())
}
/// The slices of one range of the array: data, scratch of the same length, and `out` for it.
struct Buffers<'a, K, I> {
    keys: &'a mut [K],
    idx: &'a mut [I],
    scratch_keys: &'a mut [K],
    scratch_idx: &'a mut [I],
    out: &'a mut [i64],
    /// Position of this range in the whole array (indices before the first pass are positions).
    base: usize,
}

impl<'a, K: Key, I: Index> Buffers<'a, K, I> {
    fn len(&self) -> usize {
        self.keys.len()
    }

    /// Splits off the first `at` elements of every slice.
    fn split_at(self, at: usize) -> (Buffers<'a, K, I>, Buffers<'a, K, I>) {
        let (k0, k1) = self.keys.split_at_mut(at);
        let (i0, i1) = self.idx.split_at_mut(at);
        let (sk0, sk1) = self.scratch_keys.split_at_mut(at);
        let (si0, si1) = self.scratch_idx.split_at_mut(at);
        let (o0, o1) = self.out.split_at_mut(at);
        (
            Buffers {
                keys: k0,
                idx: i0,
                scratch_keys: sk0,
                scratch_idx: si0,
                out: o0,
                base: self.base,
            },
            Buffers {
                keys: k1,
                idx: i1,
                scratch_keys: sk1,
                scratch_idx: si1,
                out: o1,
                base: self.base + at,
            },
        )
    }

    /// The same range with data and scratch swapped (after a partition moved the data).
    fn swapped(self) -> Buffers<'a, K, I> {
        Buffers {
            keys: self.scratch_keys,
            idx: self.scratch_idx,
            scratch_keys: self.keys,
            scratch_idx: self.idx,
            out: self.out,
            base: self.base,
        }
    }

    fn write_out(&mut self) {
        for (o, i) in self.out.iter_mut().zip(self.idx.iter()) {
            *o = i.to_i64();
        }
    }
}

pub(super) fn chunk_len(n: usize, parts: usize) -> usize {
    n.div_ceil(parts).max(1)
}

/// Step 1: keys[i] = transform(key i); returns the OR of every key XOR the first (the bits that
/// vary at all).
fn transform<S: Source>(src: &S, keys: &mut [S::K], threads: usize) -> u64 {
    if keys.is_empty() {
        return 0;
    }
    // SAFETY: index 0 < n (keys is not empty and has n elements).
    let first = unsafe { src.key(0) }.wide();
    let per = chunk_len(keys.len(), threads);
    let varying = Mutex::new(0u64);
    let work = |t: usize, chunk: &mut [S::K]| {
        let start = t * per;
        let mut diff = 0u64;
        for (j, k) in chunk.iter_mut().enumerate() {
            // SAFETY: start + j < n: element j of chunk t of keys, which has n elements.
            *k = unsafe { src.key(start + j) };
            diff |= k.wide() ^ first;
        }
        *varying.lock().unwrap_or_else(|p| p.into_inner()) |= diff;
    };
    per_chunk(keys, threads, work);
    varying.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn fill_identity(out: &mut [i64], threads: usize) {
    let per = chunk_len(out.len(), threads);
    per_chunk(out, threads, |t, chunk| {
        for (j, o) in chunk.iter_mut().enumerate() {
            *o = (t * per + j) as i64;
        }
    });
}

/// The digit (shift, bits) that covers the highest `max_bits` varying bits.
fn top_digit(varying: u64, max_bits: u32) -> (u32, u32) {
    let top = 63 - varying.leading_zeros();
    let bits = max_bits.min(top + 1);
    (top + 1 - bits, bits)
}

/// A pointer that threads may write through at disjoint positions.
#[derive(Clone, Copy)]
pub(super) struct SharedMut<T>(pub(super) *mut T);
// SAFETY: used only to write disjoint elements from different threads (see partition_parallel
// and the callers in adaptive.rs).
unsafe impl<T> Send for SharedMut<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// Element i (a method, so that closures capture the whole Send + Sync wrapper).
    pub(super) fn at(&self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
}

/// Runs `work(t, chunk)` on every chunk t of `data` (chunk_len(len, threads) elements each), one
/// per thread; the calling thread takes chunk 0.
pub(super) fn per_chunk<T: Send>(
    data: &mut [T],
    threads: usize,
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    let per = chunk_len(data.len(), threads);
    if threads == 1 {
        work(0, data);
        return;
    }
    let work = &work;
    std::thread::scope(|s| {
        let mut chunks = data.chunks_mut(per).enumerate();
        let first = chunks.next();
        for (t, chunk) in chunks {
            spawn_or_run(s, move || work(t, chunk));
        }
        if let Some((t, chunk)) = first {
            work(t, chunk);
        }
    });
}

/// Steps 2 and 3: partitions `data` by its highest varying digit with all threads, then recurses
/// on buckets larger than `big` and queues the others. `first` means the indices are still the
/// identity (not materialised yet); `varying` is known for the first call.
fn partition_parallel<'a, K: Key, I: Index>(
    data: Buffers<'a, K, I>,
    first: bool,
    varying: Option<u64>,
    threads: usize,
    big: usize,
    tasks: &Mutex<Vec<Buffers<'a, K, I>>>,
) {
    let n = data.len();
    let per = chunk_len(n, threads);
    let parts = n.div_ceil(per);
    let varying = varying.unwrap_or_else(|| {
        let first_key = data.keys[0].wide();
        let diffs = Mutex::new(0u64);
        std::thread::scope(|s| {
            for chunk in data.keys.chunks(per) {
                let diffs = &diffs;
                spawn_or_run(s, move || {
                    let d = chunk.iter().fold(0, |d, k| d | (k.wide() ^ first_key));
                    *diffs.lock().unwrap_or_else(|p| p.into_inner()) |= d;
                });
            }
        });
        diffs.into_inner().unwrap_or_else(|p| p.into_inner())
    });
    if varying == 0 {
        let mut data = data;
        if first {
            for (j, o) in data.out.iter_mut().enumerate() {
                *o = (data.base + j) as i64;
            }
        } else {
            data.write_out();
        }
        return;
    }
    let (shift, bits) = top_digit(varying, WIDE_PASS_BITS);
    let buckets = 1usize << bits;
    let mask = (buckets - 1) as u64;
    let digit = move |k: K| ((k.wide() >> shift) & mask) as usize;

    // Count each thread's share.
    let mut counts = vec![vec![0usize; buckets]; parts];
    std::thread::scope(|s| {
        for (chunk, count) in data.keys.chunks(per).zip(counts.iter_mut()) {
            spawn_or_run(s, move || {
                for &k in chunk {
                    count[digit(k)] += 1;
                }
            });
        }
    });
    // Lay shares out bucket by bucket, in thread order: stable.
    let mut starts = vec![0usize; buckets + 1];
    let mut offsets = vec![vec![0usize; buckets]; parts];
    let mut at = 0;
    for b in 0..buckets {
        starts[b] = at;
        for t in 0..parts {
            offsets[t][b] = at;
            at += counts[t][b];
        }
    }
    starts[buckets] = at;

    let dst_keys = SharedMut(data.scratch_keys.as_mut_ptr());
    let dst_idx = SharedMut(data.scratch_idx.as_mut_ptr());
    let base = data.base;
    std::thread::scope(|s| {
        for (t, offset) in offsets.into_iter().enumerate() {
            let lo = t * per;
            let hi = (lo + per).min(n);
            let keys = &data.keys[lo..hi];
            let idx = &data.idx[lo..hi];
            spawn_or_run(s, move || {
                let mut offset = offset;
                let (dst_keys, dst_idx) = (dst_keys, dst_idx);
                for j in 0..keys.len() {
                    let k = keys[j];
                    let d = digit(k);
                    let to = offset[d];
                    offset[d] += 1;
                    let i = if first {
                        I::from_usize(base + lo + j)
                    } else {
                        idx[j]
                    };
                    // SAFETY: `to` is this thread's next slot in bucket d; the per-thread ranges
                    // of every bucket are disjoint and inside [0, n), so no two writes alias and
                    // none goes out of bounds.
                    unsafe {
                        *dst_keys.0.add(to) = k;
                        *dst_idx.0.add(to) = i;
                    }
                }
            });
        }
    });

    // The data now lives in the scratch buffers.
    let mut rest = data.swapped();
    for b in 0..buckets {
        let len = starts[b + 1] - starts[b];
        let (bucket, tail) = rest.split_at(len);
        rest = tail;
        if len == 0 {
            continue;
        }
        if len > big && len >= PARALLEL_MIN {
            partition_parallel(bucket, false, None, threads, big, tasks);
        } else {
            tasks.lock().unwrap_or_else(|p| p.into_inner()).push(bucket);
        }
    }
}

/// Step 4: the threads take buckets, largest first, and sort each on their own.
fn sort_buckets<K: Key, I: Index>(mut tasks: Vec<Buffers<'_, K, I>>, threads: usize) {
    tasks.sort_by_key(|t| std::cmp::Reverse(t.len()));
    let tasks: Vec<Mutex<Option<Buffers<'_, K, I>>>> =
        tasks.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let next = AtomicUsize::new(0);
    let run = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = tasks.get(i) else {
            break;
        };
        if let Some(task) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
            sort_sequential(task);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            spawn_or_run(s, run);
        }
        run();
    });
}

/// Sorts one cache-sized range on the calling thread, recursively, and writes its part of `out`.
fn sort_sequential<K: Key, I: Index>(mut data: Buffers<'_, K, I>) {
    let n = data.len();
    if n <= INSERTION_MAX {
        insertion_sort(data.keys, data.idx);
        data.write_out();
        return;
    }
    let first = data.keys[0].wide();
    let varying = data.keys.iter().fold(0, |d, k| d | (k.wide() ^ first));
    if varying == 0 {
        data.write_out(); // all keys equal: already in input order
        return;
    }
    // About 16 elements per bucket, at most 11 bits (2048 buckets stay in L1/L2).
    let want = (usize::BITS - 1 - n.leading_zeros())
        .saturating_sub(4)
        .clamp(4, 11);
    let (shift, bits) = top_digit(varying, want);
    let buckets = 1usize << bits;
    let mask = (buckets - 1) as u64;
    let digit = |k: K| ((k.wide() >> shift) & mask) as usize;

    let mut offset = vec![0usize; buckets + 1];
    for &k in data.keys.iter() {
        offset[digit(k) + 1] += 1;
    }
    for b in 0..buckets {
        offset[b + 1] += offset[b];
    }
    let starts = offset.clone();
    for (k, i) in data.keys.iter().zip(data.idx.iter()) {
        let d = digit(*k);
        data.scratch_keys[offset[d]] = *k;
        data.scratch_idx[offset[d]] = *i;
        offset[d] += 1;
    }
    let mut rest = data.swapped();
    for b in 0..buckets {
        let len = starts[b + 1] - starts[b];
        let (bucket, tail) = rest.split_at(len);
        rest = tail;
        if len > 0 {
            sort_sequential(bucket);
        }
    }
}

/// Stable: an element only moves past strictly greater keys.
fn insertion_sort<K: Key, I: Index>(keys: &mut [K], idx: &mut [I]) {
    for i in 1..keys.len() {
        let (k, x) = (keys[i], idx[i]);
        let mut j = i;
        while j > 0 && keys[j - 1] > k {
            keys[j] = keys[j - 1];
            idx[j] = idx[j - 1];
            j -= 1;
        }
        keys[j] = k;
        idx[j] = x;
    }
}
