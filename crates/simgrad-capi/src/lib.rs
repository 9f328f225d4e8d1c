//! libsimgrad: the stable C ABI of simgrad.
//!
//! Every function here is exported with C linkage and declared in the generated header
//! `include/simgrad.h` (see `cbindgen.toml`; regenerate with `cargo xtask codegen`). The crate is
//! built as a `cdylib` (`libsimgrad.so`), a `staticlib` (`libsimgrad.a`) and an `rlib`, so Rust
//! tests call the exports directly, without a C toolchain.
//!
//! # Conventions every export follows
//!
//! * Every symbol starts with `simgrad_` and is named after the type it works on; the object comes
//!   first, then inputs, then outputs; a buffer is followed by its length.
//! * Functions that can fail return a [`simgrad_status`] with explicit, never-renumbered values.
//!   On failure [`simgrad_last_error_message`] describes what went wrong on this thread, naming the
//!   function, the parameter or argument and the expected versus the actual value. A call that
//!   returns a status clears the previous message first, so after `SIMGRAD_OK` it is `""`.
//! * Output parameters are written only on success (the one exception, `needed` of
//!   [`simgrad_build_path`], is documented there).
//! * Every pointer parameter is checked for NULL; NULL handles are an error, except in the
//!   `*_free` functions, where NULL does nothing.
//! * No panic crosses the boundary: a panic becomes `SIMGRAD_ERR_PANIC` with the panic message as
//!   the last error.
//! * Handles are thread-safe: a `simgrad_library` or `simgrad_kernel` may be used from many
//!   threads at once (each call brings its own buffers). Freeing a handle must not race with
//!   other uses of the same handle.
//!
//! Module map: [`status`] (status codes), `error` (the thread-local last error), `panic` (the
//! panic boundary), `ffi` (pointer helpers), [`tensor`] (the DLPack-compatible tensor descriptor),
//! [`library`] and [`kernel`] (handles, inspection, calls), [`builder`] (building a spec),
//! [`version`].

#![warn(missing_docs)]
// The C names are the contract: `simgrad_status`, `simgrad_tensor`, `SIMGRAD_OK`, ...
#![allow(non_camel_case_types)]
// Every export dereferences caller pointers after checking them for NULL; the documented contract
// (valid, aligned, live for the call) is the C caller's, as with any C API.
#![allow(clippy::missing_safety_doc)]

#[macro_use]
mod panic;

mod error;

mod ffi;

// The public modules, in the order the header presents them: cbindgen follows the declaration
// order, and the blank lines keep rustfmt from sorting them.
pub mod status;

pub mod version;

pub mod tensor;

pub mod library;

pub mod kernel;

pub mod builder;

pub use builder::*;
pub use error::simgrad_last_error_message;
pub use kernel::*;
pub use library::*;
pub use panic::simgrad__test_panic;
pub use status::*;
pub use tensor::*;
pub use version::*;
