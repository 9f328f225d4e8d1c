"""`build`: compiling a kernel spec (``simgrad.toml``) through ``simgrad_build``, with the cache.

The build cache (``$SIMGRAD_CACHE_DIR`` or ``~/.cache/simgrad``, key: sources, spec, flags and
toolchain) makes a repeated build free. Whether a build came from the cache is reported as
``BuildInfo.cache_hit``: the C API does not return it, so it is observed from the cache itself
(the entry ``<cache>/builds/<key>/`` holding the library existed, with the same ``entry.json``,
before the call). A library that was only verified in place, or that another process built
during the call, therefore counts as a miss.
"""

from __future__ import annotations

import ctypes
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import _bindings as B
from ._errors import check
from ._library import Library
from ._loader import lib as _clib


@dataclass(frozen=True)
class BuildInfo:
    """What `build` did."""

    #: the spec that was built
    spec: str
    #: the library file opened (in the cache, or the copy in ``out_dir``)
    library: str
    #: True when nothing was compiled: the cache already held the library
    cache_hit: bool
    #: wall-clock seconds of the build call(s)
    seconds: float
    #: the cache entry directory, or None if the library is not in the expected cache layout
    cache_entry: str | None = None
    #: the compile pipeline recorded in the cache entry
    pipeline: str | None = None
    #: whether the cached library passed the gradient check (``verify=True``)
    verified: bool = False
    #: warnings the compilers and Enzyme printed (``build.log`` of the cache entry)
    log: str = ""

    def __str__(self) -> str:
        how = "cache hit" if self.cache_hit else "compiled"
        extra = f", pipeline {self.pipeline}" if self.pipeline else ""
        return f"build of {self.spec}: {how} in {self.seconds:.2f} s{extra}{', verified' if self.verified else ''}"


def cache_root(cache_dir=None) -> Path:
    """The cache root a build uses: ``cache_dir``, else ``$SIMGRAD_CACHE_DIR``, else
    ``~/.cache/simgrad`` (the same rule as simgrad-build)."""
    if cache_dir:
        return Path(cache_dir)
    env = os.environ.get("SIMGRAD_CACHE_DIR")
    if env:
        return Path(env)
    home = os.environ.get("HOME") or os.environ.get("TMPDIR") or "/tmp"
    return Path(home) / ".cache" / "simgrad"


def _entry_stamp(entry: Path):
    try:
        st = (entry / "entry.json").stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _snapshot(root: Path) -> dict[str, tuple]:
    builds = root / "builds"
    out = {}
    try:
        names = os.listdir(builds)
    except OSError:
        return out
    for n in names:
        if n.endswith(".lock") or n.startswith("tmp-"):
            continue
        stamp = _entry_stamp(builds / n)
        if stamp is not None:
            out[n] = stamp
    return out


class _Options:
    """A ``simgrad_build_options`` with the strings it points to kept alive."""

    def __init__(self, *, out_dir, cache_dir, pipeline, flags):
        self._keep = [os.fsencode(str(p)) if p is not None else None for p in (out_dir, cache_dir)]
        self._keep.append(pipeline.encode() if pipeline is not None else None)
        o = B.simgrad_build_options()
        o.struct_size = ctypes.sizeof(B.simgrad_build_options)
        o.out_dir, o.cache_dir, o.pipeline = self._keep
        o.flags = flags
        self.struct = o


def _build_once(spec: bytes, opts: _Options):
    out = ctypes.POINTER(B.simgrad_library)()
    check(_clib().simgrad_build(spec, ctypes.byref(opts.struct), ctypes.byref(out)))
    return out


def build(
    spec_path,
    *,
    verify: bool = False,
    pipeline: str | None = None,
    force: bool = False,
    out_dir=None,
    cache_dir=None,
    verbose: bool = False,
) -> Library:
    """Builds the kernel library of a spec (or takes it from the cache) and opens it.

    * ``verify``: gradient-check every kernel before accepting the library (`VerifyError`)
    * ``pipeline``: the compile pipeline, overriding the spec's ``[build].pipeline``
    * ``force``: rebuild even if the cache holds the library
    * ``out_dir``: also copy the library there and open that copy
    * ``cache_dir``: the cache root (default ``$SIMGRAD_CACHE_DIR`` or ``~/.cache/simgrad``)
    * ``verbose``: let the builder print its progress on stderr

    The returned `Library` has ``build_info`` (a `BuildInfo`) and ``cache_hit``. Errors:
    `SpecError`, `ToolchainError`, `BuildError` (with the compiler's or Enzyme's output),
    `VerifyError`, `IoError`.
    """
    spec = Path(spec_path).resolve()
    flags = (B.SIMGRAD_BUILD_VERIFY if verify else 0) | (0 if verbose else B.SIMGRAD_BUILD_QUIET)
    root = cache_root(cache_dir)
    before = _snapshot(root)
    start = time.perf_counter()
    ptr = _build_once(
        os.fsencode(spec),
        _Options(out_dir=None, cache_dir=cache_dir, pipeline=pipeline, flags=flags | (B.SIMGRAD_BUILD_FORCE if force else 0)),
    )
    cached = Library(ptr)
    entry = Path(cached.path).parent
    if entry.parent.resolve() == (root / "builds").resolve():
        stamp = _entry_stamp(entry)
        hit = stamp is not None and before.get(entry.name) == stamp
        entry_doc = {}
        try:
            entry_doc = json.loads((entry / "entry.json").read_text())
        except (OSError, ValueError):
            pass
        try:
            log = (entry / "build.log").read_text(errors="replace")
        except OSError:
            log = ""
        entry_dir = str(entry)
    else:
        hit, entry_doc, log, entry_dir = False, {}, "", None
    lib = cached
    if out_dir is not None:
        # Second call: a cache hit by construction, which copies the library into out_dir.
        ptr = _build_once(os.fsencode(spec), _Options(out_dir=out_dir, cache_dir=cache_dir, pipeline=pipeline, flags=flags))
        lib = Library(ptr)
        cached.close()
    info = BuildInfo(
        spec=str(spec),
        library=lib.path,
        cache_hit=hit,
        seconds=time.perf_counter() - start,
        cache_entry=entry_dir,
        pipeline=entry_doc.get("pipeline"),
        verified=bool(entry_doc.get("verified", False)),
        log=log,
    )
    lib.build_info = info
    return lib
