//! What a checked call through `simgrad_kernel_call` costs over calling the kernel's trampoline
//! directly, for the seed kernel at n = 1, 100, 10^4, 10^6 (`cargo xtask bench` runs this and
//! turns the medians into the ratios of docs/benchmarks.md).
//!
//! Both variants call the same machine code on the same buffers; the difference is the
//! validation (dtype, shape, sizes, aliasing), the marshalling of descriptors, and the FFI
//! boundary of libsimgrad.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use simgrad::*;
use std::ffi::{c_void, CString};
use std::path::Path;
use std::time::Duration;

type Trampoline = unsafe extern "C" fn(*const *mut c_void, *const i64, *const *mut c_void) -> i32;

fn f64_tensor(data: *mut f64, shape: *mut i64, ndim: i32) -> simgrad_tensor {
    simgrad_tensor {
        data: data.cast(),
        device: simgrad_device {
            device_type: 1,
            device_id: 0,
        },
        ndim,
        dtype: simgrad_dtype {
            code: 2,
            bits: 64,
            lanes: 1,
        },
        shape,
        strides: std::ptr::null_mut(),
        byte_offset: 0,
    }
}

fn bench(c: &mut Criterion) {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/kernels/simgrad.toml");
    let built = simgrad_build::build_spec_file(
        &spec,
        &simgrad_build::BuildOptions {
            quiet: true,
            ..Default::default()
        },
    )
    .expect("building the benchmark kernel (needs the Enzyme toolchain: cargo xtask setup)");
    let path = CString::new(built.library.to_str().unwrap()).unwrap();
    let mut lib: *mut simgrad_library = std::ptr::null_mut();
    let mut kernel: *mut simgrad_kernel = std::ptr::null_mut();
    let name = CString::new("seed_n").unwrap();
    // SAFETY: valid C strings and out-pointers.
    unsafe {
        assert_eq!(
            simgrad_library_open(path.as_ptr(), &mut lib),
            simgrad_status::SIMGRAD_OK
        );
        assert_eq!(
            simgrad_library_kernel(lib, name.as_ptr(), &mut kernel),
            simgrad_status::SIMGRAD_OK
        );
    }
    // The raw baseline: the same library's trampoline, called directly.
    // SAFETY: the symbol has the uniform trampoline signature (docs/calling-convention.md).
    let raw_lib = unsafe { libloading::Library::new(&built.library).unwrap() };
    let raw: Trampoline = unsafe {
        *raw_lib
            .get::<Trampoline>(b"simgrad_k_seed_n_primal")
            .unwrap()
    };

    let core_lib = simgrad_core::Library::open(&built.library).unwrap();
    let core_kernel = core_lib.kernel("seed_n").unwrap();
    let mut group = c.benchmark_group("seed_primal");
    // Criterion's group settings win over its command-line flags, so the run length comes from
    // SIMGRAD_BENCH_SECONDS (measurement seconds per variant; `cargo xtask bench --quick` lowers it).
    let secs: f64 = std::env::var("SIMGRAD_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    group
        .warm_up_time(Duration::from_secs_f64(secs * 0.3))
        .measurement_time(Duration::from_secs_f64(secs))
        .sample_size(30);
    for n in [1i64, 100, 10_000, 1_000_000] {
        let mut x: Vec<f64> = (0..n).map(|i| 1.0 + (i % 97) as f64 * 0.31).collect();
        let mut out = vec![0.0f64; n as usize];
        let mut shape = [n];
        let mut nv = n;
        group.bench_with_input(BenchmarkId::new("raw_trampoline", n), &n, |b, &n| {
            let args = [
                x.as_mut_ptr().cast::<c_void>(),
                out.as_mut_ptr().cast::<c_void>(),
            ];
            let sizes = [n];
            // SAFETY: buffers of n elements, as the kernel reads and writes.
            b.iter(|| unsafe { raw(args.as_ptr(), sizes.as_ptr(), std::ptr::null()) });
        });
        group.bench_with_input(BenchmarkId::new("rust_kernel_call", n), &n, |b, _| {
            let shape = [n];
            let args = [
                simgrad_core::ArgRef::scalar(&nv),
                simgrad_core::ArgRef::array_in(&x, &shape),
                simgrad_core::ArgRef {
                    data: out.as_mut_ptr().cast(),
                    ..simgrad_core::ArgRef::array_in(&x, &shape)
                },
            ];
            b.iter(|| core_kernel.call(&args).unwrap());
        });
        group.bench_with_input(BenchmarkId::new("simgrad_kernel_call", n), &n, |b, _| {
            let args = [
                {
                    let mut t = f64_tensor((&mut nv as *mut i64).cast(), std::ptr::null_mut(), 0);
                    t.dtype = simgrad_dtype {
                        code: 0,
                        bits: 64,
                        lanes: 1,
                    };
                    t
                },
                f64_tensor(x.as_mut_ptr(), shape.as_mut_ptr(), 1),
                f64_tensor(out.as_mut_ptr(), shape.as_mut_ptr(), 1),
            ];
            // SAFETY: descriptors of live buffers.
            b.iter(|| unsafe { simgrad_kernel_call(kernel, args.as_ptr(), 3) });
        });
    }
    group.finish();
    // SAFETY: handles from above, freed once.
    unsafe {
        simgrad_kernel_free(kernel);
        simgrad_library_free(lib);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
