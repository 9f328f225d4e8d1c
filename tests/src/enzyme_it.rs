//! Enzyme's own integration tests (`enzyme/test/Integration/` of the Enzyme source that the
//! `diffsl` crate ships), run through simgrad's toolchain.
//!
//! The tests are read from the cargo registry at test time, never copied into this repository.
//! The source is found with `cargo metadata --manifest-path ~/.cache/simgrad/enzyme-src/Cargo.toml`
//! (the manifest `cargo xtask setup` uses to fetch Enzyme), or `$SIMGRAD_ENZYME_SRC` pointing at
//! an `Enzyme/enzyme` directory.
//!
//! Each test is a C or C++ file with `// RUN:` lines (LLVM lit) such as
//!
//! ```text
//! // RUN: %clang -std=c11 -O2 %s -S -emit-llvm -o - | %opt - %OPloadEnzyme %enzyme -S | %lli -
//! ```
//!
//! and `main` asserting the derivatives (`APPROX_EQ` from `test_utils.h` aborts on a mismatch).
//! Every applicable RUN line is run step by step with simgrad's tools: `clang-19`/`clang++-19`
//! with the line's flags → `opt-19 -load-pass-plugin=LLVMEnzyme-19.so -passes=enzyme
//! --enzyme-attributor=0` (what lit's `%OPloadEnzyme %enzyme` expands to for LLVM ≥ 16) with the
//! line's extra Enzyme flags → `lli-19 --jit-kind=mcjit` (or, without `lli`, a native executable).
//! A test passes when every line exits 0.
//!
//! Selection is by rule, and every file gets a reason when it is left out ([`classify`]):
//! tests that need the `ClangEnzyme` plugin (simgrad builds only the `opt` plugin), compile-only
//! tests (`-verify`, FileCheck: no asserts to run), OpenMP (no libomp here), MPI, Eigen or Boost
//! (not installed), and lines whose `%llvmver` conditions exclude LLVM 19.

use simgrad_build::toolchain::Toolchain;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `test/Integration` directory of the Enzyme source in the cargo registry.
pub fn integration_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("SIMGRAD_ENZYME_SRC") {
        let d = PathBuf::from(dir).join("test").join("Integration");
        return if d.is_dir() {
            Ok(d)
        } else {
            Err(format!(
                "SIMGRAD_ENZYME_SRC is set but {} does not exist",
                d.display()
            ))
        };
    }
    let home = std::env::var("HOME").map_err(|_| "HOME is not set".to_string())?;
    let manifest = PathBuf::from(home).join(".cache/simgrad/enzyme-src/Cargo.toml");
    if !manifest.is_file() {
        return Err(format!(
            "{} not found (run `cargo xtask setup`, or set SIMGRAD_ENZYME_SRC to an Enzyme/enzyme source directory)",
            manifest.display()
        ));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--offline",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let pkg = meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "diffsl"))
        .ok_or("cargo metadata lists no `diffsl` package")?;
    let crate_dir = Path::new(
        pkg["manifest_path"]
            .as_str()
            .ok_or("diffsl has no manifest_path")?,
    )
    .parent()
    .ok_or("diffsl's manifest has no parent directory")?
    .to_path_buf();
    let d = crate_dir.join("Enzyme/enzyme/test/Integration");
    if d.is_dir() {
        Ok(d)
    } else {
        Err(format!("{} does not exist", d.display()))
    }
}

/// One runnable RUN line, parsed.
#[derive(Debug, Clone)]
pub struct RunLine {
    /// The line as written (after `RUN:`).
    pub text: String,
    /// `clang++` rather than `clang`.
    pub cxx: bool,
    /// Compiler flags (substituted), without the source and `-o -`.
    pub cflags: Vec<String>,
    /// Extra `opt` flags besides loading Enzyme and `-passes=enzyme`.
    pub opt_flags: Vec<String>,
}

/// Whether a test file is run, and how.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Run these lines (every applicable one).
    Picked(Vec<RunLine>),
    /// Left out, with the reason.
    Excluded(String),
}

/// A test file of the integration suite.
#[derive(Debug, Clone)]
pub struct ItTest {
    /// Path relative to `test/Integration` (`ReverseMode/loops.c`).
    pub name: String,
    /// Absolute path.
    pub path: PathBuf,
    /// Selection.
    pub selection: Selection,
}

/// Every C/C++ test under `dir` (recursively), classified, sorted by name.
pub fn discover(dir: &Path) -> Vec<ItTest> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("c" | "cpp")) {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            ItTest {
                name,
                selection: classify(&text),
                path,
            }
        })
        .collect()
}

/// RUN lines of a test, with `\` continuations joined.
fn run_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let Some(pos) = line.find("RUN:") else {
            continue;
        };
        let body = line[pos + 4..].trim();
        if let Some(stripped) = body.strip_suffix('\\') {
            pending.push_str(stripped);
            pending.push(' ');
            continue;
        }
        pending.push_str(body);
        out.push(std::mem::take(&mut pending).trim().to_string());
    }
    out
}

/// Evaluates `[ %llvmver -ge 12 ] && [ ... ]` for LLVM 19; `None` when not understood.
fn llvm_condition(cond: &str, llvm: i64) -> Option<bool> {
    let mut all = true;
    for part in cond.split("&&") {
        let p = part.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
        let toks: Vec<&str> = p.split_whitespace().collect();
        let [lhs, op, rhs] = toks[..] else {
            return None;
        };
        if lhs != "%llvmver" {
            return None;
        }
        let n: i64 = rhs.parse().ok()?;
        all &= match op {
            "-ge" => llvm >= n,
            "-gt" => llvm > n,
            "-le" => llvm <= n,
            "-lt" => llvm < n,
            "-eq" => llvm == n,
            "-ne" => llvm != n,
            _ => return None,
        };
    }
    Some(all)
}

/// Why a single line cannot run, or the parsed line.
fn parse_line(line: &str, llvm: i64) -> Result<RunLine, &'static str> {
    let mut body = line.trim();
    if let Some(rest) = body.strip_prefix("if ") {
        let (cond, rest) = rest.split_once("; then").ok_or("unparsed shell")?;
        let inner = rest
            .trim()
            .strip_suffix("fi")
            .ok_or("unparsed shell")?
            .trim();
        let inner = inner.strip_suffix(';').unwrap_or(inner).trim();
        match llvm_condition(cond, llvm) {
            Some(true) => body = inner,
            Some(false) => return Err("its %llvmver condition excludes LLVM 19"),
            None => return Err("unparsed shell"),
        }
    }
    if body.contains("loadClangEnzyme") || body.contains("LoadClangEnzyme") {
        return Err("needs the ClangEnzyme plugin (simgrad drives Enzyme through opt and builds only LLVMEnzyme)");
    }
    if body.contains("-fopenmp") {
        return Err("needs OpenMP (libomp is not installed)");
    }
    let stages: Vec<&str> = body.split(" | ").map(str::trim).collect();
    if body.contains("&&") || body.contains(';') || body.contains('>') {
        return Err("unparsed shell");
    }
    if stages.len() != 3 || !stages[2].starts_with("%lli") {
        return Err(
            "compile-only (no `| %lli -`: checked by -verify or FileCheck, no asserts to run)",
        );
    }
    let clang: Vec<&str> = stages[0].split_whitespace().collect();
    let cxx = match clang.first() {
        Some(&"%clang") => false,
        Some(&"%clang++") => true,
        _ => return Err("unparsed shell"),
    };
    let mut cflags = Vec::new();
    let mut it = clang[1..].iter();
    while let Some(&t) = it.next() {
        match t {
            "%s" | "-S" | "-emit-llvm" => {}
            "-o" => {
                it.next();
            }
            "%O0TBAA" => {
                cflags.extend(["-O1", "-Xclang", "-disable-llvm-passes"].map(String::from))
            }
            t if t.starts_with('%') => return Err("unknown lit substitution"),
            t => cflags.push(t.to_string()),
        }
    }
    let opt: Vec<&str> = stages[1].split_whitespace().collect();
    if opt.first() != Some(&"%opt") {
        return Err("unparsed shell");
    }
    let mut opt_flags = Vec::new();
    for &t in &opt[1..] {
        match t {
            "-" | "%OPloadEnzyme" | "%loadEnzyme" | "%enzyme" | "-S" => {}
            t if t.starts_with('%') => return Err("unknown lit substitution"),
            t => opt_flags.push(t.to_string()),
        }
    }
    if stages[2].split_whitespace().collect::<Vec<_>>() != ["%lli", "-"] {
        return Err("unparsed shell");
    }
    Ok(RunLine {
        text: line.to_string(),
        cxx,
        cflags,
        opt_flags,
    })
}

fn header_missing(text: &str, needle: &str, dir: &str) -> bool {
    text.contains(needle) && !Path::new(dir).is_dir()
}

/// Decides whether a test (its source text) runs, and which of its lines.
pub fn classify(text: &str) -> Selection {
    let lines = run_lines(text);
    if lines.is_empty() {
        return Selection::Excluded("no RUN lines".into());
    }
    if text.contains("#include <mpi.h>") || text.contains("#include \"mpi.h\"") {
        return Selection::Excluded("needs MPI (not installed)".into());
    }
    if header_missing(text, "Eigen", "/usr/include/eigen3") {
        return Selection::Excluded(
            "needs the Eigen headers (not installed: /usr/include/eigen3)".into(),
        );
    }
    if header_missing(text, "boost/", "/usr/include/boost") {
        return Selection::Excluded("needs Boost (not installed: /usr/include/boost)".into());
    }
    let mut picked = Vec::new();
    let mut reasons: Vec<&'static str> = Vec::new();
    for l in &lines {
        match parse_line(l, 19) {
            Ok(r) => picked.push(r),
            Err(why) => {
                if !reasons.contains(&why) {
                    reasons.push(why)
                }
            }
        }
    }
    if picked.is_empty() {
        Selection::Excluded(reasons.join("; "))
    } else {
        Selection::Picked(picked)
    }
}

/// Runs `cmd` with a time limit; returns (status ok, combined output).
fn run_limited(mut cmd: Command, limit: Duration) -> (bool, String) {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot start {:?}: {e}", cmd.get_program())),
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return (false, format!("timed out after {} s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return (false, e.to_string()),
        }
    }
    match child.wait_with_output() {
        Ok(o) => {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            (o.status.success(), s)
        }
        Err(e) => (false, e.to_string()),
    }
}

/// The lines that explain a failure: every `Assertion Failed` / `error` line, then the last `n`
/// lines (a crash's stack dump would otherwise push the assert message out).
fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.trim_end().lines().collect();
    let mut out: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("Assertion Failed") || l.contains("error:"))
        .take(5)
        .collect();
    for l in &lines[lines.len().saturating_sub(n)..] {
        if !out.contains(l) {
            out.push(l);
        }
    }
    out.join("\n")
}

/// `lli` next to `opt`, if there is one.
pub fn lli(tc: &Toolchain) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(&tc.opt).ok()?.parent()?.to_path_buf();
    let p = dir.join("lli");
    p.is_file().then_some(p)
}

/// Runs one RUN line of `source` in `work`. `Err` carries the failing step and its output.
pub fn run_line(tc: &Toolchain, source: &Path, line: &RunLine, work: &Path) -> Result<(), String> {
    let limit = Duration::from_secs(120);
    let ll = work.join("in.ll");
    let ad = work.join("ad.ll");
    let mut cc = Command::new(if line.cxx { &tc.clangxx } else { &tc.clang });
    cc.args(&line.cflags)
        .arg(source)
        .args(["-S", "-emit-llvm", "-o"])
        .arg(&ll);
    let (ok, out) = run_limited(cc, limit);
    if !ok {
        return Err(format!("compiling failed:\n{}", tail(&out, 8)));
    }
    let mut opt = Command::new(&tc.opt);
    opt.arg(&ll)
        .arg(format!("-load-pass-plugin={}", tc.enzyme_plugin.display()))
        .arg("-passes=enzyme")
        .arg("--enzyme-attributor=0")
        .args(&line.opt_flags)
        .args(["-S", "-o"])
        .arg(&ad);
    let (ok, out) = run_limited(opt, limit);
    if !ok {
        return Err(format!("opt + Enzyme failed:\n{}", tail(&out, 8)));
    }
    let (ok, out) = match lli(tc) {
        Some(lli) => {
            let mut cmd = Command::new(lli);
            cmd.arg("--jit-kind=mcjit").arg(&ad);
            run_limited(cmd, limit)
        }
        None => {
            let exe = work.join("a.out");
            let mut cmd = Command::new(if line.cxx { &tc.clangxx } else { &tc.clang });
            cmd.arg(&ad).arg("-o").arg(&exe).arg("-lm");
            let (ok, out) = run_limited(cmd, limit);
            if !ok {
                return Err(format!("linking failed:\n{}", tail(&out, 8)));
            }
            run_limited(Command::new(&exe), limit)
        }
    };
    if !ok {
        return Err(format!(
            "the test program failed (an assert?):\n{}",
            tail(&out, 8)
        ));
    }
    Ok(())
}

/// The outcome of one test file.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Test name.
    pub name: String,
    /// Lines run.
    pub lines: usize,
    /// Failures: (line, message).
    pub failures: Vec<(String, String)>,
}

/// Runs `tests` (only picked ones) on `threads` threads; `quick` runs only each file's `-O2`
/// lines (or its first line when none is `-O2`).
pub fn run_all(
    tc: &Toolchain,
    tests: &[ItTest],
    threads: usize,
    quick: bool,
    scratch: &Path,
) -> Vec<Outcome> {
    let jobs: Vec<(usize, &ItTest, Vec<RunLine>)> = tests
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.selection {
            Selection::Picked(lines) => {
                let mut lines = lines.clone();
                if quick {
                    let o2: Vec<RunLine> = lines
                        .iter()
                        .filter(|l| l.cflags.iter().any(|f| f == "-O2"))
                        .cloned()
                        .collect();
                    lines = if o2.is_empty() {
                        lines.into_iter().take(1).collect()
                    } else {
                        o2
                    };
                }
                Some((i, t, lines))
            }
            Selection::Excluded(_) => None,
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..threads.max(1) {
            let (jobs, next, results) = (&jobs, &next, &results);
            s.spawn(move || loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some((i, t, lines)) = jobs.get(k) else {
                    break;
                };
                let work = scratch.join(format!("w{w}-{i}"));
                let _ = std::fs::create_dir_all(&work);
                let mut failures = Vec::new();
                for l in lines {
                    if let Err(e) = run_line(tc, &t.path, l, &work) {
                        failures.push((l.text.clone(), e));
                    }
                }
                let _ = std::fs::remove_dir_all(&work);
                results.lock().unwrap().push(Outcome {
                    name: t.name.clone(),
                    lines: lines.len(),
                    failures,
                });
            });
        }
    });
    let mut out = results.into_inner().unwrap();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_run_lines() {
        let l = parse_line("%clang -std=c11 %O0TBAA %s -S -emit-llvm -o - | %opt - %OPloadEnzyme %enzyme -enzyme-inline=1 -S | %lli - ", 19).unwrap();
        assert_eq!(
            l.cflags,
            ["-std=c11", "-O1", "-Xclang", "-disable-llvm-passes"]
        );
        assert_eq!(l.opt_flags, ["-enzyme-inline=1"]);
        assert!(!l.cxx);
        let l = parse_line("if [ %llvmver -ge 12 ]; then %clang++ -O2 %s -S -emit-llvm -o - | %opt - %OPloadEnzyme %enzyme -S | %lli - ; fi", 19).unwrap();
        assert!(l.cxx);
        assert_eq!(l.cflags, ["-O2"]);
        assert!(parse_line("if [ %llvmver -le 11 ]; then %clang -O2 %s -S -emit-llvm -o - | %opt - %OPloadEnzyme %enzyme -S | %lli - ; fi", 19)
            .unwrap_err()
            .contains("excludes LLVM 19"));
        assert!(parse_line(
            "%clang -O0 %s -S -emit-llvm -o - %loadClangEnzyme | %lli -",
            19
        )
        .unwrap_err()
        .contains("ClangEnzyme"));
        assert!(parse_line(
            "%clang++ -O0 %s -S -emit-llvm -o - | %opt - %OPloadEnzyme %enzyme -S",
            19
        )
        .unwrap_err()
        .contains("compile-only"));
        assert_eq!(
            llvm_condition("[ %llvmver -ne 14 ] && [ %llvmver -ne 15 ]", 19),
            Some(true)
        );
    }
}
