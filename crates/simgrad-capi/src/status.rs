//! Status codes returned by every fallible export, and their names.
//!
//! The numbers are part of the ABI: they are explicit, never renumbered, and a retired code stays
//! reserved. Codes coming back from C (as in [`simgrad_status_name`]) are read as plain integers
//! and converted with [`simgrad_status::from_u32`], never transmuted.

use std::ffi::{c_char, CStr};

/// The result of a fallible simgrad call. `SIMGRAD_OK` (0) is success; on any other value,
/// `simgrad_last_error_message()` says what went wrong.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum simgrad_status {
    /// Success.
    SIMGRAD_OK = 0,
    /// A required pointer parameter (a handle, an output, a string, an array of descriptors, a
    /// descriptor's `shape`) is NULL.
    SIMGRAD_ERR_NULL_ARGUMENT = 1,
    /// A parameter has a value that is never valid: unknown flag bits, a string that is not UTF-8,
    /// a wrong number of arguments, a tangent given where none is meaningful.
    SIMGRAD_ERR_INVALID_ARGUMENT = 2,
    /// An argument's element type differs from the kernel's manifest (or is not supported).
    SIMGRAD_ERR_DTYPE = 3,
    /// An argument's rank or shape contradicts the manifest or another argument.
    SIMGRAD_ERR_SHAPE = 4,
    /// An argument's strides are not contiguous in the kernel's memory order, or its memory is
    /// not on the CPU.
    SIMGRAD_ERR_LAYOUT = 5,
    /// A buffer the call writes overlaps another buffer of the call.
    SIMGRAD_ERR_ALIAS = 6,
    /// No kernel of that name, no such mode, or an argument or kernel index out of range.
    SIMGRAD_ERR_NOT_FOUND = 7,
    /// The shared library cannot be opened, or a symbol listed in its manifest is missing.
    SIMGRAD_ERR_LIBRARY = 8,
    /// The manifest is missing, unreadable or inconsistent.
    SIMGRAD_ERR_MANIFEST = 9,
    /// The library was built for another manifest schema or calling convention.
    SIMGRAD_ERR_ABI_MISMATCH = 10,
    /// The kernel spec (`simgrad.toml`) is invalid.
    SIMGRAD_ERR_SPEC = 11,
    /// A compiler, Enzyme or another tool of the build pipeline failed.
    SIMGRAD_ERR_BUILD = 12,
    /// The toolchain (clang, flang, opt, llvm-link, the Enzyme plugin) is missing or inconsistent.
    SIMGRAD_ERR_TOOLCHAIN = 13,
    /// The gradient check run after a build (`SIMGRAD_BUILD_VERIFY`) failed.
    SIMGRAD_ERR_VERIFY = 14,
    /// The kernel's entry point returned a non-zero status.
    SIMGRAD_ERR_KERNEL = 15,
    /// A file-system error (including the build cache).
    SIMGRAD_ERR_IO = 16,
    /// simgrad panicked; this is a bug in simgrad. The message is the panic's.
    SIMGRAD_ERR_PANIC = 17,
    /// The caller's buffer is too small; the size needed was reported.
    SIMGRAD_ERR_BUFFER_TOO_SMALL = 18,
}

/// Every status, in numeric order (`ALL[i] as u32 == i`). Not an associated constant, which
/// cbindgen would export as a macro.
const ALL: [simgrad_status; 19] = [
    simgrad_status::SIMGRAD_OK,
    simgrad_status::SIMGRAD_ERR_NULL_ARGUMENT,
    simgrad_status::SIMGRAD_ERR_INVALID_ARGUMENT,
    simgrad_status::SIMGRAD_ERR_DTYPE,
    simgrad_status::SIMGRAD_ERR_SHAPE,
    simgrad_status::SIMGRAD_ERR_LAYOUT,
    simgrad_status::SIMGRAD_ERR_ALIAS,
    simgrad_status::SIMGRAD_ERR_NOT_FOUND,
    simgrad_status::SIMGRAD_ERR_LIBRARY,
    simgrad_status::SIMGRAD_ERR_MANIFEST,
    simgrad_status::SIMGRAD_ERR_ABI_MISMATCH,
    simgrad_status::SIMGRAD_ERR_SPEC,
    simgrad_status::SIMGRAD_ERR_BUILD,
    simgrad_status::SIMGRAD_ERR_TOOLCHAIN,
    simgrad_status::SIMGRAD_ERR_VERIFY,
    simgrad_status::SIMGRAD_ERR_KERNEL,
    simgrad_status::SIMGRAD_ERR_IO,
    simgrad_status::SIMGRAD_ERR_PANIC,
    simgrad_status::SIMGRAD_ERR_BUFFER_TOO_SMALL,
];

impl simgrad_status {
    /// The status with number `code`, if there is one.
    pub fn from_u32(code: u32) -> Option<simgrad_status> {
        ALL.iter().copied().find(|s| *s as u32 == code)
    }

    /// The C name of the status (`"SIMGRAD_OK"`, ...).
    pub fn name(self) -> &'static CStr {
        use simgrad_status::*;
        match self {
            SIMGRAD_OK => c"SIMGRAD_OK",
            SIMGRAD_ERR_NULL_ARGUMENT => c"SIMGRAD_ERR_NULL_ARGUMENT",
            SIMGRAD_ERR_INVALID_ARGUMENT => c"SIMGRAD_ERR_INVALID_ARGUMENT",
            SIMGRAD_ERR_DTYPE => c"SIMGRAD_ERR_DTYPE",
            SIMGRAD_ERR_SHAPE => c"SIMGRAD_ERR_SHAPE",
            SIMGRAD_ERR_LAYOUT => c"SIMGRAD_ERR_LAYOUT",
            SIMGRAD_ERR_ALIAS => c"SIMGRAD_ERR_ALIAS",
            SIMGRAD_ERR_NOT_FOUND => c"SIMGRAD_ERR_NOT_FOUND",
            SIMGRAD_ERR_LIBRARY => c"SIMGRAD_ERR_LIBRARY",
            SIMGRAD_ERR_MANIFEST => c"SIMGRAD_ERR_MANIFEST",
            SIMGRAD_ERR_ABI_MISMATCH => c"SIMGRAD_ERR_ABI_MISMATCH",
            SIMGRAD_ERR_SPEC => c"SIMGRAD_ERR_SPEC",
            SIMGRAD_ERR_BUILD => c"SIMGRAD_ERR_BUILD",
            SIMGRAD_ERR_TOOLCHAIN => c"SIMGRAD_ERR_TOOLCHAIN",
            SIMGRAD_ERR_VERIFY => c"SIMGRAD_ERR_VERIFY",
            SIMGRAD_ERR_KERNEL => c"SIMGRAD_ERR_KERNEL",
            SIMGRAD_ERR_IO => c"SIMGRAD_ERR_IO",
            SIMGRAD_ERR_PANIC => c"SIMGRAD_ERR_PANIC",
            SIMGRAD_ERR_BUFFER_TOO_SMALL => c"SIMGRAD_ERR_BUFFER_TOO_SMALL",
        }
    }
}

/// The name of a status code as a static NUL-terminated string (`"SIMGRAD_ERR_SHAPE"` for 4), or
/// `"SIMGRAD_UNKNOWN_STATUS"` for a number that is not a status. Never NULL; never freed.
#[no_mangle]
pub extern "C" fn simgrad_status_name(status: u32) -> *const c_char {
    ffi_boundary!("simgrad_status_name", value {
        simgrad_status::from_u32(status)
            .map_or(c"SIMGRAD_UNKNOWN_STATUS", simgrad_status::name)
            .as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_dense_and_names_match() {
        for (i, s) in ALL.iter().enumerate() {
            assert_eq!(*s as u32 as usize, i);
            assert_eq!(simgrad_status::from_u32(i as u32), Some(*s));
            let name = format!("{s:?}");
            assert_eq!(s.name().to_str().unwrap(), name);
        }
        assert_eq!(simgrad_status::from_u32(19), None);
    }
}
