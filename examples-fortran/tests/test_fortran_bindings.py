"""The Fortran module `simgrad` (crates/simgrad-capi/fortran/simgrad.f90) against include/simgrad.h.

The header is the truth: it is generated from the Rust exports. These tests parse both files and
fail when the module's `bind(c)` interfaces, `bind(c)` types or constants disagree with the header
(a function missing or extra, an argument of another type, passed by value instead of by
reference, a struct field out of order, a status code renumbered). A second group compiles small
programs with a C compiler and every available Fortran compiler and compares struct sizes and
field offsets.

Run: python -m pytest examples-fortran/tests -q
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "simgrad.h"
MODULE = ROOT / "crates" / "simgrad-capi" / "fortran" / "simgrad.f90"

# C scalar types and the Fortran type spec that interoperates with them (Fortran has no unsigned
# integers; the signed kind of the same size is used).
C_TO_FORTRAN = {
    "uint8_t": "integer(c_int8_t)",
    "int8_t": "integer(c_int8_t)",
    "uint16_t": "integer(c_int16_t)",
    "int16_t": "integer(c_int16_t)",
    "uint32_t": "integer(c_int32_t)",
    "int32_t": "integer(c_int32_t)",
    "uint64_t": "integer(c_int64_t)",
    "int64_t": "integer(c_int64_t)",
    "size_t": "integer(c_size_t)",
    "simgrad_status": "integer(c_int32_t)",
    "char": "character(kind=c_char)",
    "double": "real(c_double)",
    "float": "real(c_float)",
}
# Opaque handles: only ever a pointer, a `type(c_ptr)` in Fortran.
OPAQUE = {"simgrad_library", "simgrad_kernel"}
# Header macros whose Fortran names differ (Fortran names are case-insensitive, and the functions
# simgrad_version / simgrad_abi_version take the plain names).
RENAMED = {"SIMGRAD_VERSION": "SIMGRAD_MODULE_VERSION", "SIMGRAD_ABI_VERSION": "SIMGRAD_MODULE_ABI_VERSION"}
# Structs whose lists libsimgrad writes through (nested data pointers): never INTENT(IN).
WRITTEN_THROUGH = {"simgrad_tensor"}


# --------------------------------------------------------------------------------------------
# The header
# --------------------------------------------------------------------------------------------


@dataclass
class CType:
    base: str  # "uint32_t", "char", "simgrad_tensor", ...
    pointers: int  # number of '*'
    const: bool  # the pointee (or the value) is const


@dataclass
class CFunction:
    name: str
    ret: CType
    params: list[tuple[str, CType]]


def _strip_c_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _parse_ctype(decl: str) -> tuple[str, CType]:
    """`const struct simgrad_tensor *args` -> ("args", CType("simgrad_tensor", 1, True))."""
    decl = " ".join(decl.split())
    m = re.fullmatch(r"(.*?)([A-Za-z_]\w*)", decl)
    assert m, decl
    spec, name = m.group(1), m.group(2)
    pointers = spec.count("*")
    words = spec.replace("*", " ").split()
    const = "const" in words
    words = [w for w in words if w not in ("const", "struct", "enum")]
    assert len(words) == 1, f"cannot parse C declaration `{decl}`"
    return name, CType(words[0], pointers, const)


def parse_header(text: str):
    text = _strip_c_comments(text)
    defines = {}
    for m in re.finditer(r"^\s*#define\s+(SIMGRAD_\w+)\s+(.+?)\s*$", text, flags=re.M):
        value = m.group(2)
        if re.fullmatch(r"-?\d+", value):
            defines[m.group(1)] = int(value)
        elif re.fullmatch(r'"[^"]*"', value):
            defines[m.group(1)] = value.strip('"')
    enum_body = re.search(r"enum\s+simgrad_status\b[^{]*\{(.*?)\}", text, flags=re.S).group(1)
    enum = {m.group(1): int(m.group(2)) for m in re.finditer(r"(SIMGRAD_\w+)\s*=\s*(\d+)", enum_body)}
    structs = {}
    for m in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*\w+\s*;", text, flags=re.S):
        fields = [_parse_ctype(f) for f in m.group(2).split(";") if f.strip()]
        structs[m.group(1)] = fields
    body = text[text.index('extern "C" {') + len('extern "C" {') :]
    body = body[: body.rindex("#ifdef __cplusplus")]
    body = "\n".join(l for l in body.splitlines() if not l.lstrip().startswith("#"))
    functions = {}
    for decl in body.split(";"):
        decl = " ".join(decl.split())
        if not decl:
            continue
        m = re.fullmatch(r"(.*?)\((.*)\)", decl)
        assert m, f"cannot parse `{decl}`"
        name, ret = _parse_ctype(m.group(1))
        params = [] if m.group(2).strip() in ("", "void") else [_parse_ctype(p) for p in m.group(2).split(",")]
        functions[name] = CFunction(name, ret, params)
    return defines, enum, structs, functions


# --------------------------------------------------------------------------------------------
# The module
# --------------------------------------------------------------------------------------------


@dataclass
class FDummy:
    typespec: str  # normalised: "integer(c_int32_t)", "type(c_ptr)", "type(simgrad_tensor)", ...
    attrs: set[str] = field(default_factory=set)  # "value", "intent(in)", "optional", "dimension(*)"


@dataclass
class FInterface:
    fname: str
    cname: str
    args: list[str]
    result: str | None  # typespec of a function result; None for a subroutine
    decls: dict[str, FDummy]


def _strip_f_comments(text: str) -> str:
    out = []
    for line in text.splitlines():
        quote = None
        for i, ch in enumerate(line):
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "!":
                line = line[:i]
                break
        out.append(line)
    # Join continuation lines.
    return re.sub(r"&\s*\n\s*&?", " ", "\n".join(out))


def _norm(spec: str) -> str:
    spec = re.sub(r"\s+", "", spec.lower())
    return spec.replace("character(kind=c_char,len=1)", "character(kind=c_char)")


def _parse_decl(line: str):
    """`integer(c_size_t), intent(out) :: out, n` -> (typespec, attrs, [names with dims])."""
    if "::" not in line:
        return None
    left, right = line.split("::", 1)
    parts = [p.strip() for p in re.split(r",(?![^()]*\))", left)]
    typespec = _norm(parts[0])
    attrs = {_norm(p) for p in parts[1:]}
    names = []
    for item in re.split(r",(?![^()]*\))", right):
        item = item.split("=", 1)[0].strip()
        m = re.fullmatch(r"(\w+)\s*(\(.*\))?", item)
        if m:
            names.append((m.group(1).lower(), _norm(m.group(2)) if m.group(2) else None))
    return typespec, attrs, names


def parse_module(text: str):
    text = _strip_f_comments(text)
    lines = [l.strip() for l in text.splitlines()]
    params = {}
    for l in lines:
        m = re.match(r"(integer\(c_int32_t\)|integer|character\(len=\*\)),\s*parameter.*::\s*(\w+)\s*=\s*(.+)$", l, re.I)
        if m:
            v = m.group(3).strip()
            params[m.group(2).upper()] = v.strip('"') if v.startswith('"') else int(v)
    types = {}
    interfaces = {}
    i = 0
    while i < len(lines):
        l = lines[i]
        m = re.match(r"type\s*,\s*bind\(c\)\s*(?:,\s*public\s*)?::\s*(\w+)", l, re.I)
        if m:
            fields = []
            i += 1
            while not re.match(r"end\s*type", lines[i], re.I):
                d = _parse_decl(lines[i])
                if d:
                    for n, dims in d[2]:
                        fields.append((n, d[0]))
                i += 1
            types[m.group(1).lower()] = fields
        m = re.match(
            r"(function|subroutine)\s+(\w+)\s*\(([^)]*)\)\s*(?:result\s*\((\w+)\)\s*)?bind\s*\(\s*c\s*,\s*name\s*=\s*[\"'](\w+)[\"']\s*\)",
            l,
            re.I,
        )
        if m:
            kind, fname, arglist, result, cname = m.groups()
            args = [a.strip().lower() for a in arglist.split(",") if a.strip()]
            decls = {}
            i += 1
            while not re.match(r"end\s+(function|subroutine)", lines[i], re.I):
                d = _parse_decl(lines[i])
                if d:
                    typespec, attrs, names = d
                    for n, dims in names:
                        a = set(attrs)
                        if dims:
                            a.add(f"dimension{dims}")
                        decls[n] = FDummy(typespec, a)
                i += 1
            res = None
            if kind.lower() == "function":
                res = decls[(result or fname).lower()].typespec
            interfaces[cname] = FInterface(fname.lower(), cname, args, res, decls)
        i += 1
    return params, types, interfaces


# --------------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------------

DEFINES, ENUM, STRUCTS, FUNCTIONS = parse_header(HEADER.read_text())
PARAMS, FTYPES, INTERFACES = parse_module(MODULE.read_text())


def expected_scalar(base: str) -> str:
    if base in STRUCTS:
        return f"type({base})"
    assert base in C_TO_FORTRAN, f"no Fortran equivalent known for C type `{base}`"
    return C_TO_FORTRAN[base]


def check_param(fn: str, name: str, c: CType, f: FDummy) -> list[str]:
    """The problems with Fortran dummy `f` for C parameter `c` (empty when they agree)."""
    where = f"{fn}({name})"
    value = "value" in f.attrs
    intents = {a for a in f.attrs if a.startswith("intent")}
    if c.pointers == 0:
        want = expected_scalar(c.base)
        errs = [] if value else [f"{where}: a C value must be a VALUE dummy"]
        if f.typespec != want:
            errs.append(f"{where}: C `{c.base}` needs `{want}`, the module has `{f.typespec}`")
        return errs
    if f.typespec == "type(c_ptr)" and value:
        # Any C pointer may be passed as an untyped address.
        return [] if c.pointers == 1 else [f"{where}: `{c.base} **` needs a `type(c_ptr)` by reference"]
    if c.pointers == 2:
        if f.typespec != "type(c_ptr)" or value:
            return [f"{where}: `{c.base} **` needs `type(c_ptr)` by reference (no VALUE)"]
        return [] if intents <= {"intent(out)", "intent(inout)"} and intents else [
            f"{where}: an output pointer needs INTENT(OUT), has {sorted(intents)}"
        ]
    if c.base in OPAQUE or c.base == "void":
        return [f"{where}: `{c.base} *` needs `type(c_ptr), value`"]
    want = expected_scalar(c.base)
    errs = []
    if f.typespec != want or value:
        errs.append(f"{where}: C `{c.base} *` needs `{want}` by reference, the module has `{f.typespec}`{' value' if value else ''}")
    if c.base in WRITTEN_THROUGH:
        if "intent(in)" in intents:
            errs.append(f"{where}: `{c.base}` lists must not be INTENT(IN): libsimgrad writes through their data pointers")
    elif c.const and intents != {"intent(in)"}:
        errs.append(f"{where}: a `const {c.base} *` needs INTENT(IN), has {sorted(intents)}")
    elif not c.const and not intents & {"intent(out)", "intent(inout)"}:
        errs.append(f"{where}: a non-const `{c.base} *` needs INTENT(OUT) or INTENT(INOUT)")
    return errs


def test_header_and_module_parse():
    assert len(FUNCTIONS) >= 20, sorted(FUNCTIONS)
    assert "simgrad_kernel_vjp" in FUNCTIONS and "simgrad_kernel_vjp" in INTERFACES
    assert {"simgrad_tensor", "simgrad_dtype", "simgrad_device", "simgrad_arg_info", "simgrad_build_options"} <= set(STRUCTS)


def test_every_c_function_is_bound_and_nothing_else():
    bound = {n for n in INTERFACES if n.startswith("simgrad_")}
    assert sorted(set(FUNCTIONS) - bound) == [], "C functions without a bind(c) interface in the module"
    assert sorted(bound - set(FUNCTIONS)) == [], "bind(c) interfaces to functions the header does not declare"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_signature_matches(name):
    c = FUNCTIONS[name]
    f = INTERFACES[name]
    assert f.fname == name, f"the Fortran interface of {name} is named {f.fname}"
    assert f.args == [p for p, _ in c.params], f"{name}: argument names/order differ"
    # Return value.
    if c.ret.base == "void" and c.ret.pointers == 0:
        assert f.result is None, f"{name} returns void: it must be a subroutine"
    elif c.ret.pointers:
        assert f.result == "type(c_ptr)", f"{name} returns a pointer: the result must be type(c_ptr)"
    else:
        assert f.result == expected_scalar(c.ret.base), f"{name}: result `{f.result}` for C `{c.ret.base}`"
    errs = []
    for pname, ctype in c.params:
        errs += check_param(name, pname, ctype, f.decls[pname])
    assert errs == []


@pytest.mark.parametrize("name", sorted(STRUCTS))
def test_struct_fields_match(name):
    assert name in FTYPES, f"struct {name} has no bind(c) type in the module"
    c_fields = STRUCTS[name]
    f_fields = FTYPES[name]
    assert [n for n, _ in f_fields] == [n for n, _ in c_fields], f"{name}: field names/order differ"
    for (fname, ftype), (_, ct) in zip(f_fields, c_fields):
        want = "type(c_ptr)" if ct.pointers else expected_scalar(ct.base)
        assert ftype == want, f"{name}.{fname}: C `{ct.base}{'*' * ct.pointers}` needs `{want}`, has `{ftype}`"


def test_constants_match():
    missing, wrong = [], []
    for name, value in list(DEFINES.items()) + list(ENUM.items()):
        fname = RENAMED.get(name, name)
        if fname not in PARAMS:
            missing.append(name)
        elif PARAMS[fname] != value:
            wrong.append((name, value, PARAMS[fname]))
    assert missing == [], "header constants without a module parameter"
    assert wrong == [], "constants whose values differ (name, header, module)"


# --------------------------------------------------------------------------------------------
# Layout, compiled: sizes and field offsets from C and from each Fortran compiler.
# --------------------------------------------------------------------------------------------

FORTRAN_COMPILERS = [fc for fc in ("gfortran", "flang-new-19") if shutil.which(fc)]
C_COMPILER = next((cc for cc in ("cc", "gcc", "clang-19", "clang") if shutil.which(cc)), None)


def _c_layout_program() -> str:
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "simgrad.h"', "int main(void) {"]
    for s, fields in STRUCTS.items():
        lines.append(f'  printf("{s} %zu\\n", sizeof({s}));')
        for f, _ in fields:
            lines.append(f'  printf("{s}.{f} %zu\\n", offsetof({s}, {f}));')
    lines += ["  return 0;", "}"]
    return "\n".join(lines)


def _fortran_layout_program() -> str:
    lines = ["program layout", "  use, intrinsic :: iso_c_binding", "  use simgrad", "  implicit none"]
    for s in STRUCTS:
        lines.append(f"  type({s}), target :: v_{s}")
    lines.append("  integer(c_intptr_t) :: base")
    for s, fields in STRUCTS.items():
        lines.append(f"  write (*, '(a, 1x, i0)') '{s}', c_sizeof(v_{s})")
        lines.append(f"  base = transfer(c_loc(v_{s}), base)")
        for f, _ in fields:
            lines.append(
                f"  write (*, '(a, 1x, i0)') '{s}.{f}', transfer(c_loc(v_{s}%{f}), base) - base"
            )
    lines.append("end program layout")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory):
    if C_COMPILER is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("c_layout")
    (d / "layout.c").write_text(_c_layout_program())
    subprocess.run([C_COMPILER, "-std=c11", f"-I{ROOT / 'include'}", "layout.c", "-o", "layout"], cwd=d, check=True)
    return subprocess.run([str(d / "layout")], check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("fc", FORTRAN_COMPILERS or [pytest.param("gfortran", marks=pytest.mark.skip("no Fortran compiler"))])
def test_compiled_layout_matches_c(fc, c_layout, tmp_path):
    (tmp_path / "layout.f90").write_text(_fortran_layout_program())
    subprocess.run([fc, "-c", str(MODULE), "-o", "simgrad.o"], cwd=tmp_path, check=True)
    # The layout program calls no libsimgrad function; it links against stubs of every function
    # instead of the library, so that it needs no cargo build.
    stubs = "".join(f"void {name}(void) {{}}\n" for name in FUNCTIONS)
    (tmp_path / "stubs.c").write_text(stubs)
    subprocess.run([C_COMPILER, "-c", "stubs.c", "-o", "stubs.o"], cwd=tmp_path, check=True)
    subprocess.run([fc, "layout.f90", "simgrad.o", "stubs.o", "-o", "layout"], cwd=tmp_path, check=True)
    out = subprocess.run([str(tmp_path / "layout")], check=True, capture_output=True, text=True).stdout
    c = dict(l.split() for l in c_layout.splitlines())
    f = dict(l.split() for l in out.splitlines())
    assert f == c
