"""Memory rules of ops made of several allocations: nn.MultiheadAttention,
F.scaled_dot_product_attention and nn.LocalResponseNorm (see :mod:`symshape.memory`).

What these ops save for backward and allocate depends on the path torch takes inside them, on
CPU in torch 2.x (measured with ``saved_tensors_hooks`` and a ``TorchDispatchMode``; each case is
tested against torch):

* **Scaled dot-product attention.** On CPU torch runs the flash kernel
  (``_scaled_dot_product_flash_attention_for_cpu``) for 4-D query, key and value of one head
  size, without dropout; it saves q, k, v, its output and the log-sum-exp per query row
  (float32, or float64 for float64 inputs), and its output takes the order of the query's strides
  (contiguous for a contiguous query or a slice of one; a permuted query is refused). Otherwise
  (dropout, other ranks) it runs the math path, which upcasts 16-bit inputs to float32 and saves
  the scaled q and k, the softmax, the dropout mask and output, and v.
* **MultiheadAttention** (self-attention: query, key and value the same tensor). The input
  projection reads the input in (L, N, E) order: with ``batch_first`` it is a transposed view, so
  the linear copies it (and saves the copy), computes the packed q, k, v and (with a bias) adds
  the bias into a new tensor; a contiguous copy of the packed tensor is then split into heads.
  With ``need_weights=False`` the heads go through scaled dot-product attention as above (flash
  when the attention's dropout is 0; in training with dropout the math path); with
  ``need_weights=True`` MHA writes the attention out (q scaled, ``bmm`` with kᵀ, softmax,
  dropout, ``bmm`` with v) and returns the weights averaged over heads (a new tensor) or per
  head (a view). The output projection reads the heads back in (L, N, E) order: no copy after
  flash (its output has the query's strides), a copy after ``bmm``. In inference (eval and no
  grad) torch takes its fused fast path (``torch._native_multi_head_attention``) when
  ``batch_first``, the number of heads is even and the projections have biases: one op, whose
  internal buffers are not tensors torch hands out and are not counted (the peak is taken
  between ops, as the dispatch-mode oracle measures it). The attention weights are freed when
  MHA returns (the caller takes the output); masks, ``bias_k``/``bias_v``, ``add_zero_attn``,
  different key/value sizes, cross-attention and unbatched inputs are refused.
* **LocalResponseNorm** (x / (k + α·avg(x²))^β over ``size`` channels): saves its input, the
  squared input zero-padded to C + size - 1 channels (read by the average pool), the base of the
  power and the power.
"""
from __future__ import annotations

import sympy

from .memory import FIRST_OUTPUT_ONLY, moments_rule, saved_rule
from .memory_layout import gap
from .report import shapes_of
from .symbols import ShapeError

__all__ = []

_FLOAT32 = 4


def _refuse(layer, why: str):
    raise ShapeError(f"layer {layer.name!r} ({layer.kind}): symshape has no memory rule for {why}")


def _prod(dims) -> sympy.Expr:
    return sympy.Mul(*dims)


# ---------------------------------------------------------------- multi-head attention

def _mha(layer, layout):
    """(N, L, E, heads, batch_first, bias, need_weights, weights shape) of a self-attention the
    rules model; a ShapeError naming what is not modelled otherwise."""
    a = layer.attrs
    if len(layer.in_shapes) != 3 or len(set(layer.inputs)) != 1 or layer.inputs[0] is None:
        _refuse(layer, "an attention whose query, key and value are not one tensor (self-attention)")
    for flag, what in (("attn_mask", "an attn_mask"), ("key_padding_mask", "a key_padding_mask"),
                       ("is_causal", "is_causal"), ("bias_kv", "bias_k/bias_v"), ("add_zero_attn", "add_zero_attn")):
        if a.get(flag):
            _refuse(layer, f"MultiheadAttention with {what}")
    if not a.get("same_embed_dim", True):
        _refuse(layer, "MultiheadAttention with kdim or vdim other than embed_dim")
    q = layer.in_shape
    if len(q) != 3:
        _refuse(layer, "an unbatched MultiheadAttention")
    if layout is not True:
        _refuse(layer, "MultiheadAttention on a strided (permuted or transposed) input")
    bf = bool(a.get("batch_first"))
    n, l = (q[0], q[1]) if bf else (q[1], q[0])
    weights = shapes_of(layer.out_shape)[1] if len(shapes_of(layer.out_shape)) > 1 else None
    return n, l, q[2], a["num_heads"], bf, a.get("bias", True), weights


@saved_rule("multiheadattention")
def _mha_saved(ctx):
    """What self-attention saves in training (module docstring)."""
    n, l, e, h, bf, bias, weights = _mha(ctx.layer, ctx.layout)
    b, x = ctx.itemsize, n * l * e
    att = n * h * l * l
    p = ctx.layer.attrs.get("dropout", 0.0) if ctx.training else 0.0
    read = ctx.new(x, b) if bf else ctx.input(0)  # the input projection's input, in (L, N, E) order
    packed = ctx.new(3 * x, b)  # q, k, v: a contiguous copy of the projection, split into heads
    if weights is None and p == 0:  # flash: q, k, v, the output (which out_proj reads as it is), log-sum-exp
        return [read, packed, ctx.new(x, b), ctx.new(n * h * l, max(b, _FLOAT32))]
    if weights is None:  # the math path: in float32 for 16-bit inputs
        acc = max(b, _FLOAT32)
        v = ctx.new(x, acc) if acc != b else packed
        return [read, ctx.new(x, acc), ctx.new(x, acc)] + [ctx.new(att, acc)] * 3 + [v, ctx.new(x, b)]
    dropped = [ctx.new(att, b), ctx.new(att, b)] if p > 0 else []  # its mask and its output
    return [read, ctx.new(x, b), packed, ctx.new(att, b), *dropped, ctx.new(x, b)]


@moments_rule("multiheadattention")
def _mha_moments(layer, itemsize, layout):
    """The bytes self-attention holds at each of its steps in an inference forward (no grad)."""
    n, l, e, h, bf, bias, weights = _mha(layer, layout)
    x = n * l * e * itemsize
    w = _prod(weights) * itemsize if weights is not None and len(weights) == 3 else 0  # averaged weights
    if bf and bias and h % 2 == 0:  # torch._native_multi_head_attention: one op, the weights a new tensor
        return [x + (_prod(weights) * itemsize if weights is not None else 0)]
    if bf:  # the linear copies its transposed input, multiplies, and adds the bias into a new tensor
        moments, proj = [x, 4 * x] + ([6 * x] if bias else []), 3 * x
    else:
        moments, proj = [3 * x], 3 * x
    packed = 3 * x
    moments.append(proj + packed)
    if weights is None:  # flash attention, then out_proj reads its output as it is
        lse = n * h * l * max(itemsize, _FLOAT32)
        return moments + [packed + x + lse, 2 * x]
    att = n * h * l * l * itemsize
    moments += [packed + x, packed + x + att, packed + 2 * att, packed + att + x, packed + att + 2 * x]
    return moments + ([packed + att + x + w] if w else [])


FIRST_OUTPUT_ONLY.add("multiheadattention")


# ---------------------------------------------------------------- scaled dot-product attention

def _sdpa(layer, layout):
    a = layer.attrs
    q, k, v = layer.in_shapes[:3]
    if a.get("attn_mask") or len(layer.in_shapes) > 3:
        _refuse(layer, "scaled_dot_product_attention with an attn_mask")
    if a.get("enable_gqa"):
        _refuse(layer, "scaled_dot_product_attention with enable_gqa")
    if a.get("dropout_p", 0.0) != 0 or not (len(q) == len(k) == len(v) == 4) or sympy.simplify(q[-1] - v[-1]) != 0:
        _refuse(layer, "scaled_dot_product_attention on its math path (dropout_p > 0, inputs not 4-D, or a value "
                       "head size other than the query's): torch runs flash attention on CPU only without these")
    if not (layout is True or gap(layout)):
        _refuse(layer, "scaled_dot_product_attention on a strided query (its output takes the query's strides, "
                       "which symshape does not follow): make the query contiguous")
    out = shapes_of(layer.out_shape)[0]
    return out.numel, _prod(out[:-1])


@saved_rule("scaled_dot_product_attention")
def _sdpa_saved(ctx):
    """Flash attention saves q, k, v, its output and the log-sum-exp of each query row."""
    out, rows = _sdpa(ctx.layer, ctx.layout)
    if not ctx.any_grad:
        return []
    return [ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(), ctx.new(rows, max(ctx.itemsize, _FLOAT32))]


@moments_rule("scaled_dot_product_attention")
def _sdpa_moments(layer, itemsize, layout):
    out, rows = _sdpa(layer, layout)
    return [out * itemsize + rows * max(itemsize, _FLOAT32)]


# ---------------------------------------------------------------- local response norm

def _lrn(layer):
    x = layer.in_shape
    size = layer.attrs["size"]
    return x.numel, x[0] * (x[1] + size - 1) * _prod(x[2:])


@saved_rule("localresponsenorm")
def _lrn_saved(ctx):
    """The input (x·x), the padded square (average pool), the base of the power and the power (the division)."""
    if not ctx.any_grad:
        return []
    x, padded = _lrn(ctx.layer)
    return [ctx.input(0), ctx.new(padded, ctx.itemsize), ctx.new(x, ctx.itemsize), ctx.new(x, ctx.itemsize)]


@moments_rule("localresponsenorm")
def _lrn_moments(layer, itemsize, layout):
    """x², then x² beside its padded copy, the pool beside the padding; then the pool, α·pool, + k
    (three at once) and the power, the division."""
    x, padded = _lrn(layer)
    return [(x + padded) * itemsize, 3 * x * itemsize]
