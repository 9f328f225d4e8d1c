//! Every export fed bad input: NULL handles and pointers, wrong dtypes, ranks and shapes,
//! inconsistent sizes, aliased outputs, unknown kernels and modes, and libraries that are missing,
//! lack a manifest, carry a corrupt one or were built for another ABI. Each case checks the status
//! and that the last error message names the function and the problem.

mod common;

use common::*;
use simgrad::simgrad_status::*;
use simgrad::*;
use std::ffi::{c_char, CString};
use std::path::Path;
use std::ptr;

struct Case {
    name: &'static str,
    run: Box<dyn Fn() -> simgrad_status>,
    status: simgrad_status,
    needles: &'static [&'static str],
}

fn case(
    name: &'static str,
    status: simgrad_status,
    needles: &'static [&'static str],
    run: impl Fn() -> simgrad_status + 'static,
) -> Case {
    Case {
        name,
        run: Box::new(run),
        status,
        needles,
    }
}

fn check(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in &cases {
        let got = (c.run)();
        let message = last_error();
        let missing: Vec<_> = c.needles.iter().filter(|n| !message.contains(*n)).collect();
        if got != c.status || !missing.is_empty() {
            failures.push(format!(
                "{}: expected {:?}, got {got:?}; message {message:?} lacks {missing:?}",
                c.name, c.status
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn open_status(path: &Path) -> simgrad_status {
    let mut lib = ptr::null_mut();
    let status = unsafe { simgrad_library_open(c_path(path).as_ptr(), &mut lib) };
    unsafe { simgrad_library_free(lib) };
    status
}

/// Handles for the cases, leaked: they live as long as the test binary.
#[derive(Clone, Copy)]
struct H {
    lib: *const simgrad_library,
    scale: *const simgrad_kernel,
    fails: *const simgrad_kernel,
}

fn handles() -> H {
    let lib = open(&fixture().good);
    H {
        lib,
        scale: kernel(lib, "scale"),
        fails: kernel(lib, "fails"),
    }
}

#[test]
fn opening_libraries() {
    let f = fixture();
    let (good, no_manifest) = (f.good.clone(), f.no_manifest.clone());
    let (mfile, corrupt_file) = (f.manifest_file.clone(), f.corrupt_manifest_file.clone());
    let with_manifest = |lib: &Path, manifest: &Path| {
        let mut out = ptr::null_mut();
        let s = unsafe {
            simgrad_library_open_with_manifest(
                c_path(lib).as_ptr(),
                c_path(manifest).as_ptr(),
                &mut out,
            )
        };
        unsafe { simgrad_library_free(out) };
        s
    };
    let missing = f.dir.join("does-not-exist.so");
    let (g2, m2, nm2, g3, cf) = (
        good.clone(),
        mfile.clone(),
        no_manifest.clone(),
        good.clone(),
        corrupt_file.clone(),
    );
    let g4 = good.clone();
    check(vec![
        case(
            "open: NULL path",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_library_open: `path` is NULL"],
            || {
                let mut out = ptr::null_mut();
                unsafe { simgrad_library_open(ptr::null(), &mut out) }
            },
        ),
        case(
            "open: NULL out",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_library_open: output `out` is NULL"],
            move || unsafe { simgrad_library_open(c_path(&g4).as_ptr(), ptr::null_mut()) },
        ),
        case(
            "open: empty path",
            SIMGRAD_ERR_INVALID_ARGUMENT,
            &["`path` is an empty path"],
            || {
                let mut out = ptr::null_mut();
                unsafe { simgrad_library_open(c"".as_ptr(), &mut out) }
            },
        ),
        case(
            "open: missing library",
            SIMGRAD_ERR_LIBRARY,
            &["cannot open library", "does-not-exist.so", "no such file"],
            move || open_status(&missing),
        ),
        case(
            "open: not a shared library",
            SIMGRAD_ERR_LIBRARY,
            &["cannot open library", "not-a-library.so"],
            {
                let p = f.not_a_library.clone();
                move || open_status(&p)
            },
        ),
        case(
            "open: no manifest symbol",
            SIMGRAD_ERR_MANIFEST,
            &["exports no `simgrad_manifest`", "external manifest"],
            {
                let p = no_manifest.clone();
                move || open_status(&p)
            },
        ),
        case(
            "open: corrupt manifest",
            SIMGRAD_ERR_MANIFEST,
            &["invalid manifest", "libcorrupt.so"],
            {
                let p = f.corrupt.clone();
                move || open_status(&p)
            },
        ),
        case(
            "open: NULL manifest",
            SIMGRAD_ERR_MANIFEST,
            &["`simgrad_manifest` returned NULL"],
            {
                let p = f.null_manifest.clone();
                move || open_status(&p)
            },
        ),
        case(
            "open: ABI mismatch",
            SIMGRAD_ERR_ABI_MISMATCH,
            &["abi_version is 2", "needs 1", "libabi2.so"],
            {
                let p = f.abi2.clone();
                move || open_status(&p)
            },
        ),
        case(
            "open: symbol missing",
            SIMGRAD_ERR_LIBRARY,
            &["`simgrad_k_ghost_primal`", "missing from"],
            {
                let p = f.missing_symbol.clone();
                move || open_status(&p)
            },
        ),
        case(
            "open_with_manifest: NULL manifest_path",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_library_open_with_manifest: `manifest_path` is NULL"],
            move || {
                let mut out = ptr::null_mut();
                unsafe {
                    simgrad_library_open_with_manifest(c_path(&g2).as_ptr(), ptr::null(), &mut out)
                }
            },
        ),
        case(
            "open_with_manifest: missing manifest file",
            SIMGRAD_ERR_MANIFEST,
            &["cannot read the manifest file", "nope.json"],
            move || with_manifest(&nm2, Path::new("/nonexistent/nope.json")),
        ),
        case(
            "open_with_manifest: corrupt manifest file",
            SIMGRAD_ERR_MANIFEST,
            &["invalid manifest", "corrupt.json"],
            move || with_manifest(&g3, &cf),
        ),
        case(
            "open_with_manifest: missing library",
            SIMGRAD_ERR_LIBRARY,
            &["cannot open library", "nope.so"],
            move || with_manifest(Path::new("/nonexistent/nope.so"), &m2),
        ),
    ]);
}

#[test]
fn outputs_are_untouched_on_failure() {
    let f = fixture();
    let sentinel = 0xdead_usize as *mut simgrad_library;
    let mut out = sentinel;
    let s = unsafe { simgrad_library_open(c_path(&f.abi2).as_ptr(), &mut out) };
    assert_eq!(s, SIMGRAD_ERR_ABI_MISMATCH);
    assert_eq!(out, sentinel);
    let h = handles();
    let mut k = 0xbeef_usize as *mut simgrad_kernel;
    assert_eq!(
        unsafe { simgrad_library_kernel(h.lib, c"nope".as_ptr(), &mut k) },
        SIMGRAD_ERR_NOT_FOUND
    );
    assert_eq!(k as usize, 0xbeef);
    let mut count = 77usize;
    assert_eq!(
        unsafe { simgrad_library_kernel_name(h.lib, 3, &mut (ptr::null())) },
        SIMGRAD_ERR_NOT_FOUND
    );
    assert_eq!(
        unsafe { simgrad_library_kernel_count(ptr::null(), &mut count) },
        SIMGRAD_ERR_NULL_ARGUMENT
    );
    assert_eq!(count, 77);
    let mut has = 5u32;
    assert_eq!(
        unsafe { simgrad_kernel_has_mode(h.scale, 9, &mut has) },
        SIMGRAD_ERR_NOT_FOUND
    );
    assert_eq!(has, 5);
}

#[test]
fn library_and_kernel_inspection() {
    let h = handles();
    let mut s: *const c_char = ptr::null();
    let _ = &mut s;
    let bad_utf8 = CString::new(vec![0xffu8, 0xfe]).unwrap();
    check(vec![
        case("manifest: NULL lib", SIMGRAD_ERR_NULL_ARGUMENT, &["simgrad_library_manifest: `lib` is NULL; pass a simgrad_library handle"], || {
            let mut p = ptr::null();
            unsafe { simgrad_library_manifest(ptr::null(), &mut p) }
        }),
        case("manifest: NULL out", SIMGRAD_ERR_NULL_ARGUMENT, &["simgrad_library_manifest: output `out_json` is NULL"], move || unsafe {
            simgrad_library_manifest(h.lib, ptr::null_mut())
        }),
        case("path: NULL lib", SIMGRAD_ERR_NULL_ARGUMENT, &["simgrad_library_path: `lib` is NULL"], || {
            let mut p = ptr::null();
            unsafe { simgrad_library_path(ptr::null(), &mut p) }
        }),
        case("path: NULL out", SIMGRAD_ERR_NULL_ARGUMENT, &["simgrad_library_path: output `out` is NULL"], move || unsafe {
            simgrad_library_path(h.lib, ptr::null_mut())
        }),
        case("kernel_count: NULL lib", SIMGRAD_ERR_NULL_ARGUMENT, &["simgrad_library_kernel_count: `lib` is NULL"], || {
            let mut n = 0;
            unsafe { simgrad_library_kernel_count(ptr::null(), &mut n) }
        }),
        case("kernel_count: NULL out", SIMGRAD_ERR_NULL_ARGUMENT, &["output `out` is NULL"], move || unsafe {
            simgrad_library_kernel_count(h.lib, ptr::null_mut())
        }),
        case("kernel_name: index out of range", SIMGRAD_ERR_NOT_FOUND, &["simgrad_library_kernel_name: kernel index 99 is out of range; the library has 3 kernels"], move || {
            let mut p = ptr::null();
            unsafe { simgrad_library_kernel_name(h.lib, 99, &mut p) }
        }),
        case("kernel_name: NULL lib", SIMGRAD_ERR_NULL_ARGUMENT, &["`lib` is NULL"], || {
            let mut p = ptr::null();
            unsafe { simgrad_library_kernel_name(ptr::null(), 0, &mut p) }
        }),
        case("kernel_name: NULL out", SIMGRAD_ERR_NULL_ARGUMENT, &["output `out` is NULL"], move || unsafe {
            simgrad_library_kernel_name(h.lib, 0, ptr::null_mut())
        }),
        case("library_kernel: unknown kernel", SIMGRAD_ERR_NOT_FOUND, &["unknown kernel `nope`", "scale, scal, fails"], move || {
            let mut k = ptr::null_mut();
            unsafe { simgrad_library_kernel(h.lib, c"nope".as_ptr(), &mut k) }
        }),
        case("library_kernel: NULL lib", SIMGRAD_ERR_NULL_ARGUMENT, &["simgrad_library_kernel: `lib` is NULL"], || {
            let mut k = ptr::null_mut();
            unsafe { simgrad_library_kernel(ptr::null(), c"scale".as_ptr(), &mut k) }
        }),
        case("library_kernel: NULL name", SIMGRAD_ERR_NULL_ARGUMENT, &["`name` is NULL"], move || {
            let mut k = ptr::null_mut();
            unsafe { simgrad_library_kernel(h.lib, ptr::null(), &mut k) }
        }),
        case("library_kernel: name not UTF-8", SIMGRAD_ERR_INVALID_ARGUMENT, &["`name` is not valid UTF-8"], move || {
            let mut k = ptr::null_mut();
            unsafe { simgrad_library_kernel(h.lib, bad_utf8.as_ptr(), &mut k) }
        }),
        case("library_kernel: NULL out", SIMGRAD_ERR_NULL_ARGUMENT, &["output `out` is NULL"], move || unsafe {
            simgrad_library_kernel(h.lib, c"scale".as_ptr(), ptr::null_mut())
        }),
        case("kernel_name: NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, &["simgrad_kernel_name: `kernel` is NULL; pass a simgrad_kernel handle"], || {
            let mut p = ptr::null();
            unsafe { simgrad_kernel_name(ptr::null(), &mut p) }
        }),
        case("kernel_name: NULL out", SIMGRAD_ERR_NULL_ARGUMENT, &["simgrad_kernel_name: output `out` is NULL"], move || unsafe {
            simgrad_kernel_name(h.scale, ptr::null_mut())
        }),
        case("arg_count: NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, &["simgrad_kernel_arg_count: `kernel` is NULL"], || {
            let mut n = 0;
            unsafe { simgrad_kernel_arg_count(ptr::null(), &mut n) }
        }),
        case("arg_count: NULL out", SIMGRAD_ERR_NULL_ARGUMENT, &["output `out` is NULL"], move || unsafe {
            simgrad_kernel_arg_count(h.scale, ptr::null_mut())
        }),
        case("arg_info: index out of range", SIMGRAD_ERR_NOT_FOUND, &["argument index 3 is out of range; kernel `scale` has 3 arguments"], move || {
            let mut info = unsafe { std::mem::zeroed() };
            unsafe { simgrad_kernel_arg_info(h.scale, 3, &mut info) }
        }),
        case("arg_info: NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, &["`kernel` is NULL"], || {
            let mut info = unsafe { std::mem::zeroed() };
            unsafe { simgrad_kernel_arg_info(ptr::null(), 0, &mut info) }
        }),
        case("arg_info: NULL out", SIMGRAD_ERR_NULL_ARGUMENT, &["output `out` is NULL"], move || unsafe {
            simgrad_kernel_arg_info(h.scale, 0, ptr::null_mut())
        }),
        case("has_mode: unknown mode", SIMGRAD_ERR_NOT_FOUND, &["unknown mode 3", "SIMGRAD_MODE_VJP (2)"], move || {
            let mut v = 0;
            unsafe { simgrad_kernel_has_mode(h.scale, 3, &mut v) }
        }),
        case("has_mode: NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, &["`kernel` is NULL"], || {
            let mut v = 0;
            unsafe { simgrad_kernel_has_mode(ptr::null(), 0, &mut v) }
        }),
        case("has_mode: NULL out", SIMGRAD_ERR_NULL_ARGUMENT, &["output `out` is NULL"], move || unsafe {
            simgrad_kernel_has_mode(h.scale, 0, ptr::null_mut())
        }),
        case("memory_order: NULL kernel", SIMGRAD_ERR_NULL_ARGUMENT, &["`kernel` is NULL"], || {
            let mut v = 0;
            unsafe { simgrad_kernel_memory_order(ptr::null(), &mut v) }
        }),
        case("memory_order: NULL out", SIMGRAD_ERR_NULL_ARGUMENT, &["output `out` is NULL"], move || unsafe {
            simgrad_kernel_memory_order(h.scale, ptr::null_mut())
        }),
    ]);
}

/// Calls `scale(n, x, y)` after `edit` has spoiled the arguments (n = 4, x and y of 4 elements).
fn call_scale(h: H, edit: impl Fn(&mut [simgrad_tensor; 3], &mut Bufs)) -> simgrad_status {
    let mut b = Bufs::new();
    let mut args = b.args();
    edit(&mut args, &mut b);
    unsafe { simgrad_kernel_call(h.scale, args.as_ptr(), args.len()) }
}

/// Buffers for `scale` with n = 4, plus spare storage for spoiled descriptors.
struct Bufs {
    n: i64,
    x: [f64; 4],
    y: [f64; 4],
    dx: [f64; 4],
    dy: [f64; 4],
    xf: [f32; 4],
    n32: i32,
    shape_x: [i64; 1],
    shape_y: [i64; 1],
    shape_t: [i64; 1],
    shape_u: [i64; 1],
    shape2: [i64; 2],
    strides: [i64; 1],
}

impl Bufs {
    fn new() -> Box<Bufs> {
        Box::new(Bufs {
            n: 4,
            x: [1.0, 2.0, 3.0, 4.0],
            y: [0.0; 4],
            dx: [1.0; 4],
            dy: [1.0; 4],
            xf: [1.0; 4],
            n32: 4,
            shape_x: [4],
            shape_y: [4],
            shape_t: [4],
            shape_u: [4],
            shape2: [2, 2],
            strides: [2],
        })
    }

    fn args(&mut self) -> [simgrad_tensor; 3] {
        [
            val(&mut self.n),
            arr(&mut self.x, &mut self.shape_x),
            arr(&mut self.y, &mut self.shape_y),
        ]
    }

    fn dx(&mut self) -> simgrad_tensor {
        arr(&mut self.dx, &mut self.shape_t)
    }

    fn dy(&mut self) -> simgrad_tensor {
        arr(&mut self.dy, &mut self.shape_u)
    }
}

#[test]
fn calls() {
    let h = handles();
    let spoil = move |f: fn(&mut [simgrad_tensor; 3], &mut Bufs)| move || call_scale(h, f);
    check(vec![
        case(
            "call: NULL kernel",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_kernel_call: `kernel` is NULL"],
            || {
                let mut b = Bufs::new();
                let args = b.args();
                unsafe { simgrad_kernel_call(ptr::null(), args.as_ptr(), 3) }
            },
        ),
        case(
            "call: NULL args",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_kernel_call: `args` is NULL but nargs is 3"],
            move || unsafe { simgrad_kernel_call(h.scale, ptr::null(), 3) },
        ),
        case(
            "call: too few arguments",
            SIMGRAD_ERR_INVALID_ARGUMENT,
            &["kernel `scale`: expected 3 arguments, got 2"],
            move || {
                let mut b = Bufs::new();
                let args = b.args();
                unsafe { simgrad_kernel_call(h.scale, args.as_ptr(), 2) }
            },
        ),
        case(
            "call: no arguments",
            SIMGRAD_ERR_INVALID_ARGUMENT,
            &["expected 3 arguments, got 0"],
            move || unsafe { simgrad_kernel_call(h.scale, ptr::null(), 0) },
        ),
        case(
            "call: wrong dtype",
            SIMGRAD_ERR_DTYPE,
            &["argument `x`: expected dtype f64, got f32"],
            spoil(|a, b| {
                a[1] = arr(&mut b.xf, &mut b.shape_x);
            }),
        ),
        case(
            "call: unsupported dtype",
            SIMGRAD_ERR_DTYPE,
            &[
                "argument `x`",
                "unsupported DLPack dtype (code 2, bits 16, lanes 1)",
            ],
            spoil(|a, _| {
                a[1].dtype = simgrad_dtype {
                    code: 2,
                    bits: 16,
                    lanes: 1,
                };
            }),
        ),
        case(
            "call: i32 size for an i64 size",
            SIMGRAD_ERR_DTYPE,
            &["argument `n`: expected dtype i64, got i32"],
            spoil(|a, b| {
                a[0] = val(&mut b.n32);
            }),
        ),
        case(
            "call: wrong rank",
            SIMGRAD_ERR_SHAPE,
            &["argument `x`: expected rank 1 (shape [n]), got rank 2"],
            spoil(|a, b| {
                a[1].ndim = 2;
                a[1].shape = b.shape2.as_mut_ptr();
            }),
        ),
        case(
            "call: inconsistent sizes",
            SIMGRAD_ERR_SHAPE,
            &["argument `y`", "n = 4 from size argument `n`", "got 3"],
            spoil(|a, b| {
                b.shape_y = [3];
                a[2].shape = b.shape_y.as_mut_ptr();
            }),
        ),
        case(
            "call: negative size",
            SIMGRAD_ERR_SHAPE,
            &["size `n`: a size must not be negative, got -1"],
            spoil(|_, b| {
                b.n = -1;
            }),
        ),
        case(
            "call: negative ndim",
            SIMGRAD_ERR_SHAPE,
            &["`args[2]` (argument `y`): `ndim` is -1, it must not be negative"],
            spoil(|a, _| {
                a[2].ndim = -1;
            }),
        ),
        case(
            "call: NULL shape",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["`args[1]` (argument `x`): `shape` is NULL but ndim is 1"],
            spoil(|a, _| {
                a[1].shape = ptr::null_mut();
            }),
        ),
        case(
            "call: NULL data",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["argument `x`: data pointer is NULL"],
            spoil(|a, _| {
                a[1].data = ptr::null_mut();
            }),
        ),
        case(
            "call: NULL size value",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["`n`: data pointer is NULL"],
            spoil(|a, _| {
                a[0].data = ptr::null_mut();
            }),
        ),
        case(
            "call: non-contiguous strides",
            SIMGRAD_ERR_LAYOUT,
            &["argument `x`", "contiguous row-major", "got strides [2]"],
            spoil(|a, b| {
                a[1].strides = b.strides.as_mut_ptr();
            }),
        ),
        case(
            "call: device memory",
            SIMGRAD_ERR_LAYOUT,
            &["argument `x`", "host memory", "device type 2"],
            spoil(|a, _| {
                a[1].device.device_type = 2;
            }),
        ),
        case(
            "call: output aliases input",
            SIMGRAD_ERR_ALIAS,
            &["argument `y` overlaps argument `x`"],
            spoil(|a, _| {
                a[2].data = a[1].data;
            }),
        ),
        case(
            "call: output overlaps input partly",
            SIMGRAD_ERR_ALIAS,
            &["argument `y` overlaps argument `x`"],
            spoil(|a, _| {
                a[2].data = a[1].data;
                a[2].byte_offset = 8;
            }),
        ),
        case(
            "call: kernel fails",
            SIMGRAD_ERR_KERNEL,
            &["kernel `fails` (primal) returned status 7"],
            move || {
                let mut x = [0.0f64; 2];
                let mut s = [2i64];
                let args = [arr(&mut x, &mut s)];
                unsafe { simgrad_kernel_call(h.fails, args.as_ptr(), 1) }
            },
        ),
        case(
            "jvp: unknown mode",
            SIMGRAD_ERR_NOT_FOUND,
            &["kernel `fails` has no `jvp` mode; it was built with: primal"],
            move || {
                let mut x = [0.0f64; 2];
                let mut s = [2i64];
                let args = [arr(&mut x, &mut s)];
                unsafe { simgrad_kernel_jvp(h.fails, args.as_ptr(), 1, ptr::null(), ptr::null()) }
            },
        ),
        case(
            "vjp: unknown mode",
            SIMGRAD_ERR_NOT_FOUND,
            &["kernel `fails` has no `vjp` mode"],
            move || {
                let mut x = [0.0f64; 2];
                let mut s = [2i64];
                let args = [arr(&mut x, &mut s)];
                unsafe {
                    simgrad_kernel_vjp(h.fails, args.as_ptr(), 1, ptr::null(), ptr::null(), 0)
                }
            },
        ),
    ]);
}

fn jvp(
    h: H,
    edit: fn(
        &mut [simgrad_tensor; 3],
        &mut [simgrad_tensor; 3],
        &mut [simgrad_tensor; 3],
        &mut Bufs,
    ),
) -> simgrad_status {
    let mut b = Bufs::new();
    let mut args = b.args();
    let mut tin = [absent(), b.dx(), absent()];
    let mut tout = [absent(), absent(), b.dy()];
    edit(&mut args, &mut tin, &mut tout, &mut b);
    unsafe { simgrad_kernel_jvp(h.scale, args.as_ptr(), 3, tin.as_ptr(), tout.as_ptr()) }
}

fn vjp(
    h: H,
    flags: u32,
    edit: fn(
        &mut [simgrad_tensor; 3],
        &mut [simgrad_tensor; 3],
        &mut [simgrad_tensor; 3],
        &mut Bufs,
    ),
) -> simgrad_status {
    let mut b = Bufs::new();
    let mut args = b.args();
    let mut cin = [absent(), absent(), b.dy()];
    let mut cout = [absent(), b.dx(), absent()];
    edit(&mut args, &mut cin, &mut cout, &mut b);
    unsafe {
        simgrad_kernel_vjp(
            h.scale,
            args.as_ptr(),
            3,
            cin.as_ptr(),
            cout.as_ptr(),
            flags,
        )
    }
}

#[test]
fn derivative_calls() {
    let h = handles();
    check(vec![
        case("jvp: control", SIMGRAD_OK, &[], move || {
            jvp(h, |_, _, _, _| {})
        }),
        case("vjp: control", SIMGRAD_OK, &[], move || {
            vjp(h, 0, |_, _, _, _| {})
        }),
        case(
            "jvp: NULL kernel",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_kernel_jvp: `kernel` is NULL"],
            || unsafe { simgrad_kernel_jvp(ptr::null(), ptr::null(), 0, ptr::null(), ptr::null()) },
        ),
        case(
            "jvp: NULL args",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_kernel_jvp: `args` is NULL but nargs is 3"],
            move || unsafe {
                simgrad_kernel_jvp(h.scale, ptr::null(), 3, ptr::null(), ptr::null())
            },
        ),
        case(
            "jvp: tangent of an output given as input",
            SIMGRAD_ERR_INVALID_ARGUMENT,
            &["a tangent of `y` was given, but it is `out`; pass NULL there"],
            move || jvp(h, |_, tin, _, b| tin[2] = b.dy()),
        ),
        case(
            "jvp: tangent of a size",
            SIMGRAD_ERR_INVALID_ARGUMENT,
            &["`n` was given, but it is not differentiable"],
            move || jvp(h, |_, tin, _, b| tin[0] = val(&mut b.n)),
        ),
        case(
            "jvp: tangent of wrong dtype",
            SIMGRAD_ERR_DTYPE,
            &["tangent of `x`: expected dtype f64, got f32"],
            move || jvp(h, |_, tin, _, b| tin[1] = arr(&mut b.xf, &mut b.shape_t)),
        ),
        case(
            "jvp: tangent of wrong shape",
            SIMGRAD_ERR_SHAPE,
            &["output tangent of `y`", "got 3"],
            move || {
                jvp(h, |_, _, tout, b| {
                    b.shape_u = [3];
                    tout[2].shape = b.shape_u.as_mut_ptr();
                })
            },
        ),
        case(
            "jvp: tangent with NULL shape",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["`tangents_out[2]` (argument `y`): `shape` is NULL but ndim is 1"],
            move || jvp(h, |_, _, tout, _| tout[2].shape = ptr::null_mut()),
        ),
        case(
            "jvp: output tangent aliases input tangent",
            SIMGRAD_ERR_ALIAS,
            &["output tangent of `y` overlaps tangent of `x`"],
            move || jvp(h, |_, tin, tout, _| tout[2].data = tin[1].data),
        ),
        case(
            "jvp: output tangent aliases an argument",
            SIMGRAD_ERR_ALIAS,
            &["output tangent of `y` overlaps argument `x`"],
            move || jvp(h, |a, _, tout, _| tout[2].data = a[1].data),
        ),
        case(
            "vjp: NULL kernel",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_kernel_vjp: `kernel` is NULL"],
            || unsafe {
                simgrad_kernel_vjp(ptr::null(), ptr::null(), 0, ptr::null(), ptr::null(), 0)
            },
        ),
        case(
            "vjp: unknown flags",
            SIMGRAD_ERR_INVALID_ARGUMENT,
            &["unknown bits in `flags` (0x2)", "SIMGRAD_VJP_ACCUMULATE"],
            move || vjp(h, 2, |_, _, _, _| {}),
        ),
        case(
            "vjp: cotangent of an input given as seed",
            SIMGRAD_ERR_INVALID_ARGUMENT,
            &["a cotangent of `x` was given, but it is `in`"],
            move || vjp(h, 0, |_, cin, _, b| cin[1] = b.dx()),
        ),
        case(
            "vjp: input cotangent of wrong rank",
            SIMGRAD_ERR_SHAPE,
            &["input cotangent of `x`: expected rank 1 (shape [n]), got rank 0"],
            move || vjp(h, 0, |_, _, cout, _| cout[1].ndim = 0),
        ),
        case(
            "vjp: input cotangent aliases the seed",
            SIMGRAD_ERR_ALIAS,
            &["input cotangent of `x` overlaps cotangent of `y`"],
            move || vjp(h, 0, |_, cin, cout, _| cout[1].data = cin[2].data),
        ),
        case(
            "vjp: NULL args with a seed list",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["`args` is NULL but nargs is 3"],
            move || unsafe {
                simgrad_kernel_vjp(h.scale, ptr::null(), 3, ptr::null(), ptr::null(), 0)
            },
        ),
    ]);
}

#[test]
fn building() {
    let dir = tempfile::tempdir().unwrap();
    let bad_spec = dir.path().join("simgrad.toml");
    std::fs::write(&bad_spec, "[[kernel]\nname = ").unwrap();
    let bad = c_path(&bad_spec);
    let missing = c_path(&dir.path().join("missing.toml"));
    let good_opts = simgrad_build_options {
        struct_size: std::mem::size_of::<simgrad_build_options>() as u32,
        out_dir: ptr::null(),
        cache_dir: ptr::null(),
        pipeline: ptr::null(),
        flags: 0,
    };
    check(vec![
        case(
            "build: NULL spec_path",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_build: `spec_path` is NULL"],
            || {
                let mut out = ptr::null_mut();
                unsafe { simgrad_build(ptr::null(), ptr::null(), &mut out) }
            },
        ),
        case(
            "build: NULL out",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_build: output `out` is NULL"],
            || unsafe { simgrad_build(c"simgrad.toml".as_ptr(), ptr::null(), ptr::null_mut()) },
        ),
        case(
            "build: struct_size too small",
            SIMGRAD_ERR_INVALID_ARGUMENT,
            &["`options->struct_size` is 4"],
            move || {
                let opts = simgrad_build_options {
                    struct_size: 4,
                    ..good_opts
                };
                let mut out = ptr::null_mut();
                unsafe { simgrad_build(c"simgrad.toml".as_ptr(), &opts, &mut out) }
            },
        ),
        case(
            "build: unknown flags",
            SIMGRAD_ERR_INVALID_ARGUMENT,
            &["unknown bits in `options->flags` (0x8)"],
            move || {
                let opts = simgrad_build_options {
                    flags: 8,
                    ..good_opts
                };
                let mut out = ptr::null_mut();
                unsafe { simgrad_build(c"simgrad.toml".as_ptr(), &opts, &mut out) }
            },
        ),
        case(
            "build: spec with a syntax error",
            SIMGRAD_ERR_SPEC,
            &["simgrad_build: ", "simgrad.toml"],
            move || {
                let mut out = ptr::null_mut();
                unsafe { simgrad_build(bad.as_ptr(), ptr::null(), &mut out) }
            },
        ),
        case(
            "build_path: missing spec",
            SIMGRAD_ERR_SPEC,
            &["simgrad_build_path: ", "missing.toml"],
            move || {
                let mut buf = [0 as c_char; 16];
                unsafe {
                    simgrad_build_path(
                        missing.as_ptr(),
                        ptr::null(),
                        buf.as_mut_ptr(),
                        buf.len(),
                        ptr::null_mut(),
                    )
                }
            },
        ),
        case(
            "build_path: NULL buf with a length",
            SIMGRAD_ERR_NULL_ARGUMENT,
            &["simgrad_build_path: `buf` is NULL but buf_len is 16"],
            || unsafe {
                simgrad_build_path(
                    c"simgrad.toml".as_ptr(),
                    ptr::null(),
                    ptr::null_mut(),
                    16,
                    ptr::null_mut(),
                )
            },
        ),
    ]);
}
