"""Rules for tensor functions and methods that appear in torch.fx graphs: reshapes, permutations,
concatenation and splitting, indexing, reductions (element-wise ops and broadcasting are in
:mod:`.elementwise`, matrix products in :mod:`.products`, factories in :mod:`.factories`).

A rule here takes the values of the call's arguments: a tensor arrives as its shape (a tuple of
sympy expressions), a size as a sympy expression, anything else as the plain Python value.
Function rules are registered by the function object (``torch.flatten``, ``operator.add``) and
method rules by the method name (``"view"``), so ``x.view(...)`` and ``torch.reshape(x, ...)``
share one rule.

>>> from symshape.symbols import symbols
>>> H, W = symbols("H W")
>>> broadcast((1, 64, H, W), (1, 64, 1, 1)).shape
(1, 64, H, W)
>>> reshape((1, 3, H, W), 1, -1).shape
(1, 3*H*W)
"""
from __future__ import annotations

import operator
from functools import lru_cache
from types import SimpleNamespace

import sympy
import torch

from ..decide import always_nonnegative
from ..floors import ceil_div, floor_div, smin
from ..symbols import ShapeError
from . import reshape as _reshape_rules
from .common import _int, _sizes, dim_index, equal, exact_div, fmt_shape, fmt_size, prod
from .elementwise import broadcast, in_place, is_tensor, same_size
from .indexing import is_list_index, list_index, place
from .registry import Out, register
from .window import Window

__all__ = ["is_tensor", "same_size", "broadcast", "reshape", "getitem", "setitem", "cat", "slice_size"]




# ---------------------------------------------------------------- reshapes

@register(torch.flatten, "flatten")
def flatten(x, start_dim: int = 0, end_dim: int = -1):
    """out = x[:start] + (prod(x[start:end + 1]),) + x[end + 1:] (a 0-d input gives (1,))."""
    return _reshape_rules.flatten(SimpleNamespace(start_dim=start_dim, end_dim=end_dim), x)


@register(torch.reshape, "reshape", "view")
def reshape(x, *shape):
    """out = shape, with one -1 inferred as numel/prod(other sizes); the element counts must agree
    (a domain condition when they are symbolic). MACs = 0."""
    sizes = list(_sizes(shape))
    numel = prod(x)
    if sum(1 for s in sizes if s == -1) > 1:
        raise ShapeError(f"only one size may be -1 in {tuple(sizes)}")
    reqs = []
    if -1 in sizes:
        known = prod(s for s in sizes if s != -1)
        if known == 0:
            raise ShapeError(f"cannot view {fmt_shape(x)} as {tuple(sizes)}: the -1 is ambiguous next to a size 0")
        if not known.is_Integer:
            reqs.append((sympy.Ge(known, 1), f"view/reshape with -1 needs the other sizes' product "
                                             f"{fmt_size(known)} to be at least 1"))
        if known.is_Integer:
            if numel.is_Integer and int(numel) % int(known):
                raise ShapeError(f"cannot view {fmt_shape(x)} ({numel} elements) as {tuple(sizes)}: "
                                 f"{numel} is not divisible by {known}")
            rest = exact_div(numel, int(known))
            if not numel.is_Integer and not sympy.expand(rest * known - numel) == 0:
                reqs.append(((sympy.Eq(sympy.Mod(numel, known), 0)),
                             f"view/reshape needs the {fmt_size(numel)} elements to be divisible by {known}"))
        else:
            rest = numel / known  # common factors cancel without expanding the product
            num, den = sympy.fraction(sympy.together(rest))  # together: (floor(W/2) + 1)/2 is a sum of halves
            if den == 1:  # together may cancel into a sum of fractions: (3L - 12)(2N + 12)/(4N + 24) = 3L/2 - 6
                num, den = sympy.fraction(sympy.together(num))
                rest = num / den
            if den != 1:
                rest = sympy.cancel(rest)
                num, den = sympy.fraction(sympy.together(rest))
            why = f"view/reshape needs the elements to be divisible by {fmt_shape([known])[1:-2]}"
            if den != 1 and den.is_Integer:  # numel/known = num/den: whole where den divides num
                rest = floor_div(num, den)
                reqs.append((sympy.Eq(sympy.Mod(num, den), 0), why))
            elif den != 1:
                rest = sympy.floor(rest)
                reqs.append((sympy.Eq(rest * known, numel), why))
        sizes = [rest if s == -1 else s for s in sizes]
    else:
        same = same_size(prod(sizes), numel)
        if same is False:
            raise ShapeError(f"cannot view {fmt_shape(x)} ({fmt_size(numel)} elements) as {fmt_shape(sizes)} "
                             f"({fmt_size(prod(sizes))} elements); the element counts must agree")
        if same is None:
            reqs.append(equal(numel, prod(sizes), f"view/reshape to {fmt_shape(sizes)} needs the same element count"))
    return Out(tuple(sizes), 0, tuple(reqs))


@register("view_as", "reshape_as")
def view_as(x, other):
    """out = other's shape."""
    if not is_tensor(other):
        raise ShapeError("expected a tensor to take the shape from")
    if same_size(prod(x), prod(other)) is None:
        return Out(tuple(other), 0, (equal(prod(x), prod(other), "view_as needs the same element count"),))
    return Out(tuple(other))


@register(torch.permute, "permute")
def permute(x, *dims):
    """out[i] = x[dims[i]]."""
    dims = [int(d) for d in (dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims)]
    if len(dims) != len(x):
        raise ShapeError(f"permute needs {len(x)} dims for the {len(x)}-d input {fmt_shape(x)}, got {tuple(dims)}")
    idx = [dim_index(d, len(x), "permute") for d in dims]
    if sorted(idx) != list(range(len(x))):
        raise ShapeError(f"permute dims {tuple(dims)} are not a permutation of 0..{len(x) - 1}")
    return tuple(x[i] for i in idx)


@register(torch.transpose, torch.swapaxes, "transpose", "swapaxes", "transpose_")
def transpose(x, dim0: int, dim1: int):
    """out = x with dims dim0 and dim1 swapped."""
    a, b = dim_index(dim0, len(x), "transpose"), dim_index(dim1, len(x), "transpose")
    out = list(x)
    out[a], out[b] = out[b], out[a]
    return tuple(out)


@register(torch.t, "t")
def t(x):
    """out = x reversed, for a 1-d or 2-d x."""
    if len(x) > 2:
        raise ShapeError(f"t() expects a tensor of at most 2 dims, got {fmt_shape(x)}")
    return tuple(reversed(x))


@register(torch.movedim, "movedim")
def movedim(x, source, destination):
    """Moves dims from source positions to destination positions."""
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [dim_index(d, len(x), "movedim") for d in src]
    dst = [dim_index(d, len(x), "movedim") for d in dst]
    order = [None] * len(x)
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(i for i in range(len(x)) if i not in src)
    return tuple(x[o if o is not None else next(rest)] for o in order)


@register(torch.squeeze, "squeeze")
def squeeze(x, dim=None):
    """Drops size-1 dims (all, or the given ones). A symbolic size that can be 1 is refused: torch
    drops it there and keeps it elsewhere, so the rank itself would depend on the size."""
    dims = range(len(x)) if dim is None else {
        dim_index(d, len(x), "squeeze") for d in (dim if isinstance(dim, (tuple, list)) else [dim])}
    for i in dims:
        if not x[i].is_Integer and not always_nonnegative(x[i] - 2):
            raise ShapeError(f"squeeze of dim {i} of {fmt_shape(x)}: the size {fmt_size(x[i])} can be 1, where torch "
                             "drops the dim (elsewhere it keeps it), so the rank depends on the size; squeeze a dim "
                             "of fixed size 1, or index it (x[:, 0]) where it is always 1")
    return tuple(d for i, d in enumerate(x) if not (i in dims and d == 1))


@register(torch.unsqueeze, "unsqueeze")
def unsqueeze(x, dim: int):
    """Inserts a size-1 dim at dim (-1 appends)."""
    i = dim_index(dim, len(x) + 1, "unsqueeze")
    return (*x[:i], sympy.Integer(1), *x[i:])


@register("expand")
def expand(x, *sizes):
    """out = sizes, where -1 keeps x's size and a dim of size 1 stretches (a symbolic dim must be
    the target size or 1); new dims lead."""
    sizes = _sizes(sizes)
    if len(sizes) < len(x):
        raise ShapeError(f"expand needs at least {len(x)} sizes for {fmt_shape(x)}, got {tuple(sizes)}")
    lead = len(sizes) - len(x)
    out, reqs = list(sizes[:lead]), []
    for d, s in zip(x, sizes[lead:]):
        if s == -1 or same_size(d, s):
            out.append(d)
        elif d == 1:
            out.append(s)
        elif d.is_Integer and s.is_Integer:
            raise ShapeError(f"cannot expand {fmt_shape(x)} to {tuple(sizes)}: a dim of size {d} can only stay {d}")
        else:
            reqs.append((sympy.Or(sympy.Eq(s, d) if d.is_Integer else sympy.Eq(d, s), sympy.Eq(d, 1)),
                         f"expand to {fmt_size(s)} needs the dim ({fmt_size(d)}) to be {fmt_size(s)} or 1"))
            out.append(s)
    return Out(tuple(out), 0, tuple(reqs))


@register("expand_as")
def expand_as(x, other):
    """out = x.expand(other's shape): a size-1 dim stretches, the others must agree."""
    if not is_tensor(other):
        raise ShapeError("expected a tensor to take the shape from")
    return expand(x, *other)


@register("repeat")
def repeat(x, *sizes):
    """out[i] = x[i] · repeats[i], with new leading dims."""
    reps = _sizes(sizes)
    if len(reps) < len(x):
        raise ShapeError(f"repeat needs at least {len(x)} repeats for {fmt_shape(x)}, got {tuple(reps)}")
    padded = (sympy.Integer(1),) * (len(reps) - len(x)) + tuple(x)
    return tuple(d * r for d, r in zip(padded, reps))


@register(torch.repeat_interleave, "repeat_interleave")
def repeat_interleave(x, repeats=None, dim=None, *, output_size=None):
    """Each element repeated in place: out[dim] = x[dim]·repeats for an integer repeats (dim None:
    the input flattened, (numel·repeats,)); repeats >= 0, and output_size, when given, must equal
    that length. A repeats tensor (one count per element of the dim, or one for all) gives a length
    that is the sum of its values: output_size states it (torch's meta kernel needs it too), else a
    ShapeError. ``torch.repeat_interleave(counts)`` alone is a tensor of sum(counts). MACs = 0."""
    if repeats is None:  # torch.repeat_interleave(counts): index i repeated counts[i] times
        if len(x) != 1:
            raise ShapeError(f"repeat_interleave(counts) needs a 1-d tensor of counts, got {fmt_shape(x)}")
        if output_size is None:
            raise ShapeError("repeat_interleave(counts): the output length is the sum of the counts, which a shape "
                             "does not carry; pass output_size=<that sum>")
        return (sympy.sympify(output_size, strict=True),)
    flat = dim is None
    if flat:
        x, i = (prod(x),), 0
    else:
        i = dim_index(dim, len(x), "repeat_interleave")
    size = x[i] if x else None
    if is_tensor(repeats):
        if len(repeats) > 1:
            raise ShapeError(f"repeat_interleave: repeats must be 0-dim or 1-dim tensor, got {fmt_shape(repeats)}")
        if output_size is None:
            raise ShapeError("repeat_interleave with a repeats tensor: the output length is the sum of its values, "
                             "which a shape does not carry; pass output_size=<that sum>, or repeat by an integer")
        reqs = ()
        if size is not None and repeats and not same_size(repeats[0], 1):
            if same_size(repeats[0], size) is False:
                raise ShapeError(f"repeat_interleave: repeats must have the same size as input along dim, got "
                                 f"{fmt_size(repeats[0])} repeats for a dim of {fmt_size(size)}")
            reqs = (equal(size, repeats[0], "repeat_interleave: one repeat count per element of the dim"),)
        length = sympy.sympify(output_size, strict=True)
    else:
        r = sympy.sympify(repeats, strict=True)
        if r.is_Integer and r < 0:
            raise ShapeError(f"repeat_interleave: repeats must be non-negative, got {r}")
        length = size * r
        reqs = () if r.is_Integer else ((sympy.Ge(r, 0), "repeat_interleave: repeats must be non-negative"),)
        if output_size is not None:
            want = sympy.sympify(output_size, strict=True)
            if same_size(want, length) is False:
                raise ShapeError(f"repeat_interleave: output_size {fmt_size(want)} is not the length "
                                 f"{fmt_size(length)} (= {fmt_size(size)}·{fmt_size(r)})")
            reqs += (equal(want, length, "repeat_interleave: output_size must be the repeated length"),)
    return Out((*x[:i], length, *x[i + 1:]), 0, reqs)


# ---------------------------------------------------------------- concatenation and splitting

@register(torch.cat, torch.concat, torch.concatenate)
def cat(tensors, dim: int = 0, axis=None):
    """out[dim] = sum of the inputs' dim; every other dim must agree (a domain condition)."""
    dim = axis if axis is not None else dim
    tensors = [s for s in tensors if not (len(s) == 1 and s[0] == 0)]  # torch skips legacy empty (0,) tensors
    if not tensors:
        raise ShapeError("cat needs at least one tensor")
    rank = len(tensors[0])
    if any(len(s) != rank for s in tensors):
        raise ShapeError(f"cat needs tensors of the same rank, got {', '.join(fmt_shape(s) for s in tensors)}")
    i = dim_index(dim, rank, "cat")
    out, reqs = list(tensors[0]), []
    for s in tensors[1:]:
        for j, (a, b) in enumerate(zip(tensors[0], s)):
            if j == i:
                continue
            same = same_size(a, b)
            if same is False:
                raise ShapeError(f"cat along dim {dim} needs the other dims to agree; dim {j} is {fmt_size(a)} in "
                                 f"{fmt_shape(tensors[0])} and {fmt_size(b)} in {fmt_shape(s)}")
            if same is None:
                reqs.append(equal(a, b, f"cat along dim {dim} needs dim {j} of every input to agree"))
        out[i] = out[i] + s[i]
    return Out(tuple(out), 0, tuple(reqs))


@register(torch.stack)
def stack(tensors, dim: int = 0):
    """out = the common shape with a new dim of len(tensors) at dim; the shapes must agree."""
    first = tensors[0]
    reqs = []
    for s in tensors[1:]:
        if len(s) != len(first):
            raise ShapeError(f"stack needs tensors of the same shape, got {fmt_shape(first)} and {fmt_shape(s)}")
        for j, (a, b) in enumerate(zip(first, s)):
            same = same_size(a, b)
            if same is False:
                raise ShapeError(f"stack needs tensors of the same shape, got {fmt_shape(first)} and {fmt_shape(s)}")
            if same is None:
                reqs.append(equal(a, b, f"stack needs dim {j} of every input to agree"))
    i = dim_index(dim, len(first) + 1, "stack")
    return Out((*first[:i], sympy.Integer(len(tensors)), *first[i:]), 0, tuple(reqs))


@register(torch.split, "split")
def split(x, split_size_or_sections, dim: int = 0):
    """Pieces of split_size along dim (the last one shorter), or of the given section sizes, which
    must add up to the dim."""
    i = dim_index(dim, len(x), "split")
    size = x[i]
    if isinstance(split_size_or_sections, (list, tuple)):
        sections = [sympy.sympify(s, strict=True) for s in split_size_or_sections]
        reqs = ()
        same = same_size(sum(sections), size)
        if same is False:
            raise ShapeError(f"split sections {fmt_shape(sections)} must add up to dim {dim} of {fmt_shape(x)}")
        if same is None:
            reqs = (equal(size, sum(sections), f"split sections must add up to dim {dim}"),)
        return Out(tuple((*x[:i], s, *x[i + 1:]) for s in sections), 0, reqs)
    step = _int(split_size_or_sections, "split_size")
    if not size.is_Integer:
        raise ShapeError(f"split into pieces of {step} along a symbolic dim {fmt_size(size)} gives a number of outputs that "
                         "depends on the input size; split a dim of fixed size, or use sections")
    n = int(size)
    return tuple((*x[:i], sympy.Integer(min(step, n - k)), *x[i + 1:]) for k in range(0, n, step))


@register(torch.chunk, "chunk")
def chunk(x, chunks: int, dim: int = 0):
    """Pieces of ceil(L/chunks) along dim, the last one what remains (torch returns fewer than chunks
    pieces where (chunks - 1)·ceil(L/chunks) >= L: for a symbolic L, a domain condition)."""
    i = dim_index(dim, len(x), "chunk")
    size = x[i]
    if size.is_Integer:
        step = -(-int(size) // chunks)
        return split(x, max(step, 1), dim)
    if chunks == 1:
        return Out((tuple(x),))
    step = ceil_div(size, chunks)
    last = floor_div(size, 2) if chunks == 2 else size - (chunks - 1) * step
    reqs = (sympy.Ge(size, 2) if chunks == 2 else sympy.Ge(last, 1), f"chunk({chunks}) along a symbolic dim of size {fmt_size(size)} gives {chunks} "
                               f"pieces only where {chunks - 1}·ceil({fmt_size(size)}/{chunks}) < {fmt_size(size)} "
                               "(else the number of pieces depends on the size)"),
    return Out(tuple((*x[:i], step if j < chunks - 1 else last, *x[i + 1:]) for j in range(chunks)), 0, reqs)


@register(torch.tensor_split, "tensor_split")
def tensor_split(x, indices_or_sections, dim: int = 0):
    """n sections: always n pieces, piece i of ceil((L - i)/n) (the first L mod n one longer);
    a list of indices: the slices between them, as torch clamps them."""
    i = dim_index(dim, len(x), "tensor_split")
    size = x[i]
    if isinstance(indices_or_sections, (list, tuple)):
        cuts = [None, *indices_or_sections, None]
        return tuple((*x[:i], slice_size(size, a, b, None), *x[i + 1:]) for a, b in zip(cuts, cuts[1:]))
    n = _int(indices_or_sections, "tensor_split's sections")
    if n < 1:
        raise ShapeError(f"tensor_split needs at least 1 section, got {n}")
    return tuple((*x[:i], floor_div(size - j + n - 1, n), *x[i + 1:]) for j in range(n))


@register(torch.unflatten, "unflatten")
def unflatten(x, dim: int, sizes):
    """As nn.Unflatten: x[dim] becomes sizes (one -1 inferred), whose product must equal it."""
    return _reshape_rules.unflatten(SimpleNamespace(dim=dim, unflattened_size=tuple(sizes)), x)


@register(torch.unbind, "unbind")
def unbind(x, dim: int = 0):
    """One piece per index of a dim of fixed size, with that dim removed."""
    i = dim_index(dim, len(x), "unbind")
    n = _int(x[i], f"unbind along dim {dim}: the dim")
    return tuple(tuple(x[:i]) + tuple(x[i + 1:]) for _ in range(n))


@register(torch.narrow, "narrow")
def narrow(x, dim: int, start, length):
    """out[dim] = length; start + length must not exceed the dim."""
    i = dim_index(dim, len(x), "narrow")
    reqs = ((sympy.Le(start + length, x[i]), "narrow: start + length <= the dim's size"),)
    crop = crop_window(-sympy.sympify(start, strict=True), start + length - x[i])
    return Out((*x[:i], sympy.sympify(length, strict=True), *x[i + 1:]), 0, reqs, (crop,) + (None,) * (len(x) - i - 1))


def crop_window(left, right, step: int = 1) -> Window:
    """A crop (negative padding) or padding as a window of kernel 1: output row o is input row
    o·step - left (for the receptive field)."""
    def plain(v):
        v = sympy.sympify(v, strict=True)
        return int(v) if v.is_Integer else v
    left, right = plain(left), plain(right)
    return Window(1, step, left, 1, False, None if left == right else right)


# ---------------------------------------------------------------- indexing

def _min(a, b):
    """min(a, b), decided by :func:`~symshape.decide.always_nonnegative` where it can be."""
    if always_nonnegative(b - a):
        return a
    if always_nonnegative(a - b):
        return b
    return smin(a, b)


def _slice_bound(v, default, size):
    """A slice's start or stop on a dim of *size*, as torch clamps it: None is *default*, a negative
    integer counts from the end (at least 0), anything else is at most the size."""
    if v is None:
        return default
    return _clamped(sympy.sympify(v, strict=True), size)


@lru_cache(maxsize=16384, typed=True)
def _clamped(v, size):
    """:func:`_slice_bound` of a given bound *v*, cached (swin's shifted-window masks slice the same
    Min/Max bounds in every block, and sympy's Min/Max compare their arguments on every build)."""
    if v.is_Integer and v < 0:
        v = size + v
        return v if always_nonnegative(v) else sympy.Max(v, 0)
    return _min(v, size)


def slice_size(size, start, stop, step) -> sympy.Expr:
    """The length of ``range(size)[start:stop:step]`` as torch clamps it, for a positive step.

    >>> from symshape.symbols import symbols
    >>> H = symbols("H")
    >>> slice_size(H, 1, None, None), slice_size(H, None, -1, None), slice_size(H, None, None, 2)
    (H - 1, H - 1, floor(H/2 + 1/2))
    >>> slice_size(10, 2, 20, 3)
    3
    """
    try:
        return _slice_size(size, start, stop, step)
    except TypeError:  # an unhashable bound: computed as it is
        return _slice_size.__wrapped__(size, start, stop, step)


@lru_cache(maxsize=16384, typed=True)
def _slice_size(size, start, stop, step) -> sympy.Expr:
    """:func:`slice_size`, cached on its exact arguments (Max of sizes costs sympy comparisons)."""
    size = sympy.sympify(size, strict=True)
    step = 1 if step is None else _int(step, "a slice step")
    if step < 1:
        raise ShapeError(f"slices need a positive step, got {step}")

    def bound(v, default):
        return _slice_bound(v, default, size)

    lo, hi = bound(start, sympy.Integer(0)), bound(stop, size)
    length = hi - lo if always_nonnegative(hi - lo) else sympy.Max(hi - lo, 0)
    return ceil_div(length, step) if step > 1 else length


def getitem(x, index):
    """Basic indexing: an int drops a dim, a slice keeps it (clamped as torch does), None adds a
    dim of 1, Ellipsis stands for the dims not named. Advanced indexing (see :mod:`.indexing`): a
    list of ints or an index tensor selects along its dim; several broadcast together, and their
    shape goes in place where they are adjacent, else first."""
    items = list(index) if isinstance(index, tuple) and not is_tensor(index) else [index]
    if len(items) == 1 and isinstance(items[0], list) and any(
            it is None or it is Ellipsis or isinstance(it, (slice, list)) or is_tensor(it) for it in items[0]):
        items = list(items[0])  # torch reads a list holding slices, Nones or sequences as a tuple of indices
    named = sum(1 for it in items if it is not None and it is not Ellipsis)
    if sum(1 for it in items if it is Ellipsis) > 1:
        raise ShapeError("an index can have only one Ellipsis (...)")
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items[k:k + 1] = [slice(None)] * (len(x) - named)
    if named > len(x):
        raise ShapeError(f"too many indices ({named}) for the {len(x)}-d tensor {fmt_shape(x)}")
    out, i, reqs, advanced = [], 0, [], []
    for it in items:
        if it is None:
            out.append(sympy.Integer(1))
            continue
        size = x[i]
        i += 1
        if isinstance(it, slice):
            out.append(slice_size(size, it.start, it.stop, it.step))
        elif is_tensor(it) or is_list_index(it):
            shape, more = (tuple(it), ()) if is_tensor(it) else list_index(size, it)
            advanced.append(shape)
            reqs.extend(more)
            out.append(None)
        elif isinstance(it, (int, sympy.Expr)) and not isinstance(it, bool):
            v = sympy.sympify(it, strict=True)
            if v.is_Integer:
                reqs.append((sympy.Ge(size, int(v) + 1 if v >= 0 else -int(v)), f"index {v} must be inside the dim"))
            else:
                reqs.append((sympy.Lt(v, size), f"index {fmt_size(v)} must be inside the dim"))
        else:
            raise ShapeError(f"unsupported index {it!r}")
    out.extend(x[i:])
    if advanced:
        joint = advanced[0]
        if len(advanced) > 1:
            try:
                b = broadcast(*[tuple(sympy.Integer(d) if isinstance(d, int) else d for d in a) for a in advanced])
            except ShapeError:
                raise ShapeError("shape mismatch: indexing tensors could not be broadcast together with shapes "
                                 + ", ".join(fmt_shape(a) for a in advanced)) from None
            joint, reqs = b.shape, reqs + list(b.requires)
        out = list(place(out, tuple(joint)))
    windows = ()
    if all(isinstance(it, slice) for it in items):  # slices only: each keeps its dim, a crop with a step
        windows = tuple(None if it == slice(None) else _slice_window(size, it) for size, it in zip(x, items))
        windows += (None,) * (len(x) - len(windows))
    return Out(tuple(sympy.sympify(d, strict=True) for d in out), 0, tuple(reqs), windows)


def _slice_window(size, it: slice) -> Window:
    """Output row o of ``x[start:stop:step]`` is input row start + o·step (start clamped as torch)."""
    step = 1 if it.step is None else _int(it.step, "a slice step")

    def bound(v, default):
        return _slice_bound(v, default, size)

    lo, hi = bound(it.start, sympy.Integer(0)), bound(it.stop, size)
    return crop_window(-lo, hi - size, step)


register(operator.getitem)(getitem)


@register(operator.setitem)
def setitem(x, index, value=None):
    """``x[index] = value``: x keeps its shape (the op is recorded with x's shape, not the indexed
    part's). The index is checked as :func:`getitem` checks it; a tensor value is copied into the
    indexed part, so after dropping its leading dims of 1 it must broadcast to the part without
    stretching it (as an in-place op). MACs = 0."""
    part = getitem(x, index)
    reqs = list(part.requires)
    if is_tensor(value):
        value = tuple(value)
        while len(value) > len(part.shape) and sympy.sympify(value[0], strict=True) == 1:
            value = value[1:]
        if len(value) > len(part.shape):
            raise ShapeError(f"x[index] = value copies {fmt_shape(value)} into the indexed part "
                             f"{fmt_shape(part.shape)}, which has fewer dims")
        reqs.extend(in_place(part.shape, value).requires)
    return Out(tuple(x), 0, tuple(reqs))


# ---------------------------------------------------------------- more shape ops

@register("unfold")
def unfold(x, dimension: int, size, step):
    """Tensor.unfold: dim becomes floor((L - size)/step) + 1 windows, with a new last dim of size;
    L >= size (torch's "maximum size for tensor at dimension"). MACs = 0."""
    i = dim_index(dimension, len(x), "unfold")
    size, step = _int(size, "unfold's size"), _int(step, "unfold's step")
    if step < 1 or size < 0:
        raise ShapeError(f"unfold needs size >= 0 and step >= 1, got size {size} and step {step}")
    length = x[i] if len(x) else sympy.Integer(1)
    reqs = ((sympy.Ge(length, size), f"unfold needs the dim to be at least the window size {size}"),)
    windows = floor_div(length - size, step) + 1
    shape = (*x[:i], windows, *x[i + 1:], sympy.Integer(size)) if len(x) else (sympy.Integer(size),)
    return Out(shape, 0, reqs)


@register(torch.tile, "tile")
def tile(x, *dims):
    """out = x.repeat(dims), with dims padded with leading 1s to x's rank when shorter."""
    reps = _sizes(dims)
    reps = (sympy.Integer(1),) * (len(x) - len(reps)) + tuple(reps)
    return repeat(x, *reps)
