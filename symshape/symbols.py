"""Size symbols and safe parsing of shape specs.

Every size symbol is a sympy ``Symbol`` with ``integer=True, positive=True``: the floor
algebra relies on both assumptions. Shape specs such as ``"1,3,H,W"`` are parsed by hand,
never with ``eval`` or ``sympify``.
"""
from __future__ import annotations

import re
import time
from typing import Iterable, Optional, Union

import sympy

from .errors import ShapeError

__all__ = ["ShapeError", "symbols", "size_symbol", "parse_shape", "as_size", "parse_expr"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")
_INT = re.compile(r"[+-]?[0-9]+\Z")


class BothBranches(ShapeError):
    """A forward branches on the sizes and both sides run (``if h >= 224: ... else: ...``).

    Raised by :func:`~symshape.trace.trace`'s piece tracer once the trace is complete along the
    sides taken; ``trace`` then traces each other side as a piece of a piecewise report.
    ``splits`` holds one :class:`Split` per such branch, in the order the forward reached them;
    ``report`` is the report of the path traced (where every split takes its ``taken`` side), or
    None where that path is not a piece by itself (a branch it could not test)."""

    def __init__(self, message: str, splits, report=None):
        super().__init__(message)
        self.splits, self.report = tuple(splits), report


class Split:
    """One branch whose two sides run: ``taken`` the condition of the side traced (as the domain
    holds it), ``other`` its negation; ``layer``, ``kind`` and ``reason`` say which forward
    branches and where; ``domain`` the conditions collected before the branch; ``message`` the
    error text that names it; ``index`` where its condition is in the domain of the path traced."""

    def __init__(self, message: str, taken, other, layer: str, kind: str, reason: str, domain=(), index=None):
        self.message, self.taken, self.other = message, taken, other
        self.layer, self.kind, self.reason, self.domain, self.index = layer, kind, reason, tuple(domain), index

    def __str__(self) -> str:
        return self.message


def size_symbol(name: str) -> sympy.Symbol:
    """The size symbol called *name*: integer and positive.

    >>> size_symbol("H").is_integer, size_symbol("H").is_positive
    (True, True)
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ShapeError(f"{_token(name)} is not a valid size name: use a Python identifier such as 'H' or 'W'")
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
        raise ShapeError(f"a size must be an integer or a name, got {_token(value)}")
    if isinstance(value, int):
        if value.bit_length() > 64:
            raise ShapeError(f"a size must be below 2**64, got an integer of {len(str(abs(value)))} digits" if
                             value.bit_length() < 10_000 else f"a size must be below 2**64, got an integer of "
                             f"{value.bit_length()} bits")
        if value < 0:
            raise ShapeError(f"a size must be >= 0, got {value}; write a non-negative integer or a name such as 'H'")
        return sympy.Integer(value)
    if isinstance(value, str):
        text = value.strip()
        if _INT.match(text):
            if len(text.lstrip("+-").lstrip("0")) > 20:
                digits = text.lstrip("+-").lstrip("0")
                raise ShapeError(f"a size must be below 2**64, got {text[:12]}... ({len(digits)} digits)")
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
    raise ShapeError(f"a size must be an int, a name or a sympy expression, got {type(value).__name__} {_token(value)}")


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
        if len(spec) > MAX_LENGTH:
            raise ShapeError(f"the shape spec {_quote(spec)} is longer than {MAX_LENGTH:,} characters; "
                             "write one such as '1,3,H,W'")
        text = spec.strip()
        if text[:1] in "([" and text[-1:] in ")]":
            text = text[1:-1]
        if not text.strip():
            raise ShapeError(f"the shape spec {_token(spec)} is empty; write one dim or more, such as '1,3,H,W'")
        items = [t.strip() for t in text.split(",")]
        if items and items[-1] == "" and len(items) > 1:
            items.pop()  # a trailing comma, as in "(H,)"
        for i, item in enumerate(items, 1):
            if not (_INT.match(item) or _NAME.match(item)):
                raise ShapeError(
                    f"cannot parse shape spec {_quote(spec)}: item {i}, {_quote(item)}, is neither an integer nor a name; "
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
# Bounds that keep parsing fast (linear, well under a second) on any text. A real model's longest
# expression is about a thousand characters, nested three deep, with constants of a few digits.
MAX_LENGTH = 10_000       # characters in one expression
MAX_DEPTH = 64            # nested parentheses, calls, signs, powers and //
MAX_CALLS = 100           # function calls and // in one expression (sympy evaluates each one)
MAX_SECONDS = 0.5         # CPU time of this thread for one expression; a real one takes under 0.1 s
MAX_DIGITS = 1000         # digits in one integer, literal or computed by **
MAX_MIN_MAX_ARGS = 12     # arguments of all Min and Max together (sympy compares them pairwise)


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


def _quote(text: str) -> str:
    """*text* quoted for a message, middle elided when long."""
    return repr(text) if len(text) <= 80 else f"{text[:40]!r}...{text[-30:]!r} ({len(text):,} characters)"


def _token(value) -> str:
    """A token or value quoted for a message, elided when long."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(str(value)):,} characters)"


def _short(value) -> str:
    if isinstance(value, sympy.Integer) and abs(value) > 10 ** 20:
        n = abs(int(value))
        if n.bit_length() > 4000:  # str() refuses integers of more than 4300 digits
            return f"(an integer of {n.bit_length():,} bits)"
        return f"{str(value)[:12]}... ({len(str(n))} digits)"
    text = str(float(value)) if isinstance(value, float) else str(value)
    return text if len(text) <= 60 else text[:40] + "..."


class _Decimal(float):
    """A decimal literal and where it stood: only ScaledFloor's scale may be one."""

    def __new__(cls, text: str, at: int):
        self = super().__new__(cls, text)
        self.at = at
        return self


class _Parser:
    """Recursive descent over the tokens; one method per precedence level, as in Python's grammar."""

    def __init__(self, text: str):
        self.text, self.tokens, self.i, self.depth, self.calls, self.min_max_args = text, [], 0, 0, 0, 0
        self.start = time.thread_time()
        if len(text) > MAX_LENGTH:
            raise ShapeError(f"cannot parse expression {_quote(text)}: it is {len(text):,} characters long, more "
                             f"than the {MAX_LENGTH:,} allowed; no model's expression is that long")
        pos, end = 0, len(text.rstrip())
        while pos < end:
            match = _TOKEN.match(text, pos)
            if match is None:
                at = len(text) - len(text[pos:].lstrip())
                self.fail(f"unexpected character {text[at]!r}", at)
            kind = match.lastgroup
            value, at = match.group(kind), match.start(kind)
            if kind == "num" and len(value.partition(".")[0].partition("e")[0].partition("E")[0]) > MAX_DIGITS:
                self.fail(f"the number {value[:12]}... has more than {MAX_DIGITS} digits", at)
            self.tokens.append((kind, value, at))
            pos = match.end()

    def count_call(self, what: str, at: int):
        self.calls += 1
        if self.calls > MAX_CALLS:
            self.fail(f"more than {MAX_CALLS} function calls and // (this {what} is one too many)", at)
        if time.thread_time() - self.start > MAX_SECONDS:
            self.fail(f"the expression is too complex: {self.calls - 1} function calls took over {MAX_SECONDS} s "
                      f"of CPU time (this {what} is where parsing stopped)", at)

    def nest(self):
        """One level deeper (a parenthesis, a call, a sign or an exponent), refused past MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"more than {MAX_DEPTH} nested levels (parentheses, calls, signs, powers or //)")

    def fail(self, what: str, at: Optional[int] = None):
        if at is None:
            at = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        raise ShapeError(f"cannot parse expression {_quote(self.text)}: {what} at position {at}; "
                         "use integers, size names, + - * / // **, parentheses and floor, ceiling, Min, Max, Mod")

    def peek(self):
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, *allowed):
        if self.i >= len(self.tokens):
            self.fail("unexpected end")
        kind, value, _ = self.tokens[self.i]
        if allowed and value not in allowed:
            self.fail(f"expected {' or '.join(map(repr, allowed))}, got {_token(value)}")
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
            self.fail(f"unexpected {_token(self.peek())}")
        return value

    def relation(self):
        lhs = self.additive()
        op = self.peek()
        if op in _RELATIONS:
            self.take()
            lhs = _RELATIONS[op](self.expr(lhs), self.expr(self.additive()))
        lhs = self.expr(lhs)
        for number in lhs.atoms(sympy.Rational):  # a product of long literals can exceed the digit bound
            if max(abs(int(number.p)), int(number.q)).bit_length() > MAX_DIGITS * 3.33:
                self.fail(f"a number of more than {MAX_DIGITS} digits results", 0)
        return lhs

    def expr(self, value):
        if isinstance(value, float):
            self.fail(f"a decimal number ({float(value)!r}) is only allowed as the scale of ScaledFloor",
                      getattr(value, "at", None))
        return value

    def additive(self):
        # The terms are added in one Add: adding them one by one re-sorts the sum at every step,
        # which is quadratic in the number of terms.
        terms = [self.multiplicative()]
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            rhs = self.expr(self.multiplicative())
            terms.append(rhs if op == "+" else _kept_product(-rhs.args[0], rhs.args[1]) if _kept(rhs) else -rhs)
        return terms[0] if len(terms) == 1 else sympy.Add(*map(self.expr, terms))

    def multiplicative(self):
        # The factors of a chain are multiplied in one Mul, as the rules build products: a binary
        # 32*(x + 1) would distribute, 32*(x + 1)*(y + 1) in one Mul does not.
        factors, floors, divided = [self.unary()], 0, False
        while self.peek() in ("*", "/", "//"):
            op = self.take()[1]
            divided = divided or op != "*"
            at = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)  # the divisor's
            rhs = self.expr(self.unary())
            if op != "*" and rhs == 0:
                self.fail("division by zero", at)
            if op == "//":
                self.count_call("//", at)
                self.nest()  # a // chain nests floors: floor(floor(a/b)/c)
                floors += 1
                factors = [sympy.floor(sympy.Mul(*map(self.expr, factors)) / rhs)]
            else:
                factors.append(rhs if op == "*" else 1 / rhs)
        self.depth -= floors
        if len(factors) == 2 and not divided:  # 120*(L - 4): a number times a sum stays a product, as printed
            a, b = map(self.expr, factors)
            if a.is_Integer and b.is_Add:
                return _kept_product(a, b)
        return factors[0] if len(factors) == 1 else sympy.Mul(*map(self.expr, factors))

    def unary(self):
        if self.peek() in ("+", "-"):
            op = self.take()[1]
            self.nest()
            value = self.expr(self.unary())
            self.depth -= 1
            return -value if op == "-" else value
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() == "**":
            self.take()
            at = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)  # the exponent's
            self.nest()
            exponent = self.expr(self.unary())
            self.depth -= 1
            if not exponent.is_Integer or abs(int(exponent)) > _MAX_EXPONENT:
                self.fail(f"the exponent must be an integer between -{_MAX_EXPONENT} and {_MAX_EXPONENT}, "
                          f"got {_short(exponent)}", at)
            base = self.expr(base)
            if base.is_Rational:
                size = max(abs(int(base.p)), int(base.q)).bit_length() * abs(int(exponent))
                if size > MAX_DIGITS * 3.33:
                    self.fail(f"the power {_short(base)}**{exponent} has more than {MAX_DIGITS} digits", at)
            if base == 0 and exponent < 0:
                self.fail("division by zero (0 to a negative power)", at)
            base = base ** exponent
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
            self.nest()
            inner = self.expr(self.additive())
            self.take(")")
            self.depth -= 1
            return inner
        self.i -= 1
        self.fail(f"unexpected {_token(value)}")

    def call(self, name: str, at: int):
        if name not in _FUNCTIONS:
            self.fail(f"unknown function {_token(name)}", at)
        arity, fn = _FUNCTIONS[name]
        self.count_call(name, at)
        self.take("(")
        self.nest()
        args = [self.additive()]
        while self.peek() == ",":
            self.take()
            args.append(self.additive())
        self.take(")")
        self.depth -= 1
        if name in ("Min", "Max"):
            self.min_max_args += len(args)
            if self.min_max_args > MAX_MIN_MAX_ARGS:
                self.fail(f"more than {MAX_MIN_MAX_ARGS} arguments of Min and Max in all", at)
        if arity is not None and len(args) != arity:
            self.fail(f"{name} takes {arity} argument{'s' * (arity > 1)}, got {len(args)}", at)
        if name == "ScaledFloor":
            scale = args[1] if isinstance(args[1], float) else self.expr(args[1])
            if not (isinstance(scale, float) or scale.is_Rational) or not 0 < scale <= 2 ** 32:
                self.fail(f"the scale of ScaledFloor must be a positive number at most 2**32, got {_short(scale)}", at)
            return fn(self.expr(args[0]), scale)
        args = [self.expr(a) for a in args]
        if name == "Mod" and args[1] == 0:
            self.fail("Mod by zero (its second argument is 0)", at)
        try:
            return fn(*args)
        except (ArithmeticError, ValueError, TypeError) as err:
            self.fail(f"{name} cannot take these arguments ({err})", at)


def _kept(expr) -> bool:
    """Whether *expr* is a number times a sum kept a product (``120*(L - 4)``, which sympy's own
    ``120*(L - 4)`` would distribute): symshape's totals keep them (:func:`symshape.forms.factored`)."""
    return expr.is_Mul and len(expr.args) == 2 and expr.args[0].is_Integer and expr.args[1].is_Add


def _kept_product(number, total) -> sympy.Expr:
    return sympy.Mul(number, total, evaluate=False) if number not in (0, 1) else number * total


def parse_expr(text: str) -> sympy.Expr:
    """A size expression (or one relation between two) from text, parsed by hand.

    Accepts integers, size names (which become :func:`size_symbol` symbols), ``+ - * / // **``
    (integer exponents), parentheses, ``floor``, ``ceiling``, ``Min``, ``Max``, ``Mod``,
    ``ScaledFloor(size, scale)`` and at most one comparison (``>= <= == != > <``), or several
    comparisons joined by ``|`` (or). Everything is
    built with sympy's own constructors, so the text symshape prints parses back to an equal
    expression; a number times a sum (``120*(L - 4)``) stays a product, as symshape's totals keep
    it. Nothing is evaluated as Python.

    Parsing is linear and bounded, so that any text is answered within a second: at most
    ``MAX_LENGTH`` characters, ``MAX_DEPTH`` nested levels, ``MAX_DIGITS`` digits in an integer
    (literal, or computed by ``**``), ``MAX_CALLS`` function calls and ``//``, ``MAX_MIN_MAX_ARGS``
    arguments of Min and Max, and ``MAX_SECONDS`` of CPU time; beyond them, and for ``Mod(H, 0)``,
    ``0**-1`` or an out-of-range ScaledFloor scale, a :class:`ShapeError` quotes the position.

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
    parser = _Parser(text)
    try:
        return parser.parse()
    except ShapeError:
        raise
    except (ArithmeticError, ValueError, TypeError, RecursionError) as err:  # sympy refusing what was built
        parser.fail(f"{type(err).__name__}: {_short(str(err))}")
