//! The kernel spec (`simgrad.toml`): which sources to compile and what each kernel's arguments are.
//!
//! ```toml
//! [build]                       # optional
//! pipeline = "default"          # a name from `simgrad_build::pipeline`
//! cflags = ["-DN=100"]          # extra flags for every C/C++ source
//!
//! [[kernel]]
//! name = "f"                    # lookup name; defaults to `symbol`
//! symbol = "f"                  # the C symbol (Fortran: the bind(C) name)
//! sources = ["f.c"]             # relative to the spec file
//! modes = ["primal", "jvp", "vjp"]
//! order = "C"                   # optional; "F" is the default for Fortran sources
//! args = [
//!   { name = "n", kind = "size" },
//!   { name = "x", dtype = "f64", shape = ["n"] },
//!   { name = "y", dtype = "f64", shape = ["n"], intent = "out" },
//! ]
//! ```
//!
//! Defaults: `kind = "array"`, `intent = "in"`, sizes are `i64`, `differentiable` is true for
//! floating-point arrays and scalars. Unknown keys, missing fields and inconsistent shapes are
//! errors naming the file, the kernel and the field.

use crate::error::BuildError;
use serde::Deserialize;
use simgrad_core::{ArgDesc, ArgKind, DType, DimExpr, Intent, KernelDesc, Mode, ModeDesc, Order};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Source language of a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Language {
    /// C, compiled with clang.
    C,
    /// C++, compiled with clang++.
    Cxx,
    /// Fortran, compiled with flang.
    Fortran,
}

impl Language {
    /// Infers the language from a file extension.
    pub fn from_path(path: &Path) -> Option<Language> {
        match path.extension()?.to_str()? {
            "c" => Some(Language::C),
            "cc" | "cpp" | "cxx" | "C" | "c++" => Some(Language::Cxx),
            "f" | "f90" | "F90" | "f95" | "F" | "f03" | "f08" => Some(Language::Fortran),
            _ => None,
        }
    }

    /// The manifest name.
    pub fn name(self) -> &'static str {
        match self {
            Language::C => "c",
            Language::Cxx => "c++",
            Language::Fortran => "fortran",
        }
    }
}

/// A parsed and checked spec.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The spec file.
    pub path: PathBuf,
    /// The directory sources are relative to.
    pub dir: PathBuf,
    /// Library-wide settings.
    pub build: BuildSection,
    /// Kernels in file order.
    pub kernels: Vec<KernelSpec>,
}

/// The `[build]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// Pipeline name (see [`crate::pipeline::Pipeline::named`]).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Extra flags for every C and C++ source.
    #[serde(default)]
    pub cflags: Vec<String>,
    /// Extra flags for every Fortran source.
    #[serde(default)]
    pub fflags: Vec<String>,
    /// Library name (file `lib<name>.so`); defaults to the spec directory's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// One kernel of a spec, resolved.
#[derive(Debug, Clone)]
pub struct KernelSpec {
    /// The manifest entry (mode symbols filled in).
    pub desc: KernelDesc,
    /// Source files (absolute).
    pub sources: Vec<PathBuf>,
    /// Language of the kernel's own symbol (the first source's).
    pub language: Language,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    build: BuildSection,
    #[serde(default)]
    kernel: Vec<RawKernel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKernel {
    name: Option<String>,
    symbol: Option<String>,
    sources: Option<Vec<String>>,
    modes: Option<Vec<String>>,
    order: Option<String>,
    args: Option<Vec<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArg {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    dtype: Option<String>,
    #[serde(default)]
    shape: Option<Vec<DimExpr>>,
    #[serde(default)]
    intent: Option<String>,
    #[serde(default)]
    differentiable: Option<bool>,
}

/// The exported trampoline symbol of `kernel` in `mode`.
pub fn trampoline_symbol(kernel: &str, mode: Mode) -> String {
    format!("simgrad_k_{kernel}_{}", mode.name())
}

impl Spec {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<Spec, BuildError> {
        let text = std::fs::read_to_string(path).map_err(|e| BuildError::Spec {
            file: path.display().to_string(),
            kernel: None,
            field: None,
            message: format!("cannot read the spec: {e}"),
        })?;
        Spec::parse(&text, path)
    }

    /// Parses spec text; `path` locates sources and names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Spec, BuildError> {
        let file = path.display().to_string();
        let err = |kernel: Option<&str>, field: Option<String>, message: String| BuildError::Spec {
            file: file.clone(),
            kernel: kernel.map(str::to_string),
            field,
            message,
        };
        let raw: RawSpec =
            toml::from_str(text).map_err(|e| err(None, None, e.to_string().trim().to_string()))?;
        if raw.kernel.is_empty() {
            return Err(err(
                None,
                Some("kernel".into()),
                "the spec declares no `[[kernel]]`".into(),
            ));
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let mut kernels: Vec<KernelSpec> = Vec::new();
        for (index, rk) in raw.kernel.into_iter().enumerate() {
            let label = rk
                .name
                .clone()
                .or_else(|| rk.symbol.clone())
                .unwrap_or_else(|| format!("#{}", index + 1));
            let kerr =
                |field: &str, message: String| err(Some(&label), Some(field.to_string()), message);
            let symbol = rk.symbol.ok_or_else(|| {
                kerr(
                    "symbol",
                    "missing field `symbol` (the function's C symbol)".into(),
                )
            })?;
            let name = rk.name.unwrap_or_else(|| symbol.clone());
            if !is_identifier(&name) {
                return Err(kerr("name", format!("`{name}` is not an identifier")));
            }
            if !is_identifier(&symbol) {
                return Err(kerr("symbol", format!("`{symbol}` is not a C identifier")));
            }
            if kernels.iter().any(|k| k.desc.name == name) {
                return Err(kerr(
                    "name",
                    format!("a kernel named `{name}` is already declared"),
                ));
            }
            let sources = rk.sources.ok_or_else(|| {
                kerr(
                    "sources",
                    "missing field `sources` (list of source files)".into(),
                )
            })?;
            if sources.is_empty() {
                return Err(kerr("sources", "`sources` is empty".into()));
            }
            let mut abs = Vec::new();
            let mut language = None;
            for s in &sources {
                let p = dir.join(s);
                let lang = Language::from_path(&p).ok_or_else(|| {
                    kerr(
                        "sources",
                        format!(
                            "cannot tell the language of `{s}` (use .c, .cpp/.cc/.cxx, or .f90/.f)"
                        ),
                    )
                })?;
                if !p.is_file() {
                    return Err(kerr(
                        "sources",
                        format!("source `{s}` not found (looked for {})", p.display()),
                    ));
                }
                language.get_or_insert(lang);
                abs.push(p);
            }
            let language = language.expect("sources is not empty");
            let modes = match rk.modes {
                None => Mode::ALL.to_vec(),
                Some(list) => {
                    let mut out = Vec::new();
                    for m in list {
                        let mode = Mode::from_name(&m).ok_or_else(|| {
                            kerr(
                                "modes",
                                format!("unknown mode `{m}`; the modes are primal, jvp, vjp"),
                            )
                        })?;
                        if !out.contains(&mode) {
                            out.push(mode);
                        }
                    }
                    if out.is_empty() {
                        return Err(kerr("modes", "`modes` is empty".into()));
                    }
                    out
                }
            };
            let order = match rk.order.as_deref() {
                None if language == Language::Fortran => Order::F,
                None => Order::C,
                Some("C") | Some("c") => Order::C,
                Some("F") | Some("f") => Order::F,
                Some(o) => {
                    return Err(kerr(
                        "order",
                        format!("unknown order `{o}`; use \"C\" or \"F\""),
                    ))
                }
            };
            let raw_args = rk.args.ok_or_else(|| {
                kerr(
                    "args",
                    "missing field `args` (the function's arguments in order)".into(),
                )
            })?;
            let mut args = Vec::new();
            for (i, v) in raw_args.into_iter().enumerate() {
                let a: RawArg = v.try_into().map_err(|e: toml::de::Error| {
                    kerr(&format!("args[{i}]"), e.to_string().trim().to_string())
                })?;
                args.push(resolve_arg(a).map_err(|(field, m)| kerr(&field, m))?);
            }
            let mut mode_map = BTreeMap::new();
            for m in modes {
                mode_map.insert(
                    m,
                    ModeDesc {
                        symbol: trampoline_symbol(&name, m),
                    },
                );
            }
            let desc = KernelDesc {
                name: name.clone(),
                symbol,
                language: language.name().to_string(),
                order,
                args,
                modes: mode_map,
            };
            desc.check().map_err(|m| {
                let field = m
                    .split(':')
                    .next()
                    .filter(|f| f.starts_with("args."))
                    .map(str::to_string);
                err(Some(&label), field, m)
            })?;
            kernels.push(KernelSpec {
                desc,
                sources: abs,
                language,
            });
        }
        Ok(Spec {
            path: path.to_path_buf(),
            dir,
            build: raw.build,
            kernels,
        })
    }

    /// The library's name: `[build].name`, else the spec directory's name, else `kernels`.
    pub fn library_name(&self) -> String {
        let raw = self.build.name.clone().unwrap_or_else(|| {
            std::fs::canonicalize(&self.dir)
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "kernels".into())
        });
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

fn resolve_arg(a: RawArg) -> Result<ArgDesc, (String, String)> {
    let field = |f: &str| format!("args.{}.{f}", a.name);
    if !is_identifier(&a.name) {
        return Err((
            "args".into(),
            format!("argument name `{}` is not an identifier", a.name),
        ));
    }
    let kind = match a.kind.as_deref().unwrap_or("array") {
        "array" => ArgKind::Array,
        "size" => ArgKind::Size,
        "scalar" => ArgKind::Scalar,
        k => {
            return Err((
                field("kind"),
                format!("unknown kind `{k}`; use array, size or scalar"),
            ))
        }
    };
    let dtype = match (a.dtype.as_deref(), kind) {
        (None, ArgKind::Size) => DType::I64,
        (None, _) => {
            return Err((
                field("dtype"),
                "missing field `dtype` (f32, f64, i32 or i64)".into(),
            ))
        }
        (Some(d), _) => DType::from_name(d).ok_or_else(|| {
            (
                field("dtype"),
                format!("unknown dtype `{d}`; use f32, f64, i32 or i64"),
            )
        })?,
    };
    let shape = match (a.shape, kind) {
        (Some(s), ArgKind::Array) => {
            if s.is_empty() {
                return Err((field("shape"), "an array needs at least one dim; use kind = \"scalar\" for a single value passed by value".into()));
            }
            s
        }
        (None, ArgKind::Array) => {
            return Err((field("shape"), "missing field `shape` for an array".into()))
        }
        (Some(_), _) => return Err((field("shape"), "only arrays have a shape".into())),
        (None, _) => Vec::new(),
    };
    let intent = match a.intent.as_deref() {
        None | Some("in") => Intent::In,
        Some("out") => Intent::Out,
        Some("inout") => Intent::Inout,
        Some(i) => {
            return Err((
                field("intent"),
                format!("unknown intent `{i}`; use in, out or inout"),
            ))
        }
    };
    let differentiable = match a.differentiable {
        Some(d) => d,
        None => dtype.is_float() && kind != ArgKind::Size,
    };
    Ok(ArgDesc {
        name: a.name,
        kind,
        dtype,
        shape,
        intent,
        differentiable,
    })
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Spec, BuildError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("f.c"),
            "void f(double *x, double *y, long n) {}",
        )
        .unwrap();
        let path = dir.path().join("simgrad.toml");
        Spec::parse(text, &path)
    }

    const GOOD: &str = r#"
[[kernel]]
symbol = "f"
sources = ["f.c"]
args = [
  { name = "x", dtype = "f64", shape = ["n"] },
  { name = "y", dtype = "f64", shape = ["n"], intent = "out" },
  { name = "n", kind = "size" },
]
"#;

    #[test]
    fn fills_defaults() {
        let s = parse(GOOD).unwrap();
        let k = &s.kernels[0].desc;
        assert_eq!(k.name, "f");
        assert_eq!(k.order, Order::C);
        assert_eq!(k.modes.len(), 3);
        assert_eq!(k.modes[&Mode::Vjp].symbol, "simgrad_k_f_vjp");
        assert!(k.args[0].differentiable);
        assert_eq!(k.args[2].dtype, DType::I64);
        assert!(!k.args[2].differentiable);
    }

    #[test]
    fn errors_name_file_kernel_and_field() {
        let cases = [
            (
                GOOD.replace("symbol = \"f\"", "symbol = \"f\"\ncolour = 1"),
                "unknown field `colour`",
                None,
            ),
            (
                GOOD.replace("symbol = \"f\"\n", ""),
                "missing field `symbol`",
                Some("symbol"),
            ),
            (
                GOOD.replace("\"n\"], intent = \"out\"", "\"2*m\"], intent = \"out\""),
                "uses the size `m`",
                Some("args.y.shape"),
            ),
            (
                GOOD.replace(
                    "dtype = \"f64\", shape = [\"n\"] }",
                    "dtype = \"f16\", shape = [\"n\"] }",
                ),
                "unknown dtype `f16`",
                Some("args.x.dtype"),
            ),
            (
                GOOD.replace("[\"f.c\"]", "[\"g.c\"]"),
                "not found",
                Some("sources"),
            ),
            (
                GOOD.replace(
                    "{ name = \"n\", kind = \"size\" }",
                    "{ name = \"n\", kind = \"size\", shape = [1] }",
                ),
                "only arrays have a shape",
                Some("args.n.shape"),
            ),
            (
                GOOD.replace("args = [", "modes = [\"hessian\"]\nargs = ["),
                "unknown mode `hessian`",
                Some("modes"),
            ),
            (
                GOOD.replace("{ name = \"x\", dtype", "{ name = \"x\", typo = 1, dtype"),
                "unknown field `typo`",
                Some("args[0]"),
            ),
            ("[[kernel]\n".to_string(), "TOML parse error", None),
        ];
        for (text, expect, field) in cases {
            let e = parse(&text).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(expect), "{expect}: {msg}");
            assert!(msg.contains("simgrad.toml"), "{msg}");
            if let Some(f) = field {
                assert!(msg.contains(&format!("field `{f}`")), "{f}: {msg}");
                assert!(
                    msg.contains("kernel `f`") || msg.contains("kernel `#1`"),
                    "{msg}"
                );
            }
        }
    }
}
