//! `tests/c/drive_all.c`: one C program that calls every export of libsimgrad through its
//! success path and its error paths (NULL handles and pointers, wrong dtype, rank and shape,
//! aliasing, unknown kernels and modes, missing and corrupt libraries, bad specs, a failing
//! build, a failing gradient check, a buffer that is too small, a panic), checking each status.
//!
//! * Built with `-fsanitize=address,undefined` and run with leak detection and halt-on-error; the
//!   test proves the sanitizers are really there (their symbols in the executable, and a live
//!   ASan allocator checked by the program itself) before trusting a clean run.
//! * Built without sanitizers and run once under valgrind: no errors, no definitely lost bytes.
//! * Its output, with machine-specific paths replaced, is the C table of `docs/errors.md`: a
//!   stale table fails with the command that regenerates it,
//!   `SIMGRAD_UPDATE_DOCS=1 cargo test -p simgrad-capi --test drive_all`.
//!
//! Without an Enzyme toolchain the program expects every real build to fail with
//! `SIMGRAD_ERR_TOOLCHAIN` and the docs are not compared, unless `SIMGRAD_REQUIRE_ENZYME=1`
//! (set by `cargo xtask ci`), which makes a missing toolchain, or a missing valgrind, a failure.

mod common;

use common::*;
use simgrad_build::toolchain::{enzyme_required, Toolchain};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn source() -> PathBuf {
    crate_dir().join("tests/c/drive_all.c")
}

fn docs_path() -> PathBuf {
    crate_dir().join("../../docs/errors.md")
}

/// The directory holding the `libsimgrad.so` cargo built for this test run.
fn libsimgrad_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    for dir in [deps.clone(), deps.parent().unwrap().to_path_buf()] {
        if dir.join("libsimgrad.so").exists() {
            return dir;
        }
    }
    panic!("libsimgrad.so not found next to {}", exe.display());
}

/// Whether real builds can run here; a missing toolchain fails under `SIMGRAD_REQUIRE_ENZYME`.
fn enzyme_available() -> bool {
    match Toolchain::discover() {
        Ok(_) => true,
        Err(e) if enzyme_required() => {
            panic!("SIMGRAD_REQUIRE_ENZYME is set but the toolchain is unusable: {e}")
        }
        Err(e) => {
            eprintln!("no Enzyme toolchain ({e}); drive_all expects SIMGRAD_ERR_TOOLCHAIN builds");
            false
        }
    }
}

/// Compiles drive_all.c with `-Wall -Wextra -Werror`, with or without the sanitizers.
fn compile(sanitize: bool) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("drive_all");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(if sanitize {
        "drive_all_asan"
    } else {
        "drive_all"
    });
    let lib_dir = libsimgrad_dir();
    let mut cmd = Command::new(c_compiler());
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g"]);
    if sanitize {
        cmd.args([
            "-O1",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
        ]);
    } else {
        cmd.arg("-O0");
    }
    let o = cmd
        .arg("-I")
        .arg(crate_dir().join("../../include"))
        .arg(source())
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lsimgrad")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "compiling drive_all.c failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    exe
}

/// The arguments of one run: fixture libraries, a fresh work directory, the shared build cache.
struct Dirs {
    fixtures: PathBuf,
    work: tempfile::TempDir,
    cache: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("drive_all/cache");
        std::fs::create_dir_all(&cache).unwrap();
        Dirs {
            fixtures: fixture().dir.clone(),
            work: tempfile::tempdir().unwrap(),
            cache,
        }
    }

    fn args(&self, enzyme: bool) -> Vec<String> {
        let mut a = vec![
            self.fixtures.display().to_string(),
            self.work.path().display().to_string(),
            self.cache.display().to_string(),
        ];
        if !enzyme {
            a.push("--no-enzyme".into());
        }
        a
    }

    /// Replaces the paths of this run by placeholders, so runs on any machine print the same.
    fn normalize(&self, line: &str) -> String {
        let mut s = line
            .replace(&self.cache.display().to_string(), "$CACHE")
            .replace(&self.work.path().display().to_string(), "$WORK")
            .replace(&self.fixtures.display().to_string(), "$FIXTURES");
        // Build errors carry the tool's whole output, which names temporary files: keep the
        // first line.
        if let Some(i) = s.find("\\n") {
            s.truncate(i);
            s.push_str(" …");
        }
        // Cache entries are named by a hash of the toolchain and the sources.
        while let Some(i) = s.find("/builds/") {
            let start = i + "/builds/".len();
            let len = s[start..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .count();
            if len < 16 {
                break;
            }
            s.replace_range(start..start + len, "$KEY");
        }
        // The list of pipelines grows with simgrad-build; docs/pipeline.md has it.
        if let Some(i) = s.find("the pipelines are: ") {
            s.truncate(i + "the pipelines are: ".len());
            s.push_str("O2, … (see docs/pipeline.md)");
        }
        // The path length, and so the size `simgrad_build_path` asks for, depends on the cache
        // directory.
        for (marker, replacement) in [("needs ", "$N"), ("`buf_len` is ", "$N - 1")] {
            if let Some(i) = s.find(marker) {
                let start = i + marker.len();
                let len = s[start..].chars().take_while(char::is_ascii_digit).count();
                if len > 0 && &s[start..start + len] != "0" {
                    s.replace_range(start..start + len, replacement);
                }
            }
        }
        s
    }
}

/// One row of drive_all's output.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    case: String,
    status: String,
    message: String,
}

fn rows(dirs: &Dirs, stdout: &str) -> Vec<Row> {
    stdout
        .lines()
        .map(|l| {
            let l = dirs.normalize(l);
            let mut parts = l.splitn(3, " | ");
            let (Some(case), Some(status), Some(message)) =
                (parts.next(), parts.next(), parts.next())
            else {
                panic!("drive_all printed a line that is not `case | status | message`: {l:?}");
            };
            Row {
                case: case.to_string(),
                status: status.to_string(),
                message: message.trim_end().to_string(),
            }
        })
        .collect()
}

fn run(cmd: &mut Command) -> Output {
    // No backtrace for the deliberate panic of `simgrad__test_panic`: its symbolizer's caches
    // would only clutter the leak reports.
    cmd.env("RUST_BACKTRACE", "0").output().unwrap()
}

fn describe(what: &str, o: &Output) -> String {
    format!(
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The markdown table of `rows`, between the markers of docs/errors.md.
fn table(rows: &[Row]) -> String {
    let mut t = String::from("| case | status | message |\n| --- | --- | --- |\n");
    for r in rows {
        let (func, what) = r.case.split_once(": ").unwrap_or((&r.case, ""));
        let status = if r.status == "-" {
            "(a value)".to_string()
        } else {
            format!("`{}`", r.status)
        };
        let message = if r.message.is_empty() {
            String::new()
        } else if r.status == "-" {
            format!("returns {}", r.message)
        } else {
            r.message.clone()
        };
        t.push_str(&format!("| `{func}`: {what} | {status} | {message} |\n"));
    }
    t
}

const BEGIN: &str = "<!-- BEGIN drive_all.c table: generated by crates/simgrad-capi/tests/drive_all.rs, do not edit; regenerate with `SIMGRAD_UPDATE_DOCS=1 cargo test -p simgrad-capi --test drive_all` -->";
const END: &str = "<!-- END drive_all.c table -->";

/// The generated part of docs/errors.md: (text before, table, text after).
fn docs_table() -> (String, String, String) {
    let text = std::fs::read_to_string(docs_path()).unwrap();
    let b = text
        .find(BEGIN)
        .unwrap_or_else(|| panic!("docs/errors.md lacks the marker {BEGIN}"));
    let e = text
        .find(END)
        .unwrap_or_else(|| panic!("docs/errors.md lacks the marker {END}"));
    let start = b + BEGIN.len() + 1;
    (
        text[..start].to_string(),
        text[start..e].to_string(),
        text[e..].to_string(),
    )
}

/// Compares the table of `rows` with docs/errors.md, or writes it under `SIMGRAD_UPDATE_DOCS=1`.
fn check_docs(rows: &[Row], update: bool) {
    let (before, checked_in, after) = docs_table();
    let fresh = table(rows);
    if fresh == checked_in {
        return;
    }
    if update {
        std::fs::write(docs_path(), format!("{before}{fresh}{after}")).unwrap();
        eprintln!("wrote the C table of {}", docs_path().display());
        return;
    }
    let old: Vec<&str> = checked_in.lines().collect();
    let new: Vec<&str> = fresh.lines().collect();
    let first = old
        .iter()
        .zip(&new)
        .position(|(a, b)| a != b)
        .unwrap_or(old.len().min(new.len()));
    panic!(
        "the C table of docs/errors.md is stale (first difference at table line {}):\n  docs: {}\n  now:  {}\nregenerate it with `SIMGRAD_UPDATE_DOCS=1 cargo test -p simgrad-capi --test drive_all`",
        first + 1,
        old.get(first).unwrap_or(&"(nothing)"),
        new.get(first).unwrap_or(&"(nothing)")
    );
}

fn update_docs() -> bool {
    std::env::var("SIMGRAD_UPDATE_DOCS").is_ok_and(|v| v == "1")
}

/// Every status code must come up at least once when the real pipeline is there.
fn check_every_status_is_reached(rows: &[Row]) {
    let statuses = (0..19u32).map(|i| {
        // SAFETY: never NULL, static.
        unsafe { std::ffi::CStr::from_ptr(simgrad::simgrad_status_name(i)) }
            .to_str()
            .unwrap()
            .to_string()
    });
    let missing: Vec<String> = statuses
        .filter(|s| !rows.iter().any(|r| &r.status == s))
        .collect();
    assert!(missing.is_empty(), "no drive_all case returns {missing:?}");
}

#[test]
fn drive_all_is_clean_under_asan_and_ubsan_and_matches_docs_errors_md() {
    let enzyme = enzyme_available();
    let exe = compile(true);

    // The sanitizer runtimes are linked in (statically by clang, or as libasan/libubsan by gcc):
    // their entry points are named in the executable.
    let nm = Command::new("nm").arg(&exe).output().expect("run nm");
    assert!(nm.status.success(), "{}", describe("nm", &nm));
    let symbols = String::from_utf8_lossy(&nm.stdout);
    for needle in [
        "__asan_init",
        "__asan_address_is_poisoned",
        "__ubsan_handle_",
    ] {
        assert!(
            symbols.contains(needle),
            "{} does not reference `{needle}`: the sanitizer runtime is not linked",
            exe.display()
        );
    }

    let dirs = Dirs::new();
    let o = run(Command::new(&exe)
        .args(dirs.args(enzyme))
        // `--require-sanitizers`: the program exits 3 unless ASan's allocator is live in it.
        .arg("--require-sanitizers")
        .env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "{}",
        describe("drive_all (ASan + UBSan)", &o)
    );
    for needle in [
        "ERROR: AddressSanitizer",
        "ERROR: LeakSanitizer",
        "runtime error:",
    ] {
        assert!(!stderr.contains(needle), "{}", describe("drive_all", &o));
    }
    let rows = rows(&dirs, &String::from_utf8_lossy(&o.stdout));
    assert!(rows.len() >= 140, "only {} cases ran", rows.len());
    if enzyme {
        check_every_status_is_reached(&rows);
        check_docs(&rows, update_docs());
    }
}

#[test]
fn drive_all_is_clean_under_valgrind() {
    let enzyme = enzyme_available();
    let valgrind = Command::new("valgrind").arg("--version").output();
    if !valgrind.is_ok_and(|o| o.status.success()) {
        if enzyme_required() {
            panic!(
                "SIMGRAD_REQUIRE_ENZYME is set but valgrind is not installed \
                 (`cargo xtask setup` installs it)"
            );
        }
        eprintln!("valgrind is not installed; skipping the valgrind run of drive_all");
        return;
    }
    let exe = compile(false);
    let dirs = Dirs::new();
    let log = dirs.work.path().join("valgrind.log");
    let o = run(Command::new("valgrind")
        .args([
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ])
        .arg(format!("--log-file={}", log.display()))
        .arg(&exe)
        .args(dirs.args(enzyme)));
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        o.status.success(),
        "{}\nvalgrind:\n{report}",
        describe("drive_all under valgrind", &o)
    );
    assert!(
        report.contains("ERROR SUMMARY: 0 errors"),
        "valgrind found errors:\n{report}"
    );
    assert!(
        report.contains("definitely lost: 0 bytes")
            || report.contains("All heap blocks were freed"),
        "valgrind found definitely lost bytes:\n{report}"
    );
    let rows = rows(&dirs, &String::from_utf8_lossy(&o.stdout));
    assert!(rows.len() >= 140, "only {} cases ran", rows.len());
    // The same program without sanitizers prints the same table (when it is not being rewritten
    // by the other test).
    if enzyme && !update_docs() {
        check_docs(&rows, false);
    }
}

/// The names of every `extern "C"` function of the crate.
fn exports() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(crate_dir().join("src")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let t = line.trim_start();
            for prefix in ["pub unsafe extern \"C\" fn ", "pub extern \"C\" fn "] {
                if let Some(rest) = t.strip_prefix(prefix) {
                    names.push(rest.split('(').next().unwrap().to_string());
                }
            }
        }
    }
    names.sort();
    names
}

/// Whether the C source calls `name` directly (`name(`) or through its `CASE(name, ...)` and
/// `VALUE(name, ...)` macros.
fn calls(c: &str, name: &str) -> bool {
    c.match_indices(name).any(|(i, _)| {
        let before = c[..i].chars().next_back();
        let after = c[i + name.len()..].chars().next();
        let whole = !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == '_');
        let called = after == Some('(') || c[..i].ends_with("CASE(") || c[..i].ends_with("VALUE(");
        whole && called
    })
}

#[test]
fn drive_all_calls_every_export() {
    let c = std::fs::read_to_string(source()).unwrap();
    let exports = exports();
    assert!(exports.len() >= 20, "found only {exports:?}");
    let missing: Vec<&String> = exports.iter().filter(|name| !calls(&c, name)).collect();
    assert!(
        missing.is_empty(),
        "tests/c/drive_all.c never calls {missing:?}"
    );
}

#[test]
fn docs_errors_md_lists_every_status_with_its_number() {
    let docs = std::fs::read_to_string(docs_path()).unwrap();
    for i in 0..19u32 {
        // SAFETY: never NULL, static.
        let name = unsafe { std::ffi::CStr::from_ptr(simgrad::simgrad_status_name(i)) }
            .to_str()
            .unwrap();
        let row = format!("| {i} | `{name}` |");
        assert!(docs.contains(&row), "docs/errors.md lacks the row `{row}`");
    }
}
