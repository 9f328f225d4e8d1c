//! The compile pipeline: sources → LLVM bitcode → one module → Enzyme → optimised → shared library.
//!
//! A [`Pipeline`] fixes the flags of every step. Several named pipelines exist so that the choice
//! of default can be made by measurement across the conformance corpus (`cargo xtask
//! pipeline-study`, `docs/pipeline.md`): Enzyme's derivatives can be silently wrong under some
//! pre-Enzyme optimisation flags (`shared/ENZYME.md`).

use crate::error::BuildError;
use crate::spec::{KernelSpec, Language};
use crate::toolchain::Toolchain;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Flags of every pipeline step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// The pipeline's name.
    pub name: &'static str,
    /// Flags for clang/clang++ before Enzyme (optimisation level and friends).
    pub pre: &'static [&'static str],
    /// The same for flang, which spells some of them differently (`-fno-vectorize` is
    /// `-mllvm -vectorize-loops=false`) and rejects clang-only ones (`-Xclang`).
    pub pre_fortran: &'static [&'static str],
    /// Extra `opt` flags for the Enzyme step.
    pub enzyme: &'static [&'static str],
    /// Extra `opt` flags for the Enzyme step when any source is Fortran (flang's IR lacks the
    /// type information Enzyme needs for whole-array copies).
    pub enzyme_fortran: &'static [&'static str],
    /// The optimisation pipeline after Enzyme (`-O2`), or none.
    pub post: Option<&'static str>,
    /// Known to give wrong derivatives on some kernels; building with it prints a warning.
    pub known_bad: Option<&'static str>,
}

/// The name of the default pipeline, chosen by measurement over the conformance corpus
/// (`cargo run -p simgrad-tests --release --bin pipeline-study`, see `docs/pipeline.md`).
pub const DEFAULT_PIPELINE: &str = "O2-novec";

const LOOSE: &[&str] = &["-enzyme-loose-types"];

/// Enzyme marks the arithmetic of derivatives fast-math by default, which lets LLVM assume no
/// NaNs or infinities in derivative code; the LLTM example's float JVP came out NaN for
/// saturated tanh arguments until this was turned off. IEEE semantics cost little, so every
/// pipeline turns it off.
const STRICT: &[&str] = &["-enzyme-fast-math=0"];

/// Why the pipelines that run LLVM's loop vectoriser before Enzyme are marked known bad.
const VECTORISED_BEFORE_ENZYME: &str = "the loop vectoriser runs before Enzyme, and Enzyme's reverse mode of a \
     vectorised loop nest is silently wrong when only the scalar remainder loops run (the corpus's rk2_logistic \
     for n < 4; docs/pipeline.md)";

const O2: &[&str] = &["-O2"];
const NOVEC_FORTRAN: &[&str] = &[
    "-O2",
    "-mllvm",
    "-vectorize-loops=false",
    "-mllvm",
    "-vectorize-slp=false",
    "-mllvm",
    "-unroll-threshold=0",
];

/// Every named pipeline, the default first. The candidates and the measurement that chose the
/// default are in `docs/pipeline.md`.
pub const PIPELINES: &[Pipeline] = &[
    // The default: the flags Enzyme's tutorials suggest (no loop or SLP vectorisation, no unrolling
    // before Enzyme; the optimisation after Enzyme vectorises the derivative code as usual).
    Pipeline {
        name: "O2-novec",
        pre: &[
            "-O2",
            "-fno-vectorize",
            "-fno-slp-vectorize",
            "-fno-unroll-loops",
        ],
        pre_fortran: NOVEC_FORTRAN,
        enzyme: STRICT,
        enzyme_fortran: LOOSE,
        post: Some("-O2"),
        known_bad: None,
    },
    Pipeline {
        name: "O2",
        pre: O2,
        pre_fortran: O2,
        enzyme: STRICT,
        enzyme_fortran: LOOSE,
        post: Some("-O2"),
        known_bad: Some(VECTORISED_BEFORE_ENZYME),
    },
    // Only the loop vectoriser off (SLP vectorisation and unrolling stay on).
    Pipeline {
        name: "O2-noloopvec",
        pre: &["-O2", "-fno-vectorize"],
        pre_fortran: &["-O2", "-mllvm", "-vectorize-loops=false"],
        enzyme: STRICT,
        enzyme_fortran: LOOSE,
        post: Some("-O2"),
        known_bad: None,
    },
    // O3 with both vectorisers and unrolling off before Enzyme, O3 after.
    Pipeline {
        name: "O3-novec",
        pre: &[
            "-O3",
            "-fno-vectorize",
            "-fno-slp-vectorize",
            "-fno-unroll-loops",
        ],
        pre_fortran: &[
            "-O3",
            "-mllvm",
            "-vectorize-loops=false",
            "-mllvm",
            "-vectorize-slp=false",
            "-mllvm",
            "-unroll-threshold=0",
        ],
        enzyme: STRICT,
        enzyme_fortran: LOOSE,
        post: Some("-O3"),
        known_bad: None,
    },
    Pipeline {
        name: "O1",
        pre: &["-O1"],
        pre_fortran: &["-O1"],
        enzyme: STRICT,
        enzyme_fortran: LOOSE,
        post: Some("-O2"),
        known_bad: None,
    },
    // O3 with loop and SLP vectorisation before Enzyme, O3 after.
    Pipeline {
        name: "O3",
        pre: &["-O3"],
        pre_fortran: &["-O3"],
        enzyme: STRICT,
        enzyme_fortran: LOOSE,
        post: Some("-O3"),
        known_bad: Some(VECTORISED_BEFORE_ENZYME),
    },
    Pipeline {
        name: "O0",
        pre: &["-O0", "-Xclang", "-disable-O0-optnone"],
        pre_fortran: &["-O0"],
        enzyme: STRICT,
        enzyme_fortran: LOOSE,
        post: Some("-O2"),
        known_bad: Some("the JVP of a C++ kernel using std::max/std::min/std::clamp (the corpus's clamp_minmax) is \
             wrong at -O0; Fortran at -O0 calls flang's runtime, which Enzyme cannot differentiate"),
    },
    // No `-enzyme-loose-types` even for Fortran.
    Pipeline {
        name: "O2-strict",
        pre: O2,
        pre_fortran: O2,
        enzyme: STRICT,
        enzyme_fortran: &[],
        post: Some("-O2"),
        known_bad: Some(VECTORISED_BEFORE_ENZYME),
    },
    // `-enzyme-loose-types` for every language.
    Pipeline {
        name: "O2-loose",
        pre: O2,
        pre_fortran: O2,
        enzyme: &["-enzyme-loose-types", "-enzyme-fast-math=0"],
        enzyme_fortran: &[],
        post: Some("-O2"),
        known_bad: Some("as O2 (the loop vectoriser runs before Enzyme: rk2_logistic's VJP is wrong for n < 4), and \
             -enzyme-loose-types makes the VJP of a C kernel that zeroes its output with memset and then \
             scatter-adds into it silently wrong (known-failures/c_scatter_memset)"),
    },
    Pipeline {
        name: "O2-fastmath",
        pre: &["-O2", "-ffast-math"],
        pre_fortran: &["-O2", "-ffast-math"],
        enzyme: STRICT,
        enzyme_fortran: LOOSE,
        post: Some("-O2"),
        known_bad: Some(VECTORISED_BEFORE_ENZYME),
    },
    // No optimisation after Enzyme (only the linker's codegen).
    Pipeline {
        name: "O2-nopost",
        pre: O2,
        pre_fortran: O2,
        enzyme: STRICT,
        enzyme_fortran: LOOSE,
        post: None,
        known_bad: Some(VECTORISED_BEFORE_ENZYME),
    },
    Pipeline {
        name: "O2-postO3",
        pre: O2,
        pre_fortran: O2,
        enzyme: STRICT,
        enzyme_fortran: LOOSE,
        post: Some("-O3"),
        known_bad: Some(VECTORISED_BEFORE_ENZYME),
    },
    // Enzyme inlines the derivative calls (a flag of Enzyme's own integration tests).
    Pipeline {
        name: "O2-inline",
        pre: O2,
        pre_fortran: O2,
        enzyme: &["-enzyme-inline=1", "-enzyme-fast-math=0"],
        enzyme_fortran: LOOSE,
        post: Some("-O2"),
        known_bad: Some(VECTORISED_BEFORE_ENZYME),
    },
    // Without Enzyme's own simplification of the function before differentiating it.
    Pipeline {
        name: "O2-nopreopt",
        pre: O2,
        pre_fortran: O2,
        enzyme: &["-enzyme-preopt=false", "-enzyme-fast-math=0"],
        enzyme_fortran: LOOSE,
        post: Some("-O2"),
        known_bad: Some(VECTORISED_BEFORE_ENZYME),
    },
];

impl Pipeline {
    /// The pipeline called `name`; `"default"` is [`DEFAULT_PIPELINE`].
    pub fn named(name: &str) -> Option<&'static Pipeline> {
        let name = if name == "default" {
            DEFAULT_PIPELINE
        } else {
            name
        };
        PIPELINES.iter().find(|p| p.name == name)
    }

    /// The default pipeline.
    pub fn default_pipeline() -> &'static Pipeline {
        Pipeline::named(DEFAULT_PIPELINE).expect("the default pipeline exists")
    }

    /// Names of every pipeline, comma separated (for error messages).
    pub fn names() -> String {
        PIPELINES
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The flags as they go into the cache key and the manifest.
    pub fn describe(&self, has_fortran: bool) -> Vec<(String, Vec<String>)> {
        let mut enzyme: Vec<String> = self.enzyme.iter().map(|s| s.to_string()).collect();
        if has_fortran {
            enzyme.extend(self.enzyme_fortran.iter().map(|s| s.to_string()));
        }
        let mut out = vec![
            ("pipeline".into(), vec![self.name.to_string()]),
            (
                "pre".into(),
                self.pre.iter().map(|s| s.to_string()).collect(),
            ),
        ];
        if has_fortran && self.pre_fortran != self.pre {
            out.push((
                "pre_fortran".into(),
                self.pre_fortran.iter().map(|s| s.to_string()).collect(),
            ));
        }
        out.extend([
            ("enzyme".into(), enzyme),
            (
                "post".into(),
                self.post.iter().map(|s| s.to_string()).collect(),
            ),
        ]);
        out
    }
}

/// Reports progress of long steps.
pub type Progress<'a> = &'a dyn Fn(&str);

/// Inputs of one pipeline run.
pub struct PipelineInput<'a> {
    /// Resolved tools.
    pub toolchain: &'a Toolchain,
    /// The flags.
    pub pipeline: &'a Pipeline,
    /// Kernels (their sources are compiled once each, in order of first appearance).
    pub kernels: &'a [KernelSpec],
    /// The generated wrapper translation unit.
    pub wrapper: &'a str,
    /// Extra C/C++ flags from the spec.
    pub cflags: &'a [String],
    /// Extra Fortran flags from the spec.
    pub fflags: &'a [String],
    /// Scratch directory for intermediate files.
    pub work: &'a Path,
    /// The library to produce.
    pub output: &'a Path,
}

fn command_line(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

fn run(mut cmd: Command, tool: &str, what: &str) -> Result<String, (i32, String, String)> {
    let line = command_line(&cmd);
    let out = cmd
        .output()
        .map_err(|e| (-1, line.clone(), format!("cannot start {tool}: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err((out.status.code().unwrap_or(-1), line, stderr));
    }
    let _ = what;
    Ok(stderr)
}

fn tool_err(
    tool: &str,
    what: String,
    (status, command, stderr): (i32, String, String),
) -> BuildError {
    BuildError::Tool {
        tool: tool.to_string(),
        what,
        command,
        status,
        stderr,
    }
}

/// Runs the pipeline, writing `input.output`. Returns the warnings the tools printed.
pub fn run_pipeline(
    input: &PipelineInput<'_>,
    progress: Progress<'_>,
) -> Result<Vec<String>, BuildError> {
    let tc = input.toolchain;
    let p = input.pipeline;
    let mut warnings = Vec::new();
    let mut bitcode: Vec<PathBuf> = Vec::new();
    let mut seen: Vec<&Path> = Vec::new();
    let mut languages = Vec::new();
    for k in input.kernels {
        for src in &k.sources {
            if seen.contains(&src.as_path()) {
                continue;
            }
            seen.push(src);
            let lang = Language::from_path(src).unwrap_or(k.language);
            languages.push(lang);
            let bc = input.work.join(format!("src{}.bc", bitcode.len()));
            let (tool, exe) = match lang {
                Language::C => ("clang", &tc.clang),
                Language::Cxx => ("clang++", &tc.clangxx),
                Language::Fortran => ("flang", &tc.flang),
            };
            let mut cmd = Command::new(exe);
            cmd.args(["-c", "-emit-llvm", "-fPIC", "-g0"]);
            cmd.args(if lang == Language::Fortran {
                p.pre_fortran
            } else {
                p.pre
            });
            match lang {
                Language::C => {
                    cmd.arg("-std=gnu11").args(input.cflags);
                }
                Language::Cxx => {
                    cmd.arg("-std=c++17").args(input.cflags);
                }
                Language::Fortran => {
                    cmd.args(input.fflags);
                }
            }
            cmd.arg(src).arg("-o").arg(&bc);
            progress(&format!(
                "compiling {} ({tool}, pipeline {})",
                src.display(),
                p.name
            ));
            let what = format!("compiling {}", src.display());
            let w = run(cmd, tool, &what).map_err(|e| tool_err(tool, what, e))?;
            if !w.trim().is_empty() {
                warnings.push(w);
            }
            bitcode.push(bc);
        }
    }
    // The wrapper is compiled with the same optimisation level: it only forwards pointers.
    let wrapper_c = input.work.join("simgrad_wrapper.c");
    std::fs::write(&wrapper_c, input.wrapper)
        .map_err(|e| BuildError::io("cannot write", &wrapper_c, e))?;
    let wrapper_bc = input.work.join("simgrad_wrapper.bc");
    let mut cmd = Command::new(&tc.clang);
    cmd.args([
        "-c",
        "-emit-llvm",
        "-fPIC",
        "-g0",
        "-std=c11",
        "-O1",
        "-Wall",
        "-Werror",
    ])
    .arg(&wrapper_c)
    .arg("-o")
    .arg(&wrapper_bc);
    progress("compiling the generated wrapper");
    run(cmd, "clang", "compiling the generated wrapper").map_err(|e| {
        tool_err(
            "clang",
            "compiling the generated wrapper (a simgrad bug: please report it)".into(),
            e,
        )
    })?;
    bitcode.push(wrapper_bc);

    let linked = input.work.join("linked.bc");
    let mut cmd = Command::new(&tc.llvm_link);
    cmd.args(&bitcode).arg("-o").arg(&linked);
    progress("linking bitcode (llvm-link)");
    run(cmd, "llvm-link", "linking bitcode")
        .map_err(|e| tool_err("llvm-link", "linking the bitcode modules".into(), e))?;

    let has_fortran = languages.contains(&Language::Fortran);
    let ad = input.work.join("ad.bc");
    let mut cmd = Command::new(&tc.opt);
    cmd.arg(&linked)
        .arg(format!("-load-pass-plugin={}", tc.enzyme_plugin.display()))
        .arg("-passes=enzyme")
        .args(p.enzyme);
    if has_fortran {
        cmd.args(p.enzyme_fortran);
    }
    cmd.arg("-o").arg(&ad);
    progress("differentiating (opt + Enzyme)");
    let line = command_line(&cmd);
    match run(cmd, "opt", "running Enzyme") {
        Ok(w) => {
            if !w.trim().is_empty() {
                warnings.push(w);
            }
        }
        Err((_, _, stderr)) => {
            return Err(crate::enzyme_error::explain(input.kernels, &line, &stderr))
        }
    }

    let optimised = input.work.join("optimised.bc");
    let source_for_link = if let Some(level) = p.post {
        let mut cmd = Command::new(&tc.opt);
        cmd.arg(level).arg(&ad).arg("-o").arg(&optimised);
        progress(&format!("optimising ({})", level));
        run(cmd, "opt", "optimising")
            .map_err(|e| tool_err("opt", "optimising the differentiated module".into(), e))?;
        optimised
    } else {
        ad
    };

    let uses_cxx = languages.contains(&Language::Cxx);
    let linker = if uses_cxx { &tc.clangxx } else { &tc.clang };
    let mut cmd = Command::new(linker);
    cmd.args(["-shared", "-fPIC", "-O2"])
        .arg(&source_for_link)
        .arg("-o")
        .arg(input.output)
        .arg("-lm");
    if has_fortran {
        // Kernels that need flang's runtime (I/O, intrinsics lowered to calls) link it here.
        cmd.arg(format!("-L{}", llvm_lib_dir(tc).display())).args([
            "-Wl,--as-needed",
            "-lFortranRuntime",
            "-lFortranDecimal",
            "-Wl,--no-as-needed",
        ]);
    }
    progress("linking the shared library");
    run(cmd, "clang", "linking")
        .map_err(|e| tool_err("clang", "linking the shared library".into(), e))?;
    Ok(warnings)
}

/// LLVM's `lib` directory (flang's runtime libraries live there), found from `opt`'s real path.
fn llvm_lib_dir(tc: &Toolchain) -> PathBuf {
    std::fs::canonicalize(&tc.opt)
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("lib")))
        .unwrap_or_else(|| PathBuf::from(format!("/usr/lib/llvm-{}/lib", tc.llvm_major)))
}
