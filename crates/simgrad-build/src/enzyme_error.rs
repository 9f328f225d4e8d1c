//! Turning Enzyme's failures into one readable error: which kernel, what construct, what to try.

use crate::error::BuildError;
use crate::spec::KernelSpec;

struct Known {
    needle: &'static str,
    summary: &'static str,
    hint: &'static str,
}

const KNOWN: &[Known] = &[
    Known {
        needle: "Cannot deduce type of copy",
        summary: "a memory copy whose element type Enzyme cannot deduce (typical of Fortran whole-array assignments such as `u = u0`)",
        hint: "for Fortran sources the default pipelines pass `-enzyme-loose-types`; in C or C++, copy element by element in a loop so the element type is visible; the `O2-loose` pipeline applies loose types to every language but can give silently wrong derivatives (docs/pipeline.md), so use it only with verification",
    },
    Known {
        needle: "Cannot deduce type",
        summary: "Enzyme cannot deduce the type of a value it must differentiate",
        hint: "give the value a concrete floating-point type in the source (a typed loop instead of memcpy/memset of raw bytes); `--pipeline O2-loose` guesses types instead but can give silently wrong derivatives (docs/pipeline.md), so use it only with verification",
    },
    Known {
        needle: "Erased value with a use",
        summary: "Enzyme failed while rewriting the optimised IR (\"Erased value with a use\")",
        hint: "this depends on the pre-Enzyme optimisation; try another pipeline (`--pipeline O1` or `--pipeline O2-novec`)",
    },
    Known {
        needle: "No augmented forward pass found for",
        summary: "a call to a function without a derivative rule in Enzyme",
        hint: "the callee is an external function (a runtime or library call) Enzyme has no rule for; keep it out of the differentiated code, or compile with optimisation so the compiler inlines it (flang calls its runtime for array assignments at -O0)",
    },
    Known {
        needle: "No reverse pass found for",
        summary: "a call to a function without a reverse-mode derivative in Enzyme",
        hint: "the callee is an external function Enzyme has no rule for; keep it out of the differentiated code",
    },
    Known {
        needle: "No forward mode derivative found for",
        summary: "a call to a function without a forward-mode derivative in Enzyme",
        hint: "the callee is an external function Enzyme has no rule for; keep it out of the differentiated code",
    },
    Known {
        needle: "No derivative found for",
        summary: "a call to a function without a derivative in Enzyme",
        hint: "the callee is an external function Enzyme has no rule for; keep it out of the differentiated code",
    },
    Known {
        needle: "cannot handle unknown binary operator",
        summary: "an operation Enzyme cannot differentiate",
        hint: "rewrite the operation in plain floating-point arithmetic",
    },
];

/// Builds the [`BuildError::Enzyme`] for a failed `opt` + Enzyme run.
pub fn explain(kernels: &[KernelSpec], command: &str, stderr: &str) -> BuildError {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut summary = None;
    let mut hint = None;
    for k in KNOWN {
        if let Some(line) = lines.iter().find(|l| l.contains(k.needle)) {
            let callee = callee_of(line);
            summary = Some(match callee {
                Some(c) => format!("{} (`{c}`)", k.summary),
                None => k.summary.to_string(),
            });
            hint = Some(k.hint.to_string());
            break;
        }
    }
    let crashed = stderr.contains("PLEASE submit a bug report") || stderr.contains("Stack dump");
    let summary = summary.unwrap_or_else(|| {
        if crashed {
            "Enzyme crashed inside opt".to_string()
        } else {
            lines
                .iter()
                .find(|l| l.contains("error") || l.contains("Error"))
                .or_else(|| lines.first())
                .map(|l| truncate(l.trim(), 200))
                .unwrap_or_else(|| "opt failed without a message".to_string())
        }
    });
    if hint.is_none() && crashed {
        hint = Some("try another pipeline (`--pipeline O1`, `O2-novec`); if every pipeline crashes, please report the kernel".into());
    }
    if hint.is_none() && stderr.contains("_Fortran") {
        hint = Some(
            "Fortran kernels need optimisation before Enzyme (flang calls its runtime at -O0)"
                .into(),
        );
    }
    // The kernel: the first one named on a diagnostic line (not in an IR dump, which mentions
    // every function of the module), by its adapter or its symbol; else anywhere in the output.
    let diagnostic: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let t = l.trim_start();
            !(l.starts_with(' ')
                || l.starts_with('\t')
                || t.starts_with("define")
                || t.starts_with("declare")
                || t.starts_with('%')
                || t.starts_with('!')
                || t.starts_with('}')
                || t.starts_with("attributes"))
        })
        .collect();
    let mentions = |text: &str, k: &KernelSpec| {
        text.contains(&format!("simgrad_adapt_{}", k.desc.name))
            || text.contains(&format!("preprocess_{}", k.desc.symbol))
            || contains_word(text, &k.desc.symbol)
    };
    let kernel = diagnostic
        .iter()
        .find_map(|l| kernels.iter().find(|k| mentions(l, k)))
        .or_else(|| {
            // Earliest mention in the whole output.
            kernels
                .iter()
                .filter_map(|k| {
                    let a = stderr.find(&format!("simgrad_adapt_{}", k.desc.name));
                    let b = find_word(stderr, &k.desc.symbol);
                    a.into_iter().chain(b).min().map(|p| (p, k))
                })
                .min_by_key(|(p, _)| *p)
                .map(|(_, k)| k)
        })
        .or(if kernels.len() == 1 {
            kernels.first()
        } else {
            None
        })
        .map(|k| k.desc.name.clone());
    BuildError::Enzyme {
        kernel,
        summary,
        hint,
        command: command.to_string(),
        raw: stderr.trim().to_string(),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n).collect();
        format!("{t}...")
    }
}

/// The called function in lines such as `No augmented forward pass found for _FortranAAssign`.
fn callee_of(line: &str) -> Option<String> {
    let after = line.split(" for ").nth(1)?;
    let name: String = after
        .trim()
        .trim_start_matches('@')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.' || *c == '$')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The first position of `word` in `text` not inside a longer identifier.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(i) = text[from..].find(word) {
        let start = from + i;
        let end = start + word.len();
        let before = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_ident(c));
        let after = text[end..].chars().next().is_none_or(|c| !is_ident(c));
        if before && after {
            return Some(start);
        }
        from = start + 1;
    }
    None
}

fn contains_word(text: &str, word: &str) -> bool {
    find_word(text, word).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blames_the_kernel_named_on_a_diagnostic_line_not_in_the_ir_dump() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.c"), "").unwrap();
        let spec = crate::spec::Spec::parse(
            "[[kernel]]\nsymbol = \"first\"\nsources = [\"k.c\"]\nargs = [{ name = \"x\", dtype = \"f64\", shape = [1], intent = \"inout\" }]\n\
             [[kernel]]\nsymbol = \"second\"\nsources = [\"k.c\"]\nargs = [{ name = \"x\", dtype = \"f64\", shape = [1], intent = \"inout\" }]\n",
            &dir.path().join("simgrad.toml"),
        )
        .unwrap();
        let stderr = "define void @first(ptr %x) {\n  call void @second(ptr %x)\n}\n\
                      Cannot deduce type of copy in function preprocess_second\n";
        match explain(&spec.kernels, "opt", stderr) {
            BuildError::Enzyme { kernel, .. } => assert_eq!(kernel.as_deref(), Some("second")),
            other => panic!("{other}"),
        }
        assert_eq!(find_word("a_first first", "first"), Some(8));
    }

    #[test]
    fn names_the_callee_and_hints() {
        let e = explain(&[], "opt x", "noise\nNo augmented forward pass found for _FortranAAssign\n declare void @_FortranAAssign(ptr)\n");
        let msg = e.to_string();
        assert!(msg.contains("`_FortranAAssign`"), "{msg}");
        assert!(msg.contains("hint:"), "{msg}");
        assert!(msg.contains("command: opt x"), "{msg}");
        let e = explain(
            &[],
            "opt",
            "error: Cannot deduce type of copy   call void @llvm.memcpy",
        );
        assert!(e.to_string().contains("enzyme-loose-types"));
    }
}
