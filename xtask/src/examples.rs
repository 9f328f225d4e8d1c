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
