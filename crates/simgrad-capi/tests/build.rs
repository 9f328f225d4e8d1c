//! `simgrad_build` and `simgrad_build_path` through the real pipeline (clang-19, Enzyme), with a
//! spec written by the test.
//!
//! Without a usable Enzyme toolchain the tests check that the build fails with
//! `SIMGRAD_ERR_TOOLCHAIN` and a message naming the problem, unless `SIMGRAD_REQUIRE_ENZYME=1`
//! (set by `cargo xtask ci`), which makes a missing toolchain a failure.

mod common;

use common::*;
use simgrad::simgrad_status::*;
use simgrad::*;
use simgrad_build::toolchain::{enzyme_required, Toolchain};
use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::ptr;

const SPEC: &str = r#"
[build]
name = "capi_square"

[[kernel]]
symbol = "square"
sources = ["square.c"]
args = [
  { name = "n", kind = "size" },
  { name = "x", dtype = "f64", shape = ["n"] },
  { name = "y", dtype = "f64", shape = ["n"], intent = "out" },
]
"#;

const SOURCE: &str = r#"
#include <stdint.h>
void square(int64_t n, const double *x, double *y) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i];
}
"#;

/// Writes the spec (with `source` as `square.c`) into a fresh directory.
fn project(source: &str) -> (tempfile::TempDir, CString) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("simgrad.toml"), SPEC).unwrap();
    std::fs::write(dir.path().join("square.c"), source).unwrap();
    let spec = c_path(&dir.path().join("simgrad.toml"));
    (dir, spec)
}

fn options(cache: &CString, flags: u32) -> simgrad_build_options {
    simgrad_build_options {
        struct_size: std::mem::size_of::<simgrad_build_options>() as u32,
        out_dir: ptr::null(),
        cache_dir: cache.as_ptr(),
        pipeline: ptr::null(),
        flags,
    }
}

/// Whether the toolchain is usable; when it is not, checks the C API reports exactly that.
fn toolchain_or_checked_error(spec: &CString, opts: &simgrad_build_options) -> bool {
    let Err(e) = Toolchain::discover() else {
        return true;
    };
    if enzyme_required() {
        panic!("SIMGRAD_REQUIRE_ENZYME is set but the toolchain is unusable: {e}");
    }
    eprintln!("no Enzyme toolchain ({e}); checking that simgrad_build reports it");
    let mut lib = ptr::null_mut();
    let status = unsafe { simgrad_build(spec.as_ptr(), opts, &mut lib) };
    assert_eq!(status, SIMGRAD_ERR_TOOLCHAIN, "{}", last_error());
    assert!(
        last_error().starts_with("simgrad_build: "),
        "{}",
        last_error()
    );
    assert!(lib.is_null());
    false
}

#[test]
fn builds_opens_and_calls_a_spec() {
    let (dir, spec) = project(SOURCE);
    let cache = c_path(&dir.path().join("cache"));
    let opts = options(&cache, SIMGRAD_BUILD_QUIET);
    if !toolchain_or_checked_error(&spec, &opts) {
        return;
    }

    // Ask for the size first, then build into a buffer of exactly that size.
    let mut needed = 0usize;
    let status =
        unsafe { simgrad_build_path(spec.as_ptr(), &opts, ptr::null_mut(), 0, &mut needed) };
    assert_eq!(status, SIMGRAD_ERR_BUFFER_TOO_SMALL, "{}", last_error());
    assert!(
        last_error().contains("bytes with its NUL"),
        "{}",
        last_error()
    );
    assert!(needed > 1);
    let mut buf = vec![1 as c_char; needed];
    let mut again = 0usize;
    ok(unsafe {
        simgrad_build_path(
            spec.as_ptr(),
            &opts,
            buf.as_mut_ptr(),
            buf.len(),
            &mut again,
        )
    });
    assert_eq!(again, needed);
    let path = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(path.len() + 1, needed);
    assert!(
        Path::new(&path).starts_with(dir.path().join("cache")),
        "{path}"
    );

    let mut lib = ptr::null_mut();
    ok(unsafe { simgrad_build(spec.as_ptr(), &opts, &mut lib) });
    let k = kernel(lib, "square");
    let mut n = 3i64;
    let (mut x, mut y) = ([1.0, 2.0, 3.0], [0.0; 3]);
    let (mut gy, mut gx) = ([1.0; 3], [0.0; 3]);
    let mut shapes = [[3i64]; 4];
    let [s1, s2, s3, s4] = &mut shapes;
    unsafe {
        let args = [val(&mut n), arr(&mut x, s1), arr(&mut y, s2)];
        ok(simgrad_kernel_call(k, args.as_ptr(), 3));
        assert_eq!(y, [1.0, 4.0, 9.0]);
        let cin = [absent(), absent(), arr(&mut gy, s3)];
        let cout = [absent(), arr(&mut gx, s4), absent()];
        ok(simgrad_kernel_vjp(
            k,
            args.as_ptr(),
            3,
            cin.as_ptr(),
            cout.as_ptr(),
            0,
        ));
        assert_eq!(gx, [2.0, 4.0, 6.0]);
        simgrad_kernel_free(k);
        simgrad_library_free(lib);
    }
}

#[test]
fn a_source_that_does_not_compile_is_a_build_error() {
    let (dir, spec) =
        project("void square(long n, const double *x, double *y) { this is not C }\n");
    let cache = c_path(&dir.path().join("cache"));
    let opts = options(&cache, SIMGRAD_BUILD_QUIET);
    if !toolchain_or_checked_error(&spec, &opts) {
        return;
    }
    let mut lib = ptr::null_mut();
    let status = unsafe { simgrad_build(spec.as_ptr(), &opts, &mut lib) };
    assert_eq!(status, SIMGRAD_ERR_BUILD, "{}", last_error());
    let e = last_error();
    assert!(
        e.starts_with("simgrad_build: ") && e.contains("square.c"),
        "{e}"
    );
    assert!(lib.is_null());
}

#[test]
fn options_reach_the_builder() {
    let (dir, spec) = project(SOURCE);
    let cache = c_path(&dir.path().join("cache"));
    let out_dir = c_path(&dir.path().join("out"));
    let opts = simgrad_build_options {
        out_dir: out_dir.as_ptr(),
        ..options(
            &cache,
            SIMGRAD_BUILD_QUIET | SIMGRAD_BUILD_VERIFY | SIMGRAD_BUILD_FORCE,
        )
    };
    if !toolchain_or_checked_error(&spec, &opts) {
        return;
    }
    let mut buf = vec![0 as c_char; 4096];
    ok(unsafe {
        simgrad_build_path(
            spec.as_ptr(),
            &opts,
            buf.as_mut_ptr(),
            buf.len(),
            ptr::null_mut(),
        )
    });
    let path = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        Path::new(&path).starts_with(dir.path().join("out")),
        "{path}"
    );

    let pipeline = CString::new("no-such-pipeline").unwrap();
    let opts = simgrad_build_options {
        pipeline: pipeline.as_ptr(),
        ..opts
    };
    let mut lib = ptr::null_mut();
    let status = unsafe { simgrad_build(spec.as_ptr(), &opts, &mut lib) };
    assert_eq!(status, SIMGRAD_ERR_SPEC, "{}", last_error());
    assert!(
        last_error().contains("unknown pipeline `no-such-pipeline`"),
        "{}",
        last_error()
    );
}
