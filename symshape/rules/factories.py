"""Rules for tensor factories: zeros/ones/empty/rand/randn/full, new_* methods, eye, arange,
torch.tensor and meshgrid; their output shapes come from size arguments (which may be symbolic)
or, for meshgrid, from the lengths of 1-d tensors."""
from __future__ import annotations


import sympy
import torch

from ..floors import ceil_div
from ..symbols import ShapeError
from .common import _int, _sizes, at_least, fmt_shape
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
