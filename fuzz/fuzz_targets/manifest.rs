//! Fuzz target `manifest`: arbitrary bytes as a manifest document.
//!
//! Manifests come from kernel libraries and from files next to them, which simgrad does not
//! control, so `Manifest::from_json` must reject anything malformed with an error, never panic,
//! overflow the stack or loop. What it accepts must be consistent: every kernel passes its own
//! check, and the manifest survives a round trip through `to_json` unchanged, dims included.

#![no_main]

use libfuzzer_sys::fuzz_target;
use simgrad_core::{DimExpr, Manifest};

fuzz_target!(|data: &[u8]| {
    // The runtime reads the embedded manifest as a C string and rejects non-UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Manifest::from_json(text, "fuzz") else {
        return;
    };
    for k in &m.kernels {
        if let Err(e) = k.check() {
            panic!("an accepted manifest holds a kernel that fails its check: {e}");
        }
        for a in &k.args {
            for d in &a.shape {
                let shown = d.to_string();
                let parsed = DimExpr::parse(&shown).unwrap_or_else(|e| {
                    panic!("dim {d:?} prints as `{shown}`, which is rejected: {e}")
                });
                assert_eq!(&parsed, d, "dim `{shown}` does not parse back to itself");
            }
        }
    }
    let json = m.to_json();
    let again = Manifest::from_json(&json, "fuzz")
        .unwrap_or_else(|e| panic!("a manifest's own JSON is rejected: {e}\n{json}"));
    assert_eq!(
        again, m,
        "the manifest changed in a round trip through to_json"
    );
});
