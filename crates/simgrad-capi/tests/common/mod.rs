//! Shared helpers of the integration tests: a hand-written kernel library compiled with the
//! system C compiler (no simgrad-build involved), descriptors, and status assertions.
//!
//! The fixture library implements three kernels with the uniform trampoline signature of
//! `docs/calling-convention.md`, following Enzyme's shadow conventions as generated libraries do:
//!
//! * `scale(n: size i64, x: f64[n] in, y: f64[n] out)`: `y = 2 x`; primal, jvp, vjp.
//! * `scal(n: size i64, a: f64 scalar, x: f64[n] in, y: f64[n] out)`: `y = a x`; primal, jvp, vjp.
//! * `fails(x: f64[2] in)`: primal only, returns status 7.
//!
//! Variants of the same library exercise the loader's errors: no manifest symbol, a manifest that
//! is not JSON, one that is NULL, `abi_version` 2, and a manifest naming a missing symbol.

#![allow(dead_code)]

use simgrad::*;
use simgrad_core::Element;
use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SOURCE: &str = r#"
#include <stddef.h>
#include <stdint.h>

int32_t simgrad_k_scale_primal(void *const *args, const int64_t *sizes, void *const *shadows) {
    (void)shadows;
    const double *x = args[0];
    double *y = args[1];
    for (int64_t i = 0; i < sizes[0]; i++) y[i] = 2.0 * x[i];
    return 0;
}

int32_t simgrad_k_scale_jvp(void *const *args, const int64_t *sizes, void *const *shadows) {
    const double *x = args[0], *dx = shadows[0];
    double *y = args[1], *dy = shadows[1];
    for (int64_t i = 0; i < sizes[0]; i++) { y[i] = 2.0 * x[i]; dy[i] = 2.0 * dx[i]; }
    return 0;
}

/* Reverse mode with Enzyme's conventions: add into input shadows, zero output shadows. */
int32_t simgrad_k_scale_vjp(void *const *args, const int64_t *sizes, void *const *shadows) {
    (void)args;
    double *dx = shadows[0], *dy = shadows[1];
    for (int64_t i = 0; i < sizes[0]; i++) { dx[i] += 2.0 * dy[i]; dy[i] = 0.0; }
    return 0;
}

int32_t simgrad_k_scal_primal(void *const *args, const int64_t *sizes, void *const *shadows) {
    (void)shadows;
    double a = *(const double *)args[0];
    const double *x = args[1];
    double *y = args[2];
    for (int64_t i = 0; i < sizes[0]; i++) y[i] = a * x[i];
    return 0;
}

int32_t simgrad_k_scal_jvp(void *const *args, const int64_t *sizes, void *const *shadows) {
    double a = *(const double *)args[0], da = *(const double *)shadows[0];
    const double *x = args[1], *dx = shadows[1];
    double *y = args[2], *dy = shadows[2];
    for (int64_t i = 0; i < sizes[0]; i++) { y[i] = a * x[i]; dy[i] = da * x[i] + a * dx[i]; }
    return 0;
}

int32_t simgrad_k_scal_vjp(void *const *args, const int64_t *sizes, void *const *shadows) {
    double a = *(const double *)args[0], *da = shadows[0];
    const double *x = args[1];
    double *dx = shadows[1], *dy = shadows[2];
    for (int64_t i = 0; i < sizes[0]; i++) { *da += dy[i] * x[i]; dx[i] += a * dy[i]; dy[i] = 0.0; }
    return 0;
}

int32_t simgrad_k_fails_primal(void *const *args, const int64_t *sizes, void *const *shadows) {
    (void)args; (void)sizes; (void)shadows;
    return 7;
}

#ifndef NO_MANIFEST
const char *simgrad_manifest(void) { return MANIFEST; }
#endif
"#;

fn size_arg(name: &str) -> String {
    format!(
        r#"{{"name": "{name}", "kind": "size", "dtype": "i64", "intent": "in", "differentiable": false}}"#
    )
}

fn array_arg(name: &str, shape: &str, intent: &str) -> String {
    format!(
        r#"{{"name": "{name}", "kind": "array", "dtype": "f64", "shape": {shape}, "intent": "{intent}", "differentiable": true}}"#
    )
}

fn modes(kernel: &str, modes: &[&str]) -> String {
    let m: Vec<String> = modes
        .iter()
        .map(|m| format!(r#""{m}": {{"symbol": "simgrad_k_{kernel}_{m}"}}"#))
        .collect();
    format!("{{{}}}", m.join(", "))
}

/// The fixture's manifest with the given `abi_version`; `ghost` adds a kernel whose symbol the
/// library lacks.
pub fn manifest(abi_version: u32, ghost: bool) -> String {
    let mut kernels = vec![
        format!(
            r#"{{"name": "scale", "symbol": "scale", "language": "c", "order": "C", "args": [{}, {}, {}], "modes": {}}}"#,
            size_arg("n"),
            array_arg("x", r#"["n"]"#, "in"),
            array_arg("y", r#"["n"]"#, "out"),
            modes("scale", &["primal", "jvp", "vjp"])
        ),
        format!(
            r#"{{"name": "scal", "symbol": "scal", "language": "c", "order": "C", "args": [{}, {}, {}, {}], "modes": {}}}"#,
            size_arg("n"),
            r#"{"name": "a", "kind": "scalar", "dtype": "f64", "intent": "in", "differentiable": true}"#,
            array_arg("x", r#"["n"]"#, "in"),
            array_arg("y", r#"["n"]"#, "out"),
            modes("scal", &["primal", "jvp", "vjp"])
        ),
        format!(
            r#"{{"name": "fails", "symbol": "fails", "language": "c", "order": "C", "args": [{}], "modes": {}}}"#,
            array_arg("x", "[2]", "in"),
            modes("fails", &["primal"])
        ),
    ];
    if ghost {
        kernels.push(format!(
            r#"{{"name": "ghost", "symbol": "ghost", "order": "C", "args": [], "modes": {}}}"#,
            modes("ghost", &["primal"])
        ));
    }
    format!(
        r#"{{"manifest_version": 1, "abi_version": {abi_version}, "generator": "simgrad-capi test fixture", "kernels": [{}]}}"#,
        kernels.join(", ")
    )
}

fn c_string_literal(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Paths of the compiled fixture libraries and manifest files.
pub struct Fixture {
    /// The working library with its embedded manifest.
    pub good: PathBuf,
    /// No `simgrad_manifest` symbol (for external manifests).
    pub no_manifest: PathBuf,
    /// `simgrad_manifest` returns text that is not JSON.
    pub corrupt: PathBuf,
    /// `simgrad_manifest` returns NULL.
    pub null_manifest: PathBuf,
    /// The manifest says `abi_version: 2`.
    pub abi2: PathBuf,
    /// The manifest lists `simgrad_k_ghost_primal`, which the library does not export.
    pub missing_symbol: PathBuf,
    /// The good manifest as a file.
    pub manifest_file: PathBuf,
    /// A manifest file that is not JSON.
    pub corrupt_manifest_file: PathBuf,
    /// A file that is not a shared library.
    pub not_a_library: PathBuf,
    /// The directory holding all of them.
    pub dir: PathBuf,
}

/// The first of `names` that runs (`--version`), for tests that need a C or C++ compiler.
pub fn find_tool(names: &[&str]) -> String {
    for n in names {
        if Command::new(n)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return n.to_string();
        }
    }
    panic!("none of {names:?} is installed; the tests need a C compiler (apt install clang-19)")
}

/// The C compiler used for fixtures and header checks.
pub fn c_compiler() -> String {
    find_tool(&["clang-19", "clang", "cc"])
}

fn compile(dir: &Path, name: &str, defines: &[String]) -> PathBuf {
    let src = dir.join("fixture.c");
    let out = dir.join(format!("lib{name}.so"));
    let tmp = dir.join(format!("lib{name}.so.tmp"));
    let o = Command::new(c_compiler())
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
        .arg(&tmp)
        .arg(&src)
        .args(defines)
        .output()
        .expect("run the C compiler");
    assert!(
        o.status.success(),
        "compiling the fixture `{name}` failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// The fixture libraries, compiled once per test binary.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // One directory per test binary, so concurrently running test binaries never overwrite
        // a library another one has loaded.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("simgrad-capi-{}", env!("CARGO_CRATE_NAME")));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("fixture.c"), SOURCE).unwrap();
        let def = |text: &str| format!("-DMANIFEST={}", text);
        let lit = |abi, ghost| def(&c_string_literal(&manifest(abi, ghost)));
        let manifest_file = dir.join("fixture.json");
        std::fs::write(&manifest_file, manifest(1, false)).unwrap();
        let corrupt_manifest_file = dir.join("corrupt.json");
        std::fs::write(&corrupt_manifest_file, "{\"manifest_version\": 1,").unwrap();
        let not_a_library = dir.join("not-a-library.so");
        std::fs::write(&not_a_library, "this is text").unwrap();
        Fixture {
            good: compile(&dir, "good", &[lit(1, false)]),
            no_manifest: compile(&dir, "no_manifest", &["-DNO_MANIFEST".into()]),
            corrupt: compile(
                &dir,
                "corrupt",
                &[def(&c_string_literal("{ this is not json"))],
            ),
            null_manifest: compile(&dir, "null_manifest", &[def("((const char *)0)")]),
            abi2: compile(&dir, "abi2", &[lit(2, false)]),
            missing_symbol: compile(&dir, "missing_symbol", &[lit(1, true)]),
            manifest_file,
            corrupt_manifest_file,
            not_a_library,
            dir,
        }
    })
}

/// `p` as a C string.
pub fn c_path(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

/// This thread's last error message.
pub fn last_error() -> String {
    // SAFETY: never NULL, NUL-terminated.
    unsafe { CStr::from_ptr(simgrad_last_error_message()) }
        .to_str()
        .unwrap()
        .to_string()
}

/// Asserts that `status` is OK, showing the last error otherwise.
#[track_caller]
pub fn ok(status: simgrad_status) {
    assert_eq!(status, simgrad_status::SIMGRAD_OK, "{}", last_error());
}

/// Opens a library, asserting success.
pub fn open(path: &Path) -> *mut simgrad_library {
    let mut lib = std::ptr::null_mut();
    // SAFETY: valid C string and output pointer.
    ok(unsafe { simgrad_library_open(c_path(path).as_ptr(), &mut lib) });
    assert!(!lib.is_null());
    lib
}

/// Looks a kernel up, asserting success.
pub fn kernel(lib: *const simgrad_library, name: &str) -> *mut simgrad_kernel {
    let mut k = std::ptr::null_mut();
    let name = CString::new(name).unwrap();
    // SAFETY: valid handle, C string and output pointer.
    ok(unsafe { simgrad_library_kernel(lib, name.as_ptr(), &mut k) });
    assert!(!k.is_null());
    k
}

/// A descriptor of a contiguous host array. `shape` must outlive the descriptor's use.
pub fn arr<T: Element>(data: &mut [T], shape: &mut [i64]) -> simgrad_tensor {
    simgrad_tensor {
        data: data.as_mut_ptr().cast::<c_void>(),
        device: simgrad_device {
            device_type: SIMGRAD_DEVICE_CPU,
            device_id: 0,
        },
        ndim: shape.len() as i32,
        dtype: T::DTYPE.into(),
        shape: if shape.is_empty() {
            std::ptr::null_mut()
        } else {
            shape.as_mut_ptr()
        },
        strides: std::ptr::null_mut(),
        byte_offset: 0,
    }
}

/// A rank-0 descriptor of a scalar or size.
pub fn val<T: Element>(value: &mut T) -> simgrad_tensor {
    arr(std::slice::from_mut(value), &mut [])
}

/// An absent tangent or cotangent.
pub fn absent() -> simgrad_tensor {
    simgrad_tensor {
        data: std::ptr::null_mut(),
        ..val(&mut 0.0f64)
    }
}
