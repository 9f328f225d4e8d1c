//! Gradient checks on random inputs: JVP against central finite differences, and VJP against JVP
//! by the dot-product test ⟨w, J·v⟩ = ⟨Jᵀ·w, v⟩ (against finite differences when the kernel has
//! no JVP). Every call's inputs and seeds are checksummed before and after: a mode that changes
//! them fails the check.
//!
//! Random inputs: floating-point values uniform in [0.5, 2) (positive, so `log`/`sqrt` kernels
//! are in their domain), integer arrays zero (safe as indices), integer scalars 1, every named
//! size [`CheckOptions::size`]. Tangents and cotangents are uniform in [-1, 1).

use crate::dims::SizeBindings;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::invoke::VjpOptions;
use crate::library::{Kernel, Library};
use crate::manifest::{ArgKind, Mode, Order};
use crate::tensor::{ArgRef, DEVICE_CPU};

/// Settings of a gradient check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Seed of the random inputs.
    pub seed: u64,
    /// Value of every named size, for [`check_kernel`].
    pub size: i64,
    /// [`check_library`] checks every kernel with every named size set to each of these in
    /// turn (default 2, 3 and 7: small sizes catch derivatives that are wrong only when loops
    /// run fewer iterations than a vector width, as `docs/pipeline.md` found).
    pub sizes: Vec<i64>,
    /// Tolerance for JVP vs finite differences; default 1e-6 (f64) or 2e-2 (f32).
    pub fd_tolerance: Option<f64>,
    /// Tolerance of the dot-product test; default 1e-9 (f64) or 1e-3 (f32).
    pub dot_tolerance: Option<f64>,
    /// Only these kernels (all when empty).
    pub kernels: Vec<String>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            seed: 0,
            size: 7,
            sizes: vec![2, 3, 7],
            fd_tolerance: None,
            dot_tolerance: None,
            kernels: Vec::new(),
        }
    }
}

/// The result of one comparison.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Kernel name.
    pub kernel: String,
    /// What was compared (`jvp vs central FD`, `vjp vs jvp (dot product)`, ...).
    pub test: String,
    /// Worst relative error seen.
    pub error: f64,
    /// The tolerance applied.
    pub tolerance: f64,
    /// Whether the comparison passed (and no input or seed was modified).
    pub passed: bool,
    /// Extra explanation for a failure.
    pub note: String,
}

impl std::fmt::Display for CheckResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<6} {:<20} {:<28} rel. error {:.2e} (tolerance {:.0e}){}",
            if self.passed { "ok" } else { "FAILED" },
            self.kernel,
            self.test,
            self.error,
            self.tolerance,
            if self.note.is_empty() {
                String::new()
            } else {
                format!("  {}", self.note)
            }
        )
    }
}

/// SplitMix64: small, seedable, good enough for test inputs.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }
}

/// A typed, 8-byte aligned buffer.
#[derive(Clone)]
pub struct Buf {
    /// Element type.
    pub dtype: DType,
    /// Element count.
    pub n: usize,
    /// The storage, in 8-byte words (so every dtype is aligned).
    pub words: Vec<u64>,
}

impl Buf {
    /// `n` zeroed elements of `dtype`.
    pub fn zeros(dtype: DType, n: usize) -> Buf {
        Buf {
            dtype,
            n,
            words: vec![0; (n * dtype.size()).div_ceil(8).max(1)],
        }
    }

    /// Element `i` as f64.
    pub fn get(&self, i: usize) -> f64 {
        assert!(i < self.n, "index {i} out of {}", self.n);
        let p = self.words.as_ptr();
        // SAFETY: i < n and the buffer holds n elements of dtype.
        unsafe {
            match self.dtype {
                DType::F64 => *p.cast::<f64>().add(i),
                DType::F32 => f64::from(*p.cast::<f32>().add(i)),
                DType::I32 => f64::from(*p.cast::<i32>().add(i)),
                DType::I64 => *p.cast::<i64>().add(i) as f64,
            }
        }
    }

    /// Sets element `i` (converted to the dtype).
    pub fn set(&mut self, i: usize, v: f64) {
        assert!(i < self.n, "index {i} out of {}", self.n);
        let p = self.words.as_mut_ptr();
        // SAFETY: as in `get`.
        unsafe {
            match self.dtype {
                DType::F64 => *p.cast::<f64>().add(i) = v,
                DType::F32 => *p.cast::<f32>().add(i) = v as f32,
                DType::I32 => *p.cast::<i32>().add(i) = v as i32,
                DType::I64 => *p.cast::<i64>().add(i) = v as i64,
            }
        }
    }

    /// Sets every element to `v`.
    pub fn fill(&mut self, v: f64) {
        (0..self.n).for_each(|i| self.set(i, v));
    }

    /// Every element as f64.
    pub fn values(&self) -> Vec<f64> {
        (0..self.n).map(|i| self.get(i)).collect()
    }

    /// An FNV-1a hash of the bytes, for before/after comparisons.
    pub fn checksum(&self) -> u64 {
        self.words.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, w| {
            (h ^ w).wrapping_mul(0x100_0000_01b3)
        })
    }
}

struct Case<'k> {
    kernel: &'k Kernel,
    /// Per argument: the shape followed by its strides (column-major kernels need explicit ones).
    shapes: Vec<(Vec<i64>, Option<Vec<i64>>)>,
    values: Vec<Buf>,
}

impl<'k> Case<'k> {
    fn arg_refs<'a>(
        shapes: &'a [(Vec<i64>, Option<Vec<i64>>)],
        bufs: &'a mut [Buf],
    ) -> Vec<ArgRef<'a>> {
        bufs.iter_mut()
            .zip(shapes)
            .map(|(b, (shape, strides))| ArgRef {
                data: b.words.as_mut_ptr().cast(),
                dtype: Ok(b.dtype),
                device_type: DEVICE_CPU,
                shape,
                strides: strides.as_deref(),
            })
            .collect()
    }

    /// Runs the primal on copies of `values` and returns the differentiable outputs, flattened.
    fn outputs(&self, values: &[Buf]) -> Result<Vec<f64>> {
        let mut bufs = values.to_vec();
        let refs = Case::arg_refs(&self.shapes, &mut bufs);
        self.kernel.call(&refs)?;
        Ok(self.flatten(&bufs, |a| a.is_output()))
    }

    fn flatten(&self, bufs: &[Buf], pick: impl Fn(&crate::manifest::ArgDesc) -> bool) -> Vec<f64> {
        let mut out = Vec::new();
        for (a, b) in self.kernel.desc.args.iter().zip(bufs) {
            if a.differentiable && pick(a) {
                out.extend((0..b.n).map(|i| b.get(i)));
            }
        }
        out
    }
}

/// Explicit strides for column-major kernels; `None` (row-major) otherwise.
fn strides_for(shape: &[i64], order: Order) -> Option<Vec<i64>> {
    if order == Order::C {
        return None;
    }
    let mut acc = 1;
    Some(
        shape
            .iter()
            .map(|&d| {
                let s = acc;
                acc *= d.max(1);
                s
            })
            .collect(),
    )
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The largest difference relative to the largest magnitude. A NaN or an infinity on either
/// side is a failure (infinite error): `f64::max` skips NaN, so without this a JVP returning NaN
/// where finite differences are finite would pass.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    if a.iter().chain(b).any(|x| !x.is_finite()) {
        return f64::INFINITY;
    }
    let scale = a
        .iter()
        .chain(b)
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// Checks every kernel (or those in `opts.kernels`) of `lib` at every size of `opts.sizes`,
/// and reports, per kernel and comparison, the worst relative error over the sizes (a failure
/// says at which size).
pub fn check_library(lib: &Library, opts: &CheckOptions) -> Result<Vec<CheckResult>> {
    let mut results: Vec<CheckResult> = Vec::new();
    for name in &opts.kernels {
        lib.kernel(name)?;
    }
    let sizes = if opts.sizes.is_empty() {
        vec![opts.size]
    } else {
        opts.sizes.clone()
    };
    for k in lib.kernels() {
        if !opts.kernels.is_empty() && !opts.kernels.iter().any(|n| n == k.name()) {
            continue;
        }
        for &size in &sizes {
            let one = CheckOptions {
                size,
                ..opts.clone()
            };
            for mut r in check_kernel(k, &one)? {
                if sizes.len() > 1 && !r.passed {
                    r.note = if r.note.is_empty() {
                        format!("at size {size}")
                    } else {
                        format!("{} (at size {size})", r.note)
                    };
                }
                match results
                    .iter_mut()
                    .find(|x| x.kernel == r.kernel && x.test == r.test)
                {
                    Some(x) => {
                        let worse = !r.passed && x.passed
                            || (r.passed == x.passed && (r.error.is_nan() || r.error > x.error));
                        if worse {
                            *x = r;
                        }
                    }
                    None => results.push(r),
                }
            }
        }
    }
    Ok(results)
}

/// Checks one kernel's JVP and VJP.
pub fn check_kernel(kernel: &Kernel, opts: &CheckOptions) -> Result<Vec<CheckResult>> {
    let desc = &kernel.desc;
    let mut rng = Rng(opts.seed ^ 0x5eed);
    // Bind every name to opts.size, then evaluate shapes.
    let mut sizes = SizeBindings::new();
    for a in &desc.args {
        if a.kind == ArgKind::Size {
            sizes.insert(a.name.clone(), opts.size);
        }
        for d in &a.shape {
            for n in d.names() {
                sizes.entry(n.to_string()).or_insert(opts.size);
            }
        }
    }
    let mut shapes = Vec::new();
    let mut values = Vec::new();
    let low_precision = desc.args.iter().any(|a| a.dtype == DType::F32);
    for a in &desc.args {
        let shape: Vec<i64> = a
            .shape
            .iter()
            .map(|d| d.eval(&sizes).filter(|v| *v >= 0))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::Unexpected {
                kernel: desc.name.clone(),
                message: format!(
                    "cannot choose a shape for `{}` with every size = {}",
                    a.name, opts.size
                ),
            })?;
        let n: usize = shape.iter().map(|&d| d as usize).product();
        let mut b = Buf::zeros(a.dtype, n);
        match a.kind {
            ArgKind::Size => b.set(0, sizes[&a.name] as f64),
            ArgKind::Scalar if !a.dtype.is_float() => b.set(0, 1.0),
            _ if a.dtype.is_float() && a.is_input() => {
                (0..n).for_each(|i| b.set(i, rng.uniform(0.5, 2.0)))
            }
            _ => {}
        }
        let strides = strides_for(&shape, desc.order);
        shapes.push((shape, strides));
        values.push(b);
    }
    let case = Case {
        kernel,
        shapes,
        values,
    };
    let fd_tol = opts
        .fd_tolerance
        .unwrap_or(if low_precision { 2e-2 } else { 1e-6 });
    let dot_tol = opts
        .dot_tolerance
        .unwrap_or(if low_precision { 1e-3 } else { 1e-9 });
    let h = if low_precision { 1e-2 } else { 1e-6 };

    // Random tangent v (inputs) and cotangent w (outputs).
    let mut tangents: Vec<Option<Buf>> = Vec::new();
    let mut cotangents: Vec<Option<Buf>> = Vec::new();
    for (a, b) in desc.args.iter().zip(&case.values) {
        let mk = |rng: &mut Rng| {
            let mut t = Buf::zeros(a.dtype, b.n);
            (0..b.n).for_each(|i| t.set(i, rng.uniform(-1.0, 1.0)));
            t
        };
        tangents.push((a.differentiable && a.is_input()).then(|| mk(&mut rng)));
        cotangents.push((a.differentiable && a.is_output()).then(|| mk(&mut rng)));
    }
    let v_flat: Vec<f64> = tangents
        .iter()
        .flatten()
        .flat_map(|t| (0..t.n).map(|i| t.get(i)))
        .collect();
    let w_flat: Vec<f64> = cotangents
        .iter()
        .flatten()
        .flat_map(|t| (0..t.n).map(|i| t.get(i)))
        .collect();

    // Central finite differences of the outputs along v.
    let shifted = |sign: f64| -> Result<Vec<f64>> {
        let mut vals = case.values.clone();
        for ((a, b), t) in desc.args.iter().zip(vals.iter_mut()).zip(&tangents) {
            if let (true, Some(t)) = (a.differentiable, t) {
                for i in 0..b.n {
                    let x = b.get(i);
                    b.set(i, x + sign * h * t.get(i));
                }
            }
        }
        case.outputs(&vals)
    };
    let plus = shifted(1.0)?;
    let minus = shifted(-1.0)?;
    let fd: Vec<f64> = plus
        .iter()
        .zip(&minus)
        .map(|(p, m)| (p - m) / (2.0 * h))
        .collect();

    let mut results = Vec::new();
    let mut jv: Option<Vec<f64>> = None;
    if kernel.desc.has_mode(Mode::Jvp) {
        let mut vals = case.values.clone();
        let before: Vec<u64> = vals.iter().map(Buf::checksum).collect();
        let mut t_in: Vec<Buf> = tangents
            .iter()
            .map(|t| t.clone().unwrap_or_else(|| Buf::zeros(DType::F64, 0)))
            .collect();
        let t_before: Vec<u64> = t_in.iter().map(Buf::checksum).collect();
        let mut t_out: Vec<Buf> = desc
            .args
            .iter()
            .zip(&case.values)
            .map(|(a, b)| Buf::zeros(a.dtype, b.n))
            .collect();
        {
            let refs = Case::arg_refs(&case.shapes, &mut vals);
            let tin = Case::arg_refs(&case.shapes, &mut t_in);
            let tout = Case::arg_refs(&case.shapes, &mut t_out);
            let seeds: Vec<Option<ArgRef<'_>>> = desc
                .args
                .iter()
                .zip(tin)
                .map(|(a, r)| (a.differentiable && a.is_input()).then_some(r))
                .collect();
            let res: Vec<Option<ArgRef<'_>>> = desc
                .args
                .iter()
                .zip(tout)
                .map(|(a, r)| (a.differentiable && a.is_output()).then_some(r))
                .collect();
            kernel.jvp(&refs, &seeds, &res)?;
        }
        let mut note = String::new();
        for ((a, b), c) in desc.args.iter().zip(&vals).zip(&before) {
            if a.intent == crate::manifest::Intent::In && b.checksum() != *c {
                note = format!("jvp modified input `{}`", a.name);
            }
        }
        for ((a, t), c) in desc.args.iter().zip(&t_in).zip(&t_before) {
            if t.checksum() != *c {
                note = format!("jvp modified the input tangent of `{}`", a.name);
            }
        }
        let got = case.flatten(&t_out, |a| a.is_output());
        let err = rel(&got, &fd);
        results.push(CheckResult {
            kernel: desc.name.clone(),
            test: "jvp vs central FD".into(),
            error: err,
            tolerance: fd_tol,
            passed: err <= fd_tol && note.is_empty(),
            note,
        });
        jv = Some(got);
    }
    if kernel.desc.has_mode(Mode::Vjp) {
        let mut vals = case.values.clone();
        let before: Vec<u64> = vals.iter().map(Buf::checksum).collect();
        let mut c_in: Vec<Buf> = cotangents
            .iter()
            .map(|t| t.clone().unwrap_or_else(|| Buf::zeros(DType::F64, 0)))
            .collect();
        let c_before: Vec<u64> = c_in.iter().map(Buf::checksum).collect();
        let mut c_out: Vec<Buf> = desc
            .args
            .iter()
            .zip(&case.values)
            .map(|(a, b)| Buf::zeros(a.dtype, b.n))
            .collect();
        {
            let refs = Case::arg_refs(&case.shapes, &mut vals);
            let cin = Case::arg_refs(&case.shapes, &mut c_in);
            let cout = Case::arg_refs(&case.shapes, &mut c_out);
            let seeds: Vec<Option<ArgRef<'_>>> = desc
                .args
                .iter()
                .zip(cin)
                .map(|(a, r)| (a.differentiable && a.is_output()).then_some(r))
                .collect();
            let res: Vec<Option<ArgRef<'_>>> = desc
                .args
                .iter()
                .zip(cout)
                .map(|(a, r)| (a.differentiable && a.is_input()).then_some(r))
                .collect();
            kernel.vjp(&refs, &seeds, &res, VjpOptions::default())?;
        }
        let mut note = String::new();
        for ((a, b), c) in desc.args.iter().zip(&vals).zip(&before) {
            if b.checksum() != *c {
                note = format!("vjp modified argument `{}`", a.name);
            }
        }
        for ((a, t), c) in desc.args.iter().zip(&c_in).zip(&c_before) {
            if t.checksum() != *c {
                note = format!("vjp modified the seed cotangent of `{}`", a.name);
            }
        }
        let jtw = case.flatten(&c_out, |a| a.is_input());
        let rhs = dot(&jtw, &v_flat);
        let (reference, test, tol) = match &jv {
            Some(jv) => (dot(&w_flat, jv), "vjp vs jvp (dot product)", dot_tol),
            None => (dot(&w_flat, &fd), "vjp vs central FD (dot)", fd_tol),
        };
        let err = (rhs - reference).abs() / rhs.abs().max(reference.abs()).max(1e-300);
        results.push(CheckResult {
            kernel: desc.name.clone(),
            test: test.into(),
            error: err,
            tolerance: tol,
            passed: err <= tol && note.is_empty(),
            note,
        });
        // With a JVP the dot test alone would accept a VJP that matches a wrong JVP; the FD
        // comparison above catches the JVP. Without outputs there is nothing to compare.
    }
    let _ = &case.values;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::rel;

    #[test]
    fn non_finite_values_fail_the_comparison() {
        assert_eq!(rel(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert!(rel(&[1.0, f64::NAN], &[1.0, 2.0]) > 1.0);
        assert!(rel(&[f64::NAN], &[f64::NAN]) > 1.0);
        assert!(rel(&[1.0], &[f64::INFINITY]) > 1.0);
    }
}
