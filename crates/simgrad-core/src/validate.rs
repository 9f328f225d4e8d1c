//! Checking a call against the manifest before any pointer is dereferenced by a kernel.
//!
//! Checks, in order: argument count; per argument dtype, device, rank, NULL data, size values;
//! named sizes bound consistently across every argument; contiguity in the kernel's memory
//! order; tangents and cotangents matching their argument; no written buffer overlapping any
//! other buffer of the call.

use crate::dims::DimExpr;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::manifest::{ArgDesc, ArgKind, Intent, KernelDesc, Mode, Order};
use crate::tensor::{ArgRef, DEVICE_CPU};
use smallvec::SmallVec;

/// The outcome of a successful validation.
#[derive(Debug, Clone)]
pub struct Bound<'k> {
    /// Value of every named size, in binding order.
    pub sizes: Sizes<'k>,
    /// Element count of every argument (1 for scalars and sizes).
    pub numel: SmallVec<[usize; 8]>,
}

/// Named sizes bound for one call, borrowed from the kernel's manifest (no allocation per name).
pub type Sizes<'k> = SmallVec<[(&'k str, i64, Origin); 4]>;

/// Where a named size got its value, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `size` argument at this index.
    SizeArg(usize),
    /// Dim `dim` of the argument at index `arg`.
    Dim {
        /// Argument index.
        arg: usize,
        /// Dim index.
        dim: usize,
    },
}

impl Bound<'_> {
    /// The value of the named size `name`.
    pub fn size(&self, name: &str) -> Option<i64> {
        lookup(&self.sizes, name)
    }
}

fn lookup(sizes: &Sizes<'_>, name: &str) -> Option<i64> {
    sizes
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, v, _)| *v)
}

fn origin_text(kernel: &KernelDesc, o: Origin) -> String {
    match o {
        Origin::SizeArg(i) => format!("size argument `{}`", kernel.args[i].name),
        Origin::Dim { arg, dim } => format!("dim {dim} of `{}`", kernel.args[arg].name),
    }
}

/// The extra buffers of a derivative call, by argument index (`None`: not given).
pub(crate) struct Shadows<'s, 'a> {
    /// Tangents of inputs (JVP) or cotangents of outputs (VJP): read only.
    pub seeds: &'s [Option<ArgRef<'a>>],
    /// Tangents of outputs (JVP) or cotangents of inputs (VJP): written.
    pub results: &'s [Option<ArgRef<'a>>],
}

/// Validates `args` for calling `kernel` in `mode` with no derivative buffers.
pub fn validate_call<'k>(
    kernel: &'k KernelDesc,
    mode: Mode,
    args: &[ArgRef<'_>],
) -> Result<Bound<'k>> {
    validate(kernel, mode, args, None)
}

pub(crate) fn validate<'k>(
    kernel: &'k KernelDesc,
    mode: Mode,
    args: &[ArgRef<'_>],
    shadows: Option<Shadows<'_, '_>>,
) -> Result<Bound<'k>> {
    let k = &kernel.name;
    if args.len() != kernel.args.len() {
        return Err(Error::ArgCount {
            kernel: k.clone(),
            what: "arguments",
            expected: kernel.args.len(),
            got: args.len(),
        });
    }
    // Per-argument checks that need no sizes.
    for (desc, arg) in kernel.args.iter().zip(args) {
        check_header(kernel, desc, arg, "argument")?;
    }
    let sizes = bind_sizes(kernel, args)?;
    let mut numel: SmallVec<[usize; 8]> = SmallVec::new();
    for (desc, arg) in kernel.args.iter().zip(args) {
        check_shape(kernel, desc, arg, &sizes, "argument")?;
        let n = arg.numel().ok_or_else(|| Error::Shape {
            kernel: k.clone(),
            arg: desc.name.clone(),
            role: "argument",
            message: format!("the element count of shape {:?} overflows", arg.shape),
        })?;
        // An array larger than the address space cannot exist; its byte size would wrap.
        if n.checked_mul(desc.dtype.size())
            .is_none_or(|b| b > isize::MAX as usize)
        {
            return Err(Error::Shape {
                kernel: k.clone(),
                arg: desc.name.clone(),
                role: "argument",
                message: format!(
                    "shape {:?} of {} is larger than memory can hold",
                    arg.shape, desc.dtype
                ),
            });
        }
        // A VJP recomputes `out` arrays in scratch memory and never touches the caller's: their
        // data may be NULL there.
        let unused = mode == Mode::Vjp && desc.kind == ArgKind::Array && desc.intent == Intent::Out;
        if arg.data.is_null() && (desc.kind != ArgKind::Array || n > 0) && !unused {
            return Err(Error::Null {
                kernel: k.clone(),
                arg: desc.name.clone(),
                role: "argument",
            });
        }
        check_layout(kernel, desc, arg, "argument")?;
        numel.push(n);
    }

    let mut buffers: SmallVec<[Buffer; 8]> = SmallVec::new();
    for (i, (desc, arg)) in kernel.args.iter().zip(args).enumerate() {
        let written = mode != Mode::Vjp && desc.kind == ArgKind::Array && desc.is_output();
        buffers.push(Buffer::new(arg, numel[i], written, "argument", i));
    }

    if let Some(sh) = shadows {
        let (seed_role, result_role, seed_name, result_name) = match mode {
            Mode::Jvp => (
                "tangent of",
                "output tangent of",
                "input tangents",
                "output tangents",
            ),
            _ => (
                "cotangent of",
                "input cotangent of",
                "output cotangents",
                "input cotangents",
            ),
        };
        for (list, what) in [(sh.seeds, seed_name), (sh.results, result_name)] {
            if list.len() != kernel.args.len() {
                return Err(Error::ArgCount {
                    kernel: k.clone(),
                    what,
                    expected: kernel.args.len(),
                    got: list.len(),
                });
            }
        }
        for (i, desc) in kernel.args.iter().enumerate() {
            // JVP seeds are input tangents, VJP seeds are output cotangents.
            let (seed_ok, result_ok) = match mode {
                Mode::Jvp => (desc.is_input(), desc.is_output()),
                _ => (desc.is_output(), desc.is_input()),
            };
            for (slot, ok, role, written) in [
                (&sh.seeds[i], seed_ok, seed_role, false),
                (&sh.results[i], result_ok, result_role, true),
            ] {
                let Some(t) = slot else { continue };
                if !desc.differentiable || !ok {
                    let why = if !desc.differentiable {
                        "it is not differentiable".to_string()
                    } else {
                        format!("it is `{:?}`", desc.intent).to_lowercase()
                    };
                    return Err(Error::Unexpected {
                        kernel: k.clone(),
                        message: format!(
                            "{} {role} `{}` was given, but {why}; pass NULL there",
                            if role.starts_with(['a', 'e', 'i', 'o', 'u']) {
                                "an"
                            } else {
                                "a"
                            },
                            desc.name
                        ),
                    });
                }
                check_header(kernel, desc, t, role)?;
                check_shape(kernel, desc, t, &sizes, role)?;
                if t.data.is_null() && numel[i] > 0 {
                    return Err(Error::Null {
                        kernel: k.clone(),
                        arg: desc.name.clone(),
                        role,
                    });
                }
                check_layout(kernel, desc, t, role)?;
                buffers.push(Buffer::new(t, numel[i], written, role, i));
            }
        }
    }
    check_aliasing(kernel, &buffers)?;
    Ok(Bound { sizes, numel })
}

fn dtype_of(arg: &ArgRef<'_>) -> String {
    match arg.dtype {
        Ok(d) => d.to_string(),
        Err((code, bits, lanes)) => {
            format!("unsupported DLPack dtype (code {code}, bits {bits}, lanes {lanes})")
        }
    }
}

fn check_header(
    kernel: &KernelDesc,
    desc: &ArgDesc,
    arg: &ArgRef<'_>,
    role: &'static str,
) -> Result<()> {
    if arg.dtype != Ok(desc.dtype) {
        return Err(Error::DType {
            kernel: kernel.name.clone(),
            arg: desc.name.clone(),
            role,
            expected: desc.dtype,
            got: dtype_of(arg),
        });
    }
    if arg.device_type != DEVICE_CPU {
        return Err(Error::Layout {
            kernel: kernel.name.clone(),
            arg: desc.name.clone(),
            role,
            message: format!(
                "expected host memory (DLPack device type {DEVICE_CPU}, CPU), got device type {}; copy it to the CPU first",
                arg.device_type
            ),
        });
    }
    if arg.shape.len() != desc.shape.len() {
        return Err(Error::Rank {
            kernel: kernel.name.clone(),
            arg: desc.name.clone(),
            role,
            expected: desc.shape.len(),
            shape: shape_text(desc),
            got: arg.shape.len(),
        });
    }
    if let Some(s) = arg.strides {
        if s.len() != arg.shape.len() {
            return Err(Error::Layout {
                kernel: kernel.name.clone(),
                arg: desc.name.clone(),
                role,
                message: format!("{} strides for rank {}", s.len(), arg.shape.len()),
            });
        }
    }
    Ok(())
}

fn shape_text(desc: &ArgDesc) -> String {
    let dims: Vec<String> = desc.shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// Binds every named size: from `size` arguments first, then from bare-name array dims.
fn bind_sizes<'k>(kernel: &'k KernelDesc, args: &[ArgRef<'_>]) -> Result<Sizes<'k>> {
    let mut sizes: Sizes<'k> = SmallVec::new();
    for (i, (desc, arg)) in kernel.args.iter().zip(args).enumerate() {
        if desc.kind != ArgKind::Size {
            continue;
        }
        if arg.data.is_null() {
            return Err(Error::Null {
                kernel: kernel.name.clone(),
                arg: desc.name.clone(),
                role: "size",
            });
        }
        // SAFETY: non-null and of the checked dtype; the caller promises it points to a value.
        let v = unsafe { crate::tensor::read_size(arg.data, desc.dtype) };
        if v < 0 {
            return Err(Error::Shape {
                kernel: kernel.name.clone(),
                arg: desc.name.clone(),
                role: "size",
                message: format!("a size must not be negative, got {v}"),
            });
        }
        sizes.push((desc.name.as_str(), v, Origin::SizeArg(i)));
    }
    for (i, (desc, arg)) in kernel.args.iter().zip(args).enumerate() {
        for (d, dim) in desc.shape.iter().enumerate() {
            if let Some(name) = dim.as_name() {
                if lookup(&sizes, name).is_none() {
                    sizes.push((name, arg.shape[d], Origin::Dim { arg: i, dim: d }));
                }
            }
        }
    }
    Ok(sizes)
}

fn check_shape(
    kernel: &KernelDesc,
    desc: &ArgDesc,
    arg: &ArgRef<'_>,
    sizes: &Sizes<'_>,
    role: &'static str,
) -> Result<()> {
    for (d, dim) in desc.shape.iter().enumerate() {
        let got = arg.shape[d];
        let err = |message: String| Error::Shape {
            kernel: kernel.name.clone(),
            arg: desc.name.clone(),
            role,
            message,
        };
        if got < 0 {
            return Err(err(format!("dim {d} is negative ({got})")));
        }
        let expected = dim
            .eval_with(&|n| lookup(sizes, n))
            .ok_or_else(|| err(format!("dim {d} (`{dim}`) cannot be evaluated")))?;
        if expected != got {
            let from: Vec<String> = dim
                .names()
                .iter()
                .map(|n| {
                    let (_, v, o) = sizes
                        .iter()
                        .find(|(m, _, _)| m == n)
                        .expect("evaluated, so bound");
                    format!("{n} = {v} from {}", origin_text(kernel, *o))
                })
                .collect();
            let why = if from.is_empty() {
                String::new()
            } else {
                format!(" ({})", from.join(", "))
            };
            let values: Vec<i64> = desc
                .shape
                .iter()
                .map(|x| x.eval_with(&|n| lookup(sizes, n)).unwrap_or(-1))
                .collect();
            if desc.shape.iter().all(|x| matches!(x, DimExpr::Fixed(_))) {
                return Err(err(format!(
                    "expected shape {values:?}, got {:?}",
                    arg.shape
                )));
            }
            return Err(err(format!(
                "expected shape {} = {values:?}, got {:?}: dim {d} is `{dim}` = {expected}{why}, got {got}",
                shape_text(desc),
                arg.shape
            )));
        }
    }
    Ok(())
}

fn contiguous_strides(shape: &[i64], order: Order) -> Vec<i64> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1i64;
    let idx: Vec<usize> = match order {
        Order::C => (0..shape.len()).rev().collect(),
        Order::F => (0..shape.len()).collect(),
    };
    for i in idx {
        strides[i] = acc;
        acc = acc.saturating_mul(shape[i].max(1));
    }
    strides
}

fn check_layout(
    kernel: &KernelDesc,
    desc: &ArgDesc,
    arg: &ArgRef<'_>,
    role: &'static str,
) -> Result<()> {
    // Rank 0 and empty arrays have no layout; NULL strides mean row-major (DLPack); strides of
    // dims with extent 1 do not matter. The fast path's rule, so both paths agree.
    if crate::plan::layout_ok(arg, kernel.order) {
        return Ok(());
    }
    let given = match arg.strides {
        Some(s) => s.to_vec(),
        None => contiguous_strides(arg.shape, Order::C),
    };
    let want = contiguous_strides(arg.shape, kernel.order);
    let order = match kernel.order {
        Order::C => "row-major (C)",
        Order::F => "column-major (Fortran)",
    };
    Err(Error::Layout {
        kernel: kernel.name.clone(),
        arg: desc.name.clone(),
        role,
        message: format!(
            "expected a contiguous {order} array with strides {want:?} (in elements), got strides {given:?}{}",
            if arg.strides.is_none() { " (implied by NULL strides)" } else { "" }
        ),
    })
}

struct Buffer {
    start: usize,
    end: usize,
    written: bool,
    arg: u32,
    role: &'static str,
}

impl Buffer {
    fn new(
        arg: &ArgRef<'_>,
        numel: usize,
        written: bool,
        role: &'static str,
        index: usize,
    ) -> Buffer {
        let start = arg.data as usize;
        let size = arg.dtype.map(DType::size).unwrap_or(1);
        Buffer {
            start,
            end: start.saturating_add(numel.saturating_mul(size)),
            written,
            role,
            arg: index as u32,
        }
    }

    fn label(&self, kernel: &KernelDesc) -> String {
        format!("{} `{}`", self.role, kernel.args[self.arg as usize].name)
    }
}

fn check_aliasing(kernel: &KernelDesc, buffers: &[Buffer]) -> Result<()> {
    for (i, w) in buffers.iter().enumerate() {
        if !w.written || w.start == w.end {
            continue;
        }
        for (j, o) in buffers.iter().enumerate() {
            if i == j || o.start == o.end {
                continue;
            }
            if w.start < o.end && o.start < w.end {
                return Err(Error::Alias {
                    kernel: kernel.name.clone(),
                    written: w.label(kernel),
                    other: o.label(kernel),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    fn kernel() -> KernelDesc {
        let text = r#"{
          "manifest_version": 1, "abi_version": 1, "generator": "test",
          "kernels": [{
            "name": "mv", "symbol": "mv", "order": "C",
            "args": [
              {"name": "n", "kind": "size", "dtype": "i64", "intent": "in", "differentiable": false},
              {"name": "a", "kind": "array", "dtype": "f64", "shape": ["n", "m"], "intent": "in", "differentiable": true},
              {"name": "x", "kind": "array", "dtype": "f64", "shape": ["m"], "intent": "in", "differentiable": true},
              {"name": "y", "kind": "array", "dtype": "f64", "shape": ["n"], "intent": "out", "differentiable": true}
            ],
            "modes": {"primal": {"symbol": "p"}}
          }]
        }"#;
        Manifest::from_json(text, "t").unwrap().kernels.remove(0)
    }

    #[test]
    fn accepts_consistent_arguments_and_binds_sizes() {
        let k = kernel();
        let n = 2i64;
        let a = [0.0f64; 6];
        let x = [0.0f64; 3];
        let mut y = [0.0f64; 2];
        let args = [
            ArgRef::scalar(&n),
            ArgRef::array_in(&a, &[2, 3]),
            ArgRef::array_in(&x, &[3]),
            ArgRef::array(&mut y, &[2]),
        ];
        let b = validate_call(&k, Mode::Primal, &args).unwrap();
        assert_eq!(b.size("n"), Some(2));
        assert_eq!(b.size("m"), Some(3));
        assert_eq!(b.numel.as_slice(), &[1, 6, 3, 2]);
    }

    #[test]
    fn names_the_argument_and_the_mismatch() {
        let k = kernel();
        let n = 2i64;
        let a = [0.0f64; 6];
        let x = [0.0f64; 4];
        let xf = [0.0f32; 3];
        let mut y = [0.0f64; 2];
        let shape_a = [2i64, 3];
        let err = |args: &[ArgRef<'_>]| {
            validate_call(&k, Mode::Primal, args)
                .unwrap_err()
                .to_string()
        };

        let e = err(&[
            ArgRef::scalar(&n),
            ArgRef::array_in(&a, &shape_a),
            ArgRef::array_in(&x, &[4]),
            ArgRef::array(&mut y, &[2]),
        ]);
        assert!(
            e.contains("`x`") && e.contains("got 4") && e.contains("dim 1 of `a`"),
            "{e}"
        );

        let e = err(&[
            ArgRef::scalar(&n),
            ArgRef::array_in(&a, &shape_a),
            ArgRef::array_in(&xf, &[3]),
            ArgRef::array(&mut y, &[2]),
        ]);
        assert!(
            e.contains("`x`") && e.contains("expected dtype f64, got f32"),
            "{e}"
        );

        let e = err(&[
            ArgRef::scalar(&n),
            ArgRef::array_in(&a, &[6]),
            ArgRef::array_in(&x, &[3]),
            ArgRef::array(&mut y, &[2]),
        ]);
        assert!(e.contains("`a`") && e.contains("expected rank 2"), "{e}");

        let e = err(&[ArgRef::scalar(&n), ArgRef::array_in(&a, &shape_a)]);
        assert!(e.contains("expected 4 arguments, got 2"), "{e}");

        // y written over a: aliasing.
        let mut big = [0.0f64; 8];
        let p = big.as_mut_ptr();
        let alias_a = ArgRef {
            data: p.cast(),
            ..ArgRef::array_in(&a, &shape_a)
        };
        let alias_y = ArgRef {
            data: unsafe { p.add(4) }.cast(),
            ..ArgRef::array(&mut y, &[2])
        };
        let e = err(&[
            ArgRef::scalar(&n),
            alias_a,
            ArgRef::array_in(&x, &[3]),
            alias_y,
        ]);
        assert!(e.contains("argument `y` overlaps argument `a`"), "{e}");

        // Transposed strides are not row-major.
        let strided = ArgRef {
            strides: Some(&[1, 2]),
            ..ArgRef::array_in(&a, &shape_a)
        };
        let e = err(&[
            ArgRef::scalar(&n),
            strided,
            ArgRef::array_in(&x, &[3]),
            ArgRef::array(&mut y, &[2]),
        ]);
        assert!(
            e.contains("`a`") && e.contains("strides [3, 1]") && e.contains("got strides [1, 2]"),
            "{e}"
        );

        let null_x = ArgRef {
            data: std::ptr::null_mut(),
            ..ArgRef::array_in(&x, &[3])
        };
        let e = err(&[
            ArgRef::scalar(&n),
            ArgRef::array_in(&a, &shape_a),
            null_x,
            ArgRef::array(&mut y, &[2]),
        ]);
        assert!(e.contains("`x`: data pointer is NULL"), "{e}");

        let neg = -1i64;
        let e = err(&[
            ArgRef::scalar(&neg),
            ArgRef::array_in(&a, &shape_a),
            ArgRef::array_in(&x, &[3]),
            ArgRef::array(&mut y, &[2]),
        ]);
        assert!(e.contains("must not be negative"), "{e}");

        // Found by the fuzzer: an element count that fits usize with a byte size that does not.
        let big = 1i64 << 60;
        let (shape_big_a, shape_big_x) = ([2, big], [big]);
        let huge_a = ArgRef {
            data: a.as_ptr() as *mut _,
            ..ArgRef::array_in(&a, &shape_big_a)
        };
        let huge_x = ArgRef {
            data: x.as_ptr() as *mut _,
            ..ArgRef::array_in(&x, &shape_big_x)
        };
        let e = validate_call(
            &k,
            Mode::Primal,
            &[
                ArgRef::scalar(&n),
                huge_a,
                huge_x,
                ArgRef::array(&mut y, &[2]),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("argument `a`") && e.contains("larger than memory can hold"),
            "{e}"
        );

        let gpu = ArgRef {
            device_type: 2,
            ..ArgRef::array_in(&x, &[3])
        };
        let e = err(&[
            ArgRef::scalar(&n),
            ArgRef::array_in(&a, &shape_a),
            gpu,
            ArgRef::array(&mut y, &[2]),
        ]);
        assert!(
            e.contains("host memory") && e.contains("device type 2"),
            "{e}"
        );
    }
}
