"""Convolutions: Conv{1,2,3}d and ConvTranspose{1,2,3}d, one rule each, generic over the spatial rank."""
from __future__ import annotations

import sympy
import torch.nn as nn

from ..symbols import ShapeError
from .common import _SPATIAL, at_least, check_channels, fmt_shape, fmt_size, prod, split_spatial
from .pool import nonempty
from .registry import Out, register
from .window import Window, same_padding


def _padding_requirements(mode: str, pads, sizes) -> list:
    """reflect needs each pad < L; circular needs each pad <= L (torch wraps at most once)."""
    reqs = []
    for (left, right), size in zip(pads, sizes):
        for p in {left, right}:
            if p and mode == "reflect":
                reqs.append(at_least(size, p + 1, f"padding_mode='reflect' needs padding {p} < input size"))
            elif p and mode == "circular":
                reqs.append(at_least(size, p, f"padding_mode='circular' needs padding {p} <= input size"))
    return reqs


def _missing_dim(m, x, nd: int) -> None:
    """A ShapeError when an unbatched-rank input (nd + 1 dims) has the wrong channel count in
    dim 0 but the right one in dim 1: it reads as (N, C, ...) with a spatial dim missing, the
    mistake of ``--input 1,3,H`` for a 2-d conv."""
    if len(x) != nd + 1 or not (x[0].is_Integer and x[1].is_Integer):
        return
    if int(x[0]) == m.in_channels or int(x[1]) != m.in_channels:
        return
    names = {str(s) for d in x for s in d.free_symbols}
    layout = _SPATIAL.get(nd, "...")
    spare = next(n for n in (*reversed(layout.split(", ")), "X", "Y", "Z") if n not in names)
    raise ShapeError(f"a {nd + 1}-d input reads as unbatched (C, {layout}) with C = {x[0]}, but in_channels="
                     f"{m.in_channels} is its dim 1: it looks like (N, C, {layout}) with a spatial dim missing; "
                     f"give a {nd + 2}-d input such as {fmt_shape((*x, sympy.Symbol(spare)))}")


@register(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def conv(m: nn.modules.conv._ConvNd, x):
    """out = floor((L + 2p - d(k - 1) - 1)/s) + 1 per spatial dim (padding='same': out = L);
    MACs = N · Cout · (Cin/groups) · prod(k) · prod(out spatial)."""
    nd = len(m.kernel_size)
    lead, c, sizes = split_spatial(x, nd)
    _missing_dim(m, x, nd)
    reqs = list(check_channels(c, m.in_channels, "in_channels",
                               f"set in_channels={c} or make the previous layer produce {m.in_channels} channels"))
    if m.padding == "same":
        pads = [same_padding(d * (k - 1) + 1) for k, d in zip(m.kernel_size, m.dilation)]
    else:
        pads = [(0, 0)] * nd if m.padding == "valid" else [(p, p) for p in m.padding]
    wins = tuple(Window(k, s, left, d, False, None if left == right else right)
                 for k, s, d, (left, right) in zip(m.kernel_size, m.stride, m.dilation, pads))
    if m.padding == "same":
        out = list(sizes)  # stride 1 (torch refuses 'same' with a stride): out = L
    else:
        out = []
        for size, w in zip(sizes, wins):
            o = w.out(size)
            reqs.append(at_least(o, 1, f"output size >= 1: the padded input must cover the kernel extent {w.extent}"))
            out.append(o)
    if m.padding_mode != "zeros":
        reqs += _padding_requirements(m.padding_mode, pads, sizes)
    reqs += nonempty(c, sizes)
    macs = prod(lead) * m.out_channels * (m.in_channels // m.groups) * prod(m.kernel_size) * prod(out)
    return Out((*lead, sympy.Integer(m.out_channels), *out), macs, tuple(reqs), wins)


@register(nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
def conv_transpose(m: nn.modules.conv._ConvTransposeNd, x, output_size=None):
    """out = (L - 1)s - 2p + d(k - 1) + output_padding + 1 per spatial dim, or the explicit
    output_size, which must lie in [out, out + s - 1] with output_padding 0;
    MACs = N · Cin · (Cout/groups) · prod(k) · prod(in spatial) (input positions, as torch counts)."""
    nd = len(m.kernel_size)
    lead, c, sizes = split_spatial(x, nd)
    _missing_dim(m, x, nd)
    reqs = list(check_channels(c, m.in_channels, "in_channels",
                               f"set in_channels={c} or make the previous layer produce {m.in_channels} channels"))
    wins = tuple(Window(k, s, p, d, transposed=True, output_padding=op) for k, s, d, p, op
                 in zip(m.kernel_size, m.stride, m.dilation, m.padding, m.output_padding))
    base = [(size - 1) * w.stride - 2 * w.padding + w.extent for size, w in zip(sizes, wins)]
    if output_size is None:
        for op, s, d in zip(m.output_padding, m.stride, m.dilation):
            if op >= max(s, d):
                raise ShapeError(f"output padding must be smaller than either stride or dilation, got "
                                 f"output_padding={tuple(m.output_padding)}, stride={m.stride}, dilation={m.dilation}: "
                                 f"set output_padding below {max(s, d)} (max of stride and dilation) in every dim")
        out = [b + op for b, op in zip(base, m.output_padding)]
    else:
        allowed = (nd, nd + 1 + len(lead))  # torch: spatial sizes, or the whole output shape
        if len(output_size) not in allowed:
            raise ShapeError(f"for a {len(x)}-d input, output_size must have {allowed[0]} or {allowed[1]} entries "
                             f"(the spatial sizes or the whole output shape), got {len(output_size)}: "
                             f"{tuple(output_size)}")
        out = [sympy.sympify(v, strict=True) for v in list(output_size)[-nd:]]
        for o, b, s in zip(out, base, m.stride):
            reqs.append((sympy.Ge(o, b), f"output_size {fmt_size(o)} >= the smallest size {fmt_size(b)}"))
            reqs.append((sympy.Le(o, b + s - 1), f"output_size {fmt_size(o)} <= the largest size {fmt_size(b)} + stride - 1"))
    reqs += [at_least(o, 1, "output size >= 1: padding removes more than the transposed convolution produces")
             for o in out]
    macs = prod(lead) * m.in_channels * (m.out_channels // m.groups) * prod(m.kernel_size) * prod(sizes)
    return Out((*lead, sympy.Integer(m.out_channels), *out), macs, tuple(reqs), wins)
