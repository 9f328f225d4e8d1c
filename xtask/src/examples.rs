//! The example programs, as CI steps and demo steps.
//!
//! Each function builds what it needs (libsimgrad through cargo, the example through the C
//! compiler) and runs it, failing when the program fails.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::util::{cargo, run_inherit, workspace_root};

/// Builds `libsimgrad` (debug) and returns the directory holding it.
pub fn build_libsimgrad() -> Result<PathBuf> {
    let root = workspace_root();
    run_inherit(Command::new(cargo()).current_dir(&root).args([
        "build",
        "--quiet",
        "-p",
        "simgrad-capi",
    ]))
    .context("building libsimgrad")?;
    Ok(root.join("target/debug"))
}

/// The C compiler used for examples: clang-19 (installed by setup).
fn cc() -> &'static str {
    "clang-19"
}

/// Compiles `examples-c/seed_example.c` against `include/simgrad.h` and `libsimgrad.so` with
/// `-Wall -Wextra -Werror`, and runs it on the example spec: primal, JVP and VJP of the classic
/// seed kernel next to the analytic derivative.
pub fn c_seed_example() -> Result<()> {
    let root = workspace_root();
    let lib_dir = build_libsimgrad()?;
    let out_dir = root.join("target/examples-c");
    std::fs::create_dir_all(&out_dir)?;
    let exe = out_dir.join("seed_example");
    run_inherit(
        Command::new(cc())
            .current_dir(&root)
            .args([
                "-std=c11",
                "-O1",
                "-g",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-Iinclude",
                "examples-c/seed_example.c",
                "-o",
            ])
            .arg(&exe)
            .arg(format!("-L{}", lib_dir.display()))
            .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
            .args(["-lsimgrad", "-lm"]),
    )
    .context("compiling examples-c/seed_example.c")?;
    run_inherit(
        Command::new(&exe)
            .current_dir(&root)
            .arg("examples-c/kernels/simgrad.toml"),
    )
    .context("running the C seed example")
}

/// Runs `cmd` with the simgrad venv's Python.
fn python() -> Command {
    Command::new(crate::setup::venv_python())
}

/// Builds libsimgrad and the `simgrad` CLI, lays out an install tree in
/// `target/simgrad-install` (header, libraries, CMake package, pkg-config file, Fortran module
/// source) and returns its path.
pub fn install_tree() -> Result<PathBuf> {
    let root = workspace_root();
    run_inherit(Command::new(cargo()).current_dir(&root).args([
        "build",
        "--quiet",
        "-p",
        "simgrad-capi",
        "-p",
        "simgrad-cli",
    ]))
    .context("building libsimgrad and the simgrad CLI")?;
    let prefix = root.join("target/simgrad-install");
    crate::dist::install(&root, &prefix, "dev")?;
    Ok(prefix)
}

/// Builds a spec with the `simgrad` CLI and returns the library path (its last stdout line).
pub fn build_spec(spec: &str) -> Result<String> {
    let root = workspace_root();
    let out = Command::new(root.join("target/debug/simgrad"))
        .current_dir(&root)
        .args(["build", "--quiet", spec])
        .output()
        .context("running simgrad build")?;
    if !out.status.success() {
        anyhow::bail!(
            "simgrad build {spec} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(stdout.lines().last().unwrap_or_default().to_string())
}

/// The Fortran examples: the `simgrad` module and a gradient-checking Fortran program built with
/// gfortran and with flang through `find_package(simgrad)` (ctest runs them, and the same kernel
/// from C), then the pkg-config build with gfortran.
pub fn fortran_examples() -> Result<()> {
    let root = workspace_root();
    let prefix = install_tree()?;
    let lib = build_spec("examples-fortran/diffusion/simgrad.toml")?;
    for fc in ["gfortran", "flang-new-19"] {
        let build = root.join(format!("target/examples-fortran/{fc}"));
        run_inherit(
            Command::new("cmake")
                .current_dir(&root)
                .args(["-S", "examples-fortran", "-B"])
                .arg(&build)
                .args(["-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release"])
                .arg(format!("-DCMAKE_Fortran_COMPILER={fc}"))
                .arg(format!(
                    "-Dsimgrad_DIR={}",
                    prefix.join("lib/cmake/simgrad").display()
                ))
                .arg(format!("-DSIMGRAD_KERNEL_LIBRARY={lib}")),
        )
        .with_context(|| format!("configuring examples-fortran with {fc}"))?;
        run_inherit(Command::new("cmake").arg("--build").arg(&build))
            .with_context(|| format!("building examples-fortran with {fc}"))?;
        run_inherit(
            Command::new("ctest")
                .arg("--test-dir")
                .arg(&build)
                .arg("--output-on-failure"),
        )
        .with_context(|| format!("running the Fortran examples built with {fc}"))?;
    }
    run_inherit(
        Command::new("make")
            .current_dir(&root)
            .args(["-C", "examples-fortran"])
            .arg(format!(
                "PKG_CONFIG_PATH={}",
                prefix.join("lib/pkgconfig").display()
            ))
            .arg(format!(
                "BUILD={}",
                root.join("target/examples-fortran/make-gfortran").display()
            ))
            .args(["FC=gfortran", &format!("LIB={lib}"), "check"]),
    )
    .context("the pkg-config build of the Fortran examples")
}

/// The inverse problem: recover the diffusion coefficient field of the Fortran solver from noisy
/// observations with PyTorch's L-BFGS, gradients from the Enzyme VJP; writes a PNG.
pub fn fortran_inverse_problem() -> Result<()> {
    let root = workspace_root();
    install_tree()?;
    let lib = build_spec("examples-fortran/diffusion/simgrad.toml")?;
    let png = root.join("target/examples-fortran/inverse_problem.png");
    run_inherit(
        python()
            .current_dir(&root)
            .env("SIMGRAD_LIBRARY", root.join("target/debug/libsimgrad.so"))
            .arg("examples-fortran/inverse_problem.py")
            .arg(&lib)
            .arg("--out")
            .arg(&png),
    )
    .context("the inverse problem")?;
    println!("plot written to {}", png.display());
    Ok(())
}

/// The Python part of the demo: the classic ctypes example done with simgrad (forward mode of
/// the 100-element seed kernel), then a PyTorch training loop with the compiled simulation
/// inside the model (gradients from Enzyme's reverse mode).
pub fn python_demo() -> Result<()> {
    let root = workspace_root();
    let lib_dir = build_libsimgrad()?;
    for script in [
        "examples-python/seed_forward_mode.py",
        "examples-python/torch_fit_diffusivity.py",
    ] {
        println!("\n--- {script}");
        run_inherit(
            python()
                .current_dir(&root)
                .env("SIMGRAD_LIBRARY", lib_dir.join("libsimgrad.so"))
                .arg(script),
        )
        .with_context(|| format!("running {script}"))?;
    }
    Ok(())
}

/// The LLTM cell as a PyTorch C++ extension whose backward is Enzyme's: its pytest suite
/// (outputs and every gradient against the pure-PyTorch LLTM in float64 and float32, gradcheck,
/// the ahead-of-time, just-in-time and nanobind builds agreeing). Returns pytest's counts.
pub fn lltm_tests(python: &std::path::Path) -> Result<crate::steps::Outcome> {
    let root = workspace_root();
    build_libsimgrad()?;
    let mut cmd = Command::new(python);
    cmd.current_dir(root.join("examples-cpp/lltm"))
        .env("SIMGRAD_LIB_DIR", root.join("target/debug"))
        .args(["-m", "pytest", "-rs"]);
    crate::steps::run_counted(&mut cmd, crate::steps::parse_pytest)
}

/// The LLTM demo: a few training steps on random data, the loss printed as it falls.
pub fn lltm_demo() -> Result<()> {
    let root = workspace_root();
    build_libsimgrad()?;
    run_inherit(
        python()
            .current_dir(&root)
            .env("SIMGRAD_LIB_DIR", root.join("target/debug"))
            .arg("examples-cpp/lltm/train_demo.py"),
    )
    .context("the LLTM training demo")
}
