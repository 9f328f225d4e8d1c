//! Errors of the runtime. Every message names what was wrong: the argument, the expected and the
//! actual dtype or shape, the library or manifest path.

use crate::dtype::DType;
use thiserror::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong opening a library or calling a kernel.
#[derive(Debug, Error)]
pub enum Error {
    /// The shared library could not be opened.
    #[error("cannot open library `{path}`: {message}")]
    Open {
        /// Library path.
        path: String,
        /// The loader's message.
        message: String,
    },
    /// The manifest is missing, unreadable or inconsistent.
    #[error("invalid manifest ({origin}): {message}")]
    Manifest {
        /// Library or manifest file.
        origin: String,
        /// What was wrong.
        message: String,
    },
    /// The library was built for another manifest schema or calling convention.
    #[error("ABI mismatch ({origin}): {what} is {got}, this runtime needs {expected}")]
    AbiMismatch {
        /// `manifest_version` or `abi_version`.
        what: &'static str,
        /// What the runtime reads.
        expected: u32,
        /// What the library declares.
        got: u32,
        /// Library or manifest file.
        origin: String,
    },
    /// A symbol listed in the manifest is not exported.
    #[error("symbol `{symbol}` listed in the manifest is missing from `{path}`: {message}")]
    MissingSymbol {
        /// Symbol name.
        symbol: String,
        /// Library path.
        path: String,
        /// The loader's message.
        message: String,
    },
    /// No kernel of that name.
    #[error("unknown kernel `{name}`; the library has: {available}")]
    UnknownKernel {
        /// Requested name.
        name: String,
        /// Comma-separated kernel names.
        available: String,
    },
    /// The kernel was built without that mode.
    #[error("kernel `{kernel}` has no `{mode}` mode; it was built with: {available}")]
    UnknownMode {
        /// Kernel name.
        kernel: String,
        /// Requested mode.
        mode: String,
        /// Comma-separated available modes.
        available: String,
    },
    /// Wrong number of arguments.
    #[error("kernel `{kernel}`: expected {expected} {what}, got {got}")]
    ArgCount {
        /// Kernel name.
        kernel: String,
        /// `arguments`, `tangents`, ...
        what: &'static str,
        /// Expected count.
        expected: usize,
        /// Given count.
        got: usize,
    },
    /// An argument's dtype differs from the manifest.
    #[error("kernel `{kernel}`, {role} `{arg}`: expected dtype {expected}, got {got}")]
    DType {
        /// Kernel name.
        kernel: String,
        /// Argument name.
        arg: String,
        /// `argument`, `tangent of`, ...
        role: &'static str,
        /// Manifest dtype.
        expected: DType,
        /// Given dtype (or an unsupported DLPack code).
        got: String,
    },
    /// An argument's rank differs from the manifest.
    #[error("kernel `{kernel}`, {role} `{arg}`: expected rank {expected} (shape {shape}), got rank {got}")]
    Rank {
        /// Kernel name.
        kernel: String,
        /// Argument name.
        arg: String,
        /// `argument`, `tangent of`, ...
        role: &'static str,
        /// Manifest rank.
        expected: usize,
        /// Manifest shape, written out.
        shape: String,
        /// Given rank.
        got: usize,
    },
    /// An argument's shape contradicts the manifest or another argument.
    #[error("kernel `{kernel}`, {role} `{arg}`: {message}")]
    Shape {
        /// Kernel name.
        kernel: String,
        /// Argument name.
        arg: String,
        /// `argument`, `tangent of`, ...
        role: &'static str,
        /// Expected vs got.
        message: String,
    },
    /// A required pointer is NULL.
    #[error("kernel `{kernel}`, {role} `{arg}`: data pointer is NULL")]
    Null {
        /// Kernel name.
        kernel: String,
        /// Argument name.
        arg: String,
        /// `argument`, `tangent of`, ...
        role: &'static str,
    },
    /// Strides that are not contiguous in the kernel's memory order.
    #[error("kernel `{kernel}`, {role} `{arg}`: {message}")]
    Layout {
        /// Kernel name.
        kernel: String,
        /// Argument name.
        arg: String,
        /// `argument`, `tangent of`, ...
        role: &'static str,
        /// Expected vs got strides.
        message: String,
    },
    /// A buffer that the call writes overlaps another buffer of the call.
    #[error(
        "kernel `{kernel}`: {written} overlaps {other}; outputs must not alias other arguments"
    )]
    Alias {
        /// Kernel name.
        kernel: String,
        /// The written buffer.
        written: String,
        /// The buffer it overlaps.
        other: String,
    },
    /// A tangent or cotangent was given where none is meaningful.
    #[error("kernel `{kernel}`: {message}")]
    Unexpected {
        /// Kernel name.
        kernel: String,
        /// What was unexpected.
        message: String,
    },
    /// The kernel's entry point returned a non-zero status.
    #[error("kernel `{kernel}` ({mode}) returned status {status}")]
    KernelFailed {
        /// Kernel name.
        kernel: String,
        /// Mode name.
        mode: &'static str,
        /// Returned status.
        status: i32,
    },
}
