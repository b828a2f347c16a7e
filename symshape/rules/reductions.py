"""Rules for reductions: sum, mean, max and the like, and norms. A reduced dim is dropped, or kept as
1 with keepdim; a maximum or minimum of an empty dim has no value, so torch raises there.

>>> from symshape.symbols import symbols
>>> H, W = symbols("H W")
>>> reduce((1, 64, H, W), (2, 3), keepdim=True)
(1, 64, 1, 1)
"""
from __future__ import annotations

import sympy
import torch

from ..decide import always_nonnegative
from ..symbols import ShapeError
from .common import dim_index
from .elementwise import broadcast, is_tensor
from .registry import Out, register

__all__ = ["reduce", "reduce_nonempty", "max_min", "norm"]


@register(torch.mean, torch.sum, torch.std, torch.var, torch.logsumexp, torch.prod, torch.any, torch.all,
          "mean", "sum", "std", "var", "logsumexp", "prod", "any", "all")
def reduce(x, dim=None, keepdim: bool = False, *args, **kwargs):
    """Drops the reduced dims (all when dim is None), or keeps them as 1 with keepdim."""
    dim = kwargs.get("axis", dim)
    if isinstance(dim, str) or dim is None and not isinstance(keepdim, bool):
        raise ShapeError(f"unsupported reduction arguments {dim!r}")
    if dim is None:
        return (sympy.Integer(1),) * len(x) if keepdim else ()
    dims = {dim_index(d, len(x), "the reduction") for d in (dim if isinstance(dim, (tuple, list)) else [dim])}
    return tuple(sympy.Integer(1) if i in dims else d for i, d in enumerate(x) if keepdim or i not in dims)


@register(torch.amax, torch.amin, torch.argmax, torch.argmin, "amax", "amin", "argmax", "argmin")
def reduce_nonempty(x, dim=None, keepdim: bool = False, *args, **kwargs):
    """As :func:`reduce`; the reduced dims (all when dim is None) must not be empty: a maximum or
    minimum of nothing has no value, and torch raises."""
    out = reduce(x, dim, keepdim, *args, **kwargs)
    dim = kwargs.get("axis", dim)
    dims = range(len(x)) if dim is None else sorted(
        {dim_index(d, len(x), "the reduction") for d in (dim if isinstance(dim, (tuple, list)) else [dim])})
    reqs = tuple((sympy.Ge(x[i], 1), f"a max or min over dim {i} needs it non-empty")
                 for i in dims if not always_nonnegative(x[i] - 1))
    return Out(out, 0, reqs) if reqs else out


@register(torch.max, torch.min, "max", "min")
def max_min(x, dim=None, keepdim: bool = False):
    """Without dim: a 0-d tensor (x must not be empty); with a tensor: element-wise; with a dim:
    (values, indices), the dim not empty."""
    if is_tensor(dim):
        return broadcast(x, dim)
    out = reduce_nonempty(x, dim, keepdim)
    shape, reqs = (out.shape, out.requires) if isinstance(out, Out) else (out, ())
    return Out(shape if dim is None else (shape, shape), 0, reqs)


@register(torch.norm, torch.linalg.vector_norm, torch.linalg.norm, "norm")
def norm(x, p="fro", dim=None, keepdim: bool = False, *args, **kwargs):
    """A reduction: drops the reduced dims (all when dim is None), or keeps them as 1 with keepdim
    (the order p, ``ord``, does not change the shape). MACs = 0."""
    dim = kwargs.get("dim", dim)
    keepdim = kwargs.get("keepdim", keepdim)
    if isinstance(dim, (tuple, list)) and not dim:
        dim = None
    return reduce(x, dim, keepdim)
