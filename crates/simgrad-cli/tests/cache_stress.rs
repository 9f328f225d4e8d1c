//! The build cache under stress, through the `simgrad` binary as separate processes:
//! 8 concurrent builders of one spec compile once and all get the same library; a builder
//! killed with SIGKILL mid-build leaves no entry that counts as built and no lock that blocks.
//! Each test uses its own cache root (`SIMGRAD_CACHE_DIR`).

use simgrad_build::toolchain::toolchain_or_skip;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn have_enzyme() -> bool {
    let Some(tc) = toolchain_or_skip() else {
        return false;
    };
    // The children use a private cache root, where no plugin lives: point them at ours.
    std::env::set_var("SIMGRAD_ENZYME_PLUGIN", tc.enzyme_plugin);
    true
}

fn spec_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("k.c"),
        "void cube(const double *x, double *y) { for (int i = 0; i < 8; i++) y[i] = x[i] * x[i] * x[i]; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("simgrad.toml"),
        "[build]\nname = \"cube\"\n[[kernel]]\nsymbol = \"cube\"\nsources = [\"k.c\"]\nargs = [\n  { name = \"x\", dtype = \"f64\", shape = [8] },\n  { name = \"y\", dtype = \"f64\", shape = [8], intent = \"out\" },\n]\n",
    )
    .unwrap();
    dir
}

fn build_cmd(spec: &Path, cache: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simgrad"));
    cmd.arg("build")
        .arg(spec)
        .env("SIMGRAD_CACHE_DIR", cache)
        .env_remove("SIMGRAD_TEST_STALL_BUILD_MS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn entries(cache: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cache.join("builds"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn eight_processes_build_once_and_load_the_same_library() {
    if !have_enzyme() {
        return;
    }
    let spec = spec_dir();
    let cache = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            build_cmd(&spec.path().join("simgrad.toml"), cache.path())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut libs = std::collections::BTreeSet::new();
    let mut compiled = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stderr}");
        libs.insert(stdout.lines().last().unwrap().to_string());
        if stderr.contains("simgrad: built ") {
            compiled += 1;
        } else {
            assert!(stderr.contains("cache hit"), "{stderr}");
        }
    }
    assert_eq!(libs.len(), 1, "{libs:?}");
    assert_eq!(compiled, 1, "exactly one process compiles");
    let lib = libs.into_iter().next().unwrap();
    simgrad_core::Library::open(&lib).unwrap();
    let e = entries(cache.path());
    assert_eq!(
        e.len(),
        2,
        "one entry and its lock, no temporary directories: {e:?}"
    );
}

#[test]
fn a_killed_build_leaves_no_entry_and_no_blocking_lock() {
    if !have_enzyme() {
        return;
    }
    let spec = spec_dir();
    let cache = tempfile::tempdir().unwrap();
    let mut c = build_cmd(&spec.path().join("simgrad.toml"), cache.path())
        .env("SIMGRAD_TEST_STALL_BUILD_MS", "60000")
        .spawn()
        .unwrap();
    // Wait until the child holds the lock and has created its temporary directory.
    let mut lines = BufReader::new(c.stderr.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("the child ended before stalling")
            .unwrap();
        if line.contains("stalling") {
            break;
        }
    }
    assert_eq!(
        entries(cache.path())
            .iter()
            .filter(|n| n.starts_with("tmp-"))
            .count(),
        1,
        "the child is mid-build"
    );
    c.kill().unwrap(); // SIGKILL
    assert!(!c.wait().unwrap().success());
    assert!(
        !entries(cache.path()).iter().any(|n| n.len() == 32),
        "nothing counts as built: {:?}",
        entries(cache.path())
    );

    let start = std::time::Instant::now();
    let out = build_cmd(&spec.path().join("simgrad.toml"), cache.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("simgrad: built "),
        "the next build compiles: {stderr}"
    );
    assert!(
        !stderr.contains("waiting for another build"),
        "the dead process's lock was released: {stderr}"
    );
    assert!(start.elapsed().as_secs() < 60);
    let lib = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    simgrad_core::Library::open(&lib).unwrap();
    assert!(
        !entries(cache.path()).iter().any(|n| n.starts_with("tmp-")),
        "left-overs are cleaned"
    );
}
