"""Inferring a kernel's arguments from its source: a C/C++ prototype or a Fortran ``bind(C)``
interface.

What the source says is used; what it cannot say must be declared, and the error says exactly
what (with a ready-to-paste ``shapes=`` / ``intents=`` example):

* C/C++: integers passed by value are sizes, floating-point values passed by value are scalars,
  pointers and array parameters are arrays. A literal array parameter (``double x[100]``,
  ``double a[n][m]``) gives the shape; a bare pointer needs ``shapes={"x": ("n",)}``. A pointer to
  ``const`` is ``in``; for other pointers the compiler is asked: clang compiles the file with -O2
  and its ``readonly`` / ``writeonly`` parameter attributes make the argument ``in`` / ``out``.
  A pointer that is both read and written (``inout``, or an ``out`` array the function also
  reads back) is ambiguous and needs ``intents={"y": "inout"}``.
* Fortran: ``value`` integers are sizes, ``value`` reals are scalars, arrays take their shape
  from their declaration (``u(n)``, ``a(0:n-1, m)``; assumed-size ``x(*)`` needs ``shapes=``)
  and their intent from ``intent(...)`` (or the compiler, as for C).

The result is a list of argument tables in the spec format (``name``, ``kind``, ``dtype``,
``shape``, ``intent``), in the function's parameter order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ._errors import BuildError, SpecError

C_EXT = {".c"}
CXX_EXT = {".cpp", ".cc", ".cxx", ".c++", ".cp"}
FORTRAN_EXT = {".f90", ".f", ".f95", ".f03", ".f08", ".for"}

_C_I32 = {"int", "signed", "signed int", "int32_t", "unsigned", "unsigned int", "uint32_t"}
_C_I64 = {
    "long", "long int", "signed long", "long long", "long long int", "int64_t", "ptrdiff_t",
    "size_t", "ssize_t", "intptr_t", "uintptr_t", "unsigned long", "unsigned long long", "uint64_t",
    "long unsigned int", "unsigned long int",
}
_C_F32 = {"float"}
_C_F64 = {"double"}


def language_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in C_EXT:
        return "c"
    if ext in CXX_EXT:
        return "c++"
    if ext in FORTRAN_EXT:
        return "fortran"
    raise SpecError(None, f"cannot tell the language of `{path}` (use .c, .cpp/.cc/.cxx, or .f90/.f)")


@dataclass
class Param:
    """What the source says about one parameter (None: it does not say)."""

    name: str
    kind: str  # "array", "size", "scalar"
    dtype: str
    shape: list | None = None
    intent: str | None = None
    why_no_intent: str = ""
    decl: str = ""


# ---------------------------------------------------------------------- C / C++


def _strip_c(text: str) -> str:
    """Removes comments, string/char literals and preprocessor lines, keeping offsets' meaning."""
    out = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    out = re.sub(r'"(?:\\.|[^"\\])*"', lambda m: '"C"' if m.group(0) == '"C"' else '""', out)
    out = re.sub(r"'(?:\\.|[^'\\])*'", "0", out)
    return re.sub(r"^[ \t]*#[^\n]*(?:\\\n[^\n]*)*", " ", out, flags=re.M)


def _match_paren(text: str, i: int) -> int:
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _split_top(text: str, sep: str = ",") -> list[str]:
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [s.strip() for s in out]


def find_c_prototype(text: str, function: str) -> tuple[str, str, bool]:
    """(return type, parameter list text, is a definition) of ``function``; prefers the
    definition over a declaration."""
    src = _strip_c(text)
    found = None
    for m in re.finditer(rf"\b{re.escape(function)}\s*\(", src):
        before = src[: m.start()].rstrip()
        # A declaration has a return type right before the name (a word or `*`); a call is
        # preceded by an operator, a parenthesis, a statement boundary or a keyword.
        if not before or not (before[-1].isalnum() or before[-1] in "_*"):
            continue
        if re.search(r"\b(?:return|else|do|case|goto|sizeof|new|delete)$", before):
            continue
        close = _match_paren(src, m.end() - 1)
        if close < 0:
            continue
        after = src[close + 1 :].lstrip()
        after = re.sub(r"^(?:noexcept|throw\s*\(\s*\)|__attribute__\s*\(\(.*?\)\))\s*", "", after)
        if not after or after[0] not in "{;":
            continue
        start = max(before.rfind(";"), before.rfind("}"), before.rfind("{"), before.rfind(")"))
        ret = before[start + 1 :]
        ret = re.sub(r'\bextern\s+"C"|\b(?:static|inline|extern|__inline__|__inline)\b', " ", ret)
        ret = re.sub(r"__attribute__\s*\(\(.*?\)\)", " ", ret)
        ret = " ".join(ret.split())
        params = src[m.end() : close]
        is_def = after[0] == "{"
        if found is None or (is_def and not found[2]):
            found = (ret, params, is_def)
        if is_def:
            break
    if found is None:
        raise SpecError(None, f"no definition or declaration of function `{function}` found")
    return found


def _c_dtype(base: str) -> str | None:
    base = re.sub(r"\bstd::", "", base)
    base = " ".join(w for w in base.split() if w not in ("const", "volatile", "register", "struct"))
    if base in _C_F64:
        return "f64"
    if base in _C_F32:
        return "f32"
    if base in _C_I32:
        return "i32"
    if base in _C_I64:
        return "i64"
    return None


def _dim_from_c(text: str):
    t = re.sub(r"\b(?:static|restrict|__restrict__|__restrict|const|volatile)\b", "", text).strip()
    if not t:
        return None
    if re.fullmatch(r"\d+", t):
        return int(t)
    if re.fullmatch(r"[\w\s+\-*()]+", t):
        return " ".join(t.split())
    return None


def parse_c_params(params_text: str, function: str) -> list[Param]:
    raw = params_text.strip()
    if raw in ("", "void"):
        return []
    out = []
    for p in _split_top(raw):
        decl = " ".join(p.split())
        if "&" in decl:
            raise SpecError(None, f"`{function}`: parameter `{decl}` is a C++ reference; kernels take pointers and values")
        if "(" in decl and not re.search(r"\[", decl):
            raise SpecError(None, f"`{function}`: parameter `{decl}` is a function pointer; not supported")
        dims_text = re.findall(r"\[([^\]]*)\]", decl)
        head = re.sub(r"\[[^\]]*\]", "", decl)
        head = re.sub(r"\b(?:__restrict__|__restrict|restrict|register)\b", " ", head)
        m = re.fullmatch(r"(.*?)([A-Za-z_]\w*)\s*", head)
        if not m or not m.group(1).strip() or m.group(1).strip() in ("const", "unsigned", "signed"):
            raise SpecError(None, f"`{function}`: parameter `{decl}` has no name; name every parameter")
        type_text, name = m.group(1), m.group(2)
        stars = type_text.count("*")
        pointee_const = bool(re.search(r"\bconst\b", type_text.split("*")[0])) if stars or dims_text else False
        base = type_text.replace("*", " ").strip()
        dtype = _c_dtype(base)
        if dtype is None:
            raise SpecError(
                None,
                f"`{function}`: parameter `{decl}` has type `{base}`; kernels take float, double, int, "
                "int32_t, int64_t (or size_t/long) values and pointers to them",
            )
        levels = stars + len(dims_text)
        if levels == 0:
            out.append(Param(name, "size" if dtype.startswith("i") else "scalar", dtype, decl=decl))
            continue
        if stars > 1 or (stars and dims_text):
            raise SpecError(None, f"`{function}`: parameter `{decl}` is a pointer to pointers; pass one flat array")
        shape = None
        if dims_text:
            dims = [_dim_from_c(d) for d in dims_text]
            shape = dims if all(d is not None for d in dims) else None
        p = Param(name, "array", dtype, shape=shape, decl=decl)
        if pointee_const:
            p.intent = "in"
        out.append(p)
    return out


# ---------------------------------------------------------------------- Fortran


def _fortran_lines(text: str) -> list[str]:
    """Statements of free-form Fortran: comments removed, continuations joined, lower case
    (except that string literals keep their case)."""
    stmts, cur = [], ""
    for line in text.split("\n"):
        code = re.sub(r"!.*", "", re.sub(r"'[^']*'|\"[^\"]*\"", lambda m: m.group(0).replace("!", "\x00"), line))
        code = code.replace("\x00", "!").rstrip()
        if not code.strip():
            continue
        s = code.strip()
        if s.startswith("&"):
            s = s[1:]
        if s.endswith("&"):
            cur += s[:-1] + " "
            continue
        cur += s
        for part in _split_top(cur, ";"):
            if part:
                stmts.append(part)
        cur = ""
    return stmts


_F_KINDS = {
    "c_double": "f64", "c_float": "f32", "c_int": "i32", "c_int32_t": "i32", "c_int64_t": "i64",
    "c_long": "i64", "c_long_long": "i64", "c_size_t": "i64", "c_intptr_t": "i64", "c_ptrdiff_t": "i64",
    "8": "f64?", "4": "f32?", "real64": "f64", "real32": "f32", "int32": "i32", "int64": "i64",
}


def _fortran_dtype(typespec: str) -> str | None:
    t = typespec.replace(" ", "").lower()
    if t.startswith("doubleprecision"):
        return "f64"
    m = re.fullmatch(r"(real|integer)(?:\((?:kind=)?(\w+)\)|\*(\d+))?", t)
    if not m:
        return None
    base, kind = m.group(1), m.group(2) or m.group(3)
    if kind is None:
        return "f32" if base == "real" else "i32"
    k = _F_KINDS.get(kind)
    if k is None:
        return None
    if k.endswith("?"):
        bits = "64" if kind == "8" else "32"
        return ("f" if base == "real" else "i") + bits
    if (base == "real") != k.startswith("f"):
        return None
    return k


def _fortran_dim(text: str):
    t = text.strip()
    if t in ("*", ":") or t.endswith(":*") or t.endswith(":"):
        return None
    if ":" in t:
        lo, hi = (s.strip() for s in t.split(":", 1))
        if re.fullmatch(r"\d+", lo) and re.fullmatch(r"\d+", hi):
            return int(hi) - int(lo) + 1
        if lo == "1":
            t = hi
        elif lo == "0":
            t = f"{hi}+1"
        else:
            t = f"({hi})-({lo})+1"
    if re.fullmatch(r"\d+", t):
        return int(t)
    if re.fullmatch(r"[\w\s+\-*()]+", t):
        return " ".join(t.split())
    return None


def parse_fortran(text: str, function: str) -> tuple[list[Param], str]:
    """(parameters, C symbol) of the ``bind(C)`` subroutine whose Fortran name or binding name is
    ``function``."""
    stmts = _fortran_lines(text)
    fn = function.lower()
    for i, s in enumerate(stmts):
        m = re.match(r"(?:(?:pure|elemental|recursive|module|impure)\s+)*(subroutine|function)\s+(\w+)\s*\((.*?)\)\s*(.*)$", s, re.I)
        if not m:
            continue
        what, fname, arglist, rest = m.group(1).lower(), m.group(2), m.group(3), m.group(4)
        bm = re.search(r"bind\s*\(\s*c\s*(?:,\s*name\s*=\s*['\"]([^'\"]*)['\"])?\s*\)", rest, re.I)
        symbol = (bm.group(1) if bm and bm.group(1) else fname.lower()) if bm else None
        if fname.lower() != fn and (symbol or "") != function:
            continue
        if not bm:
            raise SpecError(
                None,
                f"Fortran {what} `{fname}` has no bind(C); add `bind(C, name=\"{function}\")` so that C can call it",
            )
        if what == "function":
            raise SpecError(None, f"`{fname}` is a Fortran function; kernels are subroutines writing outputs through arguments")
        names = [a.strip().lower() for a in arglist.split(",") if a.strip()]
        decls: dict[str, dict] = {}
        for d in stmts[i + 1 :]:
            if re.match(r"end\b|contains\b", d, re.I):
                break
            if "::" not in d:
                continue
            spec, ents = d.split("::", 1)
            attrs = _split_top(spec)
            typespec, attrs = attrs[0], [a.lower().replace(" ", "") for a in attrs[1:]]
            dimension = None
            for a in attrs:
                if a.startswith("dimension("):
                    dimension = a[len("dimension(") : -1]
            for ent in _split_top(ents):
                em = re.fullmatch(r"(\w+)\s*(?:\((.*)\))?\s*(?:=.*)?", ent.strip())
                if not em:
                    continue
                decls[em.group(1).lower()] = {
                    "type": typespec.strip(),
                    "attrs": attrs,
                    "dims": em.group(2) if em.group(2) is not None else dimension,
                    "decl": d,
                }
        params = []
        for n in names:
            d = decls.get(n)
            if d is None:
                raise SpecError(None, f"`{fname}`: dummy argument `{n}` has no declaration; declare its type")
            dtype = _fortran_dtype(d["type"])
            if dtype is None:
                raise SpecError(
                    None,
                    f"`{fname}`: argument `{n}` has type `{d['type']}`; kernels take real(c_double), "
                    "real(c_float), integer(c_int), integer(c_int64_t)",
                )
            is_value = "value" in d["attrs"]
            intent = None
            for a in d["attrs"]:
                im = re.fullmatch(r"intent\((in|out|inout|in,out)\)", a)
                if im:
                    intent = {"in,out": "inout"}.get(im.group(1), im.group(1))
            if d["dims"] is None:
                if not is_value:
                    raise SpecError(
                        None,
                        f"`{fname}`: scalar argument `{n}` is passed by reference; add the `value` attribute "
                        f"(sizes and scalars are passed by value), or make it an array `{n}(1)`",
                    )
                params.append(Param(n, "size" if dtype.startswith("i") else "scalar", dtype, decl=d["decl"]))
                continue
            dims = [_fortran_dim(x) for x in _split_top(d["dims"])]
            shape = dims if all(x is not None for x in dims) else None
            params.append(Param(n, "array", dtype, shape=shape, intent=intent, decl=d["decl"]))
        return params, symbol
    raise SpecError(None, f"no Fortran subroutine `{function}` (or with binding name `{function}`) found")


# ---------------------------------------------------------------------- the compiler's view


def _tool(candidates: list[str]) -> str | None:
    llvm = os.environ.get("SIMGRAD_LLVM_DIR")
    for c in candidates:
        if llvm:
            p = Path(llvm) / "bin" / c
            if p.is_file():
                return str(p)
        w = shutil.which(c)
        if w:
            return w
    return None


def llvm_param_attrs(path: Path, function: str, language: str, flags: list[str]) -> tuple[list[set[str]] | None, str]:
    """The LLVM attributes of each parameter of ``function`` after -O2 (None, reason if the
    compiler is unavailable or the function is not found under that symbol)."""
    if language == "fortran":
        tool = _tool(["flang-new-19", "flang-19", "flang-new", "flang"])
        cmd = [tool, "-O2", "-S", "-emit-llvm", "-o", "-", *flags, str(path)] if tool else None
    else:
        tool = _tool(["clang-19", "clang"])
        lang = "c++" if language == "c++" else "c"
        cmd = [tool, "-O2", "-S", "-emit-llvm", "-x", lang, "-o", "-", *flags, str(path)] if tool else None
    if cmd is None:
        return None, "no clang/flang found to compile the source"
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{cmd[0]} failed: {e}"
    if r.returncode != 0:
        raise BuildError(None, f"{Path(cmd[0]).name} cannot compile {path}:\n{r.stderr.strip()}")
    m = re.search(rf"^define [^\n]*@{re.escape(function)}\((.*?)\)[^\n]*\{{", r.stdout, re.M)
    if not m:
        mangled = re.findall(rf"^define [^\n]*@(_Z\w*{len(function)}{re.escape(function)}\w*)\(", r.stdout, re.M)
        if mangled:
            raise SpecError(
                None,
                f"`{function}` in {path} is a C++ function with a mangled name ({mangled[0]}); "
                f'declare it extern "C" so that simgrad can call it by name',
            )
        return None, f"`{function}` is not defined as a symbol of that name"
    attrs = []
    for p in _split_top(m.group(1)):
        words = set(re.findall(r"\b[a-z_]+\b", re.sub(r"%\S+", "", p)))
        attrs.append(words)
    return attrs, ""


# ---------------------------------------------------------------------- putting it together


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(json.dumps(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def infer_signature(
    source,
    function: str,
    *,
    shapes: dict | None = None,
    intents: dict | None = None,
    differentiable: dict | None = None,
    flags: list[str] | tuple = (),
    use_compiler: bool = True,
) -> tuple[list[dict], str, str]:
    """The arguments of ``function`` in ``source`` as spec tables, its C symbol and language.

    ``shapes`` / ``intents`` / ``differentiable`` (dicts by argument name) add or override what
    the source says. Raises `SpecError` naming exactly what is missing when the source leaves a
    shape or an intent open.
    """
    path = Path(source)
    if not path.is_file():
        raise SpecError(None, f"source file `{source}` not found")
    language = language_of(path)
    text = path.read_text(errors="replace")
    shapes = dict(shapes or {})
    intents = dict(intents or {})
    differentiable = dict(differentiable or {})
    if language == "fortran":
        params, symbol = parse_fortran(text, function)
        proto = f"subroutine {function}(" + ", ".join(p.name for p in params) + ") bind(C)"
    else:
        ret, params_text, _ = find_c_prototype(text, function)
        if " ".join(ret.split()) != "void":
            raise SpecError(
                None,
                f"`{function}` returns `{ret or '?'}`; kernels return void and write their outputs through pointer arguments",
            )
        params = parse_c_params(params_text, function)
        symbol = function
        proto = f"void {function}({' '.join(params_text.split())})"

    by_name = {p.name: p for p in params}
    for what, given in (("shapes", shapes), ("intents", intents), ("differentiable", differentiable)):
        for k in given:
            if k not in by_name:
                raise SpecError(
                    None, f"{what}= names `{k}`, which is not a parameter of `{function}` ({', '.join(by_name) or 'none'})"
                )
    for k, v in intents.items():
        if v not in ("in", "out", "inout"):
            raise SpecError(None, f'intents["{k}"] is {v!r}; use "in", "out" or "inout"')
        if by_name[k].kind != "array":
            raise SpecError(None, f"intents= names `{k}`, a {by_name[k].kind} (always in); only arrays have intents")

    need_compiler = any(
        p.kind == "array" and p.intent is None and p.name not in intents for p in params
    )
    llvm_note = ""
    if need_compiler and use_compiler:
        attrs, llvm_note = llvm_param_attrs(path, symbol, language, list(flags))
        if attrs is not None and len(attrs) == len(params):
            for p, a in zip(params, attrs):
                if p.kind != "array" or p.intent is not None:
                    continue
                if "readonly" in a or "readnone" in a:
                    p.intent = "in"
                elif "writeonly" in a:
                    p.intent = "out"
                else:
                    p.why_no_intent = "the function both reads and writes it"
    elif language == "c++" and use_compiler:
        # Still make sure the symbol is not mangled: a clear message beats a link error.
        llvm_param_attrs(path, symbol, language, list(flags))

    missing_shapes, missing_intents = [], []
    args = []
    for p in params:
        a: dict = {"name": p.name, "kind": p.kind, "dtype": p.dtype}
        if p.kind == "array":
            shape = shapes.get(p.name, p.shape)
            if shape is None:
                missing_shapes.append(p)
            else:
                if isinstance(shape, (int, str)):
                    shape = (shape,)
                a["shape"] = [d if isinstance(d, int) else str(d) for d in shape]
            intent = intents.get(p.name, p.intent)
            if intent is None:
                missing_intents.append(p)
            else:
                a["intent"] = intent
        if p.name in differentiable:
            a["differentiable"] = bool(differentiable[p.name])
        args.append(a)

    if missing_shapes or missing_intents:
        sizes = [p.name for p in params if p.kind == "size"]
        guess = (sizes[0],) if len(sizes) == 1 else ("n",)
        lines = [f"cannot infer the full signature of `{function}` in {path}:", f"  {proto}", "declare:"]
        ex_kw = []
        if missing_shapes:
            d = "{" + ", ".join(f'"{p.name}": {_fmt_shape(guess)}' for p in missing_shapes) + "}"
            lines.append(
                f"  shapes={d}   (each pointer argument's extents in elements: numbers, or names"
                + (f" of size arguments ({', '.join(sizes)})" if sizes else "")
                + ")"
            )
            ex_kw.append(f"shapes={d}")
        if missing_intents:
            d = "{" + ", ".join(f'"{p.name}": "inout"' for p in missing_intents) + "}"
            why = "; ".join(
                f"`{p.name}`: {p.why_no_intent or llvm_note or 'not const, and the compiler was not asked'}"
                for p in missing_intents
            )
            lines.append(
                f'  intents={d}   ("in", "out" or "inout" for each array the function may write; {why})'
            )
            ex_kw.append(f"intents={d}")
        lines.append(f'e.g. simgrad.Enzyme("{source}", "{function}", {", ".join(ex_kw)})')
        raise SpecError(None, "\n".join(lines))
    return args, symbol, language
