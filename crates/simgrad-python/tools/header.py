"""A small parser for the cbindgen-generated C header ``include/simgrad.h``.

It understands exactly the C that cbindgen emits for libsimgrad: ``#define`` constants, the
status enum, ``typedef struct`` definitions (opaque or with fields), ``typedef`` aliases and
function prototypes, with the preprocessor conditionals evaluated as a C11 compiler would
(``__cplusplus`` undefined, ``__STDC_VERSION__ == 201112L``). Anything else is an error rather
than a silent skip, so that a header change the generator does not understand fails loudly.

Used by ``gen_bindings.py`` (which writes ``simgrad/_bindings.py``) and by the test that checks the
bindings against the header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

#: Macros the conditionals of the header may test, as seen by a C11 compiler.
C11_MACROS = {"__STDC_VERSION__": 201112}


@dataclass
class Param:
    """One parameter: its C type (normalised, e.g. ``const struct simgrad_kernel *``) and name."""

    ctype: str
    name: str


@dataclass
class Function:
    name: str
    restype: str
    params: list[Param]


@dataclass
class Struct:
    name: str
    #: ``None`` for an opaque struct.
    fields: list[Param] | None


@dataclass
class Header:
    defines: dict[str, int | str] = field(default_factory=dict)
    enums: dict[str, dict[str, int]] = field(default_factory=dict)
    typedefs: dict[str, str] = field(default_factory=dict)
    structs: dict[str, Struct] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)


def find_header(start: Path | None = None) -> Path | None:
    """The checked-in header of the repository holding ``start`` (default: this file), if any."""
    here = (start or Path(__file__)).resolve()
    for d in [here, *here.parents]:
        for cand in (d / "include" / "simgrad.h", d / "crates" / "simgrad-capi" / "include" / "simgrad.h"):
            if cand.is_file():
                return cand
    return None


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _eval_condition(expr: str, defined: set[str]) -> bool:
    expr = re.sub(r"defined\s*\(\s*(\w+)\s*\)", lambda m: "1" if m.group(1) in defined else "0", expr)
    expr = re.sub(r"\b(\d+)L\b", r"\1", expr)
    for name, value in C11_MACROS.items():
        expr = re.sub(rf"\b{name}\b", str(value), expr)
    expr = expr.replace("||", " or ").replace("&&", " and ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    if re.search(r"[A-Za-z_]\w*", re.sub(r"\b(or|and|not)\b", "", expr)):
        raise ValueError(f"cannot evaluate preprocessor condition `{expr.strip()}`")
    return bool(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307 - digits and operators only


def _preprocess(text: str, header: Header) -> str:
    """Evaluates conditionals, records ``#define`` constants, returns the remaining C text."""
    defined: set[str] = set()
    out: list[str] = []
    stack: list[tuple[bool, bool]] = []  # (this branch active, some branch already taken)
    lines = _strip_comments(text).split("\n")
    active = True
    for line in lines:
        s = line.strip()
        if not s.startswith("#"):
            if active:
                out.append(line)
            continue
        m = re.match(r"#\s*(\w+)\s*(.*)", s)
        if not m:
            raise ValueError(f"cannot parse preprocessor line `{s}`")
        kw, rest = m.group(1), m.group(2).strip()
        if kw in ("if", "ifdef", "ifndef"):
            if kw == "ifdef":
                cond = rest in defined
            elif kw == "ifndef":
                cond = rest not in defined
            else:
                cond = _eval_condition(rest, defined)
            stack.append((active, cond))
            active = active and cond
        elif kw == "else":
            outer, taken = stack[-1]
            active = outer and not taken
            stack[-1] = (outer, True)
        elif kw == "endif":
            active, _ = stack.pop()
        elif not active:
            continue
        elif kw == "define":
            dm = re.match(r"(\w+)\s*(.*)", rest)
            name, value = dm.group(1), dm.group(2).strip()
            defined.add(name)
            if re.fullmatch(r"-?\d+", value):
                header.defines[name] = int(value)
            elif re.fullmatch(r'"[^"]*"', value):
                header.defines[name] = value[1:-1]
            # Other macros (include guards, brace lists) carry no value Python needs.
        elif kw == "include":
            continue
        else:
            raise ValueError(f"unexpected preprocessor directive `{s}`")
    if stack:
        raise ValueError("unbalanced preprocessor conditionals")
    return "\n".join(out)


def _norm_type(t: str) -> str:
    t = re.sub(r"\s+", " ", t.strip())
    t = re.sub(r"\s*\*\s*", " *", t)
    return t.replace("* *", "**").strip()


def _split_decl(decl: str) -> Param:
    decl = re.sub(r"\s+", " ", decl.strip())
    m = re.fullmatch(r"(.*?[\s\*])(\w+)", decl)
    if not m:
        raise ValueError(f"cannot parse declaration `{decl}`")
    return Param(_norm_type(m.group(1)), m.group(2))


def _statements(text: str) -> list[str]:
    """Top-level statements, split at ``;`` outside braces."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == ";" and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        raise ValueError(f"trailing text without `;`: {''.join(cur).strip()[:80]}")
    return [s for s in out if s]


def parse_header(text: str) -> Header:
    h = Header()
    body = _preprocess(text, h)
    for st in _statements(body):
        st = re.sub(r"\s+", " ", st)
        if m := re.fullmatch(r"enum (\w+)(?: : \w+)? \{(.*)\}", st):
            values, nxt = {}, 0
            for item in filter(None, (x.strip() for x in m.group(2).split(","))):
                em = re.fullmatch(r"(\w+)(?: = (-?\d+))?", item)
                if not em:
                    raise ValueError(f"cannot parse enumerator `{item}`")
                nxt = int(em.group(2)) if em.group(2) is not None else nxt
                values[em.group(1)] = nxt
                nxt += 1
            h.enums[m.group(1)] = values
        elif m := re.fullmatch(r"typedef struct (\w+) \{(.*)\} (\w+)", st):
            fields = [_split_decl(f) for f in m.group(2).split(";") if f.strip()]
            h.structs[m.group(1)] = Struct(m.group(1), fields)
            h.typedefs[m.group(3)] = f"struct {m.group(1)}"
        elif m := re.fullmatch(r"typedef struct (\w+) (\w+)", st):
            h.structs.setdefault(m.group(1), Struct(m.group(1), None))
            h.typedefs[m.group(2)] = f"struct {m.group(1)}"
        elif m := re.fullmatch(r"typedef (.+?) (\w+)", st):
            h.typedefs[m.group(2)] = _norm_type(m.group(1))
        elif m := re.fullmatch(r"(.+?)\b(\w+) ?\((.*)\)", st):
            ret = _norm_type(m.group(1))
            raw = m.group(3).strip()
            params = [] if raw in ("", "void") else [_split_decl(p) for p in raw.split(",")]
            h.functions[m.group(2)] = Function(m.group(2), ret, params)
        else:
            raise ValueError(f"cannot parse statement `{st[:120]}`")
    return h


def load_header(path: Path) -> Header:
    return parse_header(Path(path).read_text())
