"""Size symbols and safe parsing of shape specs.

Every size symbol is a sympy ``Symbol`` with ``integer=True, positive=True``: the floor
algebra relies on both assumptions. Shape specs such as ``"1,3,H,W"`` are parsed by hand,
never with ``eval`` or ``sympify``.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional, Union

import sympy

__all__ = ["ShapeError", "symbols", "size_symbol", "parse_shape", "as_size", "parse_expr"]

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
            raise ShapeError(f"a size must be >= 0, got {value}; write a non-negative integer or a name such as 'H'")
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
        if not text.strip():
            raise ShapeError(f"the shape spec {spec!r} is empty; write one dim or more, such as '1,3,H,W'")
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


# --- parse_expr: a safe parser for size expressions (never eval/sympify) --------------------------

_TOKEN = re.compile(r"\s*(?:(?P<num>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
                    r"|(?P<op>\*\*|//|>=|<=|==|!=|[-+*/(),<>|]))")
_RELATIONS = {">=": sympy.Ge, "<=": sympy.Le, "==": sympy.Eq, "!=": sympy.Ne, ">": sympy.Gt, "<": sympy.Lt}
_MAX_EXPONENT = 64


def _scaled_floor(size, scale):
    from .floors import ScaledFloor, scaled_floor

    if isinstance(scale, float):
        return scaled_floor(size, scale)
    if not (scale.is_Rational and scale > 0):
        raise ValueError(f"the scale of ScaledFloor must be a positive number, got {scale}")
    return ScaledFloor(size, scale)


_FUNCTIONS = {
    "floor": (1, sympy.floor), "ceiling": (1, sympy.ceiling), "Min": (None, sympy.Min), "Max": (None, sympy.Max),
    "Mod": (2, sympy.Mod), "ScaledFloor": (2, _scaled_floor),
}


class _Decimal(float):
    """A decimal literal and where it stood: only ScaledFloor's scale may be one."""

    def __new__(cls, text: str, at: int):
        self = super().__new__(cls, text)
        self.at = at
        return self


class _Parser:
    """Recursive descent over the tokens; one method per precedence level, as in Python's grammar."""

    def __init__(self, text: str):
        self.text = text
        self.tokens, pos = [], 0
        while text[pos:].strip():
            match = _TOKEN.match(text, pos)
            if match is None:
                at = len(text) - len(text[pos:].lstrip())
                self.fail(f"unexpected character {text[at]!r}", at)
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()
        self.i = 0

    def fail(self, what: str, at: Optional[int] = None):
        if at is None:
            at = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        raise ShapeError(f"cannot parse expression {self.text!r}: {what} at position {at}; "
                         "use integers, size names, + - * / // **, parentheses and floor, ceiling, Min, Max, Mod")

    def peek(self):
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, *allowed):
        if self.i >= len(self.tokens):
            self.fail("unexpected end")
        kind, value, _ = self.tokens[self.i]
        if allowed and value not in allowed:
            self.fail(f"expected {' or '.join(map(repr, allowed))}, got {value!r}")
        self.i += 1
        return kind, value

    def parse(self):
        if not self.tokens:
            self.fail("empty expression")
        value = self.relation()
        if self.peek() == "|":  # relations joined by "or": ``H == 16 | H == 1``
            parts = [value]
            while self.peek() == "|":
                self.take()
                parts.append(self.relation())
            if any(not isinstance(p, sympy.core.relational.Relational) for p in parts):
                self.fail("'|' joins relations only")
            value = sympy.Or(*parts)
        if self.i < len(self.tokens):
            self.fail(f"unexpected {self.peek()!r}")
        return value

    def relation(self):
        lhs = self.additive()
        op = self.peek()
        if op in _RELATIONS:
            self.take()
            lhs = _RELATIONS[op](self.expr(lhs), self.expr(self.additive()))
        return lhs

    def expr(self, value):
        if isinstance(value, float):
            self.fail(f"a decimal number ({float(value)!r}) is only allowed as the scale of ScaledFloor",
                      getattr(value, "at", None))
        return value

    def additive(self):
        value = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            rhs = self.expr(self.multiplicative())
            value = self.expr(value) + rhs if op == "+" else self.expr(value) - rhs
        return value

    def multiplicative(self):
        # The factors of a chain are multiplied in one Mul, as the rules build products: a binary
        # 32*(x + 1) would distribute, 32*(x + 1)*(y + 1) in one Mul does not.
        factors = [self.unary()]
        while self.peek() in ("*", "/", "//"):
            op = self.take()[1]
            rhs = self.expr(self.unary())
            if op != "*" and rhs == 0:
                self.fail("division by zero")
            if op == "//":
                factors = [sympy.floor(sympy.Mul(*map(self.expr, factors)) / rhs)]
            else:
                factors.append(rhs if op == "*" else 1 / rhs)
        return factors[0] if len(factors) == 1 else sympy.Mul(*map(self.expr, factors))

    def unary(self):
        if self.peek() in ("+", "-"):
            op = self.take()[1]
            value = self.expr(self.unary())
            return -value if op == "-" else value
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() == "**":
            self.take()
            exponent = self.expr(self.unary())
            if not exponent.is_Integer or abs(int(exponent)) > _MAX_EXPONENT:
                self.fail(f"the exponent must be an integer between -{_MAX_EXPONENT} and {_MAX_EXPONENT}, "
                          f"got {exponent}")
            base = self.expr(base) ** exponent
        return base

    def atom(self):
        at = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        kind, value = self.take()
        if kind == "num":
            return sympy.Integer(int(value)) if value.isdigit() else _Decimal(value, at)
        if kind == "name":
            if self.peek() == "(":
                return self.call(value, at)
            if value in _FUNCTIONS:
                self.fail(f"{value} needs arguments in parentheses")
            return size_symbol(value)
        if value == "(":
            inner = self.expr(self.additive())
            self.take(")")
            return inner
        self.i -= 1
        self.fail(f"unexpected {value!r}")

    def call(self, name: str, at: int):
        if name not in _FUNCTIONS:
            self.fail(f"unknown function {name!r}", at)
        arity, fn = _FUNCTIONS[name]
        self.take("(")
        args = [self.additive()]
        while self.peek() == ",":
            self.take()
            args.append(self.additive())
        self.take(")")
        if arity is not None and len(args) != arity:
            self.fail(f"{name} takes {arity} argument{'s' * (arity > 1)}, got {len(args)}")
        if name == "ScaledFloor":
            return fn(self.expr(args[0]), args[1] if isinstance(args[1], float) else self.expr(args[1]))
        return fn(*map(self.expr, args))


def parse_expr(text: str) -> sympy.Expr:
    """A size expression (or one relation between two) from text, parsed by hand.

    Accepts integers, size names (which become :func:`size_symbol` symbols), ``+ - * / // **``
    (integer exponents), parentheses, ``floor``, ``ceiling``, ``Min``, ``Max``, ``Mod``,
    ``ScaledFloor(size, scale)`` and at most one comparison (``>= <= == != > <``), or several
    comparisons joined by ``|`` (or). Everything is
    built with sympy's own constructors, so the text symshape prints parses back to an equal
    expression. Nothing is evaluated as Python.

    >>> parse_expr("32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1)")
    32*(floor(H/2 - 7/2) + 1)*(floor(W/2 - 7/2) + 1)
    >>> parse_expr("H // 8"), parse_expr("Min(H, 2*W) + 2**3"), parse_expr("Mod(H, 32) == 0")
    (floor(H/8), Min(H, 2*W) + 8, Eq(Mod(H, 32), 0))
    >>> parse_expr("ScaledFloor(H, 0.29)")
    floor(0.29*H)
    >>> parse_expr("exp(H)")
    Traceback (most recent call last):
    ...
    symshape.symbols.ShapeError: cannot parse expression 'exp(H)': unknown function 'exp' at position 0; use integers, size names, + - * / // **, parentheses and floor, ceiling, Min, Max, Mod
    """
    if not isinstance(text, str):
        raise ShapeError(f"parse_expr() needs a string, got {type(text).__name__}")
    return _Parser(text).parse()
