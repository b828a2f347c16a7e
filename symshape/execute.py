"""The executing front end: a module's real ``forward``, run in Python on stand-in tensors.

torch.fx cannot trace Python control flow on sizes (``if h % 32 != 0: raise``,
``math.ceil(x.shape[-1] / s)``, ``max(pad, 0)``, ``for i in range(x.shape[1])``). For such a
module the tracer runs the forward itself, as written, with each tensor replaced by a
:class:`Stand` that carries a symbolic :class:`~symshape.report.Shape`:

* a ``TorchFunctionMode`` sends every torch function, ``Tensor`` method and operator to the rule
  registered for it (the rules the graph front end uses, through :meth:`Tracer.apply`);
* ``x.shape``, ``x.size()``, ``x.ndim`` give ints where a size is fixed and :class:`Size` objects
  (sympy expressions with ``+ - * / // % **``, comparisons, ``math.ceil``/``floor``, ``max``/``min``)
  where it is symbolic;
* module calls are intercepted (``nn.Module.__call__`` is patched for the run, under the tracing
  lock): a module with a rule is one layer with its qualified name, any other runs its forward here;
* ``bool()`` of a size comparison (:class:`Cond`) gives its value where the domain collected so far
  decides it; otherwise it takes a branch and adds the comparison taken as a domain condition.
  The branch is the one that holds at a typical size (224), unless that branch makes the forward
  raise: then the run is repeated with the other one, and the model's own error message becomes the
  condition's reason (``if h % 32 != 0: raise RuntimeError(msg)`` gives ``Mod(H, 32) = 0`` with
  *msg*). Where the other side runs too (it reaches an op without raising), the run goes on along
  the side taken and records a :class:`~symshape.symbols.Split`; :func:`~symshape.trace.trace`
  makes the path traced one piece of a piecewise report (``rep.pieces``) and traces each other
  side as another. A comparison that the domain rules out on one side
  (``floor(H/32) = 7`` where ``floor(H/16) = 7`` holds) is decided, not a branch.

Branching on tensor values (``if x.sum() > 0``) is refused with a ShapeError naming the module.

>>> import math
>>> import torch.nn as nn, torch.nn.functional as F
>>> import symshape as ss
>>> class Guarded(nn.Module):
...     def forward(self, x):
...         if x.shape[-1] % 8 != 0:
...             raise ValueError("the width must be a multiple of 8")
...         return F.avg_pool1d(x, x.shape[-1])
>>> rep = ss.trace(Guarded(), "1,3,W")
>>> rep.output_shape
(1, 3, 1)
>>> print(rep.domain[-1])  # doctest: +ELLIPSIS
W ≡ 0 (mod 8)  [layer '' (Guarded): the width must be a multiple of 8 (the forward of the model (Guarded) raises otherwise, at <doctest...>:3)]
"""
from __future__ import annotations

import builtins
import dataclasses
import operator
import os
import traceback
from typing import Optional

import sympy
import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from .decide import always_nonnegative
from .decided import implied_by_domain
from .fallback import FALLBACK, eligible, meta_rule
from .floors import simplify_relation
from .frontends import FX_LOCK, compacting, qualify, unsupported
from .report import Shape
from .rules.registry import Out, rule_for
from .standins import (_HERE, _STATE, _SYM_MAX, _SYM_MIN, _TORCH, NUMBERS, Cond, FloatSize, Size, Stand, _at,
                       _float_error, _has_symbolic, _shapes, _tensor_dunder, _unwrap, _wrap, user_globals)
from .symbols import ShapeError, Split
from .explore import _Explore, Paths, typical as _typical

__all__ = ["run_forward", "Executor", "Stand", "Size", "Cond"]

_MAX_RUNS = 32  # re-executions of one forward while looking for a branch that does not raise
_MAX_PROBES = 64  # other branches tried for the model's own error message (or whether they run)
_NO_SIZE = "the other branch leads to a condition that no size meets"
_ABSENT = object()


class _Probe(BaseException):
    """Ends a probe run: the other branch reached an op without raising."""




@dataclasses.dataclass
class _Choice:
    rel: object
    value: bool
    flipped: bool  # the other value was tried and made the forward raise
    reason: Optional[str]
    index: Optional[int] = None  # where its condition is in tracer.domain


class _Mode(TorchFunctionMode):
    def __init__(self, executor):
        super().__init__()
        self.executor = executor

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return self.executor.torch_call(func, args, kwargs or {})


def _module_call(module, *args, **kwargs):
    ex = getattr(_STATE, "executor", None)
    if ex is None:
        return _ORIGINAL_CALL(module, *args, **kwargs)
    return ex.module_call(module, args, kwargs)


_ORIGINAL_CALL = nn.Module.__call__


class Executor(Paths):
    """Runs one module's forward on stand-ins, recording layers and conditions in *tracer*."""

    def __init__(self, tracer, module: nn.Module, name: str):
        self.tracer, self.root, self.root_name = tracer, module, name
        self.names = {}
        for sub, child in module.named_modules(remove_duplicate=False):
            self.names.setdefault(id(child), qualify(name, sub))
        self.stack: list = []
        self.choices: list = []
        self.forced: list = []
        self.counts: dict = {}
        self.probe: Optional[int] = None
        self.armed = False
        self.exploring = None  # (frame, forced conditions, region conditions added) while paths are traced
        self.inert: dict = {}  # module call (name, arguments, domain at the call) -> {(module name, condition): side}
        self.partial: dict = {}  # module call -> {layer name: regions}: layers of its merged paths that some skip
        self.explored: set = set()  # (module name, arguments, domain at its call) whose paths were compared
        self.entries: dict = {}  # id(stack entry) -> (snapshot, key) of the module call
        self.shadowed = user_globals(module)  # where int() and float() take symbolic sizes while the forward runs

    # -- operations -------------------------------------------------------------------------
    def _layer_name(self, op: str) -> str:
        base = qualify(self.stack[-1][0], op.strip("_") or "op")
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def call(self, target, args, kwargs, method=False):
        """Apply the rule for *target* (a function, or a method name when *method*)."""
        if method and target in ("size", "dim", "numel"):
            return getattr(args[0], target)(*args[1:])
        op = target if method else (getattr(target, "__name__", None) or str(target).rsplit(".", 1)[-1])
        floats = _floats((args, kwargs))
        if floats and not (target in _SCALING and all(any(v is a for a in args) for v in floats)):
            raise _float_error(floats[0], f"{'Tensor.' if method else ''}{op} of")
        uargs, ukw = _unwrap(tuple(args)), _unwrap(dict(kwargs))
        kind = f"Tensor.{target}" if method else op
        rule = rule_for(target)
        tensors = tuple(_shapes([uargs, ukw]))
        attrs = None
        if rule is None and eligible(target, method):  # torch's meta kernel on symbolic sizes stands in
            rule, attrs = meta_rule(target, method), dict(FALLBACK)
        if rule is None:
            name, owner_kind, inputs = self.stack[-1]
            raise self.tracer.fail(name, owner_kind, inputs,
                                   f"its forward calls {kind} (at {_at()}) on {', '.join(map(str, tensors)) or 'sizes'}, "
                                   f"which has no shape rule; register one with @symshape.register("
                                   f"{repr(target) if method else op}) (a function of the call's arguments, tensors "
                                   f"given as shapes, returning the output shape)")
        if self.armed:
            raise _Probe
        out = self.tracer.apply(self._layer_name(op), kind, compacting(rule), None, uargs, ukw, attrs=attrs,
                                shown=tensors)
        return _wrap(out)

    def torch_call(self, func, args, kwargs):
        """A torch function, Tensor method or attribute reached through the mode or a stand-in."""
        if func is torch._assert and args and isinstance(args[0], Cond):
            message = args[1] if len(args) > 1 else kwargs.get("message", "")
            name, kind, inputs = self.stack[-1]
            self.tracer.require(name, kind, inputs, args[0].rel, f"{message} (asserted at {_at()})")
            return None
        if not _has_symbolic((args, kwargs)):
            return self.fixed_call(func, args, kwargs)
        name = getattr(func, "__name__", "")
        if name == "__get__":
            attr = getattr(getattr(func, "__self__", None), "__name__", "")
            return getattr(args[0], attr)
        if name and getattr(torch.Tensor, name, None) is func:
            if name.startswith("__") and name.endswith("__"):
                fn, swap = _tensor_dunder(name)
                if fn is not None:
                    return self.call(fn, (args[1], args[0]) if swap else args, kwargs)
            return self.call(name, args, kwargs, method=True)
        return self.call(func, args, kwargs)

    def fixed_call(self, func, args, kwargs):
        """A call on fixed tensors only (weights, buffers, constants): torch computes it. Where it
        multiplies (a relative-position bias from the weights: einsum, matmul), it is a layer with
        the constant MACs torch's FlopCounterMode counts, as check's torch run counts them."""
        from torch.utils.flop_counter import FlopCounterMode

        tensors = _real_tensors((args, kwargs))
        if self.armed or getattr(func, "__name__", "") == "__get__" or not tensors:
            return func(*args, **kwargs)
        with FlopCounterMode(display=False) as counter:
            out = func(*args, **kwargs)
        flops = counter.get_total_flops()
        if flops and isinstance(out, torch.Tensor):
            op = getattr(func, "__name__", None) or "op"
            shapes = tuple(Shape(t.shape) for t in tensors)
            made = Out(Shape(out.shape), flops // 2)
            self.tracer.apply(self._layer_name(op), op, lambda *a, **k: made, None, (), None, shown=shapes)
        return out

    def module_call(self, module: nn.Module, args, kwargs):
        name = self.names.get(id(module)) or qualify(self.stack[-1][0] if self.stack else "", type(module).__name__)
        if rule_for(module) is not None:
            if self.armed:
                raise _Probe
            return _wrap(self.tracer.run_module(module, name, _unwrap(tuple(args)), _unwrap(dict(kwargs)) or None))
        return self.run_forward_of(module, name, args, kwargs)

    def run_forward_of(self, module, name, args, kwargs):

        kind = type(module).__name__
        refusal = unsupported(module)
        if refusal:
            raise self.tracer.fail(name, kind, _unwrap(tuple(args)), refusal)
        shapes = tuple(_shapes(_unwrap(tuple(args))))
        frame = (name, kind, shapes)
        self.stack.append(frame)
        first = len(self.tracer.layers)
        self.entries[id(frame)] = (self._snapshot(), (name, _call_key((args, kwargs)),
                                                      tuple(c.expr for c in self.tracer.domain)))
        key = self.entries[id(frame)][1]
        try:
            while True:
                try:
                    out = module.forward(*args, **kwargs)
                    break
                except _Explore as e:
                    if e.frame is not frame:
                        raise
                    self._explore(module, frame, args, kwargs)  # then run it again, knowing what is inert
        finally:
            self.stack.pop()
            self.entries.pop(id(frame), None)
        self._mark_partial(self.partial.get(key), first)
        if module is not self.root:  # the root's record is made by Tracer.run_module
            self.tracer.record_call(name, module, _unwrap((tuple(args), kwargs)), _unwrap(out), first)
        return out

    def _mark_partial(self, partial: Optional[dict], first: int) -> None:
        """Mark the layers from *first* on that only the richer side of a merged branch runs: each
        gets the conditions where it runs (:attr:`~symshape.report.Layer.only`)."""
        if not partial:
            return
        layers = self.tracer.layers
        for i in range(first, len(layers)):
            regions = partial.get(layers[i].name)
            if regions:
                where = sympy.Or(*(sympy.And(*region) for region in regions))
                layers[i] = dataclasses.replace(layers[i], only=where if layers[i].only is None
                                                else sympy.And(layers[i].only, where))

    # -- control flow -----------------------------------------------------------------------
    def decide(self, rel) -> bool:
        """The value of a size comparison: decided by the domain, else a branch taken (see the module's doc)."""
        tracer = self.tracer
        raw = rel  # as the forward wrote it: the key of a path's choices (the simplified form depends on the domain)
        rel = simplify_relation(tracer.simplify(rel))
        if rel is sympy.true or rel is sympy.false:
            return bool(rel)
        negation = simplify_relation(sympy.Not(rel))
        if rel in tracer._seen or negation is sympy.false:
            return True
        if negation in tracer._seen or negation is sympy.true:
            return False
        memo = tracer.facts().decided  # what this domain decides depends on nothing else
        if rel not in memo:
            known = _implied(rel, tracer)
            memo[rel] = implied_by_domain(rel, negation, tracer) if known is None else known
        known = memo[rel]
        if known is not None:
            return known
        frame = self.stack[-1]
        if self.exploring is not None:
            return self._path_value(raw, rel, negation)
        inert = self._inert(frame[0], raw)
        if inert is not None:
            return inert
        entry = self.entries.get(id(frame))
        if entry is not None and self.probe is None and entry[1] not in self.explored:
            raise _Explore(frame)
        k = len(self.choices)
        if k < len(self.forced):
            value, flipped, reason = self.forced[k]
        else:
            value, flipped, reason = _typical(rel), False, None
        name, kind, inputs = self.stack[-1]
        who = f"the forward of {name!r} ({kind})" if name else f"the forward of the model ({kind})"
        why = f"{reason} ({who} raises otherwise, at {_at()})" if reason else f"{who} branches on it at {_at()}"
        before = len(tracer.domain)
        try:
            tracer.require(name, kind, inputs, rel if value else negation, why)
        except ShapeError as err:
            if not getattr(err, "nowhere", False) or k < len(self.forced):
                raise
            return not value  # no size of the domain so far takes this side: the domain decides it
        self.choices.append(_Choice(rel, value, flipped, reason, before if len(tracer.domain) > before else None))
        if self.probe == k:
            self.armed = True
        return value

    # -- running ------------------------------------------------------------------------------
    def _once(self, inputs, kwargs, forced, probe=None):
        self.forced, self.choices, self.counts, self.stack, self.entries = forced, [], {}, [], {}
        self.probe, self.armed = probe, False
        with FX_LOCK:
            saved = (nn.Module.__call__, builtins.max, builtins.min, getattr(_STATE, "executor", None))
            nn.Module.__call__, builtins.max, builtins.min, _STATE.executor = _module_call, _SYM_MAX, _SYM_MIN, self
            shadowed = [(g, name, g.get(name, _ABSENT)) for g in self.shadowed for name in NUMBERS]
            try:
                for g, name, _ in shadowed:
                    g[name] = NUMBERS[name]
                with _Mode(self):
                    out = self.run_forward_of(self.root, self.root_name, _wrap(tuple(inputs)), _wrap(dict(kwargs)))
            finally:
                nn.Module.__call__, builtins.max, builtins.min, _STATE.executor = saved
                for g, name, old in shadowed:
                    if old is _ABSENT:
                        g.pop(name, None)
                    else:
                        g[name] = old
        return _unwrap(out)

    def run(self, inputs, kwargs):
        self.shown = tuple(_shapes(inputs))  # what the forward got, for its messages
        start = self.tracer.state()
        forced, first = [], None
        for _ in range(_MAX_RUNS):
            self.tracer.restore(start)
            try:
                out = self._once(inputs, kwargs, forced)
                break
            except ShapeError as err:
                if not getattr(err, "empty_domain", False):
                    raise
                first = first or err  # the branches taken lead to a condition no size meets: try the other
                j = next((i for i in reversed(range(len(self.choices))) if not self.choices[i].flipped), None)
                if j is None:  # every path raises or meets no size: the condition no size meets is told
                    err.nowhere = True
                    raise (first if isinstance(first, ShapeError) else err) from None
                message = _NO_SIZE
            except Exception as err:  # the model's own raise (or an op torch would refuse): try the other branch
                first = first or err
                j = next((i for i in reversed(range(len(self.choices))) if not self.choices[i].flipped), None)
                if j is None:  # every path raises: no size runs (in the piece being traced)
                    failure = first if isinstance(first, ShapeError) else self._failure(first)
                    failure.nowhere = True
                    raise failure from None
                message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            forced = [(c.value, c.flipped, c.reason) for c in self.choices[:j]] + \
                     [(not self.choices[j].value, True, message)]
        else:
            raise (first if isinstance(first, ShapeError) else self._failure(first)) from None
        self._explain(inputs, kwargs, start)
        return out

    def _explain(self, inputs, kwargs, start):
        """For branches taken by default, run the other one up to its next op: if it raises, the
        model's message becomes the reason of the condition."""
        final, choices = self.tracer.state(), list(self.choices)
        messages = {}
        for j, c in enumerate(choices[:_MAX_PROBES]):
            if c.flipped or c.index is None:
                continue
            forced = [(d.value, d.flipped, d.reason) for d in choices[:j]] + [(not c.value, True, None)]
            self.tracer.restore(start)
            try:
                self._once(inputs, kwargs, forced, probe=j)
            except _Probe:
                pass
            except ShapeError as err:
                if getattr(err, "empty_domain", False):
                    messages[j] = _NO_SIZE
            except Exception as err:
                text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                messages[j] = text
            finally:
                self.tracer.restore(final)
        for j, c in enumerate(choices):  # the other side runs too (or was not tried): a domain condition
            # there would be a wrong answer; the trace goes on along the side taken, and trace() traces the
            # other side as a piece of its own
            if c.flipped or c.index is None or j in messages:
                continue
            cond = self.tracer.domain[c.index]
            negation = simplify_relation(sympy.Not(c.rel))
            taken, other = (c.rel, negation) if c.value else (negation, c.rel)
            text = str(self.tracer.fail(
                self.root_name, type(self.root).__name__, self.shown,
                f"its forward branches on the sizes ({cond!r}, {cond.reason}) and the other branch runs too"))
            self.tracer.splits.append(Split(text, taken, other, cond.layer, cond.kind, cond.reason,
                                            [d.expr for d in self.tracer.domain[:c.index]], c.index))
        for j, text in messages.items():
            cond = self.tracer.domain[choices[j].index]
            who = f"the forward of {cond.layer!r} ({cond.kind})" if cond.layer else f"the forward of the model ({cond.kind})"
            at = cond.reason.rsplit(" at ", 1)[-1]
            self.tracer.domain[choices[j].index] = dataclasses.replace(cond, reason=f"{text} ({who} raises otherwise, at {at})")
        self.choices = choices

    def _failure(self, err) -> ShapeError:
        frames = [f for f in traceback.extract_tb(err.__traceback__)
                  if not os.path.abspath(f.filename).startswith((_HERE, _TORCH))]
        at = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}: `{frames[-1].line}`" if frames else ""
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return self.tracer.fail(self.root_name, type(self.root).__name__, self.shown,
                                f"running its forward on symbolic sizes raised {type(err).__name__}{at}: {text}; on "
                                f"every branch of the size conditions tried")


# what a float computed from a size (FloatSize) may be an operand of: it scales a tensor's values only
_SCALING = {operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.iadd, operator.isub,
            operator.imul, operator.itruediv, torch.add, torch.sub, torch.mul, torch.div, torch.true_divide,
            torch.pow, "add", "sub", "mul", "div", "true_divide", "pow", "add_", "sub_", "mul_", "div_"}


def _floats(value) -> list:
    """The FloatSize values among a call's arguments (in lists, tuples, dicts)."""
    if isinstance(value, FloatSize):
        return [value]
    if isinstance(value, (list, tuple)) and not isinstance(value, Shape):
        return [f for v in value for f in _floats(v)]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    return []


def _call_key(value):
    """A hashable digest of a module call's arguments: shapes and plain values as they are, other
    objects by identity (the paths of a call depend on its arguments as well as on the domain)."""
    value = _unwrap(value)
    if isinstance(value, (Shape, int, float, str, bool, type(None), sympy.Basic)):
        return value
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(_call_key(v) for v in value)
    if isinstance(value, dict):
        return ("dict",) + tuple((k, _call_key(v)) for k, v in value.items())
    return ("id", id(value))


def _real_tensors(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _real_tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _real_tensors(v)]
    return []


def _implied(rel, tracer) -> Optional[bool]:
    """Whether the domain's lower bounds decide an inequality, else None."""
    from .monotone import implied_by_bounds

    if not isinstance(rel, (sympy.GreaterThan, sympy.StrictGreaterThan, sympy.LessThan, sympy.StrictLessThan)):
        return None
    big, small = (rel.lhs, rel.rhs) if isinstance(rel, (sympy.GreaterThan, sympy.StrictGreaterThan)) else (rel.rhs, rel.lhs)
    strict = isinstance(rel, (sympy.StrictGreaterThan, sympy.StrictLessThan))
    up = big - small - (1 if strict else 0)  # >= 0 where rel holds
    down = small - big - (0 if strict else 1)  # >= 0 where it fails
    lows = tracer.lows()
    for diff, value in ((up, True), (down, False)):
        if diff.is_number:
            if diff >= 0:
                return value
            continue
        if always_nonnegative(diff) or implied_by_bounds(sympy.Ge(diff, 0), lows):
            return value
    return None




def run_forward(tracer, module: nn.Module, name: str, inputs: tuple, kwargs: Optional[dict] = None):
    """Run *module*'s forward on stand-ins for *inputs* (shapes), recording its layers and
    conditions in *tracer*; returns its output shape(s). The paths of every module call, the
    forward's own included, are compared where it branches (explore.py)."""
    return Executor(tracer, module, name).run(inputs, kwargs or {})
