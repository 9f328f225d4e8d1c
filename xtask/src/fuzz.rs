//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs the cargo-fuzz targets of `fuzz/`.
//!
//! Targets (see `fuzz/fuzz_targets/`): `manifest` (bytes → `Manifest::from_json`, with a
//! round-trip check) and `validate` (a random kernel and call → `validate_call`, with a
//! consistency check of what it accepts). Each runs for N seconds (default 60) under
//! AddressSanitizer with debug assertions, on its corpus `fuzz/corpus/<target>` (kept between
//! runs, not checked in) plus the checked-in seeds `fuzz/seeds/<target>`. A crash leaves its
//! input in `fuzz/artifacts/<target>/` and fails the task, naming the command that replays it.
//!
//! cargo-fuzz is installed with `cargo install cargo-fuzz --locked` when missing; it needs the
//! nightly toolchain. `fuzz/` is its own workspace, excluded from simgrad's.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::util::{display_cmd, fmt_duration, run_inherit, run_lines, workspace_root, Line};

/// Every fuzz target, in the order they run by default.
pub const TARGETS: [&str; 2] = ["manifest", "validate"];

/// What one target's run reports.
struct Report {
    target: String,
    runs: Option<u64>,
    took: Duration,
    crashed: bool,
}

/// Parses `cargo xtask fuzz` arguments: `--seconds N` and target names.
pub fn parse_args(args: &[&str]) -> Result<(u64, Vec<String>)> {
    let mut seconds = 60;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--seconds" => {
                let v = it.next().context("--seconds needs a number")?;
                seconds = v
                    .parse()
                    .with_context(|| format!("--seconds {v}: not a number"))?;
            }
            t if TARGETS.contains(&t) => targets.push(t.to_string()),
            other => bail!(
                "unknown fuzz argument `{other}`; the targets are {}",
                TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok((seconds, targets))
}

fn nightly_cargo() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.args(["run", "nightly", "cargo"])
        .current_dir(workspace_root())
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC");
    cmd
}

/// Installs cargo-fuzz when `cargo fuzz` does not run.
fn ensure_cargo_fuzz() -> Result<()> {
    let works = nightly_cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Ok(());
    }
    println!("    installing cargo-fuzz");
    run_inherit(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
        .context("cannot install cargo-fuzz; run `cargo install cargo-fuzz --locked`")
}

/// Runs one target for `seconds`; libFuzzer's final statistics give the executions.
fn run_target(root: &Path, target: &str, seconds: u64) -> Result<Report> {
    let corpus = root.join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    let mut cmd = nightly_cargo();
    // `-a`: debug assertions, so arithmetic overflow is a finding too.
    cmd.args(["fuzz", "run", "-a", target]).arg(&corpus);
    let seeds = root.join("fuzz/seeds").join(target);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.arg("--").args([
        format!("-max_total_time={seconds}"),
        "-print_final_stats=1".into(),
        "-timeout=10".into(),
        "-rss_limit_mb=2048".into(),
    ]);
    let dict = root.join(format!("fuzz/{target}.dict"));
    if dict.is_file() {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    println!("    $ {}", display_cmd(&cmd));
    let start = Instant::now();
    let mut runs = None;
    let mut tail: Vec<String> = Vec::new();
    let status = run_lines(
        &mut cmd,
        Duration::from_secs(seconds + 900),
        |event| match event {
            Some(Line::Out(l)) | Some(Line::Err(l)) => {
                if let Some(v) = l.strip_prefix("stat::number_of_executed_units:") {
                    runs = v.trim().parse().ok();
                }
                // libFuzzer's progress lines are many; keep the last ones for a failure report.
                if l.starts_with('#') && !l.contains("DONE") && !l.contains("INITED") {
                    tail.push(l);
                    if tail.len() > 3 {
                        tail.remove(0);
                    }
                } else {
                    println!("{l}");
                }
            }
            None => {}
        },
    )?;
    for l in &tail {
        println!("{l}");
    }
    Ok(Report {
        target: target.to_string(),
        runs,
        took: start.elapsed(),
        crashed: !status.success(),
    })
}

/// `cargo xtask fuzz`: every requested target for the requested time, then a summary.
pub fn run(args: &[&str]) -> Result<()> {
    let (seconds, targets) = parse_args(args)?;
    let root = workspace_root();
    ensure_cargo_fuzz()?;
    let mut reports = Vec::new();
    for t in &targets {
        println!("==> fuzz {t} for {seconds} s");
        reports.push(run_target(&root, t, seconds)?);
    }
    println!("\nfuzz summary");
    for r in &reports {
        println!(
            "  {:<10} {:>12} executions in {:>10}  {}",
            r.target,
            r.runs.map_or("?".into(), |n| n.to_string()),
            fmt_duration(r.took),
            if r.crashed {
                format!(
                    "FAILED: see fuzz/artifacts/{}/; replay with `cargo +nightly fuzz run -a {} <file>`",
                    r.target, r.target
                )
            } else {
                "no findings".to_string()
            }
        );
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| r.crashed)
        .map(|r| r.target.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(
            parse_args(&[]).unwrap(),
            (60, vec!["manifest".to_string(), "validate".to_string()])
        );
        assert_eq!(
            parse_args(&["--seconds", "5", "validate"]).unwrap(),
            (5, vec!["validate".to_string()])
        );
        assert!(parse_args(&["--seconds"]).is_err());
        assert!(parse_args(&["nope"]).is_err());
    }
}
