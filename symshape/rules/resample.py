"""Resampling and padding: Upsample and the padding layers."""
from __future__ import annotations

import sympy
import torch.nn as nn

from ..floors import scaled_floor
from ..symbols import ShapeError
from .common import at_least, fmt_shape, fmt_size, ntuple
from .registry import Out, register
from .window import Window


@register(nn.Upsample)
def upsample(m: nn.Upsample, x):
    """out = size, or floor(double(L) · scale_factor) per spatial dim (exact L · s for integer
    scales; torch's double rounding otherwise, so L = 100, s = 0.29 gives 28). MACs = 0.

    An output size 0 runs in mode 'area' (adaptive average pooling to an empty output, on CPU
    and meta); every other mode (nearest, nearest-exact, linear, bilinear, bicubic, trilinear)
    raises on CPU "Input and output sizes should be greater than 0", so there out >= 1."""
    nd = len(x) - 2
    if nd < 1:
        raise ShapeError(f"expected an (N, C, *spatial) input, got {fmt_shape(x)}")
    if m.size is not None:
        out = [sympy.Integer(s) for s in ntuple(m.size, nd)]
        if len(out) != nd:
            raise ShapeError(f"size {m.size} has {len(out)} entries for {nd} spatial dims")
    else:
        scales = ntuple(m.scale_factor, nd)
        if len(scales) != nd:
            raise ShapeError(f"scale_factor {m.scale_factor} has {len(scales)} entries for {nd} spatial dims")
        out = [scaled_floor(size, s) for size, s in zip(x[2:], scales)]
    return Out((*x[:2], *out), 0, output_requirements(m.mode, out), nearest_windows(m.mode, x[2:], out))


def nearest_windows(mode: str, sizes, out) -> tuple:
    """For nearest upsampling by an integer factor s (out = s·L), the transposed window of kernel s
    and stride s that copies input row floor(o/s) to output row o (for the receptive field);
    () for other modes and factors, whose support is not a window."""
    if mode not in ("nearest", "nearest-exact"):
        return ()
    wins = []
    for size, o in zip(sizes, out):
        ratio = sympy.simplify(o / size)
        if not (ratio.is_Integer and ratio >= 1):
            return ()
        wins.append(Window(int(ratio), int(ratio), 0, transposed=True))
    return tuple(wins)


def output_requirements(mode: str, out) -> tuple:
    """What upsampling/interpolation in *mode* needs of its output sizes *out*: nothing in mode
    'area' (it runs with empty outputs), else each size >= 1, checked now for constant sizes.

    >>> H = sympy.Symbol("H", integer=True, positive=True)
    >>> output_requirements("nearest", [sympy.floor(H / 2)])
    ((floor(H/2) >= 1, "output size >= 1 (mode 'nearest'; only 'area' allows 0)"),)
    >>> output_requirements("area", [sympy.floor(H / 2)])
    ()
    """
    if mode == "area":
        return ()
    if any(o.is_Integer and o < 1 for o in out):
        raise ShapeError(f"mode {mode!r} needs output sizes >= 1 (torch: \"Input and output sizes should be greater "
                         f"than 0\"), got {fmt_shape(out)}: give sizes >= 1, "
                         f"or use mode='area', which allows empty outputs")
    return tuple(at_least(o, 1, f"output size >= 1 (mode {mode!r}; only 'area' allows 0)")
                 for o in out if not o.is_Integer)


_PAD_MODE = {
    nn.ReflectionPad1d: "reflect", nn.ReflectionPad2d: "reflect", nn.ReflectionPad3d: "reflect",
    nn.CircularPad1d: "circular", nn.CircularPad2d: "circular", nn.CircularPad3d: "circular",
    nn.ReplicationPad1d: "replicate", nn.ReplicationPad2d: "replicate", nn.ReplicationPad3d: "replicate",
}


@register(*_PAD_MODE, nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d,
          nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d)
def pad(m, x):
    """out = L + left + right on each of the last len(padding)/2 dims (constant padding may be
    negative, cropping, which torch does first: L + negative pads >= 0, and an empty output runs);
    reflect needs each pad < L, circular each pad <= L, and both, like replicate, an output >= 1.
    MACs = 0."""
    pads = tuple(m.padding)
    nd = len(pads) // 2
    if len(x) < nd + 1:
        raise ShapeError(f"{nd}-d padding needs an input of {nd + 1} or more dims, got {fmt_shape(x)}")
    mode = next((v for k, v in _PAD_MODE.items() if isinstance(m, k)), "constant")
    out, reqs = list(x), []
    for j in range(nd):
        i = len(x) - 1 - j
        left, right = pads[2 * j], pads[2 * j + 1]
        size = x[i]
        out[i] = size + left + right
        if mode == "reflect":
            reqs += [at_least(size, p + 1, f"reflection padding {p} must be smaller than the input size")
                     for p in {left, right} if p > 0]
        elif mode == "circular":
            reqs += [at_least(size, p, f"circular padding {p} must not exceed the input size")
                     for p in {left, right} if p > 0]
        if mode != "constant":  # constant padding may crop to an empty output, which torch returns
            reqs.append(at_least(out[i], 1, "the padded size must be >= 1"))
        if min(left, 0) + min(right, 0) < 0:
            reqs.append(at_least(size + min(left, 0) + min(right, 0), 0,
                                 "negative padding crops first (narrow), so it must not exceed the input size"))
    reqs += nonempty_requirements(mode, x, nd)
    return Out(tuple(out), 0, tuple(reqs), pad_windows(pads) if mode == "constant" else ())


def nonempty_requirements(mode: str, x, nd: int) -> list:
    """Reflect and replicate padding need every dim but the batch non-empty, circular the padded
    dims (torch raises on an empty one, even where the padding would fill it)."""
    first = len(x) - nd if mode == "circular" else len(x) - nd - 1
    if mode == "constant":
        return []
    return [at_least(x[i], 1, f"{mode} padding needs a non-empty input along dim {i}")
            for i in range(max(first, 0), len(x)) if not (x[i].is_Integer or x[i].is_positive)]


def pad_windows(pads) -> tuple:
    """Constant padding (or cropping, negative) of the last len(pads)/2 dims as windows of kernel
    1 (for the receptive field), aligned to the trailing dims. Reflect, replicate and circular
    padding copy input rows into the border: their support is not a window, so they give none."""
    def plain(v):
        v = sympy.sympify(v, strict=True)
        return int(v) if v.is_Integer else v
    nd = len(pads) // 2
    return tuple(Window(1, 1, plain(pads[2 * j]), 1, False,
                        None if plain(pads[2 * j]) == plain(pads[2 * j + 1]) else plain(pads[2 * j + 1]))
                 for j in reversed(range(nd)))
