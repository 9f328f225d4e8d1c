//! Lays out an install tree of libsimgrad under a prefix, for C, C++ and Fortran users who do not
//! build with cargo:
//!
//! ```text
//! <prefix>/include/simgrad.h
//! <prefix>/lib/libsimgrad.so
//! <prefix>/lib/libsimgrad.a
//! <prefix>/lib/cmake/simgrad/simgradConfig.cmake          find_package(simgrad): simgrad::simgrad,
//! <prefix>/lib/cmake/simgrad/simgradConfigVersion.cmake   simgrad::simgrad_static, simgrad::fortran
//! <prefix>/lib/pkgconfig/simgrad.pc
//! <prefix>/share/simgrad/fortran/simgrad.f90              the Fortran module, as source
//! ```
//!
//! The Fortran module is installed as source because a compiled `.mod` file only works with the
//! compiler (and version) that wrote it; the CMake package compiles it in the consumer's build
//! (`simgrad::fortran`), and the pkg-config file names it (`fortran_module_source`).
//!
//! The templates live in `crates/simgrad-capi/cmake/` and `crates/simgrad-capi/pkgconfig/`
//! (`@NAME@` placeholders); the version comes from the installed header's `SIMGRAD_VERSION`, so
//! the package always describes the header it ships. Files are written to a temporary name and
//! renamed into place, so reinstalling over a prefix never truncates a `libsimgrad.so` that a
//! running program has mapped.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The system libraries a Rust staticlib needs on Linux (`rustc --print native-static-libs`).
const STATIC_DEPS: [&str; 7] = ["gcc_s", "util", "rt", "pthread", "m", "dl", "c"];

/// Installs libsimgrad built with cargo profile `profile` (`dev`/`debug`, `release`, or a custom
/// profile name) from the workspace `repo` into `prefix` (made absolute against the current
/// directory), creating directories as needed and replacing files already there.
///
/// Does not build: run `cargo build -p simgrad-capi` (with `--release` or `--profile`) first; a
/// missing library is an error that says so. Honours `CARGO_TARGET_DIR`.
pub fn install(repo: &Path, prefix: &Path, profile: &str) -> Result<()> {
    install_from(repo, &artifact_dir(repo, profile), prefix, profile)
}

/// [`install`] with the directory holding the built libraries given.
fn install_from(repo: &Path, lib_dir: &Path, prefix: &Path, profile: &str) -> Result<()> {
    let prefix = std::path::absolute(prefix)
        .with_context(|| format!("making the prefix {} absolute", prefix.display()))?;
    let prefix_str = prefix
        .to_str()
        .with_context(|| format!("the prefix {} is not UTF-8", prefix.display()))?;
    if prefix_str.contains(char::is_whitespace) {
        // pkg-config splits variables at whitespace and CMake lists at ';'.
        bail!("the prefix `{prefix_str}` contains whitespace, which pkg-config cannot express");
    }
    let header = repo.join("include/simgrad.h");
    let shared = lib_dir.join("libsimgrad.so");
    let static_lib = lib_dir.join("libsimgrad.a");
    let capi = repo.join("crates/simgrad-capi");
    let build_cmd = match profile {
        "dev" | "debug" => "cargo build -p simgrad-capi".to_string(),
        "release" => "cargo build -p simgrad-capi --release".to_string(),
        p => format!("cargo build -p simgrad-capi --profile {p}"),
    };
    for (file, fix) in [
        (&header, "`cargo xtask codegen` generates it".to_string()),
        (&shared, format!("run `{build_cmd}` first")),
        (&static_lib, format!("run `{build_cmd}` first")),
    ] {
        if !file.is_file() {
            bail!("{} does not exist: {fix}", file.display());
        }
    }

    let header_text = std::fs::read_to_string(&header)
        .with_context(|| format!("reading {}", header.display()))?;
    let version = header_version(&header_text).with_context(|| {
        format!(
            "no `#define SIMGRAD_VERSION \"...\"` in {}",
            header.display()
        )
    })?;
    let vars = [
        ("SIMGRAD_VERSION", version.clone()),
        ("PREFIX", prefix_str.to_string()),
        (
            "SIMGRAD_STATIC_DEPS",
            STATIC_DEPS.map(|l| format!("-l{l}")).join(" "),
        ),
        ("SIMGRAD_STATIC_DEPS_CMAKE", STATIC_DEPS.join(";")),
    ];

    let copies = [
        (header.clone(), prefix.join("include/simgrad.h")),
        (shared, prefix.join("lib/libsimgrad.so")),
        (static_lib, prefix.join("lib/libsimgrad.a")),
        (
            capi.join("fortran/simgrad.f90"),
            prefix.join("share/simgrad/fortran/simgrad.f90"),
        ),
    ];
    for (from, to) in &copies {
        let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
        write_atomic(to, &bytes)?;
    }
    let templates = [
        (
            capi.join("cmake/simgradConfig.cmake.in"),
            prefix.join("lib/cmake/simgrad/simgradConfig.cmake"),
        ),
        (
            capi.join("cmake/simgradConfigVersion.cmake.in"),
            prefix.join("lib/cmake/simgrad/simgradConfigVersion.cmake"),
        ),
        (
            capi.join("pkgconfig/simgrad.pc.in"),
            prefix.join("lib/pkgconfig/simgrad.pc"),
        ),
    ];
    for (from, to) in &templates {
        let text =
            std::fs::read_to_string(from).with_context(|| format!("reading {}", from.display()))?;
        let out = render(&text, &vars).with_context(|| format!("rendering {}", from.display()))?;
        write_atomic(to, out.as_bytes())?;
    }
    // The shared library must stay executable after the copy through a temporary file.
    set_mode(&prefix.join("lib/libsimgrad.so"), 0o755)?;

    println!(
        "installed simgrad {version} ({profile}) into {}",
        prefix.display()
    );
    for (_, to) in copies.iter().chain(templates.iter()) {
        println!("  {}", to.strip_prefix(&prefix).unwrap_or(to).display());
    }
    Ok(())
}

/// The directory cargo writes `profile`'s artifacts to (`dev` is `debug`).
fn artifact_dir(repo: &Path, profile: &str) -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo.join(dir),
        None => repo.join("target"),
    };
    target.join(match profile {
        "dev" | "debug" => "debug",
        other => other,
    })
}

/// The string of `#define SIMGRAD_VERSION "x.y.z"` in the header.
fn header_version(header: &str) -> Option<String> {
    header.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("#define SIMGRAD_VERSION ")?;
        let v = rest.trim().strip_prefix('"')?.strip_suffix('"')?;
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// Replaces every `@NAME@` of `vars` in `text`; a placeholder left over is an error, so a
/// template and this installer cannot drift apart silently.
fn render(text: &str, vars: &[(&str, String)]) -> Result<String> {
    let mut out = text.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("@{name}@"), value);
    }
    for (i, _) in out.match_indices('@') {
        let tail = &out[i + 1..];
        let name_len = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(tail.len());
        if name_len > 0 && tail[name_len..].starts_with('@') {
            bail!("unknown placeholder @{}@", &tail[..name_len]);
        }
    }
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("an install path has no parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .context("an install path has no file name")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("moving {} into place", path.display()));
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header_version() {
        let h = "#define SIMGRAD_VERSION_MAJOR 0\n#define SIMGRAD_VERSION \"0.1.0\"\n";
        assert_eq!(header_version(h).as_deref(), Some("0.1.0"));
        assert_eq!(header_version("#define SIMGRAD_VERSION_MAJOR 0\n"), None);
    }

    #[test]
    fn render_fills_placeholders_and_refuses_unknown_ones() {
        let vars = [("A_B", "x".to_string())];
        assert_eq!(render("1 @A_B@ 2", &vars).unwrap(), "1 x 2");
        assert!(render("@NOPE@", &vars).is_err());
        assert!(render("a@b.c @NOPE@", &vars).is_err());
        // An '@' that is not a placeholder (an e-mail address, CMake's "@ONLY") stays.
        assert_eq!(render("a@b.c", &vars).unwrap(), "a@b.c");
    }

    #[test]
    fn dev_profile_is_the_debug_directory() {
        if std::env::var_os("CARGO_TARGET_DIR").is_none() {
            assert_eq!(
                artifact_dir(Path::new("/r"), "dev"),
                Path::new("/r/target/debug")
            );
            assert_eq!(
                artifact_dir(Path::new("/r"), "release"),
                Path::new("/r/target/release")
            );
        }
    }

    /// Installs from a fake workspace and checks the tree, the rendered version and that no
    /// placeholder survives in the real templates.
    #[test]
    fn installs_a_complete_tree() {
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let tmp = std::env::temp_dir().join(format!("simgrad-dist-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let repo = tmp.join("repo");
        let capi = repo.join("crates/simgrad-capi");
        for sub in ["cmake", "pkgconfig", "fortran"] {
            std::fs::create_dir_all(capi.join(sub)).unwrap();
        }
        for f in [
            "cmake/simgradConfig.cmake.in",
            "cmake/simgradConfigVersion.cmake.in",
            "pkgconfig/simgrad.pc.in",
            "fortran/simgrad.f90",
        ] {
            std::fs::copy(real.join("crates/simgrad-capi").join(f), capi.join(f)).unwrap();
        }
        std::fs::create_dir_all(repo.join("include")).unwrap();
        std::fs::write(
            repo.join("include/simgrad.h"),
            "#define SIMGRAD_VERSION \"9.8.7\"\n",
        )
        .unwrap();
        let lib = repo.join("target/release");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("libsimgrad.so"), b"so").unwrap();
        std::fs::write(lib.join("libsimgrad.a"), b"a").unwrap();

        let prefix = tmp.join("prefix");
        install_from(&repo, &lib, &prefix, "release").unwrap();
        for f in [
            "include/simgrad.h",
            "lib/libsimgrad.so",
            "lib/libsimgrad.a",
            "lib/cmake/simgrad/simgradConfig.cmake",
            "lib/cmake/simgrad/simgradConfigVersion.cmake",
            "lib/pkgconfig/simgrad.pc",
            "share/simgrad/fortran/simgrad.f90",
        ] {
            assert!(prefix.join(f).is_file(), "{f} missing");
        }
        let pc = std::fs::read_to_string(prefix.join("lib/pkgconfig/simgrad.pc")).unwrap();
        assert!(pc.contains("Version: 9.8.7"), "{pc}");
        assert!(pc.contains(&format!("prefix={}", prefix.display())), "{pc}");
        let ver =
            std::fs::read_to_string(prefix.join("lib/cmake/simgrad/simgradConfigVersion.cmake"))
                .unwrap();
        assert!(ver.contains("set(PACKAGE_VERSION \"9.8.7\")"));
        // A second install over the first replaces the files.
        install_from(&repo, &lib, &prefix, "release").unwrap();

        // A missing library names the command that builds it.
        let err = install_from(&repo, &repo.join("target/debug"), &prefix, "dev")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cargo build -p simgrad-capi"), "{err}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
