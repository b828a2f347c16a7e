"""Attention: nn.MultiheadAttention and F.scaled_dot_product_attention.

MACs follow the counting convention (README, "Counting convention"): the input and output projections, plus the two products of an L×S
attention, ``Q·Kᵀ`` (L·S·E) and ``softmax(·)·V`` (L·S·Ev), per batch and head. They are quadratic in
the sequence length, so a ViT's MACs are quadratic in H·W.

>>> import torch.nn as nn
>>> from symshape.symbols import symbols
>>> L = symbols("L")
>>> out = multihead_attention(nn.MultiheadAttention(64, 4, batch_first=True), (1, L, 64), (1, L, 64), (1, L, 64))
>>> out.shape
((1, L, 64), (1, L, L))
>>> out.macs
128*L**2 + 16384*L
"""
from __future__ import annotations

import sympy
import torch.nn as nn
import torch.nn.functional as F

from ..symbols import ShapeError
from .common import equal, fmt_shape, fmt_size, prod
from .registry import Out, register
from .elementwise import broadcast, is_tensor, same_size
from .tensor import expand

__all__ = ["multihead_attention", "scaled_dot_product_attention"]


def _agree(a, b, why: str) -> tuple:
    same = same_size(a, b)
    if same is False:
        raise ShapeError(f"{why}: {fmt_size(a)} vs {fmt_size(b)}")
    return () if same else (equal(a, b, why),)


def _feature(x, want: int, what: str) -> tuple:
    return _agree(x[-1], sympy.Integer(want), f"the {what} must have {want} features (last dim)")


@register(nn.MultiheadAttention)
def multihead_attention(m: nn.MultiheadAttention, query, key, value, key_padding_mask=None, need_weights=True,
                        attn_mask=None, average_attn_weights=True, is_causal=False):
    """out = query's shape with E features, plus the attention weights (N, L, S), or (N, heads, L, S)
    without averaging, or None with need_weights=False. batch_first (N, L, E), else (L, N, E);
    unbatched (L, E). MACs = N·(L·E·E + S·kdim·E + S·vdim·E + 2·L·S·E + L·E·E)."""
    if len(query) not in (2, 3) or len(key) != len(query) or len(value) != len(query):
        raise ShapeError(f"expected query, key and value of rank 3 (batched) or 2 (unbatched), got "
                         f"{fmt_shape(query)}, {fmt_shape(key)}, {fmt_shape(value)}")
    batched = len(query) == 3
    if batched and not m.batch_first:
        query, key, value = [(s[1], s[0], s[2]) for s in (query, key, value)]
    n = query[0] if batched else sympy.Integer(1)
    lq, lk, lv = query[-2], key[-2], value[-2]
    e = m.embed_dim
    reqs = _feature(query, e, "query") + _feature(key, m.kdim, "key") + _feature(value, m.vdim, "value")
    reqs += _agree(lk, lv, "key and value need the same sequence length")
    if batched:
        reqs += _agree(key[0], n, "key needs the query's batch size") + _agree(value[0], n, "value needs the query's batch size")
    s = lk + (1 if m.bias_k is not None else 0) + (1 if m.add_zero_attn else 0)
    macs = n * (lq * e * e + lk * m.kdim * e + lv * m.vdim * e + 2 * lq * s * e + lq * e * e)
    out = (n, lq, sympy.Integer(e)) if batched else (lq, sympy.Integer(e))
    if batched and not m.batch_first:
        out = (lq, n, sympy.Integer(e))
    weights = None
    if need_weights:
        lead = ((n,) if batched else ()) + (() if average_attn_weights else (sympy.Integer(m.num_heads),))
        weights = (*lead, lq, s)
    return Out((out, weights), macs, reqs)


@register(F.scaled_dot_product_attention)
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """(*, L, E), (*, S, E), (*, S, Ev) -> (*, L, Ev); MACs = prod(*) · L · S · (E + Ev). An
    attn_mask must expand to the attention weights (*, L, S): each of its dims is 1 or equal
    (a fixed-size relative position bias fixes L and S)."""
    if min(len(query), len(key), len(value)) < 2:
        raise ShapeError(f"expected query, key and value of at least 2 dims, got "
                         f"{fmt_shape(query)}, {fmt_shape(key)}, {fmt_shape(value)}")
    *bq, lq, e = query
    *bk, s, ek = key
    *bv, sv, ev = value
    reqs = _agree(e, ek, "query and key need the same feature size") + _agree(s, sv, "key and value need the same length")
    if enable_gqa:
        batch = tuple(bq)
    else:
        b = broadcast(tuple(bq), tuple(bk), tuple(bv))
        batch, reqs = b.shape, reqs + tuple(b.requires)
    if is_tensor(attn_mask):
        if len(attn_mask) > len(batch) + 2:
            raise ShapeError(f"attn_mask {fmt_shape(attn_mask)} has more dims than the attention weights "
                             f"{fmt_shape((*batch, lq, s))}")
        reqs += tuple((cond, f"attn_mask must expand to the attention weights {fmt_shape((*batch, lq, s))}: {why}")
                      for cond, why in expand(tuple(attn_mask), *batch, lq, s).requires)
    return Out((*batch, lq, ev), prod(batch) * lq * s * (e + ev), reqs)
