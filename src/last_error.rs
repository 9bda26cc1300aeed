//! The per-thread status and message behind `sm_last_status()` and `sm_last_error()`.

use crate::status::Status;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CString};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static LAST_STATUS: Cell<Status> = const { Cell::new(Status::SM_OK) };
}

/// Records a failure of the calling thread: its status and message. Both stay until the next
/// failure on this thread (a call that succeeds clears neither, as with errno).
pub fn set(status: Status, message: &str) {
    // An interior NUL would truncate the C string; replace it rather than lose the message.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = text);
    LAST_STATUS.with(|slot| slot.set(status));
}

/// The calling thread's last error message; "" when there has been none. The pointer stays valid
/// until the next failing sharedmem call on this thread.
pub fn as_ptr() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

/// The status of the calling thread's last failure; SM_OK when there has been none.
pub fn status() -> Status {
    LAST_STATUS.with(|slot| slot.get())
}
