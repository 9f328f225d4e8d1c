"""Building: the cache (a repeated build compiles nothing, a change rebuilds), build options,
build errors, and `simgrad.Enzyme` signature inference from C, C++ and Fortran sources."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from _support import KERNELS, REPO, build_or_skip, skip_or_fail

import simgrad

AXPY_SPEC = """\
[build]
name = "tiny"

[[kernel]]
symbol = "axpy"
sources = ["axpy.c"]
modes = {modes}
args = [
  {{ name = "n", kind = "size" }},
  {{ name = "a", kind = "scalar", dtype = "f64" }},
  {{ name = "x", dtype = "f64", shape = ["n"] }},
  {{ name = "y", dtype = "f64", shape = ["n"], intent = "inout" }},
]
"""


@pytest.fixture
def project(tmp_path, clib):
    """A one-kernel spec in a fresh directory, with a fresh cache."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(REPO / "examples-c" / "kernels" / "axpy.c", src / "axpy.c")
    spec = src / "simgrad.toml"
    spec.write_text(AXPY_SPEC.format(modes='["primal", "jvp", "vjp"]'))
    return spec, tmp_path / "cache"


def _entries(cache):
    builds = cache / "builds"
    return sorted(p.name for p in builds.iterdir() if p.is_dir()) if builds.is_dir() else []


def test_a_repeated_build_compiles_nothing(project):
    spec, cache = project
    first = build_or_skip(spec, cache_dir=cache)
    assert first.cache_hit is False and first.build_info.cache_hit is False
    lib_path = first.path
    stat = os.stat(lib_path)
    entries = _entries(cache)
    second = simgrad.build(spec, cache_dir=cache)
    assert second.cache_hit is True
    assert second.path == lib_path
    # Nothing was written: the library file and the cache entries are the ones of the first build.
    st2 = os.stat(lib_path)
    assert (st2.st_ino, st2.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert _entries(cache) == entries
    info = second.build_info
    assert info.spec == str(spec.resolve()) and info.library == lib_path
    assert info.cache_entry and os.path.isdir(info.cache_entry)
    assert info.pipeline and isinstance(info.log, str) and info.seconds >= 0
    assert "cache hit" in str(info) and "cache hit" in repr(second)
    np.testing.assert_allclose(second["axpy"](2.0, np.ones(3), np.ones(3)), [3.0, 3.0, 3.0])
    assert simgrad.load(lib_path).cache_hit is None  # not built by this call


def test_a_changed_spec_or_source_rebuilds(project):
    spec, cache = project
    first = build_or_skip(spec, cache_dir=cache)
    # The spec changes: a new entry is built.
    spec.write_text(AXPY_SPEC.format(modes='["primal", "vjp"]'))
    changed = simgrad.build(spec, cache_dir=cache)
    assert changed.cache_hit is False and changed.path != first.path
    assert changed["axpy"].modes == ("primal", "vjp")
    # The source changes: rebuilt again.
    src = spec.parent / "axpy.c"
    src.write_text(src.read_text().replace("a * x[i] + y[i]", "a * x[i] + 2.0 * y[i]"))
    edited = simgrad.build(spec, cache_dir=cache)
    assert edited.cache_hit is False and edited.path not in (first.path, changed.path)
    np.testing.assert_allclose(edited["axpy"](1.0, np.ones(2), np.ones(2)), [3.0, 3.0])
    # And unchanged again: a hit.
    assert simgrad.build(spec, cache_dir=cache).cache_hit is True


def test_force_out_dir_and_verify(project, tmp_path):
    spec, cache = project
    build_or_skip(spec, cache_dir=cache)
    forced = simgrad.build(spec, cache_dir=cache, force=True)
    assert forced.cache_hit is False
    out = tmp_path / "out"
    copied = simgrad.build(spec, cache_dir=cache, out_dir=out)
    assert copied.cache_hit is True
    assert os.path.dirname(copied.path) == str(out) and os.path.isfile(copied.path)
    assert copied.build_info.cache_entry != str(out)
    verified = simgrad.build(spec, cache_dir=cache, verify=True)
    assert verified.build_info.verified is True
    # The verified entry is now served from the cache.
    assert simgrad.build(spec, cache_dir=cache, verify=True).cache_hit is True


def test_spec_errors(tmp_path, clib):
    spec = tmp_path / "simgrad.toml"
    spec.write_text('[[kernel]]\nsymbol = "f"\nsources = ["missing.c"]\nargs = []\n')
    with pytest.raises(simgrad.SpecError, match="missing.c"):
        simgrad.build(spec, cache_dir=tmp_path / "cache")
    with pytest.raises(simgrad.SpecError):
        simgrad.build(tmp_path / "nope.toml", cache_dir=tmp_path / "cache")


def test_unknown_pipeline(project):
    spec, cache = project
    try:
        simgrad.build(spec, cache_dir=cache, pipeline="no-such-pipeline")
    except simgrad.ToolchainError as e:
        skip_or_fail(str(e))
    except simgrad.SpecError as e:
        assert "no-such-pipeline" in str(e)
    else:
        pytest.fail("an unknown pipeline was accepted")


def test_compiler_errors_are_build_errors(tmp_path, clib):
    src = tmp_path / "bad.c"
    src.write_text("void bad(const double *x, const double *y) { this is not C; }\n")
    with pytest.raises((simgrad.BuildError, simgrad.ToolchainError)) as e:
        simgrad.Enzyme(src, "bad", shapes={"x": (3,), "y": (3,)}, cache_dir=tmp_path / "cache")
    if isinstance(e.value, simgrad.ToolchainError):
        skip_or_fail(str(e.value))
    assert "bad.c" in str(e.value) and "error" in str(e.value)


# ---------------------------------------------------------------------- simgrad.Enzyme


def test_enzyme_builds_a_function_of_a_source_file(tmp_path, clib):
    cache = tmp_path / "cache"
    try:
        seed = simgrad.Enzyme(REPO / "examples-c" / "kernels" / "seed.c", "seed", shapes={"x": (100,), "out": (100,)}, cache_dir=cache)
    except simgrad.ToolchainError as e:
        skip_or_fail(str(e))
    assert [(a.name, a.intent) for a in seed.args] == [("x", "in"), ("out", "out")]
    assert seed.build_info.cache_hit is False
    assert os.path.isfile(seed.spec_path) and 'symbol = "seed"' in open(seed.spec_path).read()
    x = np.arange(1, 101, dtype=np.float64) ** 2
    _, dout = seed.jvp([x], [np.ones(100)])
    assert dout[1] == pytest.approx(1 + 1 / 4**2)
    again = simgrad.Enzyme(REPO / "examples-c" / "kernels" / "seed.c", "seed", shapes={"x": (100,), "out": (100,)}, cache_dir=cache)
    assert again.build_info.cache_hit is True


def test_enzyme_infers_fortran_interfaces(matvec, rowsum):
    assert [(a.name, a.kind, a.intent, [str(d) for d in a.shape]) for a in matvec.args] == [
        ("m", "size", "in", []),
        ("n", "size", "in", []),
        ("a", "array", "in", ["m", "n"]),
        ("x", "array", "in", ["n"]),
        ("y", "array", "out", ["m"]),
    ]
    assert matvec.order == "F" and matvec.language == "fortran"
    assert [a.intent for a in rowsum.args] == ["in", "in", "in", "in", "out"]


def test_signature_errors_say_what_to_declare():
    with pytest.raises(simgrad.SpecError) as e:
        simgrad.infer_signature(REPO / "examples-c" / "kernels" / "axpy.c", "axpy")
    msg = str(e.value)
    assert 'shapes={"x": ("n",), "y": ("n",)}' in msg
    assert 'intents={"y": "inout"}' in msg
    assert "void axpy(int64_t n, double a, const double *x, double *y)" in msg
    # Declared, it is complete.
    args, symbol, lang = simgrad.infer_signature(
        REPO / "examples-c" / "kernels" / "axpy.c", "axpy", shapes={"x": ("n",), "y": ("n",)}, intents={"y": "inout"}
    )
    assert symbol == "axpy" and lang == "c"
    assert args[3] == {"name": "y", "kind": "array", "dtype": "f64", "shape": ["n"], "intent": "inout"}


def test_signature_inference_edge_cases(tmp_path):
    def infer(text, fn, name="k.c", **kw):
        p = tmp_path / name
        p.write_text(text)
        return simgrad.infer_signature(p, fn, use_compiler=False, **kw)[0]

    # Literal and named array dims, float scalars, int sizes; const pointers are inputs.
    args = infer("void k(int n, float s, const double x[static 3], const float y[n][2]) {}", "k")
    assert [(a["name"], a["kind"], a["dtype"], a.get("shape")) for a in args] == [
        ("n", "size", "i32", None),
        ("s", "scalar", "f32", None),
        ("x", "array", "f64", [3]),
        ("y", "array", "f32", ["n", 2]),
    ]
    # Calls of the function elsewhere do not confuse the parser.
    args = infer("void k(const double *x);\nvoid caller(double *q) { k(q); }\nvoid k(const double *x) {}", "k", shapes={"x": 4})
    assert args == [{"name": "x", "kind": "array", "dtype": "f64", "shape": [4], "intent": "in"}]
    with pytest.raises(simgrad.SpecError, match="returns `double`"):
        infer("double k(const double *x) { return x[0]; }", "k")
    with pytest.raises(simgrad.SpecError, match="no definition or declaration of function `nope`"):
        infer("void k(void) {}", "nope")
    with pytest.raises(simgrad.SpecError, match="reference"):
        infer("void k(double &x) {}", "k", name="k.cpp")
    with pytest.raises(simgrad.SpecError, match="pointer to pointers"):
        infer("void k(double **x) {}", "k")
    with pytest.raises(simgrad.SpecError, match="no name"):
        infer("void k(const double *) {}", "k")
    with pytest.raises(simgrad.SpecError, match="type `struct foo`"):
        infer("struct foo; void k(struct foo *p) {}", "k")
    with pytest.raises(simgrad.SpecError, match="not a parameter"):
        infer("void k(const double *x) {}", "k", shapes={"x": 1, "z": 2})
    with pytest.raises(simgrad.SpecError, match='use "in", "out" or "inout"'):
        infer("void k(double *x) {}", "k", shapes={"x": 1}, intents={"x": "both"})
    # Fortran: intents and shapes from declarations, lower bounds, value scalars.
    f90 = """
    subroutine k2(n, a, x, y, z) bind(C, name="kk")
      use iso_c_binding
      integer(c_int), value :: n
      real(c_float), value :: a
      real(c_double), intent(in) :: x(0:n-1)
      real(c_double), intent(inout), dimension(n, 3) :: y
      real(c_double) :: z(*)
    end subroutine
    """
    args = infer(f90, "kk", name="k.f90", shapes={"z": ("n",)}, intents={"z": "out"})
    assert [(a["name"], a["kind"], a["dtype"], a.get("shape"), a.get("intent")) for a in args] == [
        ("n", "size", "i32", None, None),
        ("a", "scalar", "f32", None, None),
        ("x", "array", "f64", ["n-1+1"], "in"),
        ("y", "array", "f64", ["n", 3], "inout"),
        ("z", "array", "f64", ["n"], "out"),
    ]
    with pytest.raises(simgrad.SpecError, match=r'shapes=\{"z"'):
        infer(f90, "k2", name="k.f90")
    with pytest.raises(simgrad.SpecError, match="bind"):
        infer("subroutine s(x)\n real(8), intent(in) :: x(3)\nend subroutine\n", "s", name="s.f90")
    with pytest.raises(simgrad.SpecError, match="value"):
        infer("subroutine s(n) bind(C)\n integer(c_int) :: n\nend subroutine\n", "s", name="s.f90")


def test_compiler_infers_intents(clib):
    if shutil.which("clang-19") is None and shutil.which("clang") is None:
        skip_or_fail("clang is not installed")
    args, _, _ = simgrad.infer_signature(KERNELS / "scale_shift.c", "scale_shift", shapes={"x": "n", "y": "n", "z": "n"})
    assert [a.get("intent") for a in args] == [None, None, "in", "out", "out"]
    with pytest.raises(simgrad.SpecError, match="mangled.*extern \"C\""):
        simgrad.infer_signature(KERNELS / "mangled.cpp", "g", shapes={"x": 1, "y": 1})
