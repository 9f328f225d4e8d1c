//! Calling kernels: marshalling checked arguments into the uniform trampoline convention and
//! hiding Enzyme's buffer semantics behind scratch copies.
//!
//! Enzyme's reverse mode *adds* into input shadows and *zeroes* output shadows; its forward mode
//! reads input shadows and writes output shadows, and an array without a shadow can silently
//! corrupt both the derivative and the caller's input. So every array gets a shadow here: the
//! caller's buffer where the public semantics allow it, a scratch buffer otherwise. The public
//! semantics are in `docs/calling-convention.md`.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::library::{Kernel, Trampoline};
use crate::manifest::{ArgKind, Intent, Mode};
use crate::tensor::ArgRef;
use crate::validate::{validate, Shadows};
use smallvec::SmallVec;
use std::ffi::c_void;
use std::ptr;

/// Options of a reverse-mode call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VjpOptions {
    /// Add the input cotangents to what the result buffers hold instead of overwriting them.
    pub accumulate: bool,
}

/// Zeroed, 8-byte-aligned scratch memory owned for the duration of one call.
#[derive(Default)]
struct Scratch {
    blocks: Vec<Vec<u64>>,
}

impl Scratch {
    /// A zeroed buffer of `bytes` bytes (at least 8, so a pointer to it is never dangling).
    fn zeroed(&mut self, bytes: usize) -> *mut c_void {
        let mut block = vec![0u64; bytes.div_ceil(8).max(1)];
        let p = block.as_mut_ptr().cast();
        self.blocks.push(block);
        p
    }

    /// A buffer holding a copy of `bytes` bytes at `src` (zeroes when `src` is NULL).
    fn copy_of(&mut self, src: *const c_void, bytes: usize) -> *mut c_void {
        let p = self.zeroed(bytes);
        if !src.is_null() && bytes > 0 {
            // SAFETY: validation checked `src` spans `bytes`; `p` is fresh and large enough.
            unsafe { ptr::copy_nonoverlapping(src.cast::<u8>(), p.cast::<u8>(), bytes) };
        }
        p
    }
}

fn data(slot: &Option<ArgRef<'_>>) -> *mut c_void {
    slot.as_ref().map_or(ptr::null_mut(), |a| a.data)
}

/// `dst[i] (+)= src[i]` for `n` elements of `dtype`.
///
/// # Safety
/// Both pointers must be valid for `n` elements and not overlap.
unsafe fn store(dst: *mut c_void, src: *const c_void, n: usize, dtype: DType, accumulate: bool) {
    if n == 0 {
        return;
    }
    if !accumulate {
        ptr::copy_nonoverlapping(src.cast::<u8>(), dst.cast::<u8>(), n * dtype.size());
        return;
    }
    match dtype {
        DType::F64 => {
            let d = std::slice::from_raw_parts_mut(dst.cast::<f64>(), n);
            let s = std::slice::from_raw_parts(src.cast::<f64>(), n);
            d.iter_mut().zip(s).for_each(|(a, b)| *a += b);
        }
        DType::F32 => {
            let d = std::slice::from_raw_parts_mut(dst.cast::<f32>(), n);
            let s = std::slice::from_raw_parts(src.cast::<f32>(), n);
            d.iter_mut().zip(s).for_each(|(a, b)| *a += b);
        }
        // Integers are never differentiable; validation rejects their cotangents.
        DType::I32 | DType::I64 => {}
    }
}

struct Marshalled {
    args: SmallVec<[*mut c_void; 8]>,
    sizes: SmallVec<[i64; 4]>,
    shadows: SmallVec<[*mut c_void; 8]>,
}

impl Marshalled {
    fn with_capacity(n: usize) -> Marshalled {
        Marshalled {
            args: SmallVec::with_capacity(n),
            sizes: SmallVec::new(),
            shadows: SmallVec::with_capacity(n),
        }
    }

    /// Runs the trampoline. The vectors are never empty-pointer-dangling: a NULL is passed
    /// for an empty list, which the trampolines never read.
    fn run(&self, kernel: &Kernel, mode: Mode, f: Trampoline) -> Result<()> {
        let sizes = if self.sizes.is_empty() {
            ptr::null()
        } else {
            self.sizes.as_ptr()
        };
        let shadows = if mode == Mode::Primal {
            ptr::null()
        } else {
            self.shadows.as_ptr()
        };
        // SAFETY: every pointer was validated against the manifest (dtype, shape, NULL,
        // aliasing) or is scratch memory of the right size owned by the caller of `run`.
        let status = unsafe { f(self.args.as_ptr(), sizes, shadows) };
        if status != 0 {
            return Err(Error::KernelFailed {
                kernel: kernel.desc.name.clone(),
                mode: mode.name(),
                status,
            });
        }
        Ok(())
    }
}

fn size_value(arg: &ArgRef<'_>, dtype: DType) -> i64 {
    // SAFETY: validation checked non-NULL and dtype.
    unsafe { crate::tensor::read_size(arg.data, dtype) }
}

impl Kernel {
    /// Runs the function: `out` arrays are written, `inout` arrays updated in place, nothing else
    /// is touched.
    pub fn call(&self, args: &[ArgRef<'_>]) -> Result<()> {
        let f = self.entry(Mode::Primal)?;
        if self.plan.check(Mode::Primal, args, None, None).is_none() {
            validate(&self.desc, Mode::Primal, args, None)?;
        }
        let mut m = Marshalled::with_capacity(args.len());
        for (desc, arg) in self.desc.args.iter().zip(args) {
            match desc.kind {
                ArgKind::Size => m.sizes.push(size_value(arg, desc.dtype)),
                _ => m.args.push(arg.data),
            }
        }
        m.run(self, Mode::Primal, f)
    }

    /// Forward mode. Does what [`Kernel::call`] does and writes into `tangents_out[i]` the
    /// tangent of every differentiable output `i`, given the tangent `tangents_in[j]` of every
    /// differentiable input `j`. Both lists have one slot per argument; `None` in `tangents_in`
    /// means a zero tangent, `None` in `tangents_out` means the tangent is not wanted.
    /// `tangents_in` is never modified.
    pub fn jvp(
        &self,
        args: &[ArgRef<'_>],
        tangents_in: &[Option<ArgRef<'_>>],
        tangents_out: &[Option<ArgRef<'_>>],
    ) -> Result<()> {
        let f = self.entry(Mode::Jvp)?;
        let numel = match self
            .plan
            .check(Mode::Jvp, args, Some(tangents_in), Some(tangents_out))
        {
            Some(n) => n,
            None => {
                validate(
                    &self.desc,
                    Mode::Jvp,
                    args,
                    Some(Shadows {
                        seeds: tangents_in,
                        results: tangents_out,
                    }),
                )?
                .numel
            }
        };
        let mut scratch = Scratch::default();
        let mut m = Marshalled::with_capacity(args.len());
        for (i, (desc, arg)) in self.desc.args.iter().zip(args).enumerate() {
            let bytes = numel[i] * desc.dtype.size();
            match desc.kind {
                ArgKind::Size => {
                    m.sizes.push(size_value(arg, desc.dtype));
                    continue;
                }
                ArgKind::Scalar => {
                    m.args.push(arg.data);
                    m.shadows.push(if desc.differentiable {
                        scratch.copy_of(data(&tangents_in[i]), bytes)
                    } else {
                        ptr::null_mut()
                    });
                    continue;
                }
                ArgKind::Array => {}
            }
            m.args.push(arg.data);
            let seed = data(&tangents_in[i]);
            let result = data(&tangents_out[i]);
            let shadow = match desc.intent {
                Intent::In if !seed.is_null() => seed,
                Intent::In => scratch.zeroed(bytes),
                Intent::Out if !result.is_null() => result,
                Intent::Out => scratch.zeroed(bytes),
                Intent::Inout if !result.is_null() => {
                    // The tangent is updated in place like the value: start from the seed.
                    if seed.is_null() {
                        // SAFETY: validated buffer of `bytes` bytes.
                        unsafe { ptr::write_bytes(result.cast::<u8>(), 0, bytes) };
                    } else {
                        // SAFETY: validated, non-overlapping buffers of `bytes` bytes.
                        unsafe {
                            ptr::copy_nonoverlapping(seed.cast::<u8>(), result.cast::<u8>(), bytes)
                        };
                    }
                    result
                }
                Intent::Inout => scratch.copy_of(seed, bytes),
            };
            m.shadows.push(shadow);
        }
        m.run(self, Mode::Jvp, f)
    }

    /// Reverse mode. Given the cotangent `cotangents_in[i]` of every differentiable output `i`
    /// (`None`: zero), writes into `cotangents_out[j]` the cotangent of every differentiable input
    /// `j` (`None`: not wanted), overwriting it unless `opts.accumulate` is set. No argument and
    /// no seed is modified: outputs are recomputed in scratch memory (so an `out` argument's data
    /// may be NULL), seeds are copied before Enzyme consumes them.
    pub fn vjp(
        &self,
        args: &[ArgRef<'_>],
        cotangents_in: &[Option<ArgRef<'_>>],
        cotangents_out: &[Option<ArgRef<'_>>],
        opts: VjpOptions,
    ) -> Result<()> {
        let f = self.entry(Mode::Vjp)?;
        let numel =
            match self
                .plan
                .check(Mode::Vjp, args, Some(cotangents_in), Some(cotangents_out))
            {
                Some(n) => n,
                None => {
                    validate(
                        &self.desc,
                        Mode::Vjp,
                        args,
                        Some(Shadows {
                            seeds: cotangents_in,
                            results: cotangents_out,
                        }),
                    )?
                    .numel
                }
            };
        let mut scratch = Scratch::default();
        let mut m = Marshalled::with_capacity(args.len());
        // (argument index, shadow holding the result) to copy out after the call.
        let mut copy_back: Vec<(usize, *mut c_void)> = Vec::new();
        for (i, (desc, arg)) in self.desc.args.iter().zip(args).enumerate() {
            let bytes = numel[i] * desc.dtype.size();
            match desc.kind {
                ArgKind::Size => {
                    m.sizes.push(size_value(arg, desc.dtype));
                    continue;
                }
                ArgKind::Scalar => {
                    m.args.push(arg.data);
                    if desc.differentiable {
                        let slot = scratch.zeroed(bytes);
                        if cotangents_out[i].is_some() {
                            copy_back.push((i, slot));
                        }
                        m.shadows.push(slot);
                    } else {
                        m.shadows.push(ptr::null_mut());
                    }
                    continue;
                }
                ArgKind::Array => {}
            }
            let result = data(&cotangents_out[i]);
            match desc.intent {
                Intent::In => {
                    m.args.push(arg.data);
                    let shadow = if !result.is_null() && !opts.accumulate {
                        // SAFETY: validated buffer of `bytes` bytes; Enzyme adds into it.
                        unsafe { ptr::write_bytes(result.cast::<u8>(), 0, bytes) };
                        result
                    } else if !result.is_null() {
                        result
                    } else {
                        scratch.zeroed(bytes)
                    };
                    m.shadows.push(shadow);
                }
                Intent::Out => {
                    m.args.push(scratch.zeroed(bytes));
                    m.shadows
                        .push(scratch.copy_of(data(&cotangents_in[i]), bytes));
                }
                Intent::Inout => {
                    m.args.push(scratch.copy_of(arg.data, bytes));
                    let shadow = scratch.copy_of(data(&cotangents_in[i]), bytes);
                    if !result.is_null() {
                        copy_back.push((i, shadow));
                    }
                    m.shadows.push(shadow);
                }
            }
        }
        m.run(self, Mode::Vjp, f)?;
        for (i, src) in copy_back {
            let desc = &self.desc.args[i];
            let dst = data(&cotangents_out[i]);
            // SAFETY: `dst` is a validated result buffer of numel elements, `src` scratch.
            unsafe { store(dst, src, numel[i], desc.dtype, opts.accumulate) };
        }
        Ok(())
    }
}
