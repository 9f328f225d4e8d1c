//! Discovery of the LLVM toolchain and the Enzyme plugin that simgrad compiles kernels with.
//!
//! simgrad drives five LLVM tools (`clang`, `clang++`, `flang`, `llvm-link`, `opt`) and one LLVM
//! pass plugin, Enzyme (`LLVMEnzyme-<major>.so`). They must all come from the same LLVM major
//! version: a plugin built for another LLVM either fails to load or, worse, crashes `opt`. This
//! module finds them, checks that they agree, and reports every problem as a [`ToolchainError`]
//! whose message names the missing tool or variable, the path that was looked at, and the fix.
//!
//! # Discovery order
//!
//! LLVM tools:
//! 1. [`DiscoverOptions::llvm_dir`] (an explicit option from the caller),
//! 2. the `SIMGRAD_LLVM_DIR` environment variable: a directory containing `bin/clang`,
//!    `bin/clang++`, `bin/flang-new` (or `bin/flang`), `bin/llvm-link` and `bin/opt`,
//! 3. `/usr/lib/llvm-19/bin` (Debian and Ubuntu packages),
//! 4. the versioned names `clang-19`, `clang++-19`, `flang-new-19`, `llvm-link-19`, `opt-19` on
//!    `PATH`.
//!
//! When a directory is given (steps 1 and 2) it is the only place searched, so that a
//! misconfigured override is an error instead of a silent fallback.
//!
//! Enzyme plugin:
//! 1. [`DiscoverOptions::enzyme_plugin`],
//! 2. the `SIMGRAD_ENZYME_PLUGIN` environment variable (a path to the plugin file; set but missing
//!    is an error naming the variable and the path),
//! 3. the plugin that `cargo xtask setup` built and published in the cache
//!    ([`cached_enzyme_plugin`]),
//! 4. standard install locations (`/usr/local/lib`, `/usr/lib`, `/usr/lib/llvm-<major>/lib`,
//!    `/opt/homebrew/lib`).
//!
//! # Checks
//!
//! * every tool runs and reports a parseable `--version`, and all report the same LLVM major;
//! * the plugin's file name, when it has the conventional form `LLVMEnzyme-<major>.so`, names the
//!   same major as `opt`;
//! * the plugin actually loads: `opt -load-pass-plugin=PLUGIN -passes=enzyme -disable-output` on a
//!   trivial module. The loader's own message is reported when it does not.
//!
//! Results that need a process or a file hash (tool versions, the load test, the plugin's SHA-256)
//! are cached in-process, keyed by path, modification time and size, so repeated discovery is cheap.

use std::collections::HashMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The LLVM major version simgrad targets and `cargo xtask setup` builds Enzyme for.
pub const LLVM_MAJOR: u32 = 19;
/// The crate (from the crate registry) whose source ships Enzyme, in `Enzyme/enzyme/`.
pub const ENZYME_SOURCE_CRATE: &str = "diffsl";
/// The exact version of [`ENZYME_SOURCE_CRATE`] that `cargo xtask setup` builds Enzyme from.
pub const ENZYME_SOURCE_VERSION: &str = "0.12.5";
/// Environment variable: path to an Enzyme LLVM plugin file to use instead of the cached one.
pub const ENV_ENZYME_PLUGIN: &str = "SIMGRAD_ENZYME_PLUGIN";
/// Environment variable: an LLVM installation directory (the one containing `bin/clang`).
pub const ENV_LLVM_DIR: &str = "SIMGRAD_LLVM_DIR";
/// Environment variable: the cache root (default `~/.cache/simgrad`).
pub const ENV_CACHE_DIR: &str = "SIMGRAD_CACHE_DIR";
/// Environment variable: when set (to anything but empty, `0` or `false`), tests that need Enzyme
/// must fail instead of skipping when it is missing. `cargo xtask ci` sets it.
pub const ENV_REQUIRE_ENZYME: &str = "SIMGRAD_REQUIRE_ENZYME";
/// Name of the metadata file published next to a plugin built by `cargo xtask setup`.
pub const BUILD_INFO_FILE: &str = "BUILD_INFO.json";

/// The fix printed when LLVM tools are missing.
const LLVM_FIX: &str =
    "install LLVM 19 (`cargo xtask setup` installs the Debian packages clang-19 \
                        llvm-19-dev flang-19), or set SIMGRAD_LLVM_DIR to an LLVM 19 installation \
                        (the directory containing bin/clang)";
/// The fix printed when the Enzyme plugin is missing or unusable.
const PLUGIN_FIX: &str = "run `cargo xtask setup` to build the Enzyme plugin for LLVM 19 into the \
                          cache, or set SIMGRAD_ENZYME_PLUGIN to an existing LLVMEnzyme-19.so";

/// The root of simgrad's per-user cache: `$SIMGRAD_CACHE_DIR` when set and non-empty, else
/// `$HOME/.cache/simgrad` (the system temporary directory stands in for a missing `$HOME`).
pub fn cache_root() -> PathBuf {
    if let Some(dir) = non_empty_env(ENV_CACHE_DIR) {
        return PathBuf::from(dir);
    }
    let home = non_empty_env("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(env::temp_dir);
    home.join(".cache").join("simgrad")
}

/// The name of the cache directory holding the Enzyme plugin built for LLVM `llvm_major`, e.g.
/// `diffsl-0.12.5-llvm19`.
pub fn enzyme_install_name(llvm_major: u32) -> String {
    format!("{ENZYME_SOURCE_CRATE}-{ENZYME_SOURCE_VERSION}-llvm{llvm_major}")
}

/// The directory a published Enzyme build for LLVM `llvm_major` lives in:
/// `<cache_root>/enzyme/diffsl-0.12.5-llvm<major>/`. Only a complete build is ever renamed to
/// this path, so its existence means the build is installed.
pub fn enzyme_install_dir(llvm_major: u32) -> PathBuf {
    cache_root()
        .join("enzyme")
        .join(enzyme_install_name(llvm_major))
}

/// The conventional file name of the Enzyme LLVM plugin: `LLVMEnzyme-<major>.so` (`.dylib` on
/// macOS).
pub fn enzyme_plugin_file_name(llvm_major: u32) -> String {
    format!("LLVMEnzyme-{llvm_major}{}", env::consts::DLL_SUFFIX)
}

/// Where `cargo xtask setup` publishes the Enzyme plugin for LLVM 19:
/// `<cache_root>/enzyme/diffsl-0.12.5-llvm19/LLVMEnzyme-19.so`.
pub fn cached_enzyme_plugin() -> PathBuf {
    cached_enzyme_plugin_for(LLVM_MAJOR)
}

/// Like [`cached_enzyme_plugin`], for another LLVM major version.
pub fn cached_enzyme_plugin_for(llvm_major: u32) -> PathBuf {
    enzyme_install_dir(llvm_major).join(enzyme_plugin_file_name(llvm_major))
}

/// Whether `SIMGRAD_REQUIRE_ENZYME` asks tests to fail (not skip) when Enzyme is unavailable.
pub fn enzyme_required() -> bool {
    match env::var(ENV_REQUIRE_ENZYME) {
        Ok(v) => !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        ),
        Err(_) => false,
    }
}

/// For tests that need Enzyme: the toolchain, or `None` after printing why the test is skipped.
/// When `SIMGRAD_REQUIRE_ENZYME` is set (as `cargo xtask ci` does) a missing toolchain panics
/// instead, so CI can never pass by skipping.
pub fn toolchain_or_skip() -> Option<Toolchain> {
    match Toolchain::discover() {
        Ok(tc) => Some(tc),
        Err(e) if enzyme_required() => {
            panic!("SIMGRAD_REQUIRE_ENZYME is set but the toolchain is unusable: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: no Enzyme toolchain: {e}");
            None
        }
    }
}

/// Everything that can go wrong while discovering the toolchain. Each message names what is
/// missing or wrong, where it was looked for, and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    /// A tool was not found in any of the searched places.
    #[error("{tool} not found; looked at: {searched}. Fix: {fix}", fix = LLVM_FIX)]
    ToolNotFound {
        /// The tool, e.g. `clang++`.
        tool: String,
        /// The paths or names that were tried, comma-separated.
        searched: String,
    },
    /// An LLVM directory was given (option or environment variable) but does not exist.
    #[error("{origin} is set to {}, but that directory does not exist. Fix: point it at an LLVM \
             installation (the directory containing bin/clang, bin/opt, ...) or unset it",
            dir.display())]
    LlvmDirMissing {
        /// `SIMGRAD_LLVM_DIR` or the option that named the directory.
        origin: String,
        /// The directory.
        dir: PathBuf,
    },
    /// An LLVM directory was given but lacks one of the tools.
    #[error("{origin} is set to {}, but {tool} is not there (looked at: {searched}). Fix: point \
             {origin} at a complete LLVM installation with clang, clang++, flang, llvm-link and \
             opt in bin/, or unset it", dir.display())]
    LlvmDirToolMissing {
        /// `SIMGRAD_LLVM_DIR` or the option that named the directory.
        origin: String,
        /// The directory.
        dir: PathBuf,
        /// The missing tool.
        tool: String,
        /// The paths that were tried, comma-separated.
        searched: String,
    },
    /// A tool exists but could not be run, or exited with an error for `--version`.
    #[error("{tool} at {} could not report its version: {message}. Fix: reinstall it or point \
             SIMGRAD_LLVM_DIR at a working LLVM installation", path.display())]
    ToolFailed {
        /// The tool.
        tool: String,
        /// Its path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A tool's `--version` output has no recognisable version number.
    #[error("could not find a version number in the output of `{} --version` ({tool}): {output:?}",
            path.display())]
    VersionUnparsed {
        /// The tool.
        tool: String,
        /// Its path.
        path: PathBuf,
        /// The first line of its output.
        output: String,
    },
    /// The tools do not all come from the same LLVM major version.
    #[error("{tool} at {} is LLVM {found}, but opt at {} is LLVM {expected}; all tools must come \
             from one LLVM. Fix: {fix}", path.display(), opt.display(), fix = LLVM_FIX)]
    LlvmVersionMismatch {
        /// The tool whose version disagrees with `opt`.
        tool: String,
        /// Its path.
        path: PathBuf,
        /// Its full version.
        found: String,
        /// `opt`'s full version.
        expected: String,
        /// `opt`'s path.
        opt: PathBuf,
    },
    /// `SIMGRAD_ENZYME_PLUGIN` (or the explicit option) names a file that does not exist.
    #[error("{origin} is set to {}, but no file exists there. Fix: point {origin} at an existing \
             Enzyme plugin (LLVMEnzyme-19.so), or unset it to use the plugin built by \
             `cargo xtask setup`", path.display())]
    PluginPathMissing {
        /// `SIMGRAD_ENZYME_PLUGIN` or the option that named the file.
        origin: String,
        /// The path it names.
        path: PathBuf,
    },
    /// No Enzyme plugin was found anywhere.
    #[error("Enzyme plugin for LLVM {llvm_major} not found; looked at: {searched}. Fix: {fix}",
            fix = PLUGIN_FIX)]
    PluginNotFound {
        /// The LLVM major version of the toolchain.
        llvm_major: u32,
        /// The paths that were tried, comma-separated.
        searched: String,
    },
    /// The plugin's file name says it was built for another LLVM major version.
    #[error("Enzyme plugin {} was built for LLVM {plugin_major}, toolchain is LLVM {llvm_major} \
             (opt {llvm_version}). Fix: {fix}", plugin.display(), fix = PLUGIN_FIX)]
    PluginLlvmMismatch {
        /// The plugin.
        plugin: PathBuf,
        /// The LLVM major in its file name.
        plugin_major: u32,
        /// The toolchain's LLVM major.
        llvm_major: u32,
        /// The toolchain's full LLVM version.
        llvm_version: String,
    },
    /// `opt` could not load the plugin or run its `enzyme` pass.
    #[error("Enzyme plugin {} does not load into {} (LLVM {llvm_version}): {message}\nFix: \
             {fix}", plugin.display(), opt.display(), fix = PLUGIN_FIX)]
    PluginLoadFailed {
        /// The plugin.
        plugin: PathBuf,
        /// The `opt` used for the test.
        opt: PathBuf,
        /// `opt`'s version.
        llvm_version: String,
        /// The loader's message.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// The LLVM tools simgrad runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LlvmTool {
    /// The C compiler.
    Clang,
    /// The C++ compiler.
    ClangXX,
    /// The Fortran compiler (`flang-new` in LLVM 19, `flang` later).
    Flang,
    /// The bitcode linker.
    LlvmLink,
    /// The optimiser that runs the Enzyme pass.
    Opt,
}

impl LlvmTool {
    /// All tools, in the order they are reported.
    pub const ALL: [LlvmTool; 5] = [
        LlvmTool::Clang,
        LlvmTool::ClangXX,
        LlvmTool::Flang,
        LlvmTool::LlvmLink,
        LlvmTool::Opt,
    ];

    /// The tool's usual name, e.g. `clang++`.
    pub fn name(self) -> &'static str {
        match self {
            LlvmTool::Clang => "clang",
            LlvmTool::ClangXX => "clang++",
            LlvmTool::Flang => "flang",
            LlvmTool::LlvmLink => "llvm-link",
            LlvmTool::Opt => "opt",
        }
    }

    /// File names to try inside an LLVM `bin/` directory.
    fn dir_names(self) -> &'static [&'static str] {
        match self {
            LlvmTool::Clang => &["clang"],
            LlvmTool::ClangXX => &["clang++"],
            LlvmTool::Flang => &["flang-new", "flang"],
            LlvmTool::LlvmLink => &["llvm-link"],
            LlvmTool::Opt => &["opt"],
        }
    }

    /// Versioned names to try on `PATH`, e.g. `clang-19`.
    fn path_names(self, major: u32) -> Vec<String> {
        self.dir_names()
            .iter()
            .map(|n| format!("{n}-{major}"))
            .collect()
    }
}

/// One located tool and the version it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// The tool's name, e.g. `clang++`.
    pub name: String,
    /// Where it was found.
    pub path: PathBuf,
    /// Its version number, e.g. `19.1.7`.
    pub version: String,
    /// The line of its `--version` output that carries the version, e.g.
    /// `Debian clang version 19.1.7 (3~deb12u1)`. Distinguishes vendor builds of one version.
    pub version_line: String,
}

impl ToolInfo {
    /// The major version, e.g. 19.
    pub fn major(&self) -> Option<u32> {
        version_major(&self.version)
    }
}

/// Where the Enzyme plugin was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PluginSource {
    /// Given by the caller in [`DiscoverOptions::enzyme_plugin`].
    Explicit,
    /// From the `SIMGRAD_ENZYME_PLUGIN` environment variable.
    Env,
    /// Built and published by `cargo xtask setup` in the cache.
    Cache,
    /// A standard install location.
    System,
}

impl PluginSource {
    /// A short description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            PluginSource::Explicit => "explicit option",
            PluginSource::Env => "SIMGRAD_ENZYME_PLUGIN",
            PluginSource::Cache => "cache (cargo xtask setup)",
            PluginSource::System => "system install",
        }
    }
}

/// Metadata written by `cargo xtask setup` next to the plugin it publishes, as
/// [`BUILD_INFO_FILE`]. Only `enzyme_version` is read back by discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnzymeBuildInfo {
    /// The crate whose source provided Enzyme (`diffsl`).
    pub source_crate: String,
    /// Its version (`0.12.5`).
    pub source_version: String,
    /// Enzyme's own version, from `ENZYME_{MAJOR,MINOR,PATCH}_VERSION` in its `CMakeLists.txt`.
    pub enzyme_version: String,
    /// The full LLVM version the plugin was built against.
    pub llvm_version: String,
    /// The LLVM major version the plugin was built against.
    pub llvm_major: u32,
    /// When the build was published, UTC, RFC 3339.
    pub built_at: String,
    /// The plugin's file name.
    pub plugin_file: String,
    /// The SHA-256 of the plugin file, lowercase hex.
    pub sha256: String,
}

/// Caller overrides for [`Toolchain::discover_with`]. They take precedence over the environment.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Use this Enzyme plugin file.
    pub enzyme_plugin: Option<PathBuf>,
    /// Use the LLVM tools in `<llvm_dir>/bin`.
    pub llvm_dir: Option<PathBuf>,
    /// Skip the `opt -load-pass-plugin` load test (the file-name check still runs).
    pub skip_load_test: bool,
}

/// A complete, consistent toolchain: LLVM tools of one major version and an Enzyme plugin that
/// loads into their `opt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toolchain {
    /// The C compiler.
    pub clang: PathBuf,
    /// The C++ compiler.
    pub clangxx: PathBuf,
    /// The Fortran compiler.
    pub flang: PathBuf,
    /// The bitcode linker.
    pub llvm_link: PathBuf,
    /// The optimiser that runs the Enzyme pass.
    pub opt: PathBuf,
    /// The Enzyme LLVM pass plugin.
    pub enzyme_plugin: PathBuf,
    /// Where the plugin was found.
    pub enzyme_plugin_source: PluginSource,
    /// The SHA-256 of the plugin file, lowercase hex.
    pub enzyme_plugin_sha256: String,
    /// The full LLVM version reported by `opt`, e.g. `19.1.7`.
    pub llvm_version: String,
    /// The LLVM major version, e.g. 19.
    pub llvm_major: u32,
    /// Enzyme's version, when the plugin has a [`BUILD_INFO_FILE`] next to it.
    pub enzyme_version: Option<String>,
    /// Every LLVM tool with its version, in [`LlvmTool::ALL`] order.
    pub tools: Vec<ToolInfo>,
}

impl Toolchain {
    /// Finds and checks the toolchain using the environment and the default search paths. See the
    /// [module documentation](self) for the order.
    pub fn discover() -> Result<Toolchain, ToolchainError> {
        Self::discover_with(&DiscoverOptions::default())
    }

    /// Like [`Toolchain::discover`], with caller overrides that take precedence over the
    /// environment.
    pub fn discover_with(opts: &DiscoverOptions) -> Result<Toolchain, ToolchainError> {
        let llvm_dir = llvm_dir_override(opts)?;
        let dir_ref = llvm_dir.as_ref().map(|(o, d)| (o.as_str(), d.as_path()));
        let mut tools = Vec::with_capacity(LlvmTool::ALL.len());
        for tool in LlvmTool::ALL {
            tools.push(locate_tool(tool, dir_ref, LLVM_MAJOR)?);
        }
        let opt = tools[4].clone();
        let llvm_major = opt.major().ok_or_else(|| ToolchainError::VersionUnparsed {
            tool: opt.name.clone(),
            path: opt.path.clone(),
            output: opt.version_line.clone(),
        })?;
        for t in &tools {
            if t.major() != Some(llvm_major) {
                return Err(ToolchainError::LlvmVersionMismatch {
                    tool: t.name.clone(),
                    path: t.path.clone(),
                    found: t.version.clone(),
                    expected: opt.version.clone(),
                    opt: opt.path.clone(),
                });
            }
        }

        let (plugin, source) = find_enzyme_plugin(opts.enzyme_plugin.as_deref(), llvm_major)?;
        check_plugin(
            &plugin,
            &opt.path,
            &opt.version,
            llvm_major,
            !opts.skip_load_test,
        )?;
        let sha = file_sha256_cached(&plugin).map_err(|source| ToolchainError::Io {
            path: plugin.clone(),
            source,
        })?;
        let enzyme_version = plugin
            .parent()
            .and_then(|d| read_build_info_field(d, "enzyme_version"));

        Ok(Toolchain {
            clang: tools[0].path.clone(),
            clangxx: tools[1].path.clone(),
            flang: tools[2].path.clone(),
            llvm_link: tools[3].path.clone(),
            opt: opt.path.clone(),
            enzyme_plugin: plugin,
            enzyme_plugin_source: source,
            enzyme_plugin_sha256: sha,
            llvm_version: opt.version.clone(),
            llvm_major,
            enzyme_version,
            tools,
        })
    }

    /// A SHA-256 (lowercase hex) over every tool's version line and the plugin's content hash:
    /// a build-cache key component that changes whenever a tool or the plugin changes. Tool paths
    /// are deliberately left out: the same compiler reached through two paths gives the same key.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"simgrad-toolchain-fingerprint-v1\n");
        for t in &self.tools {
            h.update(format!("{}\t{}\n", t.name, t.version_line).as_bytes());
        }
        h.update(format!("enzyme-plugin\t{}\n", self.enzyme_plugin_sha256).as_bytes());
        hex(&h.finalize())
    }

    /// Every tool and the plugin with its version, for reports such as `cargo xtask doctor`. The
    /// plugin's entry has name `enzyme`, its Enzyme version (or `unknown`), and a version line
    /// saying which LLVM it was built for.
    pub fn versions(&self) -> Vec<ToolInfo> {
        let mut v = self.tools.clone();
        v.push(ToolInfo {
            name: "enzyme".to_string(),
            path: self.enzyme_plugin.clone(),
            version: self
                .enzyme_version
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
            version_line: format!(
                "Enzyme plugin for LLVM {} ({}), sha256 {}",
                self.llvm_major,
                self.enzyme_plugin_source.describe(),
                self.enzyme_plugin_sha256
            ),
        });
        v
    }

    /// A human-readable multi-line report of [`Toolchain::versions`] and the fingerprint.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for t in self.versions() {
            let _ = writeln!(s, "{:<10} {:<10} {}", t.name, t.version, t.path.display());
        }
        let _ = writeln!(s, "{:<10} {}", "fingerprint", self.fingerprint());
        s
    }
}

/// The LLVM directory override, from the option or `SIMGRAD_LLVM_DIR`, with its origin.
fn llvm_dir_override(opts: &DiscoverOptions) -> Result<Option<(String, PathBuf)>, ToolchainError> {
    let found = match &opts.llvm_dir {
        Some(d) => Some(("the llvm_dir option".to_string(), d.clone())),
        None => non_empty_env(ENV_LLVM_DIR).map(|d| (ENV_LLVM_DIR.to_string(), PathBuf::from(d))),
    };
    if let Some((origin, dir)) = &found {
        if !dir.is_dir() {
            return Err(ToolchainError::LlvmDirMissing {
                origin: origin.clone(),
                dir: dir.clone(),
            });
        }
    }
    Ok(found)
}

/// Finds one LLVM tool the way [`Toolchain::discover`] does (honouring `SIMGRAD_LLVM_DIR`) and
/// runs it for its version. Useful for reports that list each tool even when another is missing.
pub fn find_tool(tool: LlvmTool) -> Result<ToolInfo, ToolchainError> {
    let dir = llvm_dir_override(&DiscoverOptions::default())?;
    locate_tool(
        tool,
        dir.as_ref().map(|(o, d)| (o.as_str(), d.as_path())),
        LLVM_MAJOR,
    )
}

fn locate_tool(
    tool: LlvmTool,
    llvm_dir: Option<(&str, &Path)>,
    major: u32,
) -> Result<ToolInfo, ToolchainError> {
    let mut searched = Vec::new();
    let path = if let Some((origin, dir)) = llvm_dir {
        let found = tool
            .dir_names()
            .iter()
            .map(|n| dir.join("bin").join(n))
            .find(|p| {
                searched.push(p.display().to_string());
                is_executable(p)
            });
        found.ok_or_else(|| ToolchainError::LlvmDirToolMissing {
            origin: origin.to_string(),
            dir: dir.to_path_buf(),
            tool: tool.name().to_string(),
            searched: searched.join(", "),
        })?
    } else {
        let std_dir = PathBuf::from(format!("/usr/lib/llvm-{major}/bin"));
        let mut found = tool.dir_names().iter().map(|n| std_dir.join(n)).find(|p| {
            searched.push(p.display().to_string());
            is_executable(p)
        });
        if found.is_none() {
            for name in tool.path_names(major) {
                searched.push(format!("{name} on PATH"));
                if let Some(p) = which(&name) {
                    found = Some(p);
                    break;
                }
            }
        }
        found.ok_or_else(|| ToolchainError::ToolNotFound {
            tool: tool.name().to_string(),
            searched: searched.join(", "),
        })?
    };
    tool_version(tool.name(), &path)
}

/// Runs `path --version` (cached per path, mtime and size) and parses the version.
fn tool_version(name: &str, path: &Path) -> Result<ToolInfo, ToolchainError> {
    static CACHE: OnceLock<Mutex<HashMap<FileKey, (String, String)>>> = OnceLock::new();
    let key = file_key(path).map_err(|source| ToolchainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let cache = CACHE.get_or_init(Default::default);
    if let Some((version, line)) = lock(cache).get(&key).cloned() {
        return Ok(ToolInfo {
            name: name.to_string(),
            path: path.to_path_buf(),
            version,
            version_line: line,
        });
    }
    let out = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ToolchainError::ToolFailed {
            tool: name.to_string(),
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(ToolchainError::ToolFailed {
            tool: name.to_string(),
            path: path.to_path_buf(),
            message: format!("exit status {}: {}", out.status, text.trim()),
        });
    }
    let (version, line) =
        parse_llvm_version(&text).ok_or_else(|| ToolchainError::VersionUnparsed {
            tool: name.to_string(),
            path: path.to_path_buf(),
            output: text.lines().next().unwrap_or("").to_string(),
        })?;
    lock(cache).insert(key, (version.clone(), line.clone()));
    Ok(ToolInfo {
        name: name.to_string(),
        path: path.to_path_buf(),
        version,
        version_line: line,
    })
}

/// Finds the Enzyme plugin for LLVM `llvm_major`: the explicit path, then
/// `SIMGRAD_ENZYME_PLUGIN`, then the cache, then standard install locations. A path given
/// explicitly or through the environment must exist; it is never silently skipped.
pub fn find_enzyme_plugin(
    explicit: Option<&Path>,
    llvm_major: u32,
) -> Result<(PathBuf, PluginSource), ToolchainError> {
    let given = match explicit {
        Some(p) => Some((
            "the enzyme_plugin option",
            p.to_path_buf(),
            PluginSource::Explicit,
        )),
        None => non_empty_env(ENV_ENZYME_PLUGIN)
            .map(|p| (ENV_ENZYME_PLUGIN, PathBuf::from(p), PluginSource::Env)),
    };
    if let Some((origin, path, source)) = given {
        if !path.is_file() {
            return Err(ToolchainError::PluginPathMissing {
                origin: origin.to_string(),
                path,
            });
        }
        return Ok((path, source));
    }
    let file = enzyme_plugin_file_name(llvm_major);
    let mut candidates = vec![(cached_enzyme_plugin_for(llvm_major), PluginSource::Cache)];
    for dir in [
        "/usr/local/lib".to_string(),
        "/usr/lib".to_string(),
        format!("/usr/lib/llvm-{llvm_major}/lib"),
        "/opt/homebrew/lib".to_string(),
    ] {
        candidates.push((Path::new(&dir).join(&file), PluginSource::System));
    }
    if let Some((p, s)) = candidates.iter().find(|(p, _)| p.is_file()) {
        return Ok((p.clone(), *s));
    }
    Err(ToolchainError::PluginNotFound {
        llvm_major,
        searched: format!(
            "{} (unset), {}",
            ENV_ENZYME_PLUGIN,
            candidates
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// Checks that `plugin` fits an `opt` of LLVM `llvm_major`: by its file name and, when `load_test`
/// is true, by loading it (the result is cached per `opt`, plugin path, mtime and size).
pub fn check_plugin(
    plugin: &Path,
    opt: &Path,
    llvm_version: &str,
    llvm_major: u32,
    load_test: bool,
) -> Result<(), ToolchainError> {
    if let Some(plugin_major) = plugin_llvm_major(plugin) {
        if plugin_major != llvm_major {
            return Err(ToolchainError::PluginLlvmMismatch {
                plugin: plugin.to_path_buf(),
                plugin_major,
                llvm_major,
                llvm_version: llvm_version.to_string(),
            });
        }
    }
    if !load_test {
        return Ok(());
    }
    /// Load-test results per (`opt`, plugin file identity).
    type LoadCache = Mutex<HashMap<(PathBuf, FileKey), Result<(), String>>>;
    static CACHE: OnceLock<LoadCache> = OnceLock::new();
    let key = (
        opt.to_path_buf(),
        file_key(plugin).map_err(|source| ToolchainError::Io {
            path: plugin.to_path_buf(),
            source,
        })?,
    );
    let cache = CACHE.get_or_init(Default::default);
    let cached = lock(cache).get(&key).cloned();
    let result = match cached {
        Some(r) => r,
        None => {
            let r = plugin_load_test(plugin, opt);
            lock(cache).insert(key, r.clone());
            r
        }
    };
    result.map_err(|message| ToolchainError::PluginLoadFailed {
        plugin: plugin.to_path_buf(),
        opt: opt.to_path_buf(),
        llvm_version: llvm_version.to_string(),
        message,
    })
}

/// Runs `opt -load-pass-plugin=PLUGIN -passes=enzyme -disable-output` on a trivial module.
fn plugin_load_test(plugin: &Path, opt: &Path) -> Result<(), String> {
    let mut arg = std::ffi::OsString::from("-load-pass-plugin=");
    arg.push(plugin);
    let mut child = Command::new(opt)
        .arg(arg)
        .args(["-passes=enzyme", "-disable-output", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", opt.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means opt exited early; its stderr explains why.
        let _ = stdin.write_all(b"define void @simgrad_probe() {\n  ret void\n}\n");
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot wait for {}: {e}", opt.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(if msg.is_empty() {
            format!("opt exited with {}", out.status)
        } else {
            msg
        })
    }
}

/// Extracts the version number from a tool's `--version` output: the first dotted number that
/// follows the word `version`. Returns the number and the line it was found on.
///
/// ```text
/// Debian clang version 19.1.7 (3~deb12u1)   -> 19.1.7
/// Debian LLVM version 19.1.7                 -> 19.1.7
/// clang version 20.0.0git                    -> 20.0.0
/// ```
pub fn parse_llvm_version(output: &str) -> Option<(String, String)> {
    for line in output.lines() {
        let mut rest = line;
        while let Some(i) = rest.find("version") {
            rest = &rest[i + "version".len()..];
            let token = rest.trim_start();
            let num: String = token
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let num = num.trim_end_matches('.');
            if !num.is_empty() && num.starts_with(|c: char| c.is_ascii_digit()) {
                return Some((num.to_string(), line.trim().to_string()));
            }
        }
    }
    None
}

/// The major component of a dotted version, e.g. `19` for `19.1.7`.
pub fn version_major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// The LLVM major a plugin was built for, from a file name of the form `LLVMEnzyme-<major>.so`
/// (or `.dylib`, `.dll`). `None` when the name does not follow the convention.
pub fn plugin_llvm_major(plugin: &Path) -> Option<u32> {
    let name = plugin.file_name()?.to_str()?;
    let rest = name.strip_prefix("LLVMEnzyme-")?;
    let stem = [".so", ".dylib", ".dll"]
        .iter()
        .find_map(|ext| rest.strip_suffix(ext))?;
    stem.parse().ok()
}

/// Reads a string field from the [`BUILD_INFO_FILE`] in `dir`, if the file and field exist.
pub fn read_build_info_field(dir: &Path, key: &str) -> Option<String> {
    let text = fs::read_to_string(dir.join(BUILD_INFO_FILE)).ok()?;
    json_string_field(&text, key)
}

/// Finds `"key": "value"` in a flat JSON object and returns the value, with the escapes `\"`,
/// `\\` and `\/` resolved. This is deliberately minimal (this module avoids a JSON dependency);
/// it is only used on the small flat [`BUILD_INFO_FILE`] that `cargo xtask setup` writes.
pub fn json_string_field(text: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    let mut search = text;
    while let Some(i) = search.find(&needle) {
        let after = search[i + needle.len()..].trim_start();
        search = &search[i + needle.len()..];
        let Some(after) = after.strip_prefix(':') else {
            continue;
        };
        let after = after.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(value),
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        return None;
    }
    None
}

/// The SHA-256 of a file's contents, lowercase hex.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// [`file_sha256`], cached in-process per path, modification time and size.
pub fn file_sha256_cached(path: &Path) -> io::Result<String> {
    static CACHE: OnceLock<Mutex<HashMap<FileKey, String>>> = OnceLock::new();
    let key = file_key(path)?;
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = lock(cache).get(&key) {
        return Ok(s.clone());
    }
    let sha = file_sha256(path)?;
    lock(cache).insert(key, sha.clone());
    Ok(sha)
}

/// Identity of a file's content for caching: path, modification time and size.
type FileKey = (PathBuf, Option<SystemTime>, u64);

fn file_key(path: &Path) -> io::Result<FileKey> {
    let meta = fs::metadata(path)?;
    Ok((path.to_path_buf(), meta.modified().ok(), meta.len()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn non_empty_env(name: &str) -> Option<std::ffi::OsString> {
    env::var_os(name).filter(|v| !v.is_empty())
}

/// Searches `PATH` for an executable called `name`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_clang_and_llvm_version_output() {
        let clang = "Debian clang version 19.1.7 (3~deb12u1)\nTarget: x86_64-pc-linux-gnu\n";
        assert_eq!(
            parse_llvm_version(clang),
            Some((
                "19.1.7".to_string(),
                "Debian clang version 19.1.7 (3~deb12u1)".to_string()
            ))
        );
        let opt = "Debian LLVM version 19.1.7\n  Optimized build.\n";
        assert_eq!(parse_llvm_version(opt).unwrap().0, "19.1.7");
        let upstream = "LLVM (http://llvm.org/):\n  LLVM version 18.1.8\n  Optimized build.\n";
        assert_eq!(parse_llvm_version(upstream).unwrap().0, "18.1.8");
        let flang = "Debian flang-new version 19.1.7 (3~deb12u1)\n";
        assert_eq!(parse_llvm_version(flang).unwrap().0, "19.1.7");
        let git = "clang version 20.0.0git (https://github.com/llvm/llvm-project abc)\n";
        assert_eq!(parse_llvm_version(git).unwrap().0, "20.0.0");
        let homebrew = "Homebrew clang version 19.1.0\n";
        assert_eq!(parse_llvm_version(homebrew).unwrap().0, "19.1.0");
    }

    #[test]
    fn rejects_output_without_a_version() {
        assert_eq!(parse_llvm_version("usage: opt [options]\n"), None);
        assert_eq!(parse_llvm_version("version: unknown\n"), None);
        assert_eq!(parse_llvm_version(""), None);
    }

    #[test]
    fn skips_version_words_without_numbers() {
        let text = "versioned build\nclang version 19.1.7\n";
        assert_eq!(parse_llvm_version(text).unwrap().0, "19.1.7");
    }

    #[test]
    fn version_major_parses_first_component() {
        assert_eq!(version_major("19.1.7"), Some(19));
        assert_eq!(version_major("20"), Some(20));
        assert_eq!(version_major(""), None);
        assert_eq!(version_major("x.1"), None);
    }

    #[test]
    fn plugin_major_from_file_name() {
        assert_eq!(
            plugin_llvm_major(Path::new("/a/LLVMEnzyme-19.so")),
            Some(19)
        );
        assert_eq!(
            plugin_llvm_major(Path::new("LLVMEnzyme-18.dylib")),
            Some(18)
        );
        assert_eq!(plugin_llvm_major(Path::new("/a/ClangEnzyme-19.so")), None);
        assert_eq!(plugin_llvm_major(Path::new("/a/libenzyme.so")), None);
        assert_eq!(plugin_llvm_major(Path::new("/a/LLVMEnzyme-x.so")), None);
    }

    #[test]
    fn plugin_file_name_round_trips() {
        let name = enzyme_plugin_file_name(19);
        assert_eq!(plugin_llvm_major(Path::new(&name)), Some(19));
        assert_eq!(enzyme_install_name(19), "diffsl-0.12.5-llvm19");
    }

    #[test]
    fn json_field_extraction() {
        let text = r#"{
  "source_crate": "diffsl",
  "enzyme_version" : "0.0.79",
  "path": "a\\b \"q\""
}"#;
        assert_eq!(
            json_string_field(text, "enzyme_version").as_deref(),
            Some("0.0.79")
        );
        assert_eq!(
            json_string_field(text, "source_crate").as_deref(),
            Some("diffsl")
        );
        assert_eq!(
            json_string_field(text, "path").as_deref(),
            Some("a\\b \"q\"")
        );
        assert_eq!(json_string_field(text, "missing"), None);
        assert_eq!(json_string_field(r#"{"n": 3}"#, "n"), None);
    }

    #[test]
    fn mismatch_message_names_both_versions() {
        let e = ToolchainError::PluginLlvmMismatch {
            plugin: PathBuf::from("/p/LLVMEnzyme-18.so"),
            plugin_major: 18,
            llvm_major: 19,
            llvm_version: "19.1.7".to_string(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("built for LLVM 18, toolchain is LLVM 19"),
            "{msg}"
        );
        assert!(msg.contains("/p/LLVMEnzyme-18.so"), "{msg}");
    }

    #[test]
    fn missing_env_plugin_message_names_variable_and_path() {
        let e = ToolchainError::PluginPathMissing {
            origin: ENV_ENZYME_PLUGIN.to_string(),
            path: PathBuf::from("/nonexistent"),
        };
        let msg = e.to_string();
        assert!(msg.contains("SIMGRAD_ENZYME_PLUGIN"), "{msg}");
        assert!(msg.contains("/nonexistent"), "{msg}");
    }

    #[test]
    fn sha256_of_known_content() {
        let dir = env::temp_dir().join(format!("simgrad-toolchain-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("abc");
        fs::write(&f, b"abc").unwrap();
        assert_eq!(
            file_sha256_cached(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
