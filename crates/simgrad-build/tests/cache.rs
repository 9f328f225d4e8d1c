//! The build cache: corrupt entries, forced and changed builds, an unusable cache directory.
//! Each test uses its own cache root. The multi-process tests (8 concurrent builders, a builder
//! killed mid-way) drive the `simgrad` binary and live in `crates/simgrad-cli/tests/cache_stress.rs`.

use simgrad_build::toolchain::toolchain_or_skip;
use simgrad_build::{build_spec_file, BuildError, BuildOptions};
use std::path::Path;

fn have_enzyme() -> bool {
    toolchain_or_skip().is_some()
}

/// A small one-kernel spec in a fresh directory.
fn spec_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("k.c"),
        "void sq(const double *x, double *y) { for (int i = 0; i < 8; i++) y[i] = x[i] * x[i]; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("simgrad.toml"),
        "[build]\nname = \"sq\"\n[[kernel]]\nsymbol = \"sq\"\nsources = [\"k.c\"]\nargs = [\n  { name = \"x\", dtype = \"f64\", shape = [8] },\n  { name = \"y\", dtype = \"f64\", shape = [8], intent = \"out\" },\n]\n",
    )
    .unwrap();
    dir
}

fn opts(cache: &Path) -> BuildOptions {
    BuildOptions {
        cache_dir: Some(cache.to_path_buf()),
        quiet: true,
        ..Default::default()
    }
}

#[test]
fn truncated_or_tampered_libraries_are_rebuilt() {
    if !have_enzyme() {
        return;
    }
    let spec = spec_dir();
    let cache = tempfile::tempdir().unwrap();
    let path = spec.path().join("simgrad.toml");
    let first = build_spec_file(&path, &opts(cache.path())).unwrap();
    assert!(!first.cache_hit);
    assert!(
        build_spec_file(&path, &opts(cache.path()))
            .unwrap()
            .cache_hit
    );

    // Truncated.
    let bytes = std::fs::read(&first.library).unwrap();
    std::fs::write(&first.library, &bytes[..bytes.len() / 2]).unwrap();
    let again = build_spec_file(&path, &opts(cache.path())).unwrap();
    assert!(!again.cache_hit, "a truncated library is not trusted");
    simgrad_core::Library::open(&again.library).unwrap();

    // Same size, one byte flipped.
    let mut bytes = std::fs::read(&again.library).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&again.library, &bytes).unwrap();
    let third = build_spec_file(&path, &opts(cache.path())).unwrap();
    assert!(!third.cache_hit, "a tampered library is not trusted");
    simgrad_core::Library::open(&third.library).unwrap();

    // A source change is a new key; force rebuilds the same key.
    let forced = build_spec_file(
        &path,
        &BuildOptions {
            force: true,
            ..opts(cache.path())
        },
    )
    .unwrap();
    assert!(!forced.cache_hit);
    assert_eq!(forced.key, third.key);
    std::fs::write(spec.path().join("k.c"), "void sq(const double *x, double *y) { for (int i = 0; i < 8; i++) y[i] = x[i] * x[i] * 1.0; }\n").unwrap();
    let changed = build_spec_file(&path, &opts(cache.path())).unwrap();
    assert!(!changed.cache_hit);
    assert_ne!(changed.key, third.key);
}

#[test]
fn an_unusable_cache_directory_is_a_clear_error() {
    if !have_enzyme() {
        return;
    }
    let spec = spec_dir();
    // A cache root below a regular file cannot be created, even by root.
    let file = tempfile::NamedTempFile::new().unwrap();
    let bad = file.path().join("cache");
    let e = build_spec_file(&spec.path().join("simgrad.toml"), &opts(&bad)).unwrap_err();
    assert!(matches!(e, BuildError::Cache { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("cannot create the cache directory") && msg.contains("SIMGRAD_CACHE_DIR"),
        "{msg}"
    );
}

#[test]
fn specs_differing_only_in_the_library_name_get_their_own_entries() {
    if !have_enzyme() {
        return;
    }
    let spec = spec_dir();
    let cache = tempfile::tempdir().unwrap();
    let path = spec.path().join("simgrad.toml");
    let a = build_spec_file(&path, &opts(cache.path())).unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("name = \"sq\"", "name = \"square\"");
    std::fs::write(&path, text).unwrap();
    let b = build_spec_file(&path, &opts(cache.path())).unwrap();
    assert!(!b.cache_hit);
    assert_ne!(a.key, b.key);
    assert!(a.library.ends_with("libsq.so"), "{}", a.library.display());
    assert!(
        b.library.ends_with("libsquare.so"),
        "{}",
        b.library.display()
    );
}
