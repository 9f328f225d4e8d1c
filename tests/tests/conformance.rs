//! The conformance corpus: every kernel of `tests/conformance/{c,cpp,fortran}` built with the
//! default pipeline and checked in every mode (JVP vs central differences, VJP vs JVP by the
//! dot-product test, inputs and seeds unchanged) at several sizes and seeds, plus the runtime's
//! buffer semantics (`simgrad_tests::extra`).

use simgrad_build::{build_spec_file, BuildOptions, Spec};
use simgrad_core::Library;
use simgrad_tests::corpus::{CorpusSpec, CORPUS};
use simgrad_tests::gradcheck::verdicts;
use simgrad_tests::toolchain_or_skip;

fn check_spec(language: &str) {
    let spec: &CorpusSpec = CORPUS.iter().find(|s| s.language == language).unwrap();
    if toolchain_or_skip(&format!("conformance {language}")).is_none() {
        return;
    }
    let out = build_spec_file(
        &spec.path(),
        &BuildOptions {
            quiet: true,
            ..BuildOptions::default()
        },
    )
    .unwrap_or_else(|e| {
        panic!("the {language} corpus does not build with the default pipeline:\n{e}")
    });
    let lib = Library::open(&out.library).unwrap();
    let spec_kernels = Spec::load(&spec.path()).unwrap().kernels.len();
    assert_eq!(lib.kernels().len(), spec_kernels);
    let vs = verdicts(&lib);
    let mut failed = Vec::new();
    for v in &vs {
        println!(
            "{:<8} {:<22} {:<6} {:>4} comparisons, worst rel. error {:.1e}",
            language,
            v.kernel,
            if v.passed() { "ok" } else { "FAILED" },
            v.comparisons,
            v.worst
        );
        for f in &v.failures {
            failed.push(format!("{}: {f}", v.kernel));
        }
    }
    assert!(
        failed.is_empty(),
        "{language} corpus, pipeline {}:\n{}",
        out.pipeline,
        failed.join("\n")
    );
}

#[test]
fn c_corpus() {
    check_spec("C");
}

#[test]
fn cpp_corpus() {
    check_spec("C++");
}

#[test]
fn fortran_corpus() {
    check_spec("Fortran");
}

/// The corpus stays broad: enough kernels per language, every mode of every kernel, the
/// argument kinds the spec format offers.
#[test]
fn corpus_is_broad() {
    let mut total = 0;
    let mut seen = std::collections::BTreeSet::new();
    for s in CORPUS {
        let spec = Spec::load(&s.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            spec.kernels.len() >= 10,
            "{} has only {} kernels",
            s.language,
            spec.kernels.len()
        );
        total += spec.kernels.len();
        for k in &spec.kernels {
            assert_eq!(
                k.desc.modes.len(),
                3,
                "{}: every corpus kernel has primal, jvp and vjp",
                k.desc.name
            );
            for a in &k.desc.args {
                seen.insert(format!("{:?}", a.kind));
                seen.insert(format!("{:?}", a.dtype));
                seen.insert(format!("{:?}", a.intent));
                if !a.differentiable && a.dtype.is_float() {
                    seen.insert("non-differentiable float".into());
                }
                if a.shape
                    .iter()
                    .any(|d| d.as_name().is_none() && !d.names().is_empty())
                {
                    seen.insert("size expression".into());
                }
            }
        }
    }
    assert!(total >= 30, "the corpus has {total} kernels");
    for want in [
        "Array",
        "Size",
        "Scalar",
        "F32",
        "F64",
        "I32",
        "I64",
        "In",
        "Out",
        "Inout",
        "non-differentiable float",
        "size expression",
    ] {
        assert!(seen.contains(want), "no corpus kernel has {want}: {seen:?}");
    }
}
