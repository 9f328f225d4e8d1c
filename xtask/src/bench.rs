//! `cargo xtask bench [--quick] [--only NAME...]`: simgrad's speed, measured against the
//! alternatives in the same run, written to `docs/benchmarks.md` and `target/bench/results.json`.
//!
//! The benchmarks (the rows of the document):
//!
//! | row | what | run by |
//! | --- | --- | --- |
//! | 1 | C call through `simgrad_kernel_call` vs the raw trampoline, n = 1 … 10^6 | Criterion: `crates/simgrad-capi/benches/call_overhead.rs` |
//! | 2, 3 | Python call (NumPy) and PyTorch forward+backward vs raw ctypes | `bench/bench_python.py call torch` |
//! | 4 | LLTM forward+backward vs pure PyTorch and the ATen extension | `examples-cpp/lltm/bench.py` (when present) |
//! | 5, 6 | VJP / primal and JVP / primal of the Fortran diffusion solver | `bench/bench_python.py solver` |
//! | 7 | one VJP vs central finite differences | `bench/bench_python.py fd` |
//! | 8, 9 | warm cache hit vs `torch.utils.cpp_extension.load`; cold build vs plain clang | `bench/bench_python.py cache cold` |
//!
//! Every Python measurement is interleaved with its baseline (rounds that time each side once, in
//! a rotating order); Criterion runs its variants back to back, which the document says.
//! Benchmarks are not tests: a missed target is reported plainly, never an error. A benchmark that
//! cannot run (a missing tool, a failing script) becomes a row saying so, and the others go on.
//!
//! `--quick` runs few repetitions (a smoke run of the machinery, not a measurement; the document
//! says so at the top). `--only NAME...` (`criterion`, `call`, `torch`, `lltm`, `solver`, `fd`,
//! `cache`, `cold`) runs a subset and writes only `target/bench/results.json`, leaving
//! `docs/benchmarks.md` alone.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::util::{self, cargo, run_capture, run_inherit, workspace_root};

/// The Python benchmarks of `bench/bench_python.py`, in document order.
const PYTHON_BENCHES: &[&str] = &["call", "torch", "solver", "fd", "cache", "cold"];
/// Every benchmark name `--only` accepts.
const ALL: &[&str] = &[
    "criterion",
    "call",
    "torch",
    "lltm",
    "solver",
    "fd",
    "cache",
    "cold",
];

/// Options of one run.
struct Opts {
    quick: bool,
    only: Option<Vec<String>>,
}

impl Opts {
    fn wants(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == name))
    }
}

/// `cargo xtask bench` with its arguments.
pub fn run(args: &[&str]) -> Result<()> {
    let mut opts = Opts {
        quick: false,
        only: None,
    };
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "--quick" => opts.quick = true,
            "--only" => {
                let rest: Vec<String> = it.by_ref().map(|s| s.to_string()).collect();
                if rest.is_empty() {
                    bail!("--only needs benchmark names: {}", ALL.join(", "));
                }
                if let Some(bad) = rest.iter().find(|r| !ALL.contains(&r.as_str())) {
                    bail!("unknown benchmark `{bad}`; choose from {}", ALL.join(", "));
                }
                opts.only = Some(rest);
            }
            other => bail!(
                "unknown argument `{other}` (usage: cargo xtask bench [--quick] [--only NAME...])"
            ),
        }
    }
    let root = workspace_root();
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir)?;
    let started = Instant::now();
    let machine = machine_info(&root);
    println!(
        "machine: {} ({} cores), load average {}",
        machine["cpu"].as_str().unwrap_or("?"),
        machine["cores"],
        machine["load_average_at_start"].as_str().unwrap_or("?")
    );
    if opts.quick {
        println!("--quick: few repetitions; a smoke run, not a measurement");
    }

    util::section("libsimgrad (release)", || {
        run_inherit(Command::new(cargo()).current_dir(&root).args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "simgrad-capi",
        ]))
    })?;
    let libsimgrad = root.join("target/release/libsimgrad.so");

    let mut rows: Vec<Value> = Vec::new();
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    let mut python_meta = Value::Null;

    if opts.wants("criterion") {
        match util::section("row 1: C call overhead (Criterion)", || {
            criterion(&root, opts.quick)
        }) {
            Ok(r) => rows.extend(r),
            Err(e) => {
                errors.insert("criterion".into(), format!("{e:#}"));
            }
        }
    }

    let py_benches: Vec<&str> = PYTHON_BENCHES
        .iter()
        .copied()
        .filter(|b| opts.wants(b))
        .collect();
    if !py_benches.is_empty() {
        let json_path = out_dir.join("python.json");
        let _ = fs::remove_file(&json_path);
        let res = util::section("rows 2, 3, 5-9: bench/bench_python.py", || {
            let mut cmd = python(&root, &libsimgrad);
            cmd.arg("bench/bench_python.py");
            if opts.quick {
                cmd.arg("--quick");
            }
            cmd.arg("--json").arg(&json_path).args(&py_benches);
            run_inherit(&mut cmd)?;
            read_json(&json_path)
        });
        match res {
            Ok(doc) => {
                if let Some(r) = doc["rows"].as_array() {
                    rows.extend(r.iter().cloned());
                }
                if let Some(errs) = doc["errors"].as_object() {
                    for (k, v) in errs {
                        errors.insert(k.clone(), v.as_str().unwrap_or("?").to_string());
                    }
                }
                python_meta = json!({
                    "python": doc["python"], "numpy": doc["numpy"], "torch": doc["torch"],
                    "libsimgrad": doc["libsimgrad"], "simgrad_version": doc["simgrad_version"],
                });
            }
            Err(e) => {
                for b in &py_benches {
                    errors.insert(b.to_string(), format!("{e:#}"));
                }
            }
        }
    }

    if opts.wants("lltm") {
        let script = root.join("examples-cpp/lltm/bench.py");
        if script.is_file() {
            match util::section("row 4: LLTM (examples-cpp/lltm/bench.py)", || {
                lltm(&root, &libsimgrad, &script, &out_dir, opts.quick)
            }) {
                Ok(r) => rows.extend(r),
                Err(e) => {
                    errors.insert("lltm".into(), format!("{e:#}"));
                }
            }
        } else {
            println!("row 4: examples-cpp/lltm/bench.py is not there: LLTM not available");
            errors.insert(
                "lltm".into(),
                "not available: examples-cpp/lltm/bench.py is not in this checkout".into(),
            );
        }
    }

    for r in &mut rows {
        finish_row(r);
    }
    rows.sort_by_key(|r| row_number(r["id"].as_str().unwrap_or("")));
    let elapsed = started.elapsed();
    let results = json!({
        "quick": opts.quick,
        "only": opts.only,
        "machine": machine,
        "python": python_meta,
        "seconds": elapsed.as_secs_f64(),
        "rows": rows,
        "errors": errors,
    });
    let results_path = out_dir.join("results.json");
    fs::write(
        &results_path,
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    println!("\n{}", table(&rows, &errors));
    println!("wrote {}", results_path.display());
    if opts.only.is_none() {
        let doc = render(&results);
        let path = root.join("docs/benchmarks.md");
        util::write_if_changed(&path, doc.as_bytes())?;
        println!("wrote {}", path.display());
    } else {
        println!("--only: docs/benchmarks.md left as it was");
    }
    println!("bench: done in {}", util::fmt_duration(elapsed));
    Ok(())
}

/// The venv's Python, with the checkout's `simgrad` package and the release libsimgrad.
fn python(root: &Path, libsimgrad: &Path) -> Command {
    let mut cmd = Command::new(crate::setup::venv_python());
    let pkg = root.join("crates/simgrad-python");
    let pythonpath = match std::env::var_os("PYTHONPATH") {
        Some(p) if !p.is_empty() => {
            let mut v = pkg.into_os_string();
            v.push(":");
            v.push(p);
            v
        }
        _ => pkg.into_os_string(),
    };
    cmd.current_dir(root)
        .env("SIMGRAD_LIBRARY", libsimgrad)
        .env("PYTHONPATH", pythonpath)
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

fn read_json(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Statistics

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = q * (sorted.len() - 1) as f64;
    let lo = i.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo as f64)
}

/// The summary `bench_python.py` writes: median, quartiles, extremes, count, samples.
fn stats(xs: &[f64]) -> Value {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    json!({
        "median": quantile(&s, 0.5),
        "p25": quantile(&s, 0.25),
        "p75": quantile(&s, 0.75),
        "min": s.first().copied().unwrap_or(f64::NAN),
        "max": s.last().copied().unwrap_or(f64::NAN),
        "n": s.len(),
        "samples": xs,
    })
}

/// The leading number of a row id (`"5 (n=1e3)"` → 5), for ordering.
fn row_number(id: &str) -> u32 {
    id.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(99)
}

/// Adds `met` (true / false / null) and `ratio_spread` (the interval shown next to the ratio).
fn finish_row(r: &mut Value) {
    let ratio = r["ratio"].as_f64().unwrap_or(f64::NAN);
    let met = match r["target"]["kind"].as_str() {
        Some("ratio") => r["target"]["max"].as_f64().map(|m| ratio <= m),
        Some("candidate_seconds") => r["target"]["max"]
            .as_f64()
            .zip(r["cand"]["median"].as_f64())
            .map(|(m, c)| c <= m),
        _ => None,
    };
    r["met"] = json!(met);
    if r.get("ratio_spread").is_none() {
        let rr = &r["ratio_rounds"];
        r["ratio_spread"] = json!({
            "lo": rr["p25"], "hi": rr["p75"],
            "what": "25th-75th percentile of the per-round ratios",
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Row 1: Criterion

const CRITERION_SIZES: &[(u64, &str, Option<f64>)] = &[
    (1, "1", None),
    (100, "100", Some(1.2)),
    (10_000, "1e4", None),
    (1_000_000, "1e6", Some(1.01)),
];

/// Runs the Criterion bench of simgrad-capi and turns its medians into rows.
fn criterion(root: &Path, quick: bool) -> Result<Vec<Value>> {
    let start = SystemTime::now();
    // The bench reads its measurement time from SIMGRAD_BENCH_SECONDS (Criterion prefers group
    // settings over its own flags); `--noplot` skips the plots.
    let secs = if quick { "0.2" } else { "1.0" };
    println!("    cargo bench -p simgrad-capi --bench call_overhead -- --noplot (SIMGRAD_BENCH_SECONDS={secs})");
    let out = run_capture(
        Command::new(cargo())
            .current_dir(root)
            .env("SIMGRAD_BENCH_SECONDS", secs)
            .args([
                "bench",
                "-p",
                "simgrad-capi",
                "--bench",
                "call_overhead",
                "--",
                "--noplot",
            ]),
    )?;
    for line in out.lines().filter(|l| l.contains("time:")) {
        println!("    {}", line.trim());
    }
    let base = root.join("target/criterion/seed_primal");
    let read = |variant: &str, n: u64| -> Result<(Value, Vec<f64>)> {
        let dir = base.join(variant).join(n.to_string()).join("new");
        let est_path = dir.join("estimates.json");
        let fresh = fs::metadata(&est_path)
            .and_then(|m| m.modified())
            .map(|t| t >= start)
            .unwrap_or(false);
        if !fresh {
            bail!("{} was not written by this run", est_path.display());
        }
        let est = read_json(&est_path)?;
        let sample = read_json(&dir.join("sample.json"))?;
        let iters = sample["iters"].as_array().cloned().unwrap_or_default();
        let times = sample["times"].as_array().cloned().unwrap_or_default();
        let per_iter: Vec<f64> = iters
            .iter()
            .zip(&times)
            .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()? * 1e-9))
            .collect();
        Ok((est["median"].clone(), per_iter))
    };
    let mut rows = Vec::new();
    for &(n, label, target) in CRITERION_SIZES {
        let (raw_med, raw_s) = read("raw_trampoline", n)?;
        for (variant, id, what) in [
            (
                "simgrad_kernel_call",
                format!("1 (n={label})"),
                format!("C call through `simgrad_kernel_call`, seed kernel, n = {label}"),
            ),
            (
                "rust_kernel_call",
                format!("1r (n={label})"),
                format!("Rust call through `simgrad_core::Kernel::call`, seed kernel, n = {label}"),
            ),
        ] {
            let (med, samples) = read(variant, n)?;
            let c = med["point_estimate"].as_f64().unwrap_or(f64::NAN) * 1e-9;
            let b = raw_med["point_estimate"].as_f64().unwrap_or(f64::NAN) * 1e-9;
            let ci = |m: &Value, k: &str| {
                m["confidence_interval"][k].as_f64().unwrap_or(f64::NAN) * 1e-9
            };
            let mut cs = stats(&samples);
            cs["median"] = json!(c);
            cs["median_ci95"] = json!([ci(&med, "lower_bound"), ci(&med, "upper_bound")]);
            let mut bs = stats(&raw_s);
            bs["median"] = json!(b);
            bs["median_ci95"] = json!([ci(&raw_med, "lower_bound"), ci(&raw_med, "upper_bound")]);
            let is_c = variant == "simgrad_kernel_call";
            rows.push(json!({
                "id": id,
                "what": what,
                "candidate": format!("`{variant}`"),
                "baseline": "the kernel's `simgrad_k_seed_n_primal` trampoline, called directly",
                "unit": "s",
                "cand": cs,
                "base": bs,
                "ratio": c / b,
                "ratio_spread": {
                    "lo": ci(&med, "lower_bound") / ci(&raw_med, "upper_bound"),
                    "hi": ci(&med, "upper_bound") / ci(&raw_med, "lower_bound"),
                    "what": "from the 95% confidence intervals of the two medians",
                },
                "target": if is_c { target.map(|t| json!({"kind": "ratio", "max": t})) } else { None },
                "method": "Criterion (30 samples over 1 s after 0.3 s warm-up, 0.2 s in --quick); variants run back to back, not interleaved",
                "notes": "",
                "extra": {"criterion_dir": format!("target/criterion/seed_primal/{variant}/{n}")},
                "interleaved": false,
            }));
        }
    }
    // The fixed cost of a checked call: the difference at n = 1, where the kernel does nothing.
    let fixed = |prefix: &str| {
        rows.iter()
            .find(|r| {
                r["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(prefix) && id.ends_with("(n=1)"))
            })
            .map(|r| f(&r["cand"]["median"]) - f(&r["base"]["median"]))
    };
    let (c_fixed, rust_fixed) = (fixed("1 "), fixed("1r "));
    for r in &mut rows {
        let id = r["id"].as_str().unwrap_or("").to_string();
        let is_c = id.starts_with("1 ");
        let fixed = if is_c { c_fixed } else { rust_fixed };
        let kernel = f(&r["base"]["median"]);
        let mut note = match fixed {
            Some(x) => format!(
                "fixed cost per call ≈ {} (the n = 1 difference) against a kernel of {} here",
                fmt_s(x),
                fmt_s(kernel)
            ),
            None => String::new(),
        };
        if is_c {
            note += "; validation of dtype, shape, sizes and aliasing, descriptor marshalling, the FFI boundary";
        } else {
            note += "; information: the Rust API under the C ABI";
        }
        if id.ends_with("(n=1e6)") {
            note += "; memory-bound kernel, the difference is within run-to-run noise";
        }
        r["notes"] = json!(note);
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Row 4: LLTM

/// Runs examples-cpp/lltm/bench.py and turns its forward+backward results into rows.
fn lltm(
    root: &Path,
    libsimgrad: &Path,
    script: &Path,
    out_dir: &Path,
    quick: bool,
) -> Result<Vec<Value>> {
    let json_path = out_dir.join("lltm.json");
    let _ = fs::remove_file(&json_path);
    let mut cmd = python(root, libsimgrad);
    cmd.arg(script).arg("--json").arg(&json_path);
    // One torch thread, as in row 3: the simgrad kernel is serial, and a torch thread pool on a
    // machine busy with other work waits on the scheduler (2 threads on a loaded 2-core machine
    // measured ~60 ms per LLTM step instead of ~0.3 ms), which made the ratio meaningless.
    // Full mode: the script's 31 interleaved repetitions, 20 calls each (not its default 50), so
    // that the whole bench stays within its time budget on a small, busy machine.
    cmd.args(["--threads", "1"]);
    cmd.args(if quick {
        ["--reps", "5", "--inner", "10", "--warmup", "5"]
    } else {
        ["--reps", "31", "--inner", "20", "--warmup", "20"]
    });
    run_inherit(&mut cmd)?;
    let doc = read_json(&json_path)?;
    let problem = format!(
        "batch {}, {} features, state {}, {}, CPU, {} torch thread{}",
        doc["batch"],
        doc["features"],
        doc["state"],
        doc["dtype"].as_str().unwrap_or("?"),
        doc["torch_threads"],
        if doc["torch_threads"].as_u64() == Some(1) {
            ""
        } else {
            "s"
        }
    );
    let method = format!(
        "interleaved (rotating order), {} reps x {} calls; examples-cpp/lltm/bench.py",
        doc["reps"], doc["inner"]
    );
    let mut rows = Vec::new();
    // Forward+backward carries the target; forward alone is reported beside it (ids 4f, 4fb).
    for (phase, suffix, candidate) in [
        (
            "forward+backward",
            "",
            "simgrad (Enzyme VJP of examples-cpp/lltm/lltm.cpp)",
        ),
        (
            "forward",
            "f",
            "simgrad (primal of examples-cpp/lltm/lltm.cpp)",
        ),
    ] {
        let data = &doc["results"][phase];
        let samples = |name: &str| -> Vec<f64> {
            data[name]["samples_us"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| Some(v.as_f64()? * 1e-6)).collect())
                .unwrap_or_default()
        };
        let enzyme = samples("enzyme");
        if enzyme.is_empty() {
            bail!("{} has no {phase} samples", json_path.display());
        }
        for (other, id, label, target) in [
            ("python", "4", "pure-PyTorch LLTM (autograd)", Some(1.0)),
            (
                "aten",
                "4b",
                "hand-written ATen C++ extension (PyTorch tutorial)",
                None,
            ),
        ] {
            let base = samples(other);
            if base.len() != enzyme.len() {
                continue;
            }
            let per_round: Vec<f64> = enzyme.iter().zip(&base).map(|(c, b)| c / b).collect();
            let cs = stats(&enzyme);
            let bs = stats(&base);
            let ratio = cs["median"].as_f64().unwrap_or(f64::NAN)
                / bs["median"].as_f64().unwrap_or(f64::NAN);
            let id = match (id, suffix) {
                ("4", "f") => "4f".to_string(),
                ("4b", "f") => "4fb".to_string(),
                (id, _) => id.to_string(),
            };
            rows.push(json!({
                "id": id,
                "what": format!("LLTM {phase} ({problem})"),
                "candidate": candidate,
                "baseline": label,
                "unit": "s",
                "cand": cs,
                "base": bs,
                "ratio": ratio,
                "ratio_rounds": stats(&per_round),
                "target": if suffix.is_empty() { target.map(|t| json!({"kind": "ratio", "max": t})) } else { None },
                "method": method,
                "notes": "one torch thread on both sides (the simgrad kernel is serial)",
                "extra": {"torch": doc["torch"], "kernel_library": doc["kernel_library"]},
                "interleaved": true,
            }));
        }
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// The machine

fn machine_info(root: &Path) -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let logical = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let available = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_kib: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let os_release = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let os = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let loadavg = fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let git = |args: &[&str]| {
        run_capture(Command::new("git").current_dir(root).args(args))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    json!({
        "cpu": cpu,
        "cores": available,
        "logical_cpus": logical,
        "memory_gib": mem_kib as f64 / 1024.0 / 1024.0,
        "os": format!("{os}, Linux {kernel}"),
        "arch": std::env::consts::ARCH,
        "rustc": util::version_line("rustc", "--version").unwrap_or_default(),
        "load_average_at_start": loadavg,
        "date": util::utc_now_rfc3339(),
        "commit": commit,
        "uncommitted_changes": dirty,
    })
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// A duration in seconds for humans: `517 ns`, `23.1 µs`, `30.6 ms`, `4.24 s`.
fn fmt_s(s: f64) -> String {
    if !s.is_finite() {
        return "?".into();
    }
    let (v, unit) = if s < 1e-6 {
        (s * 1e9, "ns")
    } else if s < 1e-3 {
        (s * 1e6, "µs")
    } else if s < 1.0 {
        (s * 1e3, "ms")
    } else {
        (s, "s")
    };
    format!("{} {unit}", sig3(v))
}

/// Three significant digits, no exponent (for values from 1 to 999.x).
fn sig3(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() {
        "?".into()
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.4}×")
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// `23.1 µs (21.0–25.2)`: median and 25th–75th percentile.
fn fmt_side(s: &Value) -> String {
    format!(
        "{} ({}–{})",
        fmt_s(f(&s["median"])),
        fmt_s(f(&s["p25"])),
        fmt_s(f(&s["p75"]))
    )
}

fn fmt_target(t: &Value) -> String {
    match t["kind"].as_str() {
        Some("ratio") => format!("≤ {}×", f(&t["max"])),
        Some("candidate_seconds") => format!("≤ {}", fmt_s(f(&t["max"]))),
        _ => "—".into(),
    }
}

fn fmt_met(m: &Value) -> &'static str {
    match m.as_bool() {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "—",
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The rows of benchmarks that did not produce any.
fn failed_rows(errors: &BTreeMap<String, String>) -> Vec<(String, String, String)> {
    let what = |name: &str| match name {
        "criterion" => ("1", "C call overhead (Criterion)"),
        "call" => ("2", "Python call, 100-element kernel"),
        "torch" => ("3", "PyTorch forward+backward"),
        "lltm" => ("4", "LLTM forward+backward"),
        "solver" => ("5, 6", "Fortran solver, VJP and JVP / primal"),
        "fd" => ("7", "VJP vs finite differences"),
        "cache" => ("8", "warm build-cache hit"),
        "cold" => ("9", "cold build"),
        _ => ("?", "?"),
    };
    errors
        .iter()
        .map(|(k, v)| {
            let (id, w) = what(k);
            (id.to_string(), w.to_string(), v.clone())
        })
        .collect()
}

fn table(rows: &[Value], errors: &BTreeMap<String, String>) -> String {
    let mut t = String::from(
        "| # | what | candidate | baseline | candidate time | baseline time | ratio (spread) | target | met? | notes |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let sp = &r["ratio_spread"];
        t += &format!(
            "| {} | {} | {} | {} | {} | {} | {} ({}–{}) | {} | {} | {} |\n",
            cell(r["id"].as_str().unwrap_or("")),
            cell(r["what"].as_str().unwrap_or("")),
            cell(r["candidate"].as_str().unwrap_or("")),
            cell(r["baseline"].as_str().unwrap_or("")),
            fmt_side(&r["cand"]),
            fmt_side(&r["base"]),
            fmt_ratio(f(&r["ratio"])),
            fmt_ratio(f(&sp["lo"])).trim_end_matches('×'),
            fmt_ratio(f(&sp["hi"])),
            fmt_target(&r["target"]),
            fmt_met(&r["met"]),
            cell(r["notes"].as_str().unwrap_or("")),
        );
    }
    for (id, what, err) in failed_rows(errors) {
        let first = err.lines().next().unwrap_or("");
        t += &format!(
            "| {id} | {what} | — | — | — | — | — | — | — | {} |\n",
            cell(&if first.starts_with("not available") {
                first.to_string()
            } else {
                format!("did not run: {first}")
            })
        );
    }
    t
}

fn render(res: &Value) -> String {
    let m = &res["machine"];
    let rows = res["rows"].as_array().cloned().unwrap_or_default();
    let errors: BTreeMap<String, String> = res["errors"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let quick = res["quick"].as_bool().unwrap_or(false);
    let mut d = String::new();
    d += "# Benchmarks: simgrad against the alternatives\n\n";
    d += "<!-- Generated by `cargo xtask bench` (xtask/src/bench.rs); do not edit by hand. -->\n\n";
    if quick {
        d += "> **Quick run** (`--quick`): few repetitions, a smoke run of the machinery on a possibly busy \
              machine. These numbers are not a measurement; run `cargo xtask bench` on a quiet machine.\n\n";
    }
    d +=
        "Every measurement is paired with its baseline in the same run. Benchmarks are not tests: \
          nothing fails on a slow machine, and a missed target is reported here as missed.\n\n";
    d += "## Machine\n\n";
    d += &format!(
        "| | |\n| --- | --- |\n\
         | CPU | {} |\n| cores | {} available ({} logical CPUs) |\n| memory | {:.1} GiB |\n\
         | OS | {} ({}) |\n| load average at start | {} |\n| date | {} |\n| commit | `{}`{} |\n\
         | Rust | {} |\n| Python | {} (NumPy {}, PyTorch {}) |\n| libsimgrad | release build, {} |\n| run time | {} |\n\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["logical_cpus"],
        f(&m["memory_gib"]),
        m["os"].as_str().unwrap_or("?"),
        m["arch"].as_str().unwrap_or("?"),
        m["load_average_at_start"].as_str().unwrap_or("?"),
        m["date"].as_str().unwrap_or("?"),
        m["commit"].as_str().unwrap_or("?"),
        if m["uncommitted_changes"].as_bool() == Some(true) {
            " with uncommitted changes"
        } else {
            ""
        },
        m["rustc"].as_str().unwrap_or("?"),
        res["python"]["python"].as_str().unwrap_or("?"),
        res["python"]["numpy"].as_str().unwrap_or("?"),
        res["python"]["torch"].as_str().unwrap_or("?"),
        res["python"]["simgrad_version"].as_str().unwrap_or("?"),
        util::fmt_duration(std::time::Duration::from_secs_f64(f(&res["seconds"]).max(0.0))),
    );
    d += "## Results\n\n";
    d += "Times are medians with the 25th–75th percentile in parentheses. The ratio is candidate / baseline \
          (of the medians; below 1 the candidate is faster); its spread is the 25th–75th percentile of the \
          per-round ratios, or for row 1 the range allowed by the 95% confidence intervals of the two medians.\n\n";
    d += &table(&rows, &errors);
    d += "\n";

    let missed: Vec<&Value> = rows
        .iter()
        .filter(|r| r["met"].as_bool() == Some(false))
        .collect();
    let met = rows
        .iter()
        .filter(|r| r["met"].as_bool() == Some(true))
        .count();
    d += "## Targets\n\n";
    d += &format!(
        "{met} target(s) met, {} missed, {} benchmark(s) without a result.\n\n",
        missed.len(),
        errors.len()
    );
    for r in &missed {
        d += &format!(
            "* **Missed: row {}** — {}: {} is {} the baseline ({}); the target is {}.{}\n",
            r["id"].as_str().unwrap_or(""),
            r["what"].as_str().unwrap_or(""),
            r["candidate"].as_str().unwrap_or(""),
            fmt_ratio(f(&r["ratio"])),
            r["baseline"].as_str().unwrap_or(""),
            match r["target"]["kind"].as_str() {
                Some("candidate_seconds") => format!(
                    "{} (measured {})",
                    fmt_target(&r["target"]),
                    fmt_s(f(&r["cand"]["median"]))
                ),
                _ => fmt_target(&r["target"]),
            },
            match r["notes"].as_str() {
                Some(n) if !n.is_empty() => format!(" Known cause / context: {n}."),
                _ => String::new(),
            }
        );
    }
    for (id, what, err) in failed_rows(&errors) {
        d += &format!("* **No result: row {id}** — {what}: {}\n", cell(&err));
    }
    d += "\n## How each row is measured\n\n";
    // Rows measured the same way share one line.
    let mut lines: Vec<(Vec<String>, String)> = Vec::new();
    for r in &rows {
        let text = format!(
            "{}.{}",
            r["method"].as_str().unwrap_or(""),
            extra_text(&r["extra"])
        );
        let id = r["id"].as_str().unwrap_or("").to_string();
        match lines.iter_mut().find(|(_, t)| *t == text) {
            Some((ids, _)) => ids.push(id),
            None => lines.push((vec![id], text)),
        }
    }
    for (ids, text) in lines {
        d += &format!("* **{}**: {text}\n", ids.join(", "));
    }
    d += "\n";
    d += METHOD;
    d
}

/// The interesting `extra` fields of a row, as a sentence.
fn extra_text(e: &Value) -> String {
    let Some(o) = e.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(t) = o.get("tape_mib_estimate").and_then(Value::as_f64) {
        parts.push(format!("Enzyme tape estimate {t:.0} MiB"));
    }
    if let Some(err) = o.get("max_rel_error_fd_vs_vjp").and_then(Value::as_f64) {
        parts.push(format!("max relative difference FD vs VJP {err:.1e}"));
    }
    for (k, label) in [
        ("import_simgrad_s", "import simgrad"),
        ("import_torch_s", "import torch + cpp_extension"),
    ] {
        if let Some(s) = o.get(k) {
            parts.push(format!("{label}: {}", fmt_side(s)));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" {}.", parts.join("; "))
    }
}

const METHOD: &str = "## Method

* **Interleaving.** Rows 2–9 time the candidate and its baseline in rounds: each round times every
  side once, in an order that rotates from round to round, so that drifts of the machine (CPU
  frequency, other processes) hit both alike. A round's timing of a fast call is the mean over many
  calls. Each side is summarised by its median over rounds; the spread of the ratio comes from the
  per-round ratios (candidate / baseline of the same round).
* **Row 1 (Criterion)** runs `crates/simgrad-capi/benches/call_overhead.rs`: the variants
  (`raw_trampoline`, `rust_kernel_call`, `simgrad_kernel_call`) are measured back to back by
  Criterion, **not interleaved**; the medians come from
  `target/criterion/seed_primal/<variant>/<n>/new/estimates.json`. Rows `1r` show the Rust API
  beneath the C ABI for information.
* **Row 2** compares `kernel(x)` (binding, checks, output allocation, descriptors, the checked C
  call) with the cheapest possible ctypes call of the same trampoline symbol
  (`simgrad_k_seed_primal`, preset argtypes, pointer arrays built once, output preallocated).
* **Row 3**'s baseline is a minimal `torch.autograd.Function` calling the primal and VJP
  trampolines by raw ctypes, following Enzyme's conventions itself (a zeroed input shadow, a copied
  seed, a scratch primal output).
* **Row 4** is `examples-cpp/lltm/bench.py --threads 1` (its JSON is merged here): one torch
  thread on every side, since the simgrad kernel is serial and a torch thread pool on a busy
  machine waits on the scheduler.
* **Rows 5 and 6** time the Fortran solver `examples-fortran/diffusion` (`advdiff`, one state,
  stable explicit steps) through the raw Python layer on preallocated buffers; the number of steps
  is calibrated so that a primal run takes a few tens of milliseconds.
* **Row 7** compares one VJP (the gradient of `sum(w * u)` with respect to kappa, vel and u0) with
  central finite differences with respect to kappa (2n primal runs); the FD time of a block of
  components is scaled to all n components, and the two gradients are compared.
* **Row 8** starts new Python processes: `simgrad.build` of an unchanged, already built spec
  against `torch.utils.cpp_extension.load` of an unchanged small extension
  (`bench/torch_ext/tiny.cpp`) built once before timing into `target/bench/torch_ext`. 8a is the
  call alone inside the new process, 8b the whole process (interpreter start and imports).
* **Row 9** builds `examples-c/kernels/seed.c` as its own spec (`bench/kernels/seed.toml`:
  primal, JVP and VJP) with `force=True` into a cache of its own (`target/bench/cold-cache`), against `clang-19 -O2 -shared -fPIC` of the same file.

## Reproduce

```sh
cargo xtask bench            # everything (a few minutes); rewrites this file and target/bench/results.json
cargo xtask bench --quick    # a smoke run with few repetitions
cargo xtask bench --only solver fd   # a subset; writes target/bench/results.json only

# the parts on their own
cargo bench -p simgrad-capi --bench call_overhead -- --noplot
cargo build --release -p simgrad-capi
SIMGRAD_LIBRARY=target/release/libsimgrad.so ~/.cache/simgrad/venv/bin/python bench/bench_python.py [--quick] [call|torch|solver|fd|cache|cold]...
SIMGRAD_LIBRARY=target/release/libsimgrad.so ~/.cache/simgrad/venv/bin/python examples-cpp/lltm/bench.py --threads 1 --json target/bench/lltm.json
```

Raw samples of every row are in `target/bench/results.json`.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&s, 0.5), 2.5);
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 1.0), 4.0);
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_s(517e-9), "517 ns");
        assert_eq!(fmt_s(23.07e-6), "23.1 µs");
        assert_eq!(fmt_s(4.24), "4.24 s");
        assert_eq!(fmt_ratio(44.57), "44.6×");
        assert_eq!(fmt_ratio(1.234), "1.23×");
        assert_eq!(row_number("5 (n=1e3)"), 5);
        assert_eq!(row_number("2b"), 2);
    }

    #[test]
    fn renders_missing_benchmarks() {
        let res = json!({
            "quick": true, "machine": {}, "python": null, "seconds": 1.0, "rows": [],
            "errors": {"lltm": "not available: examples-cpp/lltm/bench.py is not in this checkout",
                       "cold": "SystemExit: cold: clang-19 not found"},
        });
        let doc = render(&res);
        assert!(doc.contains("| 4 | LLTM forward+backward | — |"));
        assert!(doc.contains("not available: examples-cpp/lltm/bench.py"));
        assert!(doc.contains("did not run: SystemExit: cold: clang-19 not found"));
        assert!(doc.contains("**No result: row 9**"));
    }

    #[test]
    fn met_from_targets() {
        let mut r = json!({"ratio": 1.5, "target": {"kind": "ratio", "max": 2.0},
                           "cand": {"median": 0.06}, "ratio_rounds": {"p25": 1.0, "p75": 2.0}});
        finish_row(&mut r);
        assert_eq!(r["met"], json!(true));
        r["target"] = json!({"kind": "candidate_seconds", "max": 0.05});
        finish_row(&mut r);
        assert_eq!(r["met"], json!(false));
        r["target"] = Value::Null;
        finish_row(&mut r);
        assert_eq!(r["met"], Value::Null);
    }
}
