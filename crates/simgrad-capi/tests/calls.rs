//! The C API used as intended: inspection, primal, JVP and VJP values, handle lifetimes, many
//! threads, and the panic boundary. Runs against the hand-written fixture library (`common`).

mod common;

use common::*;
use simgrad::*;
use std::ffi::{c_char, CStr};
use std::ptr;

fn text(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: simgrad returns NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
}

#[test]
fn versions_and_status_names() {
    assert_eq!(text(simgrad_version()), env!("CARGO_PKG_VERSION"));
    assert_eq!(simgrad_abi_version(), SIMGRAD_ABI_VERSION);
    assert_eq!(text(simgrad_status_name(0)), "SIMGRAD_OK");
    assert_eq!(text(simgrad_status_name(4)), "SIMGRAD_ERR_SHAPE");
    assert_eq!(
        text(simgrad_status_name(18)),
        "SIMGRAD_ERR_BUFFER_TOO_SMALL"
    );
    assert_eq!(text(simgrad_status_name(999)), "SIMGRAD_UNKNOWN_STATUS");
}

#[test]
fn inspects_the_library_and_its_kernels() {
    let f = fixture();
    let lib = open(&f.good);
    unsafe {
        let mut n = 0usize;
        ok(simgrad_library_kernel_count(lib, &mut n));
        assert_eq!(n, 3);
        let mut names = Vec::new();
        for i in 0..n {
            let mut p = ptr::null();
            ok(simgrad_library_kernel_name(lib, i, &mut p));
            names.push(text(p));
        }
        assert_eq!(names, ["scale", "scal", "fails"]);

        let mut json = ptr::null();
        ok(simgrad_library_manifest(lib, &mut json));
        assert_eq!(text(json), manifest(1, false));
        let mut path = ptr::null();
        ok(simgrad_library_path(lib, &mut path));
        assert_eq!(text(path), f.good.to_str().unwrap());

        let k = kernel(lib, "scal");
        let mut p = ptr::null();
        ok(simgrad_kernel_name(k, &mut p));
        assert_eq!(text(p), "scal");
        let mut count = 0usize;
        ok(simgrad_kernel_arg_count(k, &mut count));
        assert_eq!(count, 4);
        let mut infos = Vec::new();
        for i in 0..count {
            let mut info = std::mem::zeroed::<simgrad_arg_info>();
            ok(simgrad_kernel_arg_info(k, i, &mut info));
            infos.push((
                text(info.name),
                info.kind,
                (info.dtype.code, info.dtype.bits, info.dtype.lanes),
                info.intent,
                info.differentiable,
                info.ndim,
            ));
        }
        assert_eq!(
            infos,
            [
                (
                    "n".to_string(),
                    SIMGRAD_ARG_SIZE,
                    (SIMGRAD_DTYPE_CODE_INT, 64, 1),
                    SIMGRAD_INTENT_IN,
                    0,
                    0
                ),
                (
                    "a".to_string(),
                    SIMGRAD_ARG_SCALAR,
                    (SIMGRAD_DTYPE_CODE_FLOAT, 64, 1),
                    SIMGRAD_INTENT_IN,
                    1,
                    0
                ),
                (
                    "x".to_string(),
                    SIMGRAD_ARG_ARRAY,
                    (SIMGRAD_DTYPE_CODE_FLOAT, 64, 1),
                    SIMGRAD_INTENT_IN,
                    1,
                    1
                ),
                (
                    "y".to_string(),
                    SIMGRAD_ARG_ARRAY,
                    (SIMGRAD_DTYPE_CODE_FLOAT, 64, 1),
                    SIMGRAD_INTENT_OUT,
                    1,
                    1
                ),
            ]
        );
        let mut order = 99;
        ok(simgrad_kernel_memory_order(k, &mut order));
        assert_eq!(order, SIMGRAD_ORDER_C);

        let fails = kernel(lib, "fails");
        for (mode, scal_has, fails_has) in [
            (SIMGRAD_MODE_PRIMAL, 1, 1),
            (SIMGRAD_MODE_JVP, 1, 0),
            (SIMGRAD_MODE_VJP, 1, 0),
        ] {
            let mut has = 99;
            ok(simgrad_kernel_has_mode(k, mode, &mut has));
            assert_eq!(has, scal_has);
            ok(simgrad_kernel_has_mode(fails, mode, &mut has));
            assert_eq!(has, fails_has);
        }
        simgrad_kernel_free(fails);
        simgrad_kernel_free(k);
        simgrad_library_free(lib);
    }
}

#[test]
fn primal_jvp_and_vjp_values() {
    let lib = open(&fixture().good);
    let k = kernel(lib, "scal");
    let (mut n, mut a) = (3i64, 1.5f64);
    let (mut x, mut y) = ([1.0, 2.0, 3.0], [0.0; 3]);
    let (mut s1, mut s2) = ([3i64], [3i64]);
    unsafe {
        let args = [
            val(&mut n),
            val(&mut a),
            arr(&mut x, &mut s1),
            arr(&mut y, &mut s2),
        ];
        ok(simgrad_kernel_call(k, args.as_ptr(), args.len()));
        assert_eq!(y, [1.5, 3.0, 4.5]);
        assert!(last_error().is_empty());

        // JVP: dy = da x + a dx.
        let (mut da, mut dx, mut dy) = (2.0f64, [1.0, 0.0, -1.0], [9.0; 3]);
        let (mut s3, mut s4) = ([3i64], [3i64]);
        y = [0.0; 3];
        let args = [
            val(&mut n),
            val(&mut a),
            arr(&mut x, &mut s1),
            arr(&mut y, &mut s2),
        ];
        let tin = [absent(), val(&mut da), arr(&mut dx, &mut s3), absent()];
        let tout = [absent(), absent(), absent(), arr(&mut dy, &mut s4)];
        ok(simgrad_kernel_jvp(
            k,
            args.as_ptr(),
            4,
            tin.as_ptr(),
            tout.as_ptr(),
        ));
        assert_eq!(y, [1.5, 3.0, 4.5]);
        assert_eq!(dy, [2.0 + 1.5, 4.0, 6.0 - 1.5]);
        assert_eq!(
            (da, dx),
            (2.0, [1.0, 0.0, -1.0]),
            "tangents_in is never modified"
        );

        // A NULL list is all-absent: no input tangent, so a zero output tangent.
        ok(simgrad_kernel_jvp(
            k,
            args.as_ptr(),
            4,
            ptr::null(),
            tout.as_ptr(),
        ));
        assert_eq!(dy, [0.0; 3]);

        // VJP: da = sum(gy x), gx = a gy; overwrite, then accumulate.
        let (mut gy, mut ga, mut gx) = ([1.0, 1.0, 2.0], 100.0f64, [100.0; 3]);
        let (mut s5, mut s6) = ([3i64], [3i64]);
        let y_before = y;
        let cin = [absent(), absent(), absent(), arr(&mut gy, &mut s5)];
        let cout = [absent(), val(&mut ga), arr(&mut gx, &mut s6), absent()];
        ok(simgrad_kernel_vjp(
            k,
            args.as_ptr(),
            4,
            cin.as_ptr(),
            cout.as_ptr(),
            0,
        ));
        assert_eq!(ga, 1.0 + 2.0 + 6.0);
        assert_eq!(gx, [1.5, 1.5, 3.0]);
        assert_eq!(gy, [1.0, 1.0, 2.0], "cotangents_in is never modified");
        assert_eq!(y, y_before, "a VJP never writes a primal output");
        ok(simgrad_kernel_vjp(
            k,
            args.as_ptr(),
            4,
            cin.as_ptr(),
            cout.as_ptr(),
            SIMGRAD_VJP_ACCUMULATE,
        ));
        assert_eq!(ga, 18.0);
        assert_eq!(gx, [3.0, 3.0, 6.0]);
        simgrad_kernel_free(k);
        simgrad_library_free(lib);
    }
}

#[test]
fn byte_offset_and_explicit_strides_are_honoured() {
    let lib = open(&fixture().good);
    let k = kernel(lib, "scale");
    let mut n = 2i64;
    let (mut x, mut y) = ([0.0, 0.0, 1.0, 2.0], [0.0; 2]);
    let (mut s1, mut s2, mut strides) = ([2i64], [2i64], [1i64]);
    unsafe {
        let mut xt = arr(&mut x, &mut s1);
        xt.byte_offset = 2 * 8;
        xt.strides = strides.as_mut_ptr();
        let args = [val(&mut n), xt, arr(&mut y, &mut s2)];
        ok(simgrad_kernel_call(k, args.as_ptr(), 3));
        assert_eq!(y, [2.0, 4.0]);
        simgrad_kernel_free(k);
        simgrad_library_free(lib);
    }
}

#[test]
fn a_kernel_keeps_its_library_alive_and_external_manifests_work() {
    let f = fixture();
    let mut lib = ptr::null_mut();
    let (path, manifest) = (c_path(&f.no_manifest), c_path(&f.manifest_file));
    unsafe {
        ok(simgrad_library_open_with_manifest(
            path.as_ptr(),
            manifest.as_ptr(),
            &mut lib,
        ));
        let k = kernel(lib, "scale");
        simgrad_library_free(lib);
        let mut n = 1i64;
        let (mut x, mut y) = ([4.0], [0.0]);
        let (mut s1, mut s2) = ([1i64], [1i64]);
        let args = [val(&mut n), arr(&mut x, &mut s1), arr(&mut y, &mut s2)];
        ok(simgrad_kernel_call(k, args.as_ptr(), 3));
        assert_eq!(y, [8.0]);
        let mut name = ptr::null();
        ok(simgrad_kernel_name(k, &mut name));
        assert_eq!(text(name), "scale");
        simgrad_kernel_free(k);
        // Freeing NULL does nothing.
        simgrad_kernel_free(ptr::null_mut());
        simgrad_library_free(ptr::null_mut());
    }
}

/// A kernel handle shared by threads (the C API promises it is thread-safe).
#[derive(Clone, Copy)]
struct Shared(*const simgrad_kernel);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

fn run_vjp_and_jvp(k: Shared, seed: usize) -> (Vec<f64>, Vec<f64>, f64) {
    let n_usize = 64 + seed;
    let mut n = n_usize as i64;
    let mut a = 0.5 + seed as f64;
    let mut x: Vec<f64> = (0..n_usize)
        .map(|i| (i * (seed + 1)) as f64 * 0.25)
        .collect();
    let mut y = vec![0.0; n_usize];
    let mut dx: Vec<f64> = (0..n_usize).map(|i| i as f64).collect();
    let mut dy = vec![0.0; n_usize];
    let mut gy: Vec<f64> = (0..n_usize).map(|i| 1.0 / (i + 1) as f64).collect();
    let mut gx = vec![0.0; n_usize];
    let mut ga = 0.0f64;
    let mut da = 1.0f64;
    let mut shapes = [[n; 1]; 6];
    let [s1, s2, s3, s4, s5, s6] = &mut shapes;
    unsafe {
        let args = [val(&mut n), val(&mut a), arr(&mut x, s1), arr(&mut y, s2)];
        let tin = [absent(), val(&mut da), arr(&mut dx, s3), absent()];
        let tout = [absent(), absent(), absent(), arr(&mut dy, s4)];
        ok(simgrad_kernel_jvp(
            k.0,
            args.as_ptr(),
            4,
            tin.as_ptr(),
            tout.as_ptr(),
        ));
        let cin = [absent(), absent(), absent(), arr(&mut gy, s5)];
        let cout = [absent(), val(&mut ga), arr(&mut gx, s6), absent()];
        ok(simgrad_kernel_vjp(
            k.0,
            args.as_ptr(),
            4,
            cin.as_ptr(),
            cout.as_ptr(),
            0,
        ));
    }
    (dy, gx, ga)
}

#[test]
fn one_kernel_called_from_eight_threads_matches_sequential_results() {
    let lib = open(&fixture().good);
    let k = Shared(kernel(lib, "scal"));
    let sequential: Vec<_> = (0..8).map(|s| run_vjp_and_jvp(k, s)).collect();
    let barrier = std::sync::Barrier::new(8);
    let concurrent: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|s| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    (0..50).map(|_| run_vjp_and_jvp(k, s)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (s, runs) in concurrent.iter().enumerate() {
        for r in runs {
            assert_eq!(r, &sequential[s], "thread {s}");
        }
    }
    unsafe {
        simgrad_kernel_free(k.0 as *mut _);
        simgrad_library_free(lib);
    }
}

#[test]
fn a_panic_becomes_a_status_and_the_library_keeps_working() {
    let lib = open(&fixture().good);
    assert_eq!(simgrad__test_panic(), simgrad_status::SIMGRAD_ERR_PANIC);
    let e = last_error();
    assert!(
        e.contains("simgrad__test_panic: internal panic")
            && e.contains("simgrad__test_panic was called"),
        "{e}"
    );
    let mut n = 0usize;
    ok(unsafe { simgrad_library_kernel_count(lib, &mut n) });
    assert_eq!(n, 3);
    assert_eq!(last_error(), "", "a successful call clears the last error");
    unsafe { simgrad_library_free(lib) };
}
