//! Root's side of a map across ranks: the global job counter and the grants, the reorder window
//! that feeds `reduce` in global job order, the book of which segments each rank has finished
//! (for the ordered gate), and the failures that decide the outcome (README.md).

use super::link::Tag;
use crate::abi::SM_RESULT_ALIGN;
use crate::engine::progress::Progress;
use crate::engine::task::JobFn;
use crate::status::Status;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::c_void;

/// Root's memory for results waiting to be reduced, at most.
const WINDOW_BYTES: u64 = 64 << 20;
/// The window holds at least this many jobs (and at most `MAX_WINDOW`).
const MIN_WINDOW: u64 = 64;
const MAX_WINDOW: u64 = 1 << 22;

/// How a rank's part ended, as it reports it: its failure if any.
pub struct Failure {
    pub rank: usize,
    /// The first global job that did not complete (None: no job was lost, e.g. an interrupt
    /// between jobs). Jobs before it all completed on their ranks.
    pub at: Option<u64>,
    /// The job at `at` returned SM_STOP (it was reduced).
    pub stopped: bool,
    pub status: Status,
    /// The whole message, starting with the function called and the rank.
    pub message: String,
}

/// What root knows of one rank.
#[derive(Default)]
struct Book {
    /// Its granted segments (global start, length) not known to be finished, in grant order.
    open: VecDeque<(u64, u64)>,
    /// How many of its segments it reported finished; `open` starts after them.
    done: u64,
    /// Its jobs finished so far.
    completed: u64,
    /// A request for this many jobs not answered yet.
    wants: Option<u64>,
    /// A segment start one of its jobs waits at the ordered gate for.
    gate: Option<u64>,
    /// Its local map ended and it reported how.
    finished: bool,
    /// Its workers (for worker_reduce's numbering) and their results, when kept.
    nworkers: usize,
    kept: Vec<(usize, Aligned)>,
}

/// Bytes aligned to `SM_RESULT_ALIGN`, as every result and per-worker result handed to a
/// callback is.
pub struct Aligned(Vec<u128>, usize);

thread_local! {
    /// The window of this thread's last map as root, kept for its next one: fresh memory costs a
    /// page fault per page at first touch (64 MiB of 1 MiB results: 16384 faults per map).
    static SPARE_WINDOW: RefCell<Option<Aligned>> = const { RefCell::new(None) };
}

impl Aligned {
    pub fn zeroed(len: usize) -> Aligned {
        Aligned(vec![0; len.div_ceil(16)], len)
    }

    /// `len` bytes of unspecified (initialized) content: the spare window when it is large
    /// enough, else zeroed memory.
    fn reused(len: usize) -> Aligned {
        match SPARE_WINDOW.take() {
            Some(Aligned(words, _)) if words.len() * 16 >= len => Aligned(words, len),
            _ => Aligned::zeroed(len),
        }
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the Vec<u128> holds at least `self.1` initialized bytes.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr() as *mut u8, self.1) }
    }

    /// The bytes for a callback: null when there are none.
    pub fn ptr(&mut self) -> *mut u8 {
        if self.1 == 0 {
            std::ptr::null_mut()
        } else {
            self.0.as_mut_ptr() as *mut u8
        }
    }
}

/// Results waiting for `reduce`: slot `g % len` holds job `g` for `reduced <= g < reduced + len`,
/// at `stride` bytes per slot (result_size rounded up to the alignment of results).
struct Window {
    len: u64,
    result_size: usize,
    stride: usize,
    bytes: Aligned,
    /// Per slot: 0 empty, FILLED, or FILLED | STOPPED.
    state: Vec<u8>,
    reduced: u64,
}

const FILLED: u8 = 1;
const STOPPED: u8 = 2;

impl Drop for Window {
    fn drop(&mut self) {
        let bytes = std::mem::replace(&mut self.bytes, Aligned(Vec::new(), 0));
        SPARE_WINDOW.set(Some(bytes));
    }
}

pub struct Root {
    /// The function called, for messages.
    call: String,
    nranks: usize,
    me: usize,
    njobs: u64,
    /// The next job to grant.
    next: u64,
    /// Nothing at or beyond it is granted: njobs, or lowered by a failure or a stop.
    limit: u64,
    books: Vec<Book>,
    window: Option<Window>,
    reduce: Option<(JobFn, *mut c_void)>,
    progress: Option<Progress>,
    failures: Vec<Failure>,
    /// Where ranks were last told to stop (they are told again only when it drops).
    told_limit: u64,
}

impl Root {
    pub fn new(
        call: &str,
        nranks: usize,
        me: usize,
        njobs: u64,
        result_size: usize,
        reduce: Option<(JobFn, *mut c_void)>,
        progress: Option<Progress>,
    ) -> Root {
        let window = reduce.map(|_| {
            let stride = result_size.next_multiple_of(SM_RESULT_ALIGN);
            let len = (WINDOW_BYTES / stride.max(1) as u64)
                .clamp(MIN_WINDOW, MAX_WINDOW)
                .min(njobs.max(1));
            Window {
                len,
                result_size,
                stride,
                bytes: Aligned::reused(len as usize * stride),
                state: vec![0; len as usize],
                reduced: 0,
            }
        });
        Root {
            call: call.to_string(),
            nranks,
            me,
            njobs,
            next: 0,
            limit: njobs,
            books: (0..nranks).map(|_| Book::default()).collect(),
            window,
            reduce,
            progress,
            failures: Vec::new(),
            told_limit: njobs,
        }
    }

    /// Handles a message from `from` to root; `Results` are handled by the caller (they need
    /// the link for their data). Returns the messages root sends in answer: none here; grants
    /// and openings go out in `serve`.
    pub fn note(&mut self, from: usize, tag: Tag, words: &[u64]) {
        let book = &mut self.books[from];
        match tag {
            Tag::Want => {
                book.wants = Some(words[0].max(1));
                book.completed = book.completed.max(words[1]);
            }
            Tag::Done => {
                while book.done < words[0] {
                    book.open.pop_front();
                    book.done += 1;
                }
                book.completed = book.completed.max(words[1]);
            }
            Tag::Gate => book.gate = Some(words[0]),
            _ => unreachable!("root is not sent {tag:?}"),
        }
    }

    /// The slot for global job `g`'s result, to be filled and then marked with `filled`; None
    /// when root does not reduce, or the job is not to be reduced (past a stop).
    pub fn slot(&mut self, g: u64) -> Option<&mut [u8]> {
        let w = self.window.as_mut()?;
        debug_assert!(
            g >= w.reduced && g < w.reduced + w.len,
            "job {g} outside the window"
        );
        let i = (g % w.len) as usize;
        Some(&mut w.bytes.bytes()[i * w.stride..i * w.stride + w.result_size])
    }

    pub fn filled(&mut self, g: u64, stopped: bool) {
        if let Some(w) = self.window.as_mut() {
            w.state[(g % w.len) as usize] = FILLED | if stopped { STOPPED } else { 0 };
        }
    }

    /// Reduces every result that is next in job order. A job that returned SM_STOP, or a reduce
    /// that returns nonzero, is the last one reduced.
    pub fn drain(&mut self) {
        loop {
            let Some(w) = self.window.as_mut() else {
                return;
            };
            let g = w.reduced;
            let i = (g % w.len) as usize;
            let state = w.state[i];
            if state & FILLED == 0 || g >= self.limit.min(self.njobs) {
                return;
            }
            w.state[i] = 0;
            let result = match w.result_size {
                0 => std::ptr::null_mut(),
                // SAFETY: slot i is within the window's len x stride bytes.
                _ => unsafe { w.bytes.ptr().add(i * w.stride) },
            };
            self.reduce_next(result, state & STOPPED != 0);
        }
    }

    /// Whether job `g`'s result can be reduced at once, from where it is (root's own result,
    /// next in job order): no copy into the window.
    pub fn reduces_next(&self, g: u64) -> bool {
        self.window
            .as_ref()
            .is_some_and(|w| w.reduced == g && g < self.limit.min(self.njobs))
    }

    /// Reduces the next job in order, whose result is at `result` (result_size bytes aligned to
    /// SM_RESULT_ALIGN, or null when there are none). A job that returned SM_STOP (`stopped`),
    /// or a reduce that returns nonzero, is the last one reduced.
    pub fn reduce_next(&mut self, result: *mut u8, stopped: bool) {
        let w = self.window.as_mut().expect("a window belongs to a reduce");
        let g = w.reduced;
        w.reduced += 1;
        let (reduce, ctx) = self.reduce.expect("a window belongs to a reduce");
        // SAFETY: the caller's reduce on root's calling thread, with job g's result.
        let code = unsafe { reduce(ctx, g as usize, result.cast()) };
        if code != 0 {
            self.failures.push(Failure {
                rank: self.me,
                at: Some(g),
                stopped: true,
                status: Status::SM_STOPPED,
                message: format!("{} stopped: reduce returned {code} for job {g}", self.call),
            });
            self.limit = self.limit.min(g + 1);
        } else if stopped {
            self.limit = self.limit.min(g + 1);
        }
    }

    /// How many jobs a rank that asked for `wants` gets now: None while the window has no room;
    /// Some(0) when every job is granted (or the map stopped). A rank asks for about 2 ms of
    /// its work; it gets that, but at most a guided share of what is left (so that the last
    /// jobs spread over the ranks), unless an eighth of what it asked is more: then that, up to
    /// an equal split of what is left (so that the tail of a map of tiny jobs is not a long run
    /// of tiny grants, while a rank whose jobs just became slower than its rate says takes at
    /// most its part).
    fn grant_len(&self, wants: u64) -> Option<u64> {
        if self.next >= self.limit {
            return Some(0);
        }
        let left = self.limit - self.next;
        let share = left / (2 * self.nranks as u64);
        let room = match &self.window {
            Some(w) => (w.reduced + w.len).saturating_sub(self.next),
            None => u64::MAX,
        };
        let floor = (wants / 8).min(left / self.nranks as u64);
        let len = wants.min(share.max(floor)).max(1);
        (room > 0).then(|| len.min(room).min(left))
    }

    /// Answers what can be answered: grants for ranks that asked (as `(rank, Grant, [start,
    /// len])`), openings of the gate, and stops. Reduces what arrived, and reports progress.
    pub fn serve(&mut self, out: &mut Vec<(usize, Tag, [u64; 2])>, may_call_back: bool) {
        if may_call_back {
            self.drain();
        }
        if self.told_limit > self.limit {
            self.told_limit = self.limit;
            for r in (0..self.nranks).filter(|&r| !self.books[r].finished) {
                out.push((r, Tag::Limit, [self.limit, 0]));
            }
        }
        // Start with a different rank each time, so that a window with little room is shared.
        let first = (self.next as usize) % self.nranks;
        for k in 0..self.nranks {
            let r = (first + k) % self.nranks;
            let Some(wants) = self.books[r].wants else {
                continue;
            };
            let Some(len) = self.grant_len(wants) else {
                continue;
            };
            self.books[r].wants = None;
            out.push((r, Tag::Grant, [self.next, len]));
            if len > 0 {
                self.books[r].open.push_back((self.next, len));
                self.next += len;
            }
        }
        let below = self.finished_below();
        for r in 0..self.nranks {
            if let Some(s) = self.books[r].gate.filter(|&s| s <= below) {
                self.books[r].gate = None;
                out.push((r, Tag::Open, [s, 0]));
            }
        }
        if may_call_back {
            if let Some(p) = self.progress.as_ref().filter(|p| p.due()) {
                p.tick(self.completed());
            }
        }
    }

    /// Every global job below this one has finished.
    fn finished_below(&self) -> u64 {
        self.books
            .iter()
            .filter_map(|b| b.open.front().map(|&(s, _)| s))
            .fold(self.next, u64::min)
    }

    fn completed(&self) -> u64 {
        self.books.iter().map(|b| b.completed).sum()
    }

    /// Nothing at or beyond `limit` is granted, reduced or started any more.
    fn lower_limit(&mut self, limit: u64) {
        self.limit = self.limit.min(limit);
    }

    /// `rank`'s local map ended: how, its workers, their kept results.
    pub fn finished(
        &mut self,
        rank: usize,
        failure: Option<Failure>,
        completed: u64,
        nworkers: usize,
        kept: Vec<(usize, Aligned)>,
    ) {
        let book = &mut self.books[rank];
        book.finished = true;
        // Its segments are finished, or will never run (it stopped): no job waits for them at
        // the ordered gate (its last segments' completion may not have been reported yet).
        book.open.clear();
        book.wants = None;
        book.gate = None;
        book.completed = book.completed.max(completed);
        book.nworkers = nworkers;
        book.kept = kept;
        if let Some(f) = failure {
            // Jobs at and beyond the failure are not reduced (but a stopping job is); a failure
            // that lost no job stops the map where the grants are.
            let end = match f.at {
                Some(g) if f.stopped => g + 1,
                Some(g) => g,
                None => self.next,
            };
            self.lower_limit(end);
            self.failures.push(f);
        }
    }

    pub fn all_finished(&self) -> bool {
        self.books.iter().all(|b| b.finished)
    }

    /// Once every rank finished: the status and message of the map, after worker_reduce (when
    /// given) for every worker of every rank, in (rank, worker) order.
    pub fn outcome(
        &mut self,
        worker_reduce: Option<(crate::engine::task::WorkerFiniFn, *mut c_void)>,
    ) -> (Status, Option<String>) {
        self.drain();
        if let Some(p) = &self.progress {
            p.finish(self.completed());
        }
        // The first failure in job order wins, as on one node; then the lowest rank.
        let first = self
            .failures
            .iter()
            .min_by_key(|f| (f.at.unwrap_or(u64::MAX), f.rank));
        if let Some(f) = first.filter(|f| f.status != Status::SM_STOPPED) {
            return (f.status, Some(f.message.clone()));
        }
        let stopped = first.map(|f| f.message.clone());
        let call = &self.call;
        if let Some((worker_reduce, ctx)) = worker_reduce {
            let mut base = 0;
            for (rank, book) in self.books.iter_mut().enumerate() {
                for (w, bytes) in &mut book.kept {
                    let worker = base + *w;
                    let result = bytes.ptr();
                    // SAFETY: the caller's worker_reduce, with that worker's result
                    // (wresult_size bytes) on root's calling thread.
                    let code = unsafe { worker_reduce(ctx, worker as i32, result.cast()) };
                    if code != 0 {
                        return (
                            Status::SM_STOPPED,
                            Some(format!(
                                "{call} stopped: worker_reduce returned {code} for worker \
                                 {worker} (worker {w} of rank {rank})"
                            )),
                        );
                    }
                }
                base += book.nworkers;
            }
        }
        match stopped {
            Some(message) => (Status::SM_STOPPED, Some(message)),
            None => {
                if let Some(w) = &self.window {
                    assert_eq!(
                        w.reduced, self.njobs,
                        "every job completed, so every one was reduced"
                    );
                }
                (Status::SM_OK, None)
            }
        }
    }
}
