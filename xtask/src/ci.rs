//! `cargo xtask ci`: setup, then every step of the [registry](crate::steps::registry), with a
//! summary. The last line of output is exactly `N passed, N failed, N skipped`; the exit status is
//! non-zero when anything failed or a step that needs Enzyme was skipped.

use std::time::Instant;

use crate::setup;
use crate::steps::{self, Counts, Ctx, Outcome, Step};
use crate::toolchain::ENV_REQUIRE_ENZYME;
use crate::util::{fmt_duration, workspace_root};

struct Record {
    name: String,
    status: &'static str,
    took: String,
    note: String,
}

/// Runs CI; returns whether it passed. Prints the summary line last.
pub fn run() -> bool {
    run_filtered(None)
}

/// Runs CI, or with `only`, just the steps whose name contains it (without setup): for working
/// on one step. Returns whether it passed.
pub fn run_filtered(only: Option<&str>) -> bool {
    let start = Instant::now();
    // Tests that need Enzyme must fail, not skip, in CI. SIMGRAD_ENZYME_PLUGIN, when set, is
    // passed through unchanged to every step.
    std::env::set_var(ENV_REQUIRE_ENZYME, "1");
    let cx = Ctx {
        root: workspace_root(),
        python: setup::venv_python(),
    };
    let mut all = vec![Step::new("setup", |_| {
        setup::run()?;
        Ok(Outcome::Passed)
    })];
    all.extend(steps::registry());
    if let Some(pat) = only {
        all.retain(|s| s.name.contains(pat));
        if all.is_empty() {
            println!("no CI step matches `{pat}`");
            return false;
        }
    }

    let mut totals = Counts::default();
    let mut records = Vec::new();
    let n = all.len();
    for (i, step) in all.iter().enumerate() {
        println!("\n==> ci [{}/{n}] {}", i + 1, step.name);
        let t = Instant::now();
        let result = (step.run)(&cx);
        let took = fmt_duration(t.elapsed());
        let (status, note, counts) = classify(step, result);
        println!("    {}: {status} in {took}{}", step.name, suffix(&note));
        totals += counts;
        records.push(Record {
            name: step.name.clone(),
            status,
            took,
            note,
        });
    }

    println!("\nci summary ({})", fmt_duration(start.elapsed()));
    for r in &records {
        println!(
            "  {:<8} {:<58} {:>12}{}",
            r.status,
            r.name,
            r.took,
            suffix(&truncate(&r.note, 100))
        );
    }
    let ok = totals.failed == 0;
    if !ok {
        println!("ci FAILED");
    }
    println!(
        "{} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.skipped
    );
    ok
}

/// The first `max` characters of `s`, with `…` when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max).chain(['…']).collect()
    }
}

fn suffix(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!("  ({note})")
    }
}

/// Turns a step's result into a status word, a note and the counts it adds to the totals.
fn classify(step: &Step, result: anyhow::Result<Outcome>) -> (&'static str, String, Counts) {
    let one = |passed, failed, skipped| Counts {
        passed,
        failed,
        skipped,
    };
    match result {
        Ok(Outcome::Passed) => ("passed", String::new(), one(1, 0, 0)),
        Ok(Outcome::Skipped(why)) if step.needs_enzyme => (
            "FAILED",
            format!("skipped ({why}), but this step needs Enzyme and may not be skipped in ci"),
            one(0, 1, 0),
        ),
        Ok(Outcome::Skipped(why)) => ("skipped", why, one(0, 0, 1)),
        Ok(Outcome::Counted(c)) => (
            if c.failed > 0 { "FAILED" } else { "passed" },
            format!(
                "{} passed, {} failed, {} skipped",
                c.passed, c.failed, c.skipped
            ),
            c,
        ),
        Err(e) => {
            let msg = format!("{e:#}");
            println!("    error: {msg}");
            let first = msg.lines().next().unwrap_or("").to_string();
            ("FAILED", first, one(0, 1, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enzyme_steps_may_not_skip() {
        let s = Step::new("x", |_| Ok(Outcome::Passed)).needs_enzyme();
        let (status, _, c) = classify(&s, Ok(Outcome::Skipped("no plugin".into())));
        assert_eq!(status, "FAILED");
        assert_eq!(c.failed, 1);
        let s = Step::new("y", |_| Ok(Outcome::Passed));
        let (status, _, c) = classify(&s, Ok(Outcome::Skipped("n/a".into())));
        assert_eq!(status, "skipped");
        assert_eq!(c.skipped, 1);
    }

    #[test]
    fn errors_count_as_failures() {
        let s = Step::new("z", |_| Ok(Outcome::Passed));
        let (status, note, c) = classify(&s, Err(anyhow::anyhow!("boom\ndetail")));
        assert_eq!((status, note.as_str(), c.failed), ("FAILED", "boom", 1));
    }
}
