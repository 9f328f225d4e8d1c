//! The simgrad builder.
//!
//! Turns a kernel spec (`simgrad.toml`) and the user's C, C++ or Fortran sources into a shared
//! library with primal, JVP and VJP entry points and an embedded manifest:
//! toolchain discovery ([`toolchain`]) → wrapper generation ([`codegen`]) → clang-19 / flang-19
//! → llvm-link → opt + Enzyme → opt → shared library ([`pipeline`]), cached by content
//! ([`cache`]).

pub mod cache;
pub mod codegen;
mod enzyme_error;
mod error;
pub mod pipeline;
pub mod spec;
pub mod toolchain;

pub use cache::{build_spec_file, BuildOptions, BuildOutput};
pub use error::{BuildError, ErrorKind};
pub use pipeline::Pipeline;
pub use spec::{Language, Spec};
