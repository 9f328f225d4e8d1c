//! The simgrad runtime.
//!
//! A kernel library (built by `simgrad-build`, or by hand with an external manifest) holds, for
//! each kernel, a primal, a forward-mode (JVP) and a reverse-mode (VJP) entry point with one
//! uniform calling convention, plus a JSON manifest describing every argument. This crate opens
//! such a library ([`Library`]), validates its manifest ([`Manifest`]), and calls its kernels with
//! every argument checked against the manifest ([`Kernel::call`], [`Kernel::jvp`], [`Kernel::vjp`]).
//!
//! The derivative semantics callers can rely on are in `docs/calling-convention.md`: inputs and
//! seed buffers are never modified; a VJP overwrites (or, when asked, accumulates into) the input
//! cotangents; Enzyme's own buffer conventions stay hidden behind scratch copies.

pub mod check;
mod dims;
mod dtype;
mod error;
mod invoke;
mod library;
mod manifest;
mod plan;
mod tensor;
mod validate;

pub use dims::{DimExpr, SizeBindings};
pub use dtype::DType;
pub use error::{Error, Result};
pub use invoke::VjpOptions;
pub use library::{Kernel, Library};
pub use manifest::{
    ArgDesc, ArgKind, Intent, KernelDesc, Manifest, Mode, ModeDesc, Order, Toolchain, ABI_VERSION,
    MANIFEST_SYMBOL, MANIFEST_VERSION,
};
pub use tensor::{ArgRef, Element, DEVICE_CPU};
pub use validate::{validate_call, Bound};
