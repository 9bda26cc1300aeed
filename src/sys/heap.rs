//! The shared heap: one memfd mapped `MAP_SHARED` over one large range, made at the first shared
//! allocation of the process, from which `sm_empty` arrays and the control blocks of maps are cut.
//!
//! Why one range and not a mapping per allocation: a process forked once (a persistent worker,
//! issue 14) sees every later allocation at the same address as the caller without any mapping
//! work of its own, since the whole range is already mapped in it, shared, at the address the
//! caller has. Freeing gives the pages back with `MADV_REMOVE`, which empties them in every process
//! at once: no process keeps reading a freed array's old contents, and a range handed out again is
//! zero-filled for all of them. Fork copies no page tables of a shared file mapping, so a large
//! heap costs the process backend's forks nothing.
//!
//! The range is virtual: `MAP_NORESERVE`, and a memfd allocates pages only as they are touched
//! (memory is what the arrays use, as with anonymous shared mappings). Its size is `SM_HEAP_SIZE`
//! when set (16M at least), else the larger of 64 GiB and twice the machine's memory; when the
//! system refuses that much address space (`RLIMIT_AS`), the largest power-of-two fraction down
//! to 1 GiB. A process that cannot have even that gets no heap: shared allocations then fall back
//! to a mapping each (`shm.rs`), and what needs the heap says why it is missing ([`range`]).
//! Under valgrind the default is no heap: its leak check reads every readable page at exit.
//!
//! Forks: a child inherits the heap's mapping, shared with its parent, but not the right to cut
//! new allocations from it (the parent keeps cutting from the same pages). A process therefore
//! only allocates from a heap it made itself; a forked child that needs shared memory makes its
//! own, and releasing an inherited allocation only unmaps it in the child.

use crate::sys::forklock::ForkSafeMutex;
use std::collections::BTreeMap;

/// The smallest heap the default size is cut down to when the system refuses more.
const FLOOR: usize = 1 << 30;
/// The smallest heap `SM_HEAP_SIZE` may ask for.
const SMALLEST: usize = 16 << 20;
/// The default size when the machine's memory is small.
const DEFAULT_MIN: usize = 64 << 30;

/// One heap: its range, which process made it, and the free parts of the range.
struct Heap {
    base: usize,
    size: usize,
    owner: libc::pid_t,
    /// Free extents: offset -> length, page-aligned, never adjacent (merged on release).
    free: BTreeMap<usize, usize>,
}

enum State {
    /// No shared allocation asked for the heap yet in this process.
    Unmade,
    Made(Heap),
    /// The system refused the range; the message says why.
    Refused(String),
    /// `SM_HEAP_SIZE` is not a size; the message says so.
    Misset(String),
}

static HEAP: ForkSafeMutex<State> = ForkSafeMutex::new(State::Unmade);

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// The size to ask for first: `SM_HEAP_SIZE` (bytes, or with a K/M/G/T suffix) or the default;
/// None with the reason when there is to be no heap.
fn wanted_size() -> Result<usize, State> {
    if let Some(v) = crate::sys::getenv("SM_HEAP_SIZE") {
        return parse_size(&v).filter(|&n| n >= SMALLEST).ok_or_else(|| {
            State::Misset(format!(
                "SM_HEAP_SIZE={v:?} is not a size of at least 16M (bytes, or a number with K, M, \
                 G or T)"
            ))
        });
    }
    // Valgrind's leak check reads every readable page at exit, which in a memfd allocates it:
    // a default-sized heap would cost its whole size in memory, in every process that exits.
    if crate::sys::getenv("LD_PRELOAD").is_some_and(|p| p.contains("vgpreload")) {
        return Err(State::Refused(
            "under valgrind there is no shared heap unless SM_HEAP_SIZE asks for one (its leak \
             check would read every page of it at exit; 256M is plenty for most tests)"
                .into(),
        ));
    }
    // SAFETY: sysconf has no preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) }.max(0) as usize;
    Ok(DEFAULT_MIN.max(pages.saturating_mul(page()).saturating_mul(2)))
}

/// A size for messages: in GiB from 1 GiB up, else in MiB.
pub fn size_text(bytes: usize) -> String {
    if bytes >= 1 << 30 {
        format!("{:.3} GiB", bytes as f64 / (1u64 << 30) as f64).replace(".000 ", " ")
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

fn parse_size(v: &str) -> Option<usize> {
    let v = v.trim();
    let (digits, shift) = match v.chars().last()?.to_ascii_uppercase() {
        'K' => (&v[..v.len() - 1], 10),
        'M' => (&v[..v.len() - 1], 20),
        'G' => (&v[..v.len() - 1], 30),
        'T' => (&v[..v.len() - 1], 40),
        _ => (v, 0),
    };
    digits.trim().parse::<usize>().ok()?.checked_mul(1 << shift)
}

/// Makes a heap of `wanted` bytes, or of the largest power-of-two fraction of it down to FLOOR
/// that the system grants.
fn make(wanted: usize) -> Result<Heap, String> {
    // A memfd larger than RLIMIT_FSIZE would be refused with SIGXFSZ, which kills by default.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    let fsize = if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) } == 0
        && limit.rlim_cur != libc::RLIM_INFINITY
    {
        limit.rlim_cur as usize
    } else {
        usize::MAX
    };
    let page = page();
    let mut size = wanted.min(fsize) / page * page;
    if size < wanted.min(FLOOR) {
        return Err(format!(
            "the file size limit (RLIMIT_FSIZE, ulimit -f) is {fsize} bytes, below the {} MiB \
             the shared heap needs at least",
            wanted.min(FLOOR) >> 20
        ));
    }
    // SAFETY: memfd_create takes a NUL-terminated name and flags; the result is checked.
    let fd = unsafe { libc::memfd_create(c"sharedmem-heap".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "memfd_create failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    let made = loop {
        // SAFETY: fd is our memfd; growing it allocates nothing (pages come when touched).
        if unsafe { libc::ftruncate(fd, size as libc::off_t) } == 0 {
            // SAFETY: a new shared mapping of our memfd at an address of the kernel's choosing;
            // it touches no existing memory, and the result is checked against MAP_FAILED.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_NORESERVE,
                    fd,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                break Ok((p as usize, size));
            }
        }
        let last_error = std::io::Error::last_os_error();
        if size / 2 < wanted.min(FLOOR) {
            break Err(format!(
                "the system refused {} of address space, and down to {} ({last_error}; \
                 RLIMIT_AS, ulimit -v, is the usual cause)",
                size_text(wanted),
                size_text(size)
            ));
        }
        size /= 2;
    };
    // The mapping keeps the memfd alive: no descriptor stays open.
    // SAFETY: fd is ours and used by nothing else.
    unsafe { libc::close(fd) };
    let (base, size) = made?;
    Ok(Heap {
        base,
        size,
        // SAFETY: getpid has no preconditions.
        owner: unsafe { libc::getpid() },
        free: BTreeMap::from([(0, size)]),
    })
}

/// The heap of this process, made now if it was not (nor refused) yet; None when refused.
fn own_heap(state: &mut State) -> Option<&mut Heap> {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    if matches!(state, State::Made(h) if h.owner != me) {
        // Inherited through fork: the parent's pages, not ours to cut from. Its allocations stay
        // mapped here; `release` unmaps them one by one.
        *state = State::Unmade;
    }
    if matches!(state, State::Unmade) {
        *state = match wanted_size() {
            Ok(size) => make(size).map_or_else(State::Refused, State::Made),
            Err(no_heap) => no_heap,
        };
    }
    match state {
        State::Made(h) => Some(h),
        _ => None,
    }
}

/// What `allocate` says when the heap cannot serve.
pub enum Refusal {
    /// This process has no heap (`range` says why): allocate elsewhere.
    NoHeap,
    /// `SM_HEAP_SIZE` is not a size: the message says so.
    Misset(String),
    /// The heap is full: `len` bytes do not fit in what is free of its `size`.
    Full { size: usize },
}

/// Cuts `len` bytes (rounded up to pages, at least one page) from this process's heap: page
/// aligned and zero-filled. Returns the address and the length taken.
pub fn allocate(len: usize) -> Result<(*mut u8, usize), Refusal> {
    let page = page();
    let len = len
        .max(1)
        .checked_next_multiple_of(page)
        .ok_or(Refusal::Full { size: 0 })?;
    let mut state = HEAP.lock();
    let Some(heap) = own_heap(&mut state) else {
        return Err(match &*state {
            State::Misset(why) => Refusal::Misset(why.clone()),
            _ => Refusal::NoHeap,
        });
    };
    // First fit, in address order: low addresses are reused first.
    let Some((&offset, &free)) = heap.free.iter().find(|(_, &l)| l >= len) else {
        return Err(Refusal::Full { size: heap.size });
    };
    heap.free.remove(&offset);
    if free > len {
        heap.free.insert(offset + len, free - len);
    }
    Ok(((heap.base + offset) as *mut u8, len))
}

/// Gives back what `allocate` returned (`ptr`, `len` as it returned them).
///
/// # Safety
/// `ptr`, `len` must come from `allocate` in this process or an ancestor, and not have been given
/// back before; nothing may use the memory afterwards.
pub unsafe fn release(ptr: *mut u8, len: usize) {
    let mut state = HEAP.lock();
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let addr = ptr as usize;
    match &mut *state {
        State::Made(h) if h.owner == me && addr >= h.base && addr + len <= h.base + h.size => {
            // Empty the pages in every process that maps the heap: a range handed out again is
            // zero-filled, and no process goes on reading the freed contents.
            // SAFETY: the range lies inside our heap's shared mapping and is ours to empty (the
            // caller's contract).
            unsafe { libc::madvise(ptr.cast(), len, libc::MADV_REMOVE) };
            let mut offset = addr - h.base;
            let mut len = len;
            if let Some((&after, &after_len)) = h.free.range(offset + len..).next() {
                if after == offset + len {
                    h.free.remove(&after);
                    len += after_len;
                }
            }
            if let Some((&before, &before_len)) = h.free.range(..offset).next_back() {
                if before + before_len == offset {
                    h.free.remove(&before);
                    offset = before;
                    len += before_len;
                }
            }
            h.free.insert(offset, len);
        }
        // An allocation of a heap made by an ancestor: the pages are the ancestor's too; only
        // our view of them goes.
        // SAFETY: by the caller's contract, nothing here uses the range any more.
        _ => unsafe {
            libc::munmap(ptr.cast(), len);
        },
    }
}

/// This process's heap as (base address, size), made now if needed; or why there is none.
pub fn range() -> Result<(usize, usize), String> {
    let mut state = HEAP.lock();
    if let Some(h) = own_heap(&mut state) {
        return Ok((h.base, h.size));
    }
    match &*state {
        State::Refused(why) | State::Misset(why) => Err(why.clone()),
        _ => Err("no shared heap".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size(" 64g "), Some(64 << 30));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        assert_eq!(parse_size("1073741824"), Some(1 << 30));
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("-1G"), None);
        assert_eq!(parse_size("99999999999T"), None);
        assert_eq!(size_text(64 << 30), "64 GiB");
        assert_eq!(size_text(3 << 29), "1.500 GiB");
        assert_eq!(size_text(64 << 20), "64 MiB");
    }

    #[test]
    fn allocations_are_zeroed_disjoint_and_reused_zeroed() {
        let (a, la) = allocate(10_000).ok().unwrap();
        let (b, lb) = allocate(1).ok().unwrap();
        assert!(la >= 10_000 && lb >= 1);
        assert!(a as usize + la <= b as usize || b as usize + lb <= a as usize);
        let (base, size) = range().unwrap();
        assert!(a as usize >= base && a as usize + la <= base + size);
        // SAFETY: la bytes were just allocated at a, for this test alone.
        let bytes = unsafe { std::slice::from_raw_parts_mut(a, la) };
        assert!(bytes.iter().all(|&x| x == 0));
        bytes.fill(7);
        // SAFETY: both come from allocate and are released once.
        unsafe {
            release(a, la);
            release(b, lb);
        }
        // The freed range, handed out again (first fit), is zero-filled.
        let (c, lc) = allocate(la).ok().unwrap();
        // SAFETY: lc bytes were just allocated at c.
        let again = unsafe { std::slice::from_raw_parts(c, lc) };
        assert!(again.iter().all(|&x| x == 0));
        // SAFETY: from allocate, released once.
        unsafe { release(c, lc) };
    }

    /// Forks, runs `child` in the child (its return value is the exit status) and returns the
    /// child's exit status. The child does nothing but `child` and `_exit`.
    fn in_child(child: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child runs `child`, which only touches memory and the heap (glibc keeps
        // malloc usable after fork), then leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(99);
            // SAFETY: leaves the child at once, running no exit handlers of the test harness.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child status {status:#x}");
        libc::WEXITSTATUS(status)
    }

    #[test]
    fn a_process_forked_earlier_sees_later_allocations_at_the_same_address() {
        let (base, size) = range().unwrap();
        // A pipe tells the child where the parent allocated after the fork.
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors into fds.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: fork; the child only reads the pipe and the heap, then _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let mut addr = [0u8; 8];
            // SAFETY: reads 8 bytes into our buffer from our end of the pipe.
            let got = unsafe { libc::read(fds[0], addr.as_mut_ptr().cast(), 8) };
            let p = usize::from_ne_bytes(addr) as *const u64;
            // SAFETY: the parent allocated and wrote 8 bytes there after we were forked: the
            // heap is mapped shared here at the same address.
            let ok = got == 8 && p as usize >= base && unsafe { p.read_volatile() } == 0x5eed;
            // SAFETY: leaves the child at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let (p, len) = allocate(8).ok().unwrap();
        assert!(p as usize >= base && p as usize + len <= base + size);
        // SAFETY: 8 bytes of ours at p.
        unsafe { p.cast::<u64>().write_volatile(0x5eed) };
        let addr = (p as usize).to_ne_bytes();
        // SAFETY: writes 8 bytes from our buffer to our end of the pipe, then closes both ends.
        unsafe {
            assert_eq!(libc::write(fds[1], addr.as_ptr().cast(), 8), 8);
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status:#x}"
        );
        // SAFETY: from allocate, released once.
        unsafe { release(p, len) };
    }

    #[test]
    fn a_forked_child_cuts_from_a_heap_of_its_own_and_frees_only_its_view() {
        let (p, len) = allocate(4096).ok().unwrap();
        // SAFETY: len bytes of ours at p.
        unsafe { p.write_volatile(42) };
        let (parent_base, _) = range().unwrap();
        let code = in_child(|| {
            let (child_base, _) = range().unwrap();
            let (q, qlen) = allocate(4096).ok().unwrap();
            // SAFETY: the child's own allocation, and the inherited one it reads then releases.
            unsafe {
                q.write_volatile(7);
                let inherited = p.read_volatile();
                release(q, qlen);
                release(p, len); // only unmaps it here
                i32::from(child_base == parent_base) * 2 + i32::from(inherited != 42)
            }
        });
        assert_eq!(
            code, 0,
            "the child used its parent's heap (2) or lost the array (1)"
        );
        // The parent's array is intact: the child's release emptied nothing here.
        // SAFETY: still ours.
        assert_eq!(unsafe { p.read_volatile() }, 42);
        // SAFETY: from allocate, released once (in this process).
        unsafe { release(p, len) };
    }

    #[test]
    fn more_than_the_heap_is_refused_as_full() {
        let (_, size) = range().unwrap();
        assert!(matches!(allocate(size + 1), Err(Refusal::Full { .. })));
        assert!(matches!(allocate(usize::MAX), Err(Refusal::Full { .. })));
    }
}
