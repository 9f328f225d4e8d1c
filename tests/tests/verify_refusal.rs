//! `--verify` refuses a library whose derivatives are silently wrong.
//!
//! `tests/verify/rk2_three` runs the corpus's RK2 stepper on a three-species system. Under the
//! `O2` pipeline (LLVM's loop vectoriser before Enzyme) its VJP is wrong with no diagnostic from
//! any tool: the vectorised loop bodies handle four elements per iteration and never run for
//! n = 3, and Enzyme's reverse pass of the remainder loops is wrong. Under the default pipeline
//! (no loop vectorisation before Enzyme) it is right. A verified build under `O2` must be
//! refused with `BuildError::Verify` naming the kernel and the mode, publish nothing to the
//! cache, while the default pipeline builds and verifies it.

use simgrad_build::pipeline::DEFAULT_PIPELINE;
use simgrad_build::{build_spec_file, BuildError, BuildOptions};
use simgrad_tests::{tests_dir, toolchain_or_skip};
use std::path::{Path, PathBuf};

const WRONG_PIPELINE: &str = "O2";

fn temp_cache(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("simgrad-verify-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Published entries and build directories under `<cache>/builds` (lock files aside).
fn entries(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache.join("builds"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn verify_refuses_a_silently_wrong_library_and_publishes_nothing() {
    if toolchain_or_skip("verify refusal").is_none() {
        return;
    }
    assert_ne!(
        DEFAULT_PIPELINE, WRONG_PIPELINE,
        "this test needs a default pipeline other than {WRONG_PIPELINE}"
    );
    let spec = tests_dir().join("verify/rk2_three/simgrad.toml");

    // Without --verify the wrong library builds silently (and would be published): its key.
    let unverified = temp_cache("unverified");
    let out = build_spec_file(
        &spec,
        &BuildOptions {
            pipeline: Some(WRONG_PIPELINE.into()),
            cache_dir: Some(unverified.clone()),
            quiet: true,
            ..BuildOptions::default()
        },
    )
    .expect("the O2 build itself succeeds: the wrong derivative is silent");
    let key = out.key.clone();
    assert!(unverified
        .join("builds")
        .join(&key)
        .join("entry.json")
        .is_file());
    let _ = std::fs::remove_dir_all(&unverified);

    // With --verify: refused, nothing published.
    let cache = temp_cache("refused");
    let err = build_spec_file(
        &spec,
        &BuildOptions {
            pipeline: Some(WRONG_PIPELINE.into()),
            cache_dir: Some(cache.clone()),
            verify: true,
            quiet: true,
            ..BuildOptions::default()
        },
    )
    .expect_err("a verified O2 build of rk2_three must be refused");
    let report = match &err {
        BuildError::Verify { report } => report.clone(),
        other => panic!("expected BuildError::Verify, got: {other}"),
    };
    println!("{err}");
    let failed: Vec<&str> = report.lines().filter(|l| l.starts_with("FAILED")).collect();
    assert!(!failed.is_empty(), "the report lists no failure:\n{report}");
    assert!(
        failed
            .iter()
            .any(|l| l.contains("rk2_three") && l.contains("vjp")),
        "the report does not name the kernel and the mode:\n{report}"
    );
    assert!(
        !cache.join("builds").join(&key).exists(),
        "the refused build was published"
    );
    assert!(
        entries(&cache).is_empty(),
        "something was left in the cache: {:?}",
        entries(&cache)
    );

    // The default pipeline builds it, verified, into the same cache.
    let ok = build_spec_file(
        &spec,
        &BuildOptions {
            cache_dir: Some(cache.clone()),
            verify: true,
            quiet: true,
            ..BuildOptions::default()
        },
    )
    .unwrap_or_else(|e| {
        panic!("the default pipeline ({DEFAULT_PIPELINE}) does not verify rk2_three:\n{e}")
    });
    let report = ok.verify_report.expect("a verified build has a report");
    assert!(report.lines().all(|l| l.starts_with("ok")), "{report}");
    assert!(report.contains("rk2_three"));
    assert_ne!(ok.key, key);
    let entry =
        std::fs::read_to_string(cache.join("builds").join(&ok.key).join("entry.json")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(&entry).unwrap();
    assert_eq!(entry["verified"], true);
    assert_eq!(entry["pipeline"], DEFAULT_PIPELINE);
    let _ = std::fs::remove_dir_all(&cache);
}
