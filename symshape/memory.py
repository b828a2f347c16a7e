"""Memory as formulas: parameter, gradient, optimizer and activation bytes of a traced model.

``rep.memory(training=False, dtype=torch.float32, optimizer=None)`` gives a :class:`Memory` of
sympy expressions of the sizes, in bytes. Tensors are followed through the graph
(``Layer.inputs``) as *storages*: a layer allocates a new storage, or (views such as flatten,
reshape of a contiguous tensor, permute, chunk, slicing, Identity; in-place ops such as
``nn.ReLU(inplace=True)``, ``x.relu_()``, ``F.relu(x, inplace=True)``) shares the storage of its
first input. A storage's bytes are the elements of the layer output that allocated it times the
element size of ``dtype`` (int64 for the indices that feed an ``Embedding``).

**Inference** (``training=False``): the peak of live storages through the forward, when every
intermediate is freed right after its last consumer (as ``torch.fx`` generated code and
``torch.compile`` run a model; eager code that keeps a tensor in a local variable holds it
longer). The model's input is live throughout (the caller holds it), and the outputs to the end.
At each layer that allocates, the live bytes are a candidate; the peak is the largest candidate.
Where the sizes are symbolic, a candidate is dropped when another one is at least as large for
every size at or above the domain's lower bounds (their difference, with common positive factors
taken out, decided by ``decide.always_nonnegative``); the candidates that remain (none decided
larger than the others) are kept in an unevaluated ``sympy.Max``, exact but not minimal.

**Training** (``training=True``, modules in training mode, every parameter trainable, the input
without grad): the bytes of the tensors that autograd saves for backward, as PyTorch saves them
on CPU (measured with ``torch.autograd.graph.saved_tensors_hooks``; the rules are in
:data:`SAVED` and each is tested against torch). Parameters and buffers are excluded; a storage
saved by two ops counts once. An op none of whose inputs needs grad and without parameters saves
nothing. Then ``total = params + grads + optimizer + activations``; ``grads`` = params;
``optimizer``: ``"sgd"`` (momentum, 1 × params), ``"adam"`` / ``"adamw"`` (2 × params) or None.
On CUDA some ops save differently (dropout saves a bool mask there, a mask of the input's dtype
on CPU; cuDNN's batch norm keeps a reserve); those are not modelled, nor is autocast (the
statistics of a norm are counted in ``dtype``, as a model whose parameters have that dtype keeps
them on CPU).

Layouts (:mod:`symshape.memory_layout`): a view that permutes or transposes leaves a strided
tensor, which a later reshape, flatten or contiguous copies, and which a batched matmul copies
(and, in training, saves the copy of) unless only its last two dims are swapped; so does a linear
layer on such an input of 3 or more dims. A slice along an inner dim leaves gaps: a reshape
across them copies. The layouts are decided for sizes above 1: where a dim of size 1 lets torch
view what it copies otherwise (a linear layer folding a permuted batch of one), the formulas
count the copy and overstate by its bytes there. ``x += y`` in a forward is traced by
torch.fx as ``x + y`` and counted so. Ops that allocate beside their output in inference (norm
statistics, max-pool indices, matmul copies) add those bytes at their own step; ops made of
several allocations (multi-head and scaled dot-product attention, local response norm: their
rules are in :mod:`symshape.memory_ops`) give the bytes they hold at each of their steps
(:data:`MOMENTS`). The peak is taken between ATen ops: the internal buffers of a fused kernel
are not counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import sympy
import torch

from .forms import factored, factored_sum
from .memory_layout import COPY_IF_STRIDED, VIEWS, gap, kind_of as _kind, layout_of, matmul_copies, viewable
from .printing import fmt
from .report import Report, plain, report_method, shapes_of
from .symbols import ShapeError

__all__ = ["Memory", "memory", "layer_bytes", "saved_column", "SAVED", "saved_rule", "MOMENTS", "moments_rule",
           "parse_bytes"]

_OPTIMIZER_STATES = {None: 0, "sgd": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True)
class Memory:
    """Bytes, each a sympy expression of the sizes: ``params``, ``grads``, ``optimizer``,
    ``activations`` (training: saved for backward; inference: the peak of live tensors) and
    ``total``; ``layers``: per layer ``(name, kind, bytes)`` (training: the bytes the layer saves
    that no earlier layer saved; inference: the bytes its output allocates); ``dtype``, ``training``."""

    params: sympy.Expr
    grads: sympy.Expr
    optimizer: sympy.Expr
    activations: sympy.Expr
    layers: tuple
    dtype: torch.dtype
    training: bool
    optimizer_name: Optional[str] = None
    note: str = ""  # where the activations are an upper bound (a merged branch's layers: Report.partial_note)

    @property
    def total(self) -> sympy.Expr:
        return plain(sympy.Add(self.params, self.grads, self.optimizer, self.activations))

    def layer(self, name: str):
        """The bytes of the last layer of this qualified name."""
        for n, _, b in reversed(self.layers):
            if n == name:
                return b
        raise KeyError(f"no layer named {name!r}")

    def at(self, **sizes) -> "Memory":
        """The record at the given sizes (names to ints; a size the formulas do not have is ignored).

        >>> import torch.nn as nn, symshape as ss
        >>> mem = ss.trace(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), "N,3,H,W").memory(training=True)
        >>> mem.at(N=2, H=10, W=10).activations, mem.at(N=2).activations  # 12·N·H·W + 32·N·(H - 2)·(W - 2)
        (6496, 24*H*W + 64*(H - 2)*(W - 2))
        """
        exprs = [self.params, self.grads, self.optimizer, self.activations, *(b for _, _, b in self.layers)]
        names = {x.name: x for e in exprs for x in sympy.sympify(e).free_symbols}
        values = {names[k]: sympy.Integer(int(v)) for k, v in sizes.items() if k in names}

        def sub(e):
            return plain(sympy.sympify(e).xreplace(values)) if values else e

        return Memory(sub(self.params), sub(self.grads), sub(self.optimizer), sub(self.activations),
                      tuple((n, k, sub(b)) for n, k, b in self.layers), self.dtype, self.training, self.optimizer_name,
                      self.note)

    def __str__(self) -> str:
        what = "training (saved for backward)" if self.training else "inference (peak of live tensors)"
        dt = str(self.dtype).replace("torch.", "")
        rows = [f"memory in bytes, {dt}, {what}:",
                f"  params       {fmt(self.params)}"]
        if self.training:
            rows += [f"  grads        {fmt(self.grads)}",
                     f"  optimizer    {fmt(self.optimizer)}" + (f"  ({self.optimizer_name})" if self.optimizer_name else "")]
        rows += [f"  activations  {fmt(self.activations)}", f"  total        {fmt(self.total)}"]
        if self.note:
            rows.append(f"  ({self.note})")
        return "\n".join(rows)


def _itemsize(dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _inplace(layer) -> bool:
    return bool(layer.attrs.get("inplace")) or (_kind(layer).endswith("_") and not _kind(layer).endswith("__"))


def _numel(value) -> sympy.Expr:
    return sympy.Add(*(s.numel for s in shapes_of(value))) if value is not None else sympy.Integer(0)


class _Ctx:
    """What a saved-tensor rule sees: the layer, its input storages, whether each input needs grad,
    its output storage, the element size and the layout of its first input (True: contiguous)."""

    def __init__(self, layer, in_storages, in_grad, out_storage, itemsize, training, copies=None, layout=True):
        self.layer, self.ins, self.in_grad, self.out = layer, in_storages, in_grad, out_storage
        self.itemsize, self.training, self.copies, self.layout = itemsize, training, copies or {}, layout

    @property
    def any_grad(self) -> bool:
        return any(self.in_grad) or self.layer.params > 0

    def input(self, k=0):
        return ("storage", self.ins[k]) if k < len(self.ins) and self.ins[k] is not None else None

    def output(self):
        return ("storage", self.out)

    def new(self, numel, itemsize):
        return ("new", sympy.sympify(numel) * itemsize)

    def stats(self, count):
        """Per-row statistics of a norm (mean and inverse std), in the model's dtype (on CPU, for
        a model whose parameters have that dtype)."""
        return self.new(2 * sympy.sympify(count), self.itemsize)


#: kind (lower case) -> rule(ctx) returning the saved items: ("storage", id) or ("new", bytes).
SAVED: dict = {}


def saved_rule(*kinds) -> Callable:
    """Register a rule of the tensors autograd saves for the given layer kinds (lower case)."""
    def deco(fn):
        for k in kinds:
            SAVED[k] = fn
        return fn
    return deco


@saved_rule(*VIEWS, "add", "sub", "cat", "concat", "concatenate", "stack", "neg", "flatten", "dropout_eval",
            "upsample", "interpolate", "upsamplingnearest2d", "upsamplingbilinear2d", "zeropad2d", "constantpad2d",
            "pad", "replicationpad2d", "reflectionpad2d", "mean", "iadd", "isub", "add_", "sub_", "zeropad1d",
            "constantpad1d", "pixelshuffle", "pixelunshuffle", "pixel_shuffle", "pixel_unshuffle")
def _nothing(ctx):
    """Sums, concatenation, views, padding, upsampling and means keep only sizes for backward."""
    return []


@saved_rule("conv1d", "conv2d", "conv3d", "convtranspose1d", "convtranspose2d", "convtranspose3d", "linear",
            "embedding")
def _input(ctx):
    """Convolutions and linear layers save their input (the weight gradient needs it; the weight
    itself is a parameter); an embedding saves its indices. A linear layer on a permuted or
    transposed input of 3 or more dims folds it by a copy, which it saves."""
    if not ctx.any_grad:
        return []
    if _kind(ctx.layer) == "linear" and _folds_by_copy(ctx.layer, ctx.layout):
        return [ctx.new(ctx.layer.in_shape.numel, ctx.itemsize)]
    return [ctx.input(0)]


def _folds_by_copy(layer, layout) -> bool:
    return len(layer.in_shape) >= 3 and layout is not True and not gap(layout)


@saved_rule("relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "softmax", "log_softmax", "logsoftmax")
def _output(ctx):
    """ReLU, sigmoid, tanh and softmax save their output (in place: the storage they wrote)."""
    return [ctx.output()] if ctx.any_grad else []


@saved_rule("gelu", "silu", "hardswish", "hardsigmoid", "mish", "relu6", "hardtanh", "softplus", "leakyrelu",
            "leaky_relu", "elu", "selu", "celu", "avgpool1d", "avgpool2d", "avgpool3d", "avg_pool2d")
def _in_only(ctx):
    """Activations whose derivative needs the input, and average pooling, save their input. In
    place, leaky ReLU and the ELUs save their result; ReLU6, hardtanh, SiLU, hardswish,
    hardsigmoid and Mish a copy of their input taken before it is overwritten."""
    if not ctx.any_grad:
        return []
    if _inplace(ctx.layer):
        if _kind(ctx.layer) in ("leakyrelu", "leaky_relu", "elu", "selu", "celu"):
            return [ctx.output()]  # their backward reads the result
        if _kind(ctx.layer).startswith("avg"):
            return [ctx.input(0)]
        # the others need the input, which the op overwrites: autograd saves a copy of it first
        return [ctx.new(ctx.layer.in_shape.numel, ctx.itemsize)]
    return [ctx.input(0)]


@saved_rule("adaptiveavgpool1d", "adaptiveavgpool2d", "adaptiveavgpool3d", "adaptive_avg_pool2d")
def _adaptive_avg(ctx):
    """An adaptive average pool to size 1 is a mean (nothing saved); to other sizes it saves its input."""
    out = shapes_of(ctx.layer.out_shape)[0]
    nd = len(out) - 2 if len(out) > 2 else 1
    if not ctx.any_grad or all(d == 1 for d in out[-nd:]):
        return []
    return [ctx.input(0)]


@saved_rule("maxpool1d", "maxpool2d", "maxpool3d", "max_pool2d", "adaptivemaxpool1d", "adaptivemaxpool2d",
            "adaptivemaxpool3d")
def _max_pool(ctx):
    """Max pooling saves its input and the argmax indices (int64, one per output element)."""
    if not ctx.any_grad:
        return []
    return [ctx.input(0), ctx.new(_numel(ctx.layer.out_shape), 8)]


@saved_rule("batchnorm1d", "batchnorm2d", "batchnorm3d")
def _batch_norm(ctx):
    """Batch norm saves its input and, in training, the batch mean and inverse std per channel (float32)."""
    if not ctx.any_grad:
        return []
    x = ctx.layer.in_shape
    return [ctx.input(0)] + ([ctx.stats(x[1])] if ctx.training else [])


@saved_rule("instancenorm1d", "instancenorm2d", "instancenorm3d")
def _instance_norm(ctx):
    """Instance norm is a batch norm over (1, N·C, ...): its input and 2 · N · C statistics, and the
    tensors it repeats N times to pass that batch norm, which saves them: the weight (affine) and the
    running mean and variance (track_running_stats)."""
    if not ctx.any_grad:
        return []
    x = ctx.layer.in_shape
    repeats = (1 if ctx.layer.params else 0) + (2 if ctx.layer.attrs.get("track_running_stats") else 0)
    return [ctx.input(0), ctx.stats(x[0] * x[1])] + ([ctx.new(repeats * x[0] * x[1], ctx.itemsize)] if repeats else [])


@saved_rule("groupnorm")
def _group_norm(ctx):
    """Group norm saves its input and mean and inverse std per (sample, group), float32."""
    if not ctx.any_grad:
        return []
    return [ctx.input(0), ctx.stats(ctx.layer.in_shape[0] * ctx.layer.attrs["num_groups"])]


@saved_rule("layernorm")
def _layer_norm(ctx):
    """Layer norm saves its input and mean and inverse std per normalised row, float32."""
    if not ctx.any_grad:
        return []
    x, norm = ctx.layer.in_shape, ctx.layer.attrs["normalized_shape"]
    rows = sympy.Mul(*x[:len(x) - len(norm)])
    return [ctx.input(0), ctx.stats(rows)]


@saved_rule("dropout", "dropout1d", "dropout2d", "dropout3d", "alphadropout")
def _dropout(ctx):
    """Dropout in training (p > 0) multiplies by a mask of the input's dtype, which it saves: one
    element per input element (Dropout) or per channel (Dropout1d/2d/3d, shape (N, C, 1, ...))."""
    p = ctx.layer.attrs.get("p", 0.5)
    if not ctx.training or p == 0 or not ctx.any_grad:
        return []
    x = ctx.layer.in_shape
    if _kind(ctx.layer) in ("dropout1d", "dropout2d", "dropout3d"):
        return [ctx.new(x[0] * x[1], ctx.itemsize)]
    if _kind(ctx.layer) == "alphadropout":
        raise ShapeError(f"layer {ctx.layer.name!r} ({ctx.layer.kind}): symshape has no memory rule for it (what "
                         f"AlphaDropout saves is not measured)")
    return [ctx.new(x.numel, ctx.itemsize)]


@saved_rule("mul", "matmul", "bmm", "mm", "mul_")
def _product(ctx):
    """A product saves each operand whose partner needs grad (a grad of a needs b, and back); a
    batched matmul (3 or more dims) saves a contiguous copy of an operand whose batch dims are
    strided (permuted or transposed other than in its last two dims), which it makes to fold them."""
    out = []
    if len(ctx.ins) == 2:
        for k, other in ((1, 0), (0, 1)):
            if ctx.in_grad[other]:
                copy = ctx.copies.get(k)
                out.append(ctx.input(k) if copy is None else ctx.new(copy, ctx.itemsize))
    return [o for o in out if o is not None]


@saved_rule("truediv", "div", "div_", "itruediv")
def _division(ctx):
    """Dividing by a number keeps nothing; by a tensor: the divisor (for the numerator's grad) and,
    when the divisor needs grad, the numerator too."""
    if len(ctx.ins) < 2:
        return []
    out = [ctx.input(1)] if ctx.in_grad[0] or ctx.in_grad[1] else []
    return out + ([ctx.input(0)] if ctx.in_grad[1] else [])


def _allocates(layer, kind, training) -> bool:
    if _inplace(layer):
        return False
    if kind in VIEWS and kind not in COPY_IF_STRIDED:
        return False
    if kind in ("dropout", "dropout1d", "dropout2d", "dropout3d") and (not training or layer.attrs.get("p") == 0):
        return False
    return True


#: kind (lower case) -> moments(layer, itemsize, layout): the bytes an op holds at each moment of an
#: inference forward (its temporaries and, once made, its output), for ops made of several
#: allocations (multi-head attention, local response norm); the default is its output plus
#: the temporaries of :func:`_transient`.
MOMENTS: dict = {}

#: Kinds whose storage after the op is their first output only (the others are freed at once).
FIRST_OUTPUT_ONLY: set = set()


def moments_rule(*kinds) -> Callable:
    """Register the inference moments of the given layer kinds (see :data:`MOMENTS`)."""
    def deco(fn):
        for k in kinds:
            MOMENTS[k] = fn
        return fn
    return deco


@moments_rule("linear")
def _linear_moments(layer, itemsize, layout):
    """A linear layer on an input of 3 or more dims that is not contiguous runs as a matmul: a copy
    of the input when it is permuted or transposed, the product, then the bias added into a new
    tensor (a contiguous input: one fused op)."""
    out = _numel(layer.out_shape) * itemsize
    if len(layer.in_shape) < 3 or layout is True:
        return [out]
    a = layer.attrs
    bias = layer.params > a.get("in_features", 0) * a.get("out_features", 0)
    copy = layer.in_shape.numel * itemsize if _folds_by_copy(layer, layout) else 0
    return [copy + out] + ([2 * out] if bias else [])


def _nonnegative(expr, shift=None) -> bool:
    """Whether *expr* >= 0 for every size at or above the domain's lower bounds (*shift* maps each
    size X to X + low - 1): sympy's assumptions, a product of factors each decided non-negative,
    or ``decide.always_nonnegative`` (sums of one-size floor-affine terms)."""
    from .decide import always_nonnegative

    expr = sympy.factor_terms(sympy.expand(expr.xreplace(shift) if shift else expr))
    if expr.is_nonnegative:
        return True
    factors = sympy.Mul.make_args(expr)
    return all(f.is_nonnegative or (f.is_Pow and f.base.is_nonnegative) or always_nonnegative(f) is True
               for f in factors)


def _simplify_max(cands, lows=None):
    shift = {x: x + lo - 1 for x, lo in (lows or {}).items() if lo > 1}

    def always_nonnegative(e):
        return _nonnegative(e, shift)

    cands = [sympy.sympify(c) for c in cands]
    if all(c.is_Number for c in cands):
        return max(cands) if cands else sympy.Integer(0)
    kept = []
    for c in cands:
        if any(k == c or always_nonnegative(k - c) for k in kept):
            continue
        kept = [k for k in kept if not always_nonnegative(c - k)] + [c]
    return kept[0] if len(kept) == 1 else sympy.Max(*kept, evaluate=False)


def layer_bytes(report: Report, dtype=torch.float32) -> Optional[list]:
    """Per layer, ``(output bytes in inference, bytes saved for backward in training)`` in *dtype*,
    without the peak (cheap: for tables and JSON); None when a layer has no memory rule."""
    try:
        inference = _walk(report, False, dtype, None, peak=False)
        training = _walk(report, True, dtype, None, peak=False)
    except ShapeError:
        return None
    return [(a[2], b[2]) for a, b in zip(inference.layers, training.layers)]


_SHORT = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64"}


def saved_column(report: Report, dtype) -> tuple:
    """The per-layer memory column of the tables (``memory=`` of ``rep.summary``, ``rep.to_markdown``
    and ``rep.to_latex``): its header, such as ``saved (bf16)``, and per layer the bytes it saves for
    backward in training that no earlier layer saved (their sum is ``memory(training=True).activations``).
    *dtype*: a floating torch.dtype, or True for float32. A layer without a memory rule raises.

    >>> import torch.nn as nn, symshape as ss
    >>> saved_column(ss.trace(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), "N,3,H,W"), True)
    ('saved (fp32)', [12*H*N*W, 32*N*(H - 2)*(W - 2)])
    """
    dtype = torch.float32 if dtype is True else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ShapeError(f"memory= takes a floating torch dtype (such as torch.bfloat16) or True for float32, "
                         f"got {dtype!r}")
    walk = _walk(report, True, dtype, None, peak=False)
    return f"saved ({_SHORT.get(dtype, str(dtype).replace('torch.', ''))})", [b for _, _, b in walk.layers]


def memory(report: Report, training: bool = False, dtype=torch.float32, optimizer: Optional[str] = None) -> Memory:
    """The memory of *report* in bytes (see the module docstring).

    >>> import torch.nn as nn, symshape as ss
    >>> rep = ss.trace(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()), "N,3,H,W")
    >>> rep.memory().activations        # the input, the conv output, the ReLU output
    76*H*N*W
    >>> rep.memory(training=True).activations   # conv saves its input, ReLU its output
    44*H*N*W
    """
    key = optimizer.lower() if isinstance(optimizer, str) else optimizer
    if key not in _OPTIMIZER_STATES:
        raise ShapeError(f"optimizer must be None, 'sgd', 'adam' or 'adamw', got {optimizer!r}")
    return _walk(report, training, dtype, key)


def _walk(report: Report, training: bool, dtype, key, peak: bool = True) -> Memory:
    """The walk along the graph behind :func:`memory`; without *peak*, activations is 0 in inference."""
    itemsize = _itemsize(dtype)
    layers = report.layers
    embedding_input = any(_kind(l) == "embedding" and -1 in l.inputs for l in layers)
    # storages: id -> bytes; tensors (-1 = the input, k = layer k) -> (storage id, contiguous)
    storage_bytes = {-1: report.input_shape.numel * (8 if embedding_input else itemsize)}
    tensor = {-1: (-1, True)}
    grad = {-1: False}
    last_use = {-1: len(layers)}  # the caller holds the input
    per_layer, saved_seen, saved_total, copies, layouts = [], set(), [], {}, []
    for k, layer in enumerate(layers):
        kind = _kind(layer)
        edges = layer.inputs or ((k - 1,) * len(layer.in_shapes))
        ins = [tensor.get(e, (None, True))[0] if e is not None else None for e in edges]
        in_grad = [grad.get(e, False) if e is not None else False for e in edges]
        layout = tensor.get(edges[0], (None, True))[1] if edges and edges[0] is not None else True
        layouts.append(layout)
        if layer.only is sympy.false:  # a merged branch's layer torch skips here: what follows reads its input
            tensor[k], grad[k] = ((ins[0], layout) if ins and ins[0] is not None else (None, True)), any(in_grad)
            per_layer.append((layer.name, layer.kind, 0))
            continue
        allocates = _allocates(layer, kind, training) and not (kind in COPY_IF_STRIDED
                                                                and viewable(layer, kind, layout))
        if layer.out_shape is None:
            tensor[k] = (None, True)
        elif allocates or not ins or ins[0] is None:
            out = layer.out_shape[0] if kind in FIRST_OUTPUT_ONLY else layer.out_shape
            storage_bytes[k] = _numel(out) * itemsize
            tensor[k] = (k, True)
        else:
            tensor[k] = (ins[0], layout_of(layer, kind, layout))
        if kind == "matmul":
            # torch folds the batch dims of an operand with 3 or more dims by reshape: a copy when they are strided
            copies[k] = {j: layer.in_shapes[j].numel for j, e in enumerate(edges[:2])
                         if e is not None and matmul_copies(tensor.get(e, (None, True))[1], layer.in_shapes[j])}
        grad[k] = any(in_grad) or layer.params > 0
        for s in ins:
            if s is not None:
                last_use[s] = max(k, last_use.get(s, k))
        rule = SAVED.get(kind)
        if rule is None:
            raise ShapeError(f"layer {layer.name!r} ({layer.kind}): symshape has no memory rule for it (the tensors "
                             f"it saves for backward and allocates, measured in torch); register one with "
                             f"symshape.memory.saved_rule({kind!r})")
        if training:
            ctx = _Ctx(layer, ins, in_grad, tensor[k][0], itemsize, training, copies.get(k), layout)
            mine = []
            for item in rule(ctx):
                if item is None:
                    continue
                if item[0] == "storage":
                    if item[1] is None or item[1] in saved_seen:
                        continue
                    saved_seen.add(item[1])
                    mine.append(storage_bytes[item[1]])
                else:
                    mine.append(item[1])
            per_layer.append((layer.name, layer.kind, plain(factored_sum(mine, common=False))))
            saved_total.extend(mine)
        else:
            per_layer.append((layer.name, layer.kind, plain(storage_bytes[k]) if tensor[k][0] == k else 0))
    params = sympy.Integer(report.params * itemsize)
    if training:
        activations = plain(factored_sum(saved_total)) if peak else 0
        grads, opt = params, params * _OPTIMIZER_STATES[key]
    else:
        for out in _output_layers(report):
            s = tensor.get(out, (None,))[0]
            if s is not None:
                last_use[s] = len(layers)
        cands = []
        for k in (k for k in range(len(layers) if peak else 0) if layers[k].only is not sympy.false):
            own = storage_bytes[k] if tensor[k][0] == k else 0
            if _kind(layers[k]) in MOMENTS:
                moments = MOMENTS[_kind(layers[k])](layers[k], itemsize, layouts[k])
            else:
                extra = _transient(layers[k], itemsize, tuple(copies.get(k, {}).values()))
                if own == 0 and extra == 0:
                    continue
                moments = [factored(own) + factored(extra)]
            others = [b for s, b in storage_bytes.items() if s != k and s <= k <= last_use.get(s, s)]
            cands.extend(factored_sum([*others, m]) for m in moments)
        from .decide import lower_bounds

        activations = plain(_simplify_max(cands or [storage_bytes[-1]], lower_bounds(report.domain))) if peak else 0
        grads = opt = sympy.Integer(0)
    return Memory(plain(params), plain(grads), plain(opt), activations, tuple(per_layer), dtype, training,
                  key if training else None, report.partial_note)


def _transient(layer, itemsize, copies=()) -> sympy.Expr:
    """Bytes an op allocates beside its output in an inference forward and frees at once (they
    count at its step only): the mean and inverse std of instance, group and layer norm (and of
    batch norm without running statistics), the repeated weight and bias of an affine instance norm, the int64
    argmax indices of max pooling (kept even without grad), the contiguous copies a batched
    matmul makes of strided operands (*copies*: their element counts)."""
    kind, x = _kind(layer), layer.in_shape
    if copies:
        return sympy.Add(*copies) * itemsize
    if kind.startswith("instancenorm"):  # the statistics, or the running ones repeated; the weight and bias repeated
        return (2 + (2 if layer.params else 0)) * x[0] * x[1] * itemsize
    if kind.startswith("batchnorm") and layer.attrs.get("track_running_stats") is False:
        return 2 * x[1] * itemsize  # in eval without running statistics: the batch's
    if kind == "groupnorm":
        return 2 * x[0] * layer.attrs["num_groups"] * itemsize
    if kind == "layernorm":
        return 2 * sympy.Mul(*x[:len(x) - len(layer.attrs["normalized_shape"])]) * itemsize
    if kind.startswith(("maxpool", "adaptivemaxpool")):
        return _numel(layer.out_shape) * 8
    return sympy.Integer(0)


def _output_layers(report) -> list:
    """The layers whose outputs the model returns: those no later layer consumes, and the last."""
    used = {e for layer in report.layers for e in (layer.inputs or ())}
    n = len(report.layers)
    return [k for k in range(n) if k not in used] or [n - 1]


report_method(memory)

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """A size in bytes from text such as ``24GiB``, ``1.5 GB``, ``512MiB`` or ``1000000`` (decimal
    units are powers of 1000, binary ones of 1024), read by hand.

    >>> parse_bytes("24GiB"), parse_bytes("1.5 GB"), parse_bytes("4096")
    (25769803776, 1500000000, 4096)
    >>> parse_bytes("24 gigs")
    Traceback (most recent call last):
    ...
    symshape.symbols.ShapeError: cannot read the memory size '24 gigs': write a number and a unit of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, such as 24GiB
    """
    from fractions import Fraction

    t = str(text).strip()
    k = len(t)
    while k and not (t[k - 1].isdigit() or t[k - 1] == "."):
        k -= 1
    number, unit = t[:k].strip(), t[k:].strip().lower()
    ok = (unit in _UNITS and 0 < len(number) <= 30 and number.count(".") <= 1
          and number.replace(".", "").isdigit() and number.replace(".", "") != "")
    if not ok:
        raise ShapeError(f"cannot read the memory size {text!r}: write a number and a unit of B, KB, MB, GB, TB, "
                         f"KiB, MiB, GiB, TiB, such as 24GiB")
    return int(Fraction(number) * _UNITS[unit])
