"""torchinfo's ``summary(model, input_data=...).total_mult_adds`` as rules on symshape's layers.

torchinfo counts nothing but parameters (``LayerInfo.calculate_macs`` in ``torchinfo/layer_info.py``,
summed over leaf modules in ``torchinfo/model_statistics.py``): a leaf module's "weight" and
"bias" times the output positions for a class whose name contains "Conv", times the first dim of
the output otherwise. A module without parameters, a module with children and a function call
count 0.
"""
from __future__ import annotations

import sympy

from ._layers import first_out, refuse, spatial

NAME = "torchinfo"
VERSION = "1.8.0"
SOURCE = ("torchinfo 1.8.0: torchinfo/layer_info.py (LayerInfo.calculate_macs) and torchinfo/model_statistics.py "
          "(total_mult_adds sums the leaf layers)")
NOTES = (
    "only parameters count: activations, pooling, upsampling, additions, matmul and attention products count 0",
    "Conv* (and ConvTranspose*, whose name contains 'Conv'): (weight + bias elements) · N · output positions, so "
    "a ConvTranspose counts output positions, not input positions",
    "any other leaf module with parameters (Linear, BatchNorm, LayerNorm, ...): (weight + bias elements) · the "
    "first dim of its output; for a Linear on (N, L, in) the middle dims are ignored (torchinfo issue #77)",
    "nn.MultiheadAttention has a child (out_proj), so it is no leaf: 0",
)

# Leaf modules whose parameters are all named "weight" and "bias" (the ones calculate_macs counts).
_WEIGHT_AND_BIAS = ("Linear", "Bilinear", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LayerNorm",
                    "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "PReLU", "Embedding",
                    "EmbeddingBag", "LocalResponseNorm", "RMSNorm")


def rule(layer, ctx):
    """The one rule: parameters times positions (Conv) or times the output's first dim."""
    if layer.params == 0:
        return sympy.Integer(0)
    out = first_out(layer)
    if "Conv" in layer.kind:
        return layer.params * spatial(out)
    if layer.kind in _WEIGHT_AND_BIAS:
        return layer.params * out[0]
    if layer.kind == "MultiheadAttention":
        return sympy.Integer(0)
    raise refuse(layer, ctx, "depends on the names of its parameters and whether it has children, which symshape "
                             "does not record")


RULES: dict = {}
default = rule
