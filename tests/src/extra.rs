//! Checks of the runtime's buffer semantics (`docs/calling-convention.md`) that
//! `simgrad_core::check` does not make:
//!
//! * the primal leaves every `in` argument unchanged and is deterministic (two calls on equal
//!   inputs give bit-identical outputs: no reads of uninitialised memory);
//! * the primal values a JVP writes equal the primal's;
//! * a JVP *writes* its tangents (result buffers pre-filled with garbage give the same tangents),
//!   and a JVP with no input tangents gives zero tangents;
//! * a VJP *overwrites* its cotangents (garbage pre-fill gives the same result), *adds* with
//!   `accumulate`, gives zero without seeds, and leaves every argument and seed unchanged;
//! * the dot-product test ⟨w, J v⟩ = ⟨Jᵀ w, v⟩ with **random** integer arrays (indices uniform in
//!   `[0, size)`; `simgrad_core::check` only ever passes zeros), so gathers and scatters are
//!   exercised with real index patterns. Corpus kernels wrap or clamp indices, so any integer
//!   array is valid input.

use simgrad_core::check::{Buf, Rng};
use simgrad_core::{ArgKind, ArgRef, DType, Intent, Kernel, Mode, Order, VjpOptions, DEVICE_CPU};

/// One argument's shape and (for column-major kernels) strides.
struct Layout {
    shape: Vec<i64>,
    strides: Option<Vec<i64>>,
}

struct Case<'k> {
    kernel: &'k Kernel,
    layouts: Vec<Layout>,
    values: Vec<Buf>,
    tol: f64,
}

impl<'k> Case<'k> {
    fn new(
        kernel: &'k Kernel,
        size: i64,
        seed: u64,
        random_ints: bool,
    ) -> Result<Case<'k>, String> {
        let desc = kernel.desc();
        let mut rng = Rng(seed ^ 0xe77a);
        let mut sizes = simgrad_core::SizeBindings::new();
        for a in &desc.args {
            if a.kind == ArgKind::Size {
                sizes.insert(a.name.clone(), size);
            }
            for d in &a.shape {
                for n in d.names() {
                    sizes.entry(n.to_string()).or_insert(size);
                }
            }
        }
        let mut layouts = Vec::new();
        let mut values = Vec::new();
        for a in &desc.args {
            let shape: Vec<i64> = a
                .shape
                .iter()
                .map(|d| d.eval(&sizes).filter(|v| *v >= 0))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    format!("cannot evaluate the shape of `{}` at size {size}", a.name)
                })?;
            let n: usize = shape.iter().map(|&d| d as usize).product();
            let mut b = Buf::zeros(a.dtype, n);
            match a.kind {
                ArgKind::Size => b.set(0, size as f64),
                ArgKind::Scalar if !a.dtype.is_float() => b.set(0, 1.0),
                _ if a.dtype.is_float() && a.is_input() => {
                    (0..n).for_each(|i| b.set(i, rng.uniform(0.5, 2.0)))
                }
                _ if !a.dtype.is_float() && random_ints => {
                    (0..n).for_each(|i| b.set(i, (rng.next_u64() % size.max(1) as u64) as f64))
                }
                _ => {}
            }
            let strides = (desc.order == Order::F && a.kind == ArgKind::Array).then(|| {
                let mut acc = 1;
                shape
                    .iter()
                    .map(|&d| {
                        let s = acc;
                        acc *= d.max(1);
                        s
                    })
                    .collect()
            });
            layouts.push(Layout { shape, strides });
            values.push(b);
        }
        let low = desc.args.iter().any(|a| a.dtype == DType::F32);
        Ok(Case {
            kernel,
            layouts,
            values,
            tol: if low { 1e-4 } else { 1e-11 },
        })
    }

    fn refs<'a>(&'a self, bufs: &'a mut [Buf]) -> Vec<ArgRef<'a>> {
        bufs.iter_mut()
            .zip(&self.layouts)
            .map(|(b, l)| ArgRef {
                data: b.words.as_mut_ptr().cast(),
                dtype: Ok(b.dtype),
                device_type: DEVICE_CPU,
                shape: &l.shape,
                strides: l.strides.as_deref(),
            })
            .collect()
    }

    /// Per argument: a buffer shaped like it (for tangents and cotangents).
    fn like(&self, mut fill: impl FnMut(usize, &mut Buf)) -> Vec<Buf> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut b = Buf::zeros(v.dtype, v.n);
                fill(i, &mut b);
                b
            })
            .collect()
    }

    fn primal(&self, vals: &mut [Buf]) -> Result<(), String> {
        let refs = self.refs(vals);
        self.kernel.call(&refs).map_err(|e| e.to_string())
    }

    /// Runs the JVP; `seed[i]`/`want[i]` say which slots are passed.
    fn jvp(
        &self,
        vals: &mut [Buf],
        t_in: &mut [Buf],
        t_out: &mut [Buf],
        seed: &[bool],
        want: &[bool],
    ) -> Result<(), String> {
        let refs = self.refs(vals);
        let tin: Vec<Option<ArgRef<'_>>> = self
            .refs(t_in)
            .into_iter()
            .zip(seed)
            .map(|(r, &s)| s.then_some(r))
            .collect();
        let tout: Vec<Option<ArgRef<'_>>> = self
            .refs(t_out)
            .into_iter()
            .zip(want)
            .map(|(r, &w)| w.then_some(r))
            .collect();
        self.kernel
            .jvp(&refs, &tin, &tout)
            .map_err(|e| e.to_string())
    }

    fn vjp(
        &self,
        vals: &mut [Buf],
        c_in: &mut [Buf],
        c_out: &mut [Buf],
        seed: &[bool],
        want: &[bool],
        accumulate: bool,
    ) -> Result<(), String> {
        let refs = self.refs(vals);
        let cin: Vec<Option<ArgRef<'_>>> = self
            .refs(c_in)
            .into_iter()
            .zip(seed)
            .map(|(r, &s)| s.then_some(r))
            .collect();
        let cout: Vec<Option<ArgRef<'_>>> = self
            .refs(c_out)
            .into_iter()
            .zip(want)
            .map(|(r, &w)| w.then_some(r))
            .collect();
        self.kernel
            .vjp(&refs, &cin, &cout, VjpOptions { accumulate })
            .map_err(|e| e.to_string())
    }
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    if a.iter().chain(b).any(|v| !v.is_finite()) {
        return if a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()) {
            0.0
        } else {
            f64::INFINITY
        };
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

fn flat(bufs: &[Buf], pick: &[bool]) -> Vec<f64> {
    bufs.iter()
        .zip(pick)
        .filter(|(_, &p)| p)
        .flat_map(|(b, _)| b.values())
        .collect()
}

/// Runs every extra check on `kernel` with all named sizes = `size`. Returns one line per
/// failure (empty when everything holds).
pub fn extra_checks(kernel: &Kernel, size: i64, seed: u64) -> Vec<String> {
    match extra_checks_inner(kernel, size, seed) {
        Ok(f) => f,
        Err(e) => vec![format!("error: {e}")],
    }
}

fn extra_checks_inner(kernel: &Kernel, size: i64, seed: u64) -> Result<Vec<String>, String> {
    let desc = kernel.desc();
    let mut fails = Vec::new();
    let mut fail = |what: String| fails.push(what);
    let case = Case::new(kernel, size, seed, true)?;
    let args = &desc.args;
    let d_in: Vec<bool> = args
        .iter()
        .map(|a| a.differentiable && a.is_input())
        .collect();
    let d_out: Vec<bool> = args
        .iter()
        .map(|a| a.differentiable && a.is_output())
        .collect();
    let outputs: Vec<bool> = args.iter().map(|a| a.is_output()).collect();
    let none = vec![false; args.len()];
    let checksum = |b: &Buf| b.words.clone();

    // Primal: inputs unchanged, deterministic.
    let mut first = case.values.clone();
    if desc.has_mode(Mode::Primal) {
        case.primal(&mut first)?;
        for (i, a) in args.iter().enumerate() {
            if a.intent == Intent::In && checksum(&first[i]) != checksum(&case.values[i]) {
                fail(format!("primal modified input `{}`", a.name));
            }
        }
        let mut second = case.values.clone();
        case.primal(&mut second)?;
        for (i, a) in args.iter().enumerate() {
            if a.is_output() && checksum(&first[i]) != checksum(&second[i]) {
                fail(format!(
                    "primal is not deterministic in `{}` (reads uninitialised memory?)",
                    a.name
                ));
            }
        }
    }

    let mut rng = Rng(seed ^ 0xd07);
    let v = case.like(|i, b| {
        if d_in[i] {
            (0..b.n).for_each(|k| b.set(k, rng.uniform(-1.0, 1.0)))
        }
    });
    let mut rng = Rng(seed ^ 0xc07);
    let w = case.like(|i, b| {
        if d_out[i] {
            (0..b.n).for_each(|k| b.set(k, rng.uniform(-1.0, 1.0)))
        }
    });

    let mut jv: Option<Vec<Buf>> = None;
    if desc.has_mode(Mode::Jvp) {
        // Clean JVP.
        let mut vals = case.values.clone();
        let mut t_in = v.clone();
        let mut t_out = case.like(|_, _| {});
        case.jvp(&mut vals, &mut t_in, &mut t_out, &d_in, &d_out)?;
        if desc.has_mode(Mode::Primal) {
            let e = max_rel(&flat(&vals, &outputs), &flat(&first, &outputs));
            if e > case.tol {
                fail(format!(
                    "jvp's primal outputs differ from the primal's (rel. {e:.1e})"
                ));
            }
        }
        for (i, a) in args.iter().enumerate() {
            if a.intent == Intent::In && checksum(&vals[i]) != checksum(&case.values[i]) {
                fail(format!("jvp modified input `{}`", a.name));
            }
            if checksum(&t_in[i]) != checksum(&v[i]) {
                fail(format!("jvp modified the input tangent of `{}`", a.name));
            }
        }
        // Garbage in the result buffers must be overwritten.
        let mut vals2 = case.values.clone();
        let mut t_in2 = v.clone();
        let mut t_out2 = case.like(|_, b| b.fill(12345.0));
        case.jvp(&mut vals2, &mut t_in2, &mut t_out2, &d_in, &d_out)?;
        let e = max_rel(&flat(&t_out2, &d_out), &flat(&t_out, &d_out));
        if e > case.tol {
            fail(format!("jvp accumulates into (instead of writing) pre-filled tangent buffers (rel. {e:.1e})"));
        }
        // No input tangents: zero output tangents.
        let mut vals3 = case.values.clone();
        let mut t_in3 = case.like(|_, _| {});
        let mut t_out3 = case.like(|_, b| b.fill(7.0));
        case.jvp(&mut vals3, &mut t_in3, &mut t_out3, &none, &d_out)?;
        if flat(&t_out3, &d_out).iter().any(|x| *x != 0.0) {
            fail("jvp without input tangents gave non-zero output tangents".into());
        }
        jv = Some(t_out);
    }

    if desc.has_mode(Mode::Vjp) {
        let mut vals = case.values.clone();
        let mut c_in = w.clone();
        let mut c_out = case.like(|_, _| {});
        case.vjp(&mut vals, &mut c_in, &mut c_out, &d_out, &d_in, false)?;
        for (i, a) in args.iter().enumerate() {
            if checksum(&vals[i]) != checksum(&case.values[i]) {
                fail(format!("vjp modified argument `{}`", a.name));
            }
            if checksum(&c_in[i]) != checksum(&w[i]) {
                fail(format!("vjp modified the seed cotangent of `{}`", a.name));
            }
        }
        let clean = flat(&c_out, &d_in);
        // Overwrite garbage.
        let mut c_out2 = case.like(|_, b| b.fill(-999.0));
        let mut c_in2 = w.clone();
        case.vjp(
            &mut case.values.clone(),
            &mut c_in2,
            &mut c_out2,
            &d_out,
            &d_in,
            false,
        )?;
        let e = max_rel(&flat(&c_out2, &d_in), &clean);
        if e > case.tol {
            fail(format!(
                "vjp without accumulate does not overwrite pre-filled cotangents (rel. {e:.1e})"
            ));
        }
        // Accumulate onto 0.25.
        let mut c_out3 = case.like(|_, b| b.fill(0.25));
        let mut c_in3 = w.clone();
        case.vjp(
            &mut case.values.clone(),
            &mut c_in3,
            &mut c_out3,
            &d_out,
            &d_in,
            true,
        )?;
        let expect: Vec<f64> = clean.iter().map(|x| x + 0.25).collect();
        let e = max_rel(&flat(&c_out3, &d_in), &expect);
        if e > case.tol {
            fail(format!(
                "vjp with accumulate does not add to the cotangent buffers (rel. {e:.1e})"
            ));
        }
        // No seeds: zero cotangents.
        let mut c_out4 = case.like(|_, b| b.fill(3.0));
        let mut c_in4 = case.like(|_, _| {});
        case.vjp(
            &mut case.values.clone(),
            &mut c_in4,
            &mut c_out4,
            &none,
            &d_in,
            false,
        )?;
        if flat(&c_out4, &d_in).iter().any(|x| *x != 0.0) {
            fail("vjp without seeds gave non-zero cotangents".into());
        }
        // Dot-product test with random integer arrays.
        if let Some(jv) = &jv {
            let lhs: f64 = flat(&w, &d_out)
                .iter()
                .zip(flat(jv, &d_out))
                .map(|(a, b)| a * b)
                .sum();
            let rhs: f64 = clean.iter().zip(flat(&v, &d_in)).map(|(a, b)| a * b).sum();
            let e = (lhs - rhs).abs() / lhs.abs().max(rhs.abs()).max(1e-300);
            let tol = if case.tol > 1e-6 { 1e-3 } else { 1e-9 };
            if e.is_nan() || e > tol {
                fail(format!("vjp vs jvp (dot product) with random integer arrays: rel. error {e:.2e} (tolerance {tol:.0e})"));
            }
        }
    }
    let _ = outputs;
    Ok(fails)
}

/// Seconds per call of the JVP and of the VJP of `kernel` with every named size = `size`: the
/// best of `reps` timed calls each (after one warm-up call). Used by the pipeline study to compare
/// the speed of the derivative code the pipelines produce.
pub fn time_derivatives(kernel: &Kernel, size: i64, reps: usize) -> Result<(f64, f64), String> {
    let desc = kernel.desc();
    let case = Case::new(kernel, size, 0, false)?;
    let d_in: Vec<bool> = desc
        .args
        .iter()
        .map(|a| a.differentiable && a.is_input())
        .collect();
    let d_out: Vec<bool> = desc
        .args
        .iter()
        .map(|a| a.differentiable && a.is_output())
        .collect();
    let ones = |pick: &Vec<bool>| {
        case.like(|i, b| {
            if pick[i] {
                b.fill(0.5)
            }
        })
    };
    let mut best = (f64::INFINITY, f64::INFINITY);
    let mut vals = case.values.clone();
    let mut t_in = ones(&d_in);
    let mut t_out = case.like(|_, _| {});
    let mut c_in = ones(&d_out);
    let mut c_out = case.like(|_, _| {});
    for r in 0..=reps {
        if desc.has_mode(Mode::Jvp) {
            vals.clone_from(&case.values);
            let t = std::time::Instant::now();
            case.jvp(&mut vals, &mut t_in, &mut t_out, &d_in, &d_out)?;
            if r > 0 {
                best.0 = best.0.min(t.elapsed().as_secs_f64());
            }
        }
        if desc.has_mode(Mode::Vjp) {
            let t = std::time::Instant::now();
            case.vjp(&mut vals, &mut c_in, &mut c_out, &d_out, &d_in, false)?;
            if r > 0 {
                best.1 = best.1.min(t.elapsed().as_secs_f64());
            }
        }
    }
    Ok(best)
}
