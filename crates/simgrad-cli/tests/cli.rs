//! The `simgrad` command end to end: build, inspect, check (on real Enzyme builds and on a
//! hand-broken external library), and one-line errors.

use simgrad_build::toolchain::toolchain_or_skip;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn simgrad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simgrad"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn have_enzyme() -> bool {
    toolchain_or_skip().is_some()
}

fn c_compiler() -> &'static str {
    if Command::new("clang-19").arg("--version").output().is_ok() {
        "clang-19"
    } else {
        "cc"
    }
}

#[test]
fn build_inspect_and_check_the_examples() {
    if !have_enzyme() {
        return;
    }
    let spec = repo().join("examples-c/kernels/simgrad.toml");
    let out = simgrad(&["build", "--quiet", spec.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lib = stdout.lines().last().unwrap().to_string();
    assert!(
        lib.ends_with("libexamples.so") && Path::new(&lib).exists(),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = simgrad(&[
        "build",
        "--quiet",
        "-o",
        dir.path().to_str().unwrap(),
        spec.to_str().unwrap(),
    ]);
    let copied = text(&out).0.lines().last().unwrap().to_string();
    assert_eq!(Path::new(&copied), dir.path().join("libexamples.so"));

    let out = simgrad(&["inspect", &lib]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    for k in ["seed", "axpy", "softmax_energy", "heat"] {
        assert!(stdout.contains(&format!("kernel {k} ")), "{stdout}");
    }
    let out = simgrad(&["inspect", "--json", &lib]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kernels"].as_array().unwrap().len(), 4);
    assert_eq!(json["kernels"][3]["order"], "F");

    let out = simgrad(&["check", &lib]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("8 checks, 0 failed"), "{stdout}");
    let out = simgrad(&[
        "check", "--kernel", "heat", "--size", "20", "--seed", "3", &copied,
    ]);
    assert!(out.status.success());
    assert!(text(&out).0.contains("2 checks, 0 failed"));
}

#[test]
fn check_fails_on_hand_broken_derivatives_loaded_through_an_external_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libbroken.so");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let status = Command::new(c_compiler())
        .args(["-shared", "-fPIC", "-O1"])
        .arg(fixtures.join("broken.c"))
        .arg("-o")
        .arg(&lib)
        .arg("-lm")
        .status()
        .unwrap();
    assert!(status.success());
    let manifest = fixtures.join("broken.json");
    let out = simgrad(&[
        "check",
        "--manifest",
        manifest.to_str().unwrap(),
        lib.to_str().unwrap(),
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = |k: &str, t: &str| {
        stdout
            .lines()
            .find(|l| l.contains(k) && l.contains(t))
            .unwrap_or_else(|| panic!("{stdout}"))
            .to_string()
    };
    assert!(
        line("sine", "jvp vs central FD").starts_with("ok"),
        "{stdout}"
    );
    assert!(line("sine", "vjp vs jvp").starts_with("FAILED"), "{stdout}");
    assert!(
        line("cube", "jvp vs central FD").starts_with("FAILED"),
        "{stdout}"
    );
    assert!(stdout.contains("3 checks, 2 failed"), "{stdout}");
    // Without the manifest the library is refused with a pointer to the option.
    let out = simgrad(&["inspect", lib.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("exports no `simgrad_manifest`") && stderr.contains("external manifest"),
        "{stderr}"
    );
}

#[test]
fn errors_are_one_clear_line() {
    let out = simgrad(&["build", "/nonexistent/simgrad.toml"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr
            .starts_with("simgrad: error: spec `/nonexistent/simgrad.toml`: cannot read the spec"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace") && !stderr.contains("panicked"));

    let out = simgrad(&["inspect", "/nonexistent/lib.so"]);
    assert!(text(&out)
        .1
        .contains("cannot open library `/nonexistent/lib.so`: no such file"));
    let out = simgrad(&["frobnicate"]);
    assert!(text(&out).1.contains("unknown command `frobnicate`"));
    let out = simgrad(&["check"]);
    assert!(text(&out).1.contains("missing LIB"));
    let out = simgrad(&["check", "--size"]);
    assert!(text(&out).1.contains("`--size` needs a value"));
    let out = simgrad(&["--help"]);
    assert!(out.status.success() && text(&out).0.contains("USAGE"));
}

#[test]
fn compiler_errors_carry_the_tools_message_and_command() {
    if !have_enzyme() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.c"),
        "void f(double *x) { x[0] = undeclared_thing; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("simgrad.toml"),
        "[[kernel]]\nsymbol = \"f\"\nsources = [\"bad.c\"]\nargs = [{ name = \"x\", dtype = \"f64\", shape = [1], intent = \"inout\" }]\n",
    )
    .unwrap();
    let out = simgrad(&[
        "build",
        "--quiet",
        dir.path().join("simgrad.toml").to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("clang failed"), "{stderr}");
    assert!(stderr.contains("undeclared_thing"), "{stderr}");
    assert!(
        stderr.contains("command: ") && stderr.contains("bad.c"),
        "{stderr}"
    );

    std::fs::write(dir.path().join("simgrad.toml"), "[[kernel]\nsymbol = 1\n").unwrap();
    let out = simgrad(&["build", dir.path().join("simgrad.toml").to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("simgrad.toml") && stderr.contains("TOML parse error"),
        "{stderr}"
    );
}
