//! House rules of the C API crate, checked on the source text:
//!
//! * every `extern "C"` export is `#[no_mangle]`, has a `///` doc comment, and its body starts
//!   with the panic boundary `ffi_boundary!("<its own name>", ...)`;
//! * every source file starts with a `//!` module doc;
//! * no test carries the ignore attribute.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

fn src_files() -> Vec<PathBuf> {
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// One `extern "C"` function found in a source file.
struct Export {
    file: String,
    line: usize,
    name: String,
    attrs_and_docs: Vec<String>,
    /// The first characters of the body, whitespace removed.
    first_body_line: String,
}

fn exports() -> Vec<Export> {
    let mut found = Vec::new();
    for path in src_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let Some(rest) = ["pub unsafe extern \"C\" fn ", "pub extern \"C\" fn "]
                .iter()
                .find_map(|p| t.strip_prefix(p))
            else {
                continue;
            };
            let name = rest.split('(').next().unwrap().to_string();
            let mut attrs_and_docs = Vec::new();
            for prev in lines[..i].iter().rev() {
                let p = prev.trim_start();
                if p.starts_with("///") || p.starts_with("#[") {
                    attrs_and_docs.push(p.to_string());
                } else {
                    break;
                }
            }
            let open = (i..lines.len())
                .find(|&j| lines[j].trim_end().ends_with('{'))
                .unwrap_or_else(|| panic!("{}:{}: no body", path.display(), i + 1));
            // The start of the body with all whitespace removed, so rustfmt's line breaks do not
            // matter.
            let first_body_line: String = lines[open + 1..]
                .iter()
                .take(3)
                .flat_map(|l| l.chars())
                .filter(|c| !c.is_whitespace())
                .collect();
            found.push(Export {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                line: i + 1,
                name,
                attrs_and_docs,
                first_body_line,
            });
        }
    }
    found
}

#[test]
fn every_export_is_documented_unmangled_and_inside_the_panic_boundary() {
    let exports = exports();
    assert!(
        exports.len() >= 20,
        "found only {} exports; is the scan broken?",
        exports.len()
    );
    let mut problems = Vec::new();
    for e in &exports {
        let at = format!("{}:{} `{}`", e.file, e.line, e.name);
        if !e.name.starts_with("simgrad_") {
            problems.push(format!("{at}: exports must start with `simgrad_`"));
        }
        if !e.attrs_and_docs.iter().any(|l| l.starts_with("///")) {
            problems.push(format!("{at}: no `///` doc comment"));
        }
        if !e.attrs_and_docs.iter().any(|l| l == "#[no_mangle]") {
            problems.push(format!("{at}: not `#[no_mangle]`"));
        }
        let boundary = format!("ffi_boundary!(\"{}\",", e.name);
        if !e.first_body_line.starts_with(&boundary) {
            problems.push(format!(
                "{at}: the body must start with `{boundary} ...`, found `{}`",
                e.first_body_line.chars().take(60).collect::<String>()
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn no_mangle_only_on_exports() {
    // A `#[no_mangle]` item that the scan above does not see (a static, a private fn) would be
    // exported without a panic boundary or documentation.
    let exports = exports().len();
    let mut no_mangle = 0;
    for path in src_files() {
        no_mangle += std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| l.trim() == "#[no_mangle]")
            .count();
    }
    assert_eq!(
        no_mangle, exports,
        "every #[no_mangle] item must be a `pub extern \"C\" fn`"
    );
}

#[test]
fn every_source_file_has_a_module_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = src_files();
    files.extend(rust_files(&root.join("tests")));
    files.extend(rust_files(&root.join("tests/common")));
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not start with a `//!` module doc",
            path.display()
        );
    }
}

#[test]
fn no_ignored_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = src_files();
    files.extend(rust_files(&root.join("tests")));
    let needle = ["#[", "ignore"].concat();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&needle), "{} ignores a test", path.display());
    }
}
