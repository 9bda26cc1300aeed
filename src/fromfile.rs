//! `sm_fromfile`: read items of a binary file into new shared memory, with several threads.
//!
//! Each thread reads its own contiguous part of the range with pread, straight into the shared
//! mapping (no intermediate buffer). The sizes are checked against the file before any memory is
//! allocated, and a read that comes up short (the file shrank meanwhile) fails the call. A thread the
//! system refuses has its part read by the calling thread instead (`spawn_or_run`).

use crate::status::{Error, Result, Status};
use crate::sys::shm;
use crate::sys::spawn::{spawn_or_run, Started};
use std::ffi::CStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;

/// What one pread asks for at most: large enough to amortise the call, small enough to spread.
const READ_PIECE: usize = 8 << 20;
/// Files below this size are read by one thread.
const PARALLEL_MIN: usize = 4 << 20;

fn io_error(message: String) -> Error {
    Error::new(Status::SM_ERR_IO, message)
}

/// Reads `*count` items (`usize::MAX`: to the end of the file) of `itemsize` bytes from byte
/// `offset` of `path` into new `sm_empty` memory; sets `*count` to the number read.
pub fn fromfile(
    path: &CStr,
    offset: usize,
    itemsize: usize,
    count: &mut usize,
    threads: usize,
) -> Result<*mut u8> {
    let shown = path.to_string_lossy();
    if itemsize == 0 {
        return Err(Error::invalid(format!(
            "sm_fromfile('{shown}'): itemsize is 0"
        )));
    }
    let file = std::fs::File::open(std::ffi::OsStr::from_bytes(path.to_bytes()))
        .map_err(|e| io_error(format!("sm_fromfile: cannot open '{shown}': {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| io_error(format!("sm_fromfile: cannot stat '{shown}': {e}")))?;
    if !meta.is_file() {
        return Err(io_error(format!(
            "sm_fromfile: '{shown}' is not a regular file"
        )));
    }
    let length = meta.len();
    if offset as u64 > length {
        return Err(io_error(format!(
            "sm_fromfile: offset {offset} is past the end of '{shown}' ({length} bytes)"
        )));
    }
    let available = length - offset as u64;
    let n = if *count == usize::MAX {
        if available % itemsize as u64 != 0 {
            return Err(io_error(format!(
                "sm_fromfile: '{shown}' has {available} bytes after offset {offset}, which is not a \
                 whole number of {itemsize}-byte items"
            )));
        }
        (available / itemsize as u64) as usize
    } else {
        let wanted = count.checked_mul(itemsize).ok_or_else(|| {
            Error::invalid(format!(
                "sm_fromfile('{shown}'): count ({count}) * itemsize ({itemsize}) overflows size_t"
            ))
        })?;
        if wanted as u64 > available {
            return Err(io_error(format!(
                "sm_fromfile: '{shown}' is too short: {count} items of {itemsize} bytes need \
                 {wanted} bytes after offset {offset}, the file has {available}"
            )));
        }
        *count
    };
    let bytes = n * itemsize;
    let memory = shm::allocate(n, itemsize)
        .map_err(|e| Error::new(e.status, format!("sm_fromfile: '{shown}': {}", e.message)))?;
    if let Err(e) = read_parallel(&file, offset as u64, memory, bytes, threads, &shown) {
        shm::release(memory).expect("memory from shm::allocate above");
        return Err(e);
    }
    *count = n;
    Ok(memory)
}

/// A destination that threads fill at disjoint ranges.
#[derive(Clone, Copy)]
struct Destination(*mut u8);
// SAFETY: each thread writes only its own part (see read_parallel).
unsafe impl Send for Destination {}
// SAFETY: as above.
unsafe impl Sync for Destination {}

impl Destination {
    fn at(self, offset: usize) -> *mut u8 {
        self.0.wrapping_add(offset)
    }
}

fn read_parallel(
    file: &std::fs::File,
    offset: u64,
    memory: *mut u8,
    bytes: usize,
    threads: usize,
    shown: &str,
) -> Result<()> {
    let threads = if bytes < PARALLEL_MIN {
        1
    } else {
        threads.max(1)
    };
    // Parts in whole pieces, so that threads do not share pages at the seams.
    let pieces = bytes.div_ceil(READ_PIECE);
    let per = pieces.div_ceil(threads).max(1) * READ_PIECE;
    let dst = Destination(memory);
    let read_part = |start: usize| -> Result<()> {
        let end = (start + per).min(bytes);
        // Fault this part's pages in with one call (each thread its own part, in parallel) rather
        // than one trap per page during the copy. Best effort: older kernels refuse the advice and
        // the copy then faults the pages in as usual.
        // SAFETY: advice on a range inside our own mapping; it does not change the contents.
        unsafe { libc::madvise(dst.at(start).cast(), end - start, libc::MADV_POPULATE_WRITE) };
        let mut at = start;
        while at < end {
            let len = (end - at).min(READ_PIECE);
            // SAFETY: [at, at + len) lies inside the `bytes`-byte mapping at `memory`, and is
            // written by this thread only (parts are disjoint).
            let buf = unsafe { std::slice::from_raw_parts_mut(dst.at(at), len) };
            match file.read_at(buf, offset + at as u64) {
                Ok(0) => {
                    return Err(io_error(format!(
                        "sm_fromfile: short read from '{shown}': the file ended at byte {} \
                         (it shrank while being read?)",
                        offset + at as u64
                    )))
                }
                Ok(got) => at += got,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(io_error(format!(
                        "sm_fromfile: reading '{shown}' at byte {}: {e}",
                        offset + at as u64
                    )))
                }
            }
        }
        Ok(())
    };
    let starts: Vec<usize> = (0..bytes).step_by(per.max(1)).collect();
    if starts.len() <= 1 {
        return starts.first().map_or(Ok(()), |&s| read_part(s));
    }
    std::thread::scope(|s| {
        let parts: Vec<_> = starts
            .iter()
            .map(|&start| spawn_or_run(s, move || read_part(start)))
            .collect();
        parts
            .into_iter()
            .map(Started::join)
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(())
}
