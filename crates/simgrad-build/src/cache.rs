//! The content-addressed build cache and the top-level [`build_spec_file`].
//!
//! Layout under `<cache root>/builds/` (cache root: [`BuildOptions::cache_dir`], else
//! `$SIMGRAD_CACHE_DIR`, else `~/.cache/simgrad`):
//!
//! * `<key>/` — a published entry: `lib<name>.so`, `manifest.json`, `build.log` and `entry.json`
//!   (the library's SHA-256). An entry counts as built only when `entry.json` exists and the
//!   library's hash matches it; a truncated or tampered library is rebuilt.
//! * `<key>.lock` — an OS file lock (`flock`) held while building; the OS releases it when the
//!   process dies, so a killed build never blocks the next one.
//! * `tmp-<key>-<pid>/` — a build in progress, renamed to `<key>/` in one step when complete.
//!   Left-overs of killed builds are removed by the next build of the same key.
//!
//! The key hashes simgrad's version, the manifest (kernels, arguments, modes, flags, tool
//! versions), every source file's bytes, the generated wrapper, and the toolchain fingerprint
//! (tool versions and the Enzyme plugin's hash).

use crate::codegen::wrapper_source;
use crate::error::BuildError;
use crate::pipeline::{run_pipeline, Pipeline, PipelineInput};
use crate::spec::{Language, Spec};
use crate::toolchain::{self, Toolchain};
use sha2::{Digest, Sha256};
use simgrad_core::check::{check_library, CheckOptions};
use simgrad_core::{Library, Manifest, ABI_VERSION, MANIFEST_VERSION};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of a build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Also copy the library into this directory and return that path.
    pub out_dir: Option<PathBuf>,
    /// Cache root instead of `$SIMGRAD_CACHE_DIR` / `~/.cache/simgrad`.
    pub cache_dir: Option<PathBuf>,
    /// Pipeline name (overrides the spec's `[build].pipeline`).
    pub pipeline: Option<String>,
    /// Run the gradient check after building and refuse to publish a failing library.
    pub verify: bool,
    /// Rebuild even when a valid cache entry exists.
    pub force: bool,
    /// Print no progress.
    pub quiet: bool,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The library to load (in the cache, or in `out_dir` when given).
    pub library: PathBuf,
    /// Whether the cache already held the library (nothing was compiled).
    pub cache_hit: bool,
    /// The cache key.
    pub key: String,
    /// The pipeline used.
    pub pipeline: String,
    /// The gradient-check report, when verification ran.
    pub verify_report: Option<String>,
    /// Seconds spent (total).
    pub seconds: f64,
}

/// The simgrad version baked into cache keys and manifests.
pub const SIMGRAD_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    library: String,
    sha256: String,
    pipeline: String,
    #[serde(default)]
    verified: bool,
}

fn sha256_file(path: &Path) -> Result<String, BuildError> {
    let bytes = fs::read(path).map_err(|e| BuildError::io("cannot read", path, e))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A published entry, if valid.
fn valid_entry(dir: &Path) -> Option<(Entry, PathBuf)> {
    let text = fs::read_to_string(dir.join("entry.json")).ok()?;
    let entry: Entry = serde_json::from_str(&text).ok()?;
    let lib = dir.join(&entry.library);
    let ok = sha256_file(&lib).ok()? == entry.sha256;
    ok.then_some((entry, lib))
}

/// Builds (or finds in the cache) the library for the spec at `path`.
pub fn build_spec_file(path: &Path, opts: &BuildOptions) -> Result<BuildOutput, BuildError> {
    let start = Instant::now();
    let quiet = opts.quiet;
    let progress = |msg: &str| {
        if !quiet {
            eprintln!("simgrad: {msg}");
        }
    };
    let spec = Spec::load(path)?;
    let pipeline_name = opts
        .pipeline
        .clone()
        .or_else(|| spec.build.pipeline.clone())
        .unwrap_or_else(|| "default".into());
    let pipeline = Pipeline::named(&pipeline_name).ok_or_else(|| BuildError::Spec {
        file: path.display().to_string(),
        kernel: None,
        field: Some("build.pipeline".into()),
        message: format!(
            "unknown pipeline `{pipeline_name}`; the pipelines are: {}",
            Pipeline::names()
        ),
    })?;
    if let Some(why) = pipeline.known_bad {
        progress(&format!(
            "warning: pipeline `{}` is known to give wrong derivatives: {why}",
            pipeline.name
        ));
    }
    let cache_root = opts.cache_dir.clone().unwrap_or_else(toolchain::cache_root);
    let toolchain = discover_toolchain(&cache_root)?;
    let has_fortran = spec.kernels.iter().any(|k| {
        k.language == Language::Fortran
            || k.sources
                .iter()
                .any(|s| Language::from_path(s) == Some(Language::Fortran))
    });
    let mut flags: std::collections::BTreeMap<String, Vec<String>> =
        pipeline.describe(has_fortran).into_iter().collect();
    flags.insert("cflags".into(), spec.build.cflags.clone());
    flags.insert("fflags".into(), spec.build.fflags.clone());
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        abi_version: ABI_VERSION,
        generator: format!("simgrad {SIMGRAD_VERSION}"),
        toolchain: simgrad_core::Toolchain {
            llvm: toolchain.llvm_version.clone(),
            enzyme: toolchain
                .enzyme_version
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            flags,
        },
        kernels: spec.kernels.iter().map(|k| k.desc.clone()).collect(),
    };
    let wrapper = wrapper_source(&spec.kernels, &manifest);

    let mut h = Sha256::new();
    h.update(SIMGRAD_VERSION.as_bytes());
    h.update(manifest.to_json().as_bytes());
    h.update(wrapper.as_bytes());
    h.update(toolchain.fingerprint().as_bytes());
    for k in &spec.kernels {
        for s in &k.sources {
            let bytes = fs::read(s).map_err(|e| BuildError::io("cannot read source", s, e))?;
            h.update(
                s.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
                    .as_bytes(),
            );
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
    }
    // The file name is part of the entry: two specs that differ only in `[build].name` must not
    // share an entry whose library carries the other's name.
    let lib_file = format!("lib{}.so", spec.library_name());
    h.update(lib_file.as_bytes());
    let key = hex(&h.finalize())[..32].to_string();

    let root = cache_root.join("builds");
    fs::create_dir_all(&root).map_err(|e| BuildError::Cache {
        path: root.display().to_string(),
        message: format!("cannot create the cache directory: {e} (set SIMGRAD_CACHE_DIR to a writable directory)"),
    })?;
    let entry_dir = root.join(&key);

    // Fast path: a valid entry needs no lock (entries are immutable once published).
    let mut hit = None;
    if !opts.force {
        if let Some((entry, lib)) = valid_entry(&entry_dir) {
            if !opts.verify || entry.verified {
                hit = Some(lib);
            }
        }
    }
    let (library, cache_hit, verify_report) = match hit {
        Some(lib) => {
            progress(&format!("cache hit {}", lib.display()));
            (lib, true, None)
        }
        None => {
            let lock_path = root.join(format!("{key}.lock"));
            let lock = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| BuildError::Cache {
                    path: lock_path.display().to_string(),
                    message: format!("cannot create the lock file: {e} (is the cache directory writable? set SIMGRAD_CACHE_DIR)"),
                })?;
            if lock.try_lock().is_err() {
                progress(&format!(
                    "waiting for another build of the same spec (lock {})",
                    lock_path.display()
                ));
                lock.lock().map_err(|e| BuildError::Cache {
                    path: lock_path.display().to_string(),
                    message: format!("cannot lock: {e}"),
                })?;
            }
            let result = build_locked(&BuildLocked {
                spec: &spec,
                opts,
                toolchain: &toolchain,
                pipeline,
                manifest: &manifest,
                wrapper: &wrapper,
                root: &root,
                key: &key,
                lib_file: &lib_file,
                progress: &progress,
            });
            drop(lock);
            result?
        }
    };
    let library = match &opts.out_dir {
        Some(dir) => publish_copy(&library, dir, &lib_file)?,
        None => library,
    };
    let seconds = start.elapsed().as_secs_f64();
    if !cache_hit {
        progress(&format!("built {} in {seconds:.1} s", library.display()));
    }
    Ok(BuildOutput {
        library,
        cache_hit,
        key,
        pipeline: pipeline.name.to_string(),
        verify_report,
        seconds,
    })
}

struct BuildLocked<'a> {
    spec: &'a Spec,
    opts: &'a BuildOptions,
    toolchain: &'a Toolchain,
    pipeline: &'static Pipeline,
    manifest: &'a Manifest,
    wrapper: &'a str,
    root: &'a Path,
    key: &'a str,
    lib_file: &'a str,
    progress: &'a dyn Fn(&str),
}

/// Builds under the lock: re-checks the entry (another process may have published it while we
/// waited), cleans up after killed builds, builds into a temporary directory and publishes it.
fn build_locked(b: &BuildLocked<'_>) -> Result<(PathBuf, bool, Option<String>), BuildError> {
    let entry_dir = b.root.join(b.key);
    let cache_err = |path: &Path, message: String| BuildError::Cache {
        path: path.display().to_string(),
        message,
    };
    if !b.opts.force {
        if let Some((entry, lib)) = valid_entry(&entry_dir) {
            if !b.opts.verify || entry.verified {
                (b.progress)(&format!(
                    "cache hit {} (built by another process)",
                    lib.display()
                ));
                return Ok((lib, true, None));
            }
            // Built but never verified: verify the published library in place.
            let report = verify(&lib, b.progress)?;
            write_entry(
                &entry_dir,
                &Entry {
                    verified: true,
                    ..entry
                },
            )?;
            return Ok((lib, true, Some(report)));
        }
    }
    // Left-overs of killed builds of this key: nobody else holds the lock, so they are stale.
    if let Ok(rd) = fs::read_dir(b.root) {
        let prefix = format!("tmp-{}-", b.key);
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    let tmp = b.root.join(format!("tmp-{}-{}", b.key, std::process::id()));
    fs::create_dir_all(&tmp)
        .map_err(|e| cache_err(&tmp, format!("cannot create a build directory: {e}")))?;
    stall_for_tests(b.progress);
    let result = (|| {
        let lib = tmp.join(b.lib_file);
        let warnings = run_pipeline(
            &PipelineInput {
                toolchain: b.toolchain,
                pipeline: b.pipeline,
                kernels: &b.spec.kernels,
                wrapper: b.wrapper,
                cflags: &b.spec.build.cflags,
                fflags: &b.spec.build.fflags,
                work: &tmp,
                output: &lib,
            },
            b.progress,
        )?;
        let manifest_path = tmp.join("manifest.json");
        fs::write(&manifest_path, b.manifest.to_json())
            .map_err(|e| BuildError::io("cannot write", &manifest_path, e))?;
        let log = tmp.join("build.log");
        fs::write(&log, warnings.join("\n"))
            .map_err(|e| BuildError::io("cannot write", &log, e))?;
        // Load it back before publishing: a library that does not open must not count as built.
        drop(Library::open(&lib)?);
        let report = if b.opts.verify {
            Some(verify(&lib, b.progress)?)
        } else {
            None
        };
        for f in ["linked.bc", "ad.bc", "optimised.bc"] {
            let _ = fs::remove_file(tmp.join(f));
        }
        write_entry(
            &tmp,
            &Entry {
                library: b.lib_file.to_string(),
                sha256: sha256_file(&lib)?,
                pipeline: b.pipeline.name.to_string(),
                verified: b.opts.verify,
            },
        )?;
        Ok(report)
    })();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if entry_dir.exists() {
        // An invalid (truncated, tampered) or forced-out entry: replace it.
        fs::remove_dir_all(&entry_dir)
            .map_err(|e| cache_err(&entry_dir, format!("cannot remove a stale entry: {e}")))?;
    }
    fs::rename(&tmp, &entry_dir)
        .map_err(|e| cache_err(&entry_dir, format!("cannot publish the build: {e}")))?;
    Ok((entry_dir.join(b.lib_file), false, report))
}

fn write_entry(dir: &Path, entry: &Entry) -> Result<(), BuildError> {
    let path = dir.join("entry.json");
    let tmp = dir.join("entry.json.tmp");
    let text = serde_json::to_string_pretty(entry).expect("entry serialises");
    fs::write(&tmp, text).map_err(|e| BuildError::io("cannot write", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| BuildError::io("cannot write", &path, e))
}

/// Runs the gradient check on a freshly built library.
fn verify(lib: &Path, progress: &dyn Fn(&str)) -> Result<String, BuildError> {
    progress("verifying derivatives (JVP vs central FD, VJP vs JVP)");
    let library = Library::open(lib)?;
    let results = check_library(&library, &CheckOptions::default())?;
    let report: Vec<String> = results.iter().map(|r| r.to_string()).collect();
    let report = report.join("\n");
    if results.iter().any(|r| !r.passed) {
        return Err(BuildError::Verify { report });
    }
    Ok(report)
}

/// Copies the library into `dir` atomically (temp file + rename).
fn publish_copy(lib: &Path, dir: &Path, name: &str) -> Result<PathBuf, BuildError> {
    fs::create_dir_all(dir)
        .map_err(|e| BuildError::io("cannot create the output directory", dir, e))?;
    let dest = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    fs::copy(lib, &tmp).map_err(|e| BuildError::io("cannot copy the library to", &tmp, e))?;
    fs::rename(&tmp, &dest).map_err(|e| BuildError::io("cannot write", &dest, e))?;
    Ok(dest)
}

/// A remembered toolchain discovery: valid while every tool and the plugin keep their size and
/// modification time, and the environment that steered discovery is unchanged.
#[derive(serde::Serialize, serde::Deserialize)]
struct ToolchainStamp {
    toolchain: Toolchain,
    files: Vec<(PathBuf, u64, u128)>,
}

fn file_stat(path: &Path) -> Option<(u64, u128)> {
    let m = fs::metadata(path).ok()?;
    let t = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((m.len(), t))
}

/// Discovers the toolchain, reusing a stamp under the cache root when nothing changed.
///
/// Full discovery runs every tool's `--version`, loads the plugin into `opt` and hashes it
/// (hundreds of milliseconds); a warm cache hit must not pay that on every build call. The
/// stamp is keyed by the variables that steer discovery and checked against the size and
/// modification time of every tool and the plugin, so an upgrade or a rebuilt plugin is seen.
fn discover_toolchain(cache_root: &Path) -> Result<Toolchain, BuildError> {
    let mut h = Sha256::new();
    for var in [
        "SIMGRAD_ENZYME_PLUGIN",
        "SIMGRAD_LLVM_DIR",
        "PATH",
        "HOME",
        "SIMGRAD_CACHE_DIR",
    ] {
        h.update(var.as_bytes());
        h.update(b"=");
        h.update(std::env::var_os(var).unwrap_or_default().as_encoded_bytes());
        h.update(b"\n");
    }
    let stamp_path = cache_root.join(format!("toolchain-{}.json", &hex(&h.finalize())[..16]));
    if let Ok(text) = fs::read_to_string(&stamp_path) {
        if let Ok(stamp) = serde_json::from_str::<ToolchainStamp>(&text) {
            let fresh = stamp
                .files
                .iter()
                .all(|(p, len, t)| file_stat(p) == Some((*len, *t)));
            if fresh {
                return Ok(stamp.toolchain);
            }
        }
    }
    let tc = Toolchain::discover()?;
    let mut paths = vec![
        tc.clang.clone(),
        tc.clangxx.clone(),
        tc.flang.clone(),
        tc.llvm_link.clone(),
        tc.opt.clone(),
        tc.enzyme_plugin.clone(),
    ];
    paths.extend(tc.tools.iter().map(|t| t.path.clone()));
    let files = paths
        .into_iter()
        .filter_map(|p| file_stat(&p).map(|(len, t)| (p, len, t)))
        .collect();
    let stamp = ToolchainStamp {
        toolchain: tc,
        files,
    };
    // Best effort: a read-only cache only costs the discovery time.
    if fs::create_dir_all(cache_root).is_ok() {
        let tmp = stamp_path.with_extension(format!("tmp{}", std::process::id()));
        if fs::write(
            &tmp,
            serde_json::to_string(&stamp).expect("stamp serialises"),
        )
        .is_ok()
        {
            let _ = fs::rename(&tmp, &stamp_path);
        }
    }
    Ok(stamp.toolchain)
}

/// Test hook: `SIMGRAD_TEST_STALL_BUILD_MS` makes a build pause while it holds the lock and its
/// temporary directory exists, so crash-safety tests can kill it at a known point.
fn stall_for_tests(progress: &dyn Fn(&str)) {
    if let Some(ms) = std::env::var("SIMGRAD_TEST_STALL_BUILD_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        progress("stalling (SIMGRAD_TEST_STALL_BUILD_MS)");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}
