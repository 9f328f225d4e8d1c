//! The example kernels (examples-c/kernels: C, C++, Fortran in one library) built through the
//! real pipeline and checked in every mode against independent references: analytic
//! derivatives where they are short, central finite differences otherwise. Inputs and seeds are
//! compared with copies after every call.
//!
//! Needs the Enzyme toolchain: skipped with a message when it is missing, unless
//! `SIMGRAD_REQUIRE_ENZYME=1` (set by `cargo xtask ci`), which turns the skip into a failure.

use approx::assert_relative_eq;
use simgrad_build::toolchain::toolchain_or_skip;
use simgrad_build::{build_spec_file, BuildOptions};
use simgrad_core::{ArgRef, Library, VjpOptions};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The examples library, built once per test binary; `None` (skip) without Enzyme.
fn library() -> Option<&'static Library> {
    static LIB: OnceLock<Option<Library>> = OnceLock::new();
    LIB.get_or_init(|| {
        toolchain_or_skip()?;
        let out = build_spec_file(
            &repo().join("examples-c/kernels/simgrad.toml"),
            &BuildOptions {
                quiet: true,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("building the examples failed: {e}"));
        Some(Library::open(&out.library).unwrap())
    })
    .as_ref()
}

fn seed_input() -> Vec<f64> {
    (0..100).map(|i| 0.75 + 0.37 * i as f64).collect()
}

/// d out[i] / d x[i] = 1 + prev / x[i]^2 with prev = trunc(x[i-1]); the Jacobian is diagonal.
fn seed_analytic_diagonal(x: &[f64]) -> Vec<f64> {
    let mut prev = 0i32;
    x.iter()
        .map(|&xi| {
            let d = 1.0 + f64::from(prev) / (xi * xi);
            prev = xi as i32;
            d
        })
        .collect()
}

#[test]
fn seed_primal_jvp_vjp_match_the_analytic_derivative() {
    let Some(lib) = library() else { return };
    let k = lib.kernel("seed").unwrap();
    let x = seed_input();
    let x_copy = x.clone();
    let shape = [100i64];
    let diag = seed_analytic_diagonal(&x);

    let mut out = vec![0.0; 100];
    k.call(&[
        ArgRef::array_in(&x, &shape),
        ArgRef::array(&mut out, &shape),
    ])
    .unwrap();
    let mut prev = 0i32;
    for i in 0..100 {
        assert_relative_eq!(out[i], x[i] - f64::from(prev) / x[i], max_relative = 1e-15);
        prev = x[i] as i32;
    }

    // JVP along a random-ish direction: J v = diag * v.
    let v: Vec<f64> = (0..100)
        .map(|i| ((i * 7919) % 13) as f64 / 13.0 - 0.5)
        .collect();
    let v_copy = v.clone();
    let mut out2 = vec![0.0; 100];
    let mut dout = vec![0.0; 100];
    k.jvp(
        &[
            ArgRef::array_in(&x, &shape),
            ArgRef::array(&mut out2, &shape),
        ],
        &[Some(ArgRef::array_in(&v, &shape)), None],
        &[None, Some(ArgRef::array(&mut dout, &shape))],
    )
    .unwrap();
    for i in 0..100 {
        assert_relative_eq!(dout[i], diag[i] * v[i], max_relative = 1e-13);
    }
    assert_eq!(out2, out, "the JVP also computes the primal");

    // VJP: J^T w = diag * w; the seed w is left intact, stale cotangent memory is overwritten.
    let w: Vec<f64> = (0..100).map(|i| 1.0 + (i % 5) as f64).collect();
    let w_copy = w.clone();
    let mut scratch_out = vec![0.0; 100];
    let mut dx = vec![123.0; 100];
    k.vjp(
        &[
            ArgRef::array_in(&x, &shape),
            ArgRef::array(&mut scratch_out, &shape),
        ],
        &[None, Some(ArgRef::array_in(&w, &shape))],
        &[Some(ArgRef::array(&mut dx, &shape)), None],
        VjpOptions::default(),
    )
    .unwrap();
    for i in 0..100 {
        assert_relative_eq!(dx[i], diag[i] * w[i], max_relative = 1e-13);
    }
    // Accumulate: adds to what is there.
    k.vjp(
        &[
            ArgRef::array_in(&x, &shape),
            ArgRef::array(&mut scratch_out, &shape),
        ],
        &[None, Some(ArgRef::array_in(&w, &shape))],
        &[Some(ArgRef::array(&mut dx, &shape)), None],
        VjpOptions { accumulate: true },
    )
    .unwrap();
    for i in 0..100 {
        assert_relative_eq!(dx[i], 2.0 * diag[i] * w[i], max_relative = 1e-13);
    }
    assert_eq!(
        scratch_out,
        vec![0.0; 100],
        "a VJP never writes the caller's outputs"
    );
    // So the output's data may be NULL.
    let mut dx_null_out = vec![0.0; 100];
    let null_out = ArgRef {
        data: std::ptr::null_mut(),
        ..ArgRef::array(&mut scratch_out, &shape)
    };
    k.vjp(
        &[ArgRef::array_in(&x, &shape), null_out],
        &[None, Some(ArgRef::array_in(&w, &shape))],
        &[Some(ArgRef::array(&mut dx_null_out, &shape)), None],
        VjpOptions::default(),
    )
    .unwrap();
    let doubled: Vec<f64> = dx_null_out.iter().map(|g| g * 2.0).collect();
    assert_eq!(doubled, dx);
    assert_eq!(x, x_copy);
    assert_eq!(v, v_copy);
    assert_eq!(w, w_copy);

    let snapshot: Vec<String> = dx[..12]
        .iter()
        .map(|g| format!("{:.12e}", g / 2.0))
        .collect();
    insta::assert_json_snapshot!("seed_vjp_first_12", snapshot);
}

#[test]
fn axpy_named_size_scalar_and_inout_match_the_analytic_derivative() {
    let Some(lib) = library() else { return };
    let k = lib.kernel("axpy").unwrap();
    for n in [0usize, 1, 5, 1000] {
        let ni = n as i64;
        let shape = [ni];
        let a = 1.5f64;
        let x: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let y0: Vec<f64> = (0..n).map(|i| (i as f64 * 0.3).cos()).collect();

        let mut y = y0.clone();
        k.call(&[
            ArgRef::scalar(&ni),
            ArgRef::scalar(&a),
            ArgRef::array_in(&x, &shape),
            ArgRef::array(&mut y, &shape),
        ])
        .unwrap();
        for i in 0..n {
            assert_relative_eq!(y[i], a * x[i] + y0[i], max_relative = 1e-15);
        }

        // JVP: dy_out = da * x + a * dx + dy_in.
        let da = 0.25f64;
        let dx: Vec<f64> = (0..n).map(|i| 1.0 / (1.0 + i as f64)).collect();
        let dy_in: Vec<f64> = (0..n).map(|i| i as f64 * 0.01).collect();
        let mut y = y0.clone();
        let mut dy_out = vec![0.0; n];
        k.jvp(
            &[
                ArgRef::scalar(&ni),
                ArgRef::scalar(&a),
                ArgRef::array_in(&x, &shape),
                ArgRef::array(&mut y, &shape),
            ],
            &[
                None,
                Some(ArgRef::scalar(&da)),
                Some(ArgRef::array_in(&dx, &shape)),
                Some(ArgRef::array_in(&dy_in, &shape)),
            ],
            &[None, None, None, Some(ArgRef::array(&mut dy_out, &shape))],
        )
        .unwrap();
        for i in 0..n {
            assert_relative_eq!(
                dy_out[i],
                da * x[i] + a * dx[i] + dy_in[i],
                max_relative = 1e-14
            );
        }

        // VJP: x_bar = a * w, a_bar = sum x * w, y_bar_in = w.
        let w: Vec<f64> = (0..n).map(|i| 2.0 - i as f64 * 0.001).collect();
        let y_before = y0.clone();
        let (mut xb, mut yb, mut ab) = (vec![0.0; n], vec![0.0; n], 0.0f64);
        k.vjp(
            &[
                ArgRef::scalar(&ni),
                ArgRef::scalar(&a),
                ArgRef::array_in(&x, &shape),
                ArgRef::array_in(&y0, &shape),
            ],
            &[None, None, None, Some(ArgRef::array_in(&w, &shape))],
            &[
                None,
                Some(ArgRef::scalar_mut(&mut ab)),
                Some(ArgRef::array(&mut xb, &shape)),
                Some(ArgRef::array(&mut yb, &shape)),
            ],
            VjpOptions::default(),
        )
        .unwrap();
        let expect_ab: f64 = x.iter().zip(&w).map(|(x, w)| x * w).sum();
        assert_relative_eq!(ab, expect_ab, max_relative = 1e-12);
        for i in 0..n {
            assert_relative_eq!(xb[i], a * w[i], max_relative = 1e-15);
            assert_relative_eq!(yb[i], w[i], max_relative = 1e-15);
        }
        assert_eq!(y0, y_before, "a VJP never updates an inout argument");
    }
}

#[test]
fn softmax_energy_cpp_gradient_matches_the_analytic_formula() {
    let Some(lib) = library() else { return };
    let k = lib.kernel("softmax_energy").unwrap();
    let n = 9i64;
    let x: Vec<f64> = (0..9).map(|i| (i as f64 * 1.3).sin()).collect();
    let w = 0.7f64;
    let z: Vec<f64> = x.iter().map(|v| w * v).collect();
    let m = z.iter().cloned().fold(f64::MIN, f64::max);
    let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
    let p: Vec<f64> = z.iter().map(|v| (v - m).exp() / s).collect();
    let (mut xb, mut wb) = (vec![0.0; 9], 0.0f64);
    let mut e = [0.0f64];
    let seed = [1.0f64];
    k.vjp(
        &[
            ArgRef::scalar(&n),
            ArgRef::array_in(&x, &[9]),
            ArgRef::scalar(&w),
            ArgRef::array(&mut e, &[1]),
        ],
        &[None, None, None, Some(ArgRef::array_in(&seed, &[1]))],
        &[
            None,
            Some(ArgRef::array(&mut xb, &[9])),
            Some(ArgRef::scalar_mut(&mut wb)),
            None,
        ],
        VjpOptions::default(),
    )
    .unwrap();
    for i in 0..9 {
        assert_relative_eq!(xb[i], w * p[i] + x[i], max_relative = 1e-12);
    }
    let expect_wb: f64 = p.iter().zip(&x).map(|(p, x)| p * x).sum();
    assert_relative_eq!(wb, expect_wb, max_relative = 1e-12);
    assert_eq!(seed, [1.0]);
}

/// Central finite differences of the Fortran heat solver's final state along (dk, du0).
fn heat_fd(
    k: &simgrad_core::Kernel,
    n: i64,
    steps: i64,
    kappa: &[f64],
    u0: &[f64],
    dk: &[f64],
    du0: &[f64],
) -> Vec<f64> {
    let h = 1e-6;
    let run = |s: f64| {
        let kp: Vec<f64> = kappa.iter().zip(dk).map(|(a, b)| a + s * h * b).collect();
        let up: Vec<f64> = u0.iter().zip(du0).map(|(a, b)| a + s * h * b).collect();
        let mut u = vec![0.0; n as usize];
        let sh = [n];
        k.call(&[
            ArgRef::scalar(&n),
            ArgRef::scalar(&steps),
            ArgRef::array_in(&kp, &sh),
            ArgRef::array_in(&up, &sh),
            ArgRef::array(&mut u, &sh),
        ])
        .unwrap();
        u
    };
    let (p, m) = (run(1.0), run(-1.0));
    p.iter().zip(&m).map(|(a, b)| (a - b) / (2.0 * h)).collect()
}

#[test]
fn fortran_heat_jvp_and_vjp_match_central_differences() {
    let Some(lib) = library() else { return };
    let k = lib.kernel("heat").unwrap();
    let (n, steps) = (40i64, 25i64);
    let sh = [n];
    let nu = n as usize;
    let kappa: Vec<f64> = (0..nu)
        .map(|i| 0.5 + 0.4 * (i as f64 * 0.2).sin())
        .collect();
    let u0: Vec<f64> = (0..nu)
        .map(|i| (-((i as f64 - 20.0) / 6.0).powi(2)).exp())
        .collect();
    let dk: Vec<f64> = (0..nu).map(|i| ((i * 31) % 7) as f64 / 7.0 - 0.4).collect();
    let du0: Vec<f64> = (0..nu).map(|i| ((i * 17) % 5) as f64 / 5.0 - 0.5).collect();
    let fd = heat_fd(k, n, steps, &kappa, &u0, &dk, &du0);

    let mut u = vec![0.0; nu];
    let mut du = vec![0.0; nu];
    k.jvp(
        &[
            ArgRef::scalar(&n),
            ArgRef::scalar(&steps),
            ArgRef::array_in(&kappa, &sh),
            ArgRef::array_in(&u0, &sh),
            ArgRef::array(&mut u, &sh),
        ],
        &[
            None,
            None,
            Some(ArgRef::array_in(&dk, &sh)),
            Some(ArgRef::array_in(&du0, &sh)),
            None,
        ],
        &[None, None, None, None, Some(ArgRef::array(&mut du, &sh))],
    )
    .unwrap();
    for i in 0..nu {
        assert_relative_eq!(du[i], fd[i], epsilon = 1e-8, max_relative = 1e-6);
    }
    // VJP by the dot-product identity against the FD directional derivative.
    let w: Vec<f64> = (0..nu).map(|i| (i as f64 * 0.7).cos()).collect();
    let (mut kb, mut ub) = (vec![0.0; nu], vec![0.0; nu]);
    let mut scratch = vec![0.0; nu];
    k.vjp(
        &[
            ArgRef::scalar(&n),
            ArgRef::scalar(&steps),
            ArgRef::array_in(&kappa, &sh),
            ArgRef::array_in(&u0, &sh),
            ArgRef::array(&mut scratch, &sh),
        ],
        &[None, None, None, None, Some(ArgRef::array_in(&w, &sh))],
        &[
            None,
            None,
            Some(ArgRef::array(&mut kb, &sh)),
            Some(ArgRef::array(&mut ub, &sh)),
            None,
        ],
        VjpOptions::default(),
    )
    .unwrap();
    let lhs: f64 = kb
        .iter()
        .zip(&dk)
        .chain(ub.iter().zip(&du0))
        .map(|(a, b)| a * b)
        .sum();
    let rhs: f64 = w.iter().zip(&fd).map(|(a, b)| a * b).sum();
    assert_relative_eq!(lhs, rhs, max_relative = 1e-6);
    let snapshot: Vec<String> = kb[..8].iter().map(|g| format!("{g:.10e}")).collect();
    insta::assert_json_snapshot!("heat_vjp_kappa_first_8", snapshot);
}

#[test]
fn eight_threads_calling_one_kernel_agree_with_sequential_calls() {
    let Some(lib) = library() else { return };
    let k = lib.kernel("heat").unwrap();
    let n = 64i64;
    let sh = [n];
    let run = |t: usize| {
        let kappa: Vec<f64> = (0..64)
            .map(|i| 0.3 + 0.01 * ((i + t) % 11) as f64)
            .collect();
        let u0: Vec<f64> = (0..64).map(|i| ((i * (t + 1)) % 9) as f64 / 9.0).collect();
        let steps = 50i64;
        let w = vec![1.0; 64];
        let mut u = vec![0.0; 64];
        let mut kb = vec![0.0; 64];
        k.call(&[
            ArgRef::scalar(&n),
            ArgRef::scalar(&steps),
            ArgRef::array_in(&kappa, &sh),
            ArgRef::array_in(&u0, &sh),
            ArgRef::array(&mut u, &sh),
        ])
        .unwrap();
        let mut scratch = vec![0.0; 64];
        k.vjp(
            &[
                ArgRef::scalar(&n),
                ArgRef::scalar(&steps),
                ArgRef::array_in(&kappa, &sh),
                ArgRef::array_in(&u0, &sh),
                ArgRef::array(&mut scratch, &sh),
            ],
            &[None, None, None, None, Some(ArgRef::array_in(&w, &sh))],
            &[None, None, Some(ArgRef::array(&mut kb, &sh)), None, None],
            VjpOptions::default(),
        )
        .unwrap();
        (u, kb)
    };
    let sequential: Vec<_> = (0..8).map(run).collect();
    for _round in 0..5 {
        let parallel: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|t| s.spawn(move || run(t))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(parallel, sequential);
    }
}

#[test]
fn every_example_passes_the_random_gradient_check() {
    let Some(lib) = library() else { return };
    for seed in 0..3 {
        let results = simgrad_core::check::check_library(
            lib,
            &simgrad_core::check::CheckOptions {
                seed,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(results.len(), 8, "two checks for each of the four kernels");
        for r in &results {
            assert!(r.passed, "{r}");
        }
    }
}
