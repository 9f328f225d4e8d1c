//! Building a kernel spec (`simgrad.toml`) into a kernel library from C, through `simgrad-build`:
//! toolchain discovery, compilation, Enzyme, the build cache.

use crate::error::{Failure, FfiResult};
use crate::ffi::{opt_path_arg, opt_str_arg, path_arg, BoxHandle, Out};
use crate::library::simgrad_library;
use crate::status::simgrad_status;
use simgrad_build::{BuildError, BuildOptions, ErrorKind};
use simgrad_core::Library;
use std::ffi::c_char;
use std::mem::{offset_of, size_of};
use std::path::Path;

/// `simgrad_build_options.flags`: run a gradient check of every kernel after building; a failed
/// check is `SIMGRAD_ERR_VERIFY`.
pub const SIMGRAD_BUILD_VERIFY: u32 = 1;
/// `simgrad_build_options.flags`: rebuild even when the cache holds the result.
pub const SIMGRAD_BUILD_FORCE: u32 = 2;
/// `simgrad_build_options.flags`: print nothing while building.
pub const SIMGRAD_BUILD_QUIET: u32 = 4;

const KNOWN_FLAGS: u32 = SIMGRAD_BUILD_VERIFY | SIMGRAD_BUILD_FORCE | SIMGRAD_BUILD_QUIET;

/// Options of `simgrad_build` and `simgrad_build_path`. Zero-initialise it, set `struct_size` to
/// `sizeof(simgrad_build_options)`, then set what you need; NULL strings mean the default.
/// `struct_size` lets later versions append fields: simgrad reads only the fields that fit in it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct simgrad_build_options {
    /// `sizeof(simgrad_build_options)` as the caller compiled it.
    pub struct_size: u32,
    /// A directory to copy the built library into; the returned library is that copy (NULL: the
    /// library is used from the cache).
    pub out_dir: *const c_char,
    /// The build cache directory (NULL: `$SIMGRAD_CACHE_DIR`, else `~/.cache/simgrad`).
    pub cache_dir: *const c_char,
    /// Name of the compile pipeline, overriding the spec's `[build].pipeline` (NULL: the spec's).
    pub pipeline: *const c_char,
    /// `SIMGRAD_BUILD_VERIFY`, `SIMGRAD_BUILD_FORCE`, `SIMGRAD_BUILD_QUIET`, or-ed together.
    pub flags: u32,
}

/// The smallest `struct_size` accepted: the options as of ABI version 1, up to `flags`.
const MIN_OPTIONS_SIZE: usize = offset_of!(simgrad_build_options, flags) + size_of::<u32>();

/// The status of each build failure.
fn build_failure(e: BuildError) -> Failure {
    use simgrad_status::*;
    let status = match e.kind() {
        ErrorKind::Spec => SIMGRAD_ERR_SPEC,
        ErrorKind::Toolchain => SIMGRAD_ERR_TOOLCHAIN,
        ErrorKind::Tool | ErrorKind::Enzyme => SIMGRAD_ERR_BUILD,
        ErrorKind::Verify => SIMGRAD_ERR_VERIFY,
        ErrorKind::Cache | ErrorKind::Io => SIMGRAD_ERR_IO,
    };
    Failure::new(status, e.to_string())
}

/// Reads the caller's options (NULL: all defaults).
///
/// # Safety
/// `options` is NULL or points to at least `struct_size` readable bytes whose strings are NULL or
/// NUL-terminated.
unsafe fn read_options(options: *const simgrad_build_options) -> FfiResult<BuildOptions> {
    let Some(o) = options.as_ref() else {
        return Ok(BuildOptions::default());
    };
    let size = o.struct_size as usize;
    if size < MIN_OPTIONS_SIZE {
        return Err(Failure::invalid(format!(
            "`options->struct_size` is {size}, expected at least {MIN_OPTIONS_SIZE}; set it to sizeof(simgrad_build_options)"
        )));
    }
    if o.flags & !KNOWN_FLAGS != 0 {
        return Err(Failure::invalid(format!(
            "unknown bits in `options->flags` ({:#x}); the flags are SIMGRAD_BUILD_VERIFY (1), SIMGRAD_BUILD_FORCE (2) and SIMGRAD_BUILD_QUIET (4)",
            o.flags
        )));
    }
    Ok(BuildOptions {
        out_dir: opt_path_arg(o.out_dir, "options->out_dir")?,
        cache_dir: opt_path_arg(o.cache_dir, "options->cache_dir")?,
        pipeline: opt_str_arg(o.pipeline, "options->pipeline")?.map(str::to_string),
        verify: o.flags & SIMGRAD_BUILD_VERIFY != 0,
        force: o.flags & SIMGRAD_BUILD_FORCE != 0,
        quiet: o.flags & SIMGRAD_BUILD_QUIET != 0,
    })
}

/// Builds (or finds in the cache) the kernel library of a spec.
///
/// # Safety
/// As [`read_options`]; `spec_path` is NULL or NUL-terminated.
unsafe fn build(
    spec_path: *const c_char,
    options: *const simgrad_build_options,
) -> FfiResult<std::path::PathBuf> {
    let spec = path_arg(spec_path, "spec_path")?;
    let opts = read_options(options)?;
    let built = simgrad_build::build_spec_file(&spec, &opts).map_err(build_failure)?;
    Ok(built.library)
}

/// Builds the kernel library described by the spec file `spec_path` (`simgrad.toml`), or takes
/// it from the build cache, and opens it. `options` may be NULL for the defaults. On success
/// `*out` receives a new library handle. Fails with `SIMGRAD_ERR_SPEC` (invalid spec),
/// `SIMGRAD_ERR_TOOLCHAIN` (missing or mismatched compiler or Enzyme plugin), `SIMGRAD_ERR_BUILD`
/// (a compiler or Enzyme error; the message holds the tool's output), `SIMGRAD_ERR_VERIFY`,
/// `SIMGRAD_ERR_IO`, or any error of `simgrad_library_open`.
#[no_mangle]
pub unsafe extern "C" fn simgrad_build(
    spec_path: *const c_char,
    options: *const simgrad_build_options,
    out: *mut *mut simgrad_library,
) -> simgrad_status {
    ffi_boundary!("simgrad_build", status {
        let out = Out::new(out, "out")?;
        let path = build(spec_path, options)?;
        let lib = Library::open(&path)?;
        out.write(simgrad_library::new(lib).into_raw());
        Ok(())
    })
}

/// Builds like `simgrad_build` but only writes the path of the built library, NUL-terminated,
/// into `buf` (`buf_len` bytes). `*needed` (when `needed` is not NULL) receives the size the path
/// needs, NUL included, on success and, as the one exception to "outputs are written only on
/// success", on `SIMGRAD_ERR_BUFFER_TOO_SMALL`, when nothing is written to `buf`. `buf` may be
/// NULL when `buf_len` is 0, to ask for the size; the second call then finds the build in the
/// cache.
#[no_mangle]
pub unsafe extern "C" fn simgrad_build_path(
    spec_path: *const c_char,
    options: *const simgrad_build_options,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> simgrad_status {
    ffi_boundary!("simgrad_build_path", status {
        if buf.is_null() && buf_len > 0 {
            return Err(Failure::null(format!("`buf` is NULL but buf_len is {buf_len}")));
        }
        let path = build(spec_path, options)?;
        let bytes = path_bytes(&path)?;
        let size = bytes.len() + 1;
        if !needed.is_null() {
            needed.write(size);
        }
        if size > buf_len {
            return Err(Failure::new(
                simgrad_status::SIMGRAD_ERR_BUFFER_TOO_SMALL,
                format!(
                    "the library path `{}` needs {size} bytes with its NUL, `buf_len` is {buf_len}",
                    path.display()
                ),
            ));
        }
        // SAFETY: `buf` is non-NULL (buf_len >= size > 0) and holds `buf_len >= size` bytes.
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), buf, bytes.len());
        buf.add(bytes.len()).write(0);
        Ok(())
    })
}

/// The bytes of a path as C sees them; a path holding a NUL cannot be returned.
fn path_bytes(path: &Path) -> FfiResult<Vec<u8>> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    if bytes.contains(&0) {
        return Err(Failure::new(
            simgrad_status::SIMGRAD_ERR_IO,
            format!("the library path `{}` contains a NUL byte", path.display()),
        ));
    }
    Ok(bytes)
}
