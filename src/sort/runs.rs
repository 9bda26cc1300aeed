//! The pieces of a sort spread over several parties (MPI ranks, or sorted runs of one rank):
//! elements made unique by their global index, exact splitting of several sorted sequences at
//! given global positions, and the merge of sorted runs. `src/ranks/sort.rs` builds
//! `sm_mpi_argsort` from them; docs/DESIGN.md ("sm_mpi_argsort") explains the algorithm.

use super::keys::{Key, Raw, Source};
use super::Dtype;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// An element of the global order: its key widened by keys.rs (numpy's order as unsigned
/// integers), then its global index. No two elements are equal, so every position of the sorted
/// order has exactly one element, and ties between equal keys fall in input order (stable).
pub type Elem = (u64, u64);

/// A pointer shared by threads that each use their own part of what it points to.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
// SAFETY: only used for disjoint parts (merge_runs gives each thread its own).
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

/// Code generic over the key type, run for a dtype (`dispatch`).
pub trait Visit {
    type Out;
    fn visit<T: Copy + Send + Sync + 'static>(self) -> Self::Out
    where
        Raw<T>: Source;
}

/// Runs `v` for the element type of `dtype`.
pub fn dispatch<V: Visit>(dtype: Dtype, v: V) -> V::Out {
    match dtype {
        Dtype::F64 => v.visit::<f64>(),
        Dtype::F32 => v.visit::<f32>(),
        Dtype::I64 => v.visit::<i64>(),
        Dtype::I32 => v.visit::<i32>(),
        Dtype::I16 => v.visit::<i16>(),
        Dtype::I8 => v.visit::<i8>(),
        Dtype::U64 => v.visit::<u64>(),
        Dtype::U32 => v.visit::<u32>(),
        Dtype::U16 => v.visit::<u16>(),
        Dtype::U8 => v.visit::<u8>(),
    }
}

/// Key `i` of the array of `T` at `keys`, widened.
///
/// # Safety
/// `keys` must hold more than `i` elements of `T` (any alignment).
#[inline(always)]
pub unsafe fn wide<T>(keys: *const u8, i: usize) -> u64
where
    Raw<T>: Source,
{
    // SAFETY: in bounds by the caller's contract.
    unsafe { Raw::<T> { ptr: keys.cast() }.key(i).wide() }
}

/// One party's side of exact splitting: for every target position, the range `[lo, hi)` of its
/// sorted sequence not yet known to fall before (below `lo`) or after (from `hi`) the target.
/// Every party runs the same rounds on the same pivots, so all finish together:
///
/// 1. each party samples, per open target, `SAMPLES` elements spread over its open range, each
///    weighted by the share of the range it stands for (`proposals`);
/// 2. the pivots of a target are `PIVOTS` weighted quantiles of every party's samples
///    (`choose_pivots`, the same everywhere);
/// 3. each party counts its elements below every pivot (`below`), and the counts are summed;
/// 4. with the totals below the pivots, every party narrows its range to lie between the two
///    pivots that bracket the target (`update`).
///
/// A target is done when a pivot has exactly the target's number of elements below it (or, the
/// pivot included, up to it); the party's cut is then its count. Each round divides the open
/// ranges by about PIVOTS, so a few rounds suffice (3 or 4 for 10^7 elements), each a pair of
/// small sums over the parties; with one sample and one pivot it is the weighted-median
/// selection, which settles at least a quarter of the open elements per round.
pub struct Side {
    lo: Vec<usize>,
    hi: Vec<usize>,
    done: Vec<bool>,
    /// Samples per target per round, and pivots per target per round.
    samples: usize,
    pivots: usize,
}

impl Side {
    /// A sequence of `len` elements, to be cut at the global `targets` of `total` elements, with
    /// `samples` proposals and `pivots` pivots per target per round (both at least 1, and the
    /// same on every party).
    pub fn new(len: usize, targets: &[u64], total: u64, samples: usize, pivots: usize) -> Side {
        let mut side = Side {
            lo: vec![0; targets.len()],
            hi: vec![len; targets.len()],
            done: vec![false; targets.len()],
            samples: samples.max(1),
            pivots: pivots.max(1),
        };
        for (t, &target) in targets.iter().enumerate() {
            if target == 0 || target >= total {
                let cut = if target == 0 { 0 } else { len };
                (side.lo[t], side.hi[t], side.done[t]) = (cut, cut, true);
            }
        }
        side
    }

    pub fn finished(&self) -> bool {
        self.done.iter().all(|&d| d)
    }

    /// Per target, how many of this party's elements come before it (once `finished`).
    pub fn cuts(&self) -> &[usize] {
        &self.lo
    }

    /// `samples` entries per target: elements of the open range with their weights (weight 0:
    /// an empty entry).
    pub fn proposals(&self, elem: &impl Fn(usize) -> Elem) -> Vec<(Elem, u64)> {
        let s = self.samples;
        let mut out = vec![((0, 0), 0); self.lo.len() * s];
        for t in 0..self.lo.len() {
            let (lo, hi) = (self.lo[t], self.hi[t]);
            if self.done[t] || lo == hi {
                continue;
            }
            let len = hi - lo;
            if len <= s {
                for (k, slot) in out[t * s..t * s + len].iter_mut().enumerate() {
                    *slot = (elem(lo + k), 1);
                }
            } else {
                // Interior points, so that every party's range is cut into samples + 1 parts.
                let weight = len.div_ceil(s) as u64;
                for k in 0..s {
                    out[t * s + k] = (elem(lo + (k + 1) * len / (s + 1)), weight);
                }
            }
        }
        out
    }

    /// Per target and pivot, how many of this party's elements are below the pivot. Everything
    /// below `lo` is below every pivot and nothing from `hi` is (pivots are open elements), so
    /// the searches stay inside the open range.
    pub fn below(&self, pivots: &[Option<Elem>], elem: &impl Fn(usize) -> Elem) -> Vec<u64> {
        let m = self.pivots;
        pivots
            .iter()
            .enumerate()
            .map(|(j, pivot)| match pivot {
                None => 0,
                Some(p) => {
                    let t = j / m;
                    let (mut lo, mut hi) = (self.lo[t], self.hi[t]);
                    while lo < hi {
                        let mid = lo + (hi - lo) / 2;
                        if elem(mid) < *p {
                            lo = mid + 1;
                        } else {
                            hi = mid;
                        }
                    }
                    lo as u64
                }
            })
            .collect()
    }

    /// Narrows every range with the pivots (`pivots` per target, ascending), this party's counts
    /// below them and the totals over the parties.
    pub fn update(
        &mut self,
        pivots: &[Option<Elem>],
        mine: &[u64],
        totals: &[u64],
        targets: &[u64],
        elem: &impl Fn(usize) -> Elem,
    ) {
        let m = self.pivots;
        for (t, &target) in targets.iter().enumerate() {
            if self.done[t] {
                continue;
            }
            let at = |k: usize| t * m + k;
            let live = (0..m).filter(|&k| pivots[at(k)].is_some());
            // The last pivot with fewer elements below it than the target (it comes before the
            // target), and the first with more (it and everything after come after).
            let mut before = None;
            let mut after = None;
            for k in live {
                let total = totals[at(k)];
                if total == target {
                    let cut = mine[at(k)] as usize;
                    (self.lo[t], self.hi[t], self.done[t]) = (cut, cut, true);
                    break;
                } else if total < target {
                    before = Some(k);
                } else if after.is_none() {
                    after = Some(k);
                }
            }
            if self.done[t] {
                continue;
            }
            if let Some(k) = after {
                self.hi[t] = mine[at(k)] as usize;
            }
            if let Some(k) = before {
                let p = pivots[at(k)].expect("a live pivot");
                let below = mine[at(k)] as usize;
                // The pivot comes before the target too; it is this party's if its next element.
                let upto = below + usize::from(below < self.hi[t] && elem(below) == p);
                if totals[at(k)] + 1 == target {
                    (self.lo[t], self.hi[t], self.done[t]) = (upto, upto, true);
                } else {
                    self.lo[t] = upto;
                }
            }
        }
    }
}

/// The pivots of every target (`pivots` per target, ascending; None where fewer): weighted
/// quantiles of every party's samples (`proposals[party]`, `samples` per target).
pub fn choose_pivots(
    proposals: &[Vec<(Elem, u64)>],
    ntargets: usize,
    samples: usize,
    pivots: usize,
) -> Vec<Option<Elem>> {
    let mut out = vec![None; ntargets * pivots];
    for t in 0..ntargets {
        let mut open: Vec<(Elem, u64)> = proposals
            .iter()
            .flat_map(|p| p[t * samples..(t + 1) * samples].iter().copied())
            .filter(|&(_, w)| w > 0)
            .collect();
        if open.is_empty() {
            continue;
        }
        open.sort_unstable();
        let total: u128 = open.iter().map(|&(_, w)| w as u128).sum();
        let (mut seen, mut next, mut k) = (0u128, 1u128, 0usize);
        for (e, w) in open {
            seen += w as u128;
            // The first sample at or past each quantile j / (pivots + 1) of the weight.
            let mut taken = false;
            while next <= pivots as u128 && seen * (pivots as u128 + 1) >= next * total {
                next += 1;
                if !taken {
                    out[t * pivots + k] = Some(e);
                    k += 1;
                    taken = true;
                }
            }
            if next > pivots as u128 {
                break;
            }
        }
    }
    out
}

/// Sums position by position over the parties.
pub fn totals(per_party: &[Vec<u64>]) -> Vec<u64> {
    let len = per_party.first().map_or(0, |p| p.len());
    (0..len)
        .map(|j| per_party.iter().map(|p| p[j]).sum())
        .collect()
}

/// Cuts several sorted sequences of one process at the global `targets`: `cuts[s][t]` elements
/// of sequence `s` come before position `targets[t]` of their merged order. `width`: samples and
/// pivots per target and round.
pub fn split_local(
    lens: &[usize],
    targets: &[u64],
    width: usize,
    elem: impl Fn(usize, usize) -> Elem,
) -> Vec<Vec<usize>> {
    let total: u64 = lens.iter().map(|&l| l as u64).sum();
    let (samples, pivots) = (width, width);
    let mut sides: Vec<Side> = lens
        .iter()
        .map(|&l| Side::new(l, targets, total, samples, pivots))
        .collect();
    while !sides[0].finished() {
        let proposals: Vec<_> = (0..lens.len())
            .map(|s| sides[s].proposals(&|i| elem(s, i)))
            .collect();
        let pivots = choose_pivots(&proposals, targets.len(), samples, pivots);
        let below: Vec<_> = (0..lens.len())
            .map(|s| sides[s].below(&pivots, &|i| elem(s, i)))
            .collect();
        let sums = totals(&below);
        for (s, side) in sides.iter_mut().enumerate() {
            side.update(&pivots, &below[s], &sums, targets, &|i| elem(s, i));
        }
    }
    sides.into_iter().map(|s| s.cuts().to_vec()).collect()
}

/// Merges sorted runs into `out`: the runs are `[starts[r], ends[r])` of the arrays `keys` (of
/// `T`) and `index` (global indices), each sorted by `Elem`; `out` gets the global indices in the
/// merged order (`out.len()` is the sum of the runs' lengths).
///
/// # Safety
/// `keys` must hold every position of every run.
pub unsafe fn merge<T>(
    keys: *const u8,
    index: &[u64],
    starts: &[usize],
    ends: &[usize],
    out: &mut [i64],
) where
    Raw<T>: Source,
{
    let elem = |i: usize| {
        // SAFETY: positions inside the runs, which `keys` holds (the caller's contract).
        (unsafe { wide::<T>(keys, i) }, index[i])
    };
    let mut at: Vec<usize> = starts.to_vec();
    let live: Vec<usize> = (0..starts.len()).filter(|&r| starts[r] < ends[r]).collect();
    let mut k = 0;
    if live.len() <= 8 {
        // Few runs: the smallest head by a scan, heads cached.
        let mut heads: Vec<(Elem, usize)> = live.iter().map(|&r| (elem(at[r]), r)).collect();
        while !heads.is_empty() {
            let mut best = 0;
            for h in 1..heads.len() {
                if heads[h].0 < heads[best].0 {
                    best = h;
                }
            }
            let r = heads[best].1;
            out[k] = heads[best].0 .1 as i64;
            k += 1;
            at[r] += 1;
            if at[r] < ends[r] {
                heads[best].0 = elem(at[r]);
            } else {
                heads.swap_remove(best);
            }
        }
    } else {
        let mut heap: BinaryHeap<Reverse<(Elem, usize)>> =
            live.iter().map(|&r| Reverse((elem(at[r]), r))).collect();
        while let Some(Reverse((e, r))) = heap.pop() {
            out[k] = e.1 as i64;
            k += 1;
            at[r] += 1;
            if at[r] < ends[r] {
                heap.push(Reverse((elem(at[r]), r)));
            }
        }
    }
    debug_assert_eq!(k, out.len());
}

/// Merges the sorted runs `[bounds[r], bounds[r + 1])` of `keys` (`dtype`) and `index` into
/// `out` on `threads` threads: the output is cut into equal parts by exact splitting of the runs,
/// and each thread merges one part (the calling thread too; a part whose thread cannot be
/// started is merged on the calling thread, so the merge never fails).
///
/// # Safety
/// `keys` must hold `index.len()` elements of `dtype`; `out.len() == index.len()`.
pub unsafe fn merge_runs(
    keys: *const u8,
    dtype: Dtype,
    index: &[u64],
    bounds: &[usize],
    out: &mut [i64],
    threads: usize,
) {
    struct Merge<'a> {
        keys: usize,
        index: &'a [u64],
        bounds: &'a [usize],
        out: &'a mut [i64],
        threads: usize,
    }
    impl Visit for Merge<'_> {
        type Out = ();
        fn visit<T: Copy + Send + Sync + 'static>(self)
        where
            Raw<T>: Source,
        {
            let keys = self.keys as *const u8;
            let n = self.out.len();
            let runs = self.bounds.len() - 1;
            let lens: Vec<usize> = self.bounds.windows(2).map(|w| w[1] - w[0]).collect();
            let parts = if n < (1 << 16) {
                1
            } else {
                self.threads.max(1)
            };
            let targets: Vec<u64> = (1..parts).map(|p| (n * p / parts) as u64).collect();
            let bounds = self.bounds;
            let index = self.index;
            // SAFETY: positions inside the runs.
            let elem = |s: usize, i: usize| {
                let at = bounds[s] + i;
                // SAFETY: as said above.
                (unsafe { wide::<T>(keys, at) }, index[at])
            };
            let cuts = split_local(&lens, &targets, 8, elem);
            // Part p covers run s from cut p-1 to cut p (0 and the run's end at the edges).
            let cut = |s: usize, p: usize| -> usize {
                bounds[s]
                    + match p {
                        0 => 0,
                        p if p == parts => lens[s],
                        p => cuts[s][p - 1],
                    }
            };
            let out = Shared(self.out.as_mut_ptr());
            let mut at = 0;
            let mut pieces = Vec::with_capacity(parts);
            for p in 0..parts {
                let starts: Vec<usize> = (0..runs).map(|s| cut(s, p)).collect();
                let ends: Vec<usize> = (0..runs).map(|s| cut(s, p + 1)).collect();
                let len: usize = (0..runs).map(|s| ends[s] - starts[s]).sum();
                pieces.push((starts, ends, at, len));
                at += len;
            }
            debug_assert_eq!(at, n);
            let keys = Shared(keys as *mut u8);
            let run = move |starts: &[usize], ends: &[usize], at: usize, len: usize| {
                let (keys, out) = (keys, out);
                // SAFETY: the parts are disjoint pieces of out; the runs are inside the arrays
                // (merge_runs' contract).
                unsafe {
                    let piece = std::slice::from_raw_parts_mut(out.0.add(at), len);
                    merge::<T>(keys.0, index, starts, ends, piece)
                }
            };
            std::thread::scope(|scope| {
                let (first, others) = pieces.split_first().expect("one part at least");
                let mut threads = Vec::new();
                for (starts, ends, at, len) in others {
                    let spawned = std::thread::Builder::new()
                        .name("sm-merge".into())
                        .spawn_scoped(scope, move || run(starts, ends, *at, *len));
                    match spawned {
                        Ok(t) => threads.push(t),
                        // No thread to be had: this part is merged here, the merge never fails.
                        Err(_) => run(starts, ends, *at, *len),
                    }
                }
                run(&first.0, &first.1, first.2, first.3);
                for t in threads {
                    if let Err(panic) = t.join() {
                        std::panic::resume_unwind(panic);
                    }
                }
            });
        }
    }
    dispatch(
        dtype,
        Merge {
            keys: keys as usize,
            index,
            bounds,
            out,
            threads,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn split_local_cuts_at_exact_positions_whatever_the_keys() {
        let mut seed = 5;
        for distinct in [1u64, 2, 7, 1 << 40] {
            for nruns in [1usize, 2, 3, 4, 5, 6] {
                let runs: Vec<Vec<Elem>> = (0..nruns)
                    .map(|r| {
                        let len = if r == 1 {
                            0
                        } else {
                            (lcg(&mut seed) % 300) as usize
                        };
                        let mut v: Vec<Elem> = (0..len)
                            .map(|i| (lcg(&mut seed) % distinct, (r * 1000 + i) as u64))
                            .collect();
                        v.sort_unstable();
                        v
                    })
                    .collect();
                let lens: Vec<usize> = runs.iter().map(|r| r.len()).collect();
                let total: usize = lens.iter().sum();
                let mut all: Vec<Elem> = runs.concat();
                all.sort_unstable();
                let targets: Vec<u64> = (0..=total as u64).collect();
                let width = [1, 2, 16][nruns % 3];
                let cuts = split_local(&lens, &targets, width, |s, i| runs[s][i]);
                for (t, &target) in targets.iter().enumerate() {
                    let got: usize = (0..nruns).map(|s| cuts[s][t]).sum();
                    assert_eq!(got as u64, target);
                    for s in 0..nruns {
                        let c = cuts[s][t];
                        // Everything cut off before is below the target's element, the rest not.
                        if c > 0 && target < total as u64 {
                            assert!(runs[s][c - 1] < all[target as usize]);
                        }
                        if c < lens[s] && target > 0 {
                            assert!(runs[s][c] > all[target as usize - 1]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn merge_runs_gives_the_merged_order_on_any_thread_count() {
        let mut seed = 9;
        for nruns in [1usize, 2, 4, 9, 13] {
            let mut keys: Vec<i32> = Vec::new();
            let mut index: Vec<u64> = Vec::new();
            let mut bounds = vec![0];
            for r in 0..nruns {
                let len = if r == 1 {
                    0
                } else {
                    20_000 + (lcg(&mut seed) % 5000) as usize
                };
                let mut run: Vec<(i32, u64)> = (0..len)
                    .map(|i| ((lcg(&mut seed) % 100) as i32 - 50, (r * 100_000 + i) as u64))
                    .collect();
                run.sort_unstable();
                keys.extend(run.iter().map(|e| e.0));
                index.extend(run.iter().map(|e| e.1));
                bounds.push(keys.len());
            }
            let mut expect: Vec<(i32, u64)> =
                keys.iter().copied().zip(index.iter().copied()).collect();
            expect.sort_unstable();
            for threads in [1, 2, 3] {
                let mut out = vec![-1i64; keys.len()];
                // SAFETY: keys has index.len() i32 elements.
                unsafe {
                    merge_runs(
                        keys.as_ptr().cast(),
                        Dtype::I32,
                        &index,
                        &bounds,
                        &mut out,
                        threads,
                    )
                };
                let want: Vec<i64> = expect.iter().map(|e| e.1 as i64).collect();
                assert_eq!(out, want, "{nruns} runs, {threads} threads");
            }
        }
    }
}
