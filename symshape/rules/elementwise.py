"""Rules for element-wise tensor functions and methods in torch.fx graphs, and broadcasting as
torch does it: two sizes agree when they are equal or when either is 1.

A tensor arrives as its shape (a tuple of sympy expressions), anything else as its value.

>>> from symshape.symbols import symbols
>>> H, W = symbols("H W")
>>> broadcast((1, 64, H, W), (1, 64, 1, 1)).shape
(1, 64, H, W)
>>> out = broadcast((1, 3, H, W), (1, 3, 16, 16))
>>> out.shape, [str(c) for c, _ in out.requires]
((1, 3, 16, 16), ['Eq(H, 1) | Eq(H, 16)', 'Eq(W, 1) | Eq(W, 16)'])
"""
from __future__ import annotations

import itertools
import operator

import sympy
import torch

from ..decide import always_nonnegative
from ..floors import smin, whole_parts_out
from ..symbols import ShapeError
from .common import dim_index, fmt_shape, fmt_size
from .registry import Out, register

__all__ = ["is_tensor", "same_size", "stretches", "broadcast", "binary", "where", "unary", "addcmul"]


def is_tensor(value) -> bool:
    """A tensor's value in a graph is its shape: a tuple whose items are sympy expressions."""
    return isinstance(value, tuple) and all(isinstance(d, sympy.Expr) for d in value)


def same_size(a, b):
    """True when a == b for every input size, False when never (different numbers), else None.
    Floors that differ in form only (``floor((H - 3)/8) + 1`` and ``floor((H + 5)/8)``) are the same.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H = symbols("H")
    >>> same_size(floor_div(H - 3, 8) + 1, floor_div(H + 5, 8)), same_size(H, H + 1), same_size(H, floor_div(H, 2))
    (True, False, None)
    """
    if a == b:
        return True
    diff = sympy.expand(sympy.sympify(a, strict=True) - sympy.sympify(b, strict=True))
    if diff == 0 or sympy.expand(whole_parts_out(diff)) == 0:
        return True
    if diff.is_number:
        return False
    if diff.has(sympy.floor) and always_nonnegative(diff) and always_nonnegative(-diff):
        return True
    return None


# ---------------------------------------------------------------- element-wise and broadcasting

def stretches(a, b) -> sympy.Basic:
    """The condition that a dim of size *a* broadcasts against one of size *b*, as torch decides
    it: the sizes are equal or either is 1 (sympy folds the parts that are decided).

    >>> from symshape.symbols import symbols
    >>> H, W = symbols("H W")
    >>> stretches(H, 16), stretches(H, W), stretches(2 * H, 16)
    (Eq(H, 1) | Eq(H, 16), Eq(H, 1) | Eq(H, W) | Eq(W, 1), Eq(2*H, 16))
    """
    a, b = sympy.sympify(a, strict=True), sympy.sympify(b, strict=True)
    if not (a.is_Integer or b.is_Integer):  # one order, so that H vs W and W vs H give one condition
        a, b = sorted((a, b), key=sympy.default_sort_key)
    return sympy.Or(sympy.Eq(a, b), sympy.Eq(a, 1), sympy.Eq(b, 1))


def _larger(sizes) -> sympy.Expr:
    """The output size of a broadcast dim whose sizes other than 1 are all symbolic: each is 1 or
    the common size, so the output is their Max (without the sizes that another is always at
    least), times ``Min(*sizes, 1)`` where a size can be 0 (0 against 1 broadcasts to 0). A size
    that is never 1 (a multiple of an integer >= 2) is the output: every other size is it or 1.

    >>> from symshape.symbols import symbols
    >>> from symshape.floors import floor_div
    >>> H, W = symbols("H W")
    >>> _larger([H, W]), _larger([H - 1, H]), _larger([floor_div(H - 1, 4) + 1, 8 * floor_div(H + 3, 32)])
    (Max(H, W), H*Min(1, H - 1), 8*floor(H/32 + 3/32))
    """
    if len(sizes) == 1:  # the others are 1: X·Min(X, 1) = X for every size X >= 0
        return sizes[0]
    for s in sizes:
        c, rest = s.as_content_primitive()
        if c.is_Integer and c > 1 and rest.is_integer:
            return s
    keep = list(sizes)
    for a in list(keep):
        if any(b is not a and always_nonnegative(b - a) for b in keep):
            keep.remove(a)
    out = keep[0] if len(keep) == 1 else sympy.Max(*keep)
    if all(always_nonnegative(s - 1) for s in sizes):
        return out
    return out * smin(*sizes, sympy.Integer(1))


def broadcast(*shapes) -> Out:
    """NumPy broadcasting: align the trailing dims; two sizes agree when equal or when either is 1
    (which stretches). Symbolic sizes that are not decided give the domain condition
    ``a = b or a = 1 or b = 1``; the output size is the fixed size among them, else their Max."""
    rank = max(len(s) for s in shapes)
    padded = [(sympy.Integer(1),) * (rank - len(s)) + tuple(sympy.sympify(d, strict=True) for d in s) for s in shapes]
    out, reqs = [], []
    for i, dims in enumerate(zip(*padded)):
        sizes = []  # the distinct sizes other than 1
        for d in dims:
            if d != 1 and not any(same_size(d, s) for s in sizes):
                sizes.append(d)
        fixed = [s for s in sizes if s.is_Integer]
        if len(fixed) > 1:
            raise ShapeError(f"cannot broadcast {' and '.join(fmt_shape(s) for s in shapes)}: "
                             f"dim {i - rank} is {fixed[0]} in one and {fixed[1]} in another, and neither is 1")
        for a, b in itertools.combinations(sizes, 2):
            reqs.append((stretches(a, b), f"broadcasting needs dim {i - rank} to agree ({fmt_size(a)} vs {fmt_size(b)}) "
                                          f"or one of them to be 1"))
        out.append(fixed[0] if fixed else _larger(sizes) if sizes else sympy.Integer(1))
    return Out(tuple(out), 0, tuple(reqs))


_BINARY = (operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod,
           operator.pow, operator.and_,
           operator.or_, operator.xor, operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge,
           torch.add, torch.sub, torch.mul, torch.div, torch.true_divide, torch.floor_divide, torch.pow,
           torch.maximum, torch.minimum, torch.eq, torch.ne, torch.lt, torch.le, torch.gt, torch.ge,
           torch.logical_and, torch.logical_or, torch.atan2, torch.remainder, torch.fmod,
           "add", "sub", "mul", "div", "pow", "maximum", "minimum",
           "eq", "ne", "lt", "le", "gt", "ge", "masked_fill", "type_as", "__and__", "__or__")


@register(*_BINARY)
def binary(a, b, *args, **kwargs):
    """out = broadcast(a, b) for tensors (a scalar operand keeps the other's shape); MACs = 0."""
    shapes = [v for v in (a, b) if is_tensor(v)]
    if not shapes:
        raise ShapeError("expected at least one tensor operand")
    if len(shapes) == 1 or a is b:
        return Out(tuple(shapes[0]))
    return broadcast(*shapes)


@register(operator.iadd, operator.isub, operator.imul, operator.itruediv, "add_", "sub_", "mul_", "div_",
          "masked_fill_")
def in_place(a, b, *args, **kwargs):
    """``a += b`` and the other in-place ops: torch writes into *a*, so *b* must broadcast to a's shape
    (each dim equal to a's or 1; a dim of *a* that is 1 cannot stretch), and the output is a's shape;
    MACs = 0. A size on the left (``h += 1``) is arithmetic, as :func:`binary`."""
    if not is_tensor(a):
        return binary(a, b)
    if not is_tensor(b):
        return Out(tuple(a))
    if len(b) > len(a):
        raise ShapeError(f"an in-place op writes into {fmt_shape(a)}, which cannot take the {len(b)}-d {fmt_shape(b)}")
    reqs = []
    for i, (t, d) in enumerate(zip(tuple(a)[len(a) - len(b):], b)):
        t, d = sympy.sympify(t, strict=True), sympy.sympify(d, strict=True)
        if d == 1 or same_size(t, d):
            continue
        if t.is_Integer and d.is_Integer:
            raise ShapeError(f"an in-place op writes into {fmt_shape(a)}: dim {i - len(b)} of {fmt_shape(b)} is {d}, "
                             f"neither {t} nor 1 (the target's dims do not stretch)")
        reqs.append((sympy.Or(sympy.Eq(d, t), sympy.Eq(d, 1)),
                     f"an in-place op needs dim {i - len(b)} of the other operand ({fmt_size(d)}) to equal the "
                     f"target's ({fmt_size(t)}) or be 1: the target's dims do not stretch"))
    return Out(tuple(a), 0, tuple(reqs))


@register(torch.where)
def where(cond, a=None, b=None):
    """out = broadcast(cond, a, b) (the one-argument form returns index tensors and is not supported)."""
    if a is None:
        raise ShapeError("torch.where(cond) with one argument has a data-dependent shape")
    return broadcast(*[v for v in (cond, a, b) if is_tensor(v)])


_UNARY = (
    torch.relu, torch.relu_, torch.sigmoid, torch.tanh, torch.exp, torch.log, torch.sqrt, torch.rsqrt,
    torch.abs, torch.neg, torch.sin, torch.cos, torch.erf, torch.clamp, torch.clip, torch.square,
    torch.sign, torch.floor, torch.ceil, torch.round, torch.reciprocal, torch.logical_not,
    torch.cumsum, torch.flip, torch.roll, torch.softmax, torch.log_softmax, torch.zeros_like, torch.ones_like,
    torch.empty_like, torch.rand_like, torch.randn_like, torch.full_like, torch.clone, torch.detach,
    torch.nan_to_num, operator.neg, operator.pos, operator.invert, torch.sigmoid_,
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "log", "sqrt", "rsqrt", "abs", "neg", "sin",
    "cos", "erf", "clamp", "clamp_", "clamp_min", "clip", "square", "sign", "floor", "ceil", "round", "reciprocal",
    "cumsum", "flip", "roll", "softmax", "log_softmax", "float", "double", "half", "bfloat16", "int", "long",
    "bool", "to", "type", "cpu", "cuda", "contiguous", "clone", "detach", "requires_grad_", "fill_", "zero_",
    "normal_", "uniform_", "hardtanh_", "logical_not", "nan_to_num", "zeros_like",
)


@register(*_UNARY)
def unary(x, *args, **kwargs):
    """out = in (element-wise, cumulative, roll, flip, softmax and dtype/device conversions); MACs = 0."""
    if not is_tensor(x):
        raise ShapeError(f"expected a tensor, got {x!r}")
    dim = kwargs.get("dim", kwargs.get("dims"))
    for d in (dim if isinstance(dim, (tuple, list)) else [dim]):
        if isinstance(d, int):
            dim_index(d, len(x), "the op")
    return Out(tuple(x))


@register(torch.addcmul, torch.addcdiv, "addcmul", "addcdiv")
def addcmul(x, tensor1, tensor2, *args, **kwargs):
    """out = broadcast(x, tensor1, tensor2), for x + value · tensor1 · tensor2 (or / tensor2). MACs = 0."""
    return broadcast(*[v for v in (x, tensor1, tensor2) if is_tensor(v)])
