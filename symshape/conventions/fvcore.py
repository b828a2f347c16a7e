"""fvcore's ``FlopCountAnalysis(model, x).total()`` as rules on symshape's layers.

fvcore traces the model with ``torch.jit`` and counts aten ops (``fvcore/nn/flop_count.py``,
``_DEFAULT_SUPPORTED_OPS``; the handles in ``fvcore/nn/jit_handles.py``); every other op counts 0.
A module's count is the count of the aten ops it runs. One "flop" there is one multiply-add.
"""
from __future__ import annotations

import sympy

from ._layers import CONV, CONV_T, attention_sizes, conv_macs, first_in, first_out, has_params, numel, refuse

NAME = "fvcore"
VERSION = "0.1.5.post20221221"
SOURCE = ("fvcore 0.1.5.post20221221: fvcore/nn/flop_count.py (_DEFAULT_SUPPORTED_OPS) and "
          "fvcore/nn/jit_handles.py (conv_flop_jit, linear_flop_jit, matmul_flop_jit, bmm_flop_jit, addmm_flop_jit, "
          "batchnorm_flop_jit, norm_flop_counter, elementwise_flop_counter)")
NOTES = (
    "aten ops without a handle count 0: activations, max and average pooling (but adaptive_avg_pool2d counts its "
    "input elements), additions, scaled_dot_product_attention",
    "BatchNorm counts 2 per element with affine, 1 without (eval; 5 and 4 in training mode); LayerNorm, GroupNorm "
    "and InstanceNorm 5 per element with affine, 4 without",
    "nn.MultiheadAttention counts its projections, plus the two attention products only when it returns the "
    "weights (need_weights=True runs bmm; need_weights=False runs scaled_dot_product_attention, which counts 0)",
    "upsampling: nearest 1 and bilinear 4 per output element (2-d only); other modes 0",
    "ConvTranspose counts input positions (weights · N · input positions), as torchvision does: the bug of "
    "fvcore issue #78 (output positions, and Cout² for the channels) is fixed in this version",
)


def _conv(layer, ctx):
    # a function call (F.conv2d) records no hyper-parameters; its default count is the same formula
    return conv_macs(layer, ctx) if layer.kind in CONV + CONV_T else layer.macs


def _linear(layer, ctx):
    x = first_in(layer)
    if layer.kind == "linear":  # F.linear(x, weight): the weight is (out, in)
        return numel(x) * layer.in_shapes[1][0]
    return numel(x[:-1]) * layer.attrs["in_features"] * layer.attrs["out_features"]


def _matmul(layer, ctx):
    a, b = layer.in_shapes[:2]
    if len(a) < 2 or len(b) < 2:
        raise refuse(layer, ctx, "of a product with a 1-d operand fails in fvcore's matmul handle")
    return numel(a) * b[-1]


def _addmm(layer, ctx):
    mat1, mat2 = layer.in_shapes[1:3]
    return numel(mat1) * mat2[-1]


def _batch_norm(layer, ctx):
    affine = has_params(layer)
    if ctx.training:
        return numel(first_in(layer)) * (5 if affine else 4)
    return numel(first_in(layer)) * (2 if affine else 1)


def _norm(layer, ctx):
    if layer.kind in ("layer_norm", "group_norm", "instance_norm"):
        raise refuse(layer, ctx, "depends on whether a weight was passed, which the record does not keep apart")
    return numel(first_in(layer)) * (5 if has_params(layer) else 4)


def _upsample(layer, ctx):
    mode = layer.attrs.get("mode")
    if mode is None:
        raise refuse(layer, ctx, "depends on the interpolation mode, which this report does not record")
    out = first_out(layer)
    if len(out) != 4:
        return sympy.Integer(0)
    return numel(out) * {"nearest": 1, "bilinear": 4}.get(mode, 0)


def _interpolate(layer, ctx):
    raise refuse(layer, ctx, "depends on the interpolation mode, which symshape does not record for a function call")


def _adaptive_avg_pool2d(layer, ctx):
    return numel(first_in(layer))


def _attention(layer, ctx):
    a = attention_sizes(layer, ctx)
    projections = a["NL"] * a["E"] * a["E"] * 2 + a["NS"] * a["kdim"] * a["E"] + a["NSv"] * a["vdim"] * a["E"]
    if not a["weights"]:
        return projections
    s = layer.out_shape[1][-1]  # the key length with bias_k and add_zero_attn, as the products see it
    return projections + 2 * a["NL"] * s * a["E"]


def _refuse_einsum(layer, ctx):
    raise refuse(layer, ctx, "of einsum follows numpy's einsum_path, which symshape does not reproduce")


def _refuse_batch_norm_fn(layer, ctx):
    raise refuse(layer, ctx, "of F.batch_norm depends on its training argument, which the record does not keep")


RULES = {
    **{k: _conv for k in CONV + CONV_T + ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                                          "conv_transpose3d")},
    "Linear": _linear, "linear": _linear,
    **{k: _matmul for k in ("matmul", "Tensor.matmul", "mm", "Tensor.mm", "bmm", "Tensor.bmm")},
    "addmm": _addmm, "Tensor.addmm": _addmm,
    "einsum": _refuse_einsum,
    **{k: _batch_norm for k in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm")},
    "batch_norm": _refuse_batch_norm_fn,
    **{k: _norm for k in ("LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
                          "layer_norm", "group_norm", "instance_norm")},
    **{k: _upsample for k in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")},
    "interpolate": _interpolate, "upsample": _interpolate,
    "AdaptiveAvgPool2d": _adaptive_avg_pool2d, "adaptive_avg_pool2d": _adaptive_avg_pool2d,
    "MultiheadAttention": _attention,
}


def default(layer, ctx):
    """Any other op: no handle in fvcore, so 0 (fvcore warns about it and skips it)."""
    if layer.kind in ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"):
        raise refuse(layer, ctx, "of a recurrent layer depends on the aten ops it runs, which is not modelled")
    return sympy.Integer(0)
