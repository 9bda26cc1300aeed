//! The transport a driver speaks through: the few operations of a communicator that the protocol
//! needs, as a C struct of function pointers. libsharedmem_mpi (mpi/sharedmem_mpi.c) builds one
//! from an `MPI_Comm`; the tests build one from threads and channels. Keeping MPI behind it keeps
//! this library free of MPI, and lets one libsharedmem serve programs built against any MPI.
//!
//! The C declaration is `mpi/sharedmem_transport.h` (not installed: only libsharedmem_mpi uses
//! it); `size` lets the library refuse a struct of another layout, and tests/header.rs checks
//! that the two declarations list the same fields.

use std::ffi::{c_char, c_int, c_void};

/// A communicator as the driver sees it. Every function returns 0 on success (probe: 1 when a
/// message is waiting, 0 when none); any other value is a failure, described by `error`.
/// Messages between two ranks arrive in the order they were sent. `len` is at most `INT_MAX`.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct sm_transport {
    /// `sizeof(sm_transport)` as the builder of the struct knew it.
    pub size: usize,
    /// The builder's state (a duplicated communicator), passed to every function. NULL when there
    /// is no communicator to use (MPI not initialized, say): the call then fails at once with
    /// `refusal`, on this rank alone, since nothing collective can be done.
    pub comm: *mut c_void,
    /// This rank, and how many there are.
    pub rank: c_int,
    pub nranks: c_int,
    /// Non-NULL when this rank cannot take part (the MPI thread level is too low, say): the
    /// reason. The map then fails on every rank, after the collective argument check.
    pub refusal: *const c_char,
    /// Sends `len` bytes to rank `to` with `tag`. May block until the receiver takes them.
    pub send: unsafe extern "C" fn(
        comm: *mut c_void,
        to: c_int,
        tag: c_int,
        buf: *const c_void,
        len: usize,
    ) -> c_int,
    /// Without blocking: whether a message from any rank is waiting, and its sender, tag and
    /// length.
    pub probe: unsafe extern "C" fn(
        comm: *mut c_void,
        from: *mut c_int,
        tag: *mut c_int,
        len: *mut usize,
    ) -> c_int,
    /// Receives the next message from `from` with `tag` (`len` bytes into `buf`), waiting for it:
    /// one that `probe` reported, or one whose sender sends it right after the last received.
    pub recv: unsafe extern "C" fn(
        comm: *mut c_void,
        from: c_int,
        tag: c_int,
        buf: *mut c_void,
        len: usize,
    ) -> c_int,
    /// Collective: every rank's `len` bytes at `mine`, in rank order, into `all` (nranks x len).
    pub allgather: unsafe extern "C" fn(
        comm: *mut c_void,
        mine: *const c_void,
        all: *mut c_void,
        len: usize,
    ) -> c_int,
    /// What the last failing function said (never NULL).
    pub error: unsafe extern "C" fn(comm: *mut c_void) -> *const c_char,
    /// Collective: every rank sends `scounts[r]` bytes from `send + sdispls[r]` to rank r and
    /// receives `rcounts[r]` bytes from rank r at `recv + rdispls[r]` (MPI_Alltoallv on bytes,
    /// with `size_t` counts: any size). `rcounts[r]` equals what rank r sends here.
    pub alltoallv: unsafe extern "C" fn(
        comm: *mut c_void,
        send: *const c_void,
        scounts: *const usize,
        sdispls: *const usize,
        recv: *mut c_void,
        rcounts: *const usize,
        rdispls: *const usize,
    ) -> c_int,
}
