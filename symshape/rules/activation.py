"""Element-wise activations, softmaxes and dropouts: they keep the shape (GLU halves a dim)."""
from __future__ import annotations

import torch.nn as nn

from ..symbols import ShapeError
from .common import check_channels, dim_index, divisible, exact_div, fmt_shape
from .registry import Out, register

ELEMENTWISE = (
    nn.Threshold, nn.ReLU, nn.RReLU, nn.Hardtanh, nn.ReLU6, nn.Sigmoid, nn.Hardsigmoid, nn.Tanh,
    nn.SiLU, nn.Mish, nn.Hardswish, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.Hardshrink, nn.LeakyReLU,
    nn.LogSigmoid, nn.Softplus, nn.Softshrink, nn.Softsign, nn.Tanhshrink,
    nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
)


@register(*ELEMENTWISE)
def elementwise(m, x):
    """out = in; MACs = 0."""
    return x


@register(nn.Dropout1d)
def dropout1d(m, x):
    """out = in for a 2-d (C, L) or 3-d (N, C, L) input."""
    if len(x) not in (2, 3):
        raise ShapeError(f"expected a 2-d or 3-d input, got {len(x)}-d {fmt_shape(x)}")
    return x


@register(nn.Softmax, nn.Softmin, nn.LogSoftmax)
def softmax(m, x):
    """out = in; dim must exist (dim=None picks torch's legacy implicit dim)."""
    if m.dim is not None:
        dim_index(m.dim, len(x), type(m).__name__)
    return x


@register(nn.Softmax2d)
def softmax2d(m, x):
    """out = in for a 3-d or 4-d input (softmax over channels)."""
    if len(x) not in (3, 4):
        raise ShapeError(f"expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got {len(x)}-d {fmt_shape(x)}")
    return x


@register(nn.GLU)
def glu(m: nn.GLU, x):
    """out = in with dim halved; that dim must be even."""
    i = dim_index(m.dim, len(x), "GLU")
    size = x[i]
    if size.is_Integer and int(size) % 2:
        raise ShapeError(f"GLU halves dim {m.dim}, which must be even, got {size} in {fmt_shape(x)}")
    reqs = () if size.is_Integer else (divisible(size, 2, f"GLU halves dim {m.dim}: it must be even"),)
    return Out((*x[:i], exact_div(size, 2), *x[i + 1:]), 0, reqs)


@register(nn.PReLU)
def prelu(m: nn.PReLU, x):
    """out = in; with num_parameters > 1 the channel dim (dim 1, or dim 0 of a 1-d input) must equal it."""
    if m.num_parameters == 1:
        return x
    if not x:
        raise ShapeError("PReLU with several parameters needs an input with a channel dim")
    c = x[1] if len(x) >= 2 else x[0]
    return Out(x, 0, check_channels(c, m.num_parameters, "num_parameters", f"set num_parameters={c} or 1"))
