//! The Enzyme smoke test: proof that the whole compile pipeline produces correct derivatives.
//!
//! A tiny C kernel, `f(x) = x² sin x`, and an array kernel, `s(x) = Σ xᵢ³`, are compiled with
//! the discovered toolchain exactly the way simgrad compiles user kernels:
//!
//! ```text
//! clang -O2 -emit-llvm  →  llvm-link  →  opt + Enzyme (-passes=enzyme)  →  opt -O2  →  clang -shared
//! ```
//!
//! A small C driver linked against the resulting shared library prints the derivatives from
//! Enzyme's reverse mode (`__enzyme_autodiff`) and forward mode (`__enzyme_fwddiff`), which are
//! compared here with the analytic derivatives `f'(x) = 2x sin x + x² cos x` and `∂s/∂xᵢ = 3xᵢ²`.
//! The test fails (it never skips) when the toolchain or the plugin is missing, or when any
//! derivative is off by more than `1e-12 · max(1, |exact|)`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::toolchain::Toolchain;
use crate::util::{display_cmd, run_capture, workspace_root};

/// The tolerance, relative to `max(1, |exact|)`.
pub const TOLERANCE: f64 = 1e-12;

const KERNEL_C: &str = r#"#include <math.h>

/* The kernels: plain C, nothing Enzyme-specific. */
double f(double x) { return x * x * sin(x); }

double sum_cubes(const double *x, long n) {
    double s = 0.0;
    for (long i = 0; i < n; ++i) s += x[i] * x[i] * x[i];
    return s;
}
"#;

const WRAPPER_C: &str = r#"/* Derivative entry points, resolved by the Enzyme pass. */
extern int enzyme_out, enzyme_dup, enzyme_const;
extern double __enzyme_autodiff(void *, ...);
extern double __enzyme_fwddiff(void *, ...);

double f(double x);
double sum_cubes(const double *x, long n);

/* Reverse mode: the active scalar argument's adjoint comes back as the return value. */
double f_rev(double x) { return __enzyme_autodiff((void *)f, enzyme_out, x); }

/* Forward mode: the tangent of the result for the input tangent 1. */
double f_fwd(double x) { return __enzyme_fwddiff((void *)f, enzyme_dup, x, 1.0); }

/* Reverse mode for an array argument: adds the gradient into dx. */
void sum_cubes_grad(const double *x, double *dx, long n) {
    __enzyme_autodiff((void *)sum_cubes, enzyme_dup, x, dx, enzyme_const, n);
}
"#;

const DRIVER_C: &str = r#"#include <stdio.h>

double f(double x);
double f_rev(double x);
double f_fwd(double x);
void sum_cubes_grad(const double *x, double *dx, long n);

int main(void) {
    const double xs[] = {-2.5, -1.0, 0.0, 0.5, 1.0, 2.0, 3.141592653589793};
    for (unsigned i = 0; i < sizeof xs / sizeof xs[0]; ++i)
        printf("f %.17g %.17g %.17g %.17g\n", xs[i], f(xs[i]), f_rev(xs[i]), f_fwd(xs[i]));
    double v[4] = {0.5, -1.0, 2.0, 3.0};
    double g[4] = {0.0, 0.0, 0.0, 0.0};
    sum_cubes_grad(v, g, 4);
    for (int i = 0; i < 4; ++i) printf("g %.17g %.17g\n", v[i], g[i]);
    return 0;
}
"#;

/// One compared value.
struct Row {
    what: String,
    x: f64,
    enzyme: f64,
    exact: f64,
}

impl Row {
    fn err(&self) -> f64 {
        (self.enzyme - self.exact).abs()
    }
    fn ok(&self) -> bool {
        self.err() <= TOLERANCE * self.exact.abs().max(1.0)
    }
}

/// Runs the smoke test, printing each pipeline command and a table of results. Fails when the
/// toolchain is missing or any derivative is outside the tolerance.
pub fn run() -> Result<()> {
    let tc = Toolchain::discover().context("the Enzyme smoke test needs the full toolchain")?;
    println!(
        "    toolchain: LLVM {} ({}), Enzyme plugin {} (Enzyme {})",
        tc.llvm_version,
        tc.opt.display(),
        tc.enzyme_plugin.display(),
        tc.enzyme_version.as_deref().unwrap_or("version unknown")
    );
    let dir = artifacts_dir();
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot clean {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let p = |name: &str| dir.join(name);
    fs::write(p("kernel.c"), KERNEL_C)?;
    fs::write(p("wrapper.c"), WRAPPER_C)?;
    fs::write(p("driver.c"), DRIVER_C)?;

    let lib = p("libsmoke.so");
    let mut plugin_arg = std::ffi::OsString::from("-load-pass-plugin=");
    plugin_arg.push(&tc.enzyme_plugin);
    let steps: Vec<(&str, Command)> = vec![
        ("compile kernel to bitcode", {
            let mut c = Command::new(&tc.clang);
            c.args(["-O2", "-c", "-emit-llvm"])
                .arg(p("kernel.c"))
                .arg("-o")
                .arg(p("kernel.bc"));
            c
        }),
        ("compile wrappers to bitcode", {
            let mut c = Command::new(&tc.clang);
            c.args(["-O2", "-c", "-emit-llvm"])
                .arg(p("wrapper.c"))
                .arg("-o")
                .arg(p("wrapper.bc"));
            c
        }),
        ("link bitcode", {
            let mut c = Command::new(&tc.llvm_link);
            c.arg(p("kernel.bc"))
                .arg(p("wrapper.bc"))
                .arg("-o")
                .arg(p("all.bc"));
            c
        }),
        ("differentiate (Enzyme)", {
            let mut c = Command::new(&tc.opt);
            c.arg(p("all.bc"))
                .arg(&plugin_arg)
                .arg("-passes=enzyme")
                .arg("-o")
                .arg(p("all.ad.bc"));
            c
        }),
        ("optimise", {
            let mut c = Command::new(&tc.opt);
            c.arg("-O2")
                .arg(p("all.ad.bc"))
                .arg("-o")
                .arg(p("all.opt.bc"));
            c
        }),
        ("shared library", {
            let mut c = Command::new(&tc.clang);
            c.args(["-shared", "-fPIC"])
                .arg(p("all.opt.bc"))
                .arg("-lm")
                .arg("-o")
                .arg(&lib);
            c
        }),
        ("C driver linked against it", {
            let mut c = Command::new(&tc.clang);
            c.arg("-O2")
                .arg(p("driver.c"))
                .arg(&lib)
                .arg(format!("-Wl,-rpath,{}", dir.display()))
                .arg("-lm")
                .arg("-o")
                .arg(p("driver"));
            c
        }),
    ];
    for (what, mut cmd) in steps {
        println!("    {what:<28} $ {}", shorten(&display_cmd(&cmd), &dir));
        run_capture(&mut cmd).with_context(|| format!("smoke step `{what}` failed"))?;
    }
    let out = run_capture(&mut Command::new(p("driver")))?;
    let rows = parse_driver(&out)?;
    print_table(&rows);
    let bad: Vec<&Row> = rows.iter().filter(|r| !r.ok()).collect();
    if !bad.is_empty() {
        bail!(
            "{} of {} Enzyme derivatives differ from the analytic ones by more than {TOLERANCE:e} \
             (artifacts kept in {})",
            bad.len(),
            rows.len(),
            dir.display()
        );
    }
    let derivatives = rows.iter().filter(|r| !r.what.contains("primal")).count();
    println!(
        "    all {} values ({derivatives} Enzyme derivatives, {} primal) match the analytic ones \
         within {TOLERANCE:e}",
        rows.len(),
        rows.len() - derivatives
    );
    Ok(())
}

/// Replaces the smoke directory in a command line with `$SMOKE` for readability.
fn shorten(cmd: &str, dir: &Path) -> String {
    cmd.replace(&dir.display().to_string(), "$SMOKE")
}

fn parse_driver(out: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let nums: Vec<f64> = fields[1..]
            .iter()
            .map(|s| s.parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("bad driver output line {line:?}"))?;
        match (fields[0], nums.as_slice()) {
            ("f", [x, fx, rev, fwd]) => {
                let exact = 2.0 * x * x.sin() + x * x * x.cos();
                let primal = x * x * x.sin();
                rows.push(Row {
                    what: "f(x) = x² sin x  (primal)".into(),
                    x: *x,
                    enzyme: *fx,
                    exact: primal,
                });
                rows.push(Row {
                    what: "f'(x)  reverse mode".into(),
                    x: *x,
                    enzyme: *rev,
                    exact,
                });
                rows.push(Row {
                    what: "f'(x)  forward mode".into(),
                    x: *x,
                    enzyme: *fwd,
                    exact,
                });
            }
            ("g", [x, g]) => rows.push(Row {
                what: "∂/∂xᵢ Σ xᵢ³  reverse mode".into(),
                x: *x,
                enzyme: *g,
                exact: 3.0 * x * x,
            }),
            _ => bail!("unexpected driver output line {line:?}"),
        }
    }
    if rows.is_empty() {
        bail!("the driver printed nothing");
    }
    Ok(rows)
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "    {:<28} {:>10} {:>24} {:>24} {:>10}  ",
        "quantity", "x", "Enzyme", "analytic", "|error|"
    );
    println!("    {}", "-".repeat(104));
    for r in rows {
        println!(
            "    {:<28} {:>10.6} {:>24.16e} {:>24.16e} {:>10.1e}  {}",
            r.what,
            r.x,
            r.enzyme,
            r.exact,
            r.err(),
            if r.ok() { "ok" } else { "WRONG" }
        );
    }
    println!();
}

/// Where the smoke test writes its files (kept for inspection).
pub fn artifacts_dir() -> PathBuf {
    workspace_root().join("target").join("xtask").join("smoke")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_driver_output() {
        let out = "f 2 3.637189707302727 1.9726023505 1.9726023505\ng 0.5 0.75\n";
        let rows = parse_driver(out).unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows[0].ok(), "primal");
        assert!(rows[3].ok(), "array gradient");
        assert!(!rows[1].ok(), "truncated derivative must be flagged");
        assert!(parse_driver("h 1 2\n").is_err());
        assert!(parse_driver("").is_err());
    }
}
