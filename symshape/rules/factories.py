"""Rules for tensor factories: zeros/ones/empty/rand/randn/full, new_* methods, eye, arange,
linspace/logspace, torch.tensor and meshgrid; their output shapes come from size arguments (which may be symbolic)
or, for meshgrid, from the lengths of 1-d tensors."""
from __future__ import annotations


import math

import sympy
import torch

from ..floors import ceil_div, ceil_of
from ..symbols import ShapeError
from .common import _sizes, at_least, fmt_shape
from .registry import Out, register


@register(torch.zeros, torch.ones, torch.empty, torch.rand, torch.randn)
def factory(*size, **kwargs):
    """out = size (varargs or one sequence)."""
    return _sizes(size)


@register(torch.full)
def full(size, fill_value, **kwargs):
    """out = size."""
    return _sizes((size,))


@register("new_zeros", "new_ones", "new_empty")
def new_factory(x, *size, **kwargs):
    """out = size."""
    return _sizes(size)


@register("new_full")
def new_full(x, size, fill_value, **kwargs):
    """out = size."""
    return _sizes((size,))


@register(torch.eye)
def eye(n, m=None, **kwargs):
    """out = (n, m), m = n when not given; torch needs n, m >= 0 (0 gives an empty matrix)."""
    n = sympy.sympify(n, strict=True)
    m = n if m is None else sympy.sympify(m, strict=True)
    return Out((n, m), 0, tuple(at_least(d, 0, "torch.eye needs sizes >= 0") for d in (n, m) if not d.is_Integer))


_FINE = 2 ** 10  # the finest binary fraction of a float bound next to a symbolic size


@register(torch.arange)
def arange(*args, **kwargs):
    """out = (ceil((end - start)/step),); the bounds must lie in the step's direction (end >= start
    for a positive step, end <= start for a negative one), as torch checks. Integer bounds and step
    give the integer ceil. A float bound or step (``torch.arange(0.5, h)``) makes torch compute the
    length in double precision: with fixed numbers that is done here too; with a symbolic size it
    is the exact ceil of the exact quotient (a float is a binary fraction, kept exactly), which is
    what double precision gives while the sizes stay below 2**42: a symbolic span needs float bounds
    of at most 10 binary digits after the point (0.5, 0.25; not 0.1) and a step of 1/2**k or an
    integer, so that double precision neither rounds the difference nor moves the quotient past an
    integer."""
    start, end, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) > 2 else 1)
    start, end, step = kwargs.get("start", start), kwargs.get("end", end), kwargs.get("step", step)
    floats = any(isinstance(v, float) or (isinstance(v, sympy.Basic) and v.has(sympy.Float)) for v in (start, end, step))
    dtype = kwargs.get("dtype")
    if floats and isinstance(dtype, torch.dtype) and not dtype.is_floating_point:
        raise ShapeError(f"arange with float bounds or step and the integer dtype {dtype}: torch rounds the bounds "
                         "to integers first; give integer bounds")
    written = (start, end)  # for messages: a float as Python prints it
    start, end, step = (_exact(v, "arange's bounds and step") for v in (start, end, step))
    if not step.is_number:
        raise ShapeError(f"arange's step must be a fixed number, got {step}")
    if step == 0:
        raise ShapeError("arange's step must not be 0")
    if not floats and not step.is_Integer:
        raise ShapeError(f"arange's step must be a fixed integer or float, got {step}")
    span, given = end - start, step
    if step < 0:
        span, step = -span, -step
    if span.is_number:
        if span < 0:
            raise ShapeError(f"arange from {start} to {end} with step {given}: the bounds are not in the step's direction")
        if floats:  # as torch computes it: in double precision (each float is the double it was)
            return (sympy.Integer(math.ceil((float(end) - float(start)) / float(given))),)
        return (ceil_div(span, int(step)),)
    if floats and not all(v.q <= _FINE if v.is_number else v.is_integer for v in (start, end)):
        raise ShapeError(f"arange from {written[0]} to {written[1]}: a float bound with more than 10 binary digits after the "
                         "point, or a symbolic bound that is not an integer size, whose difference torch rounds in "
                         "double precision; no exact formula follows")
    num, den = sympy.fraction(sympy.together(span))  # W - 3/2 >= 0 is asked as 2*W - 3 >= 0
    reqs = (sympy.Ge(num if den.is_number and den > 0 else span, 0), "arange's bounds must lie in the step's direction"),
    if step.is_Integer:
        return Out((ceil_of(span / step) if floats else ceil_div(span, int(step)),), 0, reqs)
    if step.p != 1 or step.q & (step.q - 1):
        raise ShapeError(f"arange's length from the symbolic span {span} over the float step {float(given)!r}: torch "
                         f"rounds that quotient in double precision, so no exact formula follows; use a step of 1, "
                         f"an integer, or 1/2**k")
    return Out((ceil_of(span * step.q),), 0, reqs)


@register(torch.linspace, torch.logspace)
def linspace(start, end, steps, *args, **kwargs):
    """out = (steps,); torch needs steps >= 0. The bounds may be tensors of one element (0-d)."""
    steps = sympy.sympify(_exact(steps, "linspace's steps"), strict=True)
    if steps.is_number:
        if not steps.is_Integer:
            raise ShapeError(f"linspace's steps must be an integer, got {steps}")
        if steps < 0:
            raise ShapeError(f"linspace's number of steps must be non-negative, got {steps}")
        return (steps,)
    return Out((steps,), 0, (at_least(steps, 0, "linspace's number of steps must be non-negative"),))


def _exact(v, what: str):
    """A bound, step or count as an exact sympy number or size (a float as the binary fraction it is)."""
    if isinstance(v, bool) or isinstance(v, tuple):
        raise ShapeError(f"{what} must be numbers or sizes, got {v!r}")
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ShapeError(f"{what} must be finite, got {v}")
        return sympy.Rational(v)
    if isinstance(v, sympy.Basic):
        return v.xreplace({f: sympy.Rational(float(f)) for f in v.atoms(sympy.Float)})
    return sympy.sympify(v, strict=True)


@register(torch.tensor, torch.as_tensor)
def tensor(data, **kwargs):
    """The shape of a nested list of numbers."""
    shape, v = [], data
    while isinstance(v, (list, tuple)):
        shape.append(sympy.Integer(len(v)))
        v = v[0] if v else None
    return tuple(shape)


@register(torch.meshgrid, torch._C._VariableFunctions.meshgrid)  # the second: what a list of tensors reaches
def meshgrid(*tensors, indexing=None):
    """k outputs of shape (n1, ..., nk) for k 0-d or 1-d inputs of lengths n1..nk (a 0-d input is
    n = 1), as varargs or one list; indexing 'xy' swaps the first two: (n2, n1, n3, ...).
    torch's default is 'ij'. MACs = 0."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) and not _is_shape(tensors[0]):
        tensors = tuple(tensors[0])
    if not tensors:
        raise ShapeError("meshgrid expects a non-empty list of tensors")
    if indexing not in (None, "ij", "xy"):
        raise ShapeError(f"meshgrid: indexing must be one of 'xy' or 'ij', got {indexing!r}")
    for t in tensors:
        if len(t) > 1:
            raise ShapeError(f"meshgrid expects 0-d or 1-d tensors, got {fmt_shape(t)}")
    sizes = [t[0] if t else sympy.Integer(1) for t in tensors]
    if indexing == "xy" and len(sizes) > 1:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    return tuple(tuple(sizes) for _ in tensors)


def _is_shape(value) -> bool:
    return all(isinstance(d, sympy.Expr) for d in value)
