//! `sm_mpi_argsort` and `sm_mpi_permute`: a stable argsort of an array spread over the ranks, and
//! the gather by global index that reorders payloads with its result. The algorithm and its
//! memory bound are in docs/DESIGN.md ("sm_mpi_argsort"); in short:
//!
//! 1. the collective check (one allgather): same operation, dtype or itemsize; every refusal;
//! 2. each rank argsorts its keys with `sm_argsort`'s engine on its pool's thread count, into the
//!    caller's `out` (scratch until the end), then allocates its exchange buffers; one allgather
//!    says whether every rank could;
//! 3. exact splitting (sort/runs.rs): O(log n) rounds of two small allgathers find, on every
//!    rank, how many of its sorted elements go to each rank, so that rank r receives exactly the
//!    positions [offset_r, offset_r + nlocal_r) of the global order;
//! 4. two alltoallv (keys, global indices), then a merge of the received sorted runs, on the
//!    pool's thread count, writes the global indices into `out`.
//!
//! Elements are (key widened to numpy's order, global index): unique, so splitting is exact
//! whatever the keys (all equal included), and ties keep input order (stable).

use super::check::by_value;
use super::link::{starts, word, words_to_bytes, Link};
use super::transport::sm_transport;
use crate::sort::buffer::Buffer;
use crate::sort::keys::{Raw, Source};
use crate::sort::runs::{self, choose_pivots, dispatch, wide, Elem, Side, Visit};
use crate::sort::{self, Dtype};
use crate::status::{Error, Result, Status};
use std::ffi::CStr;

/// One rank's `sm_mpi_argsort`, its arguments as given (the checks happen collectively).
pub struct RankArgsort<'a> {
    pub call: &'a str,
    /// The pool's thread count, or why the pool cannot be used.
    pub threads: Result<usize>,
    pub keys: *const u8,
    pub n: usize,
    /// The raw dtype, and what it names (or why it names nothing).
    pub dtype_raw: i32,
    pub dtype: Result<Dtype>,
    pub out: *mut i64,
}

/// One rank's `sm_mpi_permute`.
pub struct RankPermute<'a> {
    pub call: &'a str,
    pub threads: Result<usize>,
    pub src: *const u8,
    pub n: usize,
    pub itemsize: usize,
    pub index: *const i64,
    pub nout: usize,
    pub dst: *mut u8,
}

const MAGIC: u64 = 0x534d_5f53_4f52_0001;
const REFUSAL_BYTES: usize = 512;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Argsort = 1,
    Permute = 2,
}

impl Op {
    fn name(v: u64) -> &'static str {
        match v {
            1 => "sm_mpi_argsort",
            2 => "sm_mpi_permute",
            _ => "another call",
        }
    }
}

/// A message of at most REFUSAL_BYTES, zero-padded, after `words`.
fn record(words: &[u64], text: &str) -> Vec<u8> {
    let mut bytes = words_to_bytes(words);
    let mut t = text.as_bytes().to_vec();
    t.truncate(REFUSAL_BYTES);
    t.resize(REFUSAL_BYTES, 0);
    bytes.extend_from_slice(&t);
    bytes
}

fn text_of(rec: &[u8], words: usize) -> String {
    let t = &rec[words * 8..];
    let end = t.iter().position(|&b| b == 0).unwrap_or(t.len());
    String::from_utf8_lossy(&t[..end]).into_owned()
}

/// The collective check: every rank's operation, `what` (dtype or itemsize) and element count,
/// and its refusal. The same Err on every rank when a rank refused or they disagree; else every
/// rank's element count.
fn agree(
    link: &Link,
    call: &str,
    op: Op,
    what: (&str, u64),
    n: usize,
    refusal: Option<Error>,
) -> Result<Vec<u64>> {
    const WORDS: usize = 6;
    let words = [
        MAGIC,
        op as u64,
        what.1,
        n as u64,
        refusal.is_some() as u64,
        refusal.as_ref().map_or(0, |e| e.status as i32 as u64),
    ];
    let text = refusal.as_ref().map_or("", |e| e.message.as_str());
    let all = link.allgather(&record(&words, text))?;
    let recs: Vec<&[u8]> = all.chunks(WORDS * 8 + REFUSAL_BYTES).collect();
    let field = |r: usize, i: usize| word(recs[r], i);
    let nranks = recs.len();
    if let Some(r) = (0..nranks).find(|&r| field(r, 0) != MAGIC) {
        return Err(Error::invalid(format!(
            "{call}: rank {r} runs another version of sharedmem (or another collective call); \
             every rank must load the same library and make the same call"
        )));
    }
    if (0..nranks).any(|r| field(r, 1) != op as u64) {
        return Err(Error::invalid(format!(
            "{call}: the ranks make different calls: {}",
            by_value(nranks, |r| Op::name(field(r, 1)).to_string())
        )));
    }
    if let Some(first) = (0..nranks).find(|&r| field(r, 4) != 0) {
        let all: Vec<String> = (0..nranks)
            .filter(|&r| field(r, 4) != 0)
            .map(|r| format!("rank {r}: {}", text_of(recs[r], WORDS)))
            .collect();
        let status = Status::from_raw(field(first, 5) as i64).unwrap_or(Status::SM_ERR_INVALID);
        return Err(Error::new(status, format!("{call}: {}", all.join("; "))));
    }
    if (0..nranks).any(|r| field(r, 2) != field(0, 2)) {
        let show = |v: u64| match op {
            Op::Argsort => dtype_name(v as i32),
            Op::Permute => v.to_string(),
        };
        return Err(Error::invalid(format!(
            "{call}: {} differs between ranks: {}; every rank must pass the same",
            what.0,
            by_value(nranks, |r| show(field(r, 2)))
        )));
    }
    Ok((0..nranks).map(|r| field(r, 3)).collect())
}

fn dtype_name(raw: i32) -> String {
    const NAMES: [&str; 10] = [
        "SM_DTYPE_F64",
        "SM_DTYPE_F32",
        "SM_DTYPE_I64",
        "SM_DTYPE_I32",
        "SM_DTYPE_I16",
        "SM_DTYPE_I8",
        "SM_DTYPE_U64",
        "SM_DTYPE_U32",
        "SM_DTYPE_U16",
        "SM_DTYPE_U8",
    ];
    usize::try_from(raw)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("dtype {raw}"), |n| n.to_string())
}

/// Whether every rank's step succeeded: the value on success everywhere, else on every rank the
/// first failing rank's status and every failure's message.
fn all_ok<T>(link: &Link, call: &str, mine: Result<T>) -> Result<T> {
    let words = [
        mine.is_err() as u64,
        mine.as_ref().err().map_or(0, |e| e.status as i32 as u64),
    ];
    let text = mine.as_ref().err().map_or("", |e| e.message.as_str());
    let all = link.allgather(&record(&words, text))?;
    let recs: Vec<&[u8]> = all.chunks(2 * 8 + REFUSAL_BYTES).collect();
    let failed: Vec<usize> = (0..recs.len()).filter(|&r| word(recs[r], 0) != 0).collect();
    match failed.first() {
        None => mine,
        Some(&first) => {
            let status =
                Status::from_raw(word(recs[first], 1) as i64).unwrap_or(Status::SM_ERR_STATE);
            let said: Vec<String> = failed
                .iter()
                .map(|&r| format!("rank {r}: {}", text_of(recs[r], 2)))
                .collect();
            Err(Error::new(status, format!("{call}: {}", said.join("; "))))
        }
    }
}

/// The transport's own refusal (the MPI thread level, say), if any.
fn transport_refusal(t: &sm_transport) -> Option<Error> {
    (!t.refusal.is_null()).then(|| {
        // SAFETY: a non-NULL refusal is a NUL-terminated message (the transport's contract).
        Error::state(unsafe { CStr::from_ptr(t.refusal) }.to_string_lossy())
    })
}

fn overlap(a: usize, alen: usize, b: usize, blen: usize) -> bool {
    alen > 0 && blen > 0 && a < b.saturating_add(blen) && b < a.saturating_add(alen)
}

/// Every rank's offset in the global array, and the total (`counts.len() + 1` entries).
fn offsets(counts: &[u64]) -> Vec<u64> {
    let mut at = vec![0u64];
    for c in counts {
        at.push(at.last().unwrap() + c);
    }
    at
}

fn from_bytes(bytes: &[u8]) -> Vec<u64> {
    (0..bytes.len() / 8).map(|i| word(bytes, i)).collect()
}

/// Runs `f(lo, hi)` over `[0, n)` in `threads` contiguous parts (on the calling thread alone for
/// small n).
fn in_parts(n: usize, threads: usize, f: impl Fn(usize, usize) + Sync) {
    let parts = if n < (1 << 16) { 1 } else { threads.max(1) };
    if parts == 1 {
        f(0, n);
        return;
    }
    std::thread::scope(|scope| {
        for p in 0..parts {
            let f = &f;
            scope.spawn(move || f(n * p / parts, n * (p + 1) / parts));
        }
    });
}

/// A pointer shared by the threads of `in_parts`, each writing its own part.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
// SAFETY: the parts written through it are disjoint (in_parts gives each thread its own range).
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

/// This rank's side of `sm_mpi_argsort` (collective): SM_OK, or the same error on every rank.
pub fn argsort(t: &sm_transport, a: &RankArgsort) -> Result<Status> {
    let call = a.call;
    let link = super::open(t, call)?;
    let refusal = argsort_refusal(t, a);
    let counts = agree(
        &link,
        call,
        Op::Argsort,
        ("dtype", a.dtype_raw as i64 as u64),
        a.n,
        refusal,
    )?;
    let (dtype, threads) = match (&a.dtype, &a.threads) {
        (Ok(d), Ok(t)) => (*d, *t),
        _ => unreachable!("a rank with a bad dtype or pool refused"),
    };
    let me = link.rank();
    let off = offsets(&counts);
    let total = *off.last().unwrap();
    if total == 0 {
        return Ok(Status::SM_OK);
    }
    let (n, ks) = (a.n, dtype.size());
    let mut clock = Phases::start();
    let mut bufs = all_ok(&link, call, {
        // SAFETY: keys has n elements of dtype and out n i64, not overlapping (checked by
        // argsort_refusal); the sort writes a permutation of [0, n) into out.
        let sorted = unsafe { sort::argsort(a.keys, n, dtype, a.out, threads) };
        sorted.and_then(|_| Exchange::new(n, ks))
    })?;
    // SAFETY: out has n elements, written by the sort above (NULL only when n = 0).
    let local: &[i64] = if n == 0 {
        &[]
    } else {
        // SAFETY: as said above.
        unsafe { std::slice::from_raw_parts(a.out, n) }
    };
    let base = off[me];

    // Exact splitting: rank d receives the global positions [off[d], off[d + 1]).
    let targets: Vec<u64> = off[1..counts.len()].to_vec();
    clock.lap("local sort");
    let cuts = split_across_ranks(&link, dtype, a.keys, local, base, &targets, total)?;
    clock.lap("splitting");
    let mut bounds = vec![0usize];
    bounds.extend_from_slice(&cuts);
    bounds.push(n);
    let everyone = from_bytes(&link.allgather(&words_to_bytes(
        &bounds.iter().map(|&b| b as u64).collect::<Vec<_>>(),
    ))?);
    let nranks = counts.len();
    let bound_of = |r: usize, d: usize| everyone[r * (nranks + 1) + d] as usize;
    let sends: Vec<usize> = (0..nranks).map(|d| bounds[d + 1] - bounds[d]).collect();
    let recvs: Vec<usize> = (0..nranks)
        .map(|r| bound_of(r, me + 1) - bound_of(r, me))
        .collect();
    // Every rank checks every rank's share from the same gathered bounds, so that a broken
    // split (a bug) fails every rank alike instead of leaving some waiting in the exchange.
    for (d, &count) in counts.iter().enumerate() {
        let received: usize = (0..nranks)
            .map(|r| bound_of(r, d + 1) - bound_of(r, d))
            .sum();
        if received as u64 != count {
            return Err(Error::new(
                Status::SM_ERR_PANIC,
                format!(
                    "{call}: internal error in sharedmem (please report): rank {d} would \
                     receive {received} elements for its {count}"
                ),
            ));
        }
    }

    // Pack in sorted order: the part for rank d is contiguous, from bounds[d].
    pack(dtype, a.keys, local, base, &mut bufs, threads);
    clock.lap("pack");
    let bytes =
        |counts: &[usize], size: usize| -> Vec<usize> { counts.iter().map(|c| c * size).collect() };
    link.alltoallv(
        bufs.send_keys.as_bytes(),
        &bytes(&sends, ks),
        bufs.recv_keys.as_bytes_mut(),
        &bytes(&recvs, ks),
    )?;
    link.alltoallv(
        bufs.send_index.as_bytes(),
        &bytes(&sends, 8),
        bufs.recv_index.as_bytes_mut(),
        &bytes(&recvs, 8),
    )?;
    drop((bufs.send_keys, bufs.send_index));
    clock.lap("exchange");

    // Merge the received runs (one per sending rank, each sorted) into out.
    let mut run_bounds = starts(&recvs);
    run_bounds.push(n);
    // SAFETY: out has n elements, no longer read (everything was packed and sent).
    let out: &mut [i64] = if n == 0 {
        &mut []
    } else {
        // SAFETY: as said above.
        unsafe { std::slice::from_raw_parts_mut(a.out, n) }
    };
    // SAFETY: recv_keys holds n keys of dtype, recv_index n indices.
    unsafe {
        runs::merge_runs(
            bufs.recv_keys.as_bytes().as_ptr(),
            dtype,
            bufs.recv_index.as_slice(),
            &run_bounds,
            out,
            threads,
        )
    };
    clock.lap("merge");
    clock.report(call, me, n);
    Ok(Status::SM_OK)
}

/// The time of each phase of one call, said on stderr under SM_VERBOSE (off: nothing measured).
struct Phases {
    last: Option<std::time::Instant>,
    laps: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn start() -> Phases {
        Phases {
            last: crate::config::verbose().then(std::time::Instant::now),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, what: &'static str) {
        if let Some(last) = self.last {
            let now = std::time::Instant::now();
            self.laps.push((what, now - last));
            self.last = Some(now);
        }
    }

    fn report(&self, call: &str, rank: usize, n: usize) {
        if self.last.is_some() {
            let laps: Vec<String> = self
                .laps
                .iter()
                .map(|(what, d)| format!("{what} {:.1} ms", d.as_secs_f64() * 1e3))
                .collect();
            eprintln!(
                "sharedmem: {call}: rank {rank}, {n} elements: {}",
                laps.join(", ")
            );
        }
    }
}

fn argsort_refusal(t: &sm_transport, a: &RankArgsort) -> Option<Error> {
    if let Some(e) = transport_refusal(t) {
        return Some(e);
    }
    if let Err(e) = &a.threads {
        return Some(e.clone());
    }
    let dtype = match &a.dtype {
        Ok(d) => *d,
        Err(e) => return Some(e.clone()),
    };
    if a.n > 0 && (a.keys.is_null() || a.out.is_null()) {
        let which = if a.keys.is_null() { "keys" } else { "out" };
        return Some(Error::invalid(format!(
            "{which} is NULL with nlocal = {}",
            a.n
        )));
    }
    let (Some(kb), Some(ob)) = (a.n.checked_mul(dtype.size()), a.n.checked_mul(8)) else {
        return Some(Error::invalid(format!("nlocal = {} overflows size_t", a.n)));
    };
    if a.n as u64 > i64::MAX as u64 / 2 {
        return Some(Error::invalid(format!(
            "nlocal = {} does not fit int64_t indices",
            a.n
        )));
    }
    if overlap(a.keys as usize, kb, a.out as usize, ob) {
        return Some(Error::invalid(
            "out overlaps keys; give it an array of its own",
        ));
    }
    None
}

/// The exchange buffers of one rank (2 n (keysize + 8) bytes), allocated before the exchange
/// so that a rank short of memory fails every rank before anything moves.
struct Exchange {
    send_keys: Buffer<u8>,
    send_index: Buffer<u64>,
    recv_keys: Buffer<u8>,
    recv_index: Buffer<u64>,
}

impl Exchange {
    fn new(n: usize, ks: usize) -> Result<Exchange> {
        Ok(Exchange {
            send_keys: Buffer::new(n * ks)?,
            send_index: Buffer::new(n)?,
            recv_keys: Buffer::new(n * ks)?,
            recv_index: Buffer::new(n)?,
        })
    }
}

/// Copies the keys in sorted order (`local` is the local sorting permutation) and their global
/// indices into the send buffers, in parts on `threads` threads.
fn pack(
    dtype: Dtype,
    keys: *const u8,
    local: &[i64],
    base: u64,
    bufs: &mut Exchange,
    threads: usize,
) {
    struct Pack<'a> {
        keys: usize,
        local: &'a [i64],
        base: u64,
        send_keys: Shared<u8>,
        send_index: Shared<u64>,
        threads: usize,
    }
    impl Visit for Pack<'_> {
        type Out = ();
        fn visit<T: Copy + Send + Sync + 'static>(self)
        where
            Raw<T>: Source,
        {
            let (keys, local, base) = (Shared(self.keys as *mut T), self.local, self.base);
            let (sk, si) = (self.send_keys, self.send_index);
            in_parts(local.len(), self.threads, |lo, hi| {
                let (keys, sk, si) = (keys, sk, si);
                let keys = keys.0 as *const T;
                for (j, &i) in local.iter().enumerate().take(hi).skip(lo) {
                    // SAFETY: i < n indexes keys; j < n indexes both send buffers (n keys of T,
                    // n indices); the parts are disjoint.
                    unsafe {
                        let k = keys.add(i as usize).read_unaligned();
                        (sk.0 as *mut T).add(j).write_unaligned(k);
                        si.0.add(j).write(base + i as u64);
                    }
                }
            });
        }
    }
    dispatch(
        dtype,
        Pack {
            keys: keys as usize,
            local,
            base,
            send_keys: Shared(bufs.send_keys.as_bytes_mut().as_mut_ptr()),
            send_index: Shared(bufs.send_index.as_mut_slice().as_mut_ptr()),
            threads,
        },
    );
}

/// Exact splitting across the ranks (sort/runs.rs's `Side`, the sums by allgather): how many of
/// this rank's sorted elements come before each of `targets`.
fn split_across_ranks(
    link: &Link,
    dtype: Dtype,
    keys: *const u8,
    local: &[i64],
    base: u64,
    targets: &[u64],
    total: u64,
) -> Result<Vec<usize>> {
    struct Split<'a> {
        link: &'a Link<'a>,
        keys: usize,
        local: &'a [i64],
        base: u64,
        targets: &'a [u64],
        total: u64,
    }
    impl Visit for Split<'_> {
        type Out = Result<Vec<usize>>;
        fn visit<T: Copy + Send + Sync + 'static>(self) -> Result<Vec<usize>>
        where
            Raw<T>: Source,
        {
            let (keys, local, base) = (self.keys as *const u8, self.local, self.base);
            // SAFETY: local holds indices of keys (the local sort's permutation).
            let elem = |j: usize| -> Elem {
                let i = local[j] as usize;
                // SAFETY: as said above.
                (unsafe { wide::<T>(keys, i) }, base + i as u64)
            };
            let nt = self.targets.len();
            let nranks = self.link.nranks();
            // Samples and pivots per target and round: 16 each for up to 16 ranks, fewer above
            // (the gathers grow as nranks^2 x samples), down to the weighted median.
            let width = (256 / nranks.max(1)).clamp(1, 16);
            let mut side = Side::new(local.len(), self.targets, self.total, width, width);
            while !side.finished() {
                let words: Vec<u64> = side
                    .proposals(&elem)
                    .iter()
                    .flat_map(|&((k, i), w)| [k, i, w])
                    .collect();
                let all = from_bytes(&self.link.allgather(&words_to_bytes(&words))?);
                let proposals: Vec<Vec<(Elem, u64)>> = all
                    .chunks(3 * nt * width)
                    .map(|p| p.chunks(3).map(|c| ((c[0], c[1]), c[2])).collect())
                    .collect();
                let pivots = choose_pivots(&proposals, nt, width, width);
                let below = side.below(&pivots, &elem);
                let all = from_bytes(&self.link.allgather(&words_to_bytes(&below))?);
                let per_rank: Vec<Vec<u64>> = all.chunks(nt * width).map(|c| c.to_vec()).collect();
                let totals = runs::totals(&per_rank);
                side.update(&pivots, &below, &totals, self.targets, &elem);
            }
            Ok(side.cuts().to_vec())
        }
    }
    dispatch(
        dtype,
        Split {
            link,
            keys: keys as usize,
            local,
            base,
            targets,
            total,
        },
    )
}

/// This rank's side of `sm_mpi_permute` (collective): SM_OK, or the same error on every rank.
pub fn permute(t: &sm_transport, p: &RankPermute) -> Result<Status> {
    let call = p.call;
    let link = super::open(t, call)?;
    let refusal = permute_refusal(t, p);
    let counts = agree(
        &link,
        call,
        Op::Permute,
        ("itemsize", p.itemsize as u64),
        p.n,
        refusal,
    )?;
    let threads = *p.threads.as_ref().expect("a rank with a bad pool refused");
    let (me, nranks, size) = (link.rank(), counts.len(), p.itemsize);
    let off = offsets(&counts);
    let total = *off.last().unwrap();
    // SAFETY: index has nout elements (the caller's contract; NULL only with nout = 0).
    let index: &[i64] = if p.nout == 0 {
        &[]
    } else {
        // SAFETY: as said above.
        unsafe { std::slice::from_raw_parts(p.index, p.nout) }
    };
    let owner = |g: i64| off[1..].partition_point(|&o| o <= g as u64);

    // Requests: every index, grouped by the rank that holds it.
    let (sends, mut req) = all_ok(&link, call, {
        let mut sends = vec![0usize; nranks];
        let mut bad = None;
        for (i, &g) in index.iter().enumerate() {
            if g < 0 || g as u64 >= total {
                bad = Some(Error::invalid(format!(
                    "index[{i}] = {g} is outside [0, {total}), the global array's range"
                )));
                break;
            }
            sends[owner(g)] += 1;
        }
        match bad {
            Some(e) => Err(e),
            None => Buffer::<u64>::new(p.nout).map(|b| (sends, b)),
        }
    })?;
    let mut cursor = starts(&sends);
    {
        let req = req.as_mut_slice();
        for &g in index {
            let o = owner(g);
            req[cursor[o]] = g as u64;
            cursor[o] += 1;
        }
    }
    let everyone = from_bytes(&link.allgather(&words_to_bytes(
        &sends.iter().map(|&c| c as u64).collect::<Vec<_>>(),
    ))?);
    let recvs: Vec<usize> = (0..nranks)
        .map(|r| everyone[r * nranks + me] as usize)
        .collect();
    let asked: usize = recvs.iter().sum();
    let (mut asked_for, mut answers, mut answered) = all_ok(&link, call, {
        let bytes = |n: usize| {
            n.checked_mul(size)
                .ok_or_else(|| Error::nomem(format!("{n} items of {size} bytes overflow size_t")))
        };
        (|| {
            Ok((
                Buffer::<u64>::new(asked)?,
                Buffer::<u8>::new(bytes(asked)?)?,
                Buffer::<u8>::new(bytes(p.nout)?)?,
            ))
        })()
    })?;
    let scale =
        |counts: &[usize], s: usize| -> Vec<usize> { counts.iter().map(|c| c * s).collect() };
    link.alltoallv(
        req.as_bytes(),
        &scale(&sends, 8),
        asked_for.as_bytes_mut(),
        &scale(&recvs, 8),
    )?;
    drop(req);

    // Answer every request from this rank's part of src.
    let mine = off[me];
    let src = Shared(p.src as *mut u8);
    let wanted = asked_for.as_slice();
    let reply = Shared(answers.as_bytes_mut().as_mut_ptr());
    let n = p.n;
    in_parts(asked, threads, |lo, hi| {
        let (src, reply) = (src, reply);
        for (k, &g) in wanted.iter().enumerate().take(hi).skip(lo) {
            let i = (g - mine) as usize;
            debug_assert!(i < n);
            // SAFETY: the requester sent g to this rank because g is in [mine, mine + n), so i
            // indexes src's n items; k indexes `asked` answers; the parts are disjoint.
            unsafe {
                std::ptr::copy_nonoverlapping(src.0.add(i * size), reply.0.add(k * size), size)
            };
        }
    });
    link.alltoallv(
        answers.as_bytes(),
        &scale(&recvs, size),
        answered.as_bytes_mut(),
        &scale(&sends, size),
    )?;

    // Scatter the answers to dst in the order of index.
    let mut cursor = starts(&sends);
    let got = answered.as_bytes();
    for (i, &g) in index.iter().enumerate() {
        let o = owner(g);
        // SAFETY: dst has nout items of `size` bytes, i < nout; the answer is inside `got`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                got.as_ptr().add(cursor[o] * size),
                p.dst.add(i * size),
                size,
            )
        };
        cursor[o] += 1;
    }
    Ok(Status::SM_OK)
}

fn permute_refusal(t: &sm_transport, p: &RankPermute) -> Option<Error> {
    if let Some(e) = transport_refusal(t) {
        return Some(e);
    }
    if let Err(e) = &p.threads {
        return Some(e.clone());
    }
    if p.itemsize == 0 {
        return Some(Error::invalid("itemsize is 0"));
    }
    if p.n > 0 && p.src.is_null() {
        return Some(Error::invalid(format!("src is NULL with nlocal = {}", p.n)));
    }
    if p.nout > 0 && (p.index.is_null() || p.dst.is_null()) {
        let which = if p.index.is_null() { "index" } else { "dst" };
        return Some(Error::invalid(format!(
            "{which} is NULL with nout = {}",
            p.nout
        )));
    }
    let (Some(_), Some(db), Some(ib)) = (
        p.n.checked_mul(p.itemsize),
        p.nout.checked_mul(p.itemsize),
        p.nout.checked_mul(8),
    ) else {
        return Some(Error::invalid(format!(
            "nlocal = {} or nout = {} items of {} bytes overflow size_t",
            p.n, p.nout, p.itemsize
        )));
    };
    if overlap(p.dst as usize, db, p.index as usize, ib) {
        return Some(Error::invalid(
            "dst overlaps index; give it an array of its own",
        ));
    }
    None
}
