"""Array dimensions of the manifest: numbers, size names and small expressions (``"3*s"``).

The same grammar as the runtime's (``simgrad-core/src/dims.rs``): non-negative integers and
names combined with ``+``, ``-``, ``*`` and parentheses. Python needs it to allocate output arrays
and to infer size arguments from input shapes before calling the kernel.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\s*(?:(\d+)|([A-Za-z_]\w*)|(.))")


class Dim:
    """A parsed dim. ``name`` is set when the dim is a bare size name."""

    __slots__ = ("text", "_tree", "name")

    def __init__(self, raw):
        if isinstance(raw, int):
            self.text, self._tree, self.name = str(raw), ("num", raw), None
            return
        self.text = str(raw)
        tokens = [t for t in _TOKEN.findall(self.text) if any(t)]
        self._tree, rest = _sum(tokens, 0, self.text)
        if rest != len(tokens):
            raise ValueError(f"cannot parse dim `{self.text}`")
        self.name = self._tree[1] if self._tree[0] == "name" else None

    def names(self) -> list[str]:
        out: list[str] = []
        _names(self._tree, out)
        return out

    def compiled(self):
        """This dim for quick evaluation: its value when it is a number, its name when it is a bare
        size name, else the `Dim` itself (evaluate with `eval`)."""
        kind = self._tree[0]
        return self._tree[1] if kind in ("num", "name") else self

    def eval(self, sizes: dict[str, int]) -> int | None:
        """The extent, or None when a name is unbound."""
        return _eval(self._tree, sizes)

    def __repr__(self) -> str:
        return self.text


def _atom(tokens, i, text):
    if i >= len(tokens):
        raise ValueError(f"dim `{text}` ends early")
    num, name, op = tokens[i]
    if num:
        return ("num", int(num)), i + 1
    if name:
        return ("name", name), i + 1
    if op == "(":
        tree, j = _sum(tokens, i + 1, text)
        if j >= len(tokens) or tokens[j][2] != ")":
            raise ValueError(f"unbalanced parentheses in dim `{text}`")
        return tree, j + 1
    raise ValueError(f"unexpected `{op}` in dim `{text}`")


def _product(tokens, i, text):
    left, i = _atom(tokens, i, text)
    while i < len(tokens) and tokens[i][2] == "*":
        right, i = _atom(tokens, i + 1, text)
        left = ("*", left, right)
    return left, i


def _sum(tokens, i, text):
    left, i = _product(tokens, i, text)
    while i < len(tokens) and tokens[i][2] in "+-" and tokens[i][2]:
        op = tokens[i][2]
        right, i = _product(tokens, i + 1, text)
        left = (op, left, right)
    return left, i


def _names(tree, out):
    if tree[0] == "name":
        out.append(tree[1])
    elif tree[0] in "+-*":
        _names(tree[1], out)
        _names(tree[2], out)


def _eval(tree, sizes):
    kind = tree[0]
    if kind == "num":
        return tree[1]
    if kind == "name":
        return sizes.get(tree[1])
    a, b = _eval(tree[1], sizes), _eval(tree[2], sizes)
    if a is None or b is None:
        return None
    return a + b if kind == "+" else a - b if kind == "-" else a * b
