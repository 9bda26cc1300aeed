//! How a map or region ended, as the caller's side (supervise.rs) and the backends found it;
//! report.rs turns it into a status and a message.

use crate::engine::control::{HookFailure, JobEnd};

/// How a worker process ended without finishing its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Signal(i32),
    Exit(i32),
    /// Reaped by someone else (the caller ignores SIGCHLD or reaps every child itself).
    Vanished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Death {
    pub worker: usize,
    pub pid: i32,
    /// The job it was running, if any.
    pub job: Option<u64>,
    /// Jobs from here on may not have run.
    pub lost_from: u64,
    pub cause: Cause,
    /// Where the worker was: `WorkerRecord::stage` (before, in or after its job loop).
    pub stage: u32,
}

impl Death {
    /// Ctrl-C and friends: the user wants the whole map gone, not its earlier results drained.
    pub fn is_interrupt(&self) -> bool {
        matches!(
            self.cause,
            Cause::Signal(libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// A job returned SM_STOP (reduce ran for it).
    StoppedByJob(u64),
    /// reduce returned `code` for this job.
    StoppedByReduce {
        job: u64,
        code: i32,
    },
    /// A job ended with an error or left a section held.
    JobFailed {
        job: u64,
        end: JobEnd,
    },
    WorkerDied(Death),
    /// A worker_init or worker_fini hook returned nonzero.
    HookFailed {
        worker: usize,
        failure: HookFailure,
    },
    /// worker_reduce returned `code` for this worker.
    StoppedByWorkerReduce {
        worker: usize,
        code: i32,
    },
    /// A watched signal was caught by the caller's handler, or killed a worker.
    Interrupted {
        signal: i32,
        death: Option<Death>,
    },
}

impl Outcome {
    /// The jobs ran as asked: to the end, or to a requested stop.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Outcome::Completed | Outcome::StoppedByJob(_) | Outcome::StoppedByReduce { .. }
        )
    }
}
