"""Numeric verification in torch, part 1: what torch actually did.

:func:`observe` runs a torch model once and reports, for every module that ran, the
shapes of its tensor inputs and output and the multiply-accumulates that
``torch.utils.flop_counter.FlopCounterMode`` counted inside it (MACs = flops / 2, the
convention of DESIGN section 4). It is the oracle that symbolic formulas are checked
against; it knows no formulas of its own.

How the run is made (measured on torch 2.13):

* The user's model is never touched. :func:`observe` deep-copies it with a pre-filled
  ``copy.deepcopy`` memo that maps every parameter and buffer straight to a tensor on
  the target device, so no weight is copied on the way to ``meta`` (ResNet-50: 22 ms,
  against 74 ms and a transient 100 MB for ``copy.deepcopy(model).to("meta")``). Hooks
  go on the copy, which keeps the model's own train/eval flags (the report's domain is that of
  the model's mode: BatchNorm in training needs more than one value per channel, in eval not),
  and the hooks are removed in a ``finally``: the user's parameters, device, training flags and
  hooks are unchanged.
* Default device ``meta``: no memory, no compute. Every layer of the catalogue studied
  (conv, pooling incl. FractionalMaxPool, upsampling, norms, activations, dropout, padding,
  attention, ...) runs on meta. What cannot is data-dependent code (``x[x > 0]``,
  ``nonzero``, ``unique``, ``.item()``, ``if x.sum() > 0``) and tensors a module keeps
  outside its parameters and buffers. When the meta run raises, the whole model is run
  again for real on CPU (inputs ``torch.randn`` with seed 0 unless given as tensors,
  global RNG state restored afterwards); the result then says so in
  :attr:`Observations.device` and :attr:`Observations.fallback_reason`. If the CPU run
  raises too, :class:`ObserveError` names the module that raised, with torch's (CPU)
  message.
* Counting mode: ``torch.no_grad()``, the model's own train/eval flags, the MultiheadAttention/Transformer fast
  path switched off (``torch.backends.mha.set_fastpath_enabled(False)``), the math
  backend for ``scaled_dot_product_attention``, and on CPU, when the model has an RNN,
  oneDNN (mkldnn) off. In this mode FlopCounterMode sees every matrix product of the
  catalogue except those in :data:`FLOPCOUNTER_BLIND_SPOTS`; what each setting avoids is
  in :data:`FLOPCOUNTER_AVOIDED`. On meta, grad mode and fast paths make no difference
  (fast paths refuse meta tensors); no_grad is chosen because it is faster (ResNet-50 at
  224: 0.10 s against 0.13 s).
* Per-module MACs are taken as the difference of FlopCounterMode's global total between
  the module's forward pre-hook and forward hook, so no module names need to be
  matched. (FlopCounterMode's own ``get_flop_counts()`` keys are ModuleTracker names:
  the first module called is named ``type(root).__name__`` and each child
  ``parent_name + "." + attribute``, e.g. ``"Sequential.0"`` for ``named_modules()``'s
  ``"0"``; a module registered under two parents takes the name of the *last* path
  met by ``named_children`` recursion, where ``named_modules()`` keeps the *first*; the
  root's count is under both ``"Sequential"`` and ``"Global"``.)
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import warnings
from dataclasses import dataclass
from typing import Optional, Union

import sympy
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .evaluate import compile_expr
from .render.expr import fmt
from .symbols import ShapeError

__all__ = [
    "Observed",
    "Observations",
    "ObserveError",
    "observe",
    "FLOPCOUNTER_BLIND_SPOTS",
    "FLOPCOUNTER_AVOIDED",
    "META_DIVERGENCES",
]


FLOPCOUNTER_BLIND_SPOTS: dict = {
    nn.Bilinear: (
        "FlopCounterMode has no formula for aten._trilinear, which nn.Bilinear calls, "
        "so it counts 0 (on meta and CPU, with or without grad); the convention counts "
        "in1_features * in2_features * out_features per output row"
    ),
}
"""Module types whose MACs FlopCounterMode gets wrong even in :func:`observe`'s run mode.

Maps type -> reason. The ``macs`` of such a module, and of every module whose call
encloses it, are not a valid oracle; :attr:`Observed.macs_caveat` carries the reason.
Everything else in the studied catalogue counts exactly as DESIGN section 4: conv and
conv-transpose (``N*Cout*(Cin/g)*prod(k)*prod(out)`` resp. ``N*Cin*(Cout/g)*prod(k)*prod(in)``),
Linear (also on 1-d input), MultiheadAttention (projections + ``2*N*L*S*E``), RNN/GRU/LSTM,
and 0 for pooling, upsampling, norms, activations, dropout, padding, reshapes, softmax,
Embedding and EmbeddingBag.
"""

FLOPCOUNTER_AVOIDED: dict = {
    nn.MultiheadAttention: (
        "under no_grad in eval mode on CPU the fast path (aten._native_multi_head_attention) "
        "is counted 0, and with need_weights=False the CPU flash kernel "
        "(aten._scaled_dot_product_flash_attention_for_cpu) misses 2*N*L*S*E; avoided by "
        "disabling the mha fast path and forcing the math SDPA backend"
    ),
    nn.TransformerEncoderLayer: (
        "under no_grad in eval mode on CPU the fast path (aten._transformer_encoder_layer_fwd) "
        "is counted 0, and with grad on its self-attention uses the CPU flash kernel, which "
        "misses 2*N*L*S*E; avoided as for MultiheadAttention"
    ),
    nn.TransformerDecoderLayer: (
        "its attentions use the CPU flash SDPA kernel or the mha fast path, which miss "
        "2*N*L*S*E each; avoided as for MultiheadAttention"
    ),
    nn.TransformerEncoder: (
        "its layers take the fast path (counted 0) under no_grad on CPU; avoided as for "
        "MultiheadAttention"
    ),
    nn.LSTM: (
        "on CPU the oneDNN kernel aten.mkldnn_rnn_layer is counted 0; avoided by disabling "
        "mkldnn for CPU runs of models that contain an RNN"
    ),
}
"""Module types FlopCounterMode miscounts in *other* run modes, and how :func:`observe` avoids it.

All of these are only CPU problems: on meta every one of them is counted in full.
"""

META_DIVERGENCES: dict = {
    nn.ConvTranspose1d: "meta accepts output_padding >= both stride and dilation; CPU raises",
    nn.ConvTranspose2d: "meta accepts output_padding >= both stride and dilation; CPU raises",
    nn.ConvTranspose3d: "meta accepts output_padding >= both stride and dilation; CPU raises",
    nn.AdaptiveAvgPool2d: "meta accepts an input with a 0-sized non-batch dimension; CPU raises",
    nn.Embedding: "meta cannot see index values, so out-of-range indices pass; CPU raises IndexError",
    nn.Upsample: "meta accepts a 0-sized output in the linear, bilinear, bicubic and trilinear modes; CPU raises",
}
"""Module types for which a meta run accepts inputs that a real CPU run rejects.

Maps type -> the case. On meta, :func:`observe` reports a shape for these cases where
torch on CPU would raise; run with ``device="cpu"`` when that matters. Independently of
type, meta does not check that input and weight dtypes agree (a half-precision Linear
accepts the default float32 input on meta; pass ``dtype=``). Elsewhere in the catalogue
meta and CPU agree on acceptance (reflection/circular padding limits, pool padding,
empty outputs, divisibility of PixelShuffle, GroupNorm, ChannelShuffle, ...), though
the error messages sometimes differ, which is why a failed meta run is repeated on CPU
before :class:`ObserveError` is raised.
"""


@dataclass(frozen=True)
class Observed:
    """What torch did in one module during :func:`observe`'s forward pass.

    ``name`` is the qualified name from ``model.named_modules()`` (``""`` for the root;
    a module registered under several names keeps the first). ``in_shapes`` holds the
    shapes of the tensor positional arguments (keyword arguments and non-tensor
    arguments are left out). ``out_shape`` is a tuple of ints for a tensor output, a
    tuple of such entries for tuple/list outputs (recursively; ``None`` for ``None`` or
    any other non-tensor value). ``macs`` is FlopCounterMode's count inside the call,
    children included, divided by 2. A module that ran ``calls > 1`` times reports the
    shapes of its LAST call and the SUM of the MACs of all calls. ``macs_caveat`` is
    ``None`` unless the call contained a module from :data:`FLOPCOUNTER_BLIND_SPOTS`, in
    which case it says which and why ``macs`` is not to be trusted.
    """

    name: str
    kind: str
    in_shapes: tuple
    out_shape: object
    macs: int
    calls: int
    macs_caveat: Optional[str] = None


class Observations(dict):
    """The result of :func:`observe`: a ``dict`` from module name to :class:`Observed`.

    Entries follow ``named_modules()`` order; modules that did not run (an unused branch,
    a submodule bypassed by its parent) have no entry. Two attributes say how the run was
    made:

    * ``device``: where the model actually ran (``"meta"`` or, after a fallback, ``"cpu"``);
    * ``fallback_reason``: ``None``, or why the meta run failed and CPU was used.
    """

    def __init__(self, entries, device: str, fallback_reason: Optional[str] = None):
        super().__init__(entries)
        self.device = device
        self.fallback_reason = fallback_reason

    def __repr__(self) -> str:
        return (f"Observations({dict.__repr__(self)}, device={self.device!r}, "
                f"fallback_reason={self.fallback_reason!r})")


class ObserveError(RuntimeError):
    """Torch raised while :func:`observe` ran the model.

    Attributes: ``module_name`` and ``kind`` of the innermost module that was running,
    ``in_shapes`` of its call, ``device`` of the failed run; ``__cause__`` is torch's
    exception (from the CPU run when the meta run failed first).
    """

    def __init__(self, message, module_name, kind, in_shapes, device):
        super().__init__(message)
        self.module_name = module_name
        self.kind = kind
        self.in_shapes = in_shapes
        self.device = device


Input = Union[torch.Tensor, tuple, list]


def observe(model: nn.Module, *inputs: Input, device: str = "meta", fallback: bool = True,
            dtype: torch.dtype = torch.float32) -> Observations:
    """Run ``model`` on ``inputs`` and report, per module, what torch actually did.

    Each input is a shape (a tuple of ints; a float tensor of ``dtype`` is made from it)
    or a tensor (e.g. integer indices for ``nn.Embedding``; moved to ``device``). The
    model runs on a copy on ``device`` (default ``"meta"``: no memory, no compute); if
    the meta run raises and ``fallback`` is true, the whole model is run again on CPU and
    the result records it (see :class:`Observations`). The run mode that lets
    FlopCounterMode see the most is described in the module docstring.

    Returns an :class:`Observations` dict of :class:`Observed`. Raises
    :class:`ObserveError` if torch rejects the input, and ``TypeError`` for an input
    that is neither a shape nor a tensor. A meta run that fails is repeated on CPU even
    when the error is a plain shape error, so that the error carries torch's CPU message
    (the CPU run stops at the same layer); ``fallback=False`` raises the meta error.

    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 32, kernel_size=7, stride=2), nn.ReLU(inplace=True),
    ...                       nn.Flatten(), nn.Linear(5408, 10))
    >>> obs = observe(model, (1, 3, 32, 32))
    >>> obs["0"]
    Observed(name='0', kind='Conv2d', in_shapes=((1, 3, 32, 32),), out_shape=(1, 32, 13, 13), macs=794976, calls=1, macs_caveat=None)
    >>> [(o.name, o.out_shape, o.macs) for o in obs.values()]
    [('', (1, 10), 849056), ('0', (1, 32, 13, 13), 794976), ('1', (1, 32, 13, 13), 0), ('2', (1, 5408), 0), ('3', (1, 10), 54080)]
    >>> obs.device, obs.fallback_reason
    ('meta', None)

    Data-dependent code cannot run on meta, so it falls back to CPU:

    >>> class Positive(nn.Module):
    ...     def forward(self, x):
    ...         return x[x > 0]
    >>> obs = observe(Positive(), torch.tensor([-1.0, 2.0, 3.0]))
    >>> obs[""].out_shape, obs.device
    ((2,), 'cpu')
    >>> obs.fallback_reason[:71]
    "NotImplementedError in module '' (Positive): The register_meta function"

    Inputs torch rejects raise :class:`ObserveError`, naming the module:

    >>> observe(model, (1, 3, 28, 28))
    Traceback (most recent call last):
    ...
    symshape.check.ObserveError: torch raised in module '3' (Linear) with input shapes ((1, 3872),) on cpu: RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x3872 and 5408x10)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"observe: expected an nn.Module, got {type(model).__name__}")
    specs = tuple(_check_input(i, k) for k, i in enumerate(inputs))
    device = torch.device(device)
    result, failure = _run(model, specs, device, dtype)
    if failure is not None and device.type == "meta" and fallback:
        result, cpu_failure = _run(model, specs, torch.device("cpu"), dtype)
        if cpu_failure is None:
            result.fallback_reason = failure.summary()
        failure = cpu_failure
    if failure is not None:
        raise failure.as_observe_error() from failure.exc
    return result


class _Failure:
    """A failed run: torch's exception and the innermost module that was running."""

    def __init__(self, exc, module_name, kind, in_shapes, device):
        self.exc, self.module_name, self.kind = exc, module_name, kind
        self.in_shapes, self.device = in_shapes, device

    def _first_line(self):
        lines = str(self.exc).strip().splitlines()
        return lines[0] if lines else ""

    def summary(self):
        """One line for :attr:`Observations.fallback_reason`."""
        return (f"{type(self.exc).__name__} in module {self.module_name!r} ({self.kind}): "
                f"{self._first_line()}")

    def as_observe_error(self):
        return ObserveError(
            f"torch raised in module {self.module_name!r} ({self.kind}) with input shapes "
            f"{self.in_shapes} on {self.device}: {type(self.exc).__name__}: {self._first_line()}",
            self.module_name, self.kind, self.in_shapes, self.device)


def _check_input(spec, position):
    if isinstance(spec, torch.Tensor):
        return spec
    if isinstance(spec, (tuple, list)) and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in spec):
        return tuple(spec)
    raise TypeError(f"observe: input {position} must be a shape (a tuple of non-negative ints) "
                    f"or a tensor, got {spec!r}")


def _make_input(spec, device, dtype, generator):
    if isinstance(spec, torch.Tensor):
        if device.type != "meta" and spec.device.type == "meta":
            return torch.zeros(spec.shape, dtype=spec.dtype, device=device)
        return spec.detach().to(device)
    if device.type == "meta":
        return torch.empty(spec, dtype=dtype, device=device)
    return torch.randn(spec, dtype=dtype, generator=generator).to(device)


def _copy_to(model, device):
    """Deep copy of ``model`` whose parameters and buffers live on ``device``.

    The deepcopy memo is pre-filled with the new tensors, so the original weights are
    never copied when the target is meta (tied weights stay tied).
    """
    def moved(t):
        if device.type == "meta":
            return torch.empty_like(t, device=device)
        if t.device.type == "meta":
            return torch.zeros(t.shape, dtype=t.dtype, device=device)
        return t.detach().to(device, copy=True)

    memo = {}
    for p in model.parameters():
        if isinstance(p, nn.parameter.UninitializedParameter):  # lazy modules materialise on device
            memo[id(p)] = nn.parameter.UninitializedParameter(p.requires_grad, device, p.dtype)
        else:
            memo[id(p)] = nn.Parameter(moved(p), requires_grad=p.requires_grad)
    for b in model.buffers():
        if isinstance(b, nn.parameter.UninitializedBuffer):
            memo[id(b)] = nn.parameter.UninitializedBuffer(b.requires_grad, device, b.dtype)
        else:
            memo[id(b)] = moved(b)
    return copy.deepcopy(model, memo)


def _shape_of(value):
    if isinstance(value, torch.Tensor):
        return tuple(int(d) for d in value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_shape_of(v) for v in value)
    return None


@contextlib.contextmanager
def _counting_mode(model, device):
    """no_grad, no mha fast path, math SDPA, and on CPU no mkldnn for RNNs; all restored."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.no_grad())
        stack.enter_context(torch.random.fork_rng(devices=[]))
        mha = getattr(torch.backends, "mha", None)
        if mha is not None and hasattr(mha, "set_fastpath_enabled"):
            previous = mha.get_fastpath_enabled()
            mha.set_fastpath_enabled(False)
            stack.callback(mha.set_fastpath_enabled, previous)
        try:
            from torch.nn.attention import SDPBackend, sdpa_kernel
        except ImportError:  # torch < 2.3
            pass
        else:
            stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        if device.type == "cpu" and any(isinstance(m, nn.RNNBase) for m in model.modules()):
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", message=".*TF32 acceleration on top of oneDNN.*")
            stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
        yield


def _run(model, specs, device, dtype):
    work = _copy_to(model, device)  # keeps each module's train/eval flag: torch's checks differ by mode
    generator = torch.Generator().manual_seed(0)
    names = {}
    for name, module in work.named_modules():
        names.setdefault(id(module), (name, module))
    blind = tuple(FLOPCOUNTER_BLIND_SPOTS)
    counter = FlopCounterMode(display=False)
    stack = []          # [module, name, in_shapes, flops at entry]
    seen = {}           # id(module) -> dict(in_shapes, out_shape, flops, calls, caveat)
    handles = []

    def pre_hook(module, args):
        name = names[id(module)][0]
        in_shapes = tuple(_shape_of(a) for a in args if isinstance(a, torch.Tensor))
        stack.append([module, name, in_shapes, counter.get_total_flops()])
        if isinstance(module, blind):
            reason = f"contains {type(module).__name__} {name!r}: {_blind_reason(module)}"
            for entry in stack:
                rec = seen.setdefault(id(entry[0]), _fresh())
                rec["caveat"] = rec["caveat"] or reason

    def post_hook(module, args, output):
        _, _, in_shapes, start = stack.pop()
        rec = seen.setdefault(id(module), _fresh())
        rec["in_shapes"], rec["out_shape"] = in_shapes, _shape_of(output)
        rec["flops"] += counter.get_total_flops() - start
        rec["calls"] += 1

    try:
        for _, module in names.values():
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(post_hook))
        with _counting_mode(work, device):
            args = [_make_input(s, device, dtype, generator) for s in specs]
            try:
                with counter:
                    work(*args)
            except Exception as exc:
                if stack:
                    module, name, in_shapes, _ = stack[-1]
                    return None, _Failure(exc, name, type(module).__name__, in_shapes, device.type)
                return None, _Failure(exc, "", type(work).__name__, (), device.type)
    finally:
        for handle in handles:
            handle.remove()

    entries = {}
    for name, module in work.named_modules():
        rec = seen.get(id(module))
        if rec is None or rec["calls"] == 0:
            continue
        entries[name] = Observed(name, type(module).__name__, rec["in_shapes"], rec["out_shape"],
                                 rec["flops"] // 2, rec["calls"], rec["caveat"])
    return Observations(entries, device.type), None


def _fresh():
    return {"in_shapes": (), "out_shape": None, "flops": 0, "calls": 0, "caveat": None}


def _blind_reason(module):
    for cls in type(module).__mro__:
        if cls in FLOPCOUNTER_BLIND_SPOTS:
            return FLOPCOUNTER_BLIND_SPOTS[cls]
    return ""


# ---------------------------------------------------------------------------------------------
# Part 2: checking a traced report against torch, layer by layer and size by size.
# ---------------------------------------------------------------------------------------------

SCAN = 1024
"""How far :func:`default_sizes` scans up from the lower bounds for a first valid size."""

SPREAD = 256
"""How far above the smallest valid value :func:`default_sizes` looks for larger values."""

_JOINT_BUDGET = 20_000


def _evaluator(expr):
    """A function ``values -> value`` that evaluates ``expr`` exactly at a point ``{symbol: int}``;
    node types :func:`~symshape.evaluate.compile_expr` does not know are left to sympy."""
    return compile_expr(expr, fallback=True)


def default_sizes(rep, n: int = 6) -> list:
    """A spread of sizes for :func:`check`: up to ``n`` inside ``rep``'s domain, then some just outside.

    The edges come from the solver (:meth:`~symshape.Report.valid_inputs`): first the minimal
    inputs (:meth:`~symshape.Report.min_input`), then, per box of the valid set and per size
    (the others at the box's corner), both ends of each finite piece and the first two values
    of each unbounded one, then larger valid sizes up to :data:`SPREAD` above the corner
    (multiples of 32, 16, 8 and their odd neighbours ``m·k ± 1``), alone and combined. The
    first ``n`` of these are the points inside. The points outside (at most ``2n``) are one
    below each minimal input and each lower edge, and one above each upper edge (the first
    value of an unbounded piece plus one), where the valid set excludes them. When the solver raises
    or answers by a flagged bounded scan, the sizes come from the domain alone
    (:func:`_domain_sizes`).

    >>> from symshape.trace import trace
    >>> from symshape.zoo import seed_case1
    >>> import torch.nn as nn
    >>> default_sizes(trace(seed_case1(), "1,3,H,W"), n=4)  # 3 minimal inputs, then edges; outside: 6 below, 2 above
    [{'H': 7, 'W': 343}, {'H': 31, 'W': 31}, {'H': 343, 'W': 7}, {'H': 8, 'W': 343}, {'H': 6, 'W': 343}, {'H': 7, 'W': 342}, {'H': 30, 'W': 31}, {'H': 31, 'W': 30}, {'H': 342, 'W': 7}, {'H': 343, 'W': 6}, {'H': 9, 'W': 343}, {'H': 7, 'W': 345}]
    >>> rep = trace(nn.Sequential(nn.MaxPool1d(4), nn.Unflatten(2, (-1, 2))), "1,4,L")
    >>> print(rep.valid_inputs())
    L ≡ 0 (mod 8), L ≥ 8 or L ≡ 1 (mod 8), L ≥ 9 or L ≡ 2 (mod 8), L ≥ 10 or L ≡ 3 (mod 8), L ≥ 11
    >>> default_sizes(rep, n=4)
    [{'L': 8}, {'L': 32}, {'L': 16}, {'L': 33}, {'L': 7}, {'L': 12}]
    """
    syms = list(rep.symbols)
    try:
        valid = rep.valid_inputs() if syms else None
    except ShapeError:
        valid = None
    if valid is None or valid.note:
        return _domain_sizes(rep, n)
    if valid.is_empty:
        raise ShapeError(f"default_sizes found no size at which the model runs ({valid.reason}): "
                         f"pass sizes= explicitly")
    names = [s.name for s in valid.symbols]

    def full(p):  # a point of the free sizes -> all sizes (square answers tie some together)
        values = dict(zip(valid.free, p))
        return tuple(valid._tied(valid.ties.get(s, s), values) for s in valid.symbols)

    inside = [tuple(part.min() for part in box) for box in valid.minimal().boxes]
    edges: list = [[] for _ in valid.free]
    larger: list = [[] for _ in valid.free]
    outside = [(*p[:i], p[i] - 1, *p[i + 1:]) for p in inside for i in range(len(p))]
    for box in valid.boxes:
        corner = [part.min() for part in box]
        for i, part in enumerate(box):
            def at(v):
                return tuple(corner[:i] + [v] + corner[i + 1:])
            for lo, hi, m, _ in part.pieces:
                edges[i] += [at(lo), at(lo + m if hi is None else hi)]
                outside += [at(lo - 1), at((lo if hi is None else hi) + 1)]
            values = [v for v in range(corner[i], corner[i] + SPREAD + 1) if v in part]
            larger[i] += [at(v) for v in _picks(values, n)[1:]]
    mixes = [tuple(larger[i][k % len(larger[i])][i] for i in range(len(larger))) for k in range(n)
             if all(larger)] if len(larger) > 1 else []
    for group in (*itertools.zip_longest(*edges, *larger), mixes):
        inside += [p for p in group if p is not None and p not in inside and full(p) in valid]
    outside = [p for p in dict.fromkeys(outside) if min(p) >= 1 and full(p) not in valid]
    return [dict(zip(names, full(p))) for p in inside[:max(n, 1)] + outside[:2 * max(n, 1)]]


def _domain_sizes(rep, n: int = 6) -> list:
    """:func:`default_sizes` from the domain conditions alone, for domains the solver only scans.

    Uses only the domain conditions. Per symbol, the lower (upper) bound is the tightest
    ``X >= c`` (``X <= c``, ``X = c``) condition, else 1 (no upper bound). The other
    conditions (divisibility, a ``Linear`` that fixes a flatten size, ...) are met by
    scanning: first all symbols together up from their lower bounds (at most :data:`SCAN`
    steps), then, if that finds nothing, points in order of their total distance from the
    lower bounds (at most 20,000 points); then each symbol is lowered, the others fixed,
    to its smallest valid value (the *minimum input*). The search is bounded: a domain whose
    first valid point lies beyond it raises :class:`~symshape.ShapeError`; give sizes
    explicitly then.

    From the minimum input, each symbol's valid values up to :data:`SPREAD` above its
    minimum are scanned (others fixed) and a few picked: multiples of 32, 16, 8 and their
    neighbours ``m·k - 1`` and ``m·k + 1`` (where floors truncate), then the next values.
    The valid points are the minimum input, each symbol moved alone to its picks, and (for
    two or more symbols) the picks combined, straight and rotated, into rectangular sizes;
    every point is checked against the whole domain. The points just outside are, per
    symbol with the others at the minimum input: its minimum - 1 (when >= 1), the first
    invalid value above its minimum within the scan, and its upper bound + 1.

    >>> import torch.nn as nn
    >>> from symshape.trace import trace
    >>> from symshape.zoo import seed_case1
    >>> _domain_sizes(trace(seed_case1(), "1,3,H,W"), n=3)
    [{'H': 31, 'W': 31}, {'H': 32, 'W': 31}, {'H': 31, 'W': 32}, {'H': 30, 'W': 31}, {'H': 33, 'W': 31}, {'H': 31, 'W': 30}, {'H': 31, 'W': 33}]
    >>> rep = trace(nn.Sequential(nn.MaxPool1d(4), nn.Unflatten(2, (-1, 2))), "1,4,L")
    >>> rep.domain
    (L >= 4, floor(L/4) ≡ 0 (mod 2))
    >>> _domain_sizes(rep, n=4)
    [{'L': 8}, {'L': 32}, {'L': 33}, {'L': 16}, {'L': 7}, {'L': 12}]
    """
    syms = list(rep.symbols)
    if not syms:
        return [{}]
    lo, hi = {s: 1 for s in syms}, {s: None for s in syms}
    for cond in rep.domain:
        e = cond.expr
        if e.lhs.is_Symbol and e.lhs in lo and e.rhs.is_Integer if isinstance(e, sympy.Rel) else False:
            c = int(e.rhs)
            if isinstance(e, (sympy.Ge, sympy.Eq)):
                lo[e.lhs] = max(lo[e.lhs], c)
            if isinstance(e, (sympy.Le, sympy.Eq)):
                hi[e.lhs] = c if hi[e.lhs] is None else min(hi[e.lhs], c)
    tests = [_evaluator(c.expr) for c in rep.domain]

    def holds(point):
        values = {s: point[s] for s in syms}
        return all(t(values) for t in tests)

    def clip(s, v):
        return v if hi[s] is None else min(v, hi[s])

    base = next((p for p in ({s: clip(s, lo[s] + k) for s in syms} for k in range(SCAN)) if holds(p)), None)
    if base is None:
        base = next((p for p in _by_distance(syms, lo, hi, _JOINT_BUDGET) if holds(p)), None)
    if base is None:
        bounds = ", ".join(f"{s} >= {lo[s]}" for s in syms)
        raise ShapeError(f"default_sizes found no size inside the domain near its lower bounds ({bounds}): "
                         f"pass sizes= explicitly")

    def valid_values(s, point, start):
        stop = start + SPREAD if hi[s] is None else min(start + SPREAD, hi[s])
        return [v for v in range(start, stop + 1) if holds({**point, s: v})]

    for s in syms:  # lower each symbol to its smallest valid value, the others fixed
        base[s] = valid_values(s, base, lo[s])[0] if base[s] > lo[s] else base[s]
    picks = {s: _picks(valid_values(s, base, base[s]), n) for s in syms}

    singles = [[{**base, s: v} for v in picks[s][1:]] for s in syms]
    depth = min(len(p) for p in picks.values())
    mixes = [[{s: picks[s][(i + shift * k) % depth] for k, s in enumerate(syms)} for i in range(1, depth)]
             for shift in ((0, 1) if len(syms) > 1 else ())]
    chosen = [dict(base)]
    for group in itertools.zip_longest(*singles, *mixes):
        for point in group:
            if point is not None and point not in chosen and holds(point):
                chosen.append(point)
    chosen = chosen[:n]

    outside = []
    for s in syms:
        candidates = [base[s] - 1]
        above = next((v for v in range(base[s], base[s] + SPREAD + 1) if not holds({**base, s: v})), None)
        candidates += [above] if above is not None else []
        candidates += [hi[s] + 1] if hi[s] is not None else []
        for v in candidates:
            point = {**base, s: v}
            if v >= 1 and point not in outside and not holds(point):
                outside.append(point)
    return [{s.name: v for s, v in p.items()} for p in chosen + outside]


def _by_distance(syms, lo, hi, budget):
    """Points ``lo + k`` in order of ``sum(k)``, within the upper bounds, at most ``budget``."""
    free = [s for s in syms if hi[s] is None or hi[s] > lo[s]]
    count, total = 0, 0
    while count < budget:
        for ks in itertools.product(range(total + 1), repeat=len(free)):
            if sum(ks) != total:
                continue
            point = {s: lo[s] for s in syms}
            point.update({s: lo[s] + k for s, k in zip(free, ks)})
            if any(hi[s] is not None and point[s] > hi[s] for s in free):
                continue
            count += 1
            yield point
        total += 1
        if not free:
            return


def _picks(valid, n):
    """The smallest valid value, then multiples of 32, 16, 8 and their neighbours, then the rest."""
    if not valid:
        return []
    first, rest = valid[0], valid[1:]
    order = [first]
    for m in (32, 16, 8):
        for r in (0, m - 1, 1):
            v = next((v for v in rest if v % m == r), None)
            if v is not None and v not in order:
                order.append(v)
    order += [v for v in rest if v not in order]
    return order[:max(n, 2)]


@dataclass(frozen=True)
class Comparison:
    """One comparison of :func:`check`: at ``sizes``, what symshape predicted for ``layer`` and
    what torch did.

    ``what`` is ``"shape"`` (the output shape of the module's last call), ``"macs"`` (summed
    over its calls), ``"calls"`` (how often the module ran, compared only when they differ)
    or ``"domain"`` (whether the model runs at all; ``layer`` is then the layer the domain
    blames, or torch's failing module). ``layer`` is ``"(model)"`` for the model's output
    shape and total MACs. ``formula`` is the symbolic prediction; ``status`` is ``"ok"``,
    ``"mismatch"`` or ``"skipped"``; ``note`` says why it was skipped or what went wrong.
    """

    sizes: dict
    layer: str
    kind: str
    what: str
    predicted: object
    actual: object
    formula: str
    status: str
    note: str = ""

    def where(self) -> str:
        at = ", ".join(f"{k}={v}" for k, v in self.sizes.items()) or "the given shape"
        layer = self.layer if self.layer == "(model)" else repr(self.layer)
        return f"at {at}, layer {layer} ({self.kind})"

    def __str__(self) -> str:
        text = (f"{self.where()} {self.what}: predicted {_show(self.predicted)}, torch {_show(self.actual)}; "
                f"formula {self.formula}")
        return text + (f" ({self.note})" if self.note else "")


def _show(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


@dataclass(frozen=True)
class CheckResult:
    """The result of :func:`check`: every :class:`Comparison` made, and notes on what was not
    compared one by one. ``ok`` is true when no comparison is a mismatch."""

    model: str
    device: str
    sizes: tuple
    comparisons: tuple
    notes: tuple = ()

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def mismatches(self) -> tuple:
        return tuple(c for c in self.comparisons if c.status == "mismatch")

    @property
    def skipped(self) -> tuple:
        return tuple(c for c in self.comparisons if c.status == "skipped")

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """One line: sizes, comparisons, mismatches, skipped."""
        n = len(self.comparisons)
        verdict = "ok" if self.ok else "FAILED"
        return (f"check {self.model} against torch ({self.device}): {verdict}: {len(self.sizes)} sizes, "
                f"{n} comparisons, {len(self.mismatches)} mismatches, {len(self.skipped)} skipped")

    def __str__(self) -> str:
        lines = [self.summary()]
        for sizes in self.sizes:
            at = ", ".join(f"{k}={v}" for k, v in sizes.items()) or "(no size symbols)"
            here = [c for c in self.comparisons if c.sizes == sizes]
            domain = [c for c in here if c.what == "domain"]
            rows = {}
            for c in here:
                if c.what in ("shape", "macs"):
                    rows.setdefault((c.layer, c.kind), {})[c.what] = c
            lines.append("")
            lines.append(f"{at}: {domain[0].note}" + (" MISMATCH" if domain and domain[0].status == "mismatch"
                                                          else "") if domain else at)
            if not rows:
                continue
            table = [("layer", "type", "predicted shape", "torch shape", "predicted MACs", "torch MACs", "")]
            for (layer, kind), pair in rows.items():
                shape, macs = pair.get("shape"), pair.get("macs")
                marks = {c.status for c in pair.values()} - {"ok"}
                table.append((layer, kind,
                              _show(shape.predicted) if shape else "", _show(shape.actual) if shape else "",
                              _show(macs.predicted) if macs else "", _show(macs.actual) if macs else "",
                              "MISMATCH" if "mismatch" in marks else "skipped" if marks else "ok"))
            widths = [max(len(r[i]) for r in table) for i in range(7)]
            for r in table:
                lines.append("  " + "  ".join(c.rjust(w) if i in (4, 5) else c.ljust(w)
                                              for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if self.mismatches:
            lines += ["", "mismatches:"] + [f"  {c}" for c in self.mismatches]
        if self.skipped:
            lines += ["", "skipped:"] + [f"  {c.where()} {c.what}: {c.note}" for c in self.skipped]
        if self.notes:
            lines += ["", "notes:"] + [f"  {note}" for note in self.notes]
        return "\n".join(lines)


def check(model: nn.Module, rep, sizes=None, *, n: int = 6, device: str = "meta") -> CheckResult:
    """Check ``rep = trace(model, ...)`` against torch: shapes, MACs and the domain, size by size.

    ``sizes`` is a list of ``{symbol name: int}`` dicts giving every symbol of ``rep``
    (default: :func:`default_sizes` ``(rep, n)``, the minimum input, a spread of larger and
    rectangular sizes, and sizes just outside the domain). At each size the model runs once
    in :func:`observe` (on ``device``, meta by default; a CPU copy where meta cannot run),
    and:

    * inside the domain (``rep.violations`` empty) torch must run, and for every layer of
      the report that is a module (matched by qualified name; a module called several times
      is compared by its last output shape and the sum of its MACs, and the number of calls
      must agree) the output shape must equal torch's and the MACs FlopCounterMode's
      (flops / 2), and so must the model's output shape and total MACs. MACs of modules
      FlopCounterMode cannot count (:data:`FLOPCOUNTER_BLIND_SPOTS`) are skipped, with the
      reason. Report layers that are not modules (function nodes of a graph) are compared
      through the totals only; the result's notes say so.
    * outside the domain torch must raise, in the module of the first violated condition
      (or inside it). Where meta is known to accept what CPU rejects
      (:data:`META_DIVERGENCES`), a meta run that succeeds is repeated on CPU.

    The model is never modified. Raises :class:`~symshape.ShapeError` when a size dict
    does not name exactly the report's symbols.

    >>> import symshape as ss
    >>> from symshape.zoo import seed_case1
    >>> model = seed_case1()
    >>> rep = ss.trace(model, "1,3,H,W")
    >>> res = check(model, rep, sizes=[{"H": 32, "W": 32}, {"H": 28, "W": 28}])
    >>> res.ok
    True
    >>> print(res)
    check Sequential against torch (meta): ok: 2 sizes, 12 comparisons, 0 mismatches, 0 skipped
    <BLANKLINE>
    H=32, W=32: runs in torch, as predicted
      layer    type        predicted shape  torch shape      predicted MACs  torch MACs
      0        Conv2d      (1, 32, 13, 13)  (1, 32, 13, 13)         794,976     794,976  ok
      1        ReLU        (1, 32, 13, 13)  (1, 32, 13, 13)               0           0  ok
      2        Flatten     (1, 5408)        (1, 5408)                     0           0  ok
      3        Linear      (1, 10)          (1, 10)                  54,080      54,080  ok
      (model)  Sequential  (1, 10)          (1, 10)                 849,056     849,056  ok
    <BLANKLINE>
    H=28, W=28: outside the domain, and torch raises there, as predicted: layer '3' (Linear) needs 32*(floor((H - 7)/2) + 1)*(floor((W - 7)/2) + 1) = 5408; torch raised in module '3' (Linear): RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x3872 and 5408x10)
    """
    sizes = default_sizes(rep, n) if sizes is None else list(sizes)
    names = {s.name: s for s in rep.symbols}
    by_path = dict(model.named_modules(remove_duplicate=False))
    first = {}
    for name, module in model.named_modules():
        first.setdefault(id(module), name)
    comparisons, points = [], []
    for given in sizes:
        point = {(k.name if isinstance(k, sympy.Symbol) else k): v for k, v in dict(given).items()}
        if set(point) != set(names):
            missing, extra = sorted(set(names) - set(point)), sorted(set(point) - set(names))
            raise ShapeError(f"check: sizes {point} must give exactly the report's sizes {', '.join(names) or '(none)'}"
                             + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; unknown {', '.join(extra)}" if extra else ""))
        points.append(point)
        comparisons += _check_at(model, rep, point, device, by_path, first)
    loose = sorted({layer.name for layer in rep.layers if layer.name not in by_path})
    notes = ()
    if loose:
        notes = (f"{len(loose)} report layers are not modules of the model ({', '.join(map(repr, loose))}): "
                 "they are compared through the model's output shape and total MACs only",)
    return CheckResult(type(model).__name__, str(device), tuple(points), tuple(comparisons), notes)


def _ints(value):
    """A predicted shape as ints (nested for several outputs), or None where it is not numeric."""
    if isinstance(value, tuple):
        items = [_ints(v) for v in value]
        return tuple(items)
    if value is None:
        return None
    value = sympy.sympify(value, strict=True)
    return int(value) if value.is_Integer else value


def _failure_text(err):
    """``torch raised in module 'name' (Kind): Error: message``, from an :class:`ObserveError`."""
    return f"torch raised in module {err.module_name!r} ({err.kind}): {str(err).split(f' on {err.device}: ', 1)[-1]}"


def _check_at(model, rep, point, device, by_path, first):
    values = {s: sympy.Integer(point[s.name]) for s in rep.symbols}
    shape = tuple(int(d.subs(values)) for d in rep.input_shape)
    violated = rep.violations(**point)
    obs, err = None, None
    try:
        obs = observe(model, shape, device=device)
    except ObserveError as e:
        err = e

    def domain(status, layer, kind, predicted, actual, formula, note):
        return Comparison(point, layer, kind, "domain", predicted, actual, formula, status, note)

    if violated:
        cond = violated[0]
        blamed = by_path.get(cond.layer)
        if err is None and blamed is not None and torch.device(device).type == "meta" and isinstance(
                blamed, tuple(META_DIVERGENCES)):
            try:
                observe(model, shape, device="cpu")
            except ObserveError as e:
                err = e
        needs = f"layer {cond.layer!r} ({cond.kind}) needs {fmt(cond.expr)}"
        if err is None:
            empty = next((o for o in obs.values() if _has_zero(o.out_shape)), None)
            if empty is not None:
                return [domain("ok", cond.layer, cond.kind, "raises", "empty", fmt(cond.expr),
                               f"outside the domain ({needs}); torch runs, but module {empty.name!r} ({empty.kind}) "
                               f"outputs the empty tensor {empty.out_shape}, which the domain excludes")]
            return [domain("mismatch", cond.layer, cond.kind, "raises", "runs", fmt(cond.expr),
                           f"outside the domain ({needs}: {cond.why}), but torch runs there")]
        order = {}
        for i, layer in enumerate(rep.layers):
            module = by_path.get(layer.name)
            if module is not None:
                order.setdefault(first[id(module)], i)
        blamed_at = order.get(first[id(blamed)]) if blamed is not None else None
        failed_at = next((i for name, i in order.items()
                          if err.module_name == name or err.module_name.startswith(name + ".")), None)
        text = f"{needs}; {_failure_text(err)}"
        if blamed_at is None or failed_at is None or failed_at == blamed_at:
            return [domain("ok", cond.layer, cond.kind, "raises", "raises", fmt(cond.expr),
                           f"outside the domain, and torch raises there, as predicted: {text}")]
        if failed_at > blamed_at:
            return [domain("ok", cond.layer, cond.kind, "raises", "raises", fmt(cond.expr),
                           f"outside the domain, and torch raises there, in a later layer (torch lets "
                           f"{cond.layer!r} output an empty tensor, which the domain excludes): {text}")]
        return [domain("mismatch", cond.layer, cond.kind, "raises", "raises", fmt(cond.expr),
                       f"torch raises in an earlier layer than the domain predicts: {text}")]
    if err is not None:
        return [domain("mismatch", err.module_name, err.kind, "runs", "raises",
                       ", ".join(fmt(c.expr) for c in rep.domain) or "no conditions",
                       f"inside the domain, but {_failure_text(err)}")]

    at = rep.at(point)
    where = f" (on {obs.device}: {obs.fallback_reason})" if obs.fallback_reason else ""
    out = [domain("ok", "", type(model).__name__, "runs", "runs", "", f"runs in torch, as predicted{where}")]
    groups = {}
    for sym, num in zip(rep.layers, at.layers):
        module = by_path.get(sym.name)
        if module is not None:
            groups.setdefault(id(module), (module, []))[1].append((sym, num))
    for module, pairs in groups.values():
        sym, num = pairs[-1]
        seen = obs.get(first[id(module)])
        calls = seen.calls if seen is not None else 0
        if calls != len(pairs):
            out.append(Comparison(point, sym.name, sym.kind, "calls", len(pairs), calls, "", "mismatch",
                                  f"the report applies {first[id(module)]!r} {len(pairs)} times, torch ran it "
                                  f"{calls} times"))
            if seen is None:
                continue
        out.append(_compare(point, sym.name, sym.kind, "shape", _ints(num.out_shape), seen.out_shape,
                            _fmt_shapes(sym.out_shape)))
        macs = sympy.Add(*(s.macs for s, _ in pairs))
        out.append(_compare(point, sym.name, sym.kind, "macs", _ints(sum(m.macs for _, m in pairs)), seen.macs,
                            fmt(macs), _blind(module) or seen.macs_caveat))
    root = obs[""]
    out.append(_compare(point, "(model)", type(model).__name__, "shape", _ints(at.output_shape), root.out_shape,
                        _fmt_shapes(rep.output_shape)))
    out.append(_compare(point, "(model)", type(model).__name__, "macs", _ints(at.macs), root.macs,
                        fmt(rep.macs), root.macs_caveat))
    return out


def _has_zero(shape):
    if isinstance(shape, tuple):
        return any(_has_zero(d) for d in shape)
    return shape == 0


def _fmt_shapes(shape):
    if isinstance(shape, tuple) and shape and all(isinstance(s, tuple) or s is None for s in shape):
        return "(" + ", ".join("None" if s is None else _fmt_shapes(s) for s in shape) + ")"
    return str(shape)


def _blind(module):
    for cls in type(module).__mro__:
        if cls in FLOPCOUNTER_BLIND_SPOTS:
            return f"FlopCounterMode cannot count {type(module).__name__}: {FLOPCOUNTER_BLIND_SPOTS[cls]}"
    return None


def _compare(point, layer, kind, what, predicted, actual, formula, caveat=None):
    if caveat:
        return Comparison(point, layer, kind, what, predicted, actual, formula, "skipped", caveat)
    status = "ok" if predicted == actual else "mismatch"
    return Comparison(point, layer, kind, what, predicted, actual, formula, status)
