//! A pool: how many workers, of which kind, and (for threads) the threads themselves.

use crate::config;
use crate::engine::backend::persistent::Residents;
use crate::engine::backend::threads::ThreadPool;
use crate::status::{Error, Result};
use crate::sys::shm::SharedMapping;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Process,
    Thread,
    Serial,
    Persistent,
}

pub struct Pool {
    nworkers: usize,
    backend: Backend,
    /// More workers than CPUs this process may use (at creation): waiting workers then sleep
    /// rather than spin, since the one they wait for may need the CPU.
    oversubscribed: bool,
    threads: Option<ThreadPool>,
    residents: Option<Residents>,
    /// Set while a map runs: a pool runs one map at a time.
    busy: AtomicBool,
    /// The control block mapping of the last map, kept for the next one. Only the thread holding
    /// `busy` touches it, and never while forking.
    spare_mapping: Mutex<Option<SharedMapping>>,
}

impl Pool {
    /// `nworkers <= 0` asks for the default (config::default_workers).
    pub fn new(nworkers: i32, backend: Backend) -> Result<Pool> {
        if nworkers > config::MAX_WORKERS {
            return Err(Error::invalid(format!(
                "sm_pool_new: nworkers = {nworkers} is more than the {} workers (SM_MAX_WORKERS) a pool \
                 may have",
                config::MAX_WORKERS
            )));
        }
        // A serial pool runs everything in the calling thread: one worker, whatever was asked, so
        // that sm_pool_nworkers, sm_num_workers and the threads of sm_argsort agree.
        let n = if backend == Backend::Serial {
            1
        } else if nworkers <= 0 {
            config::default_workers()
        } else {
            nworkers
        } as usize;
        let threads = match backend {
            Backend::Thread => Some(ThreadPool::new(n)?),
            _ => None,
        };
        let residents = match backend {
            Backend::Persistent => Some(Residents::start(n)?),
            _ => None,
        };
        Ok(Pool {
            nworkers: n,
            backend,
            oversubscribed: n > config::affinity_cpus().max(1) as usize,
            threads,
            residents,
            busy: AtomicBool::new(false),
            spare_mapping: Mutex::new(None),
        })
    }

    pub fn nworkers(&self) -> usize {
        self.nworkers
    }

    pub fn oversubscribed(&self) -> bool {
        self.oversubscribed
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn threads(&self) -> Option<&ThreadPool> {
        self.threads.as_ref()
    }

    pub fn residents(&self) -> Option<&Residents> {
        self.residents.as_ref()
    }

    /// Marks the pool busy for the life of the returned guard; fails if it already is.
    /// The pool for one map or region; `call` (the C function) names the refusal.
    pub fn claim(&self, call: &str) -> Result<BusyGuard<'_>> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(Error::state(format!(
                "{call}: this pool is already running a map or region (called from another \
                 thread, or from reduce); use one pool per concurrent map or region"
            )));
        }
        Ok(BusyGuard(self))
    }

    pub fn take_spare_mapping(&self) -> Option<SharedMapping> {
        self.spare_mapping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub fn keep_spare_mapping(&self, mapping: SharedMapping) {
        *self.spare_mapping.lock().unwrap_or_else(|p| p.into_inner()) = Some(mapping);
    }

    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }
}

pub struct BusyGuard<'a>(&'a Pool);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}
