//! Enzyme's own integration tests (`test/Integration/` in the Enzyme source of the `diffsl`
//! crate in the cargo registry), compiled and run the way their RUN lines say, through simgrad's
//! toolchain: clang-19 with the line's flags → opt + LLVMEnzyme-19 `-passes=enzyme` → lli. Each
//! test's `main` asserts its derivatives (`APPROX_EQ` aborts). See `simgrad_tests::enzyme_it`
//! for the selection rules; `docs/pipeline.md` lists what is left out and why.
//!
//! By default only each file's `-O2` lines run (with and without `-enzyme-inline=1`: about a
//! quarter of the lines, the optimisation level simgrad's pipelines use; half a minute on two
//! cores). `SIMGRAD_ENZYME_IT_FULL=1` runs every line (-O0 to -O3, about four minutes).

use simgrad_tests::enzyme_it::{discover, integration_dir, run_all, run_line, RunLine, Selection};
use simgrad_tests::toolchain_or_skip;
use std::time::Instant;

fn source_or_skip() -> Option<std::path::PathBuf> {
    match integration_dir() {
        Ok(d) => Some(d),
        Err(why) => {
            if simgrad_build::toolchain::enzyme_required() {
                panic!("SIMGRAD_REQUIRE_ENZYME is set but Enzyme's integration tests are not available: {why}");
            }
            println!("SKIPPED: no Enzyme toolchain: Enzyme's source (integration tests) not found: {why}");
            None
        }
    }
}

/// At least this many of Enzyme's tests must be selected: a change in the Enzyme version or in
/// the selection rules that drops most of them should not pass silently.
const MIN_PICKED: usize = 50;

#[test]
fn enzyme_integration_tests_pass_through_our_toolchain() {
    let Some(tc) = toolchain_or_skip("Enzyme integration tests") else {
        return;
    };
    let Some(dir) = source_or_skip() else { return };
    let tests = discover(&dir);
    let picked: Vec<_> = tests
        .iter()
        .filter(|t| matches!(t.selection, Selection::Picked(_)))
        .collect();
    for t in &tests {
        if let Selection::Excluded(why) = &t.selection {
            println!("excluded {:<45} {why}", t.name);
        }
    }
    assert!(
        picked.len() >= MIN_PICKED,
        "only {} of Enzyme's integration tests selected (expected >= {MIN_PICKED})",
        picked.len()
    );
    let quick = !std::env::var("SIMGRAD_ENZYME_IT_FULL").is_ok_and(|v| v == "1");
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let scratch = std::env::temp_dir().join(format!("simgrad-enzyme-it-{}", std::process::id()));
    let start = Instant::now();
    let outcomes = run_all(tc, &tests, threads, quick, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let lines: usize = outcomes.iter().map(|o| o.lines).sum();
    let mut failures = Vec::new();
    for o in &outcomes {
        println!(
            "{:<6} {:<45} {} RUN lines",
            if o.failures.is_empty() {
                "ok"
            } else {
                "FAILED"
            },
            o.name,
            o.lines
        );
        for (line, err) in &o.failures {
            failures.push(format!(
                "{}\n  RUN: {line}\n  {}",
                o.name,
                err.replace('\n', "\n  ")
            ));
        }
    }
    println!(
        "{} of {} Enzyme integration tests selected, {lines} RUN lines in {:.0} s",
        outcomes.len(),
        tests.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The harness notices a failing assert: a test in Enzyme's style whose expected value is wrong
/// must fail, and the same test with the right value must pass.
#[test]
fn the_harness_detects_a_failing_assert() {
    let Some(tc) = toolchain_or_skip("Enzyme integration negative control") else {
        return;
    };
    let Some(dir) = source_or_skip() else { return };
    let scratch =
        std::env::temp_dir().join(format!("simgrad-enzyme-it-neg-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let src = |expected: &str| {
        format!(
            "#include \"test_utils.h\"\n\
             double __enzyme_autodiff(void *, ...);\n\
             double square(double x) {{ return x * x; }}\n\
             int main() {{\n  double d = __enzyme_autodiff((void *)square, 3.0);\n  APPROX_EQ(d, {expected}, 1e-10);\n  return 0;\n}}\n"
        )
    };
    let line = RunLine {
        text: "negative control".into(),
        cxx: false,
        cflags: vec![
            "-std=c11".into(),
            "-O2".into(),
            format!("-I{}", dir.display()),
        ],
        opt_flags: vec![],
    };
    let good = scratch.join("good.c");
    std::fs::write(&good, src("6.0")).unwrap();
    let bad = scratch.join("bad.c");
    std::fs::write(&bad, src("7.0")).unwrap();
    let ok = run_line(tc, &good, &line, &scratch);
    let err = run_line(tc, &bad, &line, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    ok.unwrap_or_else(|e| panic!("the right value fails: {e}"));
    let err = err.expect_err("a wrong expected value passes");
    assert!(err.contains("Assertion Failed"), "{err}");
}
