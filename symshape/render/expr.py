"""Printing size expressions for people: floors with their numerator grouped.

sympy prints ``floor(H/2 - 7/2)``; symshape prints ``floor((H - 7)/2)``, the way the formula is
written in papers and in PyTorch's documentation.
"""
from __future__ import annotations

import sympy
from sympy.printing.str import StrPrinter

__all__ = ["fmt", "SizePrinter"]


def grouped(arg):
    """``(numerator, denominator)`` of a floor argument when the denominator is an integer > 1."""
    num, den = sympy.fraction(sympy.together(arg))
    if den.is_Integer and den > 1:
        return num, den
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

    def _print_floor(self, expr):
        return self._print_rounding("floor", expr)

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
    """
    return _PRINTER.doprint(sympy.sympify(expr, strict=True))
