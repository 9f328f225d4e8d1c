//! `pipeline-study`: builds every conformance spec and known failure under every pipeline,
//! checks every kernel, measures the cost of `--verify`, and rewrites `docs/pipeline.md`.
//!
//! ```sh
//! cargo run -p simgrad-tests --release --bin pipeline-study [-- --out FILE] [--render-only]
//! ```
//!
//! The raw results are saved to `target/pipeline-study/study.json`; `--render-only` re-renders
//! the page from them (after editing the narrative, `pipeline_decision.md`) without measuring.

use simgrad_tests::study;

/// The hand-written part of the decision: why the default is what it is. The numbers in the
/// tables above it are regenerated; keep this text true to them.
const NARRATIVE: &str = include_str!("pipeline_decision.md");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) => args.get(i + 1).cloned().unwrap_or_else(|| {
            eprintln!("--out needs a file");
            std::process::exit(2)
        }),
        None => simgrad_tests::workspace_root()
            .join("docs/pipeline.md")
            .display()
            .to_string(),
    };
    let saved = simgrad_tests::workspace_root().join("target/pipeline-study/study.json");
    let s = if args.iter().any(|a| a == "--render-only") {
        let text = std::fs::read_to_string(&saved).unwrap_or_else(|e| {
            eprintln!("cannot read {}: {e} (run the study first)", saved.display());
            std::process::exit(1)
        });
        study::from_json(&text).unwrap_or_else(|e| {
            eprintln!("{}: {e}", saved.display());
            std::process::exit(1)
        })
    } else {
        let s = study::run(&|line| eprintln!("{line}"));
        if let Err(e) = std::fs::write(&saved, study::to_json(&s)) {
            eprintln!("cannot save {}: {e}", saved.display());
        }
        s
    };
    let text = study::render(&s, NARRATIVE);
    std::fs::write(&out, text).unwrap_or_else(|e| {
        eprintln!("cannot write {out}: {e}");
        std::process::exit(1)
    });
    println!("pipeline totals over the corpus (correct, WRONG, build error, build s):");
    for (name, ok, wrong, err, secs) in study::totals(&s) {
        println!("  {name:<12} {ok:>3} {wrong:>3} {err:>3} {secs:>7.1}");
    }
    println!(
        "measured best: {}; DEFAULT_PIPELINE: {}",
        study::best(&s),
        simgrad_build::pipeline::DEFAULT_PIPELINE
    );
    println!("wrote {out}");
}
