//! The panic boundary around every export.
//!
//! Unwinding out of an `extern "C"` function aborts the process, so every export body runs inside
//! [`ffi_boundary!`], which catches a panic and turns it into a value C can handle:
//!
//! * `ffi_boundary!("name", status { ... })`: the body returns an `FfiResult<()>`. The thread's
//!   last error is cleared on entry; an `Err` is recorded (prefixed with the export's name) and
//!   its status returned; a panic becomes `SIMGRAD_ERR_PANIC` with the panic message recorded.
//! * `ffi_boundary!("name", value { ... })`: the body returns a plain value (a static string, a
//!   version number, nothing for `*_free`); a panic is recorded and the type's [`Fallback`]
//!   returned (a static string for pointers, 0 for numbers).
//!
//! The tidy test (`tests/tidy.rs`) checks that every export's body starts with this macro and
//! that the name given is the export's own.

use crate::error::{self, FfiResult};
use crate::status::simgrad_status;
use std::any::Any;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Wraps an export body in the panic boundary; see the module documentation.
macro_rules! ffi_boundary {
    ($name:literal, status $body:block) => {
        $crate::panic::guard_status($name, move || -> $crate::error::FfiResult { $body })
    };
    ($name:literal, value $body:block) => {
        $crate::panic::guard_value($name, move || $body)
    };
}

/// What a value-returning export gives back when its body panicked.
pub(crate) trait Fallback {
    /// The value returned instead.
    fn fallback() -> Self;
}

/// The static string returned by a string-returning export that panicked.
static PANIC_STRING: &std::ffi::CStr =
    c"<simgrad: internal panic, see simgrad_last_error_message()>";

impl Fallback for *const c_char {
    fn fallback() -> Self {
        PANIC_STRING.as_ptr()
    }
}

impl Fallback for u32 {
    fn fallback() -> Self {
        0
    }
}

impl Fallback for () {
    fn fallback() -> Self {}
}

fn panic_message(name: &str, payload: &(dyn Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("{name}: internal panic (a bug in simgrad, please report it): {what}")
}

/// Runs a status-returning export body; see [`ffi_boundary!`].
pub(crate) fn guard_status(name: &str, body: impl FnOnce() -> FfiResult) -> simgrad_status {
    error::clear();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => simgrad_status::SIMGRAD_OK,
        Ok(Err(f)) => {
            error::set(&format!("{name}: {}", f.message));
            f.status
        }
        Err(payload) => {
            error::set(&panic_message(name, payload.as_ref()));
            simgrad_status::SIMGRAD_ERR_PANIC
        }
    }
}

/// Runs a value-returning export body; see [`ffi_boundary!`].
pub(crate) fn guard_value<R: Fallback>(name: &str, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            error::set(&panic_message(name, payload.as_ref()));
            R::fallback()
        }
    }
}

/// Test hook, not part of the API and left out of the header: always panics inside the panic
/// boundary, so tests can check that a panic comes back as `SIMGRAD_ERR_PANIC` with its message
/// and that the library keeps working afterwards.
#[doc(hidden)]
#[no_mangle]
pub extern "C" fn simgrad__test_panic() -> simgrad_status {
    ffi_boundary!("simgrad__test_panic", status {
        panic!("simgrad__test_panic was called");
    })
}
