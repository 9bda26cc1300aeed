//! The status codes (`sm_status`, defined with the header's other types in abi.rs): what each
//! means in words, and the error type every layer passes around.

use std::fmt;

pub use crate::abi::sm_status as Status;

impl Status {
    /// Every status, in numeric order.
    pub const ALL: [Status; 10] = [
        Status::SM_OK,
        Status::SM_STOPPED,
        Status::SM_ERR_INVALID,
        Status::SM_ERR_NOMEM,
        Status::SM_ERR_JOB,
        Status::SM_ERR_WORKER_DIED,
        Status::SM_ERR_INTERRUPTED,
        Status::SM_ERR_STATE,
        Status::SM_ERR_IO,
        Status::SM_ERR_PANIC,
    ];

    /// The status with numeric value `raw`, if there is one.
    pub fn from_raw(raw: i64) -> Option<Status> {
        Status::ALL.iter().copied().find(|s| *s as i64 == raw)
    }

    /// A short, static description (what `sm_status_str` returns), NUL-terminated.
    pub fn describe(self) -> &'static str {
        match self {
            Status::SM_OK => "SM_OK: success\0",
            Status::SM_STOPPED => "SM_STOPPED: the map stopped early on request\0",
            Status::SM_ERR_INVALID => "SM_ERR_INVALID: invalid argument\0",
            Status::SM_ERR_NOMEM => "SM_ERR_NOMEM: out of memory or processes\0",
            Status::SM_ERR_JOB => "SM_ERR_JOB: a job returned an error\0",
            Status::SM_ERR_WORKER_DIED => "SM_ERR_WORKER_DIED: a worker process died\0",
            Status::SM_ERR_INTERRUPTED => "SM_ERR_INTERRUPTED: interrupted by a signal\0",
            Status::SM_ERR_STATE => "SM_ERR_STATE: call made in the wrong state\0",
            Status::SM_ERR_IO => "SM_ERR_IO: input/output error\0",
            Status::SM_ERR_PANIC => "SM_ERR_PANIC: internal error (panic caught)\0",
        }
    }
}

/// A failed operation: the status to return and the message for `sm_last_error()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Status::SM_ERR_INVALID, message)
    }

    pub fn state(message: impl Into<String>) -> Error {
        Error::new(Status::SM_ERR_STATE, message)
    }

    pub fn nomem(message: impl Into<String>) -> Error {
        Error::new(Status::SM_ERR_NOMEM, message)
    }

    /// The error as the C function `call` reports it: its message starts with `call: ` (added
    /// unless it is there already).
    pub fn in_call(self, call: &str) -> Error {
        let named = self
            .message
            .strip_prefix(call)
            .is_some_and(|rest| rest.starts_with(": "));
        if named {
            return self;
        }
        Error {
            message: format!("{call}: {}", self.message),
            ..self
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.status, self.message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
