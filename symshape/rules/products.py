"""Rules for matrix products: matmul (and @), bmm, mm and einsum: shapes, the conditions on the
contracted sizes, and MACs (README, "Counting convention")."""
from __future__ import annotations

import operator

import sympy
import torch

from ..symbols import ShapeError
from .common import equal, fmt_shape, prod
from .elementwise import broadcast, is_tensor, same_size
from .registry import Out, register


def _mm(a, b, what):
    if len(a) < 1 or len(b) < 1:
        raise ShapeError(f"{what} needs tensors of at least 1 dim, got {fmt_shape(a)} and {fmt_shape(b)}")
    a1, b1 = len(a) == 1, len(b) == 1
    a2 = ((sympy.Integer(1),) + tuple(a)) if a1 else tuple(a)
    b2 = (tuple(b) + (sympy.Integer(1),)) if b1 else tuple(b)
    k1, k2 = a2[-1], b2[-2]
    reqs = []
    same = same_size(k1, k2)
    if same is False:
        raise ShapeError(f"{what}: the inner dims differ, {fmt_shape(a)} @ {fmt_shape(b)} ({k1} vs {k2})")
    if same is None:
        reqs.append(equal(k1, k2, f"{what} needs the inner dims to agree"))
    batch = broadcast(a2[:-2], b2[:-2]) if (len(a2) > 2 or len(b2) > 2) else Out(())
    shape = (*batch.shape, *(() if a1 else (a2[-2],)), *(() if b1 else (b2[-1],)))
    macs = prod(batch.shape) * a2[-2] * k1 * b2[-1]
    return Out(shape, macs, tuple(reqs) + tuple(batch.requires))


@register(torch.matmul, operator.matmul, "matmul", "__matmul__")
def matmul(a, b):
    """(*, n, k) @ (*, k, m) -> (broadcast(*), n, m) (1-d operands gain and lose a dim);
    MACs = prod(batch) · n · k · m."""
    return _mm(a, b, "matmul")


@register(torch.bmm, "bmm")
def bmm(a, b):
    """(B, n, k) @ (B, k, m) -> (B, n, m); MACs = B · n · k · m."""
    if len(a) != 3 or len(b) != 3:
        raise ShapeError(f"bmm needs two 3-d tensors, got {fmt_shape(a)} and {fmt_shape(b)}")
    return _mm(a, b, "bmm")


@register(torch.mm, "mm")
def mm(a, b):
    """(n, k) @ (k, m) -> (n, m); MACs = n · k · m."""
    if len(a) != 2 or len(b) != 2:
        raise ShapeError(f"mm needs two 2-d tensors, got {fmt_shape(a)} and {fmt_shape(b)}")
    return _mm(a, b, "mm")


@register(torch.einsum)
def einsum(equation, *operands):
    """Explicit-output einsum ('ij,jk->ik', with ...); every letter's size must agree across operands.
    MACs of a two-operand contraction = the product of the sizes of the letters that survive
    torch's pre-summing (in both operands or in the output), as torch's bmm counts them, where a
    contracted letter has size >= 2 (else torch multiplies element-wise: 0, as for 'ij,ij->ij')."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)) and not is_tensor(operands[0]):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "->" not in eq:
        raise ShapeError(f"einsum {equation!r}: only equations with an explicit output ('...->...') are supported")
    lhs, rhs = eq.split("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ShapeError(f"einsum {equation!r} names {len(terms)} operands, got {len(operands)}")
    sizes, reqs, ell = {}, [], None
    for term, shape in zip(terms, operands):
        if "..." in term:
            pre, post = term.split("...")
            n = len(shape) - len(pre) - len(post)
            e = tuple(shape[len(pre):len(pre) + n])
            ell = e if ell is None else broadcast(ell, e).shape
            letters = list(pre) + list(post)
            dims = list(shape[:len(pre)]) + list(shape[len(pre) + n:])
        else:
            if len(term) != len(shape):
                raise ShapeError(f"einsum {equation!r}: operand {term!r} has {len(term)} letters for {fmt_shape(shape)}")
            letters, dims = list(term), list(shape)
        for c, d in zip(letters, dims):
            if c in sizes:
                same = same_size(sizes[c], d)
                if same is False:
                    raise ShapeError(f"einsum {equation!r}: {c!r} is {sizes[c]} in one operand and {d} in another")
                if same is None:
                    reqs.append(equal(sizes[c], d, f"einsum letter {c!r} must have one size"))
            else:
                sizes[c] = d
    out = []
    for part in rhs.split("..."):
        out.append([sizes[c] for c in part])
    shape = tuple(out[0]) + (tuple(ell or ()) + tuple(out[1]) if len(out) > 1 else ())
    macs = sympy.Integer(0)
    if len(terms) == 2:
        a, b = set(terms[0].replace("...", "")), set(terms[1].replace("...", ""))
        keep = [c for c in sizes if c in rhs or (c in a and c in b)]
        inner = prod(sizes[c] for c in a & b if c not in rhs)
        # torch squeezes contracted letters of size 1; with none left it multiplies (no bmm, 0 MACs)
        some = sympy.Integer(0) if not (a & b) - set(rhs) else (
            sympy.Integer(1 if inner >= 2 else 0) if inner.is_Integer else sympy.Min(1, inner - 1))
        macs = prod(sizes[c] for c in keep) * prod(ell or ()) * some
    return Out(shape, macs, tuple(reqs))
