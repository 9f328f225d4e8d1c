//! The conformance corpus and the known failures.
//!
//! The corpus is three specs, one per language, under `tests/conformance/{c,cpp,fortran}/`. Every
//! kernel in them must build under the default pipeline and pass [`crate::gradcheck`] in every
//! mode. The known failures (`tests/conformance/known-failures/*/`, one tiny spec each) are
//! kernels this Enzyme cannot differentiate, or differentiates wrongly, under the default
//! pipeline; `tests/tests/known_failures.rs` pins each failure mode.

use crate::tests_dir;
use std::path::PathBuf;

/// One spec of the corpus.
#[derive(Debug, Clone, Copy)]
pub struct CorpusSpec {
    /// Language label for reports.
    pub language: &'static str,
    /// Directory under `tests/conformance/`.
    pub dir: &'static str,
}

impl CorpusSpec {
    /// The spec file.
    pub fn path(&self) -> PathBuf {
        tests_dir()
            .join("conformance")
            .join(self.dir)
            .join("simgrad.toml")
    }
}

/// The corpus, one spec per language.
pub const CORPUS: &[CorpusSpec] = &[
    CorpusSpec {
        language: "C",
        dir: "c",
    },
    CorpusSpec {
        language: "C++",
        dir: "cpp",
    },
    CorpusSpec {
        language: "Fortran",
        dir: "fortran",
    },
];

/// How a known failure fails under the default pipeline.
#[derive(Debug, Clone, Copy)]
pub enum Expected {
    /// The build stops with `BuildError::Enzyme` whose message contains this text.
    EnzymeError(&'static str),
    /// The build succeeds and the gradient check fails for this kernel (a silently wrong
    /// derivative, caught only by the check).
    WrongDerivative(&'static str),
}

/// One known failure.
#[derive(Debug, Clone, Copy)]
pub struct KnownFailure {
    /// Language label for reports.
    pub language: &'static str,
    /// Directory under `tests/conformance/known-failures/`.
    pub dir: &'static str,
    /// The failure under the default pipeline.
    pub expected: Expected,
    /// One line for reports.
    pub what: &'static str,
}

impl KnownFailure {
    /// The spec file.
    pub fn path(&self) -> PathBuf {
        tests_dir()
            .join("conformance")
            .join("known-failures")
            .join(self.dir)
            .join("simgrad.toml")
    }
}

/// The known failures (see `tests/conformance/known-failures/README.md`).
pub const KNOWN_FAILURES: &[KnownFailure] = &[
    KnownFailure {
        language: "Fortran",
        dir: "fortran_derived_type_pointers",
        expected: Expected::EnzymeError("Enzyme crashed"),
        what: "derived type with pointer components aimed at the arguments: Enzyme crashes",
    },
    KnownFailure {
        language: "Fortran",
        dir: "fortran_int_minmax",
        expected: Expected::EnzymeError("llvm.smin"),
        what: "integer min/max (llvm.smin/smax) on an index: unknown intrinsic to Enzyme",
    },
    KnownFailure {
        language: "Fortran",
        dir: "fortran_allocatable_assign",
        expected: Expected::EnzymeError("_FortranAAssign"),
        what: "array assignment with allocatables lowers to flang's runtime: no derivative",
    },
    KnownFailure {
        language: "Fortran",
        dir: "fortran_scatter_memset",
        expected: Expected::WrongDerivative("f_gather"),
        what: "output zeroed by memset then scatter-added: VJP silently wrong under -enzyme-loose-types",
    },
    KnownFailure {
        language: "C",
        dir: "c_scatter_memset",
        expected: Expected::EnzymeError("Cannot deduce type"),
        what: "output zeroed by memset then scatter-added: refused (strict types); wrong under O2-loose",
    },
];
