//! Checked conversions of the raw pointers C passes in.
//!
//! Export bodies never dereference a parameter directly: they go through these helpers, which
//! turn a NULL (or an invalid string) into a [`Failure`] naming the parameter, and through
//! [`BoxHandle`], which is the one place where handles are created, borrowed and freed.

use crate::error::{Failure, FfiResult};
use std::ffi::{c_char, CStr};
use std::path::PathBuf;

/// An opaque handle type handed to C as a pointer to a `Box`ed Rust value.
pub(crate) trait BoxHandle: Sized {
    /// The C type name, for messages (`"simgrad_library"`).
    const NAME: &'static str;

    /// Gives ownership of `self` to C.
    fn into_raw(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }

    /// Borrows the handle behind `p`; `param` names the parameter in the error.
    ///
    /// # Safety
    /// `p` is NULL or was returned by [`BoxHandle::into_raw`] and not freed yet.
    unsafe fn borrow<'a>(p: *const Self, param: &str) -> FfiResult<&'a Self> {
        p.as_ref().ok_or_else(|| {
            Failure::null(format!("`{param}` is NULL; pass a {} handle", Self::NAME))
        })
    }

    /// Takes the handle back from C and drops it; NULL does nothing.
    ///
    /// # Safety
    /// `p` is NULL or was returned by [`BoxHandle::into_raw`] and not freed yet.
    unsafe fn free(p: *mut Self) {
        if !p.is_null() {
            drop(Box::from_raw(p));
        }
    }
}

/// An output parameter, checked for NULL up front and written only once the call has succeeded.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Checks the output pointer `p` (named `param` in the error).
    pub fn new(p: *mut T, param: &str) -> FfiResult<Out<T>> {
        if p.is_null() {
            return Err(Failure::null(format!("output `{param}` is NULL")));
        }
        Ok(Out(p))
    }

    /// Stores the result.
    ///
    /// # Safety
    /// The pointer given to [`Out::new`] is valid for a write of `T` (it need not be initialised).
    pub unsafe fn write(self, value: T) {
        self.0.write(value);
    }
}

/// The string behind `p` (named `param`): NULL and invalid UTF-8 are errors.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that lives for `'a`.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, param: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(Failure::null(format!("`{param}` is NULL")));
    }
    CStr::from_ptr(p)
        .to_str()
        .map_err(|e| Failure::invalid(format!("`{param}` is not valid UTF-8 ({e})")))
}

/// The optional string behind `p`: NULL is `None`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(p: *const c_char, param: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        str_arg(p, param).map(Some)
    }
}

/// The path behind `p` (named `param`). On Unix any bytes are accepted, as the OS does;
/// elsewhere the path must be UTF-8. An empty path is an error.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn path_arg(p: *const c_char, param: &str) -> FfiResult<PathBuf> {
    if p.is_null() {
        return Err(Failure::null(format!("`{param}` is NULL; pass a path")));
    }
    let bytes = CStr::from_ptr(p).to_bytes();
    if bytes.is_empty() {
        return Err(Failure::invalid(format!("`{param}` is an empty path")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        str_arg(p, param).map(PathBuf::from)
    }
}

/// The optional path behind `p`: NULL is `None`.
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_path_arg(p: *const c_char, param: &str) -> FfiResult<Option<PathBuf>> {
    if p.is_null() {
        Ok(None)
    } else {
        path_arg(p, param).map(Some)
    }
}

/// The array of `len` elements at `p`. `p` (named `param`) may be NULL only when `len` (named
/// `len_param`) is 0.
///
/// # Safety
/// `p` is NULL or points to `len` initialised elements that live for `'a`.
pub(crate) unsafe fn slice_arg<'a, T>(
    p: *const T,
    len: usize,
    param: &str,
    len_param: &str,
) -> FfiResult<&'a [T]> {
    if p.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Failure::null(format!(
            "`{param}` is NULL but {len_param} is {len}"
        )));
    }
    Ok(std::slice::from_raw_parts(p, len))
}
