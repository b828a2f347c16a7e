"""Rules for ``torch.nn.functional`` calls in torch.fx graphs.

Where a module does the same thing, the rule builds that module (on the meta device, so no
memory is allocated) from the call's arguments and runs the module's rule, so ``F.conv2d`` and
``nn.Conv2d`` cannot disagree. Weights arrive as their shapes (from get_attr nodes).

>>> from symshape.report import Shape
>>> from symshape.symbols import symbols
>>> H = symbols("H")
>>> Shape(conv(Shape((1, 3, H, H)), Shape((8, 3, 3, 3)), None, 2).shape)
(1, 8, floor((H - 3)/2) + 1, floor((H - 3)/2) + 1)
"""
from __future__ import annotations

from types import SimpleNamespace

import sympy
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..decide import always_nonnegative
from ..floors import scaled_floor
from ..symbols import ShapeError
from . import activation as _activation, conv as _conv, linear as _linear, norm as _norm, pool as _pool, reshape as _reshape
from .common import _int, at_least, fmt_shape, ntuple
from .registry import Out, register
from .elementwise import is_tensor, unary
from .resample import nearest_windows, nonempty_requirements, output_requirements, pad_windows

__all__ = ["conv", "conv_transpose", "linear", "interpolate", "pad"]


def _fixed(shape, what: str) -> list:
    dims = []
    for d in shape:
        if not sympy.sympify(d, strict=True).is_Integer:
            raise ShapeError(f"the {what} must have a fixed shape, got {fmt_shape(shape)}")
        dims.append(int(d))
    return dims


_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


@register(F.conv1d, F.conv2d, F.conv3d)
def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """As nn.ConvNd with weight (Cout, Cin/groups, *k): out = floor((L + 2p - d(k - 1) - 1)/s) + 1."""
    w = _fixed(weight, "weight")
    nd = len(w) - 2
    m = _CONV[nd](w[1] * groups, w[0], tuple(w[2:]), stride=stride, padding=padding, dilation=dilation,
                  groups=groups, bias=False, device="meta")
    return _conv.conv(m, x)


@register(F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)
def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """As nn.ConvTransposeNd with weight (Cin, Cout/groups, *k)."""
    w = _fixed(weight, "weight")
    nd = len(w) - 2
    m = _CONVT[nd](w[0], w[1] * groups, tuple(w[2:]), stride=stride, padding=padding, output_padding=output_padding,
                   groups=groups, dilation=dilation, bias=False, device="meta")
    return _conv.conv_transpose(m, x)


@register(F.linear)
def linear(x, weight, bias=None):
    """out = (*, out) for x = (*, in) and weight (out, in); MACs = prod(*) · in · out."""
    w = _fixed(weight, "weight")
    m = nn.Linear(w[1], w[0], bias=False, device="meta") if len(w) == 2 else None
    if m is None:
        raise ShapeError(f"F.linear needs a 2-d weight, got {fmt_shape(weight)}")
    return _linear.linear(m, x)


@register(F.max_pool1d, F.max_pool2d, F.max_pool3d, torch.max_pool1d, torch.max_pool2d, torch.max_pool3d,
          F.max_pool1d_with_indices, F.max_pool2d_with_indices, F.max_pool3d_with_indices)
def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """As nn.MaxPoolNd (the spatial rank is the kernel's, or the input's rank - 2)."""
    nd = len(kernel_size) if isinstance(kernel_size, (tuple, list)) and len(kernel_size) > 1 else len(x) - 2
    cls = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[nd]
    out = _pool.max_pool(cls(kernel_size, stride if stride else None, padding, dilation, ceil_mode=ceil_mode), x)
    if return_indices:
        return Out((out.shape, out.shape), 0, out.requires, out.windows)
    return out


@register(F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, torch.avg_pool1d)
def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """As nn.AvgPoolNd."""
    nd = len(kernel_size) if isinstance(kernel_size, (tuple, list)) and len(kernel_size) > 1 else len(x) - 2
    cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[nd]
    out = _pool.avg_pool(cls(kernel_size, stride if stride else None, padding, ceil_mode=ceil_mode), x)
    sizes = [sympy.sympify(k, strict=True) for k in ntuple(kernel_size, nd) + (ntuple(stride, nd) if stride else ())]
    reqs = [at_least(k, 1, "the kernel size and stride must be >= 1") for k in sizes if not always_nonnegative(k - 1)]
    if not reqs:
        return out
    if not isinstance(out, Out):
        out = Out(out)
    return Out(out.shape, out.macs, tuple(reqs) + tuple(out.requires), out.windows)


_ADAPTIVE = {F.adaptive_avg_pool1d: nn.AdaptiveAvgPool1d, F.adaptive_avg_pool2d: nn.AdaptiveAvgPool2d,
             F.adaptive_avg_pool3d: nn.AdaptiveAvgPool3d, F.adaptive_max_pool1d: nn.AdaptiveMaxPool1d,
             F.adaptive_max_pool2d: nn.AdaptiveMaxPool2d, F.adaptive_max_pool3d: nn.AdaptiveMaxPool3d,
             torch.adaptive_avg_pool1d: nn.AdaptiveAvgPool1d}


def _adaptive_rule(cls):
    def adaptive(x, output_size, return_indices=False):
        """As nn.Adaptive*PoolNd: out = output_size (None keeps L)."""
        out = _pool.adaptive_pool(cls(output_size), x)
        return Out((out.shape, out.shape)) if return_indices else out
    return adaptive


for _fn, _cls in _ADAPTIVE.items():
    register(_fn)(_adaptive_rule(_cls))


@register(F.interpolate, F.upsample, F.upsample_nearest, F.upsample_bilinear)
def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    """out = size (which may be symbolic, e.g. another map's H and W), or floor(double(L) · scale)
    per spatial dim (exact L · s for integer scales). MACs = 0."""
    nd = len(x) - 2
    if nd < 1:
        raise ShapeError(f"expected an (N, C, *spatial) input, got {fmt_shape(x)}")
    if size is not None:
        out = [sympy.sympify(s, strict=True) for s in ntuple(size, nd)]
    elif scale_factor is not None:
        out = [scaled_floor(d, s) for d, s in zip(x[2:], ntuple(scale_factor, nd))]
    else:
        raise ShapeError("interpolate needs size or scale_factor")
    if len(out) != nd:
        raise ShapeError(f"interpolate: {len(out)} output sizes for {nd} spatial dims")
    return Out((*x[:2], *out), 0, output_requirements(mode, out), nearest_windows(mode, x[2:], out))


@register(F.pad)
def pad(x, pad, mode="constant", value=None):
    """out = L + left + right on each of the last len(pad)/2 dims; pads may be symbolic (padding
    to a multiple of a window: (w - L mod w) mod w). Negative constant pads crop; reflect needs
    each pad < L, circular each pad <= L. MACs = 0."""
    pads = [sympy.sympify(p, strict=True) for p in pad]
    if len(pads) % 2:
        raise ShapeError(f"F.pad needs an even number of pads, got {len(pads)}")
    nd = len(pads) // 2
    if nd > len(x):
        raise ShapeError(f"{nd}-d padding needs an input of {nd} or more dims, got {fmt_shape(x)}")
    out, reqs = list(x), []
    for j in range(nd):
        i = len(x) - 1 - j
        left, right = pads[2 * j], pads[2 * j + 1]
        out[i] = x[i] + left + right
        for p in (left, right):
            if p.is_Integer and p <= 0:
                continue
            if mode == "reflect":
                reqs.append((sympy.Lt(p, x[i]), "reflection padding must be smaller than the input size"))
            elif mode == "circular":
                reqs.append((sympy.Le(p, x[i]), "circular padding must not exceed the input size"))
        if mode == "constant":  # crops first (narrow): an empty output runs, cropping past the input raises
            crop = x[i] + sum((p for p in (left, right) if not (p.is_Integer and p >= 0)), sympy.Integer(0))
            if crop is not x[i] and not always_nonnegative(crop):
                reqs.append(at_least(crop, 0, "negative padding crops first (narrow), so it must not exceed the "
                                              "input size"))
        elif not always_nonnegative(out[i] - 1):
            reqs.append(at_least(out[i], 1, "the padded size must be >= 1"))
        crop = sum(min(int(p), 0) for p in (left, right) if p.is_Integer)
        if crop < 0 and any(p.is_positive for p in (left, right)) and not always_nonnegative(x[i] + crop):
            reqs.append(at_least(x[i] + crop, 0,
                                 "negative padding crops first (narrow), so it must not exceed the input size"))
    reqs += nonempty_requirements(mode, x, nd)
    return Out(tuple(out), 0, tuple(r for r in reqs if r[0] is not sympy.true),
               pad_windows(pads) if mode == "constant" else ())


@register(F.unfold)
def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """As nn.Unfold: sliding blocks (N, C·kh·kw, oh·ow)."""
    return _pool.unfold(nn.Unfold(kernel_size, dilation, padding, stride), x)


@register(F.fold)
def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """As nn.Fold: blocks (N, C·kh·kw, bh·bw) summed into (N, C, *output_size)."""
    return _pool.fold(SimpleNamespace(output_size=output_size, kernel_size=kernel_size, dilation=dilation,
                                      padding=padding, stride=stride), x)


@register(F.one_hot)
def one_hot(x, num_classes: int = -1):
    """out = (*x, num_classes) for a fixed num_classes >= 1 (the values must be below it, which a
    shape does not carry); num_classes=-1 takes max(values) + 1, known only from the data. MACs = 0."""
    n = _int(num_classes, "one_hot's num_classes")
    if n < 0:
        raise ShapeError("one_hot with num_classes=-1 takes the number of classes from the largest value in the "
                         "tensor, which a shape does not carry; pass num_classes")
    if n == 0:
        raise ShapeError("one_hot with num_classes=0 holds no class for any value (torch: 'Class values must be "
                         "smaller than num_classes'); pass num_classes >= 1")
    return (*x, sympy.Integer(n))


@register(F.layer_norm)
def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """As nn.LayerNorm: out = in; the trailing dims must equal normalized_shape."""
    shape = tuple(int(s) for s in ntuple(normalized_shape, 1))
    return _norm.layer_norm(nn.LayerNorm(shape, elementwise_affine=False), x)


@register(F.rms_norm)
def rms_norm(x, normalized_shape, weight=None, eps=None):
    """As nn.RMSNorm (and nn.LayerNorm): out = in; the trailing dims must equal normalized_shape."""
    shape = tuple(int(s) for s in ntuple(normalized_shape, 1))
    return _norm.layer_norm(nn.LayerNorm(shape, elementwise_affine=False), x)


@register(F.group_norm)
def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """As nn.GroupNorm (the module rule): out = in; num_groups divides the channels, which equal
    the weight's length when there is one, and each group holds more than 1 value."""
    channels = _fixed(weight, "weight")[0] if is_tensor(weight) else None
    return _norm.group_norm(SimpleNamespace(num_groups=int(num_groups), num_channels=channels), x)


def _features(*stats):
    found = next((s for s in stats if is_tensor(s)), None)
    return None if found is None else _fixed(found, "running statistics")[0]


@register(F.batch_norm)
def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False, *args, **kwargs):
    """As nn.BatchNorm (the module rule): out = in; the channels (dim 1) equal the statistics'
    length; in training mode more than 1 value per channel."""
    m = SimpleNamespace(num_features=_features(running_mean, weight), training=bool(training))
    return _norm.batch_norm(m, x)


@register(F.instance_norm)
def instance_norm(x, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  *args, **kwargs):
    """As nn.InstanceNorm (the module rule): out = in; with input statistics, more than 1
    spatial element."""
    m = SimpleNamespace(num_features=_features(running_mean, weight), affine=is_tensor(weight),
                        track_running_stats=is_tensor(running_mean), training=bool(use_input_stats))
    return _norm.instance_norm(m, x)


@register(F.embedding)
def embedding(x, weight, *args, **kwargs):
    """out = (*, embedding_dim) for indices of shape (*) and weight (num, dim)."""
    return (*x, weight[1])


@register(F.pixel_shuffle)
def pixel_shuffle(x, upscale_factor):
    """As nn.PixelShuffle."""
    return _reshape.pixel_shuffle(nn.PixelShuffle(upscale_factor), x)


@register(F.pixel_unshuffle)
def pixel_unshuffle(x, downscale_factor):
    """As nn.PixelUnshuffle."""
    return _reshape.pixel_unshuffle(nn.PixelUnshuffle(downscale_factor), x)


@register(F.glu)
def glu(x, dim=-1):
    """As nn.GLU: out = in with dim halved; it must be even."""
    return _activation.glu(nn.GLU(dim), x)


@register(torch.channel_shuffle, torch.native_channel_shuffle)
def channel_shuffle(x, groups):
    """As nn.ChannelShuffle: out = in; groups divides the channels."""
    return _reshape.channel_shuffle(nn.ChannelShuffle(groups), x)


register(
    F.relu, F.relu_, F.relu6, F.gelu, F.silu, F.mish, F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh, F.elu, F.selu,
    F.celu, F.leaky_relu, F.softplus, F.softsign, F.hardtanh, F.logsigmoid, F.tanhshrink, F.threshold,
    F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
    F.softmax, F.log_softmax, F.softmin, F.normalize, F.local_response_norm, torch.dropout, torch.feature_dropout,
)(unary)

__all__ += ["max_pool", "avg_pool", "layer_norm", "group_norm", "batch_norm", "instance_norm", "embedding"]
