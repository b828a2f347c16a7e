"""Random networks for differential testing: symshape's formulas against torch on many models.

:func:`random_network` builds an ``nn.Sequential`` of 1d, 2d or 3d layers drawn from the whole
layer catalogue, driven only by a ``random.Random`` (no hypothesis needed), together with a
symbolic input spec and one reference size at which torch runs it. Validity is decided by
torch itself: each drawn layer is kept only if the stack so far runs on the meta device at the
reference size, so the generator never relies on the rules it is meant to test.

>>> net = random_network(random.Random(3))
>>> net.spec, net.ref
('N,8,H,W', {'N': 3, 'H': 41, 'W': 41})
>>> import symshape as ss
>>> ss.check(net.model, ss.trace(net.model, net.spec), sizes=[net.ref]).ok
True
"""
from __future__ import annotations

import random
from typing import Callable, NamedTuple, Optional

import torch
from torch import nn

__all__ = ["Net", "random_network", "LAYER_MAKERS"]


class Net(NamedTuple):
    """A random network: the model, its input spec (``"1,3,H,W"``) and a size where torch runs it."""

    model: nn.Sequential
    spec: str
    ref: dict


_SYMBOLS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
_NAMES = {1: "1d", 2: "2d", 3: "3d"}


def _cls(prefix: str, nd: int):
    return getattr(nn, f"{prefix}{_NAMES[nd]}", None)


def _per_dim(rng, nd, draw):
    """One value, or (sometimes) a tuple of one value per spatial dim."""
    if nd > 1 and rng.random() < 0.3:
        return tuple(draw() for _ in range(nd))
    return draw()


def _divisors(c):
    return [d for d in range(1, c + 1) if c % d == 0]


def _conv(rng, nd, c):
    groups = rng.choice(_divisors(c)) if rng.random() < 0.3 else 1
    out = groups * rng.randint(1, max(1, 12 // groups))
    k = _per_dim(rng, nd, lambda: rng.randint(1, 5))
    d = _per_dim(rng, nd, lambda: rng.choice((1, 1, 2)))
    mode = rng.choice(("zeros", "zeros", "zeros", "reflect", "replicate", "circular"))
    pick = rng.random()
    if pick < 0.15:
        return _cls("Conv", nd)(c, out, k, padding="same", dilation=d, groups=groups, padding_mode=mode)
    if pick < 0.25:
        return _cls("Conv", nd)(c, out, k, padding="valid", stride=rng.randint(1, 3), dilation=d, groups=groups)
    s = _per_dim(rng, nd, lambda: rng.randint(1, 3))
    p = _per_dim(rng, nd, lambda: rng.randint(0, 3))
    return _cls("Conv", nd)(c, out, k, stride=s, padding=p, dilation=d, groups=groups, padding_mode=mode)


def _conv_transpose(rng, nd, c):
    groups = rng.choice(_divisors(c)) if rng.random() < 0.3 else 1
    out = groups * rng.randint(1, max(1, 12 // groups))
    k, s, d = rng.randint(1, 4), rng.randint(1, 3), rng.choice((1, 1, 2))
    p = rng.randint(0, (d * (k - 1)) // 2 + 1)
    op = rng.randint(0, max(s, d) - 1)
    return _cls("ConvTranspose", nd)(c, out, k, stride=s, padding=p, output_padding=op, dilation=d, groups=groups)


def _max_pool(rng, nd, c):
    k = rng.randint(1, 4)
    d = rng.choice((1, 1, 2))
    stride = rng.choice((None, 1, 2, 3))
    return _cls("MaxPool", nd)(k, stride=stride, padding=rng.randint(0, k // 2), dilation=d,
                               ceil_mode=rng.random() < 0.5)


def _avg_pool(rng, nd, c):
    k = _per_dim(rng, nd, lambda: rng.randint(1, 4))
    kmin = min(k) if isinstance(k, tuple) else k
    return _cls("AvgPool", nd)(k, stride=rng.choice((None, 1, 2, 3)), padding=rng.randint(0, kmin // 2),
                               ceil_mode=rng.random() < 0.5, count_include_pad=rng.random() < 0.5)


def _lp_pool(rng, nd, c):
    cls = _cls("LPPool", nd)
    if cls is None:
        return None
    return cls(rng.choice((1, 2)), rng.randint(1, 3), stride=rng.choice((None, 1, 2)), ceil_mode=rng.random() < 0.5)


def _adaptive(rng, nd, c):
    cls = _cls(rng.choice(("AdaptiveAvgPool", "AdaptiveMaxPool")), nd)
    if nd > 1 and rng.random() < 0.3:
        return cls(tuple(rng.choice((None, 1, 2, 3, 5)) for _ in range(nd)))
    return cls(rng.randint(1, 6))


def _fractional(rng, nd, c):
    cls = _cls("FractionalMaxPool", nd)
    if cls is None:
        return None
    k = rng.randint(1, 3)
    if rng.random() < 0.5:
        return cls(k, output_size=rng.randint(1, 5))
    return cls(k, output_ratio=rng.choice((0.3, 0.5, 0.6, 0.7, 0.75, 0.9)))


def _upsample(rng, nd, c):
    mode = rng.choice(("nearest", "nearest-exact", {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]))
    align = None if mode.startswith("nearest") else rng.random() < 0.5
    if rng.random() < 0.2:
        return nn.Upsample(size=rng.randint(1, 20), mode=mode, align_corners=align)
    scale = rng.choice((2, 3, 2.0, 0.5, 1.5, 0.7, 0.29, 2.3, 1.25, 0.333))
    return nn.Upsample(scale_factor=scale, mode=mode, align_corners=align)


def _pixel(rng, nd, c):
    if nd != 2:
        return None
    r = rng.choice((2, 3))
    if c % (r * r) == 0 and rng.random() < 0.6:
        return nn.PixelShuffle(r)
    return nn.PixelUnshuffle(r)


def _channel_shuffle(rng, nd, c):
    return nn.ChannelShuffle(rng.choice(_divisors(c)))


def _pad(rng, nd, c):
    kind = rng.choice(("ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad"))
    cls = _cls(kind, nd)
    low = -2 if kind in ("ConstantPad", "ZeroPad") else 0
    pads = tuple(rng.randint(low, 3) for _ in range(2 * nd))
    if kind == "ConstantPad":
        return cls(pads, 0.5)
    return cls(pads)


def _norm(rng, nd, c):
    pick = rng.random()
    if pick < 0.3:
        return _cls("BatchNorm", nd)(c)
    if pick < 0.5:
        return _cls("InstanceNorm", nd)(c, affine=rng.random() < 0.5)
    if pick < 0.7:
        return nn.GroupNorm(rng.choice(_divisors(c)), c)
    if pick < 0.85:
        return nn.LocalResponseNorm(rng.randint(1, 4))
    return None  # LayerNorm is added by the builder, which knows the last dim


def _activation(rng, nd, c):
    from .rules.activation import ELEMENTWISE

    pick = rng.random()
    if pick < 0.1:
        return nn.PReLU(rng.choice((1, c)))
    if pick < 0.2:
        return rng.choice((nn.Softmax, nn.LogSoftmax, nn.Softmin))(dim=1)
    if pick < 0.25 and nd == 2:
        return nn.Softmax2d()
    if pick < 0.3 and c % 2 == 0:
        return nn.GLU(dim=1)
    acts = [a for a in ELEMENTWISE if "Dropout" not in a.__name__]
    cls = rng.choice(acts)
    if cls is nn.Threshold:
        return nn.Threshold(0.1, 0.0)
    return cls()


def _dropout(rng, nd, c):
    return rng.choice((nn.Dropout(), nn.AlphaDropout(), nn.FeatureAlphaDropout(), _cls("Dropout", nd)()))


LAYER_MAKERS: dict = {
    "conv": (_conv, 5), "conv_transpose": (_conv_transpose, 2), "max_pool": (_max_pool, 3),
    "avg_pool": (_avg_pool, 2), "lp_pool": (_lp_pool, 1), "adaptive": (_adaptive, 1),
    "fractional": (_fractional, 1), "upsample": (_upsample, 2), "pixel": (_pixel, 1),
    "channel_shuffle": (_channel_shuffle, 1), "pad": (_pad, 2), "norm": (_norm, 2),
    "activation": (_activation, 3), "dropout": (_dropout, 1),
}
"""name -> (maker(rng, nd, channels) -> module or None, weight). Makers draw from the catalogue;
the builder keeps a layer only if torch runs the stack with it at the reference size."""


def _runs(layers, shape) -> Optional[tuple]:
    """The output shape of the stack on meta at ``shape``, or None when torch raises."""
    try:
        with torch.no_grad():
            out = nn.Sequential(*layers).to("meta")(torch.empty(shape, device="meta"))
    except Exception:  # torch rejects the stack: the caller draws another layer
        return None
    return tuple(out.shape)


def random_network(rng: random.Random, max_layers: int = 8, head: Optional[bool] = None) -> Net:
    """A random network valid (in torch) at its reference size.

    The spatial rank is 1, 2 or 3 (sizes L; H, W; D, H, W), the batch 1, 2 or a symbol N,
    channels 1 to 8. Up to ``max_layers`` layers are drawn from :data:`LAYER_MAKERS` (by
    weight), each kept only if torch runs the stack at the reference size and every size
    stays at most 512. Sometimes a LayerNorm over the last dim (which fixes that size) is
    added; with ``head`` (default: drawn, probability 0.4) a Flatten and a Linear whose
    in_features is the flatten size at the reference size, and sometimes a second Linear.

    >>> net = random_network(random.Random(0), max_layers=3)
    >>> len(net.model) <= 6, net.spec.count(","), sorted(net.ref)
    (True, 4, ['D', 'H', 'W'])
    >>> [random_network(random.Random(s)).spec for s in range(4)] == [random_network(random.Random(s)).spec for s in range(4)]
    True
    """
    nd = rng.choice((1, 2, 2, 3))
    syms = _SYMBOLS[nd]
    top = 12 if nd == 3 else 48
    ref = {s: rng.randint(4, top) for s in syms}
    if nd > 1 and rng.random() < 0.4:
        ref = {s: ref[syms[0]] for s in syms}
    batch = rng.choice(("1", "2", "N"))
    channels = rng.randint(1, 8)
    if batch == "N":
        ref = {"N": rng.randint(1, 3), **ref}
    spec = ",".join([batch, str(channels), *syms])
    shape = tuple(ref.get(d, int(d) if d.isdigit() else 0) for d in spec.split(","))
    names, weights = zip(*((k, w) for k, (_, w) in LAYER_MAKERS.items()))
    layers, now = [], shape
    for _ in range(rng.randint(1, max_layers)):
        for _attempt in range(6):
            maker = LAYER_MAKERS[rng.choices(names, weights)[0]][0]
            layer = maker(rng, nd, now[1])
            if layer is None:
                continue
            out = _runs([*layers, layer], shape)
            if out is not None and len(out) == len(shape) and max(out) <= 512 and min(out) >= 1:
                layers.append(layer)
                now = out
                break
    out = _runs(layers, shape) if layers else shape
    if rng.random() < 0.1:
        layers.append(nn.LayerNorm(out[-1]))
    if head if head is not None else rng.random() < 0.4:
        start = rng.choice((1, 1, 1, 2)) if nd > 1 else 1
        flat = 1
        for d in out[start:]:
            flat *= d
        layers += [nn.Flatten(start), nn.Linear(flat, rng.randint(1, 10))]
        if rng.random() < 0.3:
            layers += [nn.ReLU(), nn.Linear(layers[-1].out_features, rng.randint(1, 5))]
    assert _runs(layers, shape) is not None, "the generator must only build networks that torch runs"
    return Net(nn.Sequential(*layers), spec, ref)


Maker = Callable[[random.Random, int, int], Optional[nn.Module]]
