//! `simgrad`: build kernel libraries from specs, inspect their manifests, and check their
//! derivatives.

use anyhow::{bail, Context, Result};
use simgrad_build::{build_spec_file, BuildOptions};
use simgrad_core::check::{check_library, CheckOptions};
use simgrad_core::{ArgKind, Library};
use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
simgrad — build, inspect and check Enzyme-differentiated kernel libraries

USAGE:
    simgrad build SPEC [-o DIR] [--pipeline NAME] [--no-verify] [--force] [--quiet]
    simgrad inspect LIB [--json] [--manifest FILE]
    simgrad check LIB [--kernel K]... [--seed S] [--size N]... [--fd-tol X] [--dot-tol X] [--manifest FILE]

COMMANDS:
    build     Compile the kernels of SPEC (a simgrad.toml) through clang/flang + Enzyme into a
              shared library, using the build cache. Progress goes to stderr; the library's path
              is the last line on stdout.
                -o DIR           also copy the library into DIR
                --pipeline NAME  compile pipeline (default: the spec's, else `default`)
                --no-verify      skip the gradient check that runs before a library is published
                                 (by default a library whose derivatives fail it is refused;
                                 the check runs each kernel on random inputs, in this process)
                --force          rebuild even if the cache has it
    inspect   Print a library's kernels and arguments (--json: the manifest as stored).
    check     Run random gradient checks: JVP against central finite differences, VJP against
              JVP by the dot-product test. Prints the worst relative error per kernel and mode;
              exits 1 when any is above tolerance (defaults: f64 1e-6 / 1e-9, f32 2e-2 / 1e-3).
                --size N         value of every named size; repeat for several (default 2, 3, 7)
                --seed S         random seed (default 0)
    --manifest FILE  open a library not built by simgrad with an external manifest file

ENVIRONMENT:
    SIMGRAD_ENZYME_PLUGIN   the LLVMEnzyme-19.so to use
    SIMGRAD_LLVM_DIR        an LLVM 19 installation (its bin/ holds clang, opt, ...)
    SIMGRAD_CACHE_DIR       the cache root (default ~/.cache/simgrad)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            // One clear message, not a backtrace; causes follow on the same line.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("simgrad: error: {msg}");
            ExitCode::from(2)
        }
    }
}

struct Args {
    rest: Vec<String>,
}

impl Args {
    fn flag(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|a| a != name);
        self.rest.len() != before
    }

    fn value(&mut self, names: &[&str]) -> Result<Option<String>> {
        let Some(i) = self.rest.iter().position(|a| names.contains(&a.as_str())) else {
            return Ok(None);
        };
        if i + 1 >= self.rest.len() {
            bail!("`{}` needs a value", self.rest[i]);
        }
        let v = self.rest.remove(i + 1);
        self.rest.remove(i);
        Ok(Some(v))
    }

    fn values(&mut self, name: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        while let Some(v) = self.value(&[name])? {
            out.push(v);
        }
        Ok(out)
    }

    fn positional(mut self, what: &str) -> Result<String> {
        if let Some(bad) = self.rest.iter().find(|a| a.starts_with('-')) {
            bail!("unknown option `{bad}` (see `simgrad --help`)");
        }
        match self.rest.len() {
            1 => Ok(self.rest.remove(0)),
            0 => bail!("missing {what} (see `simgrad --help`)"),
            _ => bail!("unexpected arguments: {}", self.rest[1..].join(" ")),
        }
    }
}

fn open(path: &str, manifest: Option<String>) -> Result<Library> {
    Ok(match manifest {
        Some(m) => Library::open_with_manifest(path, m)?,
        None => Library::open(path)?,
    })
}

fn run(argv: Vec<String>) -> Result<ExitCode> {
    let Some(cmd) = argv.first().cloned() else {
        print!("{HELP}");
        return Ok(ExitCode::from(2));
    };
    let mut args = Args {
        rest: argv[1..].to_vec(),
    };
    match cmd.as_str() {
        "-h" | "--help" | "help" => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        "-V" | "--version" => {
            println!("simgrad {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        "build" => {
            let opts = BuildOptions {
                out_dir: args.value(&["-o", "--out-dir"])?.map(PathBuf::from),
                pipeline: args.value(&["--pipeline"])?,
                // Verification is the default here: it costs milliseconds against a build of
                // seconds (docs/pipeline.md), and a crash in a user kernel ends only this command.
                verify: {
                    let off = args.flag("--no-verify");
                    let _ = args.flag("--verify");
                    !off
                },
                force: args.flag("--force"),
                quiet: args.flag("--quiet"),
                cache_dir: None,
            };
            let spec = args.positional("SPEC")?;
            let out = build_spec_file(spec.as_ref(), &opts)?;
            if let Some(report) = &out.verify_report {
                eprintln!("{report}");
            }
            println!("{}", out.library.display());
            Ok(ExitCode::SUCCESS)
        }
        "inspect" => {
            let json = args.flag("--json");
            let manifest = args.value(&["--manifest"])?;
            let path = args.positional("LIB")?;
            let lib = open(&path, manifest)?;
            if json {
                emit(&format!("{}\n", lib.manifest_json()));
            } else {
                print_manifest(&lib);
            }
            Ok(ExitCode::SUCCESS)
        }
        "check" => {
            let manifest = args.value(&["--manifest"])?;
            let kernels = args.values("--kernel")?;
            let parse_f = |v: Option<String>, what: &str| -> Result<Option<f64>> {
                v.map(|s| {
                    s.parse::<f64>()
                        .with_context(|| format!("{what} `{s}` is not a number"))
                })
                .transpose()
            };
            let seed = args
                .value(&["--seed"])?
                .map(|s| {
                    s.parse::<u64>()
                        .with_context(|| format!("--seed `{s}` is not an integer"))
                })
                .transpose()?;
            let sizes = args
                .values("--size")?
                .into_iter()
                .map(|s| {
                    s.parse::<i64>()
                        .with_context(|| format!("--size `{s}` is not an integer"))
                })
                .collect::<Result<Vec<i64>>>()?;
            let fd = parse_f(args.value(&["--fd-tol"])?, "--fd-tol")?;
            let dot = parse_f(args.value(&["--dot-tol"])?, "--dot-tol")?;
            let path = args.positional("LIB")?;
            let lib = open(&path, manifest)?;
            let opts = CheckOptions {
                seed: seed.unwrap_or(0),
                sizes: if sizes.is_empty() {
                    vec![2, 3, 7]
                } else {
                    sizes
                },
                size: 7,
                fd_tolerance: fd,
                dot_tolerance: dot,
                kernels,
            };
            let results = check_library(&lib, &opts)?;
            let failed = results.iter().filter(|r| !r.passed).count();
            for r in &results {
                println!("{r}");
            }
            println!("{} checks, {} failed", results.len(), failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        other => bail!("unknown command `{other}` (see `simgrad --help`)"),
    }
}

/// Prints to stdout, ending quietly when the reader goes away (`simgrad inspect LIB | head`).
fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn print_manifest(lib: &Library) {
    let mut out = String::new();
    macro_rules! println {
        ($($t:tt)*) => {{ out.push_str(&format!($($t)*)); out.push('\n'); }};
    }
    let m = lib.manifest();
    println!("library   {}", lib.path().display());
    println!("generator {}", m.generator);
    if !m.toolchain.llvm.is_empty() {
        println!("llvm      {}", m.toolchain.llvm);
        println!("enzyme    {}", m.toolchain.enzyme);
    }
    for (k, v) in &m.toolchain.flags {
        if !v.is_empty() {
            println!("flags.{k:<9} {}", v.join(" "));
        }
    }
    for k in &m.kernels {
        let modes: Vec<&str> = k.modes.keys().map(|m| m.name()).collect();
        println!(
            "\nkernel {} (symbol {}, {}, {:?}-order) modes: {}",
            k.name,
            k.symbol,
            k.language,
            k.order,
            modes.join(", ")
        );
        for a in &k.args {
            let kind = match a.kind {
                ArgKind::Array => {
                    let dims: Vec<String> = a.shape.iter().map(|d| d.to_string()).collect();
                    format!("array[{}]", dims.join(", "))
                }
                ArgKind::Size => "size".to_string(),
                ArgKind::Scalar => "scalar".to_string(),
            };
            let intent = format!("{:?}", a.intent).to_lowercase();
            println!(
                "  {:<12} {:<4} {:<24} {:<6} {}",
                a.name,
                a.dtype,
                kind,
                intent,
                if a.differentiable {
                    "differentiable"
                } else {
                    ""
                }
            );
        }
    }
    emit(&out);
}
