"""Printing size expressions: for people (:func:`fmt`, floors with their numerator grouped) and
exactly, for programs (:func:`expr_text`, text that :func:`symshape.symbols.parse_expr` reads back).

sympy prints ``floor(H/2 - 7/2)``; symshape prints ``floor((H - 7)/2)``, the way the formula is
written in papers and in PyTorch's documentation. Every module that shows an expression (reports,
rules' messages, renderers) prints through here.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import sympy
from sympy.printing.str import StrPrinter

from .floors import _ratio

__all__ = ["fmt", "fmt_shape", "grouped", "SizePrinter", "ExactPrinter", "expr_text"]


def grouped(arg):
    """``(numerator, denominator)`` of a floor argument when the denominator is an integer > 1."""
    ratio = _ratio(arg)  # cached: rules print the same floors in message after message
    if ratio is not None and ratio[1] > 1:
        return ratio[0], sympy.Integer(ratio[1])
    return None


class SizePrinter(StrPrinter):
    """sympy's str printer with ``floor((H - 7)/2)`` and ``ceiling((H - 7)/2)``."""

    def _print_rounding(self, name, expr):
        parts = grouped(expr.args[0])
        if parts is None:
            return f"{name}({self._print(expr.args[0])})"
        num, den = parts
        text = self._print(num)
        if not (num.is_Symbol or num.is_Integer or isinstance(num, sympy.Function)):
            text = f"({text})"
        return f"{name}({text}/{den})"

    def _print_Equality(self, expr):
        lhs, rhs = expr.args
        if isinstance(lhs, sympy.Mod) and rhs == 0:
            return f"{self._print(lhs.args[0])} ≡ 0 (mod {self._print(lhs.args[1])})"
        return f"{self._print(lhs)} = {self._print(rhs)}"

    def _print_Unequality(self, expr):
        lhs, rhs = expr.args
        if isinstance(lhs, sympy.Mod) and rhs == 0:
            return f"{self._print(lhs.args[0])} ≢ 0 (mod {self._print(lhs.args[1])})"
        return f"{self._print(lhs)} ≠ {self._print(rhs)}"

    def _print_floor(self, expr):
        return self._print_rounding("floor", expr)

    _OR = " or "

    def _print_Or(self, expr):
        # "H = 16 or H = 1": the equations with a size of 1 (broadcasting's stretch) last
        parts = sorted(expr.args, key=lambda a: (isinstance(a, sympy.Equality) and 1 in a.args, str(a)))
        return self._OR.join(self._print(a) for a in parts)

    def _print_ceiling(self, expr):
        return self._print_rounding("ceiling", expr)


_PRINTER = SizePrinter()


def fmt(expr) -> str:
    """A size expression as text.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> fmt(sympy.Mul(32, floor_div(H - 7, 2) + 1, floor_div(W - 7, 2) + 1))
    '32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1)'
    >>> fmt(floor_div(H, 8)), fmt(7)
    ('floor(H/8)', '7')
    >>> fmt(sympy.Eq(sympy.Mod(H, 32), 0)), fmt(sympy.Eq(64 * floor_div(H, 8), 256))
    ('H ≡ 0 (mod 32)', '64*floor(H/8) = 256')
    >>> fmt(sympy.Or(sympy.Eq(H, 1), sympy.Eq(H, 16)))
    'H = 16 or H = 1'
    >>> fmt(sympy.Ne(H, 240)), fmt(sympy.Ne(sympy.Mod(H, 2), 0))
    ('H ≠ 240', 'H ≢ 0 (mod 2)')
    """
    return _fmt(sympy.sympify(expr, strict=True))


@lru_cache(maxsize=16384)
def _fmt(expr) -> str:
    return _PRINTER.doprint(expr)


def fmt_shape(shape) -> str:
    """A shape as text: ``(1, 32, floor((H - 7)/2) + 1)``; one dim keeps its comma, ``(5,)``.

    >>> fmt_shape((1, 5)), fmt_shape((5,))
    ('(1, 5)', '(5,)')
    """
    return "(" + ", ".join(fmt(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class ExactPrinter(SizePrinter):
    """The readable printer, with every construct in a form that parse_expr reads back."""

    printmethod = "_symshape_exact"  # not ScaledFloor's lossy _sympystr

    def _print_ScaledFloor(self, expr):
        scale = expr.args[1]
        exact = Fraction(expr.scale) == Fraction(int(scale.p), int(scale.q))
        return f"ScaledFloor({self._print(expr.args[0])}, {repr(expr.scale) if exact else scale})"

    def _print_Equality(self, expr):
        return f"{self._print(expr.lhs)} == {self._print(expr.rhs)}"

    def _print_Unequality(self, expr):
        return f"{self._print(expr.lhs)} != {self._print(expr.rhs)}"

    _OR = " | "


_EXACT = ExactPrinter()


def expr_text(expr) -> str:
    """An expression as text that :func:`~symshape.symbols.parse_expr` reads back exactly.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div, scaled_floor
    >>> H = symbols("H")
    >>> expr_text(floor_div(H - 7, 2) + 1), expr_text(sympy.Eq(sympy.Mod(H, 32), 0))
    ('floor((H - 7)/2) + 1', 'Mod(H, 32) == 0')
    >>> expr_text(scaled_floor(H, 0.29))
    'ScaledFloor(H, 0.29)'
    >>> from symshape.symbols import parse_expr
    >>> parse_expr(expr_text(scaled_floor(H, 0.29))) == scaled_floor(H, 0.29)
    True
    >>> expr_text(parse_expr("ScaledFloor(H, 1/3)"))
    'ScaledFloor(H, 1/3)'
    >>> expr_text(sympy.Or(sympy.Eq(H, 1), sympy.Eq(H, 16)))
    'H == 16 | H == 1'
    """
    return _EXACT.doprint(sympy.sympify(expr, strict=True))
