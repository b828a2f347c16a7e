"""thop's ``profile(model, inputs=(x,))`` as rules on symshape's layers.

thop hooks the modules of ``register_hooks`` (``thop/profile.py``, exact types) with the counters of
``thop/vision/basic_hooks.py`` and ``thop/vision/calc_func.py``; every other module, and every
function call, counts 0.
"""
from __future__ import annotations

import sympy

from ._layers import CONV, CONV_T, first_in, first_out, has_params, numel, refuse

NAME = "thop"
VERSION = "0.1.1.post2209072238"
SOURCE = ("thop 0.1.1.post2209072238: thop/profile.py (register_hooks) and thop/vision/basic_hooks.py with "
          "thop/vision/calc_func.py (count_convNd, count_normalization, count_linear, count_avgpool, ...)")
NOTES = (
    "conv and ConvTranspose alike count output elements times input channels per group times the kernel, bias "
    "excluded: for a ConvTranspose that is output positions, not input positions (stride² times too many with "
    "kernel = stride)",
    "BatchNorm, LayerNorm and InstanceNorm count 2 per input element, 4 with affine; GroupNorm 0",
    "ReLU, ReLU6, LeakyReLU (calculate_relu_flops returns 0), max pooling, Dropout count 0; PReLU 1 per element",
    "AvgPool counts its output elements; AdaptiveAvgPool (input/output size ratio + 1) per output element",
    "Softmax 3·n - 1 per row of n; Upsample per output element: nearest 1, linear 5, bilinear 11, bicubic 259, "
    "others 0",
    "modules without a rule count 0, so do function calls: nn.MultiheadAttention (its out_proj is a "
    "NonDynamicallyQuantizableLinear, not a Linear, and is not called), GELU, matmul, attention, additions",
)


def _conv(layer, ctx):
    a = layer.attrs
    return numel(first_out(layer)) * (first_in(layer)[1] // a["groups"]) * int(sympy.prod(a["kernel_size"]))


def _norm(layer, ctx):
    return 2 * numel(first_in(layer)) * (2 if has_params(layer) else 1)


def _prelu(layer, ctx):
    return numel(first_in(layer))


def _softmax(layer, ctx):
    x = first_in(layer)
    dim = layer.attrs.get("dim")
    if dim is None:
        raise refuse(layer, ctx, "needs the softmax dim, which this report does not record")
    n = x[dim]
    return numel(x) / n * (3 * n - 1)


def _avgpool(layer, ctx):
    return numel(first_out(layer))


def _adaptive_avgpool(layer, ctx):
    # int((prod(in spatial / out spatial) + 1) · output elements), in float64 (exact here in rationals)
    x, y = first_in(layer), first_out(layer)
    return sympy.floor((numel(x[2:]) / numel(y[2:]) + 1) * numel(y))


def _linear(layer, ctx):
    return layer.attrs["in_features"] * numel(first_out(layer))


_UPSAMPLE = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 224 + 35}


def _upsample(layer, ctx):
    mode = layer.attrs.get("mode")
    if mode is None:
        raise refuse(layer, ctx, "depends on the interpolation mode, which this report does not record")
    return numel(first_out(layer)) * _UPSAMPLE.get(mode, 0)


def _recurrent(layer, ctx):
    raise refuse(layer, ctx, "of a recurrent layer is not modelled")


_ZERO_MODULES = ("ZeroPad2d", "ReLU", "ReLU6", "LeakyReLU", "Dropout", "Sequential", "PixelShuffle",
                 "MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d")

RULES = {
    **{k: _conv for k in CONV + CONV_T},
    **{k: _norm for k in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LayerNorm",
                          "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")},
    "PReLU": _prelu,
    "Softmax": _softmax,
    **{k: (lambda layer, ctx: sympy.Integer(0)) for k in _ZERO_MODULES},
    **{k: _avgpool for k in ("AvgPool1d", "AvgPool2d", "AvgPool3d")},
    **{k: _adaptive_avgpool for k in ("AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d")},
    "Linear": _linear,
    **{k: _upsample for k in ("Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d")},
    **{k: _recurrent for k in ("RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell")},
}


def default(layer, ctx):
    """Any other module (no rule: "treat it as zero Macs") or function call: 0."""
    return sympy.Integer(0)
