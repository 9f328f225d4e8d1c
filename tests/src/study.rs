//! The pipeline study: every corpus spec (and every known failure) built under every pipeline in
//! [`simgrad_build::pipeline::PIPELINES`], every kernel checked with [`crate::gradcheck`], and the
//! cost of `--verify` measured; [`render`] writes `docs/pipeline.md`.
//!
//! Builds go to a private cache (`target/pipeline-study/cache`) with `force`, so every build time
//! is a full build. When a spec fails to build under a pipeline, each of its kernels is built
//! alone so that the table names the kernels that fail rather than the whole spec.

use crate::corpus::{CorpusSpec, KnownFailure, CORPUS, KNOWN_FAILURES};
use crate::enzyme_it;
use crate::gradcheck::{verdicts, Verdict, SEEDS, SIZES};
use simgrad_build::pipeline::{Pipeline, DEFAULT_PIPELINE, PIPELINES};
use simgrad_build::{build_spec_file, BuildError, BuildOptions, Spec};
use simgrad_core::check::{check_library, CheckOptions};
use simgrad_core::Library;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A kernel's result under one pipeline.
#[derive(Debug, Clone)]
pub enum Cell {
    /// Every check passed.
    Correct,
    /// Built, and some check failed: the first failure.
    Wrong(String),
    /// Did not build (alone): the error's first line.
    BuildError(String),
}

impl Cell {
    fn short(&self) -> &'static str {
        match self {
            Cell::Correct => "ok",
            Cell::Wrong(_) => "**WRONG**",
            Cell::BuildError(_) => "build error",
        }
    }
}

/// One spec under one pipeline.
#[derive(Debug, Clone)]
pub struct SpecResult {
    /// Pipeline name.
    pub pipeline: &'static str,
    /// Seconds of the (forced) build of the whole spec, successful or not.
    pub build_seconds: f64,
    /// Whether the whole spec built.
    pub built: bool,
    /// Per kernel, in spec order.
    pub cells: Vec<(String, Cell)>,
    /// When the whole spec built: the sum over its kernels of one JVP and one VJP call at
    /// [`RUNTIME_SIZE`] (best of several), seconds.
    pub derivative_seconds: Option<f64>,
}

/// The named size at which the study times the derivative code.
pub const RUNTIME_SIZE: i64 = 32;

/// One spec (corpus or known failure) under every pipeline.
#[derive(Debug, Clone)]
pub struct SpecStudy {
    /// Label (`C`, `C++`, `Fortran`, or a known failure's directory).
    pub label: String,
    /// The spec file.
    pub path: PathBuf,
    /// Kernel names in spec order.
    pub kernels: Vec<String>,
    /// One per pipeline, in [`PIPELINES`] order.
    pub results: Vec<SpecResult>,
}

/// The cost of verification for one spec under the default pipeline.
#[derive(Debug, Clone)]
pub struct VerifyCost {
    /// Label.
    pub label: String,
    /// Forced build without verification (best of two), seconds.
    pub build: f64,
    /// Forced build with `verify: true` (best of two), seconds.
    pub build_verify: f64,
    /// `check_library` with default options alone (what `--verify` runs), seconds.
    pub check: f64,
    /// The study's own checks (every size and seed, plus the extra checks), seconds.
    pub full_check: f64,
    /// Kernels.
    pub kernels: usize,
}

/// Which of Enzyme's integration tests `tests/tests/enzyme_integration.rs` runs.
#[derive(Debug, Clone, Default)]
pub struct EnzymeItSummary {
    /// Picked tests: (name, RUN lines, `-O2` RUN lines, which the default test run uses).
    pub picked: Vec<(String, usize, usize)>,
    /// Left-out tests with the reason.
    pub excluded: Vec<(String, String)>,
}

/// Everything the study measured.
#[derive(Debug, Clone)]
pub struct Study {
    /// The corpus specs.
    pub corpus: Vec<SpecStudy>,
    /// The known failures.
    pub known: Vec<SpecStudy>,
    /// Verification cost per corpus spec.
    pub verify: Vec<VerifyCost>,
    /// Enzyme integration tests: (picked files, picked RUN lines, excluded (name, reason)).
    pub enzyme_it: Option<EnzymeItSummary>,
    /// Description of the toolchain.
    pub toolchain: String,
    /// Total wall time, seconds.
    pub seconds: f64,
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

fn describe_error(e: &BuildError) -> String {
    match e {
        BuildError::Enzyme { summary, .. } => format!("Enzyme: {}", first_line(summary)),
        other => first_line(&other.to_string()),
    }
}

/// The text of `spec` reduced to its `[build]` table and the one `[[kernel]]` block declaring
/// `symbol`, with source paths made absolute (so the copy can live anywhere).
fn single_kernel_spec(spec_path: &Path, index: usize) -> String {
    let text = std::fs::read_to_string(spec_path).expect("spec readable");
    let dir = spec_path
        .parent()
        .expect("spec has a directory")
        .canonicalize()
        .expect("spec dir exists");
    let mut blocks: Vec<String> = vec![String::new()];
    for line in text.lines() {
        if line.trim_start().starts_with("[[kernel]]") {
            blocks.push(String::new());
        }
        let b = blocks.last_mut().unwrap();
        b.push_str(line);
        b.push('\n');
    }
    let header: String = blocks[0]
        .lines()
        .filter(|l| !l.trim_start().starts_with("name"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut block = blocks[index + 1].clone();
    // sources = ["a.c", "b.c"] → absolute.
    if let Some(start) = block.find("sources") {
        let open = start + block[start..].find('[').unwrap();
        let close = open + block[open..].find(']').unwrap();
        let list: Vec<String> = block[open + 1..close]
            .split(',')
            .map(|s| s.trim().trim_matches('"'))
            .filter(|s| !s.is_empty())
            .map(|s| format!("\"{}\"", dir.join(s).display()))
            .collect();
        block.replace_range(open..=close, &format!("[{}]", list.join(", ")));
    }
    format!("{header}\n{block}")
}

fn build(
    path: &Path,
    pipeline: &str,
    cache: &Path,
    verify: bool,
) -> (Result<PathBuf, BuildError>, f64) {
    let start = Instant::now();
    let r = build_spec_file(
        path,
        &BuildOptions {
            pipeline: Some(pipeline.to_string()),
            cache_dir: Some(cache.to_path_buf()),
            force: true,
            quiet: true,
            verify,
            ..BuildOptions::default()
        },
    );
    (r.map(|o| o.library), start.elapsed().as_secs_f64())
}

fn cell_of(v: &Verdict) -> Cell {
    if v.passed() {
        Cell::Correct
    } else {
        Cell::Wrong(v.failures[0].clone())
    }
}

fn study_spec(
    label: &str,
    path: &Path,
    cache: &Path,
    scratch: &Path,
    log: &dyn Fn(&str),
) -> SpecStudy {
    let spec = Spec::load(path).unwrap_or_else(|e| panic!("{e}"));
    let kernels: Vec<String> = spec.kernels.iter().map(|k| k.desc.name.clone()).collect();
    let mut results = Vec::new();
    for p in PIPELINES {
        let (r, secs) = build(path, p.name, cache, false);
        let mut derivative_seconds = None;
        let (built, cells) = match r {
            Ok(lib) => {
                let lib = Library::open(&lib).unwrap_or_else(|e| panic!("{e}"));
                let cells = verdicts(&lib)
                    .iter()
                    .map(|v| (v.kernel.clone(), cell_of(v)))
                    .collect();
                let mut total = 0.0;
                for k in lib.kernels() {
                    let (j, v) = crate::extra::time_derivatives(k, RUNTIME_SIZE, 7)
                        .unwrap_or_else(|e| panic!("timing {}: {e}", k.name()));
                    total += j + v;
                }
                derivative_seconds = Some(total);
                (true, cells)
            }
            Err(spec_err) => {
                // Build each kernel alone to find which ones fail.
                let mut cells = Vec::new();
                for (i, k) in kernels.iter().enumerate() {
                    let dir =
                        scratch.join(format!("{}-{}-{k}", label.replace(['+', ' '], "x"), p.name));
                    std::fs::create_dir_all(&dir).expect("scratch dir");
                    let single = dir.join("simgrad.toml");
                    std::fs::write(&single, single_kernel_spec(path, i)).expect("write spec");
                    let (r, _) = build(&single, p.name, cache, false);
                    let cell = match r {
                        Ok(lib) => {
                            let lib = Library::open(&lib).unwrap_or_else(|e| panic!("{e}"));
                            cell_of(&verdicts(&lib)[0])
                        }
                        Err(e) => Cell::BuildError(describe_error(&e)),
                    };
                    cells.push((k.clone(), cell));
                }
                log(&format!(
                    "    ({label} under {}: {})",
                    p.name,
                    describe_error(&spec_err)
                ));
                (false, cells)
            }
        };
        let bad = cells
            .iter()
            .filter(|(_, c)| !matches!(c, Cell::Correct))
            .count();
        log(&format!(
            "  {label:<32} {:<12} {:>6.1} s  {bad} not ok",
            p.name, secs
        ));
        results.push(SpecResult {
            pipeline: p.name,
            build_seconds: secs,
            built,
            cells,
            derivative_seconds,
        });
    }
    SpecStudy {
        label: label.to_string(),
        path: path.to_path_buf(),
        kernels,
        results,
    }
}

fn verify_cost(spec: &CorpusSpec, cache: &Path) -> VerifyCost {
    let path = spec.path();
    let mut build_t = f64::INFINITY;
    let mut verify_t = f64::INFINITY;
    let mut lib = None;
    for _ in 0..3 {
        let (r, t) = build(&path, DEFAULT_PIPELINE, cache, false);
        lib = Some(r.unwrap_or_else(|e| panic!("{}: {e}", path.display())));
        build_t = build_t.min(t);
        let (r, t) = build(&path, DEFAULT_PIPELINE, cache, true);
        if let Err(e) = r {
            panic!(
                "{}: the default pipeline fails --verify: {e}",
                path.display()
            );
        }
        verify_t = verify_t.min(t);
    }
    let library = Library::open(lib.unwrap()).unwrap_or_else(|e| panic!("{e}"));
    // Averages over repetitions: one check takes milliseconds.
    const REPS: u32 = 20;
    let start = Instant::now();
    for _ in 0..REPS {
        let _ = check_library(&library, &CheckOptions::default());
    }
    let check = start.elapsed().as_secs_f64() / f64::from(REPS);
    let start = Instant::now();
    for _ in 0..REPS {
        let _ = verdicts(&library);
    }
    let full_check = start.elapsed().as_secs_f64() / f64::from(REPS);
    VerifyCost {
        label: spec.language.to_string(),
        build: build_t,
        build_verify: verify_t,
        check,
        full_check,
        kernels: library.kernels().len(),
    }
}

/// Runs the whole study. `log` receives progress lines.
pub fn run(log: &dyn Fn(&str)) -> Study {
    let start = Instant::now();
    let root = crate::workspace_root()
        .join("target")
        .join("pipeline-study");
    let _ = std::fs::remove_dir_all(&root);
    let cache = root.join("cache");
    let scratch = root.join("single");
    std::fs::create_dir_all(&scratch).expect("create target/pipeline-study");
    let tc = simgrad_build::toolchain::Toolchain::discover()
        .unwrap_or_else(|e| panic!("no Enzyme toolchain: {e}"));
    let toolchain = format!(
        "LLVM {}, Enzyme {} ({})",
        tc.llvm_version,
        tc.enzyme_version.as_deref().unwrap_or("unknown version"),
        tc.enzyme_plugin.display()
    );
    log(&format!("toolchain: {toolchain}"));
    let corpus: Vec<SpecStudy> = CORPUS
        .iter()
        .map(|s| study_spec(s.language, &s.path(), &cache, &scratch, log))
        .collect();
    let known: Vec<SpecStudy> = KNOWN_FAILURES
        .iter()
        .map(|k: &KnownFailure| study_spec(k.dir, &k.path(), &cache, &scratch, log))
        .collect();
    log("measuring the cost of --verify (default pipeline)");
    let verify: Vec<VerifyCost> = CORPUS.iter().map(|s| verify_cost(s, &cache)).collect();
    let enzyme_it = enzyme_it::integration_dir().ok().map(|dir| {
        let mut sum = EnzymeItSummary::default();
        for t in enzyme_it::discover(&dir) {
            match t.selection {
                enzyme_it::Selection::Picked(l) => {
                    let o2 = l
                        .iter()
                        .filter(|r| r.cflags.iter().any(|f| f == "-O2"))
                        .count();
                    sum.picked.push((t.name, l.len(), o2.max(1)));
                }
                enzyme_it::Selection::Excluded(why) => sum.excluded.push((t.name, why)),
            }
        }
        sum
    });
    Study {
        corpus,
        known,
        verify,
        enzyme_it,
        toolchain,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Per pipeline over the corpus: the sum of [`SpecResult::derivative_seconds`], when every
/// spec built.
pub fn derivative_time(study: &Study, pipeline: usize) -> Option<f64> {
    study
        .corpus
        .iter()
        .map(|s| s.results[pipeline].derivative_seconds)
        .sum()
}

/// Per pipeline over the corpus: (correct, wrong, build error, build seconds).
pub fn totals(study: &Study) -> Vec<(&'static str, usize, usize, usize, f64)> {
    PIPELINES
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (mut ok, mut wrong, mut err, mut secs) = (0, 0, 0, 0.0);
            for s in &study.corpus {
                let r = &s.results[i];
                secs += r.build_seconds;
                for (_, c) in &r.cells {
                    match c {
                        Cell::Correct => ok += 1,
                        Cell::Wrong(_) => wrong += 1,
                        Cell::BuildError(_) => err += 1,
                    }
                }
            }
            (p.name, ok, wrong, err, secs)
        })
        .collect()
}

/// Build times within this fraction of each other count as equal (they are noisy).
pub const BUILD_TIME_TIE: f64 = 0.10;

/// The measured best pipeline: most correct kernels, then the shortest total build time, where
/// build times within [`BUILD_TIME_TIE`] of the shortest count as a tie that the order of
/// [`PIPELINES`] breaks (conservative flags first).
pub fn best(study: &Study) -> &'static str {
    let t = totals(study);
    let most = t.iter().map(|x| x.1).max().unwrap_or(0);
    let top: Vec<_> = t.iter().filter(|x| x.1 == most).collect();
    let fastest = top.iter().map(|x| x.4).fold(f64::INFINITY, f64::min);
    top.iter()
        .find(|x| x.4 <= fastest * (1.0 + BUILD_TIME_TIE))
        .map(|x| x.0)
        .unwrap_or(t[0].0)
}

fn flags(list: &[&str]) -> String {
    if list.is_empty() {
        "—".into()
    } else {
        format!("`{}`", list.join(" "))
    }
}

fn table(out: &mut String, specs: &[SpecStudy]) {
    let _ = write!(out, "| kernel |");
    for p in PIPELINES {
        let _ = write!(out, " {} |", p.name);
    }
    let _ = write!(out, "\n| --- |");
    for _ in PIPELINES {
        let _ = write!(out, " --- |");
    }
    out.push('\n');
    for s in specs {
        for (k, name) in s.kernels.iter().enumerate() {
            let _ = write!(out, "| {} `{name}` |", s.label);
            for r in &s.results {
                let _ = write!(out, " {} |", r.cells[k].1.short());
            }
            out.push('\n');
        }
    }
}

fn details(out: &mut String, specs: &[SpecStudy]) {
    let mut any = false;
    for s in specs {
        for r in &s.results {
            for (k, c) in &r.cells {
                let line = match c {
                    Cell::Correct => continue,
                    Cell::Wrong(f) => format!("WRONG: {f}"),
                    Cell::BuildError(e) => format!("build error: {e}"),
                };
                any = true;
                let _ = writeln!(
                    out,
                    "- `{k}` ({}) under `{}`: {}",
                    s.label,
                    r.pipeline,
                    line.replace('|', "\\|")
                );
            }
        }
    }
    if !any {
        out.push_str("- none\n");
    }
}

const VERIFY_RECOMMENDATION: &str = "\
**Recommendation: make verification the default of `simgrad build`**, with an opt-out
(`--no-verify`) for kernels whose inputs must come from a narrower domain than the checker's
(values in [0.5, 2), integer arrays zero, every size 7). The cost is noise next to the compile
steps, a verified entry is cached like any other (a cache hit never re-checks), and the
alternative is what this study shows: libraries with silently wrong reverse modes published
without a word. Two changes would make it much stronger for the same negligible cost:

- **check several sizes, not only 7.** The vectoriser bug behind the `known_bad` pipelines shows
  only for n < 4; at the default size 7 `check_library` passes `rk2_logistic` under `O2`.
  Checking sizes 1, 2, 3 and 7, as this study does, catches it (`tests/verify/rk2_three`, whose
  sizes are fixed at 3, is caught by the current single-size check).
- **let the spec narrow the domain** (per argument value ranges, integer index ranges, the sizes
  to try), so that kernels that are not defined on the checker's default inputs can still be
  verified rather than opted out.
";

/// `docs/pipeline.md`. `narrative` is the hand-written discussion inserted after the results.
pub fn render(study: &Study, narrative: &str) -> String {
    let mut o = String::new();
    let n_kernels: usize = study.corpus.iter().map(|s| s.kernels.len()).sum();
    let best = best(study);
    o.push_str("# Compile pipelines: which flags give correct derivatives\n\n");
    o.push_str("<!-- Generated by `cargo run -p simgrad-tests --release --bin pipeline-study`. Edit the\n     narrative in tests/src/bin/pipeline_decision.md, not this file. -->\n\n");
    let _ = writeln!(
        o,
        "Enzyme's derivatives can be silently wrong under some pre-Enzyme optimisation flags \
         (`shared/ENZYME.md`), so simgrad's default pipeline is chosen by measurement: every kernel \
         of the conformance corpus (`tests/conformance/`, {n_kernels} kernels in C, C++ and Fortran) \
         is built under every pipeline in `simgrad_build::pipeline::PIPELINES` and checked in every \
         mode: JVP against central finite differences, VJP against JVP by the dot-product test, \
         inputs and seeds unchanged (`simgrad_core::check`), at every named size in {SIZES:?} and \
         seeds {SEEDS:?}, plus the runtime-semantics checks of `tests/src/extra.rs` (JVP writes and \
         VJP overwrites/accumulates as documented, a dot-product test with random integer index \
         arrays). A kernel counts as correct under a pipeline only if all of that passes.\n"
    );
    let _ = writeln!(
        o,
        "Measured with {}; the study took {:.0} s.\n",
        study.toolchain, study.seconds
    );
    o.push_str("## Regenerating\n\n```sh\ncargo xtask pipeline-study   # = cargo run -p simgrad-tests --release --bin pipeline-study; rewrites docs/pipeline.md\n```\n\n");
    o.push_str("It needs the Enzyme toolchain (`cargo xtask setup`); builds go to a private cache under \
                `target/pipeline-study/`, forced, so the build times are full builds on this machine.\n\n");

    o.push_str("## The candidates\n\n| pipeline | clang/clang++ before Enzyme | flang before Enzyme | Enzyme (`opt`) | Enzyme, extra for Fortran | after Enzyme | known bad |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    for p in PIPELINES {
        let _ = writeln!(
            o,
            "| `{}`{} | {} | {} | {} | {} | {} | {} |",
            p.name,
            if p.name == DEFAULT_PIPELINE {
                " (default)"
            } else {
                ""
            },
            flags(p.pre),
            flags(p.pre_fortran),
            flags(p.enzyme),
            flags(p.enzyme_fortran),
            p.post
                .map(|s| format!("`opt {s}`"))
                .unwrap_or_else(|| "none".into()),
            if p.known_bad.is_some() {
                "yes (below)"
            } else {
                ""
            }
        );
    }
    o.push_str("\nWhy the pipelines marked known bad are (`known_bad`, printed as a warning when one is used):\n\n");
    for p in PIPELINES {
        if let Some(why) = p.known_bad {
            let _ = writeln!(o, "- `{}`: {why}", p.name);
        }
    }

    let _ = writeln!(
        o,
        "\n## Totals over the corpus\n\nBuild time: forced builds of the three corpus specs (for a spec that \
         fails, the time to the failure). Derivative time: one JVP plus one VJP call of every corpus kernel \
         with every named size = {RUNTIME_SIZE}, best of 7, summed (only when every spec built). Both were \
         measured on a shared two-core machine: differences of 20-30 % between build times are noise (the \
         C++ spec's flags are identical under `O2`, `O2-strict` and `O2-loose`).\n\n\
         | pipeline | correct | WRONG | build error | build time (s) | derivative time (ms) |\n\
         | --- | --- | --- | --- | --- | --- |"
    );
    for (i, (name, ok, wrong, err, secs)) in totals(study).into_iter().enumerate() {
        let _ = writeln!(
            o,
            "| `{name}`{} | {ok} / {n_kernels} | {wrong} | {err} | {secs:.1} | {} |",
            if name == DEFAULT_PIPELINE {
                " (default)"
            } else {
                ""
            },
            derivative_time(study, i)
                .map(|t| format!("{:.2}", 1e3 * t))
                .unwrap_or_else(|| "—".into())
        );
    }
    let _ = writeln!(
        o,
        "\nMeasured best (most correct kernels, then the shortest build, build times within {:.0} % \
         counting as a tie broken by the order of the list): **`{best}`**. \
         `DEFAULT_PIPELINE` in `crates/simgrad-build/src/pipeline.rs` is **`{DEFAULT_PIPELINE}`**{}.\n",
        100.0 * BUILD_TIME_TIE,
        if best == DEFAULT_PIPELINE {
            String::new()
        } else {
            format!(" (the measurement now prefers `{best}`: revisit the decision below)")
        }
    );
    let idx = |name: &str| PIPELINES.iter().position(|p| p.name == name);
    if let (Some(d), Some(o2)) = (idx(DEFAULT_PIPELINE), idx("O2")) {
        if let (Some(td), Some(t2)) = (derivative_time(study, d), derivative_time(study, o2)) {
            let _ = writeln!(
                o,
                "The default's derivative code runs in {:.2}× the time of `O2`'s on this corpus \
                 (JVP + VJP of every kernel at size {RUNTIME_SIZE}, summed).\n",
                td / t2
            );
        }
    }
    o.push_str("Build time per spec (s):\n\n| spec |");
    for p in PIPELINES {
        let _ = write!(o, " {} |", p.name);
    }
    o.push_str("\n| --- |");
    for _ in PIPELINES {
        o.push_str(" --- |");
    }
    o.push('\n');
    for s in &study.corpus {
        let _ = write!(o, "| {} ({} kernels) |", s.label, s.kernels.len());
        for r in &s.results {
            let _ = write!(
                o,
                " {:.1}{} |",
                r.build_seconds,
                if r.built { "" } else { " (failed)" }
            );
        }
        o.push('\n');
    }

    o.push_str("\n## Kernel × pipeline\n\n`ok`: every check passed; **WRONG**: built without any diagnostic and some check failed; \
                `build error`: the kernel does not build under that pipeline (built alone, so one kernel's failure does not hide the others').\n\n");
    table(&mut o, &study.corpus);
    o.push_str("\nEvery failure, with the first failing comparison:\n\n");
    details(&mut o, &study.corpus);

    o.push_str("\n## Known failures under every pipeline\n\n`tests/conformance/known-failures/` (see its README): kernels this Enzyme cannot differentiate, or differentiates wrongly, under the default pipeline. Not counted in the totals.\n\n");
    table(&mut o, &study.known);
    o.push('\n');
    details(&mut o, &study.known);

    o.push_str("\n## Decision\n\n");
    o.push_str(narrative.trim());
    o.push_str("\n\n## The cost of `--verify`\n\n");
    o.push_str("Forced builds of each corpus spec under the default pipeline, best of three, with and without `verify: true` \
                (`simgrad build --verify`: `check_library` with default options before publishing); the check alone timed separately (mean of 20 runs), \
                and the study's full check (4 sizes × 2 seeds + extra checks) for comparison.\n\n");
    o.push_str("| spec | kernels | build (s) | build --verify (s) | check_library alone (ms) | check / build | full study check (ms) |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    let (mut b, mut bv, mut c) = (0.0, 0.0, 0.0);
    for v in &study.verify {
        b += v.build;
        bv += v.build_verify;
        c += v.check;
        let _ = writeln!(
            o,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.3} % | {:.1} |",
            v.label,
            v.kernels,
            v.build,
            v.build_verify,
            1e3 * v.check,
            100.0 * v.check / v.build,
            1e3 * v.full_check
        );
    }
    let _ = writeln!(
        o,
        "| all | | {b:.2} | {bv:.2} | {:.2} | {:.3} % | |",
        1e3 * c,
        100.0 * c / b
    );
    let _ = writeln!(
        o,
        "\nThe gradient check itself (`check_library`, what `--verify` runs) costs {:.2} % of the \
         build time, and the study's much stronger check (4 sizes × 2 seeds, plus the extra checks) \
         {:.2} %; the differences between the two build columns are the noise of the compile steps \
         (the builds are forced and identical), not the check.\n",
        100.0 * c / b,
        100.0 * study.verify.iter().map(|v| v.full_check).sum::<f64>() / b
    );
    o.push_str(VERIFY_RECOMMENDATION);
    o.push('\n');

    if let Some(it) = &study.enzyme_it {
        let excluded = &it.excluded;
        let lines: usize = it.picked.iter().map(|p| p.1).sum();
        let o2: usize = it.picked.iter().map(|p| p.2).sum();
        o.push_str("## Enzyme's own integration tests\n\n");
        let _ = writeln!(
            o,
            "`tests/tests/enzyme_integration.rs` compiles and runs {} of Enzyme's `test/Integration/` C/C++ \
             tests the way their RUN lines say, through simgrad's toolchain (clang-19 with the line's flags → \
             `opt` + LLVMEnzyme-19 `-passes=enzyme` with the line's Enzyme flags → `lli`), reading them from \
             the cargo registry at test time; each test's `main` checks its derivatives with `APPROX_EQ` \
             and aborts on a mismatch. By default it runs every `-O2` line ({o2} lines: the optimisation \
             level of simgrad's pipelines, with and without `-enzyme-inline=1`); \
             `SIMGRAD_ENZYME_IT_FULL=1` runs all {lines} lines (-O0 to -O3). All pass. A negative control \
             (a test in the same style expecting a wrong value) must fail.\n\nPicked: {}.\n\n\
             Left out, by rule ({} files):\n",
            it.picked.len(),
            it.picked.iter().map(|p| format!("`{}`", p.0)).collect::<Vec<_>>().join(", "),
            excluded.len()
        );
        let mut reasons: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (name, why) in excluded {
            reasons.entry(why.as_str()).or_default().push(name.as_str());
        }
        for (why, names) in reasons {
            let _ = writeln!(
                o,
                "- {why}: {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        o.push('\n');
    }
    o
}

/// Finds the pipeline by name (panics on unknown names: the study and the list must agree).
pub fn pipeline(name: &str) -> &'static Pipeline {
    Pipeline::named(name).unwrap_or_else(|| panic!("no pipeline `{name}`"))
}

// ---- saving and loading the raw results, so the page can be re-rendered without re-measuring.

use serde_json::{json, Value};

fn cell_json(c: &Cell) -> Value {
    match c {
        Cell::Correct => json!({ "ok": true }),
        Cell::Wrong(m) => json!({ "wrong": m }),
        Cell::BuildError(m) => json!({ "build_error": m }),
    }
}

fn cell_from(v: &Value) -> Option<Cell> {
    if let Some(m) = v.get("wrong") {
        return Some(Cell::Wrong(m.as_str()?.to_string()));
    }
    if let Some(m) = v.get("build_error") {
        return Some(Cell::BuildError(m.as_str()?.to_string()));
    }
    v.get("ok").map(|_| Cell::Correct)
}

fn spec_json(s: &SpecStudy) -> Value {
    json!({
        "label": s.label,
        "path": s.path,
        "kernels": s.kernels,
        "results": s.results.iter().map(|r| json!({
            "pipeline": r.pipeline,
            "build_seconds": r.build_seconds,
            "built": r.built,
            "derivative_seconds": r.derivative_seconds,
            "cells": r.cells.iter().map(|(k, c)| json!([k, cell_json(c)])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn spec_from(v: &Value) -> Result<SpecStudy, String> {
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut results = Vec::new();
    for r in v["results"].as_array().ok_or("no results")? {
        let name = r["pipeline"].as_str().ok_or("no pipeline name")?;
        let pipeline = PIPELINES
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| format!("pipeline `{name}` is no longer in PIPELINES: rerun the study"))?
            .name;
        let mut cells = Vec::new();
        for c in r["cells"].as_array().ok_or("no cells")? {
            let k = c[0].as_str().ok_or("bad cell")?.to_string();
            cells.push((k, cell_from(&c[1]).ok_or("bad cell")?));
        }
        results.push(SpecResult {
            pipeline,
            build_seconds: r["build_seconds"].as_f64().unwrap_or(0.0),
            built: r["built"].as_bool().unwrap_or(false),
            cells,
            derivative_seconds: r["derivative_seconds"].as_f64(),
        });
    }
    if results.len() != PIPELINES.len() {
        return Err("the pipeline list changed since the measurement: rerun the study".into());
    }
    Ok(SpecStudy {
        label: v["label"].as_str().unwrap_or("").to_string(),
        path: PathBuf::from(v["path"].as_str().unwrap_or("")),
        kernels: strs(&v["kernels"]),
        results,
    })
}

/// The raw results as JSON (`target/pipeline-study/study.json`).
pub fn to_json(s: &Study) -> String {
    let v = json!({
        "corpus": s.corpus.iter().map(spec_json).collect::<Vec<_>>(),
        "known": s.known.iter().map(spec_json).collect::<Vec<_>>(),
        "verify": s.verify.iter().map(|v| json!({
            "label": v.label, "build": v.build, "build_verify": v.build_verify,
            "check": v.check, "full_check": v.full_check, "kernels": v.kernels,
        })).collect::<Vec<_>>(),
        "enzyme_it": s.enzyme_it.as_ref().map(|e| json!({ "picked": e.picked, "excluded": e.excluded })),
        "toolchain": s.toolchain,
        "seconds": s.seconds,
    });
    serde_json::to_string_pretty(&v).expect("serialises")
}

/// Reads what [`to_json`] wrote.
pub fn from_json(text: &str) -> Result<Study, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let specs = |k: &str| -> Result<Vec<SpecStudy>, String> {
        v[k].as_array()
            .ok_or(format!("no `{k}`"))?
            .iter()
            .map(spec_from)
            .collect()
    };
    let verify = v["verify"]
        .as_array()
        .ok_or("no `verify`")?
        .iter()
        .map(|x| VerifyCost {
            label: x["label"].as_str().unwrap_or("").to_string(),
            build: x["build"].as_f64().unwrap_or(0.0),
            build_verify: x["build_verify"].as_f64().unwrap_or(0.0),
            check: x["check"].as_f64().unwrap_or(0.0),
            full_check: x["full_check"].as_f64().unwrap_or(0.0),
            kernels: x["kernels"].as_u64().unwrap_or(0) as usize,
        })
        .collect();
    let enzyme_it = v["enzyme_it"].as_object().map(|e| {
        let pairs = |k: &str| -> Vec<Value> {
            e.get(k)
                .and_then(|x| x.as_array())
                .cloned()
                .unwrap_or_default()
        };
        EnzymeItSummary {
            picked: pairs("picked")
                .iter()
                .filter_map(|p| {
                    Some((
                        p[0].as_str()?.to_string(),
                        p[1].as_u64()? as usize,
                        p[2].as_u64()? as usize,
                    ))
                })
                .collect(),
            excluded: pairs("excluded")
                .iter()
                .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
                .collect(),
        }
    });
    Ok(Study {
        corpus: specs("corpus")?,
        known: specs("known")?,
        verify,
        enzyme_it,
        toolchain: v["toolchain"].as_str().unwrap_or("").to_string(),
        seconds: v["seconds"].as_f64().unwrap_or(0.0),
    })
}
