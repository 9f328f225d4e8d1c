//! The exports called directly on every path that needs no kernel library and no file: NULL
//! handles and outputs, invalid strings and options, status names, versions, the per-thread last
//! error and the panic boundary.
//!
//! Nothing here opens a library, spawns a process or touches the file system, so the whole file
//! also runs under Miri (`cargo xtask miri`), which checks each raw-pointer access of these paths
//! for undefined behaviour. The descriptor conversion behind the kernel calls is covered under
//! Miri by the unit tests in `src/tensor.rs` and `src/ffi.rs`.

use simgrad::simgrad_status::*;
use simgrad::*;
use std::ffi::{c_char, CStr};
use std::ptr;

fn text(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: simgrad returns NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
}

fn last_error() -> String {
    text(simgrad_last_error_message())
}

/// Asserts `status` is `want` and the last error starts with `func: ` and contains `needle`.
#[track_caller]
fn expect(status: simgrad_status, want: simgrad_status, func: &str, needle: &str) {
    let e = last_error();
    assert_eq!(status, want, "{e}");
    assert!(
        e.starts_with(&format!("{func}: ")) && e.contains(needle),
        "{func}: {e:?} lacks {needle:?}"
    );
}

/// A non-NULL address that simgrad must never write to or read through.
fn sentinel<T>() -> *mut T {
    ptr::NonNull::dangling().as_ptr()
}

#[test]
fn versions_and_status_names() {
    assert_eq!(text(simgrad_version()), env!("CARGO_PKG_VERSION"));
    assert_eq!(simgrad_abi_version(), SIMGRAD_ABI_VERSION);
    for (code, name) in [
        (0, "SIMGRAD_OK"),
        (1, "SIMGRAD_ERR_NULL_ARGUMENT"),
        (6, "SIMGRAD_ERR_ALIAS"),
        (17, "SIMGRAD_ERR_PANIC"),
        (18, "SIMGRAD_ERR_BUFFER_TOO_SMALL"),
        (19, "SIMGRAD_UNKNOWN_STATUS"),
        (u32::MAX, "SIMGRAD_UNKNOWN_STATUS"),
    ] {
        assert_eq!(text(simgrad_status_name(code)), name);
    }
}

#[test]
fn the_last_error_is_per_thread_and_cleared_by_the_next_status_call() {
    assert_eq!(last_error(), "");
    let status = unsafe { simgrad_kernel_arg_count(ptr::null(), sentinel()) };
    expect(
        status,
        SIMGRAD_ERR_NULL_ARGUMENT,
        "simgrad_kernel_arg_count",
        "`kernel` is NULL",
    );
    std::thread::spawn(|| assert_eq!(last_error(), ""))
        .join()
        .unwrap();
    // Value-returning functions leave it alone.
    simgrad_status_name(3);
    unsafe { simgrad_kernel_free(ptr::null_mut()) };
    assert!(last_error().contains("`kernel` is NULL"));
    // The next status-returning call clears it, even when it fails differently.
    let status = unsafe { simgrad_library_kernel_count(ptr::null(), sentinel()) };
    expect(
        status,
        SIMGRAD_ERR_NULL_ARGUMENT,
        "simgrad_library_kernel_count",
        "`lib` is NULL",
    );
    assert!(!last_error().contains("kernel_arg_count"));
}

#[test]
fn a_panic_becomes_a_status_and_the_next_call_clears_it() {
    expect(
        simgrad__test_panic(),
        SIMGRAD_ERR_PANIC,
        "simgrad__test_panic",
        "internal panic (a bug in simgrad, please report it): simgrad__test_panic was called",
    );
    // Again: the boundary holds no state that a first panic could poison.
    assert_eq!(simgrad__test_panic(), SIMGRAD_ERR_PANIC);
    let mut n = 7usize;
    let status = unsafe { simgrad_library_kernel_count(ptr::null(), &mut n) };
    assert_eq!(status, SIMGRAD_ERR_NULL_ARGUMENT);
    assert_eq!(n, 7);
    assert!(!last_error().contains("panic"));
}

#[test]
fn every_handle_function_rejects_null_handles_and_outputs() {
    let mut s: *const c_char = sentinel();
    let mut n = 7usize;
    let mut u = 7u32;
    let mut info = std::mem::MaybeUninit::<simgrad_arg_info>::uninit();
    let mut lib: *mut simgrad_library = sentinel();
    let mut k: *mut simgrad_kernel = sentinel();
    let name = c"scale".as_ptr();
    let (nl, nk) = (
        ptr::null::<simgrad_library>(),
        ptr::null::<simgrad_kernel>(),
    );
    let lib_cases: [(&str, simgrad_status); 10] = unsafe {
        [
            (
                "simgrad_library_manifest",
                simgrad_library_manifest(nl, &mut s),
            ),
            ("simgrad_library_path", simgrad_library_path(nl, &mut s)),
            (
                "simgrad_library_kernel_count",
                simgrad_library_kernel_count(nl, &mut n),
            ),
            (
                "simgrad_library_kernel_name",
                simgrad_library_kernel_name(nl, 0, &mut s),
            ),
            (
                "simgrad_library_kernel",
                simgrad_library_kernel(nl, name, &mut k),
            ),
            ("simgrad_kernel_name", simgrad_kernel_name(nk, &mut s)),
            (
                "simgrad_kernel_arg_count",
                simgrad_kernel_arg_count(nk, &mut n),
            ),
            (
                "simgrad_kernel_arg_info",
                simgrad_kernel_arg_info(nk, 0, info.as_mut_ptr()),
            ),
            (
                "simgrad_kernel_has_mode",
                simgrad_kernel_has_mode(nk, 0, &mut u),
            ),
            (
                "simgrad_kernel_memory_order",
                simgrad_kernel_memory_order(nk, &mut u),
            ),
        ]
    };
    // Each status was taken before the next call cleared the message, so only check codes here
    // and messages below.
    for (func, status) in lib_cases {
        assert_eq!(status, SIMGRAD_ERR_NULL_ARGUMENT, "{func}");
    }
    let t: *const simgrad_tensor = sentinel();
    unsafe {
        expect(
            simgrad_kernel_call(nk, t, 3),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_kernel_call",
            "`kernel` is NULL; pass a simgrad_kernel handle",
        );
        expect(
            simgrad_kernel_jvp(nk, t, 3, t, t),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_kernel_jvp",
            "`kernel` is NULL",
        );
        expect(
            simgrad_kernel_vjp(nk, t, 3, t, t, 0),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_kernel_vjp",
            "`kernel` is NULL",
        );
        expect(
            simgrad_library_kernel(nl, ptr::null(), ptr::null_mut()),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_library_kernel",
            "`lib` is NULL; pass a simgrad_library handle",
        );
        expect(
            simgrad_library_open(ptr::null(), &mut lib),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_library_open",
            "`path` is NULL",
        );
        expect(
            simgrad_library_open(c"/x.so".as_ptr(), ptr::null_mut()),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_library_open",
            "output `out` is NULL",
        );
        expect(
            simgrad_library_open(c"".as_ptr(), &mut lib),
            SIMGRAD_ERR_INVALID_ARGUMENT,
            "simgrad_library_open",
            "`path` is an empty path",
        );
        expect(
            simgrad_library_open_with_manifest(c"/x.so".as_ptr(), ptr::null(), &mut lib),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_library_open_with_manifest",
            "`manifest_path` is NULL",
        );
        expect(
            simgrad_library_open_with_manifest(
                c"/x.so".as_ptr(),
                c"/m.json".as_ptr(),
                ptr::null_mut(),
            ),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_library_open_with_manifest",
            "output `out` is NULL",
        );
    }
    let untouched: *const c_char = sentinel();
    assert_eq!(
        (s, n, u),
        (untouched, 7, 7),
        "outputs are written only on success"
    );
    assert_eq!((lib, k), (sentinel(), sentinel()));
    unsafe {
        simgrad_library_free(ptr::null_mut());
        simgrad_kernel_free(ptr::null_mut());
    }
}

fn options(flags: u32) -> simgrad_build_options {
    simgrad_build_options {
        struct_size: std::mem::size_of::<simgrad_build_options>() as u32,
        out_dir: ptr::null(),
        cache_dir: ptr::null(),
        pipeline: ptr::null(),
        flags,
    }
}

#[test]
fn build_arguments_are_checked_before_anything_is_read() {
    let spec = c"/nonexistent/simgrad.toml".as_ptr();
    let mut lib: *mut simgrad_library = sentinel();
    let mut needed = 7usize;
    unsafe {
        expect(
            simgrad_build(ptr::null(), &options(0), &mut lib),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_build",
            "`spec_path` is NULL",
        );
        expect(
            simgrad_build(spec, &options(0), ptr::null_mut()),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_build",
            "output `out` is NULL",
        );
        expect(
            simgrad_build(c"".as_ptr(), &options(0), &mut lib),
            SIMGRAD_ERR_INVALID_ARGUMENT,
            "simgrad_build",
            "`spec_path` is an empty path",
        );
        let small = simgrad_build_options {
            struct_size: 8,
            ..options(0)
        };
        expect(
            simgrad_build(spec, &small, &mut lib),
            SIMGRAD_ERR_INVALID_ARGUMENT,
            "simgrad_build",
            "`options->struct_size` is 8",
        );
        expect(
            simgrad_build(spec, &options(1 << 31), &mut lib),
            SIMGRAD_ERR_INVALID_ARGUMENT,
            "simgrad_build",
            "unknown bits in `options->flags` (0x80000000)",
        );
        let bad = [0xffu8, 0];
        let pipeline = simgrad_build_options {
            pipeline: bad.as_ptr().cast(),
            ..options(0)
        };
        expect(
            simgrad_build(spec, &pipeline, &mut lib),
            SIMGRAD_ERR_INVALID_ARGUMENT,
            "simgrad_build",
            "`options->pipeline` is not valid UTF-8",
        );
        let cache = simgrad_build_options {
            cache_dir: c"".as_ptr(),
            ..options(0)
        };
        expect(
            simgrad_build(spec, &cache, &mut lib),
            SIMGRAD_ERR_INVALID_ARGUMENT,
            "simgrad_build",
            "`options->cache_dir` is an empty path",
        );
        expect(
            simgrad_build_path(spec, &options(0), ptr::null_mut(), 16, &mut needed),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_build_path",
            "`buf` is NULL but buf_len is 16",
        );
        let mut buf = [1 as c_char; 4];
        expect(
            simgrad_build_path(ptr::null(), &options(0), buf.as_mut_ptr(), 4, &mut needed),
            SIMGRAD_ERR_NULL_ARGUMENT,
            "simgrad_build_path",
            "`spec_path` is NULL",
        );
        assert_eq!(buf, [1; 4]);
    }
    assert_eq!((lib, needed), (sentinel(), 7));
}
