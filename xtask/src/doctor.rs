//! `cargo xtask doctor`: reports every tool simgrad uses, with path and version, and fails with
//! the fix when anything is missing or mismatched.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use crate::setup::{venv_dir, venv_python, ENV_VENV};
use crate::toolchain::{self, LlvmTool, Toolchain, LLVM_MAJOR};
use crate::util::{run_capture, version_line};

/// Python packages whose versions doctor reports; all are required.
pub const PYTHON_PACKAGES: &[&str] = &[
    "numpy",
    "torch",
    "jax",
    "jaxlib",
    "pytest",
    "pybind11",
    "nanobind",
    "matplotlib",
];

fn row(name: &str, version: &str, path: &str) {
    println!("  {name:<14} {version:<12} {path}");
}

/// Runs all checks; returns an error listing every problem and its fix.
pub fn run() -> Result<()> {
    let mut problems: Vec<String> = Vec::new();

    println!("LLVM tools");
    for tool in LlvmTool::ALL {
        match toolchain::find_tool(tool) {
            Ok(t) => row(&t.name, &t.version, &t.path.display().to_string()),
            Err(e) => {
                row(tool.name(), "MISSING", "");
                problems.push(e.to_string());
            }
        }
    }

    println!("Enzyme plugin");
    match Toolchain::discover() {
        Ok(tc) => {
            row(
                "plugin",
                tc.enzyme_version.as_deref().unwrap_or("?"),
                &tc.enzyme_plugin.display().to_string(),
            );
            println!(
                "  {:<14} {}",
                "found via",
                tc.enzyme_plugin_source.describe()
            );
            let built_for = match toolchain::plugin_llvm_major(&tc.enzyme_plugin) {
                Some(m) => format!("LLVM {m} (from its file name)"),
                None => "unknown from the file name".to_string(),
            };
            println!("  {:<14} {built_for}", "built for");
            println!(
                "  {:<14} yes, into opt {} (LLVM {})",
                "loads",
                tc.opt.display(),
                tc.llvm_version
            );
            println!(
                "  {:<14} {}",
                "Enzyme",
                match &tc.enzyme_version {
                    Some(v) => format!("{v} (from {})", toolchain::BUILD_INFO_FILE),
                    None => format!(
                        "version unknown (no {} beside it)",
                        toolchain::BUILD_INFO_FILE
                    ),
                }
            );
            println!("  {:<14} {}", "sha256", tc.enzyme_plugin_sha256);
            println!("  {:<14} {}", "fingerprint", tc.fingerprint());
        }
        Err(e) => {
            if let Ok((p, source)) = toolchain::find_enzyme_plugin(None, LLVM_MAJOR) {
                row("plugin", "UNUSABLE", &p.display().to_string());
                println!("  {:<14} {}", "found via", source.describe());
            } else {
                row("plugin", "MISSING", "");
            }
            problems.push(e.to_string());
        }
    }

    println!("Other tools");
    for (name, flag, package) in [
        ("gfortran", "--version", "gfortran"),
        ("cmake", "--version", "cmake"),
        ("ninja", "--version", "ninja-build"),
        ("valgrind", "--version", "valgrind"),
    ] {
        match toolchain::which(name) {
            Some(path) => {
                let v = version_line(&path, flag).unwrap_or_else(|| "?".to_string());
                row(name, short_version(&v), &path.display().to_string());
            }
            None => {
                row(name, "MISSING", "");
                problems.push(format!(
                    "{name} not found on PATH. Fix: `cargo xtask setup` (as root it installs the \
                     Debian package {package})"
                ));
            }
        }
    }

    println!("Python ({ENV_VENV} or the cache)");
    check_python(&mut problems);

    println!();
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    if problems.is_empty() {
        println!("doctor: everything found and consistent");
        return Ok(());
    }
    println!("doctor found {} problem(s):", problems.len());
    for p in &problems {
        println!("  - {p}");
    }
    bail!("doctor found {} problem(s); fixes above", problems.len())
}

/// The version number in a `--version` line: the last whitespace-separated token that starts
/// with a digit (`12.2.0` from `GNU Fortran (Debian 12.2.0-14) 12.2.0`), else what follows the
/// last `-` of the last token (`3.19.0` from `valgrind-3.19.0`), else the whole line.
fn short_version(line: &str) -> &str {
    let digit = |t: &str| t.starts_with(|c: char| c.is_ascii_digit());
    if let Some(t) = line.split_whitespace().rev().find(|t| digit(t)) {
        return t;
    }
    match line
        .split_whitespace()
        .last()
        .and_then(|t| t.rsplit_once('-'))
    {
        Some((_, v)) if digit(v) => v,
        _ => line,
    }
}

fn check_python(problems: &mut Vec<String>) {
    let python = venv_python();
    if !python.exists() {
        row("python", "MISSING", &python.display().to_string());
        problems.push(format!(
            "no Python virtual environment at {}. Fix: `cargo xtask setup` (or set {ENV_VENV} to \
             an existing venv)",
            venv_dir().display()
        ));
        return;
    }
    let v = version_line(&python, "--version").unwrap_or_else(|| "?".to_string());
    row("python", short_version(&v), &python.display().to_string());
    match python_package_versions(&python) {
        Ok(versions) => {
            for (name, version) in versions {
                match version {
                    Some(v) => row(&format!("  {name}"), &v, ""),
                    None => {
                        row(&format!("  {name}"), "MISSING", "");
                        problems.push(format!(
                            "Python package {name} is not installed in {}. Fix: `cargo xtask setup`",
                            venv_dir().display()
                        ));
                    }
                }
            }
        }
        Err(e) => problems.push(format!("cannot query Python packages: {e:#}")),
    }
}

/// Asks the interpreter for installed package versions (without importing the packages).
fn python_package_versions(python: &Path) -> Result<Vec<(String, Option<String>)>> {
    let script = format!(
        "import importlib.metadata as m\nfor n in {:?}:\n    try:\n        print(n, m.version(n))\n    \
         except m.PackageNotFoundError:\n        print(n, '-')\n",
        PYTHON_PACKAGES
    );
    let out = run_capture(Command::new(python).arg("-c").arg(script))?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, v)| (n.to_string(), (v != "-").then(|| v.to_string())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_versions() {
        assert_eq!(
            short_version("GNU Fortran (Debian 12.2.0-14) 12.2.0"),
            "12.2.0"
        );
        assert_eq!(short_version("cmake version 3.25.1"), "3.25.1");
        assert_eq!(short_version("1.11.1"), "1.11.1");
        assert_eq!(short_version("valgrind-3.19.0"), "3.19.0");
        assert_eq!(short_version("unknown"), "unknown");
    }
}
