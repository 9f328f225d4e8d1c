//! simgrad's gradient-correctness suite.
//!
//! * [`corpus`]: the conformance corpus under `tests/conformance/` (C, C++ and Fortran kernels in
//!   one spec per language) and the known failures under `tests/conformance/known-failures/`.
//! * [`gradcheck`]: the gradient checks every corpus kernel must pass: `simgrad_core::check`
//!   (JVP against central differences, VJP against JVP by the dot-product test, checksums of
//!   inputs and seeds) at several sizes and seeds, plus [`extra`]'s checks of the runtime's
//!   buffer semantics that `simgrad_core::check` does not cover.
//! * [`enzyme_it`]: Enzyme's own integration tests (`test/Integration/` of the Enzyme source in
//!   the cargo registry), compiled and run the way their `RUN:` lines say, through simgrad's
//!   toolchain.
//! * [`study`]: the pipeline study behind `docs/pipeline.md` (`cargo run -p simgrad-tests
//!   --release --bin pipeline-study`).
//!
//! Tests that need the Enzyme toolchain call [`toolchain_or_skip`]: without one they print
//! `SKIPPED: no Enzyme toolchain: <reason>` and pass, unless `SIMGRAD_REQUIRE_ENZYME=1`, which
//! turns the skip into a failure.

pub mod corpus;
pub mod enzyme_it;
pub mod extra;
pub mod gradcheck;
pub mod study;

use simgrad_build::toolchain::{enzyme_required, Toolchain};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// This crate's directory (`<root>/tests`).
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn discovered() -> &'static Result<Toolchain, String> {
    static TC: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    TC.get_or_init(|| Toolchain::discover().map_err(|e| e.to_string()))
}

/// The toolchain, or `None` after printing `SKIPPED: no Enzyme toolchain: <reason>` for `test`.
/// With `SIMGRAD_REQUIRE_ENZYME=1` a missing toolchain panics instead.
pub fn toolchain_or_skip(test: &str) -> Option<&'static Toolchain> {
    match discovered() {
        Ok(tc) => Some(tc),
        Err(reason) => {
            let reason = reason.lines().next().unwrap_or("unknown").to_string();
            if enzyme_required() {
                panic!("{test}: SIMGRAD_REQUIRE_ENZYME is set but there is no Enzyme toolchain: {reason}");
            }
            println!("SKIPPED: no Enzyme toolchain: {reason} ({test})");
            None
        }
    }
}
