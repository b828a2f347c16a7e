"""What torch's own arithmetic does at given sizes that the closed forms do not say: tensors over
torch's byte limit (torch raises) and sizes torch computes in double precision past 2**40 (its
rounding may part from the closed form). :meth:`Report.at <symshape.report.Report.at>` asks
(:func:`torch_limits`)."""
from __future__ import annotations

import math

import sympy

from .printing import fmt

__all__ = ["torch_limits", "TORCH_MAX_BYTES", "EXACT_DOUBLE_SIZES"]

#: torch's limit on one tensor: its bytes (numel · itemsize) must fit a signed 64-bit integer.
TORCH_MAX_BYTES = 2 ** 63 - 1
#: Below this size, a closed form for a float scale (floor(L·s), numerator below 2**13) equals torch's
#: floor(double(L)·s): L and L·s are exact doubles. Above, torch's rounding may part from it.
EXACT_DOUBLE_SIZES = 2 ** 40
_SCALED_KINDS = ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear")


def _numel(shape):
    n = 1
    for d in shape:
        if not (isinstance(d, sympy.Integer) or isinstance(d, int)):
            return None
        n *= int(d)
    return n


def torch_limits(report, at) -> tuple:
    """What torch's own arithmetic does at the numeric report *at* (``report`` at sizes) that the
    closed forms do not say: ``(too_big, inexact)``, lists of ``(condition, message)`` (a condition:
    the fields of a :class:`~symshape.report.Condition`, as a tuple) for each tensor
    of more than :data:`TORCH_MAX_BYTES` (torch raises) and each size torch computes in double
    precision from a size of :data:`EXACT_DOUBLE_SIZES` or more (torch runs; its rounding may part
    from the closed form)."""
    too_big, inexact = [], []
    for before, layer in zip((None, *report.layers), (None, *at.layers)):
        if before is None:
            where, name, kind = "the model's input", "", report.model
            shapes, symbolic = (at.input_shape,), (report.input_shape,)
        else:
            where, name, kind = f"layer {layer.name!r} ({layer.kind})", layer.name, layer.kind
            shapes, symbolic = layer.out_shapes, before.out_shapes
            scaled = layer.kind in _SCALED_KINDS or layer.attrs.get("scale_factor") is not None or \
                layer.attrs.get("output_ratio") is not None
            first = layer.in_shapes[0] if layer.in_shapes and isinstance(layer.in_shapes[0], tuple) else ()
            big = [i for i, d in enumerate(first) if i >= 2 and isinstance(d, sympy.Integer) and d >= EXACT_DOUBLE_SIZES]
            scale = layer.attrs.get("scale_factor") or layer.attrs.get("output_ratio")
            if scaled and big and scale is not None and layer.out_shapes:  # torch's value, computed as torch does
                nd = len(first) - 2
                scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale,) * nd
                out = layer.out_shapes[0][-nd:]
                big = [i for i in big if not isinstance(out[i - 2], sympy.Integer)
                       or int(out[i - 2]) != math.floor(float(int(first[i])) * scales[i - 2])]
            if scaled and big:
                cond = (sympy.Lt(before.in_shapes[0][big[0]], EXACT_DOUBLE_SIZES), name, kind,
                                 "torch computes this output size in double precision, exact below 2**40")
                inexact.append((cond, f"{where} computes its output size from the input size {int(first[big[0]])} "
                                      "in double precision, which may round above 2**40, where symshape's closed form "
                                      "is not exact; trace the model at these sizes (a numeric input spec) for "
                                      "torch's value"))
            if layer.kind in ("MaxPool1d", "max_pool1d") and any(
                    isinstance(d, sympy.Integer) and d > 2 ** 31 for s in shapes if s is not None for d in s[-1:]):
                cond = (sympy.Le(before.out_shapes[0][-1], 2 ** 31), name, kind,
                                 "torch's max_pool1d checks its output size in 32-bit arithmetic")
                inexact.append((cond, f"{where} gives an output size above 2**31, which torch's max_pool1d checks in "
                                      "32-bit arithmetic: it wraps, and torch raises \"Invalid computed output size\" "
                                      "at some such sizes; symshape does not model that"))
        for shape, sym in zip(shapes, symbolic):
            n = _numel(shape) if shape is not None else None
            if n is not None and n * report.itemsize > TORCH_MAX_BYTES:
                cond = (sympy.Le(sym.numel * report.itemsize, TORCH_MAX_BYTES), name, kind,
                                 f"a tensor holds at most 2**63 - 1 bytes ({report.itemsize} per element)")
                too_big.append((cond, f"the model does not run at {{at}}: {where} gives a tensor of shape {fmt(shape)}: "
                                      f"{n:,} elements of {report.itemsize} bytes are more than torch's limit of "
                                      "2**63 - 1 bytes for one tensor (torch: \"Storage size calculation "
                                      "overflowed\")"))
    return too_big, inexact
