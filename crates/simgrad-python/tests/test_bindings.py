"""The ctypes bindings against the C header: every function bound with the header's types, every
struct laid out as in C, every constant equal, and the generated file up to date."""

from __future__ import annotations

import ctypes
import sys

import pytest
from _support import PKG_DIR

sys.path.insert(0, str(PKG_DIR / "tools"))
import gen_bindings  # noqa: E402
from header import find_header, load_header  # noqa: E402

from simgrad import _bindings as B  # noqa: E402

HEADER = find_header(PKG_DIR)


@pytest.fixture(scope="module")
def header():
    if HEADER is None:
        pytest.fail("include/simgrad.h not found in the repository")
    return load_header(HEADER)


def _expected(ctype: str, h):
    """The ctypes object a C type must be bound as (evaluated from the generator's mapping)."""
    return eval(gen_bindings.ctypes_expr(ctype, h), {"ctypes": ctypes, **vars(B)})  # noqa: S307


def test_generated_bindings_are_up_to_date(header):
    generated = gen_bindings.generate(load_header(HEADER))
    current = (PKG_DIR / "simgrad" / "_bindings.py").read_text()
    assert current == generated, (
        f"simgrad/_bindings.py is stale against {HEADER}; run "
        "`python crates/simgrad-python/tools/gen_bindings.py`"
    )


def test_every_header_function_is_declared(header):
    assert set(B.FUNCTIONS) == set(header.functions), "functions missing from or extra in the bindings"
    for name, fn in header.functions.items():
        restype, argtypes, names = B.FUNCTIONS[name]
        assert restype is _expected(fn.restype, header), name
        assert argtypes == [_expected(p.ctype, header) for p in fn.params], name
        assert names == tuple(p.name for p in fn.params), name


def test_loaded_library_has_the_declared_types(clib, header):
    for name, fn in header.functions.items():
        f = getattr(clib, name)
        assert f.restype is _expected(fn.restype, header), f"{name}: restype {f.restype}"
        want = [_expected(p.ctype, header) for p in fn.params]
        assert list(f.argtypes) == want, f"{name}: argtypes {f.argtypes} != {want}"


def test_structs_match_the_header(header):
    for name, s in header.structs.items():
        cls = getattr(B, name)
        if s.fields is None:
            assert not getattr(cls, "_fields_", None), f"{name} is opaque"
            continue
        fields = cls._fields_
        assert [f[0] for f in fields] == [f.name for f in s.fields], name
        for (fname, ftype), f in zip(fields, s.fields):
            assert ftype is _expected(f.ctype, header), f"{name}.{fname}"


def test_tensor_has_the_dlpack_layout():
    # DLPack's DLTensor on 64-bit targets: 48 bytes, fields at these offsets.
    T = B.simgrad_tensor
    assert ctypes.sizeof(T) == 48
    offsets = {n: getattr(T, n).offset for n, _ in T._fields_}
    assert offsets == {"data": 0, "device": 8, "ndim": 16, "dtype": 20, "shape": 24, "strides": 32, "byte_offset": 40}
    assert ctypes.sizeof(B.simgrad_dtype) == 4 and ctypes.sizeof(B.simgrad_device) == 8


def test_constants_match_the_header(header):
    for name, value in header.defines.items():
        assert getattr(B, name) == value, name
    for enum, values in header.enums.items():
        for name, value in values.items():
            assert getattr(B, name) == value, name
        assert getattr(B, f"{enum.upper()}_NAMES") == {v: n for n, v in values.items()}


def test_versions_and_status_names_from_the_library(clib, header):
    import simgrad

    assert simgrad.abi_version() == header.defines["SIMGRAD_ABI_VERSION"]
    assert simgrad.version() == header.defines["SIMGRAD_VERSION"]
    for value, name in B.SIMGRAD_STATUS_NAMES.items():
        assert simgrad.status_name(value) == name
    assert simgrad.status_name(9999) == "SIMGRAD_UNKNOWN_STATUS"


def test_every_status_has_an_exception_class():
    import simgrad
    from simgrad._errors import STATUS_CLASSES, error_for

    for value, name in B.SIMGRAD_STATUS_NAMES.items():
        if value == B.SIMGRAD_OK:
            continue
        cls = STATUS_CLASSES[value]
        assert issubclass(cls, simgrad.SimgradError)
        e = error_for(value, "message")
        assert type(e) is cls and e.status == value and e.status_name == name and e.message == "message"
        assert name in str(e)
    assert type(error_for(12345, "x")) is simgrad.SimgradError
