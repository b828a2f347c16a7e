"""Size symbols and safe parsing of shape specs.

Every size symbol is a sympy ``Symbol`` with ``integer=True, positive=True``: the floor
algebra relies on both assumptions. Shape specs such as ``"1,3,H,W"`` are parsed by hand,
never with ``eval`` or ``sympify``.
"""
from __future__ import annotations

import re
from typing import Iterable, Union

import sympy

__all__ = ["ShapeError", "symbols", "size_symbol", "parse_shape", "as_size"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_INT = re.compile(r"[+-]?[0-9]+\Z")


class ShapeError(ValueError):
    """Every user-facing failure of symshape: a bad spec, a layer that cannot take its input,
    a size outside the model's domain. The message names the layer, the shape that arrived,
    what was expected, and how to fix it."""


def size_symbol(name: str) -> sympy.Symbol:
    """The size symbol called *name*: integer and positive.

    >>> size_symbol("H").is_integer, size_symbol("H").is_positive
    (True, True)
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ShapeError(f"{name!r} is not a valid size name: use a Python identifier such as 'H' or 'W'")
    return sympy.Symbol(name, integer=True, positive=True)


def symbols(names: str):
    """Size symbols, like ``sympy.symbols`` but always integer and positive.

    Names are separated by spaces or commas; one name gives one symbol, several a tuple.

    >>> H, W = symbols("H W")
    >>> H, W
    (H, W)
    >>> symbols("L")
    L
    """
    parts = [p for p in re.split(r"[\s,]+", names.strip()) if p]
    if not parts:
        raise ShapeError("symbols() needs at least one name, e.g. symbols('H W')")
    syms = tuple(size_symbol(p) for p in parts)
    return syms[0] if len(syms) == 1 else syms


SizeLike = Union[int, str, sympy.Expr]


def as_size(value: SizeLike) -> sympy.Expr:
    """One dimension of a shape as a sympy expression.

    Integers become ``Integer``; a name becomes a size symbol; a sympy Symbol is replaced by the
    size symbol of the same name (so a plain ``sympy.Symbol('H')`` gains the integer and positive
    assumptions); other sympy expressions must be integer-valued expressions of size symbols.

    >>> as_size(3), as_size("H"), as_size(sympy.Symbol("W")).is_integer
    (3, H, True)
    """
    if isinstance(value, bool):
        raise ShapeError(f"a size must be an integer or a name, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ShapeError(f"a size must be >= 0, got {value}")
        return sympy.Integer(value)
    if isinstance(value, str):
        text = value.strip()
        if _INT.match(text):
            return as_size(int(text))
        return size_symbol(text)
    if isinstance(value, sympy.Symbol):
        return size_symbol(value.name)
    if isinstance(value, sympy.Expr):
        if value.is_Integer:
            return as_size(int(value))
        renamed = value.xreplace({s: size_symbol(s.name) for s in value.free_symbols})
        if renamed.is_integer is not True:
            raise ShapeError(f"a size expression must be integer-valued, got {value}")
        return renamed
    raise ShapeError(f"a size must be an int, a name or a sympy expression, got {type(value).__name__} {value!r}")


def parse_shape(spec: Union[str, Iterable[SizeLike]]) -> tuple:
    """A shape spec as a tuple of sympy expressions.

    A string is comma-separated integers and names, optionally in brackets; an iterable may
    mix ints, names and sympy expressions.

    >>> parse_shape("1,3,H,W")
    (1, 3, H, W)
    >>> parse_shape("(N, 3, 224, 224)")
    (N, 3, 224, 224)
    >>> parse_shape([1, "C", sympy.Symbol("L")])
    (1, C, L)
    >>> parse_shape("1,3,H*2,W")
    Traceback (most recent call last):
    ...
    symshape.symbols.ShapeError: cannot parse shape spec '1,3,H*2,W': item 3, 'H*2', is neither an integer nor a name; write a spec such as '1,3,H,W'
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text[:1] in "([" and text[-1:] in ")]":
            text = text[1:-1]
        items = [t.strip() for t in text.split(",")]
        if items and items[-1] == "" and len(items) > 1:
            items.pop()  # a trailing comma, as in "(H,)"
        for i, item in enumerate(items, 1):
            if not (_INT.match(item) or _NAME.match(item)):
                raise ShapeError(
                    f"cannot parse shape spec {spec!r}: item {i}, {item!r}, is neither an integer nor a name; "
                    "write a spec such as '1,3,H,W'"
                )
        return tuple(as_size(item) for item in items)
    try:
        items = list(spec)
    except TypeError:
        raise ShapeError(f"a shape must be a string such as '1,3,H,W' or a tuple, got {type(spec).__name__}") from None
    return tuple(as_size(item) for item in items)
