//! The transport made safe, and the messages of the protocol (README.md): each a tag and a few
//! little-endian u64 words, some followed by bytes.

use super::transport::sm_transport;
use crate::status::{Error, Result, Status};
use std::ffi::{c_int, c_void, CStr};

/// What a message is; its tag on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Tag {
    /// rank -> root: [jobs it could start soon, jobs it finished so far]
    Want = 1,
    /// root -> rank: [first global job, count]; count 0: no more jobs for anyone
    Grant = 2,
    /// rank -> root: results, each [global job, flags] + result_size bytes
    Results = 3,
    /// rank -> root: [global job, flags], its result following as `Data`
    BigResult = 4,
    /// rank -> root: [segments of this rank finished, jobs finished so far]
    Done = 5,
    /// rank -> root: [segment start] a job waits at the ordered gate for
    Gate = 6,
    /// root -> rank: [global job] every job below which has finished
    Open = 7,
    /// root -> rank: [global job] from which no job is to start
    Limit = 8,
    /// rank -> root: how its local map ended (`Finished`), then per-worker results as `Data`
    Finished = 9,
    /// bytes that belong to the message before
    Data = 10,
    /// root -> rank: the map's status and message; the last message of the map
    Outcome = 11,
}

impl Tag {
    fn from(tag: c_int) -> Option<Tag> {
        use Tag::*;
        [
            Want, Grant, Results, BigResult, Done, Gate, Open, Limit, Finished, Data, Outcome,
        ]
        .into_iter()
        .find(|t| *t as c_int == tag)
    }
}

/// The largest piece of bytes sent as one message (MPI counts are ints).
const PIECE: usize = 1 << 30;

/// A transport of a live map: send, receive and the collectives, failures as errors.
pub struct Link<'a> {
    t: &'a sm_transport,
    call: &'a str,
}

impl<'a> Link<'a> {
    pub fn new(t: &'a sm_transport, call: &'a str) -> Link<'a> {
        Link { t, call }
    }

    pub fn rank(&self) -> usize {
        self.t.rank as usize
    }

    pub fn nranks(&self) -> usize {
        self.t.nranks as usize
    }

    fn check(&self, code: c_int, what: &str) -> Result<()> {
        if code == 0 {
            return Ok(());
        }
        // SAFETY: the transport's error function returns a NUL-terminated message (never NULL).
        let said = unsafe { CStr::from_ptr((self.t.error)(self.t.comm)) };
        Err(Error::new(
            Status::SM_ERR_STATE,
            format!(
                "{}: rank {}: {what} failed: {}",
                self.call,
                self.rank(),
                said.to_string_lossy()
            ),
        ))
    }

    /// Sends `bytes` to `to` (at most `PIECE` bytes: see `send_data` for more).
    pub fn send(&self, to: usize, tag: Tag, bytes: &[u8]) -> Result<()> {
        debug_assert!(bytes.len() <= PIECE);
        // SAFETY: the transport's send with a buffer of `len` readable bytes.
        let code = unsafe {
            (self.t.send)(
                self.t.comm,
                to as c_int,
                tag as c_int,
                bytes.as_ptr() as *const c_void,
                bytes.len(),
            )
        };
        self.check(code, "sending")
    }

    pub fn send_words(&self, to: usize, tag: Tag, words: &[u64]) -> Result<()> {
        self.send(to, tag, &words_to_bytes(words))
    }

    /// Sends `len` bytes from `data` as `Data` messages of at most `PIECE` bytes each.
    pub fn send_data(&self, to: usize, data: *const u8, len: usize) -> Result<()> {
        let mut sent = 0;
        while sent < len {
            let n = (len - sent).min(PIECE);
            // SAFETY: `data` has `len` readable bytes (the caller's contract).
            let piece = unsafe { std::slice::from_raw_parts(data.add(sent), n) };
            self.send(to, Tag::Data, piece)?;
            sent += n;
        }
        Ok(())
    }

    /// The next message waiting, if any: (sender, tag, length).
    pub fn probe(&self) -> Result<Option<(usize, Tag, usize)>> {
        let (mut from, mut tag, mut len) = (0 as c_int, 0 as c_int, 0usize);
        // SAFETY: the transport's probe with pointers to our locals.
        let code = unsafe { (self.t.probe)(self.t.comm, &mut from, &mut tag, &mut len) };
        match code {
            0 => Ok(None),
            1 => match Tag::from(tag) {
                Some(t) => Ok(Some((from as usize, t, len))),
                None => Err(Error::new(
                    Status::SM_ERR_STATE,
                    format!(
                        "{}: a message with unknown tag {tag} from rank {from}",
                        self.call
                    ),
                )),
            },
            c => self.check(c, "probing").map(|_| None),
        }
    }

    /// Receives the next message from `from` with `tag` into `buf` (its whole length), waiting
    /// for it if need be.
    pub fn recv_into(&self, from: usize, tag: Tag, buf: &mut [u8]) -> Result<()> {
        // SAFETY: the transport's recv into `buf`, writable for its length.
        let code = unsafe {
            (self.t.recv)(
                self.t.comm,
                from as c_int,
                tag as c_int,
                buf.as_mut_ptr() as *mut c_void,
                buf.len(),
            )
        };
        self.check(code, "receiving")
    }

    pub fn recv(&self, from: usize, tag: Tag, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.recv_into(from, tag, &mut buf)?;
        Ok(buf)
    }

    /// Receives `into.len()` bytes that `from` sends with `send_data` right after the message
    /// just received (waiting for them: a sender sends its data at once). Messages of other
    /// ranks wait for the next probe.
    pub fn recv_data(&self, from: usize, into: &mut [u8]) -> Result<()> {
        for piece in into.chunks_mut(PIECE) {
            self.recv_into(from, Tag::Data, piece)?;
        }
        Ok(())
    }

    /// Every rank's `mine` (all of the same length), in rank order.
    pub fn allgather(&self, mine: &[u8]) -> Result<Vec<u8>> {
        let mut all = vec![0u8; mine.len() * self.nranks()];
        // SAFETY: the transport's allgather, `mine` readable and `all` writable for their lengths.
        let code = unsafe {
            (self.t.allgather)(
                self.t.comm,
                mine.as_ptr() as *const c_void,
                all.as_mut_ptr() as *mut c_void,
                mine.len(),
            )
        };
        self.check(code, "gathering the arguments")?;
        Ok(all)
    }
}

impl Link<'_> {
    /// Collective: `scounts[r]` bytes of `send` (packed in rank order) to rank r, and `rcounts[r]`
    /// bytes from rank r into `recv` (packed in rank order). `rcounts` must be what the others
    /// send here (the caller learned it beforehand).
    pub fn alltoallv(
        &self,
        send: &[u8],
        scounts: &[usize],
        recv: &mut [u8],
        rcounts: &[usize],
    ) -> Result<()> {
        assert_eq!(scounts.len(), self.nranks());
        assert_eq!(rcounts.len(), self.nranks());
        assert_eq!(scounts.iter().sum::<usize>(), send.len());
        assert_eq!(rcounts.iter().sum::<usize>(), recv.len());
        let (sdispls, rdispls) = (starts(scounts), starts(rcounts));
        // SAFETY: the transport's alltoallv; every count and displacement stays inside `send`
        // and `recv` (their sums are the buffers' lengths, checked above), and there are nranks
        // of each.
        let code = unsafe {
            (self.t.alltoallv)(
                self.t.comm,
                send.as_ptr() as *const c_void,
                scounts.as_ptr(),
                sdispls.as_ptr(),
                recv.as_mut_ptr() as *mut c_void,
                rcounts.as_ptr(),
                rdispls.as_ptr(),
            )
        };
        self.check(code, "exchanging data (alltoallv)")
    }
}

/// Where each of consecutive parts of `counts` elements starts (the exclusive prefix sums).
pub fn starts(counts: &[usize]) -> Vec<usize> {
    counts
        .iter()
        .scan(0usize, |at, &c| {
            let start = *at;
            *at += c;
            Some(start)
        })
        .collect()
}

pub fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The `i`th u64 word of a message (0 when the message is shorter).
pub fn word(bytes: &[u8], i: usize) -> u64 {
    bytes
        .get(8 * i..8 * i + 8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}
