//! The per-thread message behind `sm_last_error()`.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as the calling thread's last error.
pub fn set(message: &str) {
    // An interior NUL would truncate the C string; replace it rather than lose the message.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = text);
}

/// The calling thread's last error message; "" when there has been none. The pointer stays valid
/// until the next failing sharedmem call on this thread.
pub fn as_ptr() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}
