//! `cargo xtask`: the developer tasks of simgrad.
//!
//! ```text
//! cargo xtask setup            install or check the toolchain, the Enzyme plugin, the Python venv
//! cargo xtask doctor           report every tool with path and version; fail with the fix
//! cargo xtask demo             setup, then show the pipeline working end to end
//! cargo xtask ci               setup, then every CI step; ends with `N passed, N failed, N skipped`
//! cargo xtask codegen [--check]  generate (or check) the C header with cbindgen
//! cargo xtask smoke            only the Enzyme smoke test
//! cargo xtask pipeline-study [--render-only]  rebuild docs/pipeline.md (every corpus kernel under every pipeline)
//! cargo xtask install [PREFIX] build libsimgrad and lay out an install tree (default target/simgrad-install)
//! cargo xtask miri             the tests that need no kernel library, under Miri (nightly)
//! cargo xtask fuzz [--seconds N] [TARGET...]  the cargo-fuzz targets of fuzz/ (nightly)
//! cargo xtask bench [--quick]  speed against the alternatives → docs/benchmarks.md
//! ```

// xtask shares simgrad-build's toolchain discovery without depending on the crate, so that it
// builds even while simgrad-build does not; not every item of the module is used here.
#[allow(dead_code)]
#[path = "../../crates/simgrad-build/src/toolchain.rs"]
mod toolchain;

mod bench;
mod ci;
mod codegen;
mod demo;
mod dist;
mod doctor;
mod examples;
mod fuzz;
mod miri;
mod setup;
mod smoke;
mod steps;
mod util;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  setup              install or check LLVM 19, the Enzyme plugin and the Python venv (idempotent)
  doctor             report every tool with path and version; fail naming the fix
  demo               setup, then show the pipeline working end to end
  ci                 setup, then all CI steps; last line `N passed, N failed, N skipped`
  ci --only TEXT     only the CI steps whose name contains TEXT (no setup unless it matches)
  codegen [--check]  generate include/simgrad.h with cbindgen (--check: fail if stale)
  smoke              only the Enzyme smoke test
  pipeline-study [--render-only]
                     build the conformance corpus under every compile pipeline, check every
                     kernel, and rewrite docs/pipeline.md (about 9 minutes); --render-only
                     re-renders it from the saved results
  install [PREFIX]   build libsimgrad and the CLI, then lay out an install tree (header, libraries,
                     CMake package, pkg-config file, Fortran module; default target/simgrad-install)
  miri               simgrad-core's unit tests and the C API tests that need no kernel library,
                     under Miri (nightly; adds the miri and rust-src components when missing)
  fuzz [--seconds N] [manifest|validate]...
                     run the cargo-fuzz targets of fuzz/, N seconds each (default 60; nightly;
                     installs cargo-fuzz when missing); a crash is kept in fuzz/artifacts/
  bench [--quick] [--only NAME...]
                     measure simgrad against its baselines in the same run (interleaved) and write
                     docs/benchmarks.md and target/bench/results.json (--quick: few repetitions)

environment:
  SIMGRAD_ENZYME_PLUGIN  use this Enzyme plugin (LLVMEnzyme-19.so) instead of building one
  SIMGRAD_LLVM_DIR       LLVM installation to use (the directory containing bin/clang)
  SIMGRAD_CACHE_DIR      cache root (default ~/.cache/simgrad)
  SIMGRAD_VENV           Python virtual environment (default <cache root>/venv)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["setup"] => setup::run(),
        ["doctor"] => doctor::run(),
        ["demo"] => demo::run(),
        ["smoke"] => util::section("Enzyme smoke test", smoke::run),
        ["pipeline-study", rest @ ..] => {
            let mut cmd = std::process::Command::new(util::cargo());
            cmd.current_dir(util::workspace_root())
                .args([
                    "run",
                    "-p",
                    "simgrad-tests",
                    "--release",
                    "--bin",
                    "pipeline-study",
                    "--",
                ])
                .args(rest);
            util::run_inherit(&mut cmd)
        }
        ["install"] => examples::install_tree().map(|p| println!("installed into {}", p.display())),
        ["install", prefix] => examples::install_tree().and_then(|_| {
            let root = util::workspace_root();
            dist::install(&root, &root.join(prefix), "dev")?;
            println!("installed into {prefix}");
            Ok(())
        }),
        ["miri"] => util::section("Miri", miri::run),
        ["fuzz", rest @ ..] => fuzz::run(rest),
        ["bench", rest @ ..] => bench::run(rest),
        ["codegen"] => codegen::run(false),
        ["codegen", "--check"] => codegen::run(true),
        ["ci", "--only", pat] => {
            return if ci::run_filtered(Some(pat)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        ["ci"] => {
            return if ci::run() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        [] | ["help"] | ["-h"] | ["--help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("unknown task `{}`\n\n{USAGE}", args.join(" "));
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
