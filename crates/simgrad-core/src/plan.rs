//! The fast path of argument validation.
//!
//! At library open each kernel's manifest entry is compiled into a [`Plan`]: every named size
//! gets a slot, every dim becomes a fixed value, a slot, or an expression over slots. A call is
//! then checked without allocating or comparing names: dtype, device, rank, sizes, shapes, NULL
//! data, contiguity and aliasing, exactly the rules of [`crate::validate`]. The fast path only
//! answers "valid" or "not sure"; on "not sure" the caller runs the full validation, which
//! produces the error message (or accepts a call the fast path does not handle, such as a
//! kernel with more than [`MAX_SLOTS`] named sizes). A test checks both agree.

use crate::dims::DimExpr;
use crate::dtype::DType;
use crate::manifest::{ArgKind, KernelDesc, Mode, Order};
use crate::tensor::{ArgRef, DEVICE_CPU};
use smallvec::SmallVec;

/// Named sizes the fast path handles; kernels with more take the full validation.
pub(crate) const MAX_SLOTS: usize = 16;

/// A dim expression with names resolved to slots.
#[derive(Debug, Clone)]
enum SlotExpr {
    Fixed(i64),
    Slot(usize),
    Add(Box<SlotExpr>, Box<SlotExpr>),
    Sub(Box<SlotExpr>, Box<SlotExpr>),
    Mul(Box<SlotExpr>, Box<SlotExpr>),
}

impl SlotExpr {
    fn eval(&self, slots: &[i64]) -> Option<i64> {
        match self {
            SlotExpr::Fixed(v) => Some(*v),
            SlotExpr::Slot(s) => Some(slots[*s]),
            SlotExpr::Add(a, b) => a.eval(slots)?.checked_add(b.eval(slots)?),
            SlotExpr::Sub(a, b) => a.eval(slots)?.checked_sub(b.eval(slots)?),
            SlotExpr::Mul(a, b) => a.eval(slots)?.checked_mul(b.eval(slots)?),
        }
    }
}

#[derive(Debug, Clone)]
struct ArgPlan {
    kind: ArgKind,
    dtype: DType,
    dims: Vec<SlotExpr>,
    /// Written by the primal and the JVP (an `out`/`inout` array).
    output_array: bool,
    input: bool,
    output: bool,
    differentiable: bool,
}

/// Where a slot's value comes from, in binding order.
#[derive(Debug, Clone, Copy)]
enum Bind {
    SizeArg {
        arg: usize,
        slot: usize,
        dtype: DType,
    },
    Dim {
        arg: usize,
        dim: usize,
        slot: usize,
    },
}

/// A kernel's compiled validation rules.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    args: Vec<ArgPlan>,
    binds: Vec<Bind>,
    order: Order,
    usable: bool,
}

impl Plan {
    /// Compiles the rules of `desc` (which the manifest validation already checked).
    pub(crate) fn new(desc: &KernelDesc) -> Plan {
        let mut names: Vec<&str> = Vec::new();
        let mut binds = Vec::new();
        for (i, a) in desc.args.iter().enumerate() {
            if a.kind == ArgKind::Size && !names.contains(&a.name.as_str()) {
                binds.push(Bind::SizeArg {
                    arg: i,
                    slot: names.len(),
                    dtype: a.dtype,
                });
                names.push(&a.name);
            }
        }
        for (i, a) in desc.args.iter().enumerate() {
            for (d, dim) in a.shape.iter().enumerate() {
                if let Some(n) = dim.as_name() {
                    if !names.contains(&n) {
                        binds.push(Bind::Dim {
                            arg: i,
                            dim: d,
                            slot: names.len(),
                        });
                        names.push(n);
                    }
                }
            }
        }
        let mut usable = names.len() <= MAX_SLOTS;
        let resolve = |e: &DimExpr, usable: &mut bool| -> SlotExpr {
            fn go(e: &DimExpr, names: &[&str], usable: &mut bool) -> SlotExpr {
                match e {
                    DimExpr::Fixed(v) => SlotExpr::Fixed(*v),
                    DimExpr::Name(n) => match names.iter().position(|m| m == n) {
                        Some(s) => SlotExpr::Slot(s),
                        None => {
                            *usable = false;
                            SlotExpr::Fixed(-1)
                        }
                    },
                    DimExpr::Add(a, b) => SlotExpr::Add(
                        Box::new(go(a, names, usable)),
                        Box::new(go(b, names, usable)),
                    ),
                    DimExpr::Sub(a, b) => SlotExpr::Sub(
                        Box::new(go(a, names, usable)),
                        Box::new(go(b, names, usable)),
                    ),
                    DimExpr::Mul(a, b) => SlotExpr::Mul(
                        Box::new(go(a, names, usable)),
                        Box::new(go(b, names, usable)),
                    ),
                }
            }
            go(e, &names, usable)
        };
        let args = desc
            .args
            .iter()
            .map(|a| ArgPlan {
                kind: a.kind,
                dtype: a.dtype,
                dims: a.shape.iter().map(|d| resolve(d, &mut usable)).collect(),
                output_array: a.kind == ArgKind::Array && a.is_output(),
                input: a.is_input(),
                output: a.is_output(),
                differentiable: a.differentiable,
            })
            .collect();
        Plan {
            args,
            binds,
            order: desc.order,
            usable,
        }
    }

    /// `Some(element counts)` when the call is certainly valid; `None` when the full validation
    /// must decide (and explain).
    pub(crate) fn check(
        &self,
        mode: Mode,
        args: &[ArgRef<'_>],
        seeds: Option<&[Option<ArgRef<'_>>]>,
        results: Option<&[Option<ArgRef<'_>>]>,
    ) -> Option<SmallVec<[usize; 8]>> {
        if !self.usable || args.len() != self.args.len() {
            return None;
        }
        for (p, a) in self.args.iter().zip(args) {
            if !header_ok(p, a) {
                return None;
            }
        }
        let mut slots = [0i64; MAX_SLOTS];
        for b in &self.binds {
            match *b {
                Bind::SizeArg { arg, slot, dtype } => {
                    let a = &args[arg];
                    if a.data.is_null() {
                        return None;
                    }
                    // SAFETY: non-NULL, dtype checked by header_ok; points to the size value.
                    let v = unsafe { crate::tensor::read_size(a.data, dtype) };
                    if v < 0 {
                        return None;
                    }
                    slots[slot] = v;
                }
                Bind::Dim { arg, dim, slot } => slots[slot] = args[arg].shape[dim],
            }
        }
        let mut numel: SmallVec<[usize; 8]> = SmallVec::with_capacity(args.len());
        // (start, end, written) of every buffer of the call.
        let mut spans = Spans::default();
        for (p, a) in self.args.iter().zip(args) {
            let n = shape_ok(p, a, &slots)?;
            let unused = mode == Mode::Vjp && p.output_array && !p.input;
            if a.data.is_null() && (p.kind != ArgKind::Array || n > 0) && !unused {
                return None;
            }
            if !layout_ok(a, self.order) {
                return None;
            }
            numel.push(n);
            let bytes = n.checked_mul(p.dtype.size())?;
            if bytes > isize::MAX as usize {
                return None;
            }
            // A NULL buffer (an unused VJP output) occupies no memory.
            let end = if a.data.is_null() {
                0
            } else {
                (a.data as usize).checked_add(bytes)?
            };
            spans.push((a.data as usize, end, mode != Mode::Vjp && p.output_array))?;
        }
        if let (Some(seeds), Some(results)) = (seeds, results) {
            if seeds.len() != self.args.len() || results.len() != self.args.len() {
                return None;
            }
            for (i, p) in self.args.iter().enumerate() {
                let (seed_ok, result_ok) = match mode {
                    Mode::Jvp => (p.input, p.output),
                    _ => (p.output, p.input),
                };
                for (slot, ok, written) in
                    [(&seeds[i], seed_ok, false), (&results[i], result_ok, true)]
                {
                    let Some(t) = slot else { continue };
                    if !p.differentiable || !ok || !header_ok(p, t) {
                        return None;
                    }
                    // A tangent has exactly its argument's (validated) shape.
                    if t.shape != args[i].shape
                        || (t.data.is_null() && numel[i] > 0)
                        || !layout_ok(t, self.order)
                    {
                        return None;
                    }
                    let bytes = numel[i] * p.dtype.size();
                    spans.push((
                        t.data as usize,
                        (t.data as usize).checked_add(bytes)?,
                        written,
                    ))?;
                }
            }
        } else if seeds.is_some() || results.is_some() {
            return None;
        }
        let spans = spans.as_slice();
        for (i, w) in spans.iter().enumerate() {
            if !w.2 || w.0 == w.1 {
                continue;
            }
            for (j, o) in spans.iter().enumerate() {
                if i != j && o.0 != o.1 && w.0 < o.1 && o.0 < w.1 {
                    return None;
                }
            }
        }
        Some(numel)
    }
}

/// `(start, end, written)` of the buffers of one call, on the stack; a call with more buffers
/// than fit takes the full validation.
#[derive(Default)]
struct Spans {
    items: [(usize, usize, bool); 24],
    len: usize,
}

impl Spans {
    #[inline]
    fn push(&mut self, s: (usize, usize, bool)) -> Option<()> {
        *self.items.get_mut(self.len)? = s;
        self.len += 1;
        Some(())
    }

    fn as_slice(&self) -> &[(usize, usize, bool)] {
        &self.items[..self.len]
    }
}

#[inline]
fn header_ok(p: &ArgPlan, a: &ArgRef<'_>) -> bool {
    a.dtype == Ok(p.dtype)
        && a.device_type == DEVICE_CPU
        && a.shape.len() == p.dims.len()
        && a.strides.is_none_or(|s| s.len() == a.shape.len())
}

/// The element count when every dim matches.
fn shape_ok(p: &ArgPlan, a: &ArgRef<'_>, slots: &[i64]) -> Option<usize> {
    let mut n = 1usize;
    for (d, e) in p.dims.iter().enumerate() {
        let got = a.shape[d];
        let want = match e {
            SlotExpr::Fixed(v) => *v,
            SlotExpr::Slot(s) => slots[*s],
            other => other.eval(slots)?,
        };
        if got < 0 || want != got {
            return None;
        }
        n = n.checked_mul(usize::try_from(got).ok()?)?;
    }
    Some(n)
}

/// Whether `a` is contiguous in `order` (the rule [`crate::validate`] explains on failure).
#[inline]
pub(crate) fn layout_ok(a: &ArgRef<'_>, order: Order) -> bool {
    if (a.strides.is_none() && order == Order::C) || a.shape.is_empty() || a.shape.contains(&0) {
        return true;
    }
    let Some(given) = a.strides else {
        return order == Order::C || a.shape.iter().filter(|&&n| n != 1).count() <= 1;
    };
    let mut expect = 1i64;
    let mut ok = true;
    let mut visit = |d: usize| {
        let n = a.shape[d];
        if n != 1 && given[d] != expect {
            ok = false;
        }
        expect = expect.saturating_mul(n.max(1));
    };
    match order {
        Order::C => (0..a.shape.len()).rev().for_each(&mut visit),
        Order::F => (0..a.shape.len()).for_each(&mut visit),
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::validate::{validate, Shadows};

    fn kernels() -> Vec<KernelDesc> {
        let text = r#"{
          "manifest_version": 1, "abi_version": 1, "generator": "test",
          "kernels": [
            {"name": "mv", "symbol": "mv", "order": "C",
             "args": [
              {"name": "n", "kind": "size", "dtype": "i64", "intent": "in", "differentiable": false},
              {"name": "a", "kind": "array", "dtype": "f64", "shape": ["n", "m"], "intent": "in", "differentiable": true},
              {"name": "x", "kind": "array", "dtype": "f64", "shape": ["m"], "intent": "in", "differentiable": true},
              {"name": "y", "kind": "array", "dtype": "f64", "shape": ["2*n"], "intent": "inout", "differentiable": true}],
             "modes": {"primal": {"symbol": "p"}}},
            {"name": "ft", "symbol": "ft", "order": "F",
             "args": [
              {"name": "k", "kind": "size", "dtype": "i32", "intent": "in", "differentiable": false},
              {"name": "s", "kind": "scalar", "dtype": "f32", "intent": "in", "differentiable": true},
              {"name": "u", "kind": "array", "dtype": "f32", "shape": ["k", 2], "intent": "out", "differentiable": true},
              {"name": "i", "kind": "array", "dtype": "i32", "shape": ["k"], "intent": "in", "differentiable": false}],
             "modes": {"primal": {"symbol": "p"}}}
          ]
        }"#;
        Manifest::from_json(text, "t").unwrap().kernels
    }

    use crate::check::Rng;

    trait Pick {
        fn pick<T: Copy>(&mut self, v: &[T]) -> T;
        fn next(&mut self) -> u64;
    }

    impl Pick for Rng {
        fn pick<T: Copy>(&mut self, v: &[T]) -> T {
            v[(self.next_u64() % v.len() as u64) as usize]
        }
        fn next(&mut self) -> u64 {
            self.next_u64()
        }
    }

    /// The fast path accepts exactly what the full validation accepts, on random calls that
    /// are mostly right and sometimes wrong in one way or another.
    #[test]
    fn fast_path_agrees_with_full_validation() {
        let mut rng = Rng(7);
        let memory = vec![0u64; 4096];
        let base = memory.as_ptr() as usize;
        let sizes_mem = [2i64, 3, -1, 0];
        let sizes32 = [2i32, 3, 0];
        let mut accepted = 0;
        for kernel in kernels() {
            let plan = Plan::new(&kernel);
            // Miri runs this too (`cargo xtask miri`), a thousand times slower.
            for _ in 0..if cfg!(miri) { 50 } else { 20_000 } {
                let mode = rng.pick(&[Mode::Primal, Mode::Jvp, Mode::Vjp]);
                // A consistent call first: every name gets a value, shapes follow the dims.
                let mut names = crate::dims::SizeBindings::new();
                let mut size_ptrs = Vec::new();
                for a in &kernel.args {
                    if a.kind == ArgKind::Size {
                        let (p, v) = if a.dtype == DType::I32 {
                            let j = rng.pick(&[0usize, 1, 2]);
                            (
                                sizes32.as_ptr().wrapping_add(j) as usize,
                                i64::from(sizes32[j]),
                            )
                        } else {
                            let j = rng.pick(&[0usize, 1, 1, 0, 3, 2]);
                            (sizes_mem.as_ptr().wrapping_add(j) as usize, sizes_mem[j])
                        };
                        names.insert(a.name.clone(), v);
                        size_ptrs.push(p);
                    } else {
                        size_ptrs.push(0);
                    }
                }
                for a in &kernel.args {
                    for d in &a.shape {
                        for n in d.names() {
                            names
                                .entry(n.to_string())
                                .or_insert_with(|| rng.pick(&[1i64, 2, 3]));
                        }
                    }
                }
                let mutate = rng.next().is_multiple_of(2);
                let victim = (rng.next() % kernel.args.len() as u64) as usize;
                let mut shapes: Vec<Vec<i64>> = Vec::new();
                let mut strides: Vec<Option<Vec<i64>>> = Vec::new();
                let mut refs_meta = Vec::new();
                for (i, a) in kernel.args.iter().enumerate() {
                    let hit = mutate && i == victim;
                    let mut shape: Vec<i64> = a
                        .shape
                        .iter()
                        .map(|d| d.eval(&names).unwrap_or(0).max(0))
                        .collect();
                    let mut st = None;
                    let mut data = match a.kind {
                        ArgKind::Size => size_ptrs[i],
                        _ => base + 8 * (rng.pick(&[0usize, 1, 100]) + 400 * i),
                    };
                    let mut dtype = a.dtype;
                    if kernel.order == Order::F && shape.len() == 2 {
                        st = Some(vec![1, shape[0].max(1)]);
                    }
                    if hit {
                        match rng.next() % 6 {
                            0 => {
                                shape = (0..rng.pick(&[0usize, 1, 2, 3]))
                                    .map(|_| rng.pick(&[0i64, 1, 2, 3, 4, 6, -1]))
                                    .collect()
                            }
                            1 if !shape.is_empty() => {
                                let d = (rng.next() % shape.len() as u64) as usize;
                                shape[d] = rng.pick(&[0i64, 1, 2, 3, 4, 6, -1]);
                            }
                            2 => {
                                st = Some(
                                    (0..shape.len())
                                        .map(|_| rng.pick(&[1i64, 2, 3, 4]))
                                        .collect(),
                                )
                            }
                            3 if a.kind != ArgKind::Size => {
                                data = rng
                                    .pick(&[0usize, base + 8 * 400 * ((i + 1) % kernel.args.len())])
                            }
                            4 => {
                                dtype = rng.pick(&[DType::F32, DType::F64, DType::I32, DType::I64])
                            }
                            _ => st = None,
                        }
                    }
                    shapes.push(shape);
                    strides.push(st);
                    refs_meta.push((data, dtype));
                }
                let args: Vec<ArgRef<'_>> = (0..kernel.args.len())
                    .map(|i| ArgRef {
                        data: refs_meta[i].0 as *mut std::ffi::c_void,
                        dtype: Ok(refs_meta[i].1),
                        device_type: if rng.next().is_multiple_of(200) {
                            2
                        } else {
                            DEVICE_CPU
                        },
                        shape: &shapes[i],
                        strides: strides[i].as_deref(),
                    })
                    .collect();
                let with_shadows = mode != Mode::Primal;
                let seeds: Vec<Option<ArgRef<'_>>> = args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        (with_shadows && rng.next().is_multiple_of(3)).then(|| ArgRef {
                            data: (base + 8 * (2000 + 300 * i)) as *mut _,
                            ..*a
                        })
                    })
                    .collect();
                let results: Vec<Option<ArgRef<'_>>> = args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        (with_shadows && rng.next().is_multiple_of(3)).then(|| ArgRef {
                            data: (base + 8 * (rng.pick(&[2100usize, 3000]) + 300 * i)) as *mut _,
                            ..*a
                        })
                    })
                    .collect();
                let (fast, slow) = if with_shadows {
                    (
                        plan.check(mode, &args, Some(&seeds), Some(&results)),
                        validate(
                            &kernel,
                            mode,
                            &args,
                            Some(Shadows {
                                seeds: &seeds,
                                results: &results,
                            }),
                        ),
                    )
                } else {
                    (
                        plan.check(mode, &args, None, None),
                        validate(&kernel, mode, &args, None),
                    )
                };
                assert_eq!(
                    fast.is_some(),
                    slow.is_ok(),
                    "{kernel:?} {mode:?} {args:?} {seeds:?} {results:?}: {slow:?}"
                );
                if let (Some(f), Ok(s)) = (fast, slow) {
                    assert_eq!(f, s.numel);
                    accepted += 1;
                }
            }
        }
        let floor = if cfg!(miri) { 10 } else { 5000 };
        assert!(
            accepted > floor,
            "the random calls exercise the accepting path too ({accepted})"
        );
        eprintln!("{accepted} random calls accepted by both");
    }
}
