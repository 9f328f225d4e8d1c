//! The manifest: a versioned JSON description of every kernel in a library.
//!
//! Libraries built by simgrad export it behind the C symbol [`MANIFEST_SYMBOL`]
//! (`const char *simgrad_manifest(void)`); libraries built elsewhere ship it as a file next to the
//! library (see [`crate::Library::open_with_manifest`]).

use crate::dims::DimExpr;
use crate::dtype::DType;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The manifest schema version this runtime reads.
pub const MANIFEST_VERSION: u32 = 1;
/// The trampoline calling-convention version this runtime calls (see
/// `docs/calling-convention.md`). A library built for another version is refused.
pub const ABI_VERSION: u32 = 1;
/// The C symbol (`const char *simgrad_manifest(void)`) that returns the embedded manifest.
pub const MANIFEST_SYMBOL: &str = "simgrad_manifest";

/// A library's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Schema version; must equal [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// Calling-convention version of the entry points; must equal [`ABI_VERSION`].
    pub abi_version: u32,
    /// What produced the library (`"simgrad 0.1.0"`, `"hand-written"`, ...).
    pub generator: String,
    /// Toolchain and flags that built the library.
    #[serde(default)]
    pub toolchain: Toolchain,
    /// The kernels, in spec order.
    pub kernels: Vec<KernelDesc>,
}

/// Versions and flags of the tools that built a library.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toolchain {
    /// LLVM version (`"19.1.7"`).
    #[serde(default)]
    pub llvm: String,
    /// Enzyme version and where its source came from.
    #[serde(default)]
    pub enzyme: String,
    /// Pipeline name and flags, tool by tool.
    #[serde(default)]
    pub flags: BTreeMap<String, Vec<String>>,
}

/// One kernel: a user function and its generated entry points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelDesc {
    /// Name used to look the kernel up.
    pub name: String,
    /// The user function's symbol.
    pub symbol: String,
    /// Source language (`c`, `c++`, `fortran`, or anything for external libraries).
    #[serde(default)]
    pub language: String,
    /// Memory order of every array argument.
    pub order: Order,
    /// Arguments in call order.
    pub args: Vec<ArgDesc>,
    /// Entry point per mode.
    pub modes: BTreeMap<Mode, ModeDesc>,
}

/// Array memory order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Row-major (C): the last index varies fastest.
    C,
    /// Column-major (Fortran): the first index varies fastest.
    F,
}

/// A kernel mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The function itself.
    Primal,
    /// Forward mode: Jacobian-vector product.
    Jvp,
    /// Reverse mode: vector-Jacobian product.
    Vjp,
}

impl Mode {
    /// All modes.
    pub const ALL: [Mode; 3] = [Mode::Primal, Mode::Jvp, Mode::Vjp];

    /// The manifest name (`primal`, `jvp`, `vjp`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Primal => "primal",
            Mode::Jvp => "jvp",
            Mode::Vjp => "vjp",
        }
    }

    /// Parses a manifest name.
    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The entry point of one mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeDesc {
    /// Exported symbol with the uniform trampoline signature.
    pub symbol: String,
}

/// Kind of an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgKind {
    /// A pointer to elements.
    Array,
    /// An integer size passed by value.
    Size,
    /// A number passed by value.
    Scalar,
}

/// Data flow of an array argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    /// Read only.
    In,
    /// Written only.
    Out,
    /// Read and updated in place.
    Inout,
}

/// One argument of a kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgDesc {
    /// Argument name (also the size name for `size` arguments).
    pub name: String,
    /// Array, size or scalar.
    pub kind: ArgKind,
    /// Element type.
    pub dtype: DType,
    /// Dims of an array (empty for sizes and scalars).
    #[serde(default)]
    pub shape: Vec<DimExpr>,
    /// Data flow (`in` for sizes and scalars).
    pub intent: Intent,
    /// Whether derivatives flow through this argument.
    pub differentiable: bool,
}

impl ArgDesc {
    /// Whether the argument is read by the kernel.
    pub fn is_input(&self) -> bool {
        matches!(self.intent, Intent::In | Intent::Inout)
    }

    /// Whether the argument is written by the kernel.
    pub fn is_output(&self) -> bool {
        matches!(self.intent, Intent::Out | Intent::Inout)
    }
}

impl Manifest {
    /// Parses and validates a manifest document. `origin` names where it came from in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Manifest> {
        let m: Manifest = serde_json::from_str(text).map_err(|e| Error::Manifest {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        m.validate(origin)?;
        Ok(m)
    }

    /// Serialises the manifest as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serialises")
    }

    /// Checks versions and the consistency of every kernel.
    pub fn validate(&self, origin: &str) -> Result<()> {
        if self.manifest_version != MANIFEST_VERSION {
            return Err(Error::AbiMismatch {
                what: "manifest_version",
                expected: MANIFEST_VERSION,
                got: self.manifest_version,
                origin: origin.to_string(),
            });
        }
        if self.abi_version != ABI_VERSION {
            return Err(Error::AbiMismatch {
                what: "abi_version",
                expected: ABI_VERSION,
                got: self.abi_version,
                origin: origin.to_string(),
            });
        }
        let mut names = BTreeSet::new();
        for k in &self.kernels {
            if !names.insert(k.name.as_str()) {
                return Err(Error::Manifest {
                    origin: origin.to_string(),
                    message: format!("kernel `{}` is listed twice", k.name),
                });
            }
            k.check().map_err(|message| Error::Manifest {
                origin: origin.to_string(),
                message: format!("kernel `{}`: {message}", k.name),
            })?;
        }
        Ok(())
    }
}

impl KernelDesc {
    /// Checks that the kernel's arguments are consistent. The error names the field.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.modes.is_empty() {
            return Err("`modes` is empty".into());
        }
        let mut seen = BTreeSet::new();
        let sizes: BTreeSet<&str> = self
            .args
            .iter()
            .filter(|a| a.kind == ArgKind::Size)
            .map(|a| a.name.as_str())
            .collect();
        // Names bound by the shape of some array (a bare-name dim).
        let shape_bound: BTreeSet<&str> = self
            .args
            .iter()
            .flat_map(|a| a.shape.iter().filter_map(DimExpr::as_name))
            .collect();
        for a in &self.args {
            if a.name.is_empty() || !is_identifier(&a.name) {
                return Err(format!("argument name `{}` is not an identifier", a.name));
            }
            if !seen.insert(a.name.as_str()) {
                return Err(format!("argument `{}` is listed twice", a.name));
            }
            let field = |f: &str| format!("args.{}.{f}", a.name);
            match a.kind {
                ArgKind::Array => {
                    for d in &a.shape {
                        for n in d.names() {
                            if !sizes.contains(n) && !shape_bound.contains(n) {
                                return Err(format!(
                                    "{}: dim `{d}` uses the size `{n}`, which no size argument and no bare array dim binds",
                                    field("shape")
                                ));
                            }
                        }
                    }
                }
                ArgKind::Size | ArgKind::Scalar => {
                    if !a.shape.is_empty() {
                        return Err(format!(
                            "{}: a {} argument has no shape",
                            field("shape"),
                            kind_name(a.kind)
                        ));
                    }
                    if a.intent != Intent::In {
                        return Err(format!(
                            "{}: a {} argument is passed by value, so its intent is `in`",
                            field("intent"),
                            kind_name(a.kind)
                        ));
                    }
                }
            }
            if a.kind == ArgKind::Size && a.dtype.is_float() {
                return Err(format!(
                    "{}: a size is i32 or i64, got {}",
                    field("dtype"),
                    a.dtype
                ));
            }
            if a.differentiable && !a.dtype.is_float() {
                return Err(format!(
                    "{}: only f32/f64 arguments can be differentiable, `{}` is {}",
                    field("differentiable"),
                    a.name,
                    a.dtype
                ));
            }
        }
        Ok(())
    }

    /// The argument named `name`.
    pub fn arg(&self, name: &str) -> Option<&ArgDesc> {
        self.args.iter().find(|a| a.name == name)
    }

    /// Whether the kernel has an entry point for `mode`.
    pub fn has_mode(&self, mode: Mode) -> bool {
        self.modes.contains_key(&mode)
    }
}

fn kind_name(k: ArgKind) -> &'static str {
    match k {
        ArgKind::Array => "array",
        ArgKind::Size => "size",
        ArgKind::Scalar => "scalar",
    }
}

/// Whether `s` is a C identifier.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        r#"{
          "manifest_version": 1, "abi_version": 1, "generator": "test",
          "kernels": [{
            "name": "axpy", "symbol": "axpy", "language": "c", "order": "C",
            "args": [
              {"name": "n", "kind": "size", "dtype": "i64", "intent": "in", "differentiable": false},
              {"name": "a", "kind": "scalar", "dtype": "f64", "intent": "in", "differentiable": true},
              {"name": "x", "kind": "array", "dtype": "f64", "shape": ["n"], "intent": "in", "differentiable": true},
              {"name": "y", "kind": "array", "dtype": "f64", "shape": ["n"], "intent": "inout", "differentiable": true}
            ],
            "modes": {"primal": {"symbol": "p"}, "vjp": {"symbol": "v"}}
          }]
        }"#
        .to_string()
    }

    #[test]
    fn parses_a_valid_manifest() {
        let m = Manifest::from_json(&sample(), "t").unwrap();
        assert_eq!(m.kernels[0].args.len(), 4);
        assert!(m.kernels[0].has_mode(Mode::Vjp));
        assert!(!m.kernels[0].has_mode(Mode::Jvp));
        let again = Manifest::from_json(&m.to_json(), "t").unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn rejects_other_versions() {
        let text = sample().replace(r#""abi_version": 1"#, r#""abi_version": 7"#);
        let e = Manifest::from_json(&text, "lib.so")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("abi_version") && e.contains('7') && e.contains("lib.so"),
            "{e}"
        );
    }

    #[test]
    fn rejects_inconsistent_kernels() {
        let cases = [
            (r#"["n"]"#, r#"["2*m"]"#, "uses the size `m`"),
            (
                r#""kind": "size", "dtype": "i64""#,
                r#""kind": "size", "dtype": "f64""#,
                "a size is i32 or i64",
            ),
            (r#""name": "x""#, r#""name": "y""#, "listed twice"),
            (
                r#""generator": "test""#,
                r#""generator": "test", "extra": 1"#,
                "unknown field `extra`",
            ),
        ];
        for (from, to, expect) in cases {
            let text = sample().replacen(from, to, 1);
            let e = Manifest::from_json(&text, "t").unwrap_err().to_string();
            assert!(e.contains(expect), "{from} -> {to}: {e}");
        }
    }
}
