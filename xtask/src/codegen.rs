//! `cargo xtask codegen [--check]`: generates the C header of the simgrad C ABI with cbindgen.
//!
//! The header is generated from `crates/simgrad-capi` with the configuration in
//! `crates/simgrad-capi/cbindgen.toml` and written (atomically) to `include/simgrad.h` at the
//! workspace root, which is checked in. `crates/simgrad-capi/tests/header.rs` makes the same
//! cbindgen call, so both agree byte for byte. `--check` regenerates in memory and fails when the checked-in file
//! differs, naming the command that fixes it.

use std::fs;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

use crate::util::{workspace_root, write_if_changed};

/// The crate the header is generated from.
pub fn capi_dir() -> PathBuf {
    workspace_root().join("crates").join("simgrad-capi")
}

/// The cbindgen configuration.
pub fn config_path() -> PathBuf {
    capi_dir().join("cbindgen.toml")
}

/// The generated, checked-in header: `include/simgrad.h` at the workspace root.
pub fn header_path() -> PathBuf {
    workspace_root().join("include").join("simgrad.h")
}

/// Generates the header; with `check`, only compares it with the checked-in one.
pub fn run(check: bool) -> Result<()> {
    let config_path = config_path();
    if !config_path.is_file() {
        bail!(
            "{} does not exist: nothing to generate the header from",
            config_path.display()
        );
    }
    let config = cbindgen::Config::from_file(&config_path)
        .map_err(|e| anyhow!("cannot read {}: {e}", config_path.display()))?;
    let bindings = cbindgen::Builder::new()
        .with_crate(capi_dir())
        .with_config(config)
        .generate()
        .map_err(|e| anyhow!("cbindgen failed on {}: {e}", capi_dir().display()))?;
    let mut generated = Vec::new();
    bindings.write(&mut generated);

    let header = header_path();
    if check {
        let current = fs::read(&header).unwrap_or_default();
        if current != generated {
            bail!(
                "{} is stale (it differs from what cbindgen generates from {}). Fix: run \
                 `cargo xtask codegen` and commit the result",
                header.display(),
                capi_dir().display()
            );
        }
        println!("    {} is up to date", header.display());
    } else if fs::read(&header).ok().as_deref() == Some(generated.as_slice()) {
        println!("    {} unchanged", header.display());
    } else {
        // Write a temporary file and rename it, so readers never see half a header.
        let tmp = header.with_extension("h.tmp");
        write_if_changed(&tmp, &generated)?;
        fs::rename(&tmp, &header)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), header.display()))?;
        println!("    wrote {}", header.display());
    }
    Ok(())
}
