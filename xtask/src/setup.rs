//! `cargo xtask setup`: installs or checks everything simgrad needs, idempotently.
//!
//! 1. Debian packages (LLVM 19, flang, gfortran, cmake, ninja, ...), installed with apt when
//!    missing and running as root.
//! 2. The Enzyme LLVM plugin: `SIMGRAD_ENZYME_PLUGIN` when set; else the published build in the
//!    cache; else built from the Enzyme source shipped in the `diffsl` crate and published
//!    atomically (an interrupted build resumes, because ninja resumes).
//! 3. The Python virtual environment with pinned packages, skipped when a stamp shows that
//!    `python/requirements.txt` has not changed.
//! 4. A final toolchain check (the same discovery the build uses).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fs4::fs_std::FileExt;
use xshell::{cmd, Shell};

use crate::toolchain::{self, EnzymeBuildInfo, LlvmTool, Toolchain, LLVM_MAJOR};
use crate::util::{
    self, env_non_empty, fmt_clock, run_capture, run_inherit, section, sha256_hex,
    write_if_changed, Line,
};

/// Debian packages simgrad needs (compilers, Enzyme build dependencies, test tools).
pub const APT_PACKAGES: &[&str] = &[
    "clang-19",
    "llvm-19-dev",
    "flang-19",
    "gfortran",
    "cmake",
    "ninja-build",
    "zlib1g-dev",
    "libzstd-dev",
    "python3-venv",
    "libclang-rt-19-dev",
    "valgrind",
];

/// Environment variable naming the Python virtual environment (default `<cache>/venv`).
pub const ENV_VENV: &str = "SIMGRAD_VENV";

/// The ninja target that builds the Enzyme LLVM plugin.
fn enzyme_target() -> String {
    format!("LLVMEnzyme-{LLVM_MAJOR}")
}

/// Runs every setup step, each timed.
pub fn run() -> Result<()> {
    let start = Instant::now();
    section("setup: system packages (apt)", apt)?;
    section("setup: Enzyme plugin", enzyme)?;
    section("setup: Python environment", python_env)?;
    section("setup: toolchain check", || {
        let tc = Toolchain::discover()?;
        print!("{}", indent(&tc.report()));
        Ok(())
    })?;
    println!("setup complete in {}", util::fmt_duration(start.elapsed()));
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

// ---------------------------------------------------------------------------------------------
// apt

fn apt() -> Result<()> {
    if toolchain::which("dpkg-query").is_none() {
        println!(
            "    dpkg-query not found (not a Debian-like system): not checking packages; \
             make sure the equivalents of these are installed: {}",
            APT_PACKAGES.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !apt_installed(p))
        .collect();
    if missing.is_empty() {
        println!("    all {} packages installed", APT_PACKAGES.len());
        return Ok(());
    }
    let list = missing.join(" ");
    println!("    missing: {list}");
    let uid = run_capture(Command::new("id").arg("-u")).unwrap_or_default();
    if uid.trim() != "0" {
        bail!(
            "missing Debian packages: {list}. Fix (as root): apt-get update && \
             DEBIAN_FRONTEND=noninteractive apt-get install -y {list}"
        );
    }
    let sh = Shell::new()?;
    sh.set_var("DEBIAN_FRONTEND", "noninteractive");
    cmd!(sh, "apt-get update").run()?;
    let to_install = missing.clone();
    cmd!(sh, "apt-get install -y {to_install...}").run()?;
    let still: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|p| !apt_installed(p))
        .collect();
    if !still.is_empty() {
        bail!("apt-get did not install: {}", still.join(" "));
    }
    Ok(())
}

fn apt_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).trim() == "install ok installed"
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Enzyme

fn enzyme() -> Result<()> {
    if let Some(p) = env_non_empty(toolchain::ENV_ENZYME_PLUGIN) {
        if !Path::new(&p).is_file() {
            bail!(
                "{} is set to {p}, but no file exists there. Fix: point it at an existing \
                 Enzyme plugin (LLVMEnzyme-19.so), or unset it so that setup builds one",
                toolchain::ENV_ENZYME_PLUGIN
            );
        }
        println!(
            "    using {}={p} (not building Enzyme)",
            toolchain::ENV_ENZYME_PLUGIN
        );
        return Ok(());
    }
    let installed = toolchain::cached_enzyme_plugin();
    if installed.is_file() {
        println!("    reusing {}", installed.display());
        return Ok(());
    }

    let enzyme_dir = toolchain::cache_root().join("enzyme");
    fs::create_dir_all(&enzyme_dir)
        .with_context(|| format!("cannot create {}", enzyme_dir.display()))?;
    // One builder at a time; the OS releases the lock if this process dies.
    let lock_path = enzyme_dir.join(".build.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    if !lock.try_lock_exclusive()? {
        println!(
            "    another setup is building Enzyme (lock {}); waiting for it",
            lock_path.display()
        );
        lock.lock_exclusive()?;
    }
    if installed.is_file() {
        println!("    published by another setup: {}", installed.display());
        return Ok(());
    }

    let src = section("fetch Enzyme source (crate diffsl)", fetch_enzyme_source)?;
    println!("    source: {}", src.display());
    let build_dir = enzyme_dir.join(format!(
        "build-{}",
        toolchain::enzyme_install_name(LLVM_MAJOR)
    ));
    section("configure Enzyme (cmake)", || configure(&src, &build_dir))?;
    section(
        &format!("build {} (ninja; 10 to 25 min on 2 cores)", enzyme_target()),
        || build(&build_dir),
    )?;
    section("publish plugin", || {
        publish(&src, &build_dir, &enzyme_dir, &installed)
    })?;
    drop(lock);
    Ok(())
}

/// The tiny manifest through which cargo fetches the Enzyme source.
fn source_manifest() -> String {
    format!(
        r#"[package]
name = "simgrad-enzyme-source"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
{crate_} = {{ version = "={version}", default-features = false }}
"#,
        crate_ = toolchain::ENZYME_SOURCE_CRATE,
        version = toolchain::ENZYME_SOURCE_VERSION,
    )
}

/// Fetches the `diffsl` crate with cargo and returns its `Enzyme/enzyme` directory.
fn fetch_enzyme_source() -> Result<PathBuf> {
    let dir = toolchain::cache_root().join("enzyme-src");
    let manifest = dir.join("Cargo.toml");
    write_if_changed(&manifest, source_manifest().as_bytes())?;
    let lib = dir.join("src").join("lib.rs");
    if !lib.exists() {
        write_if_changed(&lib, b"")?;
    }
    run_inherit(
        Command::new(util::cargo())
            .arg("fetch")
            .arg("--manifest-path")
            .arg(&manifest),
    )?;
    let json = run_capture(
        Command::new(util::cargo())
            .args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(&manifest),
    )?;
    let meta: serde_json::Value =
        serde_json::from_str(&json).context("cannot parse `cargo metadata` output")?;
    let pkg = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["name"] == toolchain::ENZYME_SOURCE_CRATE
                && p["version"] == toolchain::ENZYME_SOURCE_VERSION
        })
        .ok_or_else(|| {
            anyhow!(
                "cargo metadata lists no package {} {}",
                toolchain::ENZYME_SOURCE_CRATE,
                toolchain::ENZYME_SOURCE_VERSION
            )
        })?;
    let pkg_manifest = pkg["manifest_path"]
        .as_str()
        .ok_or_else(|| anyhow!("cargo metadata: package without manifest_path"))?;
    let src = Path::new(pkg_manifest)
        .parent()
        .ok_or_else(|| anyhow!("bad manifest path {pkg_manifest}"))?
        .join("Enzyme")
        .join("enzyme");
    if !src.join("CMakeLists.txt").is_file() {
        bail!(
            "{} has no CMakeLists.txt: the {} crate no longer ships Enzyme's source there",
            src.display(),
            toolchain::ENZYME_SOURCE_CRATE
        );
    }
    Ok(src)
}

/// The LLVM CMake package directory: `$SIMGRAD_LLVM_DIR/lib/cmake/llvm` or Debian's.
fn llvm_cmake_dir() -> Result<PathBuf> {
    let dir = match env_non_empty(toolchain::ENV_LLVM_DIR) {
        Some(d) => Path::new(&d).join("lib/cmake/llvm"),
        None => PathBuf::from(format!("/usr/lib/llvm-{LLVM_MAJOR}/lib/cmake/llvm")),
    };
    if !dir.join("LLVMConfig.cmake").is_file() {
        bail!(
            "{} has no LLVMConfig.cmake. Fix: install llvm-{LLVM_MAJOR}-dev (`cargo xtask setup` \
             as root does), or set {} to an LLVM {LLVM_MAJOR} installation with its CMake files",
            dir.display(),
            toolchain::ENV_LLVM_DIR
        );
    }
    Ok(dir)
}

/// Configures the build directory with CMake, unless it already is (then ninja resumes).
fn configure(src: &Path, build_dir: &Path) -> Result<()> {
    if build_dir.join("build.ninja").is_file() {
        println!(
            "    already configured ({}); ninja will resume",
            build_dir.display()
        );
        return Ok(());
    }
    fs::create_dir_all(build_dir)
        .with_context(|| format!("cannot create {}", build_dir.display()))?;
    let mut cmd = Command::new("cmake");
    cmd.current_dir(build_dir)
        .args(["-G", "Ninja"])
        .arg(src)
        .arg(format!("-DLLVM_DIR={}", llvm_cmake_dir()?.display()))
        .args(["-DENZYME_CLANG=OFF", "-DCMAKE_BUILD_TYPE=Release"]);
    println!("    $ {}", util::display_cmd(&cmd));
    let out = cmd
        .output()
        .with_context(|| "cannot run cmake (install the cmake package)")?;
    let log = build_dir.join("cmake.log");
    let mut text = out.stdout.clone();
    text.extend_from_slice(&out.stderr);
    fs::write(&log, &text).with_context(|| format!("cannot write {}", log.display()))?;
    if !out.status.success() {
        // A failed configure must not leave a build.ninja that makes the next run skip it.
        let _ = fs::remove_file(build_dir.join("build.ninja"));
        bail!(
            "cmake failed ({}); full log in {}:\n{}",
            out.status,
            log.display(),
            tail(&String::from_utf8_lossy(&text), 30)
        );
    }
    Ok(())
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Builds the plugin with ninja, streaming progress: each finished step (`[k/N]`) and, while a
/// long compile runs, a heartbeat line every 30 s.
fn build(build_dir: &Path) -> Result<()> {
    let log_path = build_dir.join("ninja.log");
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let _ = writeln!(
        log,
        "==== {} ninja {}",
        util::utc_now_rfc3339(),
        enzyme_target()
    );
    let mut cmd = Command::new("ninja");
    cmd.current_dir(build_dir).arg(enzyme_target());
    println!(
        "    $ {}   (in {})",
        util::display_cmd(&cmd),
        build_dir.display()
    );
    println!("    full log: {}", log_path.display());
    let start = Instant::now();
    let heartbeat = Duration::from_secs(30);
    let mut last_print = Instant::now();
    let mut last_progress = String::from("starting");
    let mut other: Vec<String> = Vec::new();
    let status = util::run_lines(&mut cmd, Duration::from_secs(5), |event| match event {
        Some(Line::Out(l) | Line::Err(l)) => {
            let _ = writeln!(log, "{l}");
            if let Some(progress) = ninja_progress(&l) {
                println!("    [{}] {}", fmt_clock(start.elapsed()), progress);
                last_progress = progress.split(']').next().unwrap_or("").to_string() + "]";
                last_print = Instant::now();
            } else if l.starts_with("ninja:") {
                println!("    {l}");
            } else {
                other.push(l);
            }
        }
        None => {
            if last_print.elapsed() >= heartbeat {
                println!(
                    "    [{}] still compiling (last finished step {last_progress})",
                    fmt_clock(start.elapsed())
                );
                last_print = Instant::now();
            }
        }
    })?;
    if !status.success() {
        let errors: Vec<&String> = other
            .iter()
            .filter(|l| l.contains("error") || l.starts_with("FAILED"))
            .collect();
        let shown = if errors.is_empty() {
            tail(&other.join("\n"), 30)
        } else {
            errors
                .iter()
                .take(30)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        };
        bail!(
            "ninja {} failed ({status}); full log in {}. Rerun `cargo xtask setup` to resume \
             after fixing the cause:\n{shown}",
            enzyme_target(),
            log_path.display()
        );
    }
    Ok(())
}

/// Shortens a ninja status line `[k/N] Building CXX object Enzyme/CMakeFiles/X.dir/Foo.cpp.o` to
/// `[k/N] Foo.cpp`; `None` for other lines.
fn ninja_progress(line: &str) -> Option<String> {
    let rest = line.strip_prefix('[')?;
    let (counts, desc) = rest.split_once("] ")?;
    let (k, n) = counts.split_once('/')?;
    if !k.chars().all(|c| c.is_ascii_digit()) || !n.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let short = match desc.rsplit_once(' ') {
        Some((verb, target)) if verb.starts_with("Building") => {
            let file = target.rsplit('/').next().unwrap_or(target);
            file.strip_suffix(".o").unwrap_or(file).to_string()
        }
        _ => desc.to_string(),
    };
    Some(format!("[{k}/{n}] {short}"))
}

/// Reads `ENZYME_{MAJOR,MINOR,PATCH}_VERSION` from Enzyme's CMakeLists.txt.
fn enzyme_version(src: &Path) -> Result<String> {
    let text = fs::read_to_string(src.join("CMakeLists.txt"))?;
    let get = |name: &str| -> Option<String> {
        let needle = format!("set({name} ");
        let line = text.lines().find(|l| l.trim_start().starts_with(&needle))?;
        let value = line.trim_start()[needle.len()..]
            .trim()
            .trim_end_matches(')');
        Some(value.trim().to_string())
    };
    match (
        get("ENZYME_MAJOR_VERSION"),
        get("ENZYME_MINOR_VERSION"),
        get("ENZYME_PATCH_VERSION"),
    ) {
        (Some(a), Some(b), Some(c)) => Ok(format!("{a}.{b}.{c}")),
        _ => bail!(
            "no ENZYME_*_VERSION in {}",
            src.join("CMakeLists.txt").display()
        ),
    }
}

/// Copies the plugin and its BUILD_INFO.json into a staging directory, checks that it loads, and
/// renames the staging directory to the install directory. Only that final rename installs it.
fn publish(src: &Path, build_dir: &Path, enzyme_dir: &Path, installed: &Path) -> Result<()> {
    let file_name = toolchain::enzyme_plugin_file_name(LLVM_MAJOR);
    let built = build_dir.join("Enzyme").join(&file_name);
    if !built.is_file() {
        bail!("ninja succeeded but {} does not exist", built.display());
    }
    let final_dir = installed
        .parent()
        .ok_or_else(|| anyhow!("bad install path"))?;
    let staging = enzyme_dir.join(format!(
        ".staging-{}-{}",
        toolchain::enzyme_install_name(LLVM_MAJOR),
        std::process::id()
    ));
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir_all(&staging)?;
    let result = (|| -> Result<()> {
        let staged = staging.join(&file_name);
        fs::copy(&built, &staged)
            .with_context(|| format!("cannot copy {} to {}", built.display(), staged.display()))?;
        File::open(&staged)?.sync_all()?;

        let opt = toolchain::find_tool(LlvmTool::Opt)?;
        toolchain::check_plugin(&staged, &opt.path, &opt.version, LLVM_MAJOR, true)?;
        println!("    loads into {} ({})", opt.path.display(), opt.version);

        let info = EnzymeBuildInfo {
            source_crate: toolchain::ENZYME_SOURCE_CRATE.to_string(),
            source_version: toolchain::ENZYME_SOURCE_VERSION.to_string(),
            enzyme_version: enzyme_version(src)?,
            llvm_version: opt.version.clone(),
            llvm_major: LLVM_MAJOR,
            built_at: util::utc_now_rfc3339(),
            plugin_file: file_name.clone(),
            sha256: toolchain::file_sha256(&staged)?,
        };
        let info_path = staging.join(toolchain::BUILD_INFO_FILE);
        let mut f = File::create(&info_path)?;
        f.write_all(serde_json::to_string_pretty(&info)?.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        println!(
            "    Enzyme {} for LLVM {}, sha256 {}",
            info.enzyme_version, info.llvm_version, info.sha256
        );
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    match fs::rename(&staging, final_dir) {
        Ok(()) => {}
        Err(_) if installed.is_file() => {
            // Someone else published first; theirs is complete, keep it.
            let _ = fs::remove_dir_all(&staging);
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e).with_context(|| format!("cannot publish {}", final_dir.display()));
        }
    }
    if let Ok(d) = File::open(enzyme_dir) {
        let _ = d.sync_all();
    }
    println!("    installed {}", installed.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Python

/// The Python virtual environment directory: `$SIMGRAD_VENV` or `<cache>/venv`.
pub fn venv_dir() -> PathBuf {
    env_non_empty(ENV_VENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| toolchain::cache_root().join("venv"))
}

/// The venv's Python interpreter.
pub fn venv_python() -> PathBuf {
    venv_dir().join("bin").join("python")
}

fn python_env() -> Result<()> {
    let root = util::workspace_root();
    let venv = venv_dir();
    let python = venv_python();
    let sh = Shell::new()?;
    if !python.exists() {
        let python3 = "python3";
        cmd!(sh, "{python3} -m venv {venv}")
            .run()
            .with_context(|| {
                "cannot create the virtual environment (install python3-venv)".to_string()
            })?;
    } else {
        println!("    venv: {}", venv.display());
    }

    let req = root.join("python").join("requirements.txt");
    let req_bytes = fs::read(&req).with_context(|| format!("cannot read {}", req.display()))?;
    let stamp = venv.join(".simgrad-requirements.sha256");
    let want = sha256_hex(&req_bytes);
    if fs::read_to_string(&stamp).ok().as_deref().map(str::trim) == Some(want.as_str()) {
        println!("    requirements unchanged (stamp matches): skipping pip install");
    } else {
        println!(
            "    installing the pinned packages of {} (several minutes the first time)",
            req.display()
        );
        cmd!(
            sh,
            "{python} -m pip install --quiet --disable-pip-version-check -r {req}"
        )
        .run()?;
        fs::write(&stamp, format!("{want}\n"))?;
    }

    let pkg = root.join("crates").join("simgrad-python");
    let pyproject = pkg.join("pyproject.toml");
    if pyproject.is_file() {
        let mut key = pkg.display().to_string().into_bytes();
        key.extend(fs::read(&pyproject)?);
        let want = sha256_hex(&key);
        let stamp = venv.join(".simgrad-python-editable.sha256");
        if fs::read_to_string(&stamp).ok().as_deref().map(str::trim) == Some(want.as_str()) {
            println!("    simgrad-python already installed in editable mode (stamp matches)");
        } else {
            cmd!(
                sh,
                "{python} -m pip install --disable-pip-version-check --no-deps --no-build-isolation -e {pkg}"
            )
            .run()?;
            fs::write(&stamp, format!("{want}\n"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninja_progress_lines() {
        assert_eq!(
            ninja_progress(
                "[21/39] Building CXX object Enzyme/CMakeFiles/LLVMEnzyme-19.dir/CallDerivatives.cpp.o"
            )
            .as_deref(),
            Some("[21/39] CallDerivatives.cpp")
        );
        assert_eq!(
            ninja_progress("[39/39] Linking CXX shared module Enzyme/LLVMEnzyme-19.so").as_deref(),
            Some("[39/39] Linking CXX shared module Enzyme/LLVMEnzyme-19.so")
        );
        assert_eq!(ninja_progress("In file included from x.h:3:"), None);
        assert_eq!(ninja_progress("[a/b] x"), None);
    }

    #[test]
    fn source_manifest_pins_the_crate() {
        let m = source_manifest();
        assert!(m.contains("diffsl = { version = \"=0.12.5\", default-features = false }"));
        assert!(m.contains("[workspace]"));
    }
}
