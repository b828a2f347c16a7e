"""Rules for tensor factories: zeros/ones/empty/rand/randn/full, new_* methods, eye, arange and
torch.tensor; their output shapes come from size arguments, which may be symbolic."""
from __future__ import annotations


import sympy
import torch

from ..floors import ceil_div
from ..symbols import ShapeError
from .common import _int, _sizes, at_least
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


@register(torch.arange)
def arange(*args, **kwargs):
    """out = (ceil((end - start)/step),) for integer bounds and a non-zero integer step; the
    bounds must lie in the step's direction (end >= start for a positive step, end <= start for a
    negative one), as torch checks."""
    start, end, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) > 2 else 1)
    start, end = kwargs.get("start", start), kwargs.get("end", end)
    step = _int(kwargs.get("step", step), "arange's step")
    if step == 0:
        raise ShapeError("arange's step must not be 0")
    span = sympy.sympify(end, strict=True) - sympy.sympify(start, strict=True)
    given = step
    if step < 0:
        span, step = -span, -step
    reqs = ()
    if span.is_number:
        if span < 0:
            raise ShapeError(f"arange from {start} to {end} with step {given}: the bounds are not in the step's direction")
    else:
        reqs = (sympy.Ge(span, 0), "arange's bounds must lie in the step's direction"),
    return Out((ceil_div(span, step),), 0, reqs)


@register(torch.tensor, torch.as_tensor)
def tensor(data, **kwargs):
    """The shape of a nested list of numbers."""
    shape, v = [], data
    while isinstance(v, (list, tuple)):
        shape.append(sympy.Integer(len(v)))
        v = v[0] if v else None
    return tuple(shape)
