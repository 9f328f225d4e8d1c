//! Turning Enzyme's failures into one readable error: which kernel, what construct, what to try.

use crate::error::BuildError;
use crate::spec::{KernelSpec, Language};

struct Known {
    needle: &'static str,
    summary: &'static str,
    hint: &'static str,
}

const KNOWN: &[Known] = &[
    Known {
        needle: "Cannot deduce type of copy",
        summary: "a memory copy whose element type Enzyme cannot deduce (typical of Fortran whole-array assignments such as `u = u0`)",
        hint: "for Fortran sources the default pipelines pass `-enzyme-loose-types`; with a strict pipeline, copy element by element in a loop, or build with `--pipeline O2`",
    },
    Known {
        needle: "Cannot deduce type",
        summary: "Enzyme cannot deduce the type of a value it must differentiate",
        hint: "give the value a concrete floating-point type in the source, or try a pipeline with `-enzyme-loose-types` (`--pipeline O2`)",
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
    if hint.is_none() && kernels.iter().any(|k| k.language == Language::Fortran) {
        hint = Some(
            "Fortran kernels need optimisation before Enzyme (flang calls its runtime at -O0)"
                .into(),
        );
    }
    // The kernel: whose adapter or symbol the message mentions.
    let kernel = kernels
        .iter()
        .find(|k| stderr.contains(&format!("simgrad_adapt_{}", k.desc.name)))
        .or_else(|| kernels.iter().find(|k| stderr.contains(&k.desc.symbol)))
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

#[cfg(test)]
mod tests {
    use super::*;

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
