//! `cargo xtask miri`: the tests that need no kernel library, run under Miri.
//!
//! Miri interprets the code and stops at undefined behaviour: an out-of-bounds or dangling read
//! of a caller's `shape`, `strides` or `data`, a misaligned pointer, a data race, a leak. What it
//! runs:
//!
//! * `simgrad-core`'s unit tests (manifests, dims, validation on hand-made descriptors);
//! * `simgrad-capi`'s unit tests (status names, the last error, the pointer helpers, descriptor
//!   conversion) and `tests/exports_without_dlopen.rs` (every export on its NULL-handle, bad-string
//!   and bad-option paths, and the panic boundary).
//!
//! Miri cannot `dlopen` a kernel library, spawn a compiler or (with isolation) read files, so the
//! tests that do stay in plain `cargo test`. Miri needs the nightly toolchain with the `miri` and
//! `rust-src` components; they are added with rustup when missing.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::steps::{parse_cargo_test, run_counted, Counts, Outcome};
use crate::util::{fmt_duration, run_capture, run_inherit, workspace_root};

/// The toolchain Miri runs on.
const TOOLCHAIN: &str = "nightly";

/// The Miri runs, as `cargo miri test` arguments.
pub const RUNS: [&[&str]; 2] = [
    &["-p", "simgrad-core", "--lib"],
    &[
        "-p",
        "simgrad-capi",
        "--lib",
        "--test",
        "exports_without_dlopen",
    ],
];

/// Tests left out under Miri, which interprets code thousands of times slower than it runs:
/// randomized tests of tens of thousands of iterations would take hours. They run natively in
/// `cargo test`; one that scales its iterations down under `cfg!(miri)` can leave this list.
const TOO_SLOW_FOR_MIRI: [&str; 0] = [];

/// `cargo miri test ARGS -- --skip ...` for one run.
fn miri_test(args: &[&str]) -> Command {
    let mut cmd = nightly_cargo();
    cmd.args(["miri", "test"]).args(args).arg("--");
    for t in TOO_SLOW_FOR_MIRI {
        cmd.args(["--skip", t]);
    }
    cmd
}

/// `cargo` of the nightly toolchain, with the variables of the outer cargo removed so that they
/// do not pin the stable toolchain.
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", TOOLCHAIN, "cargo"])
        .current_dir(workspace_root())
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC");
    cmd
}

/// Makes sure the nightly toolchain has `miri` and `rust-src`, adding them when missing.
pub fn ensure_miri() -> Result<()> {
    let installed = run_capture(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        TOOLCHAIN,
    ]))
    .unwrap_or_default();
    let has = |c: &str| installed.lines().any(|l| l.starts_with(c));
    if !(has("miri") && has("rust-src")) {
        println!("    adding miri and rust-src to the {TOOLCHAIN} toolchain");
        let added = run_inherit(Command::new("rustup").args([
            "toolchain",
            "install",
            TOOLCHAIN,
            "--profile",
            "minimal",
            "--component",
            "miri,rust-src",
        ]));
        added.with_context(|| {
            format!("cannot install Miri; run `rustup component add miri rust-src --toolchain {TOOLCHAIN}`")
        })?;
    }
    // Builds Miri's sysroot once (cached under ~/.cache/miri); quiet when it is there already.
    run_inherit(nightly_cargo().args(["miri", "setup"])).context("cargo miri setup")
}

/// `cargo xtask miri`: every run, with the time each took.
pub fn run() -> Result<()> {
    let start = Instant::now();
    ensure_miri()?;
    let mut totals = Counts::default();
    for args in RUNS {
        let t = Instant::now();
        let Outcome::Counted(c) = run_counted(&mut miri_test(args), parse_cargo_test)? else {
            unreachable!("run_counted always counts");
        };
        println!(
            "    cargo miri test {}: {} passed, {} failed in {}",
            args.join(" "),
            c.passed,
            c.failed,
            fmt_duration(t.elapsed())
        );
        totals += c;
    }
    println!(
        "miri: {} passed, {} failed in {}",
        totals.passed,
        totals.failed,
        fmt_duration(start.elapsed())
    );
    if totals.failed > 0 {
        bail!("{} tests failed under Miri", totals.failed);
    }
    Ok(())
}

/// The CI step: like [`run`], but skipped (with the reason) where Miri cannot be installed, since
/// only rustup's own servers have it.
pub fn ci_step() -> Result<Outcome> {
    if let Err(e) = ensure_miri() {
        return Ok(Outcome::Skipped(format!("{e:#}")));
    }
    let mut totals = Counts::default();
    for args in RUNS {
        if let Outcome::Counted(c) = run_counted(&mut miri_test(args), parse_cargo_test)? {
            totals += c;
        }
    }
    Ok(Outcome::Counted(totals))
}
