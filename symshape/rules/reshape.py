"""Reshaping modules: Flatten, Unflatten, PixelShuffle, PixelUnshuffle, ChannelShuffle."""
from __future__ import annotations

import sympy
import torch.nn as nn

from ..symbols import ShapeError
from .common import dim_index, divisible, exact_div, fmt_shape, prod
from .registry import Out, register


@register(nn.Flatten)
def flatten(m: nn.Flatten, x):
    """out = x[:start] + (prod(x[start:end + 1]),) + x[end + 1:]."""
    if not x:
        return (sympy.Integer(1),)
    start = dim_index(m.start_dim, len(x), "Flatten")
    end = dim_index(m.end_dim, len(x), "Flatten")
    if start > end:
        raise ShapeError(f"start_dim {m.start_dim} comes after end_dim {m.end_dim} for the input {fmt_shape(x)}")
    return (*x[:start], prod(x[start:end + 1]), *x[end + 1:])


@register(nn.Unflatten)
def unflatten(m: nn.Unflatten, x):
    """out = x[:dim] + sizes + x[dim + 1:]; prod(sizes) must equal x[dim] (one -1 is inferred)."""
    i = dim_index(m.dim, len(x), "Unflatten")
    sizes = [int(s) for s in m.unflattened_size]
    size = x[i]
    known = prod(s for s in sizes if s != -1)
    reqs = []
    if sizes.count(-1) > 1:
        raise ShapeError(f"only one size may be -1 in unflattened_size {tuple(sizes)}")
    if -1 in sizes:
        if size.is_Integer and int(size) % int(known):
            raise ShapeError(f"dim {m.dim} of size {size} is not divisible by {known} = prod{tuple(sizes)}")
        if not size.is_Integer:
            reqs.append(divisible(size, int(known), f"Unflatten needs dim {m.dim} divisible by {known}"))
        new = [exact_div(size, int(known)) if s == -1 else sympy.Integer(s) for s in sizes]
    else:
        new = [sympy.Integer(s) for s in sizes]
        if size.is_Integer and int(size) != int(known):
            raise ShapeError(
                f"dim {m.dim} has size {size}, but unflattened_size {tuple(sizes)} has {known} elements; "
                f"choose sizes whose product is {size}"
            )
        if not size.is_Integer:
            reqs.append((sympy.Eq(size, known), f"Unflatten needs dim {m.dim} to have {known} elements"))
    return Out((*x[:i], *new, *x[i + 1:]), 0, tuple(reqs))


@register(nn.PixelShuffle)
def pixel_shuffle(m: nn.PixelShuffle, x):
    """(*, C, H, W) -> (*, C/r², H·r, W·r); r² must divide C."""
    r = m.upscale_factor
    if len(x) < 3:
        raise ShapeError(f"expected an input of 3 or more dims (*, C, H, W), got {fmt_shape(x)}")
    *lead, c, h, w = x
    if c.is_Integer and int(c) % (r * r):
        raise ShapeError(f"PixelShuffle({r}) needs channels divisible by {r * r}, got {c}")
    reqs = () if c.is_Integer else (divisible(c, r * r, f"upscale_factor² = {r * r} divides the channels"),)
    return Out((*lead, exact_div(c, r * r), h * r, w * r), 0, reqs)


@register(nn.PixelUnshuffle)
def pixel_unshuffle(m: nn.PixelUnshuffle, x):
    """(*, C, H, W) -> (*, C·r², H/r, W/r); r must divide H and W."""
    r = m.downscale_factor
    if len(x) < 3:
        raise ShapeError(f"expected an input of 3 or more dims (*, C, H, W), got {fmt_shape(x)}")
    *lead, c, h, w = x
    reqs = []
    for name, size in (("height", h), ("width", w)):
        if size.is_Integer and int(size) % r:
            raise ShapeError(f"PixelUnshuffle({r}) needs the {name} divisible by {r}, got {size}")
        if not size.is_Integer:
            reqs.append(divisible(size, r, f"downscale_factor {r} divides the {name}"))
    return Out((*lead, c * r * r, exact_div(h, r), exact_div(w, r)), 0, tuple(reqs))


@register(nn.ChannelShuffle)
def channel_shuffle(m: nn.ChannelShuffle, x):
    """out = in; groups must divide C (dim 1)."""
    if len(x) < 3:
        raise ShapeError(f"expected an input of 3 or more dims (N, C, *), got {fmt_shape(x)}")
    g, c = m.groups, x[1]
    if c.is_Integer and int(c) % g:
        raise ShapeError(f"ChannelShuffle({g}) needs channels divisible by {g}, got {c}")
    return Out(x, 0, () if c.is_Integer else (divisible(c, g, f"groups={g} divides the channels"),))
