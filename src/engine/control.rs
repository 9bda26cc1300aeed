//! The control block of one map: the words that workers and the caller share while it runs.
//!
//! It lives in one anonymous shared mapping (see shm.rs), created by the caller before it forks the
//! workers, so forked workers and threads use exactly the same protocol. engine/README.md explains the
//! protocol; in short:
//!
//! - `next_job` hands out jobs: a worker claims a chunk `[start, start + chunk)` with [`claim`].
//! - `limit`: jobs with an index at or above it never start. A failing or stopping job `j` lowers it
//!   to `j + 1`, so every job before the first failure still runs and the outcome is deterministic.
//! - `active` counts workers still in their loop; the last one out wakes the caller.
//! - One [`WorkerRecord`] per worker says which job it runs, the smallest job it has not finished
//!   (what a crash would lose) and the smallest job that has not passed its ordered turn.
//! - With a reduce callback, results go through a ring of `window` slots: job `j` writes slot
//!   `j % window` once the caller has reduced job `j - window` (bounded memory whatever `njobs`).

use crate::status::{Error, Result};
use crate::sys::futex;
use crate::sys::shm::SharedMapping;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Added to a filled slot's state word when the job did not end with `JobEnd::Done`.
pub(crate) const SLOT_FAILED: u32 = 2;

/// "No job": a job index that never occurs (`njobs` is bounded well below it).
pub(crate) const NO_JOB: u64 = u64::MAX;

/// Values of `WorkerRecord::stage` besides its initial 0 (worker_init, before the job loop).
pub(crate) const STAGE_JOBS: u32 = 1;
pub(crate) const STAGE_FINISHING: u32 = 2;

/// Every result and per-worker result handed to a callback is aligned to this (`SM_RESULT_ALIGN`,
/// `alignof(max_align_t)` on the supported platforms): programs cast them to structs.
pub(crate) const RESULT_ALIGN: usize = crate::abi::SM_RESULT_ALIGN;
const _: () = assert!(std::mem::align_of::<libc::max_align_t>() <= RESULT_ALIGN);

/// The largest `njobs` a map accepts (and trip count a work-shared loop accepts).
pub(crate) const MAX_JOBS: u64 = crate::abi::SM_MAX_JOBS;

/// Claims the next items of a counter that hands out `[0, end)`: `size(remaining)` of them (at
/// least one), or None once everything is claimed. The counter never moves past `end`, so no
/// number of claims can wrap it, whatever their size: a plain `fetch_add(chunk)` did, once
/// workers x chunk passed 2^64 (a 2^62 loop in chunks of 2^62 was handed out again on the fifth
/// claim of a 4-worker team).
pub(crate) fn claim(
    counter: &AtomicU64,
    end: u64,
    size: impl Fn(u64) -> u64,
) -> Option<(u64, u64)> {
    let mut cur = counter.load(Ordering::SeqCst);
    loop {
        if cur >= end {
            return None;
        }
        let hi = cur + size(end - cur).clamp(1, end - cur);
        match counter.compare_exchange_weak(cur, hi, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return Some((cur, hi)),
            Err(seen) => cur = seen,
        }
    }
}

/// Keeps a word on its own cache line, so that workers hammering one word do not slow the others.
#[repr(C, align(64))]
pub struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The mutual-exclusion word of `sm_critical_*`: 0 free, 1 held, 2 held with waiters.
#[repr(C)]
pub struct CriticalWords {
    pub state: AtomicU32,
    /// Worker holding the lock, or -1: lets the caller free the lock of a worker that died in it.
    pub owner: AtomicI32,
}

/// Sleep/wake words for jobs waiting for their ordered turn.
#[repr(C)]
pub struct OrderedWords {
    /// Set once any job of this map entered ordered; chunks then shrink to one job.
    pub used: AtomicU32,
    pub waiters: AtomicU32,
    pub epoch: AtomicU32,
}

/// Sleep/wake words for workers waiting for a free result slot.
#[repr(C)]
pub struct SlotWaitWords {
    pub waiters: AtomicU32,
    pub epoch: AtomicU32,
}

#[repr(C)]
pub struct Header {
    pub next_job: Padded<AtomicU64>,
    pub limit: Padded<AtomicU64>,
    pub critical: Padded<CriticalWords>,
    pub ordered: Padded<OrderedWords>,
    pub slot_wait: Padded<SlotWaitWords>,
    /// The job whose slot the caller is sleeping on, or NO_JOB.
    pub caller_waits_for: Padded<AtomicU64>,
    /// What the workers of a parallel region share (unused by maps).
    pub team: Padded<TeamWords>,
    pub barrier: Padded<BarrierWords>,
    /// Shared state of the work-shared loops that need it (dynamic and guided), a ring indexed by
    /// how many such loops the team has started.
    pub loops: [Padded<LoopSlot>; LOOP_SLOTS],
    /// A fed map's words (feed.rs); untouched by other maps.
    pub feed: Padded<FeedWords>,
    pub segments: [SegmentWords; SEGMENTS],
}

/// How many segments a fed map keeps at once: segment `k` lives in slot `k % SEGMENTS`.
pub(crate) const SEGMENTS: usize = 16;

/// What a fed map has been given so far (feed.rs, src/ranks/README.md).
#[repr(C)]
pub struct FeedWords {
    /// Local jobs fed so far: a claim never goes past it.
    pub available: AtomicU64,
    /// Segments fed so far.
    pub segments: AtomicU64,
    /// 1 once no more segments will come.
    pub ended: AtomicU32,
    /// Bumped when something a worker waiting for jobs waits for changes (a segment, the end, a
    /// stop); such workers sleep on it.
    pub epoch: AtomicU32,
    pub waiters: AtomicU32,
    /// The ordered gate: every global job below it has passed its ordered turn on every rank. A
    /// job may enter its ordered section only once the gate has reached its segment's start.
    pub gate: AtomicU64,
    /// The smallest segment start (global) a job waits at the gate for; NO_JOB when none.
    pub gate_wanted: AtomicU64,
}

/// One fed segment: its first local job is global job `global`.
#[repr(C)]
pub struct SegmentWords {
    pub local: AtomicU64,
    pub global: AtomicU64,
}

impl Header {
    /// Workers that have not checked out of the map yet.
    pub fn active(&self) -> &AtomicU32 {
        &self.barrier.active
    }

    /// A worker leaves the map; the last one out wakes the caller if it sleeps.
    pub fn check_out(&self) {
        let b = &self.barrier;
        // SeqCst on both sides (here and in `sleep_while_active`): either the caller sees the
        // new count before it sleeps, or this sees its flag and wakes it.
        if b.active.fetch_sub(1, Ordering::SeqCst) == 1
            && b.caller_sleeps.load(Ordering::SeqCst) != 0
        {
            futex::wake_all(&b.active);
        }
    }

    /// Wakes the caller if it sleeps in `sleep_while_active` (it looks again and sleeps on).
    pub fn wake_sleeping_caller(&self) {
        let b = &self.barrier;
        if b.caller_sleeps.load(Ordering::SeqCst) != 0 {
            futex::wake_all(&b.active);
        }
    }

    /// The caller sleeps while `active` still holds `seen` (at most `timeout`); it may also return
    /// early, so callers re-check.
    pub fn sleep_while_active(&self, seen: u32, timeout: Option<std::time::Duration>) {
        let b = &self.barrier;
        b.caller_sleeps.store(1, Ordering::SeqCst);
        if b.active.load(Ordering::SeqCst) == seen {
            futex::wait(&b.active, seen, timeout);
        }
        b.caller_sleeps.store(0, Ordering::SeqCst);
    }
}

/// How many dynamic/guided loops of a region may be in progress at once (workers that run ahead
/// through `nowait` loops wait when they get this far ahead of the slowest one).
pub(crate) const LOOP_SLOTS: usize = 4;

/// A region's team-wide words.
#[repr(C)]
pub struct TeamWords {
    /// 1 + the worker that first stopped the region (its region failed, misused a construct, or
    /// waited at a barrier another worker had left); 0 while nobody has.
    pub stopped_by: AtomicU32,
    /// Bumped whenever something a waiting worker may be waiting for changes (a loop slot comes
    /// free, a worker leaves the region, the region stops); waiters sleep on it.
    pub epoch: AtomicU32,
    pub waiters: AtomicU32,
    /// Counter of `sm_single` constructs claimed so far (the n-th single goes to the worker that
    /// moves it from n to n + 1).
    pub singles: AtomicU64,
}

/// The region's barrier: arrivals and departures in one word so that exactly one worker sees the
/// team complete.
#[repr(C)]
pub struct BarrierWords {
    /// Low 32 bits: workers waiting at the current barrier; high 32 bits: workers that have left
    /// the region (they count as arrived at every later barrier, which is then broken).
    pub count: AtomicU64,
    /// Bumped when a barrier opens; waiters sleep on it.
    pub generation: AtomicU32,
    /// Set once a barrier opened because a worker had left the region.
    pub broken: AtomicU32,
    /// Workers asleep on `generation` (the opener only makes the wake-up call when there are).
    pub sleepers: AtomicU32,
    /// Workers that have not checked out of the map yet (see `Header::active`). It lives here
    /// because every member of a region touches both it and `count` as it leaves: one cache line
    /// to hand from worker to worker and to the waiting caller instead of two.
    active: AtomicU32,
    /// 1 while the caller sleeps on `active`: only then does the last worker out make the
    /// wake-up call (a system call on every map otherwise).
    caller_sleeps: AtomicU32,
}

/// One dynamic/guided loop's shared counter.
#[repr(C)]
pub struct LoopSlot {
    /// Which dynamic/guided loop (by its index among the region's such loops) may use this slot.
    pub ready_for: AtomicU64,
    /// The next unclaimed iteration, relative to the loop's start.
    pub next: AtomicU64,
    /// Workers done with the loop; the last one resets the slot for the loop `LOOP_SLOTS` later.
    pub done: AtomicU32,
    /// The loop's parameters as the first worker saw them (0 = not yet), so that workers calling
    /// different loops at the same point are caught.
    pub fingerprint: AtomicU64,
}

/// How a job ended, as recorded in shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    Done,
    /// work() returned SM_STOP.
    Stop,
    /// work() returned another nonzero value.
    Error(i32),
    /// work() returned while still inside its critical section (which was then released).
    HeldCritical(i32),
    /// work() returned while still inside its ordered section (which was then left).
    HeldOrdered(i32),
    /// A region construct was misused (see `Misuse`).
    Misuse(Misuse),
    /// The worker waited at a barrier that this other worker never reached: it had left the region.
    BarrierBroken(u32),
}

/// Misuse of a region construct, found in a worker and reported by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misuse {
    BarrierInCritical,
    BarrierInOrdered,
    LoopInSection,
    /// sm_for_next called with other parameters than the loop in progress had.
    LoopChanged,
    /// Workers reached the same work-shared loop with different parameters.
    LoopDiffers,
    OrderedOutsideOrderedLoop,
    OrderedTwiceInIteration,
    /// sm_for_next with a bad schedule, flags, NULL lo/hi or too many iterations.
    BadLoopArguments,
}

impl Misuse {
    const ALL: [Misuse; 8] = [
        Misuse::BarrierInCritical,
        Misuse::BarrierInOrdered,
        Misuse::LoopInSection,
        Misuse::LoopChanged,
        Misuse::LoopDiffers,
        Misuse::OrderedOutsideOrderedLoop,
        Misuse::OrderedTwiceInIteration,
        Misuse::BadLoopArguments,
    ];

    fn code(self) -> i32 {
        Misuse::ALL.iter().position(|&m| m == self).unwrap_or(0) as i32
    }

    fn from_code(code: i32) -> Misuse {
        Misuse::ALL
            .get(code as usize)
            .copied()
            .unwrap_or(Misuse::LoopChanged)
    }
}

impl JobEnd {
    pub fn pack(self) -> u64 {
        let (kind, code): (u64, i32) = match self {
            JobEnd::Done => (0, 0),
            JobEnd::Stop => (1, 0),
            JobEnd::Error(c) => (2, c),
            JobEnd::HeldCritical(c) => (3, c),
            JobEnd::HeldOrdered(c) => (4, c),
            JobEnd::Misuse(m) => (5, m.code()),
            JobEnd::BarrierBroken(w) => (6, w as i32),
        };
        (kind << 32) | code as u32 as u64
    }

    pub fn unpack(packed: u64) -> JobEnd {
        let code = packed as u32 as i32;
        match packed >> 32 {
            0 => JobEnd::Done,
            1 => JobEnd::Stop,
            2 => JobEnd::Error(code),
            3 => JobEnd::HeldCritical(code),
            4 => JobEnd::HeldOrdered(code),
            5 => JobEnd::Misuse(Misuse::from_code(code)),
            _ => JobEnd::BarrierBroken(code as u32),
        }
    }
}

/// What one worker publishes about itself.
#[repr(C, align(64))]
pub struct WorkerRecord {
    /// The job this worker is running, or NO_JOB between jobs.
    pub current_job: AtomicU64,
    /// A lower bound of the smallest job this worker claimed and has not finished; NO_JOB once it
    /// left its loop. If the worker dies, jobs from here on may be lost.
    pub unfinished: AtomicU64,
    /// A lower bound of the smallest job of this worker that has not yet passed its ordered turn.
    pub ordered_pos: AtomicU64,
    /// 1 once the worker left its loop normally.
    pub finished: AtomicU32,
    /// The first job of this worker that did not end with `JobEnd::Done` (NO_JOB if none) and how
    /// it ended (packed `JobEnd`).
    pub failed_job: AtomicU64,
    pub failed_end: AtomicU64,
    /// Set when the worker's init or fini hook returned nonzero (`HookFailure::pack`).
    pub hook_failure: AtomicU64,
    /// 1 once the worker's fini hook (if any) has filled its per-worker result.
    pub fini_done: AtomicU32,
    /// Jobs this worker has run to their end (for progress reports).
    pub completed: AtomicU64,
    /// 0 until the worker's job loop starts (worker_init runs then), STAGE_JOBS in it,
    /// STAGE_FINISHING after it (worker_fini): says what a death interrupted.
    pub stage: AtomicU32,
    /// In a region: how many work-shared loops this worker has entered (u64::MAX once it left the
    /// region). With `ordered_pos` it tells a worker waiting for its ordered turn in loop `s`
    /// whether this one has passed: it has if it is in a later loop, or in loop `s` at or past
    /// the iteration. Written after `ordered_pos` when entering a loop, read before it.
    pub loop_seq: AtomicU64,
    /// In a region, once the worker left it: how many dynamic/guided loops it had entered.
    pub dynamic_loops_at_exit: AtomicU64,
    /// 1 once the worker left the region.
    pub left_region: AtomicU32,
}

/// A worker_init / worker_fini hook that returned nonzero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookFailure {
    /// worker_init returned this nonzero value.
    Init(i32),
    /// worker_fini returned this nonzero value.
    Fini(i32),
    /// The hook returned 0 but left its critical or ordered section open (sharedmem closed it).
    InitLeftSection,
    FiniLeftSection,
}

impl HookFailure {
    pub fn pack(self) -> u64 {
        match self {
            HookFailure::Init(c) => (1 << 32) | c as u32 as u64,
            HookFailure::Fini(c) => (2 << 32) | c as u32 as u64,
            HookFailure::InitLeftSection => 3 << 32,
            HookFailure::FiniLeftSection => 4 << 32,
        }
    }

    pub fn unpack(packed: u64) -> Option<HookFailure> {
        let code = packed as u32 as i32;
        match packed >> 32 {
            1 => Some(HookFailure::Init(code)),
            2 => Some(HookFailure::Fini(code)),
            3 => Some(HookFailure::InitLeftSection),
            4 => Some(HookFailure::FiniLeftSection),
            _ => None,
        }
    }
}

/// The shared control block of one map plus the parameters fixed for its duration.
pub struct Control {
    mapping: SharedMapping,
    pub njobs: u64,
    pub nworkers: usize,
    /// Number of result slots, a power of two (slot and lap are a mask and a shift away: a
    /// division per access cost more than the rest of a tiny job); 0 when there is no reduce (each
    /// worker then has one scratch buffer).
    pub window: u64,
    window_shift: u32,
    /// Bytes of one result (the caller's result_size).
    pub result_size: usize,
    result_stride: usize,
    workers_offset: usize,
    /// Bytes of one per-worker result (`sm_map_opts.wresult_size`) and where they start.
    pub wresult_size: usize,
    wresult_stride: usize,
    wresult_offset: usize,
    slot_state_offset: usize,
    slot_end_offset: usize,
    data_offset: usize,
    /// True for a parallel region (sm_parallel): one member of the team per worker, no jobs.
    pub is_region: bool,
    /// For a region run by threads in the caller's process: the interrupt count at its start, so
    /// that its members notice Ctrl-C themselves (nobody else watches while the caller runs
    /// worker 0). None otherwise.
    pub interrupt_baseline: Option<u64>,
    /// More workers than CPUs: waits inside a region spin only briefly before sleeping.
    pub oversubscribed: bool,
    /// A region with per-worker hooks: when a member returns SM_STOP, the others are not killed
    /// (process workers) but return at their next construct and run worker_fini, so that
    /// worker_reduce combines every worker's result, as after a map's SM_STOP.
    pub finish_on_stop: bool,
    /// A fed map (feed.rs): its jobs are the segments fed while it runs, not [0, njobs).
    pub fed: bool,
}

// SAFETY: every field shared between workers is an atomic or is partitioned among them by the
// protocol (each result buffer has one writer at a time, handed over through the slot words).
unsafe impl Sync for Control {}
// SAFETY: as above; the mapping is plain shared memory.
unsafe impl Send for Control {}

/// Result memory the window may use at most when results are large; the window never drops below
/// a few slots per worker.
const WINDOW_BYTES: usize = 64 << 20;

fn round_up(n: usize, to: usize) -> Option<usize> {
    n.checked_add(to - 1).map(|v| v / to * to)
}

/// Zeroes `len` bytes at `p` (64-aligned, `len` a multiple of 64), writing only the cache lines
/// that are not zero already: a line that only another CPU's worker read stays shared instead of
/// being invalidated there and fetched again at the next map.
///
/// # Safety
/// `p..p + len` must be valid for writes and not accessed by anyone else meanwhile.
unsafe fn zero_dirty(p: *mut u8, len: usize) {
    debug_assert!(p as usize % 64 == 0 && len % 64 == 0);
    for line in 0..len / 64 {
        // SAFETY: the line lies within p..p + len, which the caller guarantees is valid and ours
        // alone (so plain reads race with nobody); p is 64-aligned, so the line is too.
        unsafe {
            let words = p.add(line * 64).cast::<[u64; 8]>();
            if (*words).iter().fold(0, |acc, w| acc | w) != 0 {
                std::ptr::write_bytes(words, 0, 1);
            }
        }
    }
}

impl Control {
    /// Lays out and maps the control block for a map of `njobs` jobs on `nworkers` workers.
    ///
    /// `spare` is the mapping of an earlier map of the same pool: reused when large enough, since
    /// unmapping costs a TLB shootdown on every CPU that runs a thread of this process.
    pub fn new(
        njobs: u64,
        nworkers: usize,
        result_size: usize,
        with_reduce: bool,
        wresult_size: usize,
        spare: Option<SharedMapping>,
    ) -> Result<Control> {
        let too_big = || {
            Error::nomem(format!(
                "result_size {result_size} is too large to allocate result buffers for {nworkers} workers"
            ))
        };
        // Result slots are packed as tightly as the promised alignment allows (so that a cache
        // line carries as many results as possible to the caller); per-worker scratch buffers get
        // lines of their own, so that workers do not write into each other's lines.
        let align = if with_reduce { RESULT_ALIGN } else { 64 };
        let stride = round_up(result_size, align).ok_or_else(too_big)?;
        let window = if with_reduce {
            let per_worker_min = 4 * nworkers as u64;
            let by_memory = (WINDOW_BYTES / stride.max(1)) as u64;
            let wanted = by_memory
                .min(1024 * nworkers as u64)
                .max(per_worker_min)
                .min(njobs.max(1));
            // The largest power of two not above `wanted` (at least one slot).
            1u64 << (63 - wanted.max(1).leading_zeros())
        } else {
            0
        };
        let buffers = if with_reduce {
            window as usize
        } else {
            nworkers
        };

        let workers_offset = round_up(std::mem::size_of::<Header>(), 64).ok_or_else(too_big)?;
        let slot_state_offset = workers_offset + nworkers * std::mem::size_of::<WorkerRecord>();
        let slot_end_offset =
            round_up(slot_state_offset + 4 * window as usize, 8).ok_or_else(too_big)?;
        let wresult_offset =
            round_up(slot_end_offset + 8 * window as usize, 64).ok_or_else(too_big)?;
        let wresult_stride = round_up(wresult_size, 64)
            .ok_or_else(|| Error::nomem(format!("wresult_size {wresult_size} is too large")))?;
        let data_offset = wresult_stride
            .checked_mul(nworkers)
            .and_then(|b| b.checked_add(wresult_offset))
            .ok_or_else(|| Error::nomem(format!("wresult_size {wresult_size} is too large")))?;
        let total = stride
            .checked_mul(buffers)
            .and_then(|b| b.checked_add(data_offset))
            .filter(|t| *t <= isize::MAX as usize)
            .ok_or_else(too_big)?;
        let mapping = match spare {
            Some(r) if r.size() >= total => {
                // Only the words up to the result buffers need their initial zeros back: workers
                // zero each result buffer before every job.
                // SAFETY: no worker uses this mapping any more (the previous map is over),
                // data_offset <= total <= its length, the mapping is page-aligned, and data_offset
                // is a multiple of 64 (wresult_offset and wresult_stride are rounded up to 64).
                unsafe { zero_dirty(r.as_ptr(), data_offset) };
                r
            }
            _ => SharedMapping::new(total).map_err(|e| {
                Error::new(
                    e.status,
                    format!(
                        "cannot allocate the control block ({} bytes with result_size \
                         {result_size}): {}",
                        total, e.message
                    ),
                )
            })?,
        };
        let ctl = Control {
            mapping,
            njobs,
            nworkers,
            window,
            window_shift: window.trailing_zeros(),
            result_size,
            result_stride: stride,
            workers_offset,
            wresult_size,
            wresult_stride,
            wresult_offset,
            slot_state_offset,
            slot_end_offset,
            data_offset,
            is_region: false,
            interrupt_baseline: None,
            oversubscribed: false,
            finish_on_stop: false,
            fed: false,
        };
        ctl.init();
        Ok(ctl)
    }

    /// True when the block lies in the shared heap, where persistent workers see it.
    pub fn in_heap(&self) -> bool {
        self.mapping.in_heap()
    }

    /// Gives back the mapping for the next map of the same pool.
    pub fn into_mapping(self) -> SharedMapping {
        self.mapping
    }

    /// Sets the non-zero initial values (the mapping starts zero-filled).
    fn init(&self) {
        let h = self.header();
        h.limit.store(self.njobs, Ordering::Relaxed);
        h.active().store(self.nworkers as u32, Ordering::Relaxed);
        h.critical.owner.store(-1, Ordering::Relaxed);
        h.caller_waits_for.store(NO_JOB, Ordering::Relaxed);
        for (i, slot) in h.loops.iter().enumerate() {
            slot.ready_for.store(i as u64, Ordering::Relaxed);
        }
        for w in 0..self.nworkers {
            let r = self.worker(w);
            // A worker that has not started has claimed nothing: it holds back no ordered turn
            // and loses no job if it dies. It publishes a lower bound before its first claim.
            r.current_job.store(NO_JOB, Ordering::Relaxed);
            r.unfinished.store(NO_JOB, Ordering::Relaxed);
            r.ordered_pos.store(NO_JOB, Ordering::Relaxed);
            r.failed_job.store(NO_JOB, Ordering::Relaxed);
        }
        // Slot words start at 0 = "free for lap 0": nothing to do.
    }

    pub fn header(&self) -> &Header {
        // SAFETY: the mapping starts with a Header (page-aligned, zero-initialised, all atomics), and
        // lives as long as self.
        unsafe { &*(self.mapping.as_ptr() as *const Header) }
    }

    pub fn worker(&self, w: usize) -> &WorkerRecord {
        assert!(w < self.nworkers);
        // SAFETY: records are laid out contiguously at workers_offset (64-aligned) for nworkers
        // workers inside the region.
        unsafe { &*(self.mapping.as_ptr().add(self.workers_offset) as *const WorkerRecord).add(w) }
    }

    fn slot_index(&self, job: u64) -> usize {
        (job & (self.window - 1)) as usize
    }

    /// A slot's state word is `lap << 2` when free for the job of that lap (`lap = job / window`),
    /// `lap << 2 | 1` when it holds that job's result, with `SLOT_FAILED` added when the job did not
    /// end with `JobEnd::Done` (how it ended is then in `slot_end`, which is otherwise not
    /// touched). Laps wrap; only neighbouring laps are ever compared.
    pub fn slot_free_word(&self, job: u64) -> u32 {
        ((job >> self.window_shift) as u32).wrapping_shl(2)
    }

    pub fn slot_filled_word(&self, job: u64) -> u32 {
        self.slot_free_word(job) | 1
    }

    /// True when `word` (a slot's state) holds the result of `job`.
    pub fn slot_holds(&self, job: u64, word: u32) -> bool {
        word | SLOT_FAILED == self.slot_filled_word(job) | SLOT_FAILED
    }

    pub fn slot_state(&self, job: u64) -> &AtomicU32 {
        let s = self.slot_index(job);
        // SAFETY: `window` u32 words live at slot_state_offset; s < window.
        unsafe { &*(self.mapping.as_ptr().add(self.slot_state_offset) as *const AtomicU32).add(s) }
    }

    pub fn slot_end(&self, job: u64) -> &AtomicU64 {
        let s = self.slot_index(job);
        // SAFETY: `window` u64 words live at slot_end_offset (8-aligned); s < window.
        unsafe { &*(self.mapping.as_ptr().add(self.slot_end_offset) as *const AtomicU64).add(s) }
    }

    /// Worker `w`'s own result (zeroed at the start of the map), filled by its fini hook and
    /// combined on the caller by worker_reduce. NULL when wresult_size is 0.
    pub fn worker_result(&self, w: usize) -> *mut u8 {
        if self.wresult_size == 0 {
            return std::ptr::null_mut();
        }
        assert!(w < self.nworkers);
        // SAFETY: nworkers buffers of wresult_stride bytes start at wresult_offset in the mapping.
        unsafe {
            self.mapping
                .as_ptr()
                .add(self.wresult_offset + w * self.wresult_stride)
        }
    }

    /// The result buffer for `job` run by worker `w`: its slot with a reduce, else the worker's own
    /// scratch buffer. NULL when result_size is 0.
    pub fn result_buffer(&self, job: u64, w: usize) -> *mut u8 {
        if self.result_size == 0 {
            return std::ptr::null_mut();
        }
        let index = if self.window > 0 {
            self.slot_index(job)
        } else {
            w
        };
        // SAFETY: buffers of result_stride bytes start at data_offset; index < number of buffers.
        unsafe {
            self.mapping
                .as_ptr()
                .add(self.data_offset + index * self.result_stride)
        }
    }

    /// Jobs completed so far, all workers together.
    pub fn completed(&self) -> u64 {
        (0..self.nworkers)
            .map(|w| self.worker(w).completed.load(Ordering::Relaxed))
            .sum()
    }

    /// Makes every worker waiting inside a region (barrier, loop slot, ordered turn) wake up and
    /// look again: the region was stopped (`limit` is 0) or a worker left it.
    pub fn wake_region_waiters(&self) {
        let h = self.header();
        h.team.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&h.team.epoch);
        h.barrier.generation.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&h.barrier.generation);
        h.ordered.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&h.ordered.epoch);
    }

    /// True for every worker but `me` that its ordered position is at or past `job`.
    pub fn ordered_turn_reached(&self, job: u64, me: usize) -> bool {
        (0..self.nworkers)
            .filter(|&w| w != me)
            .all(|w| self.worker(w).ordered_pos.load(Ordering::SeqCst) >= job)
    }
}

/// Wakes workers sleeping in `wait_for_free_slot` so they re-check their slot and the limit.
/// Slots are freed with plain release stores; the fence orders them before the look at `waiters`,
/// so a worker that registered too late for us to see it also sees its slot free.
pub fn wake_slot_waiters(ctl: &Control) {
    let h = ctl.header();
    std::sync::atomic::fence(Ordering::SeqCst);
    if h.slot_wait.waiters.load(Ordering::SeqCst) > 0 {
        h.slot_wait.epoch.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&h.slot_wait.epoch);
    }
    // Every path that stops a map comes here: workers waiting to be fed must look again too.
    if ctl.fed {
        wake_feed_waiters(ctl);
    }
}

/// Wakes the workers of a fed map that wait for jobs or at the ordered gate (something they
/// wait for changed: a segment, the end, a stop).
pub fn wake_feed_waiters(ctl: &Control) {
    let h = ctl.header();
    let f = &h.feed;
    f.epoch.fetch_add(1, Ordering::SeqCst);
    if f.waiters.load(Ordering::SeqCst) > 0 {
        futex::wake_all(&f.epoch);
    }
    wake_ordered_waiters(h);
}

/// Makes jobs waiting for their ordered turn (or a fed map's gate) look again.
pub fn wake_ordered_waiters(h: &Header) {
    h.ordered.epoch.fetch_add(1, Ordering::SeqCst);
    if h.ordered.waiters.load(Ordering::SeqCst) > 0 {
        futex::wake_all(&h.ordered.epoch);
    }
}

#[cfg(test)]
impl Control {
    /// The same control block for a map of `njobs` jobs: lets a test keep a small window (sized by
    /// a small `njobs` in `Control::new`) over many more jobs, as a map with large results has.
    pub(crate) fn with_njobs(mut self, njobs: u64) -> Control {
        self.njobs = njobs;
        self.header().limit.store(njobs, Ordering::Relaxed);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::worker::testing::assert_tiles;

    #[test]
    fn job_end_round_trips() {
        for e in [
            JobEnd::Done,
            JobEnd::Stop,
            JobEnd::Error(-1),
            JobEnd::Error(42),
            JobEnd::HeldCritical(0),
            JobEnd::HeldOrdered(i32::MIN),
            JobEnd::Misuse(Misuse::OrderedTwiceInIteration),
            JobEnd::Misuse(Misuse::BarrierInCritical),
            JobEnd::BarrierBroken(7),
        ] {
            assert_eq!(JobEnd::unpack(e.pack()), e);
        }
    }

    #[test]
    fn window_is_bounded_by_memory() {
        let c = Control::new(100_000_000, 2, 64, true, 0, None).unwrap();
        assert!(c.window <= 2048, "window {}", c.window);
        assert!(c.window >= 8 && c.window.is_power_of_two());
        let small = Control::new(3, 2, 8, true, 0, None).unwrap();
        assert_eq!(small.window, 2);
        let big_results = Control::new(1000, 2, 1 << 20, true, 0, None).unwrap();
        assert!(big_results.window * (1 << 20) <= 64 << 20);
    }

    #[test]
    fn huge_result_size_is_refused() {
        let e = Control::new(10, 2, usize::MAX / 4, true, 0, None)
            .err()
            .unwrap();
        assert!(e.message.contains("result_size"), "{}", e.message);
    }

    #[test]
    fn window_is_sized_as_documented() {
        // 1024 slots per worker when results are small and there are jobs enough.
        let c = Control::new(100_000_000, 2, 8, true, 0, None).unwrap();
        assert_eq!(c.window, 2048);
        // ... rounded down to a power of two (3 x 1024 = 3072).
        let c = Control::new(100_000_000, 3, 8, true, 0, None).unwrap();
        assert_eq!(c.window, 2048);
        // 64 MiB of results at most: 1 MiB results get 64 slots.
        let c = Control::new(100_000, 2, 1 << 20, true, 0, None).unwrap();
        assert_eq!(c.window, 64);
        // ... but never fewer than 4 slots per worker, whatever the memory bound says.
        let c = Control::new(100_000, 2, 16 << 20, true, 0, None).unwrap();
        assert_eq!(c.window, 8);
        // No more slots than jobs (rounded down to a power of two).
        let c = Control::new(100, 2, 8, true, 0, None).unwrap();
        assert_eq!(c.window, 64);
        // Without reduce there is no window.
        let c = Control::new(100, 2, 8, false, 0, None).unwrap();
        assert_eq!(c.window, 0);
    }

    #[test]
    fn slot_words_tell_neighbouring_laps_apart() {
        let c = Control::new(8, 2, 8, true, 0, None).unwrap();
        let w = c.window;
        assert_eq!(w, 8);
        let laps_near_wrap = ((1u64 << 30) - 2) * w;
        for j in (0..4 * w).chain(laps_near_wrap..laps_near_wrap + 3 * w) {
            let next = j + w;
            // Job j and job j + window share one slot (state word, end word and buffer) ...
            assert!(std::ptr::eq(c.slot_state(j), c.slot_state(next)), "job {j}");
            assert!(std::ptr::eq(c.slot_end(j), c.slot_end(next)), "job {j}");
            assert_eq!(c.result_buffer(j, 0), c.result_buffer(next, 1), "job {j}");
            // ... and no other job of the same lap does.
            let neighbour = if j % w == w - 1 { j - 1 } else { j + 1 };
            assert!(
                !std::ptr::eq(c.slot_state(j), c.slot_state(neighbour)),
                "job {j}"
            );
            assert_ne!(
                c.result_buffer(j, 0),
                c.result_buffer(neighbour, 0),
                "job {j}"
            );

            let free = c.slot_free_word(j);
            let filled = c.slot_filled_word(j);
            // Job j holds its slot once filled, whether it succeeded or failed ...
            assert!(c.slot_holds(j, filled), "job {j}");
            assert!(c.slot_holds(j, filled | SLOT_FAILED), "job {j}");
            assert!(!c.slot_holds(j, free), "job {j}");
            // ... and job j + window may not write it while it holds job j's result (done or
            // failed), nor mistake it for its own result ...
            assert_ne!(c.slot_free_word(next), filled, "job {j}");
            assert_ne!(c.slot_free_word(next), filled | SLOT_FAILED, "job {j}");
            assert_ne!(c.slot_free_word(next), free, "job {j}");
            assert!(!c.slot_holds(next, filled), "job {j}");
            assert!(!c.slot_holds(next, filled | SLOT_FAILED), "job {j}");
            assert!(!c.slot_holds(next, free), "job {j}");
            // ... until the caller, having reduced job j, stores the word that frees the slot for
            // job j + window (supervise.rs stores `slot_free_word(j + window)`): that word is
            // neither a result of job j nor of job j + window.
            assert!(!c.slot_holds(j, c.slot_free_word(next)), "job {j}");
            assert!(!c.slot_holds(next, c.slot_free_word(next)), "job {j}");
            assert!(c.slot_holds(next, c.slot_filled_word(next)), "job {j}");
        }
        // The lap count wraps (laps are compared with their neighbours only).
        assert_eq!(
            c.slot_free_word(((1u64 << 30) - 1) * w),
            (((1u64 << 30) - 1) as u32) << 2
        );
        assert_eq!(c.slot_free_word((1u64 << 30) * w), 0);
    }

    #[test]
    fn claim_hands_out_fixed_chunks_up_to_the_end() {
        let counter = AtomicU64::new(0);
        let mut got = Vec::new();
        while let Some(r) = claim(&counter, 10, |_| 4) {
            got.push(r);
        }
        assert_eq!(got, [(0, 4), (4, 8), (8, 10)]);
        assert_eq!(counter.load(Ordering::SeqCst), 10);
        assert_eq!(claim(&counter, 10, |_| 4), None);
        assert_eq!(counter.load(Ordering::SeqCst), 10);

        // A size of 0 still hands out one item; the size function sees what remains.
        let counter = AtomicU64::new(0);
        assert_eq!(claim(&counter, 3, |_| 0), Some((0, 1)));
        let seen = std::cell::RefCell::new(Vec::new());
        let mut got = Vec::new();
        while let Some(r) = claim(&counter, 10, |rem| {
            seen.borrow_mut().push(rem);
            rem / 2
        }) {
            got.push(r);
        }
        assert_eq!(got, [(1, 5), (5, 7), (7, 8), (8, 9), (9, 10)]);
        // (a weak compare-and-swap may fail spuriously and ask again for the same size)
        let mut seen = seen.into_inner();
        seen.dedup();
        assert_eq!(seen, [9, 5, 3, 2, 1]);
    }

    #[test]
    fn claim_never_wraps_the_counter() {
        // A 2^62 loop in chunks of 2^62 on a 4-worker team: a fetch_add of the chunk wrapped on
        // the fifth claim and handed the loop out again.
        let counter = AtomicU64::new(0);
        assert_eq!(claim(&counter, MAX_JOBS, |_| MAX_JOBS), Some((0, MAX_JOBS)));
        for _ in 0..8 {
            assert_eq!(claim(&counter, MAX_JOBS, |_| u64::MAX), None);
        }
        assert_eq!(counter.load(Ordering::SeqCst), MAX_JOBS);
        // A size past the end is cut at the end.
        let counter = AtomicU64::new(5);
        assert_eq!(claim(&counter, 7, |_| u64::MAX), Some((5, 7)));
        assert_eq!(counter.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn concurrent_claims_hand_out_every_item_exactly_once() {
        const END: u64 = 200_000;
        let counter = AtomicU64::new(0);
        let mut ranges: Vec<(u64, u64)> = std::thread::scope(|s| {
            let claimers: Vec<_> = (0..4u64)
                .map(|t| {
                    let counter = &counter;
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        // Claimers with different sizes, one of them adaptive like guided.
                        while let Some(r) = claim(counter, END, |rem| match t {
                            0 => 1,
                            1 => 3,
                            2 => rem / 64,
                            _ => 7,
                        }) {
                            mine.push(r);
                        }
                        mine
                    })
                })
                .collect();
            claimers
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        ranges.sort_unstable();
        assert_tiles(&ranges, END);
        assert_eq!(counter.load(Ordering::SeqCst), END);
    }

    #[test]
    fn ordered_turn_needs_every_other_worker_at_or_past_the_job() {
        use crate::engine::sections::publish_ordered_pos;
        let c = Control::new(100, 3, 0, false, 0, None).unwrap();
        // Workers that have claimed nothing hold back no turn.
        assert!(c.ordered_turn_reached(0, 0));
        assert!(c.ordered_turn_reached(50, 1));
        // Worker 0 holds job 0, worker 1 job 1, worker 2 job 2 (chunks of one job, as once ordered
        // is in use).
        for w in 0..3 {
            publish_ordered_pos(&c, w, w as u64);
        }
        assert!(c.ordered_turn_reached(0, 0));
        assert!(!c.ordered_turn_reached(1, 1), "job 0 has not passed");
        assert!(
            !c.ordered_turn_reached(2, 2),
            "jobs 0 and 1 have not passed"
        );
        // Job 0 leaves its ordered section: job 1's turn, not yet job 2's.
        publish_ordered_pos(&c, 0, 1);
        assert!(c.ordered_turn_reached(1, 1));
        assert!(!c.ordered_turn_reached(2, 2), "job 1 has not passed");
        // Worker 0 publishes a lower bound before claiming again (next_job is 3), then claims 3.
        publish_ordered_pos(&c, 0, 3);
        assert!(!c.ordered_turn_reached(2, 2), "job 1 has still not passed");
        // Job 1 finishes without an ordered section: that passes its turn too.
        publish_ordered_pos(&c, 1, 2);
        assert!(c.ordered_turn_reached(2, 2));
        assert!(!c.ordered_turn_reached(3, 0), "job 2 has not passed");
        // A worker's own position never holds back its own job (its earlier jobs ran before).
        publish_ordered_pos(&c, 2, 3);
        publish_ordered_pos(&c, 1, 4);
        publish_ordered_pos(&c, 0, 0);
        assert!(c.ordered_turn_reached(3, 0));
        // A worker whose loop ended (NO_JOB) holds back nothing.
        publish_ordered_pos(&c, 1, NO_JOB);
        publish_ordered_pos(&c, 0, NO_JOB);
        assert!(c.ordered_turn_reached(99, 2));
        assert!(!c.ordered_turn_reached(99, 0), "worker 2 is at 3");
    }
}
