//! The known failures (`tests/conformance/known-failures/`): each fails under the default
//! pipeline exactly as documented. When a toolchain update fixes one, this test fails and the
//! kernel can move into the corpus.

use simgrad_build::{build_spec_file, BuildError, BuildOptions};
use simgrad_core::Library;
use simgrad_tests::corpus::{Expected, KNOWN_FAILURES};
use simgrad_tests::gradcheck::verdicts;
use simgrad_tests::toolchain_or_skip;

#[test]
fn known_failures_fail_as_documented() {
    if toolchain_or_skip("known failures").is_none() {
        return;
    }
    let mut surprises = Vec::new();
    for kf in KNOWN_FAILURES {
        let r = build_spec_file(
            &kf.path(),
            &BuildOptions {
                quiet: true,
                ..BuildOptions::default()
            },
        );
        match (kf.expected, r) {
            (Expected::EnzymeError(needle), Err(e @ BuildError::Enzyme { .. })) => {
                let msg = e.to_string();
                if !msg.contains(needle) {
                    surprises.push(format!(
                        "{}: Enzyme failed, but the message lacks `{needle}`:\n{msg}",
                        kf.dir
                    ));
                }
                println!(
                    "{:<32} fails as documented: {}",
                    kf.dir,
                    msg.lines().next().unwrap_or("")
                );
            }
            (Expected::WrongDerivative(kernel), Ok(out)) => {
                let lib = Library::open(&out.library).unwrap();
                let vs = verdicts(&lib);
                let v = vs
                    .iter()
                    .find(|v| v.kernel == kernel)
                    .expect("kernel in library");
                if v.passed() {
                    surprises.push(format!("{}: `{kernel}` now passes every check", kf.dir));
                } else {
                    println!("{:<32} wrong as documented: {}", kf.dir, v.failures[0]);
                }
            }
            (_, Err(e)) => surprises.push(format!("{}: unexpected build error:\n{e}", kf.dir)),
            (_, Ok(out)) => surprises.push(format!(
                "{}: builds now ({})",
                kf.dir,
                out.library.display()
            )),
        }
    }
    assert!(surprises.is_empty(), "{}", surprises.join("\n\n"));
}
