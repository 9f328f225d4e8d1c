//! `simgrad_kernel`: inspecting a kernel's arguments and modes, and calling its primal, JVP and
//! VJP entry points.
//!
//! The semantics of the three modes (what is read, written, overwritten or accumulated into) are
//! the runtime's, documented in `docs/calling-convention.md`; this module only converts the C
//! descriptors and reports errors.

use crate::error::{Failure, FfiResult};
use crate::ffi::{slice_arg, BoxHandle, Out};
use crate::library::{KernelStrings, LibraryState};
use crate::status::simgrad_status;
use crate::tensor::{simgrad_dtype, simgrad_tensor, Site};
use simgrad_core::{ArgKind, ArgRef, Intent, Kernel, Mode, Order, VjpOptions};
use smallvec::SmallVec;
use std::ffi::c_char;
use std::sync::Arc;

/// Mode number of the primal function, for `simgrad_kernel_has_mode`.
pub const SIMGRAD_MODE_PRIMAL: u32 = 0;
/// Mode number of forward mode (JVP).
pub const SIMGRAD_MODE_JVP: u32 = 1;
/// Mode number of reverse mode (VJP).
pub const SIMGRAD_MODE_VJP: u32 = 2;

/// `simgrad_arg_info.kind` of an array argument (a pointer to elements).
pub const SIMGRAD_ARG_ARRAY: u32 = 0;
/// `simgrad_arg_info.kind` of a size argument (an integer passed by value).
pub const SIMGRAD_ARG_SIZE: u32 = 1;
/// `simgrad_arg_info.kind` of a scalar argument (a number passed by value).
pub const SIMGRAD_ARG_SCALAR: u32 = 2;

/// `simgrad_arg_info.intent` of an argument that is only read.
pub const SIMGRAD_INTENT_IN: u32 = 0;
/// `simgrad_arg_info.intent` of an argument that is only written.
pub const SIMGRAD_INTENT_OUT: u32 = 1;
/// `simgrad_arg_info.intent` of an argument that is read and updated in place.
pub const SIMGRAD_INTENT_INOUT: u32 = 2;

/// Memory order of a kernel whose arrays are row-major (C): the last index varies fastest.
pub const SIMGRAD_ORDER_C: u32 = 0;
/// Memory order of a kernel whose arrays are column-major (Fortran): the first index varies
/// fastest.
pub const SIMGRAD_ORDER_F: u32 = 1;

/// `simgrad_kernel_vjp` flag: add the input cotangents to what `cotangents_out` holds instead of
/// overwriting it.
pub const SIMGRAD_VJP_ACCUMULATE: u32 = 1;

/// One kernel of a library (opaque). Obtain it with `simgrad_library_kernel`, free it with
/// `simgrad_kernel_free`. It keeps its library loaded. Thread-safe: one kernel may be called from
/// many threads at once, each call with its own buffers.
pub struct simgrad_kernel {
    lib: Arc<LibraryState>,
    index: usize,
}

// The header promises both handles are thread-safe.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<simgrad_kernel>();
    send_sync::<crate::library::simgrad_library>();
};

impl BoxHandle for simgrad_kernel {
    const NAME: &'static str = "simgrad_kernel";
}

impl simgrad_kernel {
    pub(crate) fn new(lib: Arc<LibraryState>, index: usize) -> simgrad_kernel {
        simgrad_kernel { lib, index }
    }

    fn kernel(&self) -> &Kernel {
        &self.lib.lib.kernels()[self.index]
    }

    fn strings(&self) -> &KernelStrings {
        &self.lib.kernels[self.index]
    }

    /// Converts the argument list. `param` names the list in messages.
    ///
    /// # Safety
    /// Every descriptor's `shape` and `strides` are valid for `ndim` elements.
    unsafe fn args<'a>(
        &'a self,
        list: &'a [simgrad_tensor],
        param: &'static str,
        out: &mut SmallVec<[ArgRef<'a>; 8]>,
    ) -> FfiResult<()> {
        let desc = &self.kernel().desc().args;
        // Filled in place: returning the list inside a `Result` moved it (448 bytes and more)
        // several times, which the call-overhead benchmark showed.
        for (index, t) in list.iter().enumerate() {
            let arg_name = desc.get(index).map(|a| a.name.as_str());
            out.push(t.as_arg_ref(Site {
                param,
                index,
                arg_name,
            })?);
        }
        Ok(())
    }

    /// Converts an optional list of `nargs` tangents or cotangents: a NULL list means every entry
    /// is absent, and so does an entry whose `data` is NULL.
    ///
    /// # Safety
    /// `list` is NULL or points to `nargs` descriptors as in [`simgrad_kernel::args`].
    unsafe fn shadows<'a>(
        &'a self,
        list: *const simgrad_tensor,
        nargs: usize,
        param: &'static str,
    ) -> FfiResult<SmallVec<[Option<ArgRef<'a>>; 8]>> {
        if list.is_null() {
            return Ok(smallvec::smallvec![None; nargs]);
        }
        let list = std::slice::from_raw_parts(list, nargs);
        let desc = &self.kernel().desc().args;
        list.iter()
            .enumerate()
            .map(|(index, t)| {
                if t.data.is_null() {
                    return Ok(None);
                }
                let arg_name = desc.get(index).map(|a| a.name.as_str());
                t.as_arg_ref(Site {
                    param,
                    index,
                    arg_name,
                })
                .map(Some)
            })
            .collect()
    }
}

fn mode_of(mode: u32) -> FfiResult<Mode> {
    match mode {
        SIMGRAD_MODE_PRIMAL => Ok(Mode::Primal),
        SIMGRAD_MODE_JVP => Ok(Mode::Jvp),
        SIMGRAD_MODE_VJP => Ok(Mode::Vjp),
        _ => Err(Failure::not_found(format!(
            "unknown mode {mode}; the modes are SIMGRAD_MODE_PRIMAL (0), SIMGRAD_MODE_JVP (1) and SIMGRAD_MODE_VJP (2)"
        ))),
    }
}

/// What C learns about one kernel argument from `simgrad_kernel_arg_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct simgrad_arg_info {
    /// The argument's name; owned by the kernel handle, valid while it lives.
    pub name: *const c_char,
    /// `SIMGRAD_ARG_ARRAY`, `SIMGRAD_ARG_SIZE` or `SIMGRAD_ARG_SCALAR`.
    pub kind: u32,
    /// Element type (DLPack code and bits, one lane).
    pub dtype: simgrad_dtype,
    /// `SIMGRAD_INTENT_IN`, `SIMGRAD_INTENT_OUT` or `SIMGRAD_INTENT_INOUT` (always `IN` for sizes
    /// and scalars).
    pub intent: u32,
    /// 1 if derivatives flow through the argument, else 0.
    pub differentiable: u32,
    /// Rank the argument must have (0 for sizes and scalars).
    pub ndim: i32,
}

/// Frees a kernel handle. NULL does nothing. Strings obtained from the handle become invalid
/// unless the library handle is still alive.
#[no_mangle]
pub unsafe extern "C" fn simgrad_kernel_free(kernel: *mut simgrad_kernel) {
    ffi_boundary!("simgrad_kernel_free", value {
        simgrad_kernel::free(kernel)
    })
}

/// Sets `*out` to the kernel's name; owned by the handle, valid while it lives.
#[no_mangle]
pub unsafe extern "C" fn simgrad_kernel_name(
    kernel: *const simgrad_kernel,
    out: *mut *const c_char,
) -> simgrad_status {
    ffi_boundary!("simgrad_kernel_name", status {
        let k = simgrad_kernel::borrow(kernel, "kernel")?;
        let out = Out::new(out, "out")?;
        out.write(k.strings().name.as_ptr());
        Ok(())
    })
}

/// Sets `*out` to the number of arguments of the kernel, which is the `nargs` every call takes
/// (sizes and scalars count as arguments).
#[no_mangle]
pub unsafe extern "C" fn simgrad_kernel_arg_count(
    kernel: *const simgrad_kernel,
    out: *mut usize,
) -> simgrad_status {
    ffi_boundary!("simgrad_kernel_arg_count", status {
        let k = simgrad_kernel::borrow(kernel, "kernel")?;
        let out = Out::new(out, "out")?;
        out.write(k.kernel().desc().args.len());
        Ok(())
    })
}

/// Fills `*out` with the description of argument number `index` (from 0). An index past the end
/// is `SIMGRAD_ERR_NOT_FOUND`.
#[no_mangle]
pub unsafe extern "C" fn simgrad_kernel_arg_info(
    kernel: *const simgrad_kernel,
    index: usize,
    out: *mut simgrad_arg_info,
) -> simgrad_status {
    ffi_boundary!("simgrad_kernel_arg_info", status {
        let k = simgrad_kernel::borrow(kernel, "kernel")?;
        let out = Out::new(out, "out")?;
        let args = &k.kernel().desc().args;
        let a = args.get(index).ok_or_else(|| {
            Failure::not_found(format!(
                "argument index {index} is out of range; kernel `{}` has {} arguments",
                k.kernel().name(),
                args.len()
            ))
        })?;
        out.write(simgrad_arg_info {
            name: k.strings().args[index].as_ptr(),
            kind: match a.kind {
                ArgKind::Array => SIMGRAD_ARG_ARRAY,
                ArgKind::Size => SIMGRAD_ARG_SIZE,
                ArgKind::Scalar => SIMGRAD_ARG_SCALAR,
            },
            dtype: a.dtype.into(),
            intent: match a.intent {
                Intent::In => SIMGRAD_INTENT_IN,
                Intent::Out => SIMGRAD_INTENT_OUT,
                Intent::Inout => SIMGRAD_INTENT_INOUT,
            },
            differentiable: u32::from(a.differentiable),
            // Ranks come from a parsed manifest; no kernel has 2^31 dims.
            ndim: i32::try_from(a.shape.len()).unwrap_or(i32::MAX),
        });
        Ok(())
    })
}

/// Sets `*out` to 1 if the kernel was built with `mode` (`SIMGRAD_MODE_PRIMAL`, `_JVP`, `_VJP`),
/// else 0. A number that is not a mode is `SIMGRAD_ERR_NOT_FOUND`.
#[no_mangle]
pub unsafe extern "C" fn simgrad_kernel_has_mode(
    kernel: *const simgrad_kernel,
    mode: u32,
    out: *mut u32,
) -> simgrad_status {
    ffi_boundary!("simgrad_kernel_has_mode", status {
        let k = simgrad_kernel::borrow(kernel, "kernel")?;
        let out = Out::new(out, "out")?;
        let mode = mode_of(mode)?;
        out.write(u32::from(k.kernel().desc().has_mode(mode)));
        Ok(())
    })
}

/// Sets `*out` to the memory order every array of the kernel must have: `SIMGRAD_ORDER_C` (0,
/// row-major) or `SIMGRAD_ORDER_F` (1, column-major).
#[no_mangle]
pub unsafe extern "C" fn simgrad_kernel_memory_order(
    kernel: *const simgrad_kernel,
    out: *mut u32,
) -> simgrad_status {
    ffi_boundary!("simgrad_kernel_memory_order", status {
        let k = simgrad_kernel::borrow(kernel, "kernel")?;
        let out = Out::new(out, "out")?;
        out.write(match k.kernel().desc().order {
            Order::C => SIMGRAD_ORDER_C,
            Order::F => SIMGRAD_ORDER_F,
        });
        Ok(())
    })
}

/// Runs the kernel: `out` arrays are written, `inout` arrays updated in place, nothing else is
/// touched. `args` holds `nargs` descriptors, one per kernel argument in order (scalars and sizes
/// as rank-0 tensors). Every argument is checked against the manifest (dtype, rank, shape,
/// strides, device, aliasing of written buffers) before the kernel runs, and nothing is written
/// when a check fails; if the kernel itself fails (`SIMGRAD_ERR_KERNEL`), outputs may be
/// partially written.
#[no_mangle]
pub unsafe extern "C" fn simgrad_kernel_call(
    kernel: *const simgrad_kernel,
    args: *const simgrad_tensor,
    nargs: usize,
) -> simgrad_status {
    ffi_boundary!("simgrad_kernel_call", status {
        let k = simgrad_kernel::borrow(kernel, "kernel")?;
        let args = slice_arg(args, nargs, "args", "nargs")?;
        let mut list = SmallVec::new();
        k.args(args, "args", &mut list)?;
        let args = list;
        k.kernel().call(&args)?;
        Ok(())
    })
}

/// Forward mode (Jacobian-vector product). Does what `simgrad_kernel_call` does and writes into
/// `tangents_out[i]` the tangent of every differentiable `out`/`inout` argument `i`, given the
/// tangent `tangents_in[j]` of every differentiable input `j`.
///
/// `tangents_in` and `tangents_out` each hold `nargs` descriptors, indexed like `args`. A NULL list
/// means every entry is absent; so does an entry whose `data` is NULL (which is why an empty,
/// zero-element tangent cannot be passed: pass it as absent). An absent input tangent is zero; an
/// absent output tangent is not computed. `tangents_in` is never modified.
#[no_mangle]
pub unsafe extern "C" fn simgrad_kernel_jvp(
    kernel: *const simgrad_kernel,
    args: *const simgrad_tensor,
    nargs: usize,
    tangents_in: *const simgrad_tensor,
    tangents_out: *const simgrad_tensor,
) -> simgrad_status {
    ffi_boundary!("simgrad_kernel_jvp", status {
        let k = simgrad_kernel::borrow(kernel, "kernel")?;
        let args = slice_arg(args, nargs, "args", "nargs")?;
        let mut list = SmallVec::new();
        k.args(args, "args", &mut list)?;
        let args = list;
        let tin = k.shadows(tangents_in, nargs, "tangents_in")?;
        let tout = k.shadows(tangents_out, nargs, "tangents_out")?;
        k.kernel().jvp(&args, &tin, &tout)?;
        Ok(())
    })
}

/// Reverse mode (vector-Jacobian product). Given the cotangent `cotangents_in[i]` of every
/// differentiable `out`/`inout` argument `i`, writes into `cotangents_out[j]` the cotangent of
/// every differentiable input `j` (`in`/`inout` arrays and scalars), overwriting it, or adding to
/// it when `flags` has `SIMGRAD_VJP_ACCUMULATE`. No argument and no `cotangents_in` buffer is
/// modified: outputs are recomputed in scratch memory, so the `data` of an `out` argument is
/// never read or written and may be NULL (its dtype and shape are still checked).
///
/// The lists hold `nargs` descriptors indexed like `args`, with the same absent-entry rules as
/// `simgrad_kernel_jvp`: an absent output cotangent is zero, an absent input cotangent is not
/// computed. Unknown bits in `flags` are `SIMGRAD_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn simgrad_kernel_vjp(
    kernel: *const simgrad_kernel,
    args: *const simgrad_tensor,
    nargs: usize,
    cotangents_in: *const simgrad_tensor,
    cotangents_out: *const simgrad_tensor,
    flags: u32,
) -> simgrad_status {
    ffi_boundary!("simgrad_kernel_vjp", status {
        let k = simgrad_kernel::borrow(kernel, "kernel")?;
        if flags & !SIMGRAD_VJP_ACCUMULATE != 0 {
            return Err(Failure::invalid(format!(
                "unknown bits in `flags` ({flags:#x}); the only flag is SIMGRAD_VJP_ACCUMULATE (1)"
            )));
        }
        let args = slice_arg(args, nargs, "args", "nargs")?;
        let mut list = SmallVec::new();
        k.args(args, "args", &mut list)?;
        let args = list;
        let cin = k.shadows(cotangents_in, nargs, "cotangents_in")?;
        let cout = k.shadows(cotangents_out, nargs, "cotangents_out")?;
        let opts = VjpOptions {
            accumulate: flags & SIMGRAD_VJP_ACCUMULATE != 0,
        };
        k.kernel().vjp(&args, &cin, &cout, opts)?;
        Ok(())
    })
}
