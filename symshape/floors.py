"""The integer-floor algebra: canonical constructors for floor, ceil and mod of sizes.

sympy leaves ``floor(floor(floor(H/2)/2)/2)`` as it is and cannot relate ``ceiling`` to ``floor``.
The constructors here keep every size closed-form by applying, for integer-valued numerators
and positive integer moduli:

* ``floor((floor(y) + e)/m) = floor((y + e)/m)`` for real y, integer e (nests collapse);
* ``floor((g*A + b)/(g*m)) = floor((A + floor(b/g))/m)`` for integer A (common factors cancel);
* ``floor((m*A + B)/m) = A + floor(B/m)`` (whole multiples leave the floor);
* ``ceil(n/m) = floor((n + m - 1)/m)`` and ``n mod m = n - m*floor(n/m)``;
* ``floor((q*min(a, b) + e)/m) = min(floor((q*a + e)/m), floor((q*b + e)/m))`` for q > 0.

>>> from symshape.symbols import symbols
>>> H = symbols("H")
>>> floor_div(floor_div(floor_div(H, 2), 2), 2)
floor(H/8)
>>> ceil_div(H, 4)
floor(H/4 + 3/4)
>>> floor_div(floor_div(H + 2*3 - 7, 2) + 1 + 2*1 - 3, 2) + 1
floor(H/4 - 1/4) + 1
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Optional

import sympy

__all__ = ["floor_div", "ceil_div", "floor_of", "ceil_of", "whole_parts_out", "mod", "smin", "canonical",
           "ScaledFloor", "scaled_floor", "affine", "simplify_relation", "finest_floor"]


def _as_int(value, what: str) -> int:
    if isinstance(value, sympy.Integer):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"{what} must be an integer, got {value!r}")


def affine(expr) -> Optional[tuple]:
    """``({symbol: a, ...}, b)`` when *expr* is ``sum(a*symbol) + b`` with integers a, b, else None.

    >>> from symshape.symbols import symbols
    >>> H, W = symbols("H W")
    >>> affine(2*H - W + 7)
    ({H: 2, W: -1}, 7)
    >>> affine(H/2) is None
    True
    """
    expr = sympy.expand(sympy.sympify(expr, strict=True))
    coeffs, const = {}, 0
    for term, c in expr.as_coefficients_dict().items():
        if not c.is_Integer:
            return None
        if term is sympy.S.One:
            const += int(c)
        elif term.is_Symbol:
            coeffs[term] = int(c)
        else:
            return None
    return dict(sorted(coeffs.items(), key=lambda kv: kv[0].name)), const


def _split(num: sympy.Expr) -> Optional[tuple]:
    """Integer-valued *num* as ``({atom: coeff}, const)`` with integer coefficients, else None."""
    terms, const = {}, 0
    for term, c in sympy.expand(num).as_coefficients_dict().items():
        if not c.is_Integer:
            return None
        if term is sympy.S.One:
            const += int(c)
            continue
        if term.is_integer is not True:
            return None
        terms[term] = terms.get(term, 0) + int(c)
    return {t: c for t, c in terms.items() if c}, const


def _join(terms: dict, const: int) -> sympy.Expr:
    return sympy.Add(*(c * t for t, c in terms.items()), sympy.Integer(const))


@lru_cache(maxsize=8192)
def _ratio(arg: sympy.Expr) -> Optional[tuple]:
    """``(numerator, m)`` with a positive integer m when ``arg == numerator/m``, else None."""
    num, den = sympy.fraction(sympy.together(arg))
    if not den.is_Integer:
        return None
    den = int(den)
    if den < 0:
        num, den = -num, -den
    return num, den


def floor_div(num, m) -> sympy.Expr:
    """``floor(num / m)`` in canonical closed form, for integer-valued *num* and integer ``m >= 1``.

    >>> from symshape.symbols import symbols
    >>> H, W = symbols("H W")
    >>> floor_div(H - 7, 2)
    floor(H/2 - 7/2)
    >>> floor_div(2*H + 6, 4)
    floor(H/2 + 3/2)
    >>> floor_div(4*H + 2*W + 1, 2)
    2*H + W
    >>> floor_div(sympy.Min(H, W) + 1, 2)
    Min(floor(H/2 + 1/2), floor(W/2 + 1/2))
    """
    m = _as_int(m, "the divisor")
    if m < 1:
        raise ValueError(f"floor_div needs a positive divisor, got {m}")
    num = sympy.sympify(num, strict=True)
    if m == 1:
        return num
    split = _split(num)
    if split is None:
        return sympy.floor(num / m)
    terms, const = split
    # Whole multiples of m leave the floor.
    outside = {t: c // m for t, c in terms.items() if c % m == 0}
    inside = {t: c for t, c in terms.items() if c % m}
    out = _join(outside, 0)
    if not inside:
        return out + const // m
    # Common factors of the divisor and every non-constant coefficient cancel.
    g = math.gcd(m, *inside.values())
    if g > 1:
        inside = {t: c // g for t, c in inside.items()}
        const, m = const // g, m // g
        if m == 1:
            return out + _join(inside, const)
    if len(inside) == 1:
        (atom, q), = inside.items()
        # floor((floor(y) + e)/m) == floor((y + e)/m)
        if q == 1 and isinstance(atom, sympy.floor):
            ratio = _ratio(atom.args[0])
            if ratio is not None:
                inner_num, n = ratio
                return out + floor_div(inner_num + n * const, n * m)
        # floor is monotone: it passes through min and max.
        if q > 0 and isinstance(atom, (sympy.Min, sympy.Max)):
            parts = [floor_div(q * a + const, m) for a in atom.args]
            return out + (smin(*parts) if isinstance(atom, sympy.Min) else sympy.Max(*parts))
    if const % m == 0:
        out, const = out + const // m, 0
    # The argument is canonical: sympy's own evaluation would find nothing more to pull out.
    return out + sympy.floor(_join(inside, const) / m, evaluate=False)


def ceil_div(num, m) -> sympy.Expr:
    """``ceil(num / m) = floor((num + m - 1)/m)`` for integer-valued *num*, so ceil and floor mix.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> ceil_div(floor_div(H + 1, 2), 2)
    floor(H/4 + 3/4)
    """
    m = _as_int(m, "the divisor")
    return floor_div(sympy.sympify(num, strict=True) + m - 1, m)


def floor_of(expr) -> sympy.Expr:
    """``floor(expr)`` of a rational combination of sizes (``math.floor(H / 8)``), as
    :func:`floor_div` of its numerator by its integer denominator where it has that form.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> floor_of(H / 8), floor_of((floor_div(H - 7, 8) + 1) / 2), floor_of(H / H)
    (floor(H/8), floor(H/16 + 1/16), 1)
    """
    num, den = sympy.fraction(sympy.together(sympy.sympify(expr, strict=True)))
    if den.is_Integer and den > 0 and num.is_integer:
        return floor_div(num, int(den))
    return sympy.floor(expr)


def ceil_of(expr) -> sympy.Expr:
    """``ceil(expr)`` of a rational combination of sizes (``math.ceil(H / 8)``), as :func:`ceil_div`.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> ceil_of(H / 8), ceil_of((floor_div(H - 7, 8) + 1) / 2)
    (floor(H/8 + 7/8), floor(H/16 + 9/16))
    """
    num, den = sympy.fraction(sympy.together(sympy.sympify(expr, strict=True)))
    if den.is_Integer and den > 0 and num.is_integer:
        return ceil_div(num, int(den))
    return sympy.ceiling(expr)


def whole_parts_out(expr) -> sympy.Expr:
    """*expr* with each ``floor(y + c)`` (c a number) written ``floor(y + c - k) + k``, k = floor(c),
    so that equal sizes built two ways (``floor((H - 1)/2) + 1`` from a window, ``floor((H + 1)/2)``
    from a ceil) become the same expression: for comparing sizes, not for printing.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> whole_parts_out(floor_div(H - 1, 2) + 1) == whole_parts_out(floor_div(H + 1, 2))
    True
    """
    expr = sympy.sympify(expr, strict=True)
    swaps = {}
    for f in expr.atoms(sympy.floor):
        const = f.args[0].as_coeff_Add()[0]
        k = math.floor(const) if const.is_Rational else 0
        if k:
            swaps[f] = sympy.floor(f.args[0] - k) + k
    return expr.xreplace(swaps) if swaps else expr


def mod(num, m) -> sympy.Expr:
    """``num mod m`` (Python's sign convention) as ``num - m*floor(num/m)``.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> mod(-H, 7)
    -H - 7*floor(-H/7)
    >>> [mod(-h, 7) for h in (7, 8, 13)] == [0, 6, 1]
    True
    """
    m = _as_int(m, "the modulus")
    num = sympy.sympify(num, strict=True)
    if num.is_Integer:
        return sympy.Integer(int(num) % m)
    return num - m * floor_div(num, m)


def _floor_key(expr):
    """``(rest, numerator without constant, m, constant)`` for ``rest + floor((A + c)/m)``."""
    if isinstance(expr, sympy.floor):
        rest, f = sympy.Integer(0), expr
    elif isinstance(expr, sympy.Add):
        floors = [t for t in expr.args if isinstance(t, sympy.floor)]
        if len(floors) != 1:
            return None
        f = floors[0]
        rest = expr - f
    else:
        return None
    ratio = _ratio(f.args[0])
    if ratio is None:
        return None
    num, m = ratio
    split = _split(num)
    if split is None:
        return None
    terms, c = split
    return rest, _join(terms, 0), m, c


def smin(*args) -> sympy.Expr:
    """``min`` that resolves what the floor algebra can decide.

    Two candidates ``r + floor((A + c1)/m)`` and ``r + floor((A + c2)/m)`` differ only in the
    constant, so the one with the smaller constant is the minimum for every A; candidates whose
    difference is a constant compare directly. Otherwise sympy's ``Min`` stays.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> smin(floor_div(H - 3, 2) + 1, floor_div(H, 2) + 1)
    floor(H/2 - 3/2) + 1
    >>> smin(H, H + 3)
    H
    """
    items = [sympy.sympify(a, strict=True) for a in args]
    kept: list = []
    for a in items:
        for i, b in enumerate(kept):
            diff = sympy.expand(a - b)
            if diff.is_number:
                if diff < 0:
                    kept[i] = a
                break
            ka, kb = _floor_key(a), _floor_key(b)
            if ka and kb and ka[:3] == kb[:3]:
                if ka[3] < kb[3]:
                    kept[i] = a
                break
        else:
            kept.append(a)
    return kept[0] if len(kept) == 1 else sympy.Min(*kept)


class ScaledFloor(sympy.Function):
    """``floor(double(L) * scale)``: torch's output size for a float ``scale_factor``.

    torch multiplies in IEEE double arithmetic, whose rounding can push a product that is just
    below an integer onto it: ``10 * 0.7`` is ``7.0`` in doubles although 0.7's exact binary
    value times 10 is below 7. This function evaluates exactly as torch does at integers and is
    monotone non-decreasing in L. Use :func:`scaled_floor`, which returns an ordinary floor when
    the product is exact.
    """

    is_integer = True
    nargs = 2

    @classmethod
    def eval(cls, size, scale):
        if size.is_Integer and scale.is_Rational:
            return sympy.Integer(math.floor(float(int(size)) * float(scale)))
        return None

    def _eval_is_nonnegative(self):
        return True

    @property
    def scale(self) -> float:
        return float(self.args[1])

    def _sympystr(self, printer):
        arg = printer._print(self.args[0])
        return f"floor({self.scale!r}*{f'({arg})' if self.args[0].is_Add else arg})"

    def _latex(self, printer):
        arg = printer._print(self.args[0])
        arg = rf"\left({arg}\right)" if self.args[0].is_Add else arg
        return rf"\left\lfloor {self.scale!r} \cdot {arg} \right\rfloor"


def scaled_floor(size, scale: float) -> sympy.Expr:
    """torch's ``floor(float(size) * scale)``: exact floor algebra where the double product is exact.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> scaled_floor(H, 2.0), scaled_floor(H, 0.5), scaled_floor(H, 1.5)
    (2*H, floor(H/2), floor(3*H/2))
    >>> scaled_floor(H, 0.7), scaled_floor(floor_div(H, 4) + 1, 0.7)
    (floor(0.7*H), floor(0.7*(floor(H/4) + 1)))
    >>> scaled_floor(H, 0.7).args
    (H, 3152519739159347/4503599627370496)
    >>> scaled_floor(10, 0.7), scaled_floor(100, 0.29)
    (7, 28)

    At a given size the value is torch's, also where the closed form is not: above 2**53 the size
    itself rounds to a double (a symbolic closed form is exact below 2**40: ``Report.at`` checks it).

    >>> scaled_floor(2**53 + 1, 2.0), 2 * (2**53 + 1)
    (18014398509481984, 18014398509481986)
    """
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    size = sympy.sympify(size, strict=True)
    if size.is_Integer:  # torch's own arithmetic: the size rounded to a double (above 2**53), times the scale
        return sympy.Integer(math.floor(float(int(size)) * scale))
    frac = Fraction(scale)  # the exact binary value of the double
    # With a small numerator the double product L*scale is exact for every L < 2**40.
    if frac.numerator < 2 ** 13:
        return floor_div(size * frac.numerator, frac.denominator)
    return ScaledFloor(size, sympy.Rational(frac.numerator, frac.denominator))


def canonical(expr) -> sympy.Expr:
    """Rewrite every floor, ceiling and Mod in *expr* with the constructors above, bottom-up.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> canonical(sympy.floor(sympy.floor(sympy.floor(H/2)/2)/2))
    floor(H/8)
    >>> canonical(sympy.ceiling(H/32))
    floor(H/32 + 31/32)
    """
    expr = sympy.sympify(expr, strict=True)
    if not expr.args:
        return expr
    args = [canonical(a) for a in expr.args]
    if isinstance(expr, (sympy.floor, sympy.ceiling)):
        ratio = _ratio(args[0])
        if ratio is not None and _split(ratio[0]) is not None:
            num, m = ratio
            return floor_div(num, m) if isinstance(expr, sympy.floor) else ceil_div(num, m)
    if isinstance(expr, sympy.Mod) and args[1].is_Integer and args[1] > 0:
        if _split(args[0]) is not None:
            return mod(args[0], int(args[1]))
    if isinstance(expr, sympy.Min):
        return smin(*args)
    return expr.func(*args)


def _monotone_form(expr):
    """``(X, a, b, m, k, c)`` when ``expr == k*floor((a*X + b)/m) + c`` (or ``k*(a*X + b) + c``
    with m = 0 meaning no floor) for one symbol X and integers a, b, k, c, else None."""
    split = _split(expr)
    if split is None:
        return None
    terms, c = split
    if len(terms) != 1:
        return None
    (atom, k), = terms.items()
    if atom.is_Symbol:
        return atom, 1, 0, 0, k, c
    if isinstance(atom, sympy.floor):
        ratio = _ratio(atom.args[0])
        if ratio is None:
            return None
        num, m = ratio
        lin = affine(num)
        if lin is None or len(lin[0]) != 1:
            return None
        (x, a), = lin[0].items()
        return x, a, lin[1], m, k, c
    return None


def simplify_relation(rel):
    """A relation ``lhs >= rhs`` or ``lhs <= rhs`` on one size symbol through at most one floor,
    solved exactly for the symbol; anything else is returned as it is.

    ``k*floor((a*X + b)/m) + c >= 0`` with a, k > 0 holds iff ``X >= ceil((m*ceil(-c/k) - b)/a)``.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> simplify_relation(sympy.Ge(floor_div(H - 7, 2) + 1, 1))
    H >= 7
    >>> simplify_relation(sympy.Ge(floor_div(H - 3, 4) + 1, 1))
    H >= 3
    >>> simplify_relation(sympy.Le(floor_div(H, 2) + 1, 4))
    H <= 7
    >>> simplify_relation(sympy.Ge(floor_div(H + 6, 2) + 1, 1))
    True
    >>> simplify_relation(sympy.Lt(floor_div(H - 1, 2) + 1, 7))
    H <= 12

    An equation ``A = m*floor(A/m)`` (a concatenation of a map with its pooled-and-upsampled
    copy, say) is divisibility, ``A ≡ 0 (mod m)``:

    >>> simplify_relation(sympy.Eq(H, 2 * floor_div(H, 2)))
    Eq(Mod(H, 2), 0)
    >>> simplify_relation(sympy.Eq(4 * floor_div(H + 1, 4), H + 1))
    Eq(Mod(H + 1, 4), 0)
    """
    if isinstance(rel, sympy.Basic):
        return _simplify_relation(rel)
    return _simplify_relation.__wrapped__(rel)


@lru_cache(maxsize=65536)
def _simplify_relation(rel):
    """:func:`simplify_relation`, cached on the exact relation (every run of a forward asks again)."""
    if isinstance(rel, sympy.Equality):
        return _divisibility(rel)
    if isinstance(rel, (sympy.StrictGreaterThan, sympy.StrictLessThan)) and (rel.lhs - rel.rhs).is_integer:
        # between integers a < b is a <= b - 1 (a branch's negated side: floor((H - 1)/2) + 1 < 7 is H <= 12)
        wide = (sympy.Ge if isinstance(rel, sympy.StrictGreaterThan) else sympy.Le)(
            rel.lhs - rel.rhs, 1 if isinstance(rel, sympy.StrictGreaterThan) else -1)
        done = simplify_relation(wide) if isinstance(wide, (sympy.GreaterThan, sympy.LessThan)) else wide
        return rel if isinstance(done, (sympy.GreaterThan, sympy.LessThan)) and done.lhs == wide.lhs else done
    if isinstance(rel, (sympy.GreaterThan, sympy.LessThan)):
        sign = 1 if isinstance(rel, sympy.GreaterThan) else -1
        form = _monotone_form(sympy.expand(rel.lhs - rel.rhs))
        if form is None:
            return rel
        x, a, b, m, k, c = form
        if a <= 0:
            return rel
        # Solve k*F + c >= 0 (sign 1) or k*F + c <= 0 (sign -1) with F = floor((aX + b)/m), or F = aX + b when m = 0.
        if sign * k > 0:   # F >= t
            t = _ceil_frac(-c, k)
            bound = m * t - b if m else t - b
            return sympy.Ge(x, _ceil_frac(bound, a))
        t = _floor_frac(-c, k)  # F <= t
        bound = m * (t + 1) - 1 - b if m else t - b
        return sympy.Le(x, _floor_frac(bound, a))
    return rel


def finest_floor(rel) -> Optional[tuple]:
    """``(F, value)`` with ``F = value`` wherever the equation *rel* holds, for an equation in one
    size that is an integer combination of at least two floors of it (and the size itself): F is
    the floor with the smallest divisor, when its coefficient is ±1 once the common factor is
    divided out, and *value* is the rest, with integer coefficients. None otherwise.

    A window partition asserts that a strided size is a multiple of the window; put in every later
    formula, the finer floor is gone and products of sizes cancel.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> finest_floor(sympy.Eq(floor_div(H - 1, 4) + 1, 8 * floor_div(H + 3, 32)))
    (floor(H/4 - 1/4), 8*floor(H/32 + 3/32) - 1)
    >>> finest_floor(sympy.Eq(4 * floor_div(H + 3, 32), 8 * floor_div(H + 3, 64)))
    (floor(H/32 + 3/32), 2*floor(H/64 + 3/64))
    >>> finest_floor(sympy.Eq(H, 8 * floor_div(H, 8))) is None   # a size itself stays
    True
    """
    if not isinstance(rel, sympy.Equality) or len(rel.free_symbols) != 1:
        return None
    split = _split(rel.lhs - rel.rhs)
    if split is None:
        return None
    terms, const = split
    floors = [(_ratio(t.args[0]), t) for t in terms if isinstance(t, sympy.floor)]
    if len(floors) < 2 or any(r is None for r, _ in floors) or any(
            not (t.is_Symbol or isinstance(t, sympy.floor)) for t in terms):
        return None
    g = math.gcd(const, *terms.values())
    finest = min(floors, key=lambda rt: (rt[0][1], sympy.default_sort_key(rt[1])))[1]
    c = terms[finest] // g
    if abs(c) != 1:
        return None
    rest = _join({t: -v // g * c for t, v in terms.items() if t is not finest}, -const // g * c)
    return finest, rest


def _divisibility(rel):
    """``Eq(Mod(A, m), 0)`` for ``Eq(lhs, rhs)`` with ``lhs - rhs = ±(A - m*floor(A/m))``, else *rel*."""
    diff = sympy.expand(rel.lhs - rel.rhs)
    floors = [t for t in diff.atoms(sympy.floor)]
    if len(floors) != 1:
        return rel
    f = floors[0]
    ratio = _ratio(f.args[0])
    if ratio is None or _split(ratio[0]) is None:
        return rel
    num, m = ratio
    for sign in (1, -1):
        if sympy.expand(sign * diff - (num - m * f)) == 0:
            return sympy.Eq(sympy.Mod(num, m), 0)
    return rel


def _ceil_frac(p: int, q: int) -> int:
    return -((-p) // q) if q > 0 else _ceil_frac(-p, -q)


def _floor_frac(p: int, q: int) -> int:
    return p // q if q > 0 else (-p) // (-q)


def preimage(expr, value: int):
    """``(X, lo, hi)``: the integers X with ``expr == value`` are exactly ``lo <= X <= hi``, for
    ``expr = k*floor((a*X + b)/m) + c`` with a, k > 0 (or ``k*(a*X + b) + c``); None for other forms.

    ``floor((a*X + b)/m) + c = v`` holds iff ``ceil((m(v - c) - b)/a) <= X <= floor((m(v - c) + m - 1 - b)/a)``
    (the identities above). An empty preimage has ``lo > hi``.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> preimage(floor_div(H - 7, 2) + 1, 13)
    (H, 31, 32)
    >>> preimage(floor_div(H, 8), 4)
    (H, 32, 39)
    >>> preimage(3 * H + 1, 10)[1:], preimage(3 * H + 1, 8)[1:]
    ((3, 3), (1, 0))
    """
    form = _monotone_form(sympy.sympify(expr, strict=True))
    if form is None:
        return None
    x, a, b, m, k, c = form
    if a <= 0 or k <= 0:
        return None
    t, r = divmod(int(value) - c, k)
    if r:
        return x, 1, 0
    if not m:  # a*X + b = t
        lo = _ceil_frac(t - b, a)
        return x, lo, _floor_frac(t - b, a)
    return x, _ceil_frac(m * t - b, a), _floor_frac(m * t + m - 1 - b, a)
