"""How tensors lie in memory, for :mod:`symshape.memory`: which ops return views, the layout a
view leaves, and when a reshape or a batched matmul must copy.

A layout is True (contiguous), "t" (a contiguous tensor with its last two dims swapped: a matmul
reads it as it is), ("gap", inner) (a slice of a contiguous tensor along a dim other than the
outermost: dense over its last dims, *inner* elements, with gaps between those blocks) or False
(permuted or expanded: a reshape, flatten or contiguous copies it, and so does a batched matmul
that folds its batch dims).
"""
from __future__ import annotations

import sympy

from .report import shapes_of

__all__ = ["VIEWS", "STRIDED", "COPY_IF_STRIDED", "kind_of", "layout_of", "gap", "viewable", "matmul_copies"]

#: Kinds (lower case, without ``Tensor.``) whose output is a view of their first input.
VIEWS = {
    "flatten", "unflatten", "view", "view_as", "reshape", "reshape_as", "identity", "permute", "transpose", "t",
    "swapaxes", "swapdims", "movedim", "moveaxis", "squeeze", "unsqueeze", "expand", "expand_as", "chunk", "split",
    "unbind", "narrow", "getitem", "select", "detach", "contiguous", "alias",
}
#: Views that leave a non-contiguous tensor: a later reshape/flatten/contiguous copies it.
STRIDED = {"permute", "transpose", "t", "swapaxes", "swapdims", "movedim", "moveaxis", "expand", "expand_as"}
COPY_IF_STRIDED = {"flatten", "reshape", "reshape_as", "contiguous"}


def kind_of(layer) -> str:
    """A layer's kind in lower case without ``Tensor.``: the key of the memory rules."""
    k = layer.kind[len("Tensor."):] if layer.kind.startswith("Tensor.") else layer.kind
    return k.lower()


_SLICES = {"chunk", "split", "narrow", "getitem"}


def _same(a, b) -> bool:
    return sympy.simplify(sympy.sympify(a) - sympy.sympify(b)) == 0


def layout_of(layer, kind, layout):
    """The layout of a view's output: True (contiguous), "t" (a contiguous tensor with its last two
    dims swapped: a matmul reads it as it is), ("gap", inner) (a slice of a contiguous tensor along
    a dim other than the outermost: dense over its last dims, *inner* elements, with gaps between
    those blocks) or False (strided batch dims: a matmul copies it)."""
    if kind in _SLICES:
        return _sliced(layer, layout)
    if kind not in STRIDED:
        return layout if kind in VIEWS else True
    x, y = layer.in_shape, layer.out_shape
    if layout is True and kind in ("t", "transpose", "swapaxes", "swapdims") and isinstance(y, tuple) and (
            len(x) == 2 or (tuple(x[:-2]) == tuple(y[:-2]) and x[-2] == y[-1] and x[-1] == y[-2] and x != y)):
        return "t"
    return False


def _sliced(layer, layout):
    """The layout of a slice (chunk, split, narrow, a getitem that keeps the rank)."""
    if layout is not True:
        return False if gap(layout) else layout
    x, y = layer.in_shape, shapes_of(layer.out_shape)[0]
    if x is None or y is None or len(x) != len(y):
        return True
    cut = [d for d in range(len(x)) if not _same(x[d], y[d])]
    if not cut or all(_same(x[d], 1) for d in range(cut[0])):
        return True
    return ("gap", sympy.Mul(*y[cut[0]:])) if len(cut) == 1 else False


def gap(layout) -> bool:
    return isinstance(layout, tuple) and layout[0] == "gap"


def _suffix_of(inner, shape) -> bool:
    """Whether *inner* is the product of some last dims of *shape* (a view keeps the gaps there)."""
    prod = sympy.Integer(1)
    for d in reversed(tuple(shape)):
        prod *= d
        if _same(prod, inner):
            return True
    return False


def viewable(layer, kind, layout) -> bool:
    """Whether a reshape, flatten or contiguous of a tensor of this layout is a view (no copy)."""
    if layout is True:
        return True
    return gap(layout) and kind != "contiguous" and _suffix_of(layout[1], shapes_of(layer.out_shape)[0])


def matmul_copies(layout, shape) -> bool:
    """Whether a batched matmul copies an operand of this layout to fold its batch dims."""
    if len(shape) < 3:
        return False
    if gap(layout):
        return not (_same(layout[1], shape[-1]) or _same(layout[1], shape[-1] * shape[-2]))
    return layout is False
