"""Normalisation layers: they keep the shape and check the channel or trailing dims."""
from __future__ import annotations

import torch.nn as nn

from ..symbols import ShapeError
from .common import check_channels, divisible, equal, exact_div, fmt_shape, more_than_one
from .registry import Out, register

_BN_RANKS = {nn.BatchNorm1d: (2, 3), nn.BatchNorm2d: (4,), nn.BatchNorm3d: (5,),
             nn.InstanceNorm1d: (2, 3), nn.InstanceNorm2d: (3, 4), nn.InstanceNorm3d: (4, 5)}


def _ranks(m):
    for cls in type(m).__mro__:
        if cls in _BN_RANKS:
            return _BN_RANKS[cls]
    return None


@register(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
def batch_norm(m, x):
    """out = in; C (dim 1) must equal num_features; in training mode N · prod(spatial) >= 2
    (torch's "expected more than 1 value per channel when training"). MACs = 0."""
    ranks = _ranks(m)
    if ranks and len(x) not in ranks:
        raise ShapeError(f"expected a {' or '.join(f'{r}-d' for r in ranks)} input, got {len(x)}-d {fmt_shape(x)}")
    if len(x) < 2:
        raise ShapeError(f"expected an (N, C, ...) input, got {fmt_shape(x)}")
    reqs = ()
    if m.num_features is not None:  # None: F.batch_norm without statistics or weights
        reqs = check_channels(x[1], m.num_features, "num_features",
                              f"set num_features={x[1]} or make the previous layer produce {m.num_features} channels")
    if m.training:
        reqs += more_than_one((x[0], *x[2:]), "more than 1 value per channel in training mode (N · spatial >= 2)")
    return Out(x, 0, reqs)


@register(nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
def instance_norm(m, x):
    """out = in for (N, C, *) or unbatched (C, *); with affine or running stats, C must equal
    num_features; when it uses the input's statistics (training, or no running stats),
    prod(spatial) >= 2 (torch's "expected more than 1 spatial element"). MACs = 0."""
    ranks = _ranks(m) or (len(x),)  # F.instance_norm: any (N, C, *) input
    if len(x) not in ranks or len(x) < 2:
        raise ShapeError(f"expected a {' or '.join(f'{r}-d' for r in ranks)} input, got {len(x)}-d {fmt_shape(x)}")
    ci = 1 if len(x) == ranks[-1] else 0
    reqs = ()
    if m.num_features is not None and (m.affine or m.track_running_stats):
        reqs += check_channels(x[ci], m.num_features, "num_features", f"set num_features={x[ci]}")
    if m.training or not m.track_running_stats:
        reqs += more_than_one(x[ci + 1:], "more than 1 spatial element (instance statistics)")
    return Out(x, 0, reqs)


@register(nn.GroupNorm)
def group_norm(m: nn.GroupNorm, x):
    """out = in; C (dim 1) must equal num_channels, which num_groups divides, and
    N · (C/groups) · prod(spatial) > 1. MACs = 0."""
    if len(x) < 2:
        raise ShapeError(f"expected an (N, C, ...) input, got {fmt_shape(x)}")
    if x[1].is_Integer and int(x[1]) % m.num_groups:
        raise ShapeError(f"num_groups={m.num_groups} must divide the {x[1]} channels")
    reqs = []
    if m.num_channels is not None:  # None: F.group_norm without weight
        reqs += check_channels(x[1], m.num_channels, "num_channels", f"set num_channels={x[1]}")
    if not x[1].is_Integer:
        reqs.append(divisible(x[1], m.num_groups, f"num_groups={m.num_groups} divides the channels"))
    reqs += more_than_one((x[0], exact_div(x[1], m.num_groups), *x[2:]),
                          "each group needs more than 1 value (N · C/groups · spatial >= 2, F.group_norm's _verify_batch_size)")
    return Out(x, 0, tuple(reqs))


@register(nn.LayerNorm, nn.RMSNorm)
def layer_norm(m: nn.LayerNorm, x):
    """out = in; the trailing dims must equal normalized_shape. MACs = 0."""
    shape = tuple(m.normalized_shape)
    if len(x) < len(shape):
        raise ShapeError(f"expected trailing dims {shape}, got the {len(x)}-d input {fmt_shape(x)}")
    reqs = []
    for got, want in zip(x[len(x) - len(shape):], shape):
        if got.is_Integer:
            if int(got) != want:
                raise ShapeError(
                    f"expected trailing dims normalized_shape={shape}, got {fmt_shape(x)}; "
                    f"set normalized_shape={fmt_shape(x[len(x) - len(shape):])}"
                )
        else:
            reqs.append(equal(got, want, f"normalized_shape={shape} fixes this dim to {want}"))
    return Out(x, 0, tuple(reqs))


@register(nn.LocalResponseNorm, nn.CrossMapLRN2d)
def local_response_norm(m, x):
    """out = in for an input of 3 or more dims. MACs = 0."""
    if len(x) < 3:
        raise ShapeError(f"expected an input of 3 or more dims, got {len(x)}-d {fmt_shape(x)}")
    return x

