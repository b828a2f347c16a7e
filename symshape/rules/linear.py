"""Dense layers: Linear, Bilinear, Embedding, Identity."""
from __future__ import annotations

import sympy
import torch.nn as nn

from ..symbols import ShapeError
from .common import equal, fmt_shape, fmt_size, prod
from .registry import Out, register


def _last_dim(x, features: int, attr: str, what: str = "input"):
    if not x:
        raise ShapeError(f"expected an {what} with a last dim of {features}, got a 0-d input")
    last = x[-1]
    if last.is_Integer:
        if int(last) != features:
            raise ShapeError(
                f"expected the last dim of the {what} to be {attr}={features}, got {last}; "
                f"set {attr}={last}, or change the layers before it"
            )
        return ()
    return (equal(last, features, f"the last dim of the {what}, {fmt_size(last)}, to equal {attr}={features}"),)


@register(nn.Linear)
def linear(m: nn.Linear, x):
    """out = (*, out_features) for x = (*, in_features); MACs = prod(*) · in · out (bias excluded)."""
    if isinstance(m.weight, nn.parameter.UninitializedParameter):
        raise ShapeError("the lazy layer is not initialised yet: run one forward pass first")
    reqs = _last_dim(x, m.in_features, "in_features")
    return Out((*x[:-1], sympy.Integer(m.out_features)), prod(x[:-1]) * m.in_features * m.out_features, reqs)


@register(nn.Bilinear)
def bilinear(m: nn.Bilinear, x1, x2=None):
    """out = (*, out) for x1 = (*, in1), x2 = (*, in2); MACs = prod(*) · in1 · in2 · out."""
    if x2 is None:
        raise ShapeError("Bilinear takes two inputs; it cannot stand in an nn.Sequential")
    if tuple(x1[:-1]) != tuple(x2[:-1]):
        raise ShapeError(f"the leading dims of both inputs must match, got {fmt_shape(x1)} and {fmt_shape(x2)}")
    reqs = _last_dim(x1, m.in1_features, "in1_features", "first input") + _last_dim(
        x2, m.in2_features, "in2_features", "second input")
    macs = prod(x1[:-1]) * m.in1_features * m.in2_features * m.out_features
    return Out((*x1[:-1], sympy.Integer(m.out_features)), macs, reqs)


@register(nn.Embedding)
def embedding(m: nn.Embedding, x):
    """out = (*, embedding_dim) for integer indices of shape (*); MACs = 0 (a lookup)."""
    return (*x, sympy.Integer(m.embedding_dim))


@register(nn.Identity)
def identity(m, x, *args, **kwargs):
    """out = in."""
    return x
