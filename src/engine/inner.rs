//! Jobs that use OpenMP or a threaded BLAS: the inner thread pools of every worker are limited
//! (so that workers × inner threads do not oversubscribe the CPUs), and forked workers never hang
//! in an OpenMP region because of the fork. See engine/README.md, "OpenMP and BLAS inside jobs".
//!
//! A map's [`Plan`] is made on the caller before the workers start: which runtimes are loaded
//! (sys/runtimes.rs), and the thread count each should have in a worker:
//! - `inner_threads` n > 0: exactly n; -1: runtimes left alone; 0: `SM_INNER_THREADS` if set, else
//!   at most max(1, cpus / workers), and never more than the caller's own setting (cpus: the
//!   affinity mask at the first map).
//! - OpenMP's count is per thread (`omp_set_num_threads`): every worker sets its own and, if it is
//!   a thread that outlives the map (thread pool, or the caller), sets the old one back after.
//! - BLAS counts are process-wide: a forked worker sets its copy; a map on threads sets it once on
//!   the caller for all of them and sets it back after the map.
//!
//! The fork (process backend, and a persistent pool's zygote at `sm_pool_new`): GNU libgomp keeps the forking thread's pool of OpenMP threads in
//! its thread-local state, and the child, which has none of those threads, waits for them forever
//! at its first region with more than one thread (GCC bug 60035). Before forking, the caller asks
//! libgomp to free that pool (`omp_pause_resource_all`), so that a child starts a new one. libgomp
//! refuses inside a parallel region: then the children run every OpenMP region on one thread
//! (`omp_set_max_active_levels` at their current level: a num_threads clause cannot override it),
//! and `SM_VERBOSE=1` says so. LLVM's libomp and Intel's libiomp5 restart themselves in a forked
//! child (pthread_atfork) and need nothing.

use crate::config;
use crate::status::{Error, Result};
use crate::sys::runtimes::{self, Count, OmpKind, Runtimes, MAX_PER_KIND};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// How the map's workers run, which decides who sets the process-wide (BLAS) counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// Forked processes: each sets its own copy of everything.
    Forked,
    /// Threads of a pool (the caller may be one of them): the caller sets the BLAS counts.
    Threads,
    /// Processes forked once per pool (persistent): each sets its own copy of everything, and
    /// sets it back after the map, since it serves the next one.
    Resident,
    /// The calling thread alone (serial pools, debug mode): it sets everything, and back after.
    Caller,
}

/// `inner_threads` of `sm_map_opts` (and `SM_INNER_THREADS`): 0 default, -1 leave alone, n > 0.
pub fn check_setting(value: i32, what: &str) -> Result<()> {
    if value < -1 {
        return Err(Error::invalid(format!(
            "{what} = {value}: use 0 (the default: at most cpus / workers), -1 (leave OpenMP and \
             BLAS thread counts alone) or a thread count >= 1"
        )));
    }
    Ok(())
}

/// The CPUs of the process's affinity mask, read at the first map that needs them (as OpenMP
/// reads them once): a system call costs a sixth of a short map on threads.
fn cpus() -> usize {
    static CPUS: AtomicUsize = AtomicUsize::new(0);
    let mut n = CPUS.load(Ordering::Relaxed);
    if n == 0 {
        n = config::affinity_cpus().max(1) as usize;
        CPUS.store(n, Ordering::Relaxed);
    }
    n
}

/// `SM_VERBOSE=1`: says on stderr which OpenMP runtimes and BLAS libraries a map found, the first
/// time and whenever that changes.
fn announce(found: &'static Runtimes) {
    static SHOWN: AtomicPtr<Runtimes> = AtomicPtr::new(std::ptr::null_mut());
    let ptr = found as *const Runtimes as *mut Runtimes;
    if SHOWN.swap(ptr, Ordering::Relaxed) == ptr {
        return;
    }
    let omp: Vec<String> = found
        .openmp()
        .map(|rt| format!("{} ({:?})", rt.name.as_str(), rt.kind))
        .collect();
    let blas: Vec<String> = found
        .blas()
        .map(|rt| format!("{} ({})", rt.name.as_str(), rt.family))
        .collect();
    eprintln!(
        "sharedmem: OpenMP runtimes loaded: {}; BLAS libraries: {}",
        if omp.is_empty() {
            "none".into()
        } else {
            omp.join(", ")
        },
        if blas.is_empty() {
            "none".into()
        } else {
            blas.join(", ")
        }
    );
}

/// A map's inner thread counts, made on the caller. Small and all in the task, which every worker
/// reads at the start of a map anyway (another CPU's cache line costs a short map on threads
/// more than everything else here); the entry points are in `runtimes`, which no one writes.
pub struct Plan {
    runtimes: &'static Runtimes,
    /// The count each OpenMP runtime (per thread) and BLAS library (process-wide) gets, in the
    /// runtimes' order; 0: left alone.
    omp_target: [i32; MAX_PER_KIND],
    blas_target: [i32; MAX_PER_KIND],
    workers: Workers,
    /// Set by `before_fork` when libgomp could not free the caller's pool.
    serialize_gomp: AtomicBool,
}

impl Plan {
    /// The plan for a map of `nworkers` workers with the caller's `inner_threads` (0, -1 or n);
    /// None when no runtime is loaded.
    pub fn new(setting: i32, nworkers: usize, workers: Workers) -> Result<Option<Plan>> {
        check_setting(setting, "inner_threads")?;
        let setting = match setting {
            0 => config::inner_threads()?,
            s => s,
        };
        let runtimes = runtimes::loaded();
        if config::verbose() {
            announce(runtimes);
        }
        if runtimes.is_empty() {
            return Ok(None);
        }
        let share = (cpus() / nworkers.max(1)).max(1) as i32;
        // exactly n, or at most the share and the caller's own count; 0: leave alone
        let target = |count: &Count| match setting {
            -1 => 0,
            0 => share.min(count.get().max(1)),
            n => n,
        };
        let mut plan = Plan {
            runtimes,
            omp_target: [0; MAX_PER_KIND],
            blas_target: [0; MAX_PER_KIND],
            workers,
            serialize_gomp: AtomicBool::new(false),
        };
        for (t, rt) in plan.omp_target.iter_mut().zip(runtimes.openmp()) {
            *t = target(&rt.count);
        }
        for (t, rt) in plan.blas_target.iter_mut().zip(runtimes.blas()) {
            *t = target(&rt.count);
        }
        Ok(Some(plan))
    }

    /// On the caller, just before it forks the workers: frees libgomp's pool of the calling thread
    /// (see the module doc), or, where it cannot, has the workers run OpenMP regions on one thread.
    pub fn before_fork(&self) {
        if free_gnu_pools_before_fork(self.runtimes, "this map's") {
            self.serialize_gomp.store(true, Ordering::Relaxed);
        }
    }

    /// In each worker, before its first callback: sets the worker's counts. The returned guard
    /// sets the old ones back when dropped (not in a forked worker, whose state dies with it).
    /// Allocates nothing (forked workers run this); the calls go into the runtimes the jobs are
    /// about to call themselves.
    pub fn enter_worker(&self) -> SavedCounts<'_> {
        let mut saved = SavedCounts {
            plan: self,
            omp: [None; MAX_PER_KIND],
            blas: [None; MAX_PER_KIND],
            restore: self.workers != Workers::Forked,
        };
        // the OpenMP counts as they were, before OpenBLAS (built with OpenMP) changes them
        for ((rt, &t), old) in self.omp().zip(&self.omp_target).zip(&mut saved.omp) {
            if t > 0 {
                *old = Some(rt.get());
            }
        }
        if self.workers != Workers::Threads {
            saved.blas = set(self.blas(), &self.blas_target);
        }
        set(self.omp(), &self.omp_target);
        if self.workers == Workers::Forked && self.serialize_gomp.load(Ordering::Relaxed) {
            serialize_gnu_regions(self.runtimes);
        }
        saved
    }

    /// On the caller of a map on threads, before the workers start: the process-wide (BLAS)
    /// counts, set back (with the caller's own OpenMP counts, which OpenBLAS may change) when the
    /// guard is dropped, after the workers are done.
    pub fn enter_caller(&self) -> SavedCounts<'_> {
        let mut omp = [None; MAX_PER_KIND];
        if self.blas_target.iter().any(|&t| t > 0) {
            for (rt, old) in self.omp().zip(&mut omp) {
                *old = Some(rt.get());
            }
        }
        SavedCounts {
            plan: self,
            blas: set(self.blas(), &self.blas_target),
            omp,
            restore: true,
        }
    }

    /// Sets back the counts `omp` and `blas` saved (BLAS first: see enter_worker).
    fn restore(&self, omp: &[Option<i32>], blas: &[Option<i32>]) {
        for (rt, old) in self.blas().zip(blas) {
            if let Some(n) = *old {
                rt.set(n);
            }
        }
        for (rt, old) in self.omp().zip(omp) {
            if let Some(n) = old.filter(|&n| rt.get() != n) {
                rt.set(n);
            }
        }
    }

    fn omp(&self) -> impl Iterator<Item = &Count> {
        self.runtimes.openmp().map(|rt| &rt.count)
    }

    fn blas(&self) -> impl Iterator<Item = &Count> {
        self.runtimes.blas().map(|rt| &rt.count)
    }
}

/// Sets each count to its target (0: left alone) where it differs; returns the counts replaced.
fn set<'a>(
    counts: impl Iterator<Item = &'a Count>,
    targets: &[i32; MAX_PER_KIND],
) -> [Option<i32>; MAX_PER_KIND] {
    let mut old = [None; MAX_PER_KIND];
    for ((count, &target), old) in counts.zip(targets).zip(&mut old) {
        if target > 0 {
            let current = count.get();
            if current != target {
                *old = Some(current);
                count.set(target);
            }
        }
    }
    old
}

/// The OpenMP and BLAS counts from before a map (`Plan::enter_worker`, `Plan::enter_caller`), set
/// back on drop unless `restore` is false (a forked worker exits instead).
pub struct SavedCounts<'a> {
    plan: &'a Plan,
    omp: [Option<i32>; MAX_PER_KIND],
    blas: [Option<i32>; MAX_PER_KIND],
    restore: bool,
}

/// On the caller, just before a fork whose children run OpenMP regions (forked workers, or the
/// zygote of a persistent pool and so its workers): frees libgomp's pool of the calling thread
/// (see the module doc). True where libgomp refused (the thread is inside a region): the
/// children must then run every region on one thread (`serialize_gnu_regions`). `whose` names
/// the workers in the `SM_VERBOSE` message.
pub fn free_gnu_pools_before_fork(runtimes: &Runtimes, whose: &str) -> bool {
    let mut serialize = false;
    for rt in runtimes.openmp().filter(|rt| rt.kind == OmpKind::Gnu) {
        if rt.level() == 0 && rt.pause() {
            continue;
        }
        serialize = true;
        if config::verbose() {
            eprintln!(
                "sharedmem: the calling thread is inside an OpenMP parallel region of {} \
                 (level {}), whose threads a forked worker cannot use: OpenMP regions in {whose} \
                 workers run on one thread",
                rt.name.as_str(),
                rt.level()
            );
        }
    }
    serialize
}

/// In a forked child of a thread whose libgomp pool could not be freed: every region it starts
/// runs on one thread. Allocates nothing.
pub fn serialize_gnu_regions(runtimes: &Runtimes) {
    for rt in runtimes.openmp().filter(|rt| rt.kind == OmpKind::Gnu) {
        rt.serialize_new_regions();
    }
}

impl Drop for SavedCounts<'_> {
    fn drop(&mut self) {
        if self.restore {
            self.plan.restore(&self.omp, &self.blas);
        }
    }
}
