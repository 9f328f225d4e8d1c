//! The last error of the calling thread, and the failure type every export body returns.
//!
//! Each thread has one slot holding the message of the last failed call. A call that returns a
//! [`simgrad_status`] clears it on entry and fills it on failure, so the message always belongs to
//! the most recent status-returning call on this thread. The pointer handed out by
//! [`simgrad_last_error_message`] points into the slot and stays valid until the next simgrad
//! call on the same thread.

use crate::status::simgrad_status;
use std::cell::RefCell;
use std::ffi::{c_char, CString};

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Why an export failed: the status to return and the message to leave for
/// [`simgrad_last_error_message`]. The panic boundary prefixes the message with the export's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: simgrad_status,
    pub message: String,
}

/// The result type of every status-returning export body.
pub(crate) type FfiResult<T = ()> = Result<T, Failure>;

impl Failure {
    pub fn new(status: simgrad_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub fn null(message: impl Into<String>) -> Failure {
        Failure::new(simgrad_status::SIMGRAD_ERR_NULL_ARGUMENT, message)
    }

    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(simgrad_status::SIMGRAD_ERR_INVALID_ARGUMENT, message)
    }

    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(simgrad_status::SIMGRAD_ERR_NOT_FOUND, message)
    }
}

/// The status of each runtime error. The message is the runtime's own, which already names the
/// kernel, the argument and the expected versus the actual value.
impl From<simgrad_core::Error> for Failure {
    fn from(e: simgrad_core::Error) -> Failure {
        use simgrad_core::Error as E;
        use simgrad_status::*;
        let status = match &e {
            E::Open { .. } | E::MissingSymbol { .. } => SIMGRAD_ERR_LIBRARY,
            E::Manifest { .. } => SIMGRAD_ERR_MANIFEST,
            E::AbiMismatch { .. } => SIMGRAD_ERR_ABI_MISMATCH,
            E::UnknownKernel { .. } | E::UnknownMode { .. } => SIMGRAD_ERR_NOT_FOUND,
            E::ArgCount { .. } | E::Unexpected { .. } => SIMGRAD_ERR_INVALID_ARGUMENT,
            E::DType { .. } => SIMGRAD_ERR_DTYPE,
            E::Rank { .. } | E::Shape { .. } => SIMGRAD_ERR_SHAPE,
            E::Null { .. } => SIMGRAD_ERR_NULL_ARGUMENT,
            E::Layout { .. } => SIMGRAD_ERR_LAYOUT,
            E::Alias { .. } => SIMGRAD_ERR_ALIAS,
            E::KernelFailed { .. } => SIMGRAD_ERR_KERNEL,
        };
        Failure::new(status, e.to_string())
    }
}

/// Empties this thread's last error.
pub(crate) fn clear() {
    // `try_with`: during thread teardown the slot may already be gone; there is nothing to clear.
    let _ = LAST_ERROR.try_with(|slot| slot.borrow_mut().take());
}

/// Stores `message` as this thread's last error. Interior NULs (which C cannot see past) are
/// replaced so the whole message survives.
pub(crate) fn set(message: &str) {
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = Some(text));
}

/// The message of the last failed simgrad call on this thread, as a NUL-terminated UTF-8 string;
/// `""` when the most recent status-returning call succeeded or none was made. Never NULL. The
/// string is owned by simgrad and stays valid until the next simgrad call on this thread; copy it
/// to keep it.
#[no_mangle]
pub extern "C" fn simgrad_last_error_message() -> *const c_char {
    ffi_boundary!("simgrad_last_error_message", value {
        LAST_ERROR
            .try_with(|slot| slot.borrow().as_ref().map(|s| s.as_ptr()))
            .ok()
            .flatten()
            .unwrap_or(c"".as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: never NULL, NUL-terminated.
        unsafe { CStr::from_ptr(simgrad_last_error_message()) }
            .to_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn set_clear_and_interior_nul() {
        assert_eq!(last(), "");
        set("bad\0thing");
        assert_eq!(last(), "bad\\0thing");
        clear();
        assert_eq!(last(), "");
    }

    #[test]
    fn each_thread_has_its_own_message() {
        set("main thread");
        std::thread::spawn(|| assert_eq!(last(), ""))
            .join()
            .unwrap();
        assert_eq!(last(), "main thread");
    }
}
