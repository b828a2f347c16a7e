"""What the counters' rules read off a recorded layer: element counts, the batch, bias and affine
flags (from the parameter count), the attention sizes. Pure functions of a :class:`Layer`, shared
by the per-tool rule tables of :mod:`symshape.conventions`."""
from __future__ import annotations

from typing import NamedTuple

import sympy

from ..report import Outputs, Shape
from ..rules.common import prod
from ..symbols import ShapeError

__all__ = ["Context", "refuse", "first_in", "first_out", "numel", "weights", "has_bias", "has_params", "attr",
           "spatial", "CONV", "CONV_T", "conv_macs", "attention_sizes"]

#: Module kinds of the convolutions (the transposed ones apart).
CONV = ("Conv1d", "Conv2d", "Conv3d")
CONV_T = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


class Context(NamedTuple):
    """What a rule may need beyond its layer: the convention's name (for messages), the first dim
    of the model's input (ptflops divides by it) and whether BatchNorm runs in training mode."""

    convention: str
    first_dim: sympy.Expr
    training: bool


def refuse(layer, ctx: Context, why: str) -> ShapeError:
    """The error for a layer whose count in this convention symshape cannot tell from the record."""
    return ShapeError(f"layer {layer.name!r} ({layer.kind}): {ctx.convention}'s count {why}; symshape does not "
                      f"reproduce it (count this layer with the tool itself, or leave it out of the comparison)")


def first_in(layer) -> Shape:
    """The first input's shape."""
    return layer.in_shapes[0]


def first_out(layer) -> Shape:
    """The first tensor output's shape."""
    out = layer.out_shape
    if isinstance(out, Outputs):
        return out.shapes[0]
    return out


def numel(shape) -> sympy.Expr:
    """Elements of a shape."""
    return prod(shape)


def attr(layer, ctx: Context, key: str):
    """A hyper-parameter of the layer; a report without it (read from an older JSON) is refused."""
    if key not in layer.attrs:
        raise refuse(layer, ctx, f"depends on {key!r}, which this report does not record")
    return layer.attrs[key]


def weights(layer, ctx: Context) -> int:
    """Elements of the weight of a conv (any dims, transposed or not) or a Linear."""
    a = layer.attrs
    if "in_features" in a:
        return a["in_features"] * a["out_features"]
    k = attr(layer, ctx, "kernel_size")
    return a["in_channels"] * a["out_channels"] // attr(layer, ctx, "groups") * int(prod(k))


def has_bias(layer, ctx: Context) -> bool:
    """Whether a conv or Linear has a bias: its parameters beyond the weight."""
    return layer.params > weights(layer, ctx)


def has_params(layer) -> bool:
    """Whether a norm is affine (BatchNorm ``affine``, LayerNorm ``elementwise_affine``)."""
    return layer.params > 0


def spatial(shape) -> sympy.Expr:
    """Positions of an (N, C, *spatial) shape: N times the spatial sizes."""
    return shape[0] * prod(shape[2:])


def conv_macs(layer, ctx: Context) -> sympy.Expr:
    """Weights times positions: output positions for a conv, input positions for a transposed
    conv (the default convention's count, which fvcore and ptflops share)."""
    shape = first_in(layer) if layer.kind in CONV_T else first_out(layer)
    return weights(layer, ctx) * spatial(shape)


def attention_sizes(layer, ctx: Context) -> dict:
    """Sizes of a batched nn.MultiheadAttention call: the query rows ``NL`` (batch times query
    length), key and value rows ``NS`` and ``NSv``, the key length ``S``, the feature counts
    ``E``, ``kdim``, ``vdim``, the heads ``H`` and whether the weights were returned."""
    q, k, v = layer.in_shapes[:3]
    if len(q) != 3:
        raise refuse(layer, ctx, "of an unbatched attention call is not modelled")
    batch_first = attr(layer, ctx, "batch_first")
    out = layer.out_shape
    returned = isinstance(out, Outputs) and len(out) > 1 and out[1] is not None
    return {"NL": q[0] * q[1], "NS": k[0] * k[1], "NSv": v[0] * v[1], "S": k[1] if batch_first else k[0],
            "E": q[2], "kdim": k[2], "vdim": v[2], "H": attr(layer, ctx, "num_heads"), "weights": returned,
            "N": q[0] if batch_first else q[1]}
