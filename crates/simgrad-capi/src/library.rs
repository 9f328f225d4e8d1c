//! `simgrad_library`: opening kernel libraries, reading their manifest, looking kernels up.

use crate::error::{Failure, FfiResult};
use crate::ffi::{path_arg, str_arg, BoxHandle, Out};
use crate::kernel::simgrad_kernel;
use crate::status::simgrad_status;
use simgrad_core::Library;
use std::ffi::{c_char, CString};
use std::path::Path;
use std::sync::Arc;

/// An open kernel library (opaque). Create it with `simgrad_library_open`,
/// `simgrad_library_open_with_manifest` or `simgrad_build`; free it with `simgrad_library_free`.
/// Kernel handles obtained from it keep the library loaded, so it may be freed before them.
/// Thread-safe: every function taking a `const simgrad_library *` may be called concurrently.
pub struct simgrad_library {
    pub(crate) state: Arc<LibraryState>,
}

impl BoxHandle for simgrad_library {
    const NAME: &'static str = "simgrad_library";
}

/// A loaded library and the C strings handed out about it, which live as long as the library.
pub(crate) struct LibraryState {
    pub lib: Library,
    path: CString,
    manifest: CString,
    pub kernels: Vec<KernelStrings>,
}

/// The C strings of one kernel: its name and the name of each argument.
pub(crate) struct KernelStrings {
    pub name: CString,
    pub args: Vec<CString>,
}

/// A C string for a Rust string that came from the manifest or the file system. Those never hold
/// a NUL (JSON strings read by the runtime cannot, and paths come from C strings), but if one
/// did, it is shown escaped rather than truncated.
fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

#[cfg(unix)]
fn path_c_string(p: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| c_string(&p.to_string_lossy()))
}

#[cfg(not(unix))]
fn path_c_string(p: &Path) -> CString {
    c_string(&p.to_string_lossy())
}

impl simgrad_library {
    /// Wraps an open runtime library, preparing every string the C API hands out.
    pub(crate) fn new(lib: Library) -> simgrad_library {
        let kernels = lib
            .kernels()
            .iter()
            .map(|k| KernelStrings {
                name: c_string(k.name()),
                args: k.desc().args.iter().map(|a| c_string(&a.name)).collect(),
            })
            .collect();
        simgrad_library {
            state: Arc::new(LibraryState {
                path: path_c_string(lib.path()),
                manifest: c_string(lib.manifest_json()),
                kernels,
                lib,
            }),
        }
    }
}

fn kernel_index(state: &LibraryState, index: usize) -> FfiResult<usize> {
    let n = state.kernels.len();
    if index < n {
        Ok(index)
    } else {
        Err(Failure::not_found(format!(
            "kernel index {index} is out of range; the library has {n} kernel{}",
            if n == 1 { "" } else { "s" }
        )))
    }
}

/// Opens the kernel library at `path` (a shared library built by simgrad) and reads the manifest
/// it embeds. On success `*out` receives a new handle to free with `simgrad_library_free`.
/// Fails with `SIMGRAD_ERR_LIBRARY` when the file cannot be loaded or a listed symbol is missing,
/// `SIMGRAD_ERR_MANIFEST` when the manifest is absent or invalid, `SIMGRAD_ERR_ABI_MISMATCH` when
/// the library was built for another runtime.
#[no_mangle]
pub unsafe extern "C" fn simgrad_library_open(
    path: *const c_char,
    out: *mut *mut simgrad_library,
) -> simgrad_status {
    ffi_boundary!("simgrad_library_open", status {
        let path = path_arg(path, "path")?;
        let out = Out::new(out, "out")?;
        let lib = Library::open(&path)?;
        out.write(simgrad_library::new(lib).into_raw());
        Ok(())
    })
}

/// Opens the shared library at `path`, built without simgrad (by hand with Enzyme, another AD
/// tool, hand-written derivatives), whose entry points are described by the JSON manifest file
/// `manifest_path`. The entry points must use simgrad's uniform trampoline signature
/// (`docs/calling-convention.md`). On success `*out` receives a new handle.
#[no_mangle]
pub unsafe extern "C" fn simgrad_library_open_with_manifest(
    path: *const c_char,
    manifest_path: *const c_char,
    out: *mut *mut simgrad_library,
) -> simgrad_status {
    ffi_boundary!("simgrad_library_open_with_manifest", status {
        let path = path_arg(path, "path")?;
        let manifest_path = path_arg(manifest_path, "manifest_path")?;
        let out = Out::new(out, "out")?;
        let lib = Library::open_with_manifest(&path, &manifest_path)?;
        out.write(simgrad_library::new(lib).into_raw());
        Ok(())
    })
}

/// Frees a library handle. Kernel handles obtained from it stay valid (they keep the code
/// loaded); strings obtained from the library handle itself become invalid. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn simgrad_library_free(lib: *mut simgrad_library) {
    ffi_boundary!("simgrad_library_free", value {
        simgrad_library::free(lib)
    })
}

/// Sets `*out_json` to the library's manifest, the JSON document exactly as the library (or the
/// manifest file) stores it. The string is owned by the library and valid while it lives.
#[no_mangle]
pub unsafe extern "C" fn simgrad_library_manifest(
    lib: *const simgrad_library,
    out_json: *mut *const c_char,
) -> simgrad_status {
    ffi_boundary!("simgrad_library_manifest", status {
        let lib = simgrad_library::borrow(lib, "lib")?;
        let out = Out::new(out_json, "out_json")?;
        out.write(lib.state.manifest.as_ptr());
        Ok(())
    })
}

/// Sets `*out` to the path the library was opened from. The string is owned by the library and
/// valid while it lives.
#[no_mangle]
pub unsafe extern "C" fn simgrad_library_path(
    lib: *const simgrad_library,
    out: *mut *const c_char,
) -> simgrad_status {
    ffi_boundary!("simgrad_library_path", status {
        let lib = simgrad_library::borrow(lib, "lib")?;
        let out = Out::new(out, "out")?;
        out.write(lib.state.path.as_ptr());
        Ok(())
    })
}

/// Sets `*out` to the number of kernels in the library.
#[no_mangle]
pub unsafe extern "C" fn simgrad_library_kernel_count(
    lib: *const simgrad_library,
    out: *mut usize,
) -> simgrad_status {
    ffi_boundary!("simgrad_library_kernel_count", status {
        let lib = simgrad_library::borrow(lib, "lib")?;
        let out = Out::new(out, "out")?;
        out.write(lib.state.kernels.len());
        Ok(())
    })
}

/// Sets `*out` to the name of kernel number `index` (in manifest order, from 0). The string is
/// owned by the library and valid while it lives. An index past the end is
/// `SIMGRAD_ERR_NOT_FOUND`.
#[no_mangle]
pub unsafe extern "C" fn simgrad_library_kernel_name(
    lib: *const simgrad_library,
    index: usize,
    out: *mut *const c_char,
) -> simgrad_status {
    ffi_boundary!("simgrad_library_kernel_name", status {
        let lib = simgrad_library::borrow(lib, "lib")?;
        let out = Out::new(out, "out")?;
        let i = kernel_index(&lib.state, index)?;
        out.write(lib.state.kernels[i].name.as_ptr());
        Ok(())
    })
}

/// Looks up the kernel named `name`. On success `*out` receives a new kernel handle to free with
/// `simgrad_kernel_free`; it keeps the library loaded. An unknown name is
/// `SIMGRAD_ERR_NOT_FOUND`, and the message lists the kernels the library has.
#[no_mangle]
pub unsafe extern "C" fn simgrad_library_kernel(
    lib: *const simgrad_library,
    name: *const c_char,
    out: *mut *mut simgrad_kernel,
) -> simgrad_status {
    ffi_boundary!("simgrad_library_kernel", status {
        let lib = simgrad_library::borrow(lib, "lib")?;
        let name = str_arg(name, "name")?;
        let out = Out::new(out, "out")?;
        let kernel = lib.state.lib.kernel(name)?;
        let kernels = lib.state.lib.kernels();
        let index = kernels
            .iter()
            .position(|k| std::ptr::eq(k, kernel))
            .expect("a kernel found by name is one of the library's kernels");
        out.write(simgrad_kernel::new(Arc::clone(&lib.state), index).into_raw());
        Ok(())
    })
}
