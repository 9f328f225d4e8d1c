//! Versions: of libsimgrad itself and of its C ABI.
//!
//! The header carries the same numbers as macros (`SIMGRAD_VERSION_MAJOR`, `_MINOR`, `_PATCH`,
//! `SIMGRAD_VERSION` from `cbindgen.toml`, `SIMGRAD_ABI_VERSION` from the constant below), so a
//! program can compare what it was compiled against with what it runs against. A test checks the
//! macros against `Cargo.toml`.

use std::ffi::{c_char, CStr};

/// Version of the C ABI of libsimgrad: the functions, types and status codes of `simgrad.h`.
/// Raised on any incompatible change; adding functions or status codes does not raise it.
/// (Independent of the calling-convention version of kernel libraries in their manifest.)
pub const SIMGRAD_ABI_VERSION: u32 = 1;

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the package version has no NUL"),
    };

/// The version of libsimgrad as a static string (`"0.1.0"`). Never NULL; never freed.
#[no_mangle]
pub extern "C" fn simgrad_version() -> *const c_char {
    ffi_boundary!("simgrad_version", value {
        VERSION.as_ptr()
    })
}

/// The C ABI version of the loaded libsimgrad; equal to the header's `SIMGRAD_ABI_VERSION` when
/// the program runs against the library it was compiled for.
#[no_mangle]
pub extern "C" fn simgrad_abi_version() -> u32 {
    ffi_boundary!(
        "simgrad_abi_version",
        value {
            SIMGRAD_ABI_VERSION
        }
    )
}
