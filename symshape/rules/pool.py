"""Pooling: Max/Avg/LP pools (floor and ceil mode), adaptive pools, fractional max pools."""
from __future__ import annotations

import sympy
import torch.nn as nn

from ..decide import always_nonnegative
from ..floors import scaled_floor
from ..symbols import ShapeError
from .common import at_least, divisible, equal, exact_div, fmt_shape, ntuple, split_spatial
from .registry import Out, register
from .window import Window

_NDIM = {
    nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3,
    nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3,
    nn.LPPool1d: 1, nn.LPPool2d: 2,
    nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3,
    nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3,
    nn.FractionalMaxPool2d: 2, nn.FractionalMaxPool3d: 3,
}
if hasattr(nn, "LPPool3d"):
    _NDIM[nn.LPPool3d] = 3


def _ndim(m) -> int:
    for cls in type(m).__mro__:
        if cls in _NDIM:
            return _NDIM[cls]
    raise ShapeError(f"cannot tell the spatial rank of {type(m).__name__}")


def pool_size(size, k: int, s: int, p: int, d: int, ceil_mode: bool):
    """One pooled dim, exactly as aten's pooling_output_shape.

    floor mode: floor((L + 2p - e)/s) + 1 with the extent e = d(k - 1) + 1.
    ceil mode: min(ceil((L + 2p - e)/s) + 1, floor((L + p - 1)/s) + 1), since the last window must
    start inside the input or the left padding. Both candidates are floors of L plus a constant
    over s, so the minimum is the one with the smaller constant: a single floor.
    The padding must be at most k // 2: aten's pool shape checks bound it by half the kernel
    size, not by half the dilated extent e that pooling_output_shape allows.

    >>> pool_size(7, 3, 2, 1, 1, True), pool_size(6, 2, 2, 0, 1, True)
    (4, 3)
    >>> pool_size(20, 3, 1, 2, 2, False)
    Traceback (most recent call last):
    ...
    symshape.symbols.ShapeError: padding 2 must be at most half the kernel size 3 (with dilation too): use padding <= 1
    """
    return pool_window(k, s, p, d, ceil_mode).out(size)


def pool_window(k: int, s: int, p: int, d: int, ceil_mode: bool) -> Window:
    """The pool's :class:`Window`, after aten's check that the padding is at most k // 2."""
    if p == 0 and not isinstance(k, int) and not getattr(k, "is_Integer", True):  # a kernel as large as the input
        return Window(k, k if s is None else s, 0, d, bool(ceil_mode))
    if p > k // 2:
        raise ShapeError(f"padding {p} must be at most half the kernel size {k}"
                         f"{' (with dilation too)' if d > 1 else ''}: use padding <= {k // 2}")
    return Window(k, s, p, d, bool(ceil_mode))


def _pool(m, x, kernel, stride, padding, dilation, ceil_mode, cover=False):
    nd = _ndim(m)
    lead, c, sizes = split_spatial(x, nd)
    ks, ss = ntuple(kernel, nd), ntuple(stride if stride is not None else kernel, nd)
    ps, ds = ntuple(padding, nd), ntuple(dilation, nd)
    out, reqs, wins = [], [], []
    for size, k, s, p, d in zip(sizes, ks, ss, ps, ds):
        w = pool_window(k, s, p, d, ceil_mode)
        o = w.out(size)
        reqs.append(at_least(o, 1, f"output size >= 1: the padded input must cover the window extent {w.extent}"))
        if cover:
            reqs.append(at_least(size, k, f"avg_pool3d needs the unpadded input to cover the kernel {k}"))
        out.append(o)
        wins.append(w)
    return Out((*lead, c, *out), sympy.Integer(0), tuple(reqs) + nonempty(c, sizes), tuple(wins))


def nonempty(c, sizes) -> tuple:
    """Pools and convolutions need the channels and spatial dims of their input non-empty (only the
    batch may be 0): torch raises there even where padding would give an output."""
    return tuple(at_least(d, 1, "the input must not be empty (only its batch may be 0)")
                 for d in (c, *sizes) if not (d.is_positive or always_nonnegative(d - 1)))


@register(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
def max_pool(m, x):
    """out = floor((L + 2p - d(k - 1) - 1)/s) + 1, or in ceil mode
    min(ceil((L + 2p - d(k - 1) - 1)/s) + 1, floor((L + p - 1)/s) + 1); MACs = 0."""
    return _pool(m, x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)


@register(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
def avg_pool(m, x):
    """out = floor((L + 2p - k)/s) + 1, or in ceil mode min(ceil((L + 2p - k)/s) + 1,
    floor((L + p - 1)/s) + 1); AvgPool3d also needs L >= k, padding aside (aten's
    pool3d_shape_check with check_input_size). MACs = 0."""
    return _pool(m, x, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode, cover=_ndim(m) == 3)


@register(nn.LPPool1d, nn.LPPool2d, *([nn.LPPool3d] if hasattr(nn, "LPPool3d") else []))
def lp_pool(m, x):
    """An average pool of x^p without padding: out = floor((L - k)/s) + 1 (ceil mode as AvgPool;
    LPPool3d, an avg_pool3d, also needs L >= k)."""
    return _pool(m, x, m.kernel_size, m.stride, 0, 1, m.ceil_mode, cover=_ndim(m) == 3)


@register(nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
          nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
def adaptive_pool(m, x):
    """out = output_size (a None entry keeps L; a size computed from the input's, such as
    ``max(7, x.shape[-2])`` or ``math.ceil(h / 2)``, must be >= 0: 0 gives an empty output); MACs = 0."""
    nd = _ndim(m)
    lead, c, sizes = split_spatial(x, nd)
    want = ntuple(m.output_size, nd)
    out = [size if w is None else sympy.sympify(w, strict=True) for size, w in zip(sizes, want)]
    reqs = tuple(at_least(o, 0, "the output size must be >= 0") for o, w in zip(out, want)
                 if w is not None and not always_nonnegative(o))
    return Out((*lead, c, *out), 0, reqs + nonempty(sympy.Integer(1), sizes))


@register(nn.FractionalMaxPool2d, nn.FractionalMaxPool3d)
def fractional_max_pool(m, x):
    """out = output_size, or int(L * output_ratio) in double arithmetic (0 runs, with an empty output);
    needs out + k - 1 <= L (FractionalMaxPool2d) or out + k - 1 < L (FractionalMaxPool3d: aten
    checks it strictly)."""
    nd = _ndim(m)
    lead, c, sizes = split_spatial(x, nd)
    ks = ntuple(m.kernel_size, nd)
    if m.output_size is not None:
        out = [sympy.Integer(o) for o in ntuple(m.output_size, nd)]
    else:
        out = [scaled_floor(size, r) for size, r in zip(sizes, ntuple(m.output_ratio, nd))]
    reqs = []
    for o, k, size in zip(out, ks, sizes):  # an output size 0 (a ratio rounding down) runs: an empty output
        if nd == 3:  # aten's fractional_max_pool3d checks outputT + poolSizeT - 1 < inputT, strictly
            reqs.append((sympy.Le(o + k, size), f"output size + kernel size <= input size (kernel {k})"))
        else:
            reqs.append((sympy.Le(o + k - 1, size), f"output size + kernel size - 1 <= input size (kernel {k})"))
    return Out((*lead, c, *out), sympy.Integer(0), tuple(reqs))


@register(nn.Unfold)
def unfold(m: nn.Unfold, x):
    """Sliding blocks (im2col) of a (N, C, H, W) or (C, H, W) input: out = (N, C·kh·kw, oh·ow),
    o = floor((L + 2p - d(k - 1) - 1)/s) + 1 per spatial dim, each >= 1, the input not empty. MACs = 0."""
    from .window import windows

    lead, c, sizes = split_spatial(x, 2)
    wins = windows(2, m.kernel_size, m.stride, m.padding, m.dilation)
    out = [w.out(size) for size, w in zip(sizes, wins)]
    reqs = [at_least(o, 1, f"the sliding blocks must fit: the padded input must cover the kernel extent {w.extent}")
            for o, w in zip(out, wins)]
    kernel = 1
    for w in wins:
        kernel *= w.kernel
    return Out((*lead, c * kernel, out[0] * out[1]), 0, tuple(reqs) + nonempty(c, sizes))


@register(nn.Fold)
def fold(m: nn.Fold, x):
    """Sliding blocks summed back into an image (col2im), the inverse layout of nn.Unfold:
    (N, C·kh·kw, L) or unbatched (C·kh·kw, L) -> (N, C, *output_size). The second dim must be
    divisible by kh·kw and L must be the number of blocks bh·bw, b = floor((o + 2p - d(k - 1) - 1)/s) + 1
    per output dim o, each >= 1; no dim but the batch may be 0. MACs = 0."""
    from .window import windows

    if len(x) not in (2, 3):
        raise ShapeError(f"fold expects a 2-d (C·kh·kw, L) or 3-d (N, C·kh·kw, L) input, got {len(x)}-d {fmt_shape(x)}")
    *lead, ck, length = x
    out_sizes = tuple(sympy.sympify(o, strict=True) for o in ntuple(m.output_size, 2))
    wins = windows(2, m.kernel_size, m.stride, m.padding, m.dilation)
    kernel = wins[0].kernel * wins[1].kernel
    blocks = [w.out(o) for o, w in zip(out_sizes, wins)]
    reqs = [at_least(b, 1, f"the sliding blocks must fit in the output: output size + 2·padding must cover the "
                           f"kernel extent {w.extent}") for b, w in zip(blocks, wins)]
    if ck.is_Integer and int(ck) % kernel:
        raise ShapeError(f"fold needs dim -2 ({ck}) divisible by the kernel's {kernel} positions")
    if not ck.is_Integer:
        reqs.append(divisible(ck, kernel, f"fold needs dim -2 divisible by the kernel's {kernel} positions"))
    reqs.append(equal(length, blocks[0] * blocks[1], "fold needs dim -1 to be the number of sliding blocks"))
    reqs += nonempty(ck, ())  # L >= 1 follows from L = bh·bw with each b >= 1
    return Out((*lead, exact_div(ck, kernel), *out_sizes), 0, tuple(reqs))
