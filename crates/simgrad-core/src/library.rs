//! Opening kernel libraries and looking kernels up.

use crate::error::{Error, Result};
use crate::manifest::{KernelDesc, Manifest, Mode, MANIFEST_SYMBOL};
use std::ffi::{c_char, c_void, CStr};
use std::path::{Path, PathBuf};

/// The uniform entry point of one kernel mode (see `docs/calling-convention.md`).
pub(crate) type Trampoline = unsafe extern "C" fn(
    args: *const *mut c_void,
    sizes: *const i64,
    shadows: *const *mut c_void,
) -> i32;

/// An open kernel library. Kernels borrow from it; it unloads when dropped.
///
/// A `Library` is `Send + Sync`: kernels hold no mutable state, so one kernel may be called from
/// many threads at once (each call brings its own buffers).
pub struct Library {
    path: PathBuf,
    manifest: Manifest,
    manifest_json: String,
    kernels: Vec<Kernel>,
    // Kept last so the kernels' function pointers are dropped before the code is unloaded.
    _lib: libloading::Library,
}

/// One kernel of a [`Library`]: its description and entry points.
pub struct Kernel {
    pub(crate) desc: KernelDesc,
    pub(crate) entries: [Option<Trampoline>; 3],
    pub(crate) plan: crate::plan::Plan,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field(
                "kernels",
                &self
                    .kernels
                    .iter()
                    .map(|k| &k.desc.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("name", &self.desc.name)
            .finish()
    }
}

fn mode_index(mode: Mode) -> usize {
    match mode {
        Mode::Primal => 0,
        Mode::Jvp => 1,
        Mode::Vjp => 2,
    }
}

fn dlopen(path: &Path) -> Result<libloading::Library> {
    let err = |message: String| Error::Open {
        path: path.display().to_string(),
        message,
    };
    if !path.exists() {
        return Err(err("no such file".to_string()));
    }
    // RTLD_NOW: unresolved symbols (an `__enzyme_*` call Enzyme did not replace, say) fail here,
    // at open, instead of at the first call.
    #[cfg(unix)]
    {
        use libloading::os::unix::{Library as UnixLibrary, RTLD_LOCAL, RTLD_NOW};
        // SAFETY: loading a library runs its initialisers; simgrad libraries have none of their own.
        let lib = unsafe { UnixLibrary::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| err(e.to_string()))?;
        Ok(lib.into())
    }
    #[cfg(not(unix))]
    {
        // SAFETY: as above.
        unsafe { libloading::Library::new(path) }.map_err(|e| err(e.to_string()))
    }
}

impl Library {
    /// Opens a library built by simgrad and reads its embedded manifest.
    pub fn open(path: impl AsRef<Path>) -> Result<Library> {
        let path = path.as_ref();
        let lib = dlopen(path)?;
        let origin = path.display().to_string();
        // SAFETY: the symbol has the documented signature `const char *simgrad_manifest(void)`.
        let text = unsafe {
            let f: libloading::Symbol<unsafe extern "C" fn() -> *const c_char> =
                lib.get(MANIFEST_SYMBOL.as_bytes()).map_err(|_| Error::Manifest {
                    origin: origin.clone(),
                    message: format!(
                        "the library exports no `{MANIFEST_SYMBOL}`; for a library not built by simgrad, pass an external manifest file"
                    ),
                })?;
            let p = f();
            if p.is_null() {
                return Err(Error::Manifest {
                    origin,
                    message: format!("`{MANIFEST_SYMBOL}` returned NULL"),
                });
            }
            CStr::from_ptr(p).to_string_lossy().into_owned()
        };
        Self::with_manifest_text(path, lib, text, &origin)
    }

    /// Opens a library built elsewhere (by hand with Enzyme, another AD tool, hand-written
    /// derivatives) whose entry points are described by the manifest file `manifest`. The entry
    /// points must use simgrad's uniform trampoline signature.
    pub fn open_with_manifest(
        path: impl AsRef<Path>,
        manifest: impl AsRef<Path>,
    ) -> Result<Library> {
        let path = path.as_ref();
        let manifest = manifest.as_ref();
        let origin = manifest.display().to_string();
        let text = std::fs::read_to_string(manifest).map_err(|e| Error::Manifest {
            origin: origin.clone(),
            message: format!("cannot read the manifest file: {e}"),
        })?;
        let lib = dlopen(path)?;
        Self::with_manifest_text(path, lib, text, &origin)
    }

    fn with_manifest_text(
        path: &Path,
        lib: libloading::Library,
        text: String,
        origin: &str,
    ) -> Result<Library> {
        let manifest = Manifest::from_json(&text, origin)?;
        let mut kernels = Vec::with_capacity(manifest.kernels.len());
        for desc in &manifest.kernels {
            let mut entries: [Option<Trampoline>; 3] = [None; 3];
            for (mode, m) in &desc.modes {
                // SAFETY: the manifest promises the uniform trampoline signature.
                let f: Trampoline = unsafe {
                    *lib.get::<Trampoline>(m.symbol.as_bytes()).map_err(|e| {
                        Error::MissingSymbol {
                            symbol: m.symbol.clone(),
                            path: path.display().to_string(),
                            message: e.to_string(),
                        }
                    })?
                };
                entries[mode_index(*mode)] = Some(f);
            }
            kernels.push(Kernel {
                plan: crate::plan::Plan::new(desc),
                desc: desc.clone(),
                entries,
            });
        }
        Ok(Library {
            path: path.to_path_buf(),
            manifest,
            manifest_json: text,
            kernels,
            _lib: lib,
        })
    }

    /// The library's path as opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest exactly as the library (or file) stores it.
    pub fn manifest_json(&self) -> &str {
        &self.manifest_json
    }

    /// All kernels in manifest order.
    pub fn kernels(&self) -> &[Kernel] {
        &self.kernels
    }

    /// The kernel named `name`.
    pub fn kernel(&self, name: &str) -> Result<&Kernel> {
        self.kernels
            .iter()
            .find(|k| k.desc.name == name)
            .ok_or_else(|| Error::UnknownKernel {
                name: name.to_string(),
                available: self
                    .kernels
                    .iter()
                    .map(|k| k.desc.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl Kernel {
    /// The kernel's manifest entry.
    pub fn desc(&self) -> &KernelDesc {
        &self.desc
    }

    /// The kernel's name.
    pub fn name(&self) -> &str {
        &self.desc.name
    }

    pub(crate) fn entry(&self, mode: Mode) -> Result<Trampoline> {
        self.entries[mode_index(mode)].ok_or_else(|| Error::UnknownMode {
            kernel: self.desc.name.clone(),
            mode: mode.name().to_string(),
            available: self
                .desc
                .modes
                .keys()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}
