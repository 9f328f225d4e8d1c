//! Property tests: the twins of the fuzz targets in `fuzz/` that run in every `cargo test`.
//!
//! * Manifests: valid documents with random edits (characters inserted, deleted or replaced,
//!   tokens swapped for others of the schema, numbers made huge or negative, truncation) never
//!   make `Manifest::from_json` panic, and whatever it accepts survives a round trip.
//! * Validation: for a random kernel (sizes, scalars, arrays with fixed, named, bare and
//!   expression dims, either memory order), the exactly consistent call is accepted with the
//!   right sizes and element counts; the same call with one thing wrong (dtype, rank, a dim, a
//!   size, NULL data, the device, the strides, an output aliasing another buffer) is rejected by
//!   an error that names the argument at fault; and no input makes validation panic.

use proptest::prelude::*;
use simgrad_core::{validate_call, ArgKind, ArgRef, DType, KernelDesc, Manifest, Mode, DEVICE_CPU};
use std::ffi::c_void;

// ---- manifests --------------------------------------------------------------------------------

const SAMPLES: [&str; 2] = [
    r#"{"manifest_version": 1, "abi_version": 1, "generator": "test",
 "kernels": [{"name": "axpy", "symbol": "axpy", "language": "c", "order": "C",
   "args": [
     {"name": "n", "kind": "size", "dtype": "i64", "intent": "in", "differentiable": false},
     {"name": "a", "kind": "scalar", "dtype": "f64", "intent": "in", "differentiable": true},
     {"name": "x", "kind": "array", "dtype": "f64", "shape": ["n"], "intent": "in", "differentiable": true},
     {"name": "y", "kind": "array", "dtype": "f64", "shape": ["n"], "intent": "inout", "differentiable": true}],
   "modes": {"primal": {"symbol": "p"}, "jvp": {"symbol": "j"}, "vjp": {"symbol": "v"}}}]}"#,
    r#"{"manifest_version": 1, "abi_version": 1, "generator": "test",
 "toolchain": {"llvm": "19.1.7", "enzyme": "x", "flags": {"pipeline": ["O2"]}},
 "kernels": [{"name": "conv", "symbol": "conv", "language": "fortran", "order": "F",
   "args": [
     {"name": "k", "kind": "size", "dtype": "i32", "intent": "in", "differentiable": false},
     {"name": "w", "kind": "array", "dtype": "f32", "shape": ["k", 3], "intent": "in", "differentiable": true},
     {"name": "img", "kind": "array", "dtype": "f32", "shape": ["h", "wd"], "intent": "in", "differentiable": true},
     {"name": "out", "kind": "array", "dtype": "f32", "shape": ["h-k+1", "(wd - 2)*1"], "intent": "out", "differentiable": true}],
   "modes": {"primal": {"symbol": "p"}, "vjp": {"symbol": "v"}}}]}"#,
];

const TOKENS: [&str; 32] = [
    "\"size\"",
    "\"array\"",
    "\"scalar\"",
    "\"f16\"",
    "\"i32\"",
    "\"f64\"",
    "\"out\"",
    "\"inout\"",
    "\"n\"",
    "\"2*n\"",
    "\"n-\"",
    "\"((n\"",
    "\"\"",
    "\"9x\"",
    "-1",
    "0",
    "2",
    "18446744073709551616",
    "9223372036854775807",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    "[",
    "{",
    "\"F\"",
    "\"G\"",
    "\"jvp\"",
    "\"primal\"",
    "\"é\"",
    "\"a b\"",
];

#[derive(Debug, Clone)]
enum TextEdit {
    Delete(usize, usize),
    Insert(usize, char),
    Replace(usize, char),
    Token(usize, usize),
    Truncate(usize),
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    prop_oneof![
        (any::<usize>(), 1usize..8).prop_map(|(a, n)| TextEdit::Delete(a, n)),
        (
            any::<usize>(),
            prop::sample::select(&b"{}[]\":,-0123456789nxe \\"[..])
        )
            .prop_map(|(a, c)| TextEdit::Insert(a, char::from(c))),
        (any::<usize>(), any::<char>()).prop_map(|(a, c)| TextEdit::Replace(a, c)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| TextEdit::Token(a, t)),
        any::<usize>().prop_map(TextEdit::Truncate),
    ]
}

/// Applies an edit at a char boundary (positions wrap around the text).
fn apply(text: &mut String, e: &TextEdit) {
    let at = |p: usize, s: &str| {
        let n = s.chars().count().max(1);
        s.char_indices().nth(p % n).map_or(s.len(), |(i, _)| i)
    };
    match e {
        TextEdit::Delete(p, n) => {
            let i = at(*p, text);
            let end = text[i..]
                .char_indices()
                .nth(*n)
                .map_or(text.len(), |(j, _)| i + j);
            text.replace_range(i..end, "");
        }
        TextEdit::Insert(p, c) => {
            let i = at(*p, text);
            text.insert(i, *c);
        }
        TextEdit::Replace(p, c) => {
            let i = at(*p, text);
            if let Some(old) = text[i..].chars().next() {
                text.replace_range(i..i + old.len_utf8(), &c.to_string());
            }
        }
        TextEdit::Token(p, t) => {
            // Replace the JSON token (a string or a bare word) starting at or after the position.
            let i = at(*p, text);
            let Some(start) = text[i..].find(|c: char| c == '"' || c.is_ascii_alphanumeric())
            else {
                return;
            };
            let start = i + start;
            let end = if text[start..].starts_with('"') {
                text[start + 1..]
                    .find('"')
                    .map_or(text.len(), |j| start + j + 2)
            } else {
                text[start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                    .map_or(text.len(), |j| start + j)
            };
            text.replace_range(start..end, TOKENS[*t]);
        }
        TextEdit::Truncate(p) => {
            let i = at(*p, text);
            text.truncate(i);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn edited_manifests_never_panic_and_accepted_ones_round_trip(
        sample in 0..SAMPLES.len(),
        edits in prop::collection::vec(text_edit(), 1..6),
    ) {
        let mut text = SAMPLES[sample].to_string();
        for e in &edits {
            apply(&mut text, e);
        }
        if let Ok(m) = Manifest::from_json(&text, "proptest") {
            let again = Manifest::from_json(&m.to_json(), "proptest");
            prop_assert!(again.is_ok(), "own JSON rejected: {:?}\n{text}", again.err());
            prop_assert_eq!(again.unwrap(), m);
        }
    }

    #[test]
    fn deep_and_long_dim_expressions_are_errors_or_values(
        depth in 0usize..200,
        ops in prop::collection::vec(prop::sample::select(&["+", "-", "*"][..]), 0..200),
    ) {
        let mut dim = format!("{}n{}", "(".repeat(depth), ")".repeat(depth));
        for op in &ops {
            dim.push_str(op);
            dim.push('n');
        }
        let from = r#"["n"], "intent": "in""#;
        let text = SAMPLES[0].replacen(from, &from.replace("\"n\"", &format!("\"{dim}\"")), 1);
        let _ = Manifest::from_json(&text, "proptest");
    }
}

/// Found while fuzzing: a dim of 100,000 nested parentheses, or a sum of a million terms,
/// overflowed the stack (an abort no panic boundary catches) while the manifest was parsed. Such
/// dims are errors now.
#[test]
fn hostile_dims_are_errors_not_stack_overflows() {
    let nested = format!("{}n{}", "(".repeat(100_000), ")".repeat(100_000));
    let chain = format!("n{}", "+n".repeat(1_000_000));
    for dim in [nested, chain] {
        let from = r#"["n"], "intent": "in""#;
        let text = SAMPLES[0].replacen(from, &from.replace("\"n\"", &format!("\"{dim}\"")), 1);
        let e = Manifest::from_json(&text, "proptest")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a dim has at most"),
            "{}",
            &e[..e.len().min(200)]
        );
    }
}

// ---- validation -------------------------------------------------------------------------------

const BARE: [&str; 2] = ["p", "q"];
const DTYPES: [DType; 4] = [DType::F32, DType::F64, DType::I32, DType::I64];

/// One dim of a generated array.
#[derive(Debug, Clone)]
enum Dim {
    Fixed(i64),
    /// A size argument (index among the sizes; a fixed 1 when there are none).
    Size(usize),
    /// A bare name, bound by the first array that has it.
    Bare(usize),
    /// `2*s` (0), `s+1` (1), `s-1` (2) of a size `s`.
    Expr(u8, usize),
}

#[derive(Debug, Clone)]
enum Arg {
    Size {
        i32: bool,
    },
    Scalar {
        dtype: usize,
    },
    Array {
        dtype: usize,
        dims: Vec<Dim>,
        intent: usize,
    },
}

#[derive(Debug, Clone)]
struct Kernel {
    fortran: bool,
    args: Vec<Arg>,
}

fn dim() -> impl Strategy<Value = Dim> {
    prop_oneof![
        (0i64..4).prop_map(Dim::Fixed),
        (0usize..3).prop_map(Dim::Size),
        (0usize..BARE.len()).prop_map(Dim::Bare),
        (0u8..3, 0usize..3).prop_map(|(o, s)| Dim::Expr(o, s)),
    ]
}

fn arg() -> impl Strategy<Value = Arg> {
    prop_oneof![
        any::<bool>().prop_map(|i32| Arg::Size { i32 }),
        (0usize..4).prop_map(|dtype| Arg::Scalar { dtype }),
        (0usize..4, prop::collection::vec(dim(), 0..4), 0usize..3).prop_map(
            |(dtype, dims, intent)| Arg::Array {
                dtype,
                dims,
                intent
            }
        ),
        (0usize..4, prop::collection::vec(dim(), 1..4), 0usize..3).prop_map(
            |(dtype, dims, intent)| Arg::Array {
                dtype,
                dims,
                intent
            }
        ),
    ]
}

fn kernel() -> impl Strategy<Value = Kernel> {
    (any::<bool>(), prop::collection::vec(arg(), 1..6))
        .prop_map(|(fortran, args)| Kernel { fortran, args })
}

/// The names and values the generated kernel's dims refer to.
struct Names {
    sizes: Vec<(String, i64)>,
    bare: [i64; 2],
}

impl Kernel {
    fn names(&self) -> Vec<String> {
        let (mut n, mut s, mut a) = (0, 0, 0);
        self.args
            .iter()
            .map(|arg| {
                let (prefix, i) = match arg {
                    Arg::Size { .. } => ("n", &mut n),
                    Arg::Scalar { .. } => ("s", &mut s),
                    Arg::Array { .. } => ("a", &mut a),
                };
                *i += 1;
                format!("{prefix}{}", *i - 1)
            })
            .collect()
    }

    fn size_count(&self) -> usize {
        self.args
            .iter()
            .filter(|a| matches!(a, Arg::Size { .. }))
            .count()
    }

    /// The dim as the manifest writes it.
    fn dim_json(&self, d: &Dim) -> String {
        let n = self.size_count();
        match (d, n) {
            (Dim::Fixed(v), _) => v.to_string(),
            (Dim::Bare(b), _) => format!("\"{}\"", BARE[*b]),
            (Dim::Size(_) | Dim::Expr(..), 0) => "1".into(),
            (Dim::Size(s), _) => format!("\"n{}\"", s % n),
            (Dim::Expr(op, s), _) => {
                let s = format!("n{}", s % n);
                match op {
                    0 => format!("\"2*{s}\""),
                    1 => format!("\"{s} + 1\""),
                    _ => format!("\"{s}-1\""),
                }
            }
        }
    }

    /// The dim's value under `names`, computed here, independently of the runtime.
    fn dim_value(&self, d: &Dim, names: &Names) -> i64 {
        let n = self.size_count();
        match (d, n) {
            (Dim::Fixed(v), _) => *v,
            (Dim::Bare(b), _) => names.bare[*b],
            (Dim::Size(_) | Dim::Expr(..), 0) => 1,
            (Dim::Size(s), _) => names.sizes[s % n].1,
            (Dim::Expr(op, s), _) => {
                let v = names.sizes[s % n].1;
                [2 * v, v + 1, v - 1][usize::from(*op)]
            }
        }
    }

    fn manifest(&self) -> KernelDesc {
        let names = self.names();
        let args: Vec<String> = self
            .args
            .iter()
            .zip(&names)
            .map(|(a, name)| match a {
                Arg::Size { i32 } => format!(
                    r#"{{"name": "{name}", "kind": "size", "dtype": "{}", "intent": "in", "differentiable": false}}"#,
                    if *i32 { "i32" } else { "i64" }
                ),
                Arg::Scalar { dtype } => format!(
                    r#"{{"name": "{name}", "kind": "scalar", "dtype": "{}", "intent": "in", "differentiable": {}}}"#,
                    DTYPES[*dtype],
                    DTYPES[*dtype].is_float()
                ),
                Arg::Array { dtype, dims, intent } => format!(
                    r#"{{"name": "{name}", "kind": "array", "dtype": "{}", "shape": [{}], "intent": "{}", "differentiable": {}}}"#,
                    DTYPES[*dtype],
                    dims.iter().map(|d| self.dim_json(d)).collect::<Vec<_>>().join(", "),
                    ["in", "out", "inout"][*intent],
                    DTYPES[*dtype].is_float()
                ),
            })
            .collect();
        let text = format!(
            r#"{{"manifest_version": 1, "abi_version": 1, "generator": "proptest", "kernels": [{{"name": "k", "symbol": "k", "order": "{}", "args": [{}], "modes": {{"primal": {{"symbol": "p"}}}}}}]}}"#,
            if self.fortran { "F" } else { "C" },
            args.join(", ")
        );
        let mut m = Manifest::from_json(&text, "proptest")
            .unwrap_or_else(|e| panic!("the generated manifest is rejected: {e}\n{text}"));
        m.kernels.remove(0)
    }
}

/// The buffers of one call, owned here; `refs` borrows them.
struct Call {
    shapes: Vec<Vec<i64>>,
    strides: Vec<Option<Vec<i64>>>,
    dtypes: Vec<Result<DType, (u8, u8, u16)>>,
    devices: Vec<i32>,
    bufs: Vec<Vec<u64>>,
    /// Per argument: `None` for its own buffer, `Some(null)`, or another argument's buffer.
    data: Vec<Option<Data>>,
}

#[derive(Debug, Clone, Copy)]
enum Data {
    Null,
    Of(usize),
}

/// Stores a size or scalar value at the start of `buf` as the runtime reads it.
fn write_value(buf: &mut [u64], dtype: DType, value: i64) {
    let bytes: Vec<u8> = match dtype {
        DType::I32 => (value as i32).to_ne_bytes().to_vec(),
        _ => value.to_ne_bytes().to_vec(),
    };
    let mut word = buf[0].to_ne_bytes();
    word[..bytes.len()].copy_from_slice(&bytes);
    buf[0] = u64::from_ne_bytes(word);
}

fn contiguous(shape: &[i64], fortran: bool) -> Vec<i64> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    let order: Vec<usize> = if fortran {
        (0..shape.len()).collect()
    } else {
        (0..shape.len()).rev().collect()
    };
    for i in order {
        strides[i] = acc;
        acc *= shape[i].max(1);
    }
    strides
}

impl Call {
    /// The exactly consistent call of `k` for `names`.
    fn consistent(k: &Kernel, names: &Names) -> Call {
        let mut c = Call {
            shapes: Vec::new(),
            strides: Vec::new(),
            dtypes: Vec::new(),
            devices: Vec::new(),
            bufs: Vec::new(),
            data: Vec::new(),
        };
        let mut size_index = 0;
        for a in &k.args {
            let (dtype, shape, value) = match a {
                Arg::Size { i32 } => {
                    size_index += 1;
                    let v = names.sizes[size_index - 1].1;
                    (if *i32 { DType::I32 } else { DType::I64 }, vec![], v)
                }
                Arg::Scalar { dtype } => (DTYPES[*dtype], vec![], 1),
                Arg::Array { dtype, dims, .. } => (
                    DTYPES[*dtype],
                    dims.iter().map(|d| k.dim_value(d, names)).collect(),
                    0,
                ),
            };
            let numel: i64 = shape.iter().product();
            let words = (numel as usize * dtype.size()).div_ceil(8).max(1);
            let mut buf = vec![0u64; words];
            write_value(&mut buf, dtype, value);
            // Fortran kernels need explicit column-major strides above rank 1.
            let strides = (k.fortran && shape.len() > 1).then(|| contiguous(&shape, true));
            c.shapes.push(shape);
            c.strides.push(strides);
            c.dtypes.push(Ok(dtype));
            c.devices.push(DEVICE_CPU);
            c.bufs.push(buf);
            c.data.push(None);
        }
        c
    }

    fn numel(&self, i: usize) -> i64 {
        self.shapes[i].iter().product()
    }

    fn refs(&mut self) -> Vec<ArgRef<'_>> {
        let ptrs: Vec<*mut c_void> = self
            .bufs
            .iter_mut()
            .map(|b| b.as_mut_ptr().cast())
            .collect();
        (0..self.shapes.len())
            .map(|i| ArgRef {
                data: match self.data[i] {
                    None => ptrs[i],
                    Some(Data::Null) => std::ptr::null_mut(),
                    Some(Data::Of(j)) => ptrs[j],
                },
                dtype: self.dtypes[i],
                device_type: self.devices[i],
                shape: &self.shapes[i],
                strides: self.strides[i].as_deref(),
            })
            .collect()
    }
}

/// One thing made wrong in a consistent call; `usize`s pick among the applicable arguments.
#[derive(Debug, Clone)]
enum Fault {
    DType(usize, usize),
    Unsupported(usize, (u8, u8, u16)),
    Rank(usize),
    Dim(usize, usize, i64),
    NegativeSize(usize, i64),
    Null(usize),
    Device(usize, i32),
    Strides(usize),
    StrideCount(usize),
    Alias(usize, usize),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (any::<usize>(), 1usize..4).prop_map(|(i, d)| Fault::DType(i, d)),
        (any::<usize>(), (any::<u8>(), any::<u8>(), any::<u16>()))
            .prop_filter("an unsupported dtype", |(_, (c, b, l))| DType::from_dlpack(
                *c, *b, *l
            )
            .is_none())
            .prop_map(|(i, t)| Fault::Unsupported(i, t)),
        any::<usize>().prop_map(Fault::Rank),
        (
            any::<usize>(),
            any::<usize>(),
            prop_oneof![1i64..5, -5i64..0, Just(i64::MAX), Just(i64::MIN)]
        )
            .prop_map(|(i, d, by)| Fault::Dim(i, d, by)),
        (any::<usize>(), prop_oneof![-3i64..0, Just(i64::MIN)])
            .prop_map(|(i, v)| Fault::NegativeSize(i, v)),
        any::<usize>().prop_map(Fault::Null),
        (any::<usize>(), prop_oneof![Just(0), 2i32..20, Just(-1)])
            .prop_map(|(i, d)| Fault::Device(i, d)),
        any::<usize>().prop_map(Fault::Strides),
        any::<usize>().prop_map(Fault::StrideCount),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Fault::Alias(i, j)),
    ]
}

/// The first (argument, dim) of each bare name: changing it rebinds the name instead of
/// contradicting it.
fn binders(k: &Kernel) -> Vec<(usize, usize)> {
    let mut seen = [false; 2];
    let mut out = Vec::new();
    for (i, a) in k.args.iter().enumerate() {
        if let Arg::Array { dims, .. } = a {
            for (d, dim) in dims.iter().enumerate() {
                if let Dim::Bare(b) = dim {
                    if !seen[*b] {
                        seen[*b] = true;
                        out.push((i, d));
                    }
                }
            }
        }
    }
    out
}

/// Applies `f` to `call`; returns the index of the argument at fault, or None when the fault
/// does not apply to this kernel.
fn inject(k: &Kernel, call: &mut Call, f: &Fault, mode: Mode) -> Option<usize> {
    let n = k.args.len();
    let pick = |cands: Vec<usize>, i: usize| (!cands.is_empty()).then(|| cands[i % cands.len()]);
    let arrays: Vec<usize> = (0..n)
        .filter(|&i| matches!(k.args[i], Arg::Array { .. }))
        .collect();
    match *f {
        Fault::DType(i, d) => {
            let i = i % n;
            let Ok(old) = call.dtypes[i] else {
                unreachable!()
            };
            let idx = DTYPES.iter().position(|x| *x == old).unwrap();
            call.dtypes[i] = Ok(DTYPES[(idx + d) % 4]);
            Some(i)
        }
        Fault::Unsupported(i, t) => {
            let i = i % n;
            call.dtypes[i] = Err(t);
            Some(i)
        }
        Fault::Rank(i) => {
            let i = i % n;
            if call.shapes[i].pop().is_none() {
                call.shapes[i].push(1);
            }
            Some(i)
        }
        Fault::Dim(i, d, by) => {
            let b = binders(k);
            let cands: Vec<(usize, usize)> = arrays
                .iter()
                .flat_map(|&a| (0..call.shapes[a].len()).map(move |d| (a, d)))
                .filter(|ad| !b.contains(ad))
                .collect();
            let (a, dd) = *cands.get((i ^ d) % cands.len().max(1))?;
            let old = call.shapes[a][dd];
            call.shapes[a][dd] = if by > 0 { old.saturating_add(by) } else { by };
            Some(a)
        }
        Fault::NegativeSize(i, v) => {
            let sizes: Vec<usize> = (0..n)
                .filter(|&i| matches!(k.args[i], Arg::Size { .. }))
                .collect();
            let s = pick(sizes, i)?;
            let Arg::Size { i32 } = k.args[s] else {
                unreachable!()
            };
            let dtype = if i32 { DType::I32 } else { DType::I64 };
            write_value(&mut call.bufs[s], dtype, v.max(i64::from(i32::MIN)));
            Some(s)
        }
        Fault::Null(i) => {
            // NULL is fine for an empty array, and for an `out` array in a VJP (never touched).
            let cands: Vec<usize> = (0..n)
                .filter(|&i| !matches!(k.args[i], Arg::Array { .. }) || call.numel(i) > 0)
                .filter(|&i| {
                    !(mode == Mode::Vjp && matches!(k.args[i], Arg::Array { intent: 1, .. }))
                })
                .collect();
            let i = pick(cands, i)?;
            call.data[i] = Some(Data::Null);
            Some(i)
        }
        Fault::Device(i, d) => {
            let i = i % n;
            call.devices[i] = d;
            Some(i)
        }
        Fault::Strides(i) => {
            // Only non-empty arrays with a dim above 1 have a layout.
            let cands: Vec<usize> = arrays
                .iter()
                .copied()
                .filter(|&a| call.numel(a) > 0 && call.shapes[a].iter().any(|&d| d > 1))
                .collect();
            let a = pick(cands, i)?;
            let s: Vec<i64> = contiguous(&call.shapes[a], k.fortran)
                .iter()
                .map(|s| s * 2)
                .collect();
            call.strides[a] = Some(s);
            Some(a)
        }
        Fault::StrideCount(i) => {
            let i = i % n;
            call.strides[i] = Some(vec![1; call.shapes[i].len() + 1]);
            Some(i)
        }
        Fault::Alias(i, j) => {
            if mode == Mode::Vjp {
                return None; // a VJP writes no argument
            }
            let written: Vec<usize> = arrays
                .iter()
                .copied()
                .filter(|&a| {
                    matches!(k.args[a], Arg::Array { intent: 1 | 2, .. }) && call.numel(a) > 0
                })
                .collect();
            let w = pick(written, i)?;
            let others: Vec<usize> = (0..n)
                .filter(|&o| {
                    o != w && (!matches!(k.args[o], Arg::Array { .. }) || call.numel(o) > 0)
                })
                .collect();
            let o = pick(others, j)?;
            call.data[w] = Some(Data::Of(o));
            Some(w)
        }
    }
}

fn names_for(k: &Kernel, size_values: &[i64], bare: [i64; 2]) -> Names {
    let sizes = k
        .names()
        .into_iter()
        .zip(&k.args)
        .filter(|(_, a)| matches!(a, Arg::Size { .. }))
        .enumerate()
        .map(|(i, (name, _))| (name, size_values[i % size_values.len()]))
        .collect();
    Names { sizes, bare }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn consistent_calls_are_accepted_and_faults_are_named(
        k in kernel(),
        size_values in prop::collection::vec(1i64..5, 1..4),
        bare in [0i64..4, 0i64..4],
        mode in prop::sample::select(&[Mode::Primal, Mode::Jvp, Mode::Vjp][..]),
        f in fault(),
    ) {
        let desc = k.manifest();
        let names = names_for(&k, &size_values, bare);

        let mut call = Call::consistent(&k, &names);
        let bound = validate_call(&desc, mode, &call.refs());
        prop_assert!(bound.is_ok(), "a consistent call is rejected: {}", bound.err().unwrap());
        let bound = bound.unwrap();
        for (i, a) in desc.args.iter().enumerate() {
            prop_assert_eq!(bound.numel[i] as i64, call.numel(i), "numel of `{}`", a.name);
            if a.kind == ArgKind::Size {
                let want = names.sizes.iter().find(|(n, _)| *n == a.name).unwrap().1;
                prop_assert_eq!(bound.size(&a.name), Some(want));
            }
        }

        let mut call = Call::consistent(&k, &names);
        let Some(at) = inject(&k, &mut call, &f, mode) else {
            return Ok(());
        };
        let name = &desc.args[at].name;
        let outcome = validate_call(&desc, mode, &call.refs())
            .map(|_| ())
            .map_err(|e| e.to_string());
        match outcome {
            Ok(()) => prop_assert!(false, "{f:?} on `{name}` was accepted"),
            Err(text) => prop_assert!(
                text.contains(&format!("`{name}`")),
                "{f:?}: the error does not name `{name}`: {text}"
            ),
        }
    }

    #[test]
    fn arbitrary_descriptors_never_panic(
        k in kernel(),
        mode in prop::sample::select(&[Mode::Primal, Mode::Jvp, Mode::Vjp][..]),
        descs in prop::collection::vec(
            (
                prop_oneof![
                    (0usize..4).prop_map(|i| Ok(DTYPES[i])),
                    any::<(u8, u8, u16)>().prop_map(|t| DType::from_dlpack(t.0, t.1, t.2).ok_or(t)),
                ],
                prop_oneof![Just(1i32), any::<i32>()],
                prop::collection::vec(prop_oneof![0i64..4, any::<i64>()], 0..5),
                prop::option::of(prop::collection::vec(any::<i64>(), 0..5)),
                any::<bool>(),
                any::<i64>(),
            ),
            0..7,
        ),
    ) {
        let desc = k.manifest();
        // Every data pointer is real memory holding a value: validation reads sizes through it.
        let mut cells: Vec<[u64; 1]> = descs.iter().map(|d| [d.5 as u64]).collect();
        let ptrs: Vec<*mut c_void> = cells.iter_mut().map(|c| c.as_mut_ptr().cast()).collect();
        let refs: Vec<ArgRef<'_>> = descs
            .iter()
            .zip(&ptrs)
            .map(|((dtype, device, shape, strides, null, _), &p)| ArgRef {
                data: if *null { std::ptr::null_mut() } else { p },
                dtype: *dtype,
                device_type: *device,
                shape,
                strides: strides.as_deref(),
            })
            .collect();
        let outcome = validate_call(&desc, mode, &refs)
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Err(text) = outcome {
            prop_assert!(
                text.contains("arguments, got")
                    || desc.args.iter().any(|a| text.contains(&format!("`{}`", a.name))),
                "the error names no argument: {text}"
            );
        }
    }
}
