//! One rank's driver: it asks root for jobs and feeds them to its local map, ships results to
//! root, asks for the ordered gate to open, applies stops, and reports how its part ended. On
//! root it also runs root's side (root.rs), speaking to itself through an inbox instead of the
//! transport. Every method runs on the rank's calling thread (README.md).

use super::link::{word, words_to_bytes, Link, Tag};
use super::root::{Aligned, Failure, Root};
use super::RankMap;
use crate::abi::SM_RESULT_ALIGN;
use crate::engine::control::{Control, NO_JOB};
use crate::engine::feed::Feeder;
use crate::engine::frame;
use crate::engine::outcome::Outcome;
use crate::engine::report::{self, Ran};
use crate::status::{Error, Result, Status};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::time::{Duration, Instant};

/// Results are sent in batches of about this many bytes; a result this large goes alone,
/// straight from where the local map keeps it.
const BATCH_BYTES: usize = 64 << 10;
/// A batch is sent at the latest this long after its first result (root may be waiting for it).
const BATCH_AGE: Duration = Duration::from_millis(1);
/// A rank asks for the jobs it could run in about this long.
const ASK_FOR: Duration = Duration::from_millis(2);
const MAX_ASK: u64 = 1 << 24;
/// How long a driver with nothing to do sleeps between two looks at its messages.
const IDLE: Duration = Duration::from_micros(50);

/// Global jobs fed to the local map as local jobs `[local, local + len)`.
#[derive(Clone, Copy)]
struct Segment {
    local: u64,
    global: u64,
    len: u64,
}

struct State {
    /// Segments fed and still needed (to translate a job not yet finished or reduced).
    segments: VecDeque<Segment>,
    /// Segments dropped from the front of `segments`.
    dropped: u64,
    /// Segments finished (counted from the first), and how many root was told of.
    done: u64,
    told_done: u64,
    /// Local jobs fed so far.
    fed: u64,
    /// Grants not fed yet (the local map's ring was full, or it has not started).
    pending: VecDeque<(u64, u64)>,
    /// A request is on its way to root.
    asked: bool,
    last_ask: u64,
    last_grant: u64,
    /// No more grants will come (root said so, or the map was stopped).
    ended: bool,
    feed_ended: bool,
    /// No job at or beyond this global job starts (root's stop).
    stop_at: u64,
    /// Local jobs below it finished (as last seen), and were reduced (with results shipped).
    finished_below: u64,
    reduced_below: u64,
    /// The gate opening a job waits for that root was asked for.
    gate_asked: u64,
    /// Results not sent yet, and when the first of them was added.
    /// Results not sent yet, as runs of consecutive jobs: a header [first job, count, 1 if the
    /// last one returned SM_STOP, 0] and each result padded to SM_RESULT_ALIGN bytes, so that root
    /// can reduce them where they arrive. `run`: the open run's header offset and next job.
    batch: Vec<u8>,
    run: Option<(usize, u64)>,
    batch_since: Option<Instant>,
    /// How long the workers had jobs (between polls without a worker waiting for the feed), to
    /// measure their rate; and the last poll.
    busy: Duration,
    last_poll: Instant,
}

pub struct Driver<'a> {
    link: &'a Link<'a>,
    /// The function called and this rank ("sm_mpi_map: rank 2"), for messages.
    pub label: String,
    me: usize,
    root: usize,
    nworkers: usize,
    result_size: usize,
    /// Every rank's per-worker results have this size (the collective check made sure).
    wresult_size: usize,
    /// Results go to root (root has a reduce).
    ships: bool,
    state: RefCell<State>,
    /// Messages root sends to itself.
    inbox: RefCell<VecDeque<(Tag, Vec<u64>)>>,
    /// Root's side, on root.
    root_side: Option<RefCell<Root>>,
    /// The first failure of the transport (poll and the trampolines cannot return it).
    broken: RefCell<Option<Error>>,
    /// The segment (counted from the first fed) of the last `global` lookup.
    last_segment: Cell<u64>,
}

impl<'a> Driver<'a> {
    /// The driver of `m` on this rank, whose pool has `nworkers` workers; `ships`: root has a
    /// reduce, so results travel.
    pub fn new(
        link: &'a Link<'a>,
        m: &RankMap,
        root: usize,
        nworkers: usize,
        ships: bool,
        root_side: Option<Root>,
    ) -> Driver<'a> {
        let me = link.rank();
        Driver {
            link,
            label: format!("{}: rank {me}", m.call),
            me,
            root,
            nworkers,
            result_size: m.result_size,
            wresult_size: m.options.wresult_size,
            ships,
            state: RefCell::new(State {
                segments: VecDeque::new(),
                dropped: 0,
                done: 0,
                told_done: 0,
                fed: 0,
                pending: VecDeque::new(),
                asked: false,
                last_ask: nworkers as u64,
                last_grant: 0,
                ended: false,
                feed_ended: false,
                stop_at: NO_JOB,
                finished_below: 0,
                reduced_below: 0,
                gate_asked: NO_JOB,
                batch: Vec::new(),
                run: None,
                batch_since: None,
                busy: Duration::ZERO,
                last_poll: Instant::now(),
            }),
            inbox: RefCell::new(VecDeque::new()),
            root_side: root_side.map(RefCell::new),
            broken: RefCell::new(None),
            last_segment: Cell::new(0),
        }
    }

    fn send(&self, to: usize, tag: Tag, words: &[u64]) -> Result<()> {
        if to == self.me {
            self.inbox.borrow_mut().push_back((tag, words.to_vec()));
            Ok(())
        } else {
            self.link.send_words(to, tag, words)
        }
    }

    /// Asks root for jobs and waits for the answer: true when jobs came, false when there are
    /// none for this rank (then it need not start its workers at all).
    pub fn first_grant(&self) -> Result<bool> {
        self.ask(None)?;
        loop {
            self.receive(None)?;
            self.serve()?;
            self.receive(None)?;
            let st = self.state.borrow();
            if !st.pending.is_empty() {
                return Ok(true);
            }
            if st.ended {
                return Ok(false);
            }
            drop(st);
            std::thread::sleep(IDLE);
        }
    }

    /// Asks root for about `ASK_FOR` of work at the rate this rank's workers run jobs while
    /// they have some; four times the last request when they ran dry (the rate is not known
    /// yet, or grants are too small for it). The first request is one job per worker.
    fn ask(&self, ctl: Option<&Control>) -> Result<()> {
        let mut st = self.state.borrow_mut();
        let n = match ctl {
            None => st.last_ask,
            Some(ctl) => {
                let busy = st.busy.as_nanos();
                let by_rate = match st.finished_below {
                    0 => 0,
                    done if busy > 0 => (done as u128 * ASK_FOR.as_nanos() / busy) as u64,
                    _ => 0,
                };
                if ctl.feed_waiters() > 0 {
                    by_rate.max(st.last_ask.saturating_mul(4))
                } else {
                    by_rate.max(st.last_ask / 2)
                }
            }
        }
        .clamp(self.nworkers as u64, MAX_ASK);
        st.last_ask = n;
        st.asked = true;
        let done = st.finished_below;
        drop(st);
        self.send(self.root, Tag::Want, &[n, done])
    }

    /// Handles every message waiting. Only `Outcome` is returned (the caller waits for it last).
    fn receive(&self, ctl: Option<&Control>) -> Result<Option<(Status, Option<String>)>> {
        loop {
            let next = self.inbox.borrow_mut().pop_front();
            if let Some((tag, words)) = next {
                self.handle(self.me, tag, &words, ctl)?;
                continue;
            }
            let Some((from, tag, len)) = self.link.probe()? else {
                return Ok(None);
            };
            if tag == Tag::Results {
                let mut batch = Aligned::zeroed(len);
                self.link.recv_into(from, tag, batch.bytes())?;
                self.take_results(&mut batch);
                continue;
            }
            let bytes = self.link.recv(from, tag, len)?;
            match tag {
                Tag::Results => unreachable!("received above"),
                Tag::BigResult => self.take_big_result(from, &bytes)?,
                Tag::Finished => self.take_finished(from, &bytes)?,
                Tag::Outcome => {
                    let status =
                        Status::from_raw(word(&bytes, 0) as i64).unwrap_or(Status::SM_ERR_STATE);
                    let len = word(&bytes, 1) as usize;
                    let message = (len > 0)
                        .then(|| String::from_utf8_lossy(&bytes[16..16 + len]).into_owned());
                    return Ok(Some((status, message)));
                }
                _ => {
                    let words: Vec<u64> = (0..len / 8).map(|i| word(&bytes, i)).collect();
                    self.handle(from, tag, &words, ctl)?;
                }
            }
        }
    }

    fn handle(&self, from: usize, tag: Tag, words: &[u64], ctl: Option<&Control>) -> Result<()> {
        match tag {
            Tag::Grant => {
                let mut st = self.state.borrow_mut();
                st.asked = false;
                let (start, len) = (words[0], words[1]);
                if len == 0 {
                    st.ended = true;
                } else if start < st.stop_at {
                    let len = len.min(st.stop_at - start);
                    st.pending.push_back((start, len));
                    st.last_grant = len;
                }
            }
            Tag::Open => {
                if let Some(ctl) = ctl {
                    ctl.open_gate(words[0]);
                }
            }
            Tag::Limit => self.stop(words[0], ctl),
            Tag::Want | Tag::Done | Tag::Gate => {
                self.root_side().borrow_mut().note(from, tag, words)
            }
            _ => {
                return Err(Error::new(
                    Status::SM_ERR_STATE,
                    format!(
                        "{}: protocol error: unexpected {tag:?} from rank {from}",
                        self.label
                    ),
                ))
            }
        }
        Ok(())
    }

    fn root_side(&self) -> &RefCell<Root> {
        self.root_side.as_ref().expect("only root is sent this")
    }

    /// Root's stop: no job at or beyond global job `g` starts here.
    fn stop(&self, g: u64, ctl: Option<&Control>) {
        let mut st = self.state.borrow_mut();
        st.stop_at = st.stop_at.min(g);
        st.ended = true;
        let mut kept = VecDeque::new();
        for &(start, len) in &st.pending {
            if start < g {
                kept.push_back((start, len.min(g - start)));
            }
        }
        st.pending = kept;
        if let Some(ctl) = ctl {
            // The first local job at or beyond g: in the first fed segment that ends beyond it,
            // else after every job fed and every grant still to feed (all of which are below g).
            let local = match st.segments.iter().find(|s| g < s.global + s.len) {
                Some(s) => s.local + g.saturating_sub(s.global),
                None => st.fed + st.pending.iter().map(|p| p.1).sum::<u64>(),
            };
            ctl.stop_from(local);
        }
    }

    /// The global number of local job `local`, while it is in a kept segment. Jobs are looked
    /// up in increasing order (reduce) or near the end (failures): the segment of the last
    /// lookup is tried first.
    fn global(&self, local: u64) -> Option<u64> {
        let st = self.state.borrow();
        let hint = self.last_segment.get().wrapping_sub(st.dropped) as usize;
        let i = match st.segments.get(hint) {
            Some(s) if s.local <= local && local < s.local + s.len => hint,
            _ => st.segments.partition_point(|s| s.local + s.len <= local),
        };
        let s = st.segments.get(i).filter(|s| s.local <= local)?;
        self.last_segment.set(st.dropped + i as u64);
        Some(s.global + (local - s.local))
    }

    /// Root: answers wants, opens gates, tells stops, reduces, reports progress.
    fn serve(&self) -> Result<()> {
        let Some(root) = &self.root_side else {
            return Ok(());
        };
        let mut out = Vec::new();
        // reduce and progress are the caller's callbacks: not while this thread is inside a job
        // (a serial rank's job waiting at the ordered gate polls from there).
        root.borrow_mut().serve(&mut out, !frame::in_job());
        for (to, tag, words) in out {
            self.send(to, tag, &words)?;
        }
        Ok(())
    }

    /// Everything a poll does while the local map runs.
    fn step(&self, ctl: &Control) -> Result<()> {
        self.receive(Some(ctl))?;
        self.observe(ctl)?;
        self.serve()?;
        self.receive(Some(ctl))?;
        self.feed(ctl);
        Ok(())
    }

    /// Looks at the local map: finished segments (told to root), results due, whether to ask
    /// for more, and the ordered gate.
    fn observe(&self, ctl: &Control) -> Result<()> {
        let mut st = self.state.borrow_mut();
        let now = Instant::now();
        if ctl.feed_waiters() == 0 {
            let since = now - st.last_poll;
            st.busy += since;
        }
        st.last_poll = now;
        let below = ctl.finished_below().min(st.fed);
        st.finished_below = st.finished_below.max(below);
        let below = st.finished_below;
        while st.done < st.dropped + st.segments.len() as u64 {
            let s = st.segments[(st.done - st.dropped) as usize];
            if s.local + s.len > below {
                break;
            }
            st.done += 1;
        }
        // Keep what may still be translated: a job not reduced yet, or the one that failed (the
        // local limit is one past it).
        let mut keep_from = below.min(
            ctl.header()
                .limit
                .load(std::sync::atomic::Ordering::SeqCst)
                .saturating_sub(1),
        );
        if self.ships {
            keep_from = keep_from.min(st.reduced_below);
        }
        while st.dropped < st.done {
            let s = st.segments[0];
            if s.local + s.len > keep_from {
                break;
            }
            st.segments.pop_front();
            st.dropped += 1;
        }
        let newly_done = st.done > st.told_done;
        let hungry = ctl.unclaimed() == 0 && st.pending.is_empty();
        let due = !st.batch.is_empty()
            && (newly_done || hungry || st.batch_since.is_some_and(|t| t.elapsed() >= BATCH_AGE));
        drop(st);
        if due {
            self.flush()?;
        }
        let mut st = self.state.borrow_mut();
        if newly_done {
            st.told_done = st.done;
            let (done, below) = (st.done, st.finished_below);
            drop(st);
            self.send(self.root, Tag::Done, &[done, below])?;
            st = self.state.borrow_mut();
        }
        let have = ctl.unclaimed() + st.pending.iter().map(|p| p.1).sum::<u64>();
        let ask = !st.asked && !st.ended && have <= st.last_grant / 2;
        drop(st);
        if ask {
            self.ask(Some(ctl))?;
        }
        if let Some(s) = ctl.gate_wanted() {
            let mut st = self.state.borrow_mut();
            if st.gate_asked != s {
                st.gate_asked = s;
                drop(st);
                self.send(self.root, Tag::Gate, &[s])?;
            }
        }
        Ok(())
    }

    /// Feeds the grants waiting, as far as the local map's ring takes them; ends the feed once
    /// no more will come.
    fn feed(&self, ctl: &Control) {
        let mut st = self.state.borrow_mut();
        while let Some(&(global, len)) = st.pending.front() {
            if !ctl.feed(global, len) {
                break;
            }
            let local = st.fed;
            st.segments.push_back(Segment { local, global, len });
            st.fed += len;
            st.pending.pop_front();
        }
        if st.ended && st.pending.is_empty() && !st.feed_ended {
            st.feed_ended = true;
            ctl.end_feed();
        }
    }

    /// Sends the results batched so far to root.
    fn flush(&self) -> Result<()> {
        let batch = {
            let mut st = self.state.borrow_mut();
            st.batch_since = None;
            st.run = None;
            std::mem::take(&mut st.batch)
        };
        if !batch.is_empty() {
            self.link.send(self.root, Tag::Results, &batch)?;
        }
        Ok(())
    }

    /// A result of this rank's local map, in local order (the local reduce's trampoline).
    fn deliver(&self, local: u64, result: *const u8, stopped: bool) -> Result<()> {
        let g = self
            .global(local)
            .expect("a job being reduced is in a kept segment");
        self.state.borrow_mut().reduced_below = local + 1;
        let flags = stopped as u64;
        let size = self.result_size;
        if let Some(root) = &self.root_side {
            let mut root = root.borrow_mut();
            let in_job = frame::in_job();
            if !in_job && root.reduces_next(g) {
                // SAFETY: the local map's result of this job, result_size bytes aligned to
                // SM_RESULT_ALIGN, untouched until this trampoline returns.
                root.reduce_next(result as *mut u8, stopped);
            } else {
                if let Some(slot) = root.slot(g) {
                    if size > 0 {
                        // SAFETY: `result` holds result_size bytes (the local map's result).
                        slot.copy_from_slice(unsafe { std::slice::from_raw_parts(result, size) });
                    }
                }
                root.filled(g, stopped);
            }
            if !in_job {
                root.drain();
            }
            return Ok(());
        }
        if size >= BATCH_BYTES {
            self.link
                .send_words(self.root, Tag::BigResult, &[g, flags])?;
            return self.link.send_data(self.root, result, size);
        }
        let full = {
            let mut st = self.state.borrow_mut();
            let st = &mut *st;
            // A run continues while the jobs follow each other (a segment, reduced in order).
            match st.run.filter(|&(_, next)| next == g) {
                Some((at, _)) => {
                    let count = word(&st.batch, at / 8 + 1) + 1;
                    st.batch[at + 8..at + 16].copy_from_slice(&count.to_le_bytes());
                }
                None => {
                    let at = st.batch.len();
                    st.batch.extend_from_slice(&words_to_bytes(&[g, 1, 0, 0]));
                    st.run = Some((at, g));
                }
            }
            let (at, _) = st.run.expect("a run was just started or continued");
            st.run = Some((at, g + 1));
            if stopped {
                st.batch[at + 16..at + 24].copy_from_slice(&1u64.to_le_bytes());
                st.run = None;
            }
            if size > 0 {
                // SAFETY: as above.
                st.batch
                    .extend_from_slice(unsafe { std::slice::from_raw_parts(result, size) });
                let padded = st.batch.len().next_multiple_of(SM_RESULT_ALIGN);
                st.batch.resize(padded, 0);
            }
            st.batch_since.get_or_insert_with(Instant::now);
            st.batch.len() >= BATCH_BYTES
        };
        if full {
            self.flush()?;
        }
        Ok(())
    }

    /// Root: a batch of results from a rank (see `State::batch`). A result next in job order
    /// is reduced where it arrived; the others wait in the window.
    fn take_results(&self, batch: &mut Aligned) {
        let mut root = self.root_side().borrow_mut();
        let stride = self.result_size.next_multiple_of(SM_RESULT_ALIGN);
        let in_job = frame::in_job();
        let base = batch.ptr();
        let bytes = batch.bytes();
        let mut at = 0;
        while at < bytes.len() {
            let (start, count, stopped) = (
                word(bytes, at / 8),
                word(bytes, at / 8 + 1),
                word(bytes, at / 8 + 2) != 0,
            );
            at += 32;
            for i in 0..count {
                let g = start + i;
                let last_stopped = stopped && i + 1 == count;
                let result = match self.result_size {
                    0 => std::ptr::null_mut(),
                    // SAFETY: the result's bytes are within the batch (at + result_size <= len).
                    _ => unsafe { base.add(at) },
                };
                if !in_job && root.reduces_next(g) {
                    root.reduce_next(result, last_stopped);
                } else {
                    if let Some(slot) = root.slot(g) {
                        slot.copy_from_slice(&bytes[at..at + self.result_size]);
                    }
                    root.filled(g, last_stopped);
                }
                at += stride;
            }
        }
        if !in_job {
            root.drain();
        }
    }

    /// Root: one large result, its bytes following.
    fn take_big_result(&self, from: usize, words: &[u8]) -> Result<()> {
        let g = word(words, 0);
        let mut root = self.root_side().borrow_mut();
        let slot = root.slot(g).expect("results travel only when root reduces");
        self.link.recv_data(from, slot)?;
        root.filled(g, word(words, 1) != 0);
        Ok(())
    }

    /// Root: how a rank's part ended, its kept per-worker results following.
    fn take_finished(&self, from: usize, bytes: &[u8]) -> Result<()> {
        let w = |i| word(bytes, i);
        let (nkept, len) = (w(6) as usize, w(7) as usize);
        let failure = (w(0) != 0).then(|| Failure {
            rank: from,
            at: (w(1) != NO_JOB).then_some(w(1)),
            stopped: w(2) != 0,
            status: Status::from_raw(w(3) as i64).unwrap_or(Status::SM_ERR_STATE),
            message: String::from_utf8_lossy(&bytes[8 * (8 + nkept)..8 * (8 + nkept) + len])
                .into_owned(),
        });
        let mut kept = Vec::with_capacity(nkept);
        for i in 0..nkept {
            let mut data = Aligned::zeroed(self.wresult_size);
            self.link.recv_data(from, data.bytes())?;
            kept.push((w(8 + i) as usize, data));
        }
        self.root_side()
            .borrow_mut()
            .finished(from, failure, w(4), w(5) as usize, kept);
        Ok(())
    }

    /// After the local map (if one ran): tells root how this rank's part ended.
    pub fn finish(&self, ran: Option<Result<Ran>>, njobs: u64) -> Result<()> {
        if let Some(e) = self.broken.borrow_mut().take() {
            return Err(e);
        }
        self.flush()?;
        let ran_outcome = match &ran {
            Some(Ok(ran)) => Some(ran.outcome),
            _ => None,
        };
        let (failure, nworkers, kept) = match ran {
            None => (None, self.nworkers, Vec::new()),
            Some(Err(e)) => (Some(self.failure_of_error(e)), self.nworkers, Vec::new()),
            Some(Ok(ran)) => (self.failure_of(ran.outcome, njobs), ran.nworkers, ran.kept),
        };
        let completed = {
            let st = self.state.borrow();
            match &ran_outcome {
                // Every fed job finished (the last ones may not have been seen by a poll).
                Some(Outcome::Completed) if st.stop_at == NO_JOB => st.fed,
                _ => st.finished_below,
            }
        };
        if let Some(root) = &self.root_side {
            let kept = kept
                .into_iter()
                .map(|(w, bytes)| {
                    let mut data = Aligned::zeroed(bytes.len());
                    data.bytes().copy_from_slice(&bytes);
                    (w, data)
                })
                .collect();
            root.borrow_mut()
                .finished(self.me, failure, completed, nworkers, kept);
            return Ok(());
        }
        let message = failure
            .as_ref()
            .map_or(String::new(), |f| f.message.clone());
        let mut words = vec![
            failure.is_some() as u64,
            failure.as_ref().and_then(|f| f.at).unwrap_or(NO_JOB),
            failure.as_ref().is_some_and(|f| f.stopped) as u64,
            failure.as_ref().map_or(0, |f| f.status as i32 as u64),
            completed,
            nworkers as u64,
            kept.len() as u64,
            message.len() as u64,
        ];
        words.extend(kept.iter().map(|(w, _)| *w as u64));
        let mut bytes = words_to_bytes(&words);
        bytes.extend_from_slice(message.as_bytes());
        self.link.send(self.root, Tag::Finished, &bytes)?;
        for (_, data) in &kept {
            self.link.send_data(self.root, data.as_ptr(), data.len())?;
        }
        Ok(())
    }

    /// A local map that could not run (or broke off) lost the jobs it was fed and did not finish.
    fn failure_of_error(&self, e: Error) -> Failure {
        let st = self.state.borrow();
        let at = (st.finished_below < st.fed)
            .then(|| {
                st.segments
                    .iter()
                    .find(|s| s.local + s.len > st.finished_below)
            })
            .flatten()
            .map(|s| s.global + st.finished_below.saturating_sub(s.local));
        Failure {
            rank: self.me,
            at,
            stopped: false,
            status: e.status,
            message: e.message,
        }
    }

    /// The local outcome in global job numbers, as a failure (None when it completed).
    fn failure_of(&self, outcome: Outcome, njobs: u64) -> Option<Failure> {
        // A failing job's segment is kept until the map ends (observe keeps what is below the
        // local limit), so the translation cannot miss; if it did, the failure still stands.
        let gl = |local: u64| {
            let g = self.global(local);
            debug_assert!(g.is_some(), "local job {local} has no global number");
            Some(g.unwrap_or(NO_JOB))
        };
        let first_unfinished = || {
            let below = self.state.borrow().finished_below;
            gl(below)
        };
        let (outcome, at, stopped) = match outcome {
            Outcome::Completed => return None,
            Outcome::StoppedByJob(j) => {
                let g = gl(j)?;
                (Outcome::StoppedByJob(g), Some(g), true)
            }
            Outcome::StoppedByReduce { job, code } => {
                let g = gl(job)?;
                (Outcome::StoppedByReduce { job: g, code }, Some(g), true)
            }
            Outcome::JobFailed { job, end } => {
                let g = gl(job)?;
                (Outcome::JobFailed { job: g, end }, Some(g), false)
            }
            Outcome::WorkerDied(d) => {
                let d = self.global_death(d);
                let at = d.job.or((d.lost_from != NO_JOB).then_some(d.lost_from));
                (Outcome::WorkerDied(d), at, false)
            }
            Outcome::Interrupted { signal, death } => {
                let death = death.map(|d| self.global_death(d));
                let at = death.and_then(|d| d.job).or_else(first_unfinished);
                (Outcome::Interrupted { signal, death }, at, false)
            }
            o @ (Outcome::HookFailed { .. } | Outcome::StoppedByWorkerReduce { .. }) => {
                (o, first_unfinished(), false)
            }
        };
        let (status, message) =
            match report::map_status(&self.label, outcome, njobs, None, self.ships) {
                Ok((status, message)) => (status, message.unwrap_or_default()),
                Err(e) => (e.status, e.message),
            };
        Some(Failure {
            rank: self.me,
            at,
            stopped,
            status,
            message,
        })
    }

    fn global_death(&self, mut d: crate::engine::outcome::Death) -> crate::engine::outcome::Death {
        d.job = d.job.and_then(|j| self.global(j));
        if d.lost_from != NO_JOB {
            d.lost_from = self.global(d.lost_from).unwrap_or(NO_JOB);
        }
        d
    }

    /// Root, after its own part: serves the others until every rank finished, then tells each
    /// the outcome. Another rank: waits for the outcome.
    pub fn conclude(
        &self,
        worker_reduce: Option<(crate::engine::task::WorkerFiniFn, *mut c_void)>,
    ) -> Result<(Status, Option<String>)> {
        let Some(root) = &self.root_side else {
            loop {
                if let Some(outcome) = self.receive(None)? {
                    return Ok(outcome);
                }
                std::thread::sleep(IDLE);
            }
        };
        loop {
            self.receive(None)?;
            self.serve()?;
            if root.borrow().all_finished() {
                break;
            }
            std::thread::sleep(IDLE);
        }
        let (status, message) = root.borrow_mut().outcome(worker_reduce);
        let text = message.clone().unwrap_or_default();
        let mut bytes = words_to_bytes(&[status as i32 as u64, text.len() as u64]);
        bytes.extend_from_slice(text.as_bytes());
        for r in (0..self.link.nranks()).filter(|&r| r != self.me) {
            self.link.send(r, Tag::Outcome, &bytes)?;
        }
        Ok((status, message))
    }

    /// The reducer the local map calls, in local job order: results go to root.
    pub fn reducer(&self) -> crate::engine::supervise::Reducer {
        crate::engine::supervise::Reducer {
            reduce: reduce_done,
            ctx: self as *const Driver as *mut c_void,
            reduce_stopped: Some(reduce_stopped),
        }
    }

    fn trampoline(&self, job: usize, result: *mut c_void, stopped: bool) -> c_int {
        match self.deliver(job as u64, result as *const u8, stopped) {
            Ok(()) => 0,
            Err(e) => {
                self.broken.borrow_mut().get_or_insert(e);
                1
            }
        }
    }
}

unsafe extern "C" fn reduce_done(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    // SAFETY: ctx is the driver that built this reducer; it outlives the local map.
    unsafe { &*(ctx as *const Driver) }.trampoline(job, result, false)
}

unsafe extern "C" fn reduce_stopped(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    // SAFETY: as in reduce_done.
    unsafe { &*(ctx as *const Driver) }.trampoline(job, result, true)
}

impl Feeder for Driver<'_> {
    fn poll(&self, ctl: &Control) {
        if self.broken.borrow().is_some() {
            return;
        }
        if let Err(e) = self.step(ctl) {
            self.broken.borrow_mut().get_or_insert(e);
            ctl.stop_from(0);
            ctl.end_feed();
        }
    }
}
