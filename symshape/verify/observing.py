"""What torch actually did: one run of a model, observed module by module.

:func:`observe` runs a torch model once and reports, for every module that ran, the
shapes of its tensor inputs and output and the multiply-accumulates that
``torch.utils.flop_counter.FlopCounterMode`` counted inside it (MACs = flops / 2, the
convention of the README's "Counting convention"). It is the oracle that symbolic formulas are checked
against; it knows no formulas of its own.

How the run is made (measured on torch 2.13):

* The user's model is never touched. :func:`observe` deep-copies it with a pre-filled
  ``copy.deepcopy`` memo that maps every parameter and buffer straight to a tensor on
  the target device, so no weight is copied on the way to ``meta`` (ResNet-50: 22 ms,
  against 74 ms and a transient 100 MB for ``copy.deepcopy(model).to("meta")``); a tensor a
  module computed and keeps outside them (timm's attention-bias caches), which torch cannot
  deep-copy while it has autograd history, is copied detached. Hooks
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
import warnings
from dataclasses import dataclass, field
from typing import Optional, Union

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from ..symbols import ShapeError


__all__ = [
    "Observed",
    "Observations",
    "ObserveError",
    "observe",
    "input_dtype",
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
Everything else in the studied catalogue counts exactly as the README's "Counting convention": conv and
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

    ``layer`` is the qualified name from ``model.named_modules()`` (``""`` for the root;
    a module registered under several names keeps the first). ``in_shapes`` holds the
    shapes of the tensor positional arguments (keyword arguments and non-tensor
    arguments are left out). ``out_shape`` is a tuple of ints for a tensor output, a
    tuple of such entries for tuple/list outputs (recursively; ``None`` for ``None`` or
    any other non-tensor value). ``macs`` is FlopCounterMode's count inside the call,
    children included, divided by 2. A module that ran ``calls > 1`` times reports the
    shapes of its LAST call and the SUM of the MACs of all calls; ``call_shapes`` and
    ``call_macs`` hold each call's output shape and MACs, in call order. ``macs_caveat`` is
    ``None`` unless the call contained a module from :data:`FLOPCOUNTER_BLIND_SPOTS`, in
    which case it says which and why ``macs`` is not to be trusted.
    """

    layer: str
    kind: str
    in_shapes: tuple
    out_shape: object
    macs: int
    calls: int
    macs_caveat: Optional[str] = None
    call_shapes: tuple = field(default=(), compare=False, repr=False)
    call_macs: tuple = field(default=(), compare=False, repr=False)

    @property
    def name(self) -> str:
        """The former name of :attr:`layer` (kept for code written against symshape 0.1)."""
        return self.layer


class Observations(dict):
    """The result of :func:`observe`: a ``dict`` from module name to :class:`Observed`.

    Entries follow ``named_modules()`` order; modules that did not run (an unused branch,
    a submodule bypassed by its parent) have no entry. Two attributes say how the run was
    made:

    * ``device``: where the model actually ran (``"meta"`` or, after a fallback, ``"cpu"``);
    * ``fallback_reason``: ``None``, or why the meta run failed and CPU was used.

    ``empty`` names the first torch function call (a functional or a tensor method, as a graph
    calls them; not inside modules' own calls) whose output had a size-0 dim, or is ``None``.
    """

    def __init__(self, entries, device: str, fallback_reason: Optional[str] = None, empty: Optional[str] = None):
        super().__init__(entries)
        self.device = device
        self.fallback_reason = fallback_reason
        self.empty = empty

    def __repr__(self) -> str:
        return (f"Observations({dict.__repr__(self)}, device={self.device!r}, "
                f"fallback_reason={self.fallback_reason!r})")


class ObserveError(RuntimeError):
    """Torch raised while :func:`observe` ran the model.

    Attributes: ``layer`` (qualified name) and ``kind`` of the innermost module that was running,
    ``in_shapes`` of its call, ``device`` of the failed run; ``__cause__`` is torch's
    exception (from the CPU run when the meta run failed first).
    """

    def __init__(self, message, layer, kind, in_shapes, device):
        super().__init__(message)
        self.layer = layer
        self.kind = kind
        self.in_shapes = in_shapes
        self.device = device

    @property
    def module_name(self) -> str:
        """The former name of :attr:`layer` (kept for code written against symshape 0.1)."""
        return self.layer


Input = Union[torch.Tensor, tuple, list]


def observe(model: nn.Module, *inputs: Input, device: str = "meta", fallback: bool = True,
            dtype: Optional[torch.dtype] = None) -> Observations:
    """Run ``model`` on ``inputs`` and report, per module, what torch actually did.

    Each input is a shape (a tuple of ints; a tensor of ``dtype`` is made from it, by default
    :func:`input_dtype` of the model: indices for an embedding, else its parameters' dtype)
    or a tensor (e.g. integer indices for ``nn.Embedding``; moved to ``device``). The
    model runs on a copy on ``device`` (default ``"meta"``: no memory, no compute); if
    the meta run raises and ``fallback`` is true, the whole model is run again on CPU and
    the result records it (see :class:`Observations`). The run mode that lets
    FlopCounterMode see the most is described in the module docstring.

    Returns an :class:`Observations` dict of :class:`Observed`. Raises
    :class:`ObserveError` if torch rejects the input, ``TypeError`` for an input
    that is neither a shape nor a tensor, and :class:`~symshape.ShapeError` for a model that
    cannot be copied (a lock in an attribute; a tensor a module computed and keeps, with its
    autograd history, is copied without it). A meta run that fails is repeated on CPU even
    when the error is a plain shape error, so that the error carries torch's CPU message
    (the CPU run stops at the same layer); ``fallback=False`` raises the meta error.

    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 32, kernel_size=7, stride=2), nn.ReLU(inplace=True),
    ...                       nn.Flatten(), nn.Linear(5408, 10))
    >>> obs = observe(model, (1, 3, 32, 32))
    >>> obs["0"]
    Observed(layer='0', kind='Conv2d', in_shapes=((1, 3, 32, 32),), out_shape=(1, 32, 13, 13), macs=794976, calls=1, macs_caveat=None)
    >>> [(o.layer, o.out_shape, o.macs) for o in obs.values()]
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
    symshape.verify.observing.ObserveError: torch raised in module '3' (Linear) with input shapes ((1, 3872),) on cpu: RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x3872 and 5408x10)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"observe: expected an nn.Module, got {type(model).__name__}")
    specs = tuple(_check_input(i, k) for k, i in enumerate(inputs))
    device = torch.device(device)
    dtype = input_dtype(model) if dtype is None else dtype
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
    if not (dtype.is_floating_point or dtype.is_complex):  # indices: 0 is valid for every embedding
        return torch.zeros(spec, dtype=dtype, device=device)
    return torch.randn(spec, dtype=dtype, generator=generator).to(device)


def input_dtype(model: nn.Module) -> torch.dtype:
    """The dtype a model's input must have: ``torch.long`` when its first module with parameters is
    an ``nn.Embedding`` or ``nn.EmbeddingBag`` (indices), else the dtype of its first floating-point
    parameter (``model.double()`` takes float64), else float32.

    >>> input_dtype(nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))), input_dtype(nn.Linear(2, 2).double())
    (torch.int64, torch.float64)
    """
    for module in model.modules():
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
            return torch.long
        own = [p for p in module.parameters(recurse=False) if p.is_floating_point()]
        if own:
            return own[0].dtype
    return torch.float32


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
            # no autograd on the copy: the run is under no_grad, and a parameter that requires grad
            # makes some models (timm's CaiT) fail where torch's eval-mode inference runs
            memo[id(p)] = nn.Parameter(moved(p), requires_grad=False)
    for b in model.buffers():
        if isinstance(b, nn.parameter.UninitializedBuffer):
            memo[id(b)] = nn.parameter.UninitializedBuffer(b.requires_grad, device, b.dtype)
        else:
            memo[id(b)] = moved(b)
    for module in model.modules():
        for value in vars(module).values():
            for t in _loose_tensors(value, 0):
                if id(t) not in memo and not t.is_leaf:
                    # torch deep-copies only graph leaves; a tensor a module computed from its
                    # parameters and keeps (timm's attention-bias caches) is copied without its history
                    memo[id(t)] = t.detach().clone()
    try:
        return copy.deepcopy(model, memo)
    except Exception as exc:  # an attribute that cannot be copied: a lock, an open file, a generator
        lines = str(exc).strip().splitlines()
        raise ShapeError(f"cannot run the model ({type(model).__name__}) on a copy: copy.deepcopy raised "
                         f"{type(exc).__name__}: {lines[0] if lines else ''}; the model is never run itself, so keep "
                         "objects that cannot be deep-copied out of its modules' attributes (or give their class a "
                         "__deepcopy__)") from exc


def _loose_tensors(value, depth):
    """The tensors a module attribute holds, directly or in (nested) dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        yield value
    elif depth < 4 and isinstance(value, (dict, list, tuple)) and not isinstance(value, nn.Module):
        for item in (value.values() if isinstance(value, dict) else value):
            yield from _loose_tensors(item, depth + 1)


def _shape_of(value):
    if isinstance(value, torch.Tensor):
        return tuple(int(d) for d in value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_shape_of(v) for v in value)
    if isinstance(value, dict):  # a dict of outputs: its values, in order, as the trace keeps them
        return tuple(_shape_of(v) for v in value.values())
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
    watch = _EmptyWatch()

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
        flops = counter.get_total_flops() - start
        rec["flops"] += flops
        rec["calls"] += 1
        rec["call_shapes"].append(rec["out_shape"])
        rec["call_macs"].append(flops // 2)

    try:
        for _, module in names.values():
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(post_hook))
        with _counting_mode(work, device):
            args = [_make_input(s, device, dtype, generator) for s in specs]
            try:
                with counter, watch:
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
                                 rec["flops"] // 2, rec["calls"], rec["caveat"], tuple(rec["call_shapes"]),
                                 tuple(rec["call_macs"]))
    return Observations(entries, device.type, empty=watch.first), None


class _EmptyWatch(TorchFunctionMode):
    """Remembers the first torch function call whose output has a size-0 dim (the domain excludes
    empty tensors, also those a functional call makes between modules)."""

    def __init__(self):
        super().__init__()
        self.first = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.first is None:
            for o in (out if isinstance(out, (tuple, list)) else (out,)):
                if isinstance(o, torch.Tensor) and 0 in o.shape:
                    self.first = f"{getattr(func, '__name__', func)} outputs the empty tensor {tuple(o.shape)}"
                    break
        return out


def _fresh():
    return {"in_shapes": (), "out_shape": None, "flops": 0, "calls": 0, "caveat": None, "call_shapes": [],
            "call_macs": []}


def _blind_reason(module):
    for cls in type(module).__mro__:
        if cls in FLOPCOUNTER_BLIND_SPOTS:
            return FLOPCOUNTER_BLIND_SPOTS[cls]
    return ""
