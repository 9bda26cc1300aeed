//! The protocol without MPI: ranks are threads of this process, joined by an in-process
//! transport (a queue per rank, and a barrier for the allgather). Each rank runs its share on its
//! own pool, of any backend.

use super::transport::sm_transport;
use super::{map, RankMap};
use crate::engine::launch::LaunchOptions;
use crate::engine::pool::{Backend, Pool};
use crate::last_error;
use crate::status::{Result, Status};
use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};

/// (sender, tag, bytes)
type Message = (c_int, c_int, Vec<u8>);

/// One rank's alltoallv: its send buffer, counts and displacements.
type Exchanged = (Vec<u8>, Vec<usize>, Vec<usize>);

/// What the ranks of one test share.
struct Hub {
    queues: Vec<(Mutex<VecDeque<Message>>, Condvar)>,
    gathered: Mutex<Vec<Vec<u8>>>,
    /// Each rank's alltoallv: (its send buffer, counts, displacements).
    exchanged: Mutex<Vec<Exchanged>>,
    barrier: Barrier,
}

/// One rank's end of the hub: what `comm` points to.
struct End {
    hub: Arc<Hub>,
    rank: usize,
}

unsafe extern "C" fn send(
    comm: *mut c_void,
    to: c_int,
    tag: c_int,
    buf: *const c_void,
    len: usize,
) -> c_int {
    // SAFETY: comm is this rank's End; buf has len bytes (the transport's contract).
    let (end, bytes) = unsafe {
        (
            &*(comm as *const End),
            std::slice::from_raw_parts(buf as *const u8, len),
        )
    };
    let (queue, wake) = &end.hub.queues[to as usize];
    queue
        .lock()
        .unwrap()
        .push_back((end.rank as c_int, tag, bytes.to_vec()));
    wake.notify_all();
    0
}

unsafe extern "C" fn probe(
    comm: *mut c_void,
    from: *mut c_int,
    tag: *mut c_int,
    len: *mut usize,
) -> c_int {
    // SAFETY: as in send; the out pointers are the caller's locals.
    let end = unsafe { &*(comm as *const End) };
    let queue = end.hub.queues[end.rank].0.lock().unwrap();
    match queue.front() {
        None => 0,
        Some((f, t, bytes)) => {
            // SAFETY: as above.
            unsafe { (*from, *tag, *len) = (*f, *t, bytes.len()) };
            1
        }
    }
}

unsafe extern "C" fn recv(
    comm: *mut c_void,
    from: c_int,
    tag: c_int,
    buf: *mut c_void,
    len: usize,
) -> c_int {
    // SAFETY: as in send.
    let end = unsafe { &*(comm as *const End) };
    let (queue, wake) = &end.hub.queues[end.rank];
    let mut q = queue.lock().unwrap();
    loop {
        if let Some(i) = q.iter().position(|(f, t, _)| *f == from && *t == tag) {
            let (_, _, bytes) = q.remove(i).unwrap();
            assert_eq!(bytes.len(), len, "a receive of the wrong length");
            // SAFETY: buf has len writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf as *mut u8, len) };
            return 0;
        }
        q = wake.wait(q).unwrap();
    }
}

unsafe extern "C" fn allgather(
    comm: *mut c_void,
    mine: *const c_void,
    all: *mut c_void,
    len: usize,
) -> c_int {
    // SAFETY: as in send; all has nranks x len bytes.
    let end = unsafe { &*(comm as *const End) };
    let hub = &end.hub;
    // SAFETY: mine has len bytes.
    hub.gathered.lock().unwrap()[end.rank] =
        unsafe { std::slice::from_raw_parts(mine as *const u8, len) }.to_vec();
    hub.barrier.wait();
    let joined: Vec<u8> = hub.gathered.lock().unwrap().concat();
    hub.barrier.wait();
    // SAFETY: as above.
    unsafe { std::ptr::copy_nonoverlapping(joined.as_ptr(), all as *mut u8, joined.len()) };
    0
}

unsafe extern "C" fn alltoallv(
    comm: *mut c_void,
    send: *const c_void,
    scounts: *const usize,
    sdispls: *const usize,
    recv: *mut c_void,
    rcounts: *const usize,
    rdispls: *const usize,
) -> c_int {
    // SAFETY: as in send.
    let end = unsafe { &*(comm as *const End) };
    let hub = &end.hub;
    let n = hub.queues.len();
    // SAFETY: the count and displacement arrays have nranks entries (the transport's contract).
    let (sc, sd, rc, rd) = unsafe {
        (
            std::slice::from_raw_parts(scounts, n).to_vec(),
            std::slice::from_raw_parts(sdispls, n).to_vec(),
            std::slice::from_raw_parts(rcounts, n),
            std::slice::from_raw_parts(rdispls, n),
        )
    };
    let len = (0..n).map(|r| sd[r] + sc[r]).max().unwrap_or(0);
    // SAFETY: send holds every part it sends.
    let bytes = unsafe { std::slice::from_raw_parts(send as *const u8, len) }.to_vec();
    hub.exchanged.lock().unwrap()[end.rank] = (bytes, sc, sd);
    hub.barrier.wait();
    {
        let all = hub.exchanged.lock().unwrap();
        for (from, (bytes, sc, sd)) in all.iter().enumerate() {
            let part = &bytes[sd[end.rank]..sd[end.rank] + sc[end.rank]];
            assert_eq!(part.len(), rc[from], "alltoallv: counts that do not match");
            // SAFETY: recv holds rc[from] bytes at rd[from].
            unsafe {
                std::ptr::copy_nonoverlapping(
                    part.as_ptr(),
                    (recv as *mut u8).add(rd[from]),
                    part.len(),
                )
            };
        }
    }
    hub.barrier.wait();
    0
}

unsafe extern "C" fn error(_: *mut c_void) -> *const c_char {
    c"the in-process transport does not fail".as_ptr()
}

/// How one rank calls the map.
#[derive(Clone)]
struct Call {
    pool: Option<(i32, Backend)>,
    root: c_int,
    njobs: u64,
    reduce: bool,
    result_size: usize,
    options: Option<LaunchOptions>,
    refusal: Option<&'static str>,
}

/// Runs `f(rank, transport)` for every rank of `n`, each on its own thread, joined by an
/// in-process transport; `refusals[r]`, when given, is rank r's transport refusal.
pub(super) fn on_ranks<R: Send>(
    n: usize,
    refusals: &[Option<&'static str>],
    f: impl Fn(usize, &sm_transport) -> R + Sync,
) -> Vec<R> {
    let hub = Arc::new(Hub {
        queues: (0..n)
            .map(|_| (Mutex::new(VecDeque::new()), Condvar::new()))
            .collect(),
        gathered: Mutex::new(vec![Vec::new(); n]),
        exchanged: Mutex::new(vec![Default::default(); n]),
        barrier: Barrier::new(n),
    });
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|rank| {
                let hub = Arc::clone(&hub);
                let refusal = refusals.get(rank).copied().flatten();
                scope.spawn(move || {
                    let end = End { hub, rank };
                    let refusal = refusal.map(|r| CString::new(r).unwrap());
                    let t = sm_transport {
                        size: std::mem::size_of::<sm_transport>(),
                        comm: &end as *const End as *mut c_void,
                        rank: rank as c_int,
                        nranks: n as c_int,
                        refusal: refusal.as_ref().map_or(std::ptr::null(), |r| r.as_ptr()),
                        send,
                        probe,
                        recv,
                        allgather,
                        error,
                        alltoallv,
                    };
                    f(rank, &t)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Runs `calls[r]` on rank r, every rank on its own thread, all sharing `ctx`; returns each
/// rank's status and message.
fn run_ranks(
    calls: &[Call],
    work: crate::engine::task::JobFn,
    reduce: crate::engine::task::JobFn,
    ctx: &(impl Sync + ?Sized),
) -> Vec<(Status, String)> {
    let refusals: Vec<_> = calls.iter().map(|c| c.refusal).collect();
    let ctx = ctx as *const _ as *const c_void as usize;
    on_ranks(calls.len(), &refusals, |rank, t| {
        let call = &calls[rank];
        let pool = call.pool.map(|(w, b)| Pool::new(w, b).unwrap());
        let m = RankMap {
            call: "sm_mpi_map",
            pool: pool.as_ref(),
            root: call.root,
            njobs: call.njobs,
            work: Some(work),
            reduce: call.reduce.then_some(reduce),
            result_size: call.result_size,
            ctx: ctx as *mut c_void,
            has_opts: call.options.is_some(),
            options: call.options.clone().unwrap_or_default(),
        };
        outcome(map(t, &m))
    })
}

pub(super) fn outcome(r: Result<Status>) -> (Status, String) {
    match r {
        Ok(Status::SM_STOPPED) => (Status::SM_STOPPED, read_last_error()),
        Ok(s) => (s, String::new()),
        Err(e) => (e.status, e.message),
    }
}

pub(super) fn read_last_error() -> String {
    // SAFETY: last_error's pointer is a NUL-terminated string of this thread.
    unsafe { std::ffi::CStr::from_ptr(last_error::as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// What the jobs of a test see, and what root's reduce saw.
struct Seen {
    /// Job j writes a result of `size` bytes derived from j; jobs in `fail` return their code.
    size: usize,
    fail: Vec<(u64, c_int)>,
    /// Jobs whose number is a multiple of this sleep a little (0: none).
    slow_every: u64,
    reduced: Mutex<Vec<u64>>,
    bad_results: AtomicU64,
    ordered: Mutex<Vec<u64>>,
    ordered_skip: u64,
}

impl Seen {
    fn new(size: usize) -> Seen {
        Seen {
            size,
            fail: Vec::new(),
            slow_every: 0,
            reduced: Mutex::new(Vec::new()),
            bad_results: AtomicU64::new(0),
            ordered: Mutex::new(Vec::new()),
            ordered_skip: 0,
        }
    }
}

/// Root reduced exactly jobs 0, 1, ..., upto - 1, in that order.
fn assert_reduced(seen: &Seen, upto: u64, what: &str) {
    let reduced = seen.reduced.lock().unwrap();
    let wrong = (0..reduced.len()).find(|&i| reduced[i] != i as u64);
    assert_eq!(
        wrong,
        None,
        "{what}: reduce saw job {:?} in place {wrong:?}",
        wrong.map(|i| reduced[i])
    );
    assert_eq!(reduced.len() as u64, upto, "{what}: jobs reduced");
}

fn pattern(job: u64, i: usize) -> u8 {
    (job.wrapping_mul(2654435761).wrapping_add(i as u64 * 7) >> 3) as u8
}

unsafe extern "C" fn work(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    // SAFETY: ctx is the test's Seen; result has `size` bytes.
    let seen = unsafe { &*(ctx as *const Seen) };
    let job = job as u64;
    if seen.slow_every > 0 && job % seen.slow_every == 0 {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    // SAFETY: result has `size` bytes.
    let out = unsafe { std::slice::from_raw_parts_mut(result as *mut u8, seen.size) };
    for (i, b) in out.iter_mut().enumerate() {
        *b = pattern(job, i);
    }
    if seen.ordered_skip > 0 && job % seen.ordered_skip != 1 {
        crate::engine::sections::ordered_enter(current_pool()).unwrap_or_else(|e| {
            if e.status != Status::SM_STOPPED {
                panic!("{}", e.message)
            }
        });
        seen.ordered.lock().unwrap().push(job);
        crate::engine::sections::ordered_leave(current_pool()).unwrap();
    }
    seen.fail.iter().find(|f| f.0 == job).map_or(0, |f| f.1)
}

fn current_pool() -> usize {
    crate::engine::frame::with_current(|f| f.expect("in a job").pool)
}

unsafe extern "C" fn reduce(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
    // SAFETY: as in work.
    let seen = unsafe { &*(ctx as *const Seen) };
    // SAFETY: result has `size` bytes.
    let got = unsafe { std::slice::from_raw_parts(result as *const u8, seen.size) };
    if got
        .iter()
        .enumerate()
        .any(|(i, &b)| b != pattern(job as u64, i))
    {
        seen.bad_results.fetch_add(1, Ordering::SeqCst);
    }
    seen.reduced.lock().unwrap().push(job as u64);
    0
}

fn calls(nranks: usize, pool: Option<(i32, Backend)>, njobs: u64, size: usize) -> Vec<Call> {
    vec![
        Call {
            pool,
            root: 0,
            njobs,
            reduce: true,
            result_size: size,
            options: None,
            refusal: None,
        };
        nranks
    ]
}

const POOLS: [Option<(i32, Backend)>; 3] = [
    Some((2, Backend::Thread)),
    Some((2, Backend::Process)),
    None,
];

#[test]
fn every_job_is_reduced_once_in_order_on_root() {
    for nranks in 1..=4 {
        for pool in POOLS {
            for njobs in [1, nranks as u64 - 1, 5_000] {
                let seen = Seen::new(8);
                let got = run_ranks(&calls(nranks, pool, njobs, 8), work, reduce, &seen);
                let what = format!("{nranks} ranks, pool {pool:?}, {njobs} jobs");
                assert!(
                    got.iter().all(|(s, _)| *s == Status::SM_OK),
                    "{what}: {got:?}"
                );
                assert_reduced(&seen, njobs, &what);
                assert_eq!(seen.bad_results.load(Ordering::SeqCst), 0, "{what}");
            }
        }
    }
}

#[test]
fn jobs_spread_over_the_ranks() {
    use std::collections::HashSet;
    static THREADS: Mutex<Option<HashSet<std::thread::ThreadId>>> = Mutex::new(None);
    unsafe extern "C" fn slow(_: *mut c_void, _: usize, _: *mut c_void) -> c_int {
        std::thread::sleep(std::time::Duration::from_micros(100));
        THREADS
            .lock()
            .unwrap()
            .get_or_insert_with(HashSet::new)
            .insert(std::thread::current().id());
        0
    }
    let got = run_ranks(
        &calls(4, Some((2, Backend::Thread)), 2_000, 0),
        slow,
        reduce,
        &Seen::new(0),
    );
    assert!(got.iter().all(|(s, _)| *s == Status::SM_OK), "{got:?}");
    let threads = THREADS.lock().unwrap().as_ref().map_or(0, |t| t.len());
    assert_eq!(threads, 8, "every worker of every rank ran jobs");
}

fn all_say(got: &[(Status, String)], status: Status, words: &[&str]) {
    let first = &got[0];
    for (rank, (s, message)) in got.iter().enumerate() {
        assert_eq!(*s, status, "rank {rank}: {message}");
        assert_eq!(message, &first.1, "rank {rank} says something else");
        for w in words {
            assert!(message.contains(w), "rank {rank}: `{message}` lacks `{w}`");
        }
    }
}

#[test]
fn large_results_arrive_intact_through_a_small_window() {
    // 1 MiB results: root's window holds 64 of them, so 300 jobs exercise its flow control.
    for pool in POOLS {
        let seen = Seen::new(1 << 20);
        let got = run_ranks(&calls(3, pool, 300, 1 << 20), work, reduce, &seen);
        assert!(
            got.iter().all(|(s, _)| *s == Status::SM_OK),
            "{pool:?}: {got:?}"
        );
        assert_reduced(&seen, 300, "");
        assert_eq!(seen.bad_results.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn ordered_sections_follow_global_job_order_across_ranks() {
    for nranks in [2, 4] {
        for pool in [Some((2, Backend::Thread)), None] {
            let mut seen = Seen::new(0);
            seen.ordered_skip = 5; // jobs 1, 6, 11, ... skip their section
            seen.slow_every = 7;
            let got = run_ranks(&calls(nranks, pool, 3_000, 0), work, reduce, &seen);
            assert!(got.iter().all(|(s, _)| *s == Status::SM_OK), "{got:?}");
            let want: Vec<u64> = (0..3_000).filter(|j| j % 5 != 1).collect();
            assert_eq!(
                *seen.ordered.lock().unwrap(),
                want,
                "{nranks} ranks, {pool:?}"
            );
        }
    }
}

#[test]
fn a_job_failing_on_another_rank_fails_every_rank_after_reducing_the_jobs_before_it() {
    for pool in POOLS {
        for (code, status) in [
            (7, Status::SM_ERR_JOB),
            (crate::abi::SM_STOP, Status::SM_STOPPED),
        ] {
            let mut seen = Seen::new(8);
            seen.fail = vec![(1234, code), (2000, 9)];
            seen.slow_every = 3;
            let got = run_ranks(&calls(3, pool, 4_000, 8), work, reduce, &seen);
            all_say(&got, status, &["sm_mpi_map", "rank ", "job 1234"]);
            let upto = if code == 7 { 1234 } else { 1235 };
            assert_reduced(&seen, upto, &format!("{pool:?}"));
        }
    }
}

#[test]
fn a_reduce_that_stops_stops_every_rank() {
    unsafe extern "C" fn stop_at_300(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
        // SAFETY: as in reduce.
        unsafe { reduce(ctx, job, result) };
        if job == 300 {
            5
        } else {
            0
        }
    }
    let seen = Seen::new(8);
    let got = run_ranks(
        &calls(3, Some((2, Backend::Thread)), 5_000, 8),
        work,
        stop_at_300,
        &seen,
    );
    all_say(&got, Status::SM_STOPPED, &["reduce returned 5 for job 300"]);
    assert_reduced(&seen, 301, "");
}

#[test]
fn mismatched_arguments_fail_every_rank_naming_the_ranks() {
    let mut c = calls(4, None, 100, 8);
    c[2].njobs = 99;
    let got = run_ranks(&c, work, reduce, &Seen::new(8));
    all_say(
        &got,
        Status::SM_ERR_INVALID,
        &["njobs differs", "100 on ranks 0, 1, 3", "99 on rank 2"],
    );
    let mut c = calls(3, None, 100, 8);
    c[1].result_size = 16;
    let got = run_ranks(&c, work, reduce, &Seen::new(8));
    all_say(&got, Status::SM_ERR_INVALID, &["result_size differs"]);
    let c = vec![
        Call {
            root: 3,
            ..calls(1, None, 10, 8)[0].clone()
        };
        3
    ];
    let got = run_ranks(&c, work, reduce, &Seen::new(8));
    all_say(&got, Status::SM_ERR_INVALID, &["root = 3"]);
    let mut c = calls(3, None, 10, 8);
    c[1].refusal = Some("MPI_THREAD_FUNNELED is needed");
    let got = run_ranks(&c, work, reduce, &Seen::new(8));
    all_say(
        &got,
        Status::SM_ERR_STATE,
        &["rank 1: MPI_THREAD_FUNNELED is needed"],
    );
    let mut c = calls(3, None, 10, 8);
    c.iter_mut().for_each(|c| c.result_size = usize::MAX);
    let got = run_ranks(&c, work, reduce, &Seen::new(8));
    all_say(
        &got,
        Status::SM_ERR_INVALID,
        &["rank 0: result_size", "rank 2: result_size"],
    );
}

#[test]
fn any_rank_may_be_root_and_only_root_reduces() {
    for root in 0..3 {
        let seen = Seen::new(8);
        let c: Vec<Call> = calls(3, Some((2, Backend::Thread)), 2_000, 8)
            .into_iter()
            .enumerate()
            .map(|(r, c)| Call {
                root,
                reduce: r == root as usize,
                ..c
            })
            .collect();
        let got = run_ranks(&c, work, reduce, &seen);
        assert!(got.iter().all(|(s, _)| *s == Status::SM_OK), "{got:?}");
        assert_reduced(&seen, 2_000, "");
    }
}

#[test]
fn worker_reduce_runs_on_root_for_every_worker_of_every_rank_in_order() {
    static ORDER: Mutex<Vec<(c_int, u64)>> = Mutex::new(Vec::new());
    unsafe extern "C" fn count(_: *mut c_void, _: usize, _: *mut c_void) -> c_int {
        let mine = crate::engine::frame::worker_local().unwrap() as *mut u64;
        // SAFETY: this worker's 8-byte result.
        unsafe { *mine += 1 };
        0
    }
    unsafe extern "C" fn combine(_: *mut c_void, worker: c_int, wresult: *mut c_void) -> c_int {
        // SAFETY: a worker's 8-byte result.
        ORDER
            .lock()
            .unwrap()
            .push((worker, unsafe { *(wresult as *const u64) }));
        0
    }
    for pool in POOLS {
        ORDER.lock().unwrap().clear();
        let options = LaunchOptions {
            worker_reduce: Some(combine),
            wresult_size: 8,
            ..Default::default()
        };
        let c: Vec<Call> = calls(3, pool, 3_000, 0)
            .into_iter()
            .map(|c| Call {
                options: Some(options.clone()),
                reduce: false,
                ..c
            })
            .collect();
        let got = run_ranks(&c, count, reduce, &Seen::new(0));
        assert!(got.iter().all(|(s, _)| *s == Status::SM_OK), "{got:?}");
        let order = ORDER.lock().unwrap().clone();
        let workers: Vec<c_int> = order.iter().map(|o| o.0).collect();
        let per_rank = if pool.is_some() { 2 } else { 1 };
        let mut sorted = workers.clone();
        sorted.sort();
        assert_eq!(workers, sorted, "{pool:?}: in (rank, worker) order");
        assert!(
            workers.iter().all(|&w| w < 3 * per_rank),
            "{pool:?}: {workers:?}"
        );
        assert_eq!(
            order.iter().map(|o| o.1).sum::<u64>(),
            3_000,
            "{pool:?}: every job counted once"
        );
    }
}

#[test]
fn a_killed_worker_fails_every_rank_and_root_reduced_the_jobs_before_it() {
    unsafe extern "C" fn dies_at_777(ctx: *mut c_void, job: usize, result: *mut c_void) -> c_int {
        if job == 777 {
            // SAFETY: raising a signal; this is a forked worker (process pools only).
            unsafe { libc::raise(libc::SIGKILL) };
        }
        // SAFETY: as in work.
        unsafe { work(ctx, job, result) }
    }
    let seen = Seen::new(8);
    let got = run_ranks(
        &calls(3, Some((2, Backend::Process)), 3_000, 8),
        dies_at_777,
        reduce,
        &seen,
    );
    all_say(
        &got,
        Status::SM_ERR_WORKER_DIED,
        &["sm_mpi_map: rank ", "SIGKILL"],
    );
    let message = &got[0].1;
    let before: u64 = message
        .split("every job before ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.trim_end_matches(';').parse().ok())
        .unwrap_or_else(|| panic!("no first lost job in `{message}`"));
    assert!(before <= 777, "{message}");
    assert_reduced(&seen, before, message);
}

#[test]
fn a_map_of_no_jobs_runs_nothing_and_a_serial_rank_gets_its_share() {
    let seen = Seen::new(8);
    let got = run_ranks(
        &calls(3, Some((2, Backend::Process)), 0, 8),
        work,
        reduce,
        &seen,
    );
    assert!(got.iter().all(|(s, _)| *s == Status::SM_OK), "{got:?}");
    assert!(seen.reduced.lock().unwrap().is_empty());
    // Mixed pools: a serial rank, a thread rank and a process rank share one map.
    let mut c = calls(3, None, 4_000, 8);
    c[1].pool = Some((2, Backend::Thread));
    c[2].pool = Some((2, Backend::Process));
    let got = run_ranks(&c, work, reduce, &seen);
    assert!(got.iter().all(|(s, _)| *s == Status::SM_OK), "{got:?}");
    assert_reduced(&seen, 4_000, "");
}

/// Not a benchmark (bench/ has those, under MPI): a look at the cost per job of the protocol,
/// `cargo test --release --lib ranks::tests::cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn cost_per_trivial_job() {
    /// Writes one double per job when there is a result, as bench/mpi_bench.c does.
    unsafe extern "C" fn trivial(_: *mut c_void, job: usize, result: *mut c_void) -> c_int {
        if !result.is_null() {
            // SAFETY: an 8-byte result when there is one.
            unsafe { *(result as *mut f64) = (job % 8) as f64 };
        }
        0
    }
    unsafe extern "C" fn add(ctx: *mut c_void, _: usize, result: *mut c_void) -> c_int {
        // SAFETY: ctx is the test's sum, used by root's thread alone; an 8-byte result.
        unsafe { *(ctx as *mut f64) += *(result as *const f64) };
        0
    }
    for (nranks, pool, reduce_on) in [
        (1, Some((1, Backend::Thread)), false),
        (1, Some((1, Backend::Thread)), true),
        (4, Some((1, Backend::Thread)), false),
        (4, Some((1, Backend::Thread)), true),
        (4, None, false),
        (4, Some((1, Backend::Process)), false),
    ] {
        let size = if reduce_on { 8 } else { 0 };
        let c: Vec<Call> = calls(nranks, pool, 1_000_000, size)
            .into_iter()
            .map(|c| Call {
                reduce: reduce_on,
                ..c
            })
            .collect();
        let sum = std::cell::UnsafeCell::new(0.0f64);
        struct Shared(std::cell::UnsafeCell<f64>);
        // SAFETY: only root's thread touches the sum (in reduce).
        unsafe impl Sync for Shared {}
        let sum = Shared(sum);
        let t = std::time::Instant::now();
        let got = run_ranks(&c, trivial, add, &sum);
        let ns = t.elapsed().as_nanos() as f64 / 1e6;
        assert!(got.iter().all(|(s, _)| *s == Status::SM_OK), "{got:?}");
        if reduce_on {
            assert_eq!(sum.0.into_inner(), 3_500_000.0);
        }
        println!("{nranks} ranks, {pool:?}, reduce {reduce_on}: {ns:.1} ns/job");
    }
    // The same jobs through one local sm_map, for comparison.
    let pool = Pool::new(1, Backend::Thread).unwrap();
    for reduce_on in [false, true] {
        let mut sum = 0.0f64;
        let launch = crate::engine::launch::Launch {
            call: "sm_map",
            work: crate::engine::launch::Work::Jobs {
                njobs: 1_000_000,
                work: trivial,
                reduce: reduce_on.then_some(add as crate::engine::task::JobFn),
                result_size: if reduce_on { 8 } else { 0 },
            },
            ctx: &mut sum as *mut f64 as *mut c_void,
            options: LaunchOptions::default(),
        };
        let t = std::time::Instant::now();
        crate::engine::launch::launch(&pool, &launch).unwrap();
        let ns = t.elapsed().as_nanos() as f64 / 1e6;
        println!("sm_map, 1 thread worker, reduce {reduce_on}: {ns:.1} ns/job");
    }
}

#[test]
fn ordered_sections_of_few_slow_jobs() {
    unsafe extern "C" fn slow_ordered(ctx: *mut c_void, job: usize, _: *mut c_void) -> c_int {
        // SAFETY: ctx is the test's Seen.
        let seen = unsafe { &*(ctx as *const Seen) };
        let z = (job as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        std::thread::sleep(std::time::Duration::from_micros((z >> 40) % 5000));
        crate::engine::sections::ordered_enter(current_pool()).unwrap();
        seen.ordered.lock().unwrap().push(job as u64);
        crate::engine::sections::ordered_leave(current_pool()).unwrap();
        0
    }
    for pool in [Some((2, Backend::Thread)), None] {
        for nranks in [3, 4] {
            let seen = Seen::new(0);
            let c: Vec<Call> = calls(nranks, pool, 40, 0)
                .into_iter()
                .map(|c| Call { reduce: false, ..c })
                .collect();
            let got = run_ranks(&c, slow_ordered, reduce, &seen);
            assert!(got.iter().all(|(s, _)| *s == Status::SM_OK), "{got:?}");
            assert_eq!(*seen.ordered.lock().unwrap(), (0..40).collect::<Vec<_>>());
        }
    }
}

/// `cargo test --release --lib ranks::tests::big -- --ignored --nocapture`: 1 MiB results.
#[test]
#[ignore]
fn big_results_throughput() {
    unsafe extern "C" fn index(_: *mut c_void, job: usize, result: *mut c_void) -> c_int {
        // SAFETY: a 1 MiB result.
        unsafe { *(result as *mut u64) = job as u64 };
        0
    }
    unsafe extern "C" fn check(_: *mut c_void, job: usize, result: *mut c_void) -> c_int {
        // SAFETY: as above.
        assert_eq!(unsafe { *(result as *const u64) }, job as u64);
        0
    }
    for _ in 0..3 {
        let c = calls(2, Some((1, Backend::Thread)), 200, 1 << 20);
        let t = std::time::Instant::now();
        let got = run_ranks(&c, index, check, &Seen::new(0));
        let s = t.elapsed().as_secs_f64();
        assert!(got.iter().all(|(s, _)| *s == Status::SM_OK), "{got:?}");
        println!(
            "200 MiB in {:.1} ms: {:.0} MB/s",
            s * 1e3,
            200.0 * 1.048576 / s
        );
    }
}
