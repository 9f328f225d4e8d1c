//! The registry of `cargo xtask ci` steps.
//!
//! Every step is a name plus a closure returning an [`Outcome`]. To add one (an example program,
//! a cross-language test), append an entry to [`extra_steps`]:
//!
//! ```ignore
//! Step::new("examples-c: build and run", |cx| {
//!     if !cx.root.join("examples-c/CMakeLists.txt").exists() {
//!         return Ok(Outcome::Skipped("no CMake project yet".into()));
//!     }
//!     run_in(cx, "cmake", &["-S", "examples-c", "-B", "target/examples-c"])?;
//!     Ok(Outcome::Passed)
//! })
//! .needs_enzyme(),
//! ```
//!
//! A step fails by returning an error. A step that does not apply may return
//! [`Outcome::Skipped`] with the reason, except a step marked [`Step::needs_enzyme`]: CI treats
//! its skip as a failure, so a machine without Enzyme can never pass CI by skipping. Steps that
//! run a test harness return [`Outcome::Counted`] with the harness's own counts, which CI adds to
//! its totals. Every step runs with `SIMGRAD_REQUIRE_ENZYME=1` in the environment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::util::{cargo, display_cmd, run_inherit, run_lines, Line};
use crate::{codegen, smoke};

/// Counts of passed, failed and skipped items.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Skipped or ignored.
    pub skipped: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

/// What a step reports when it does not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The step passed; it counts as one passed item.
    Passed,
    /// The step does not apply here, with the reason; it counts as one skipped item (or one
    /// failed item when the step needs Enzyme).
    Skipped(String),
    /// A test harness ran; its counts replace the step's own. Any failure fails CI.
    Counted(Counts),
}

/// What every step can use.
pub struct Ctx {
    /// The workspace root; commands run here.
    pub root: PathBuf,
    /// The Python interpreter of the simgrad virtual environment.
    pub python: PathBuf,
}

/// A step's body.
pub type StepFn = Box<dyn Fn(&Ctx) -> Result<Outcome>>;

/// One CI step.
pub struct Step {
    /// Shown in the log and the summary.
    pub name: String,
    /// When true, skipping this step fails CI.
    pub needs_enzyme: bool,
    /// The body.
    pub run: StepFn,
}

impl Step {
    /// A step that does not need Enzyme.
    pub fn new(name: impl Into<String>, run: impl Fn(&Ctx) -> Result<Outcome> + 'static) -> Step {
        Step {
            name: name.into(),
            needs_enzyme: false,
            run: Box::new(run),
        }
    }

    /// Marks the step as needing Enzyme: it may not be skipped in CI.
    pub fn needs_enzyme(mut self) -> Step {
        self.needs_enzyme = true;
        self
    }
}

/// All CI steps, in order (setup runs before them).
pub fn registry() -> Vec<Step> {
    let mut steps = vec![
        Step::new("cargo fmt --all --check", |cx| {
            cargo_cmd(cx, &["fmt", "--all", "--check"])
        }),
        Step::new(
            "cargo clippy --workspace --all-targets -- -D warnings",
            |cx| {
                cargo_cmd(
                    cx,
                    &[
                        "clippy",
                        "--workspace",
                        "--all-targets",
                        "--",
                        "-D",
                        "warnings",
                    ],
                )
            },
        ),
        Step::new("cargo test --workspace", cargo_test),
        Step::new("Enzyme smoke test (C → Enzyme → .so)", |_| {
            smoke::run()?;
            Ok(Outcome::Passed)
        })
        .needs_enzyme(),
        Step::new("codegen --check (simgrad.h up to date)", |_| {
            if !codegen::config_path().is_file() {
                return Ok(Outcome::Skipped(format!(
                    "{} does not exist yet",
                    codegen::config_path().display()
                )));
            }
            codegen::run(true)?;
            Ok(Outcome::Passed)
        }),
    ];
    steps.extend(extra_steps());
    steps
}

/// Examples and cross-language tests. Append new entries here.
pub fn extra_steps() -> Vec<Step> {
    vec![
        Step::new(
            "examples-c: the seed example through simgrad.h (primal, JVP, VJP)",
            |_| {
                crate::examples::c_seed_example()?;
                Ok(Outcome::Passed)
            },
        )
        .needs_enzyme(),
        Step::new(
            "examples-fortran: module, gradcheck (gfortran, flang), C caller, pkg-config",
            |_| {
                crate::examples::fortran_examples()?;
                Ok(Outcome::Passed)
            },
        )
        .needs_enzyme(),
        Step::new("examples-fortran: inverse problem from PyTorch", |_| {
            crate::examples::fortran_inverse_problem()?;
            Ok(Outcome::Passed)
        })
        .needs_enzyme(),
        Step::new(
            "examples-cpp: LLTM PyTorch extension (pybind11 AOT/JIT, nanobind) vs pure PyTorch",
            |cx| crate::examples::lltm_tests(&cx.python),
        )
        .needs_enzyme(),
        Step::new("Python tests (pytest)", pytest),
        Step::new(
            "Miri: simgrad-core unit tests, C API tests without dlopen",
            |_| crate::miri::ci_step(),
        ),
    ]
}

/// Runs `cargo ARGS` in the workspace root.
pub fn cargo_cmd(cx: &Ctx, args: &[&str]) -> Result<Outcome> {
    run_inherit(Command::new(cargo()).current_dir(&cx.root).args(args))?;
    Ok(Outcome::Passed)
}

/// `cargo test --workspace`, with its per-test counts.
fn cargo_test(cx: &Ctx) -> Result<Outcome> {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&cx.root).args(["test", "--workspace"]);
    run_counted(&mut cmd, parse_cargo_test)
}

/// Runs pytest on the Python test directories that exist and contain tests.
fn pytest(cx: &Ctx) -> Result<Outcome> {
    let candidates = [
        "crates/simgrad-python/tests",
        "examples-python",
        "examples-fortran/tests",
        "tests/python",
    ];
    let dirs: Vec<&str> = candidates
        .into_iter()
        .filter(|d| has_python_tests(&cx.root.join(d)))
        .collect();
    if dirs.is_empty() {
        return Ok(Outcome::Skipped(format!(
            "no test_*.py files in {}",
            candidates.join(", ")
        )));
    }
    if !cx.python.exists() {
        bail!(
            "no Python at {}; run `cargo xtask setup`",
            cx.python.display()
        );
    }
    // The Python package loads libsimgrad through ctypes: build it and point the package at it.
    let lib_dir = crate::examples::build_libsimgrad()?;
    let mut cmd = Command::new(&cx.python);
    cmd.current_dir(&cx.root)
        .env("SIMGRAD_LIBRARY", lib_dir.join("libsimgrad.so"))
        .args(["-m", "pytest", "-rs", "-p", "no:cacheprovider"])
        .args(&dirs);
    run_counted(&mut cmd, parse_pytest)
}

fn has_python_tests(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            has_python_tests(&p)
        } else {
            name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
        }
    })
}

/// Runs a test harness, echoing its output, and sums the counts `parse` finds in each line. A
/// harness that fails without reporting a failed test (say, a compile error) counts one failure.
pub fn run_counted(cmd: &mut Command, parse: fn(&str) -> Option<Counts>) -> Result<Outcome> {
    println!("    $ {}", display_cmd(cmd));
    let mut counts = Counts::default();
    let status = run_lines(cmd, Duration::from_secs(3600), |event| match event {
        Some(Line::Out(l)) => {
            println!("{l}");
            if let Some(c) = parse(&l) {
                counts += c;
            }
        }
        Some(Line::Err(l)) => eprintln!("{l}"),
        None => {}
    })?;
    if !status.success() && counts.failed == 0 {
        println!(
            "    `{}` failed ({status}) without reporting a failed test",
            display_cmd(cmd)
        );
        counts.failed += 1;
    }
    Ok(Outcome::Counted(counts))
}

/// Parses `test result: ok. 5 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; ...`.
pub fn parse_cargo_test(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("test result:")?;
    let mut c = Counts::default();
    for part in rest.split(['.', ';']) {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => c.passed += n,
            "failed" => c.failed += n,
            "ignored" => c.skipped += n,
            _ => {}
        }
    }
    Some(c)
}

/// Parses pytest's summary, e.g. `==== 3 passed, 1 failed, 2 skipped in 0.52s ====`.
pub fn parse_pytest(line: &str) -> Option<Counts> {
    let t = line.trim();
    if !(t.starts_with('=') && t.ends_with('=') && t.contains(" in ")) {
        return None;
    }
    let body = t.trim_matches('=').trim();
    let body = body.rsplit_once(" in ").map(|(b, _)| b).unwrap_or(body);
    let mut c = Counts::default();
    let mut any = false;
    for part in body.split(',') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        any = true;
        match what {
            "passed" | "xpassed" => c.passed += n,
            "failed" | "error" | "errors" => c.failed += n,
            "skipped" | "xfailed" | "deselected" => c.skipped += n,
            _ => {}
        }
    }
    any.then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_test_result_lines() {
        assert_eq!(
            parse_cargo_test(
                "test result: ok. 5 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; \
                 finished in 0.01s"
            ),
            Some(Counts {
                passed: 5,
                failed: 0,
                skipped: 2
            })
        );
        assert_eq!(
            parse_cargo_test("test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured"),
            Some(Counts {
                passed: 3,
                failed: 1,
                skipped: 0
            })
        );
        assert_eq!(parse_cargo_test("running 5 tests"), None);
    }

    #[test]
    fn pytest_summary_lines() {
        assert_eq!(
            parse_pytest("===== 3 passed, 1 failed, 2 skipped, 1 error in 0.52s ====="),
            Some(Counts {
                passed: 3,
                failed: 2,
                skipped: 2
            })
        );
        assert_eq!(
            parse_pytest("============ 12 passed in 1.03s ============"),
            Some(Counts {
                passed: 12,
                failed: 0,
                skipped: 0
            })
        );
        assert_eq!(parse_pytest("===== test session starts ====="), None);
        assert_eq!(parse_pytest("tests/test_a.py ..s"), None);
    }

    #[test]
    fn counts_add() {
        let mut a = Counts {
            passed: 1,
            failed: 2,
            skipped: 3,
        };
        a += a;
        assert_eq!(
            a,
            Counts {
                passed: 2,
                failed: 4,
                skipped: 6
            }
        );
    }
}
