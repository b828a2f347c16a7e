"""ptflops' ``get_model_complexity_info(model, ..., as_strings=False)`` (default pytorch backend) as
rules on symshape's layers.

ptflops hooks the modules of ``MODULES_MAPPING`` (``ptflops/pytorch_ops.py``, exact types) and
divides their sum by the first dim of the model's input ("per sample",
``compute_average_flops_cost`` in ``ptflops/pytorch_engine.py``); it also patches some functions
(``FUNCTIONAL_MAPPING``, ``TENSOR_OPS_MAPPING``) and adds their counts undivided. The hooked
modules call patched functions too (nn.ReLU calls F.relu, nn.MaxPool2d F.max_pool2d), so those
are counted twice. Each rule returns ``(per_sample, direct)``: the module hook's count, divided
by the first dim, and the patched functions' count, added as it is; the total is the floor of
their sum (ptflops returns ``int`` of a float).
"""
from __future__ import annotations

import sympy

from ._layers import (CONV, CONV_T, attention_sizes, first_in, first_out, has_bias, has_params, numel,
                      refuse, spatial, weights)

NAME = "ptflops"
VERSION = "0.7.5"
SOURCE = ("ptflops 0.7.5: ptflops/pytorch_ops.py (MODULES_MAPPING, FUNCTIONAL_MAPPING, TENSOR_OPS_MAPPING and their "
          "hooks) and ptflops/pytorch_engine.py (compute_average_flops_cost, patch_functional, patch_tensor_ops)")
NOTES = (
    "module counts are divided by the first dim of the model's input (the batch), patched function counts are not",
    "conv and Linear add their bias (one per output element); BatchNorm, InstanceNorm and GroupNorm count 2 per "
    "input element with affine, 1 without; LayerNorm 1 (it has no 'affine' attribute)",
    "ReLU, GELU, ELU and PReLU count their output elements in the hook and their input elements again in the "
    "patched F.relu, F.gelu, ...; ReLU6 and LeakyReLU only in the hook; pooling counts its input elements twice "
    "(hook and patched F.max_pool2d, ...); Softmax and SiLU only through the patched function",
    "Upsample's hook counts the elements of the first sample of its output (output[0]), then divided by the batch; "
    "the patched F.interpolate adds the output size (or input elements times the scale factors)",
    "LocalResponseNorm is not hooked, but the patched Tensor.mul, Tensor.add and avg_pool3d it runs count "
    "3 per input element plus the elements of the padded squares",
    "nn.MultiheadAttention has its own formula (projections with bias, a scaling, the two products and a softmax "
    "per head); with need_weights=True the patched torch.bmm and F.softmax inside it count again",
    "function calls are counted only when patched: torch.matmul, torch.bmm, torch.mm, torch.addmm, torch.add, "
    "torch.mul and their Tensor methods, F.relu, F.gelu, F.softmax, the pooling functions and F.interpolate; "
    "'a @ b', 'a + b', 'a * b' and torch.relu are not",
)

_ZERO = sympy.Integer(0)


def _conv(layer, ctx):
    positions = spatial(first_in(layer) if layer.kind in CONV_T else first_out(layer))
    count = weights(layer, ctx) * positions
    if has_bias(layer, ctx):
        count += numel(first_out(layer))
    return count, _ZERO


def _linear(layer, ctx):
    x = first_in(layer)
    per_row = layer.attrs["in_features"] * layer.attrs["out_features"]
    if has_bias(layer, ctx):
        per_row += layer.attrs["out_features"]
    return per_row * numel(x[:-1]), _ZERO


def _norm(layer, ctx):
    # bn_flops_counter_hook: doubled when the module has an 'affine' attribute that is true (not LayerNorm)
    doubled = layer.kind != "LayerNorm" and has_params(layer)
    return numel(first_in(layer)) * (2 if doubled else 1), _ZERO


def _activation_twice(layer, ctx):
    return numel(first_out(layer)), numel(first_in(layer))


def _activation_once(layer, ctx):
    return numel(first_out(layer)), _ZERO


def _pool(layer, ctx):
    return numel(first_in(layer)), numel(first_in(layer))


def _function_numel(layer, ctx):
    return _ZERO, numel(first_in(layer))


def _upsample(layer, ctx):
    out = first_out(layer)
    return numel(out[1:]), _interpolated(layer, ctx)


def _interpolated(layer, ctx):
    """_interpolate_functional_flops_hook: prod(size)·N·C with a size, else input elements times the
    scale factors (a scale given as one number is raised to the number of spatial dims)."""
    size, scale = layer.attrs.get("size"), layer.attrs.get("scale_factor")
    x = first_in(layer)
    if size is not None:
        return numel(first_out(layer))
    if scale is None:
        raise refuse(layer, ctx, "depends on its size or scale_factor, which this report does not record")
    if isinstance(scale, tuple):
        if len(scale) == len(x) - 2:
            return numel(x) * int(sympy.prod(scale))  # int(np.prod(...)) truncates a fractional product
        raise refuse(layer, ctx, "of a scale_factor tuple of another length is not modelled")
    return numel(x) * sympy.nsimplify(scale) ** (len(x) - 2)


def _refuse_fn(layer, ctx):
    raise refuse(layer, ctx, "depends on the call's arguments (a size, a scale factor), which symshape does not "
                             "record for a function call")


def _attention(layer, ctx):
    """multihead_attention_counter_hook, plus the patched bmm and softmax that run inside when
    the weights are returned."""
    a = attention_sizes(layer, ctx)
    n, e, h, kd, vd = a["N"], a["E"], a["H"], a["kdim"], a["vdim"]
    lq, lk, lv = a["NL"] / n, a["NS"] / n, a["NSv"] / n
    per_batch = lq * e + lq * e * e + lk * kd * kd + lv * vd * vd  # Q scaling, "projections" (kdim² as written)
    if layer.params >= 2 * e * e + e * kd + e * vd + 4 * e:  # in_proj_bias (bias=True also gives out_proj one)
        per_batch += (lq + lk + lv) * e
    per_batch += h * (lq * lk * (e // h) + lq * lk + lq * lk * (vd // h))  # QK^T, softmax, AV per head
    per_batch += lq * vd * (vd + 1)  # output projection, its bias always counted
    direct = _ZERO
    if a["weights"]:
        sw = layer.out_shape[1][-1]
        direct = 2 * a["NL"] * sw * e + a["NL"] * h * sw  # torch.bmm twice, F.softmax on (N·H, L, S)
    return sympy.expand(per_batch * n), direct


def _product(layer, ctx):
    a, b = layer.in_shapes[:2]
    return _ZERO, numel(a) * b[-1]


def _addmm(layer, ctx):
    x, mat1, mat2 = layer.in_shapes[:3]
    return _ZERO, numel(mat1) * mat2[-1] + numel(x)  # beta = 1 assumed


def _elementwise(layer, ctx):
    """_elementwise_tensor_flops_hook: the larger size per dim, the dims aligned from the left."""
    shapes = layer.in_shapes
    if len(shapes) == 1:
        return _ZERO, numel(shapes[0])
    a, b = shapes[:2]
    dims = [sympy.Max(a[i] if i < len(a) else 1, b[i] if i < len(b) else 1) for i in range(max(len(a), len(b)))]
    return _ZERO, sympy.Mul(*dims)


def _local_response_norm(layer, ctx):
    """Not hooked, but F.local_response_norm runs the patched Tensor.mul twice and Tensor.add on
    the input's size, and the patched avg_pool3d (avg_pool2d for 3-d input) on the squares
    padded with size - 1 channels."""
    x = first_in(layer)
    size = layer.attrs.get("size")
    if not isinstance(size, int):
        raise refuse(layer, ctx, "depends on the window size, which this report does not record")
    return _ZERO, 3 * numel(x) + x[0] * (x[1] + size - 1) * numel(x[2:])


def _subclass_upsample(layer, ctx):
    """UpsamplingNearest2d and UpsamplingBilinear2d are not hooked (exact types), but their
    forward calls the patched F.interpolate."""
    return _ZERO, _interpolated(layer, ctx)


def _recurrent(layer, ctx):
    raise refuse(layer, ctx, "of a recurrent layer is not modelled")


_POOLS = tuple(f"{p}{d}d" for p in ("MaxPool", "AvgPool", "AdaptiveMaxPool", "AdaptiveAvgPool") for d in (1, 2, 3))
_POOL_FNS = tuple(f"{p}{d}d" for p in ("max_pool", "avg_pool", "adaptive_max_pool", "adaptive_avg_pool")
                  for d in (1, 2, 3))

#: The functions ptflops 0.7.5 patches (patch_functional, patch_tensor_ops), as Layer.attrs["function"] names them.
PATCHED = frozenset({f"F.{n}" for n in ("relu", "prelu", "elu", "relu6", "gelu", "silu", "softmax", "upsample",
                                        "interpolate") + _POOL_FNS}
                    | {f"torch.{n}" for n in ("matmul", "mm", "bmm", "addmm", "baddbmm", "mul", "add")})


def _when_patched(rule):
    """The rule for a function call that ptflops sees only when it patched that very function:
    ``a @ b`` and ``a + b`` (operator.*) and torch.relu are not patched, torch.matmul and F.relu
    are. A report without the function's name (an older JSON) takes F.relu, torch.bmm, ``a @ b``
    and ``a + b``, the usual spellings."""
    def patched(layer, ctx):
        name = layer.attrs.get("function")
        if name is None:
            seen = layer.kind not in ("matmul", "add", "mul")
        else:
            seen = name in PATCHED
        return rule(layer, ctx) if seen else (_ZERO, _ZERO)
    return patched


RULES = {
    **{k: _conv for k in CONV + CONV_T},
    "Linear": _linear,
    **{k: _norm for k in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
                          "InstanceNorm3d", "GroupNorm", "LayerNorm")},
    **{k: _activation_twice for k in ("ReLU", "GELU", "ELU", "PReLU")},
    **{k: _activation_once for k in ("ReLU6", "LeakyReLU")},
    **{k: _pool for k in _POOLS},
    "Softmax": _function_numel, "Softmax2d": _function_numel, "SiLU": _function_numel,
    "Upsample": _upsample, "UpsamplingNearest2d": _subclass_upsample, "UpsamplingBilinear2d": _subclass_upsample,
    "LocalResponseNorm": _local_response_norm,
    **{k: _recurrent for k in ("LPPool1d", "LPPool2d", "LPPool3d")},
    "MultiheadAttention": _attention,
    **{k: _recurrent for k in ("RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell")},
    # patched functions (module kinds are class names; function kinds are the function's name)
    **{k: _when_patched(_function_numel) for k in ("relu", "prelu", "elu", "relu6", "gelu", "silu", "softmax")
       + _POOL_FNS},
    "local_response_norm": _when_patched(_refuse_fn),
    "interpolate": _when_patched(_refuse_fn), "upsample": _when_patched(_refuse_fn),
    **{k: _when_patched(_product) for k in ("matmul", "mm", "bmm")},
    **{k: _product for k in ("Tensor.matmul", "Tensor.mm", "Tensor.bmm")},
    "addmm": _when_patched(_addmm), "baddbmm": _when_patched(_addmm), "Tensor.addmm": _addmm,
    "add": _when_patched(_elementwise), "mul": _when_patched(_elementwise),
    "Tensor.add": _elementwise, "Tensor.mul": _elementwise,
}


def default(layer, ctx):
    """Any other module or function: not hooked, not patched, so 0 (ptflops calls it a zero-op)."""
    return _ZERO, _ZERO


def total(per_sample, direct, ctx):
    """int(module sum / first dim + function sum)."""
    return sympy.floor(per_sample / ctx.first_dim + direct)


