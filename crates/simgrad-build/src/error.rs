//! Errors of the builder. Tool failures carry the tool's own message and the command that failed.

use crate::toolchain::ToolchainError;
use std::fmt;
use thiserror::Error;

/// Broad class of a [`BuildError`], for mapping to status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The spec is unreadable or inconsistent.
    Spec,
    /// A tool or the Enzyme plugin is missing or mismatched.
    Toolchain,
    /// A compiler or linker failed.
    Tool,
    /// Enzyme could not differentiate a kernel.
    Enzyme,
    /// The built library's derivatives failed the gradient check.
    Verify,
    /// The build cache could not be used.
    Cache,
    /// A file could not be read or written.
    Io,
}

/// Everything that can go wrong building a spec.
#[derive(Debug, Error)]
pub enum BuildError {
    /// The spec is unreadable or inconsistent.
    #[error("{}", spec_message(file, kernel, field, message))]
    Spec {
        /// Spec file.
        file: String,
        /// Kernel name, when the problem is inside one.
        kernel: Option<String>,
        /// Field path (`args.x.shape`), when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A tool or the Enzyme plugin is missing or mismatched.
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    /// A compiler, `llvm-link`, `opt` or the linker failed.
    #[error(
        "{tool} failed (exit status {status}) while {what}\n  command: {command}\n{}",
        indent(stderr)
    )]
    Tool {
        /// Tool name.
        tool: String,
        /// What the step was doing (`compiling f.c`).
        what: String,
        /// The command line.
        command: String,
        /// Exit status (or -1 when killed by a signal).
        status: i32,
        /// The tool's own output.
        stderr: String,
    },
    /// Enzyme could not differentiate a kernel.
    #[error("Enzyme could not differentiate {}: {summary}{}\n  command: {command}\n  Enzyme said:\n{}",
        kernel.as_deref().map(|k| format!("kernel `{k}`")).unwrap_or_else(|| "the library".into()),
        hint.as_deref().map(|h| format!("\n  hint: {h}")).unwrap_or_default(),
        indent(raw))]
    Enzyme {
        /// The kernel concerned, when it can be told.
        kernel: Option<String>,
        /// One readable line.
        summary: String,
        /// What to try.
        hint: Option<String>,
        /// The `opt` command.
        command: String,
        /// Enzyme's raw message, trimmed.
        raw: String,
    },
    /// The built library's derivatives failed the gradient check (`--verify`).
    #[error("the built library failed gradient verification and was not published:\n{report}")]
    Verify {
        /// The check report naming kernel, mode and error.
        report: String,
    },
    /// The build cache could not be used.
    #[error("build cache at `{path}`: {message}")]
    Cache {
        /// Cache path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{what} `{path}`: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The built library could not be loaded back.
    #[error("the built library does not load: {0}")]
    Load(#[from] simgrad_core::Error),
}

impl BuildError {
    /// The error's class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BuildError::Spec { .. } => ErrorKind::Spec,
            BuildError::Toolchain(_) => ErrorKind::Toolchain,
            BuildError::Tool { .. } | BuildError::Load(_) => ErrorKind::Tool,
            BuildError::Enzyme { .. } => ErrorKind::Enzyme,
            BuildError::Verify { .. } => ErrorKind::Verify,
            BuildError::Cache { .. } => ErrorKind::Cache,
            BuildError::Io { .. } => ErrorKind::Io,
        }
    }

    pub(crate) fn io(
        what: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> BuildError {
        BuildError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }
}

fn spec_message(
    file: &str,
    kernel: &Option<String>,
    field: &Option<String>,
    message: &str,
) -> String {
    let mut s = format!("spec `{file}`");
    if let Some(k) = kernel {
        s.push_str(&format!(", kernel `{k}`"));
    }
    if let Some(f) = field {
        s.push_str(&format!(", field `{f}`"));
    }
    s.push_str(": ");
    s.push_str(message);
    s
}

fn indent(text: &str) -> Indented<'_> {
    Indented(text)
}

struct Indented<'a>(&'a str);

impl fmt::Display for Indented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<&str> = self.0.trim_end().lines().collect();
        // A wall of IR helps nobody: keep the head and the tail.
        const KEEP: usize = 40;
        let shown: Vec<String> = if lines.len() > 2 * KEEP {
            let mut v: Vec<String> = lines[..KEEP].iter().map(|l| format!("    {l}")).collect();
            v.push(format!(
                "    ... ({} lines omitted) ...",
                lines.len() - 2 * KEEP
            ));
            v.extend(
                lines[lines.len() - KEEP..]
                    .iter()
                    .map(|l| format!("    {l}")),
            );
            v
        } else {
            lines.iter().map(|l| format!("    {l}")).collect()
        };
        f.write_str(&shown.join("\n"))
    }
}
