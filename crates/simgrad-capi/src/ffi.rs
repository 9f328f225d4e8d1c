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

// Unit tests of the pointer helpers; `cargo xtask miri` runs them under Miri.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::simgrad_status;

    #[derive(Debug)]
    struct Thing(Vec<u8>);

    impl BoxHandle for Thing {
        const NAME: &'static str = "thing";
    }

    #[test]
    fn handles_are_borrowed_and_freed_once() {
        let p = Thing(vec![1, 2, 3]).into_raw();
        let t = unsafe { Thing::borrow(p, "t") }.unwrap();
        assert_eq!(t.0, [1, 2, 3]);
        unsafe { Thing::free(p) };
        unsafe { Thing::free(std::ptr::null_mut()) };
        let e = unsafe { Thing::borrow(std::ptr::null(), "t") }.unwrap_err();
        assert_eq!(e.status, simgrad_status::SIMGRAD_ERR_NULL_ARGUMENT);
        assert_eq!(e.message, "`t` is NULL; pass a thing handle");
    }

    #[test]
    fn outputs_are_checked_up_front_and_written_once() {
        assert!(Out::<u32>::new(std::ptr::null_mut(), "out").is_err());
        let mut v = std::mem::MaybeUninit::<u32>::uninit();
        let out = Out::new(v.as_mut_ptr(), "out").unwrap();
        unsafe { out.write(7) };
        assert_eq!(unsafe { v.assume_init() }, 7);
    }

    #[test]
    fn strings_and_paths() {
        assert_eq!(unsafe { str_arg(c"abc".as_ptr(), "s") }, Ok("abc"));
        let bad = [b'a', 0xff, 0];
        let e = unsafe { str_arg(bad.as_ptr().cast(), "s") }.unwrap_err();
        assert_eq!(e.status, simgrad_status::SIMGRAD_ERR_INVALID_ARGUMENT);
        assert!(e.message.starts_with("`s` is not valid UTF-8"), "{e:?}");
        assert_eq!(
            unsafe { str_arg(std::ptr::null(), "s") }
                .unwrap_err()
                .status,
            simgrad_status::SIMGRAD_ERR_NULL_ARGUMENT
        );
        assert_eq!(unsafe { opt_str_arg(std::ptr::null(), "s") }, Ok(None));

        // Paths are bytes on Unix: not UTF-8 is fine, empty is not.
        #[cfg(unix)]
        assert_eq!(
            unsafe { path_arg(bad.as_ptr().cast(), "p") }
                .unwrap()
                .as_os_str()
                .len(),
            2
        );
        let e = unsafe { path_arg(c"".as_ptr(), "p") }.unwrap_err();
        assert_eq!(e.message, "`p` is an empty path");
        assert_eq!(unsafe { opt_path_arg(std::ptr::null(), "p") }, Ok(None));
    }

    #[test]
    fn slices_may_be_null_only_when_empty() {
        let empty = unsafe { slice_arg::<u64>(std::ptr::null(), 0, "a", "n") }.unwrap();
        assert!(empty.is_empty());
        let e = unsafe { slice_arg::<u64>(std::ptr::null(), 2, "a", "n") }.unwrap_err();
        assert_eq!(e.message, "`a` is NULL but n is 2");
        let v = [4u64, 5];
        assert_eq!(unsafe { slice_arg(v.as_ptr(), 2, "a", "n") }, Ok(&v[..]));
    }
}
